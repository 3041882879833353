r"""Choose the training temperature T from measured response diversity.

  python -m microcoder_jax.select_temperature --model runs/demo/export \
      --problems bundled:synthetic_train --max-new-tokens 64 --target 0.3 --out /tmp/t
  python -m microcoder_jax.select_temperature --model Qwen/Qwen3-4B-Instruct-2507 \
      --problems data/train.jsonl --max-new-tokens 8192 --probe-steps 10 \
      --config configs/microcoder_grpo.py:model=qwen3_4b_instruct_2507 --out runs/t

At each candidate T it samples `--group-size` responses for each of
`--prompts` training prompts with our sampler (T is traced: one compiled
program serves every T; every T uses the same random numbers), judges them,
and reports diversity D, token entropy, mean length, truncation rate and
pass@1. `--target D` picks the lowest T whose D ≥ D (default: 0.65, the
plateau the paper's runs converge to at 8K); `--probe-steps K` runs K
training steps of `--config` at each candidate and applies the paper's rule
(`sampling.temperature.choose_by_probe`). Writes `temperature.json` (the
choice, the rule, every measurement) and `diversity_vs_T.png`.

`--model` is a Hugging Face repo id, a local HF directory, or a training
workdir (its latest checkpoint); probes need an id or directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
from typing import Sequence

import jax
import numpy as np
from flax import nnx

from microcoder_jax import cli, rollout, sharding
from microcoder_jax.sampling.temperature import (DEFAULT_CANDIDATES, Choice, Measurement,
                                                 choose_by_probe, choose_by_target, measure)

DEFAULT_TARGET = 0.65


def measure_temperatures(sampler, params, evaluator, tokenizer, problems: Sequence,
                         prompt_ids: Sequence[Sequence[int]], *, temperatures: Sequence[float],
                         group_size: int, max_new_tokens: int, rng: jax.Array, ngram: int,
                         top_p: float = 1.0, max_chunk_prompts: int = 0) -> list[Measurement]:
  """One `Measurement` per T, all from the same prompts and random numbers."""
  out = []
  for t in sorted(temperatures):
    judged = rollout.sample_and_judge(
        sampler, params, evaluator, tokenizer, problems, prompt_ids, group_size=group_size,
        max_new_tokens=max_new_tokens, temperature=t, rng=rng, top_p=top_p,
        max_chunk_prompts=max_chunk_prompts)
    r = judged.rollout
    out.append(measure(t, tokens_NxT=r.tokens_NxT, lengths_N=r.lengths_N,
                       logprobs_NxT=r.logprobs_NxT, truncated_N=r.truncated_N,
                       group_size=group_size, ngram=ngram, passed_N=judged.passed_N))
  return out


def format_table(measurements: Sequence[Measurement], choice: Choice | None = None) -> str:
  lines = ["|   T  | diversity | entropy | length | truncated | pass@1 |",
           "|------|-----------|---------|--------|-----------|--------|"]
  for m in measurements:
    mark = " <" if choice is not None and m.temperature == choice.temperature else ""
    lines.append(f"| {m.temperature:4.2f} | {m.diversity:9.3f} | {m.entropy:7.3f} | "
                 f"{m.length_mean:6.1f} | {m.truncated_frac:9.3f} | "
                 f"{100 * m.pass_at_1:5.1f}% |{mark}")
  return "\n".join(lines)


def plot(measurements: Sequence[Measurement], choice: Choice, target: float | None,
         path: str) -> str:
  """Diversity, pass@1 and length against T; the target and the choice marked."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  ts = [m.temperature for m in measurements]
  panels = [("diversity D", [m.diversity for m in measurements], target),
            ("pass@1", [m.pass_at_1 for m in measurements], None),
            ("mean length (tokens)", [m.length_mean for m in measurements], None)]
  fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
  for ax, (title, ys, line) in zip(axes, panels):
    ax.plot(ts, ys, marker="o")
    if line is not None:
      ax.axhline(line, color="gray", ls="--", lw=1, label=f"target {line:g}")
    ax.axvline(choice.temperature, color="tab:red", lw=1, label=f"chosen T = {choice.temperature:g}")
    ax.set_xlabel("T")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def _finite(x):
  """NaN / inf -> None, so the JSON is standard."""
  if isinstance(x, dict):
    return {k: _finite(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_finite(v) for v in x]
  if isinstance(x, float) and not math.isfinite(x):
    return None
  return x


def write_outputs(out_dir: str, measurements, choice: Choice, target, extra=None) -> None:
  os.makedirs(out_dir, exist_ok=True)
  record = {"temperature": choice.temperature, "rule": choice.rule, "reason": choice.reason,
            "plateau": choice.plateau, "target": target,
            "measurements": [dataclasses.asdict(m) for m in measurements], **(extra or {})}
  with open(os.path.join(out_dir, "temperature.json"), "w") as f:
    json.dump(_finite(record), f, indent=2)
  plot(measurements, choice, target, os.path.join(out_dir, "diversity_vs_T.png"))


def run_probes(config: str, model: str, problems: str, temperatures, steps: int,
               out_dir: str) -> dict[float, list[float]]:
  """D per step of `steps` training steps of `config` at each T (subprocesses)."""
  trajectories = {}
  for t in temperatures:
    workdir = os.path.join(out_dir, f"probe_T{t:g}")
    cmd = [sys.executable, "-m", "microcoder_jax.train", f"--config={config}",
           f"--workdir={workdir}", f"--config.rl.temperature={t:g}",
           f"--config.total_steps={steps}", "--config.data.eval=", "--config.export=False",
           "--config.checkpoint.every=0", f"--config.model.init_from={model}",
           f"--config.data.train={problems}"]
    print(f"probe at T = {t:g}: {steps} training steps", flush=True)
    subprocess.run(cmd, check=True)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      rows = [json.loads(line) for line in f if line.strip()]
    trajectories[t] = [r["rollout/diversity"] for r in rows if "rollout/diversity" in r]
  return trajectories


def _args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=cli.HelpFormatter)
  p.add_argument("--model", required=True, help="HF repo id, HF directory or training workdir")
  p.add_argument("--problems", required=True,
                 help="problem file, bundled:NAME, hf:DATASET[:SPLIT] or tfds:DIR")
  p.add_argument("--temperatures", default=",".join(f"{t:g}" for t in DEFAULT_CANDIDATES),
                 help="candidate T, comma-separated")
  p.add_argument("--prompts", type=int, default=64, help="training prompts (seeded sample)")
  p.add_argument("--group-size", type=int, default=8, help="G: responses per prompt")
  p.add_argument("--max-new-tokens", type=int, default=4096,
                 help="L_max; use the training one")
  rule = p.add_mutually_exclusive_group()
  rule.add_argument("--target", type=float, default=None,
                    help=f"target diversity (default rule, {DEFAULT_TARGET})")
  rule.add_argument("--probe-steps", type=int, default=0,
                    help="training steps per candidate T for the probe rule (0: off)")
  p.add_argument("--config", default="configs/demo.py", help="training config of the probes")
  p.add_argument("--max-drop", type=float, default=0.15,
                 help="probe rule: the largest allowed fall of D, as a fraction")
  p.add_argument("--ngram", type=int, default=4, help="n of the diversity metric")
  p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling")
  p.add_argument("--seed", type=int, default=0, help="prompt sample and sampling seed")
  p.add_argument("--workers", type=int, default=0, help="judge workers (0: usable cores)")
  p.add_argument("--timeout", type=float, default=6.0, help="judge CPU seconds per test")
  p.add_argument("--out", required=True, help="directory for temperature.json and the plot")
  a = p.parse_args(argv)
  try:
    a.temperatures = sorted({float(t) for t in a.temperatures.split(",")})
  except ValueError:
    p.error(f"--temperatures {a.temperatures!r}: a comma-separated list of numbers")
  if not a.temperatures or min(a.temperatures) <= 0 or not all(map(math.isfinite, a.temperatures)):
    p.error(f"--temperatures: every T must be a finite number > 0, got {a.temperatures}")
  for name in ("prompts", "group_size", "max_new_tokens", "ngram"):
    if getattr(a, name) < 1:
      p.error(f"--{name.replace('_', '-')} must be >= 1")
  if a.group_size < 2:
    p.error("--group-size must be >= 2 (diversity pools the responses of a group)")
  if a.target is not None and not 0 < a.target <= 1:
    p.error(f"--target {a.target}: a diversity in (0, 1]")
  if a.probe_steps < 0:
    p.error("--probe-steps must be >= 0")
  return a


def main(argv=None):
  a = _args(argv)
  from microcoder_jax import benchmark  # pylint: disable=g-import-not-at-top
  from microcoder_jax.data import datasets, prompts  # pylint: disable=g-import-not-at-top
  from microcoder_jax.evaluator import Evaluator  # pylint: disable=g-import-not-at-top
  from microcoder_jax.sampling import Sampler  # pylint: disable=g-import-not-at-top

  if a.probe_steps and os.path.isdir(os.path.join(a.model, "checkpoints")):
    sys.exit("--probe-steps trains from --model: give a Hugging Face id or directory "
             "(e.g. the run's export/), not a training workdir")
  problems = datasets.load_dataset(a.problems)
  order = np.random.default_rng(a.seed).permutation(len(problems))[:a.prompts]
  problems = [problems[i] for i in sorted(order)]
  mesh = sharding.make_mesh({"fsdp": -1})
  model, tokenizer = benchmark.load_policy(a.model, dtype=None, mesh=mesh)
  ids = [prompts.encode_prompt(tokenizer, p) for p in problems]
  sampler = Sampler(model, stop_ids=prompts.stop_token_ids(tokenizer),
                    pad_id=tokenizer.pad_token_id or 0, mesh=mesh)
  with Evaluator(workers=a.workers or None, timeout_s=a.timeout) as ev, sharding.use_mesh(mesh):
    measurements = measure_temperatures(
        sampler, nnx.state(model), ev, tokenizer, problems, ids,
        temperatures=a.temperatures, group_size=a.group_size,
        max_new_tokens=a.max_new_tokens, rng=jax.random.key(a.seed), ngram=a.ngram,
        top_p=a.top_p)
  extra = {"prompts": len(problems), "group_size": a.group_size,
           "max_new_tokens": a.max_new_tokens, "ngram": a.ngram, "model": a.model,
           "problems": a.problems, "compiled_programs": sampler.num_traces}
  target = None
  if a.probe_steps:
    trajectories = run_probes(a.config, a.model, a.problems, a.temperatures,
                              a.probe_steps, a.out)
    choice = choose_by_probe(trajectories, max_drop=a.max_drop)
    extra["probe_trajectories"] = {f"{t:g}": d for t, d in trajectories.items()}
  else:
    target = DEFAULT_TARGET if a.target is None else a.target
    choice = choose_by_target(measurements, target)
  write_outputs(a.out, measurements, choice, target, extra)
  print(format_table(measurements, choice))
  print(f"\nchosen T = {choice.temperature:g} ({choice.rule}): {choice.reason}")
  print(f"wrote {a.out}/temperature.json and {a.out}/diversity_vs_T.png")


if __name__ == "__main__":
  main()
