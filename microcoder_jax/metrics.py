"""Metric writers (JSONL + TensorBoard, process 0 only), phase timers, NaN guard, plots."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from typing import Iterable, Mapping

import jax


class MetricWriter:
  """Appends `{"step": s, ...}` lines to metrics.jsonl and TensorBoard scalars.

  `resume_step`: the RL step a run resumes from. Rows after it (written by
  the interrupted run after its last checkpoint) are dropped from
  metrics.jsonl and purged from TensorBoard, so each step appears once.
  """

  def __init__(self, workdir: str, *, enabled: bool | None = None,
               resume_step: int | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      if resume_step is not None:
        truncate_metrics(self.path, resume_step)
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      purge = None if resume_step is None else resume_step + 1
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=purge)

  def write(self, step: int, metrics: Mapping[str, float]) -> None:
    if not self.enabled:
      return
    row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    for k, v in row.items():
      if k != "step" and math.isfinite(v):
        self._tb.add_scalar(k, v, step)
    self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def truncate_metrics(path: str, last_step: int) -> None:
  """Keeps the rows of `path` with step <= `last_step` (atomic rewrite)."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = [line for line in f if line.strip()]
  kept = [line for line in lines if json.loads(line)["step"] <= last_step]
  if len(kept) == len(lines):
    return
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.writelines(kept)
  os.replace(tmp, path)


class PhaseTimer:
  """`with timer("generate"): ...` accumulates seconds per phase."""

  def __init__(self):
    self.seconds: dict[str, float] = {}

  @contextlib.contextmanager
  def __call__(self, phase: str):
    t0 = time.perf_counter()
    try:
      yield
    finally:
      self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0

  def pop(self) -> dict[str, float]:
    out = {f"time/{k}_s": v for k, v in self.seconds.items()}
    self.seconds = {}
    return out


def memory_metrics() -> dict[str, float]:
  """Peak memory so far: of the first local accelerator when it reports it
  (`perf/peak_device_gib`), and of this host process (`perf/peak_host_gib`)."""
  import resource  # pylint: disable=g-import-not-at-top
  out = {"perf/peak_host_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
  stats = jax.local_devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    out["perf/peak_device_gib"] = stats["peak_bytes_in_use"] / 2**30
  return out


def heldout_summary(rows: list[dict], *, k: int, temperature: float) -> str:
  """"held-out pass@1 start -> best -> end" over a run's metrics ('' if none)."""
  held = [(r["step"], r["heldout/pass@1"]) for r in rows if "heldout/pass@1" in r]
  if not held:
    return ""
  best = max(held, key=lambda x: x[1])
  return (f"held-out pass@1 (avg@{k}, T = {temperature:g}): {100 * held[0][1]:.1f}% at step "
          f"{held[0][0]} -> best {100 * best[1]:.1f}% at step {best[0]} -> "
          f"{100 * held[-1][1]:.1f}% at step {held[-1][0]}")


def check_finite(step: int, metrics: Mapping[str, float],
                 keys: Iterable[str] = ("loss", "grad_norm")) -> None:
  """Stops the run on a NaN/inf loss or gradient, naming the step and metric."""
  for k in keys:
    if k in metrics and not math.isfinite(float(metrics[k])):
      raise FloatingPointError(f"step {step}: metric {k} is {metrics[k]}; stopping "
                               "before anything is saved from this step")


def plot_run(rows: list[dict], out_png: str) -> str:
  """Accuracy, response length and diversity against step (cf. the paper's Fig. 13)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  panels = [("accuracy", [("heldout/pass@1", "held-out pass@1"),
                          ("reward/pass_rate", "train pass rate")]),
            ("response length", [("rollout/length_mean", "mean length")]),
            ("diversity", [("rollout/diversity", "n-gram diversity")])]
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  for ax, (title, series) in zip(axes, panels):
    for key, label in series:
      pts = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
      if pts:
        ax.plot(*zip(*pts), marker="o" if len(pts) < 30 else None, label=label)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out_png, dpi=110)
  plt.close(fig)
  return out_png


def write_report(rows: list[dict], path: str, config, png: str | None = None,
                 extra: list[str] = ()) -> str:
  """A short Markdown report: setup, first/last metrics, timing breakdown,
  then `extra` lines (e.g. `provenance.report_lines`)."""
  train = [r for r in rows if "reward/mean" in r]
  held = [r for r in rows if "heldout/pass@1" in r]
  lines = [f"# Run report: {config.rl.name}", "",
           f"- model: `{config.model.preset}` (init from `{config.model.init_from or 'random'}`)",
           f"- steps: {len(train)}; prompts/step {config.rollout.num_groups} x G = "
           f"{config.rl.group_size}; L_max {config.rl.max_response_length}; "
           f"T {config.rl.temperature}", ""]
  if held:
    lines += ["| step | held-out pass@1 |", "|---|---|"]
    lines += [f"| {r['step']} | {100 * r['heldout/pass@1']:.1f}% |" for r in held]
    lines.append("")
  keys = ("reward/mean", "reward/pass_rate", "rollout/length_mean",
          "rollout/truncated_frac", "rollout/diversity", "ctm/masked_frac",
          "actor/entropy", "actor/clipfrac", "actor/grad_norm")
  if train:
    lines += ["| metric | first | last |", "|---|---|---|"]
    for k in keys:
      have = [r[k] for r in train if k in r]
      if have:
        lines.append(f"| {k} | {have[0]:.4g} | {have[-1]:.4g} |")
    phases = sorted({k for r in train for k in r if k.startswith("time/")})
    lines += ["", "Seconds per step by phase (mean):", ""]
    lines += [f"- {k[5:-2]}: {sum(r.get(k, 0.0) for r in train) / len(train):.2f}"
              for k in phases]
  if extra:
    lines += [""] + list(extra)
  if png:
    lines += ["", f"![curves]({os.path.basename(png)})"]
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path
