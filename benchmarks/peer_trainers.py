"""Our trainer against TRL's GRPOTrainer and tunix's GRPO learner, same work.

  python benchmarks/peer_trainers.py [--trainers ours,trl,tunix] [--steps 20] \
      [--repeats 3] [--cold-repeats 1] [--no-heldout] [--out-dir DIR] \
      [--json summary.json]

Every trainer does the CPU demo's work, defined once in
benchmarks/peers/common.py: the bundled tiny Qwen3 policy, 8 synthetic train
problems per step in the same order, 8 samples each (64 rows) of at most 64
tokens at T = 1, rewards from our sandboxed judge, DAPO-style clipped loss
(eps 0.2 / 0.28, token-mean, no KL) in 2 AdamW updates of 32 rows per step.
Each trainer is a runner script (benchmarks/peers/<name>_runner.py, interface
in common.py) run in a fresh subprocess with `XLA_FLAGS=""` and the same
environment; for each repeat the trainers run one after another in an order
rotated by one per repeat, so slow drifts of a shared machine fall on all.

Per trainer it prints: steady-state seconds per step (min / median over steps
3..N of every repeat, and each repeat's median), the median seconds of each
phase (generate, reward, old-policy log-probs, update; "other" is the rest of
the step), warm-up (steps 1 + 2) cold and cached, peak RSS of the
training process (max over repeats), and held-out pass@1 of the first
repeat's final policy, scored by our sampler and judge for every trainer
(`common.heldout_command`). The last line is
`ratio_vs_fastest_peer=<ours median s/step / the fastest peer's>`.

Each of a trainer's first `--cold-repeats` repeats starts from an empty
persistent XLA compilation cache (OUT_DIR/xla_cache/<name>/<repeat>, as
JAX_COMPILATION_CACHE_DIR) and compiles everything ("cold" warm-up: the
median over those repeats); later repeats load what the last of them
compiled ("cached" warm-up: the median over the rest). JAX trainers (ours,
tunix) use the cache; TRL compiles nothing, so both are the same work. On
XLA:CPU a cold warm-up varies by up to ~30% from run to run, so more than one
cold repeat gives a steadier figure.

TRL and tunix are optional (`pip install -e .[bench]`); a trainer whose
package or runner is missing is skipped with what to install.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import common  # pylint: disable=g-import-not-at-top
from microcoder_jax import cli  # pylint: disable=g-import-not-at-top

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_DIR = os.path.join(HERE, "peers")
KNOWN = ("ours", "trl", "tunix")
# The package each trainer needs beyond our own, and how to install it.
REQUIRES = {
    "trl": ("trl", "pip install -c <(pip freeze) trl==1.16.0 (keeps our torch and "
            "transformers; or pip install -e .[bench])"),
    "tunix": ("tunix", "google-tunix 0.1.7 pins safetensors<0.8, which our transformers "
              "cannot use: install it in its own environment as the docstring of "
              "benchmarks/peers/tunix_runner.py says and set TUNIX_PYTHON=ENV/bin/python"),
}
# An interpreter of another environment that has the package (the runner
# re-runs itself under it).
OTHER_PYTHON = {"tunix": "TUNIX_PYTHON"}
PHASES = ("generate_s", "reward_s", "old_logprob_s", "update_s")


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=cli.HelpFormatter)
  p.add_argument("--trainers", default=",".join(KNOWN),
                 help="comma-separated trainers to run (ours, trl, tunix)")
  p.add_argument("--steps", type=int, default=common.DEFAULT_STEPS,
                 help="RL steps per run (steady state: steps 3..N)")
  p.add_argument("--repeats", type=int, default=3,
                 help="runs of each trainer, interleaved in rotated order")
  p.add_argument("--cold-repeats", type=int, default=1,
                 help="how many of the first repeats start from an empty compilation cache")
  p.add_argument("--heldout", action=argparse.BooleanOptionalAction, default=True,
                 help="score the first repeat's final policies (and the initial one) "
                      "on the held-out split")
  p.add_argument("--seed", type=int, default=0, help="seed passed to every runner")
  p.add_argument("--out-dir", default="",
                 help="results, logs and exported policies (default: a new temporary "
                      "directory)")
  p.add_argument("--json", default="", help="also write the summary here as JSON (default: none)")
  p.add_argument("--timeout", type=float, default=3600.0,
                 help="seconds a single run may take before it is stopped")
  return p


def availability(name: str) -> str | None:
  """None if `name` can run, else why not (with what to install)."""
  runner = os.path.join(PEERS_DIR, f"{name}_runner.py")
  if not os.path.exists(runner):
    return f"runner not found: {os.path.relpath(runner, common.REPO_ROOT)}"
  if name in REQUIRES:
    module, hint = REQUIRES[name]
    other = os.environ.get(OTHER_PYTHON.get(name, ""), "")
    if importlib.util.find_spec(module) is None and not (other and os.path.exists(other)):
      return f"package `{module}` is not installed: {hint}"
  return None


def run_trainer(name: str, steps: int, seed: int, rep_dir: str, timeout: float,
                cache_dir: str) -> dict:
  """One run of a trainer's runner in a fresh subprocess; its RESULT.json."""
  out = os.path.join(rep_dir, f"{name}.json")
  export = os.path.join(rep_dir, f"{name}_export")
  log_path = os.path.join(rep_dir, f"{name}.log")
  env = dict(os.environ, XLA_FLAGS="", PYTHONUNBUFFERED="1",
             JAX_COMPILATION_CACHE_DIR=cache_dir)
  cmd = [sys.executable, os.path.join(PEERS_DIR, f"{name}_runner.py"), "--steps", str(steps),
         "--out", out, "--export-dir", export, "--seed", str(seed)]
  t0 = time.perf_counter()
  with open(log_path, "w", encoding="utf-8") as log:
    try:
      rc = subprocess.run(cmd, cwd=common.REPO_ROOT, env=env, stdout=log,
                          stderr=subprocess.STDOUT, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
      rc = "timeout"
  wall = time.perf_counter() - t0
  if rc != 0 or not os.path.exists(out):
    with open(log_path, encoding="utf-8", errors="replace") as f:
      tail = f.read()[-2000:]
    return {"trainer": name, "error": f"exit {rc} after {wall:.0f}s; log {log_path}:\n{tail}"}
  with open(out, encoding="utf-8") as f:
    result = json.load(f)
  result.update(process_wall_s=wall, export_dir=export, log=log_path)
  return result


def heldout_pass1(model_dir: str, out_dir: str) -> tuple[float | None, str]:
  """(held-out pass@1 in %, or None, the log path) of one exported policy."""
  os.makedirs(out_dir, exist_ok=True)
  log_path = os.path.join(out_dir, "heldout.log")
  with open(log_path, "w", encoding="utf-8") as log:
    rc = subprocess.run(common.heldout_command(model_dir, out_dir), cwd=common.REPO_ROOT,
                        env=dict(os.environ, XLA_FLAGS=""), stdout=log,
                        stderr=subprocess.STDOUT, check=False).returncode
  with open(log_path, encoding="utf-8", errors="replace") as f:
    m = re.search(r"overall pass@1: ([0-9.]+)%", f.read())
  return (float(m.group(1)) if rc == 0 and m else None), log_path


def _median(xs):
  xs = [x for x in xs if x is not None]
  return statistics.median(xs) if xs else None


def _warmup(result: dict) -> float:
  return sum(st["total_s"] for st in result["steps"] if st["step"] <= 2)


def summarize(name: str, results: list[dict], cold_repeats: int = 1) -> dict:
  """Steady-state (steps >= 3) and warm-up statistics over a trainer's runs;
  the first `cold_repeats` started from an empty compilation cache."""
  ok = [r for r in results if "error" not in r]
  s = {"trainer": name, "runs": len(ok), "failed": len(results) - len(ok)}
  if not ok:
    return s
  steady = [st for r in ok for st in r["steps"] if st["step"] >= 3]
  totals = [st["total_s"] for st in steady]
  s.update(version=ok[0].get("version", ""), notes=ok[0].get("notes", []),
           steady_steps=len(totals),
           step_min=min(totals) if totals else None, step_median=_median(totals),
           repeat_medians=[_median([st["total_s"] for st in r["steps"] if st["step"] >= 3])
                           for r in ok],
           warmup_cold_runs_s=[_warmup(r) for r in results[:cold_repeats] if "error" not in r],
           warmup_cached_s=_median([_warmup(r) for r in results[cold_repeats:]
                                    if "error" not in r]),
           peak_rss_gib=max(r["peak_rss_gib"] for r in ok),
           process_s=_median([r["process_wall_s"] for r in ok]))
  s["warmup_cold_s"] = _median(s["warmup_cold_runs_s"])
  for k in PHASES:
    s[k] = _median([st.get(k) for st in steady])
  s["other_s"] = _median([st["total_s"] - sum(st.get(k) or 0.0 for k in PHASES)
                          for st in steady])
  return s


def _fmt(x, spec=".2f"):
  return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def table(summaries: list[dict]) -> str:
  head = ("| trainer | s/step min | s/step median | repeat medians | generate | reward "
          "| old log-probs | update | other | warm-up cold / cached (steps 1-2) | peak RSS GiB "
          "| process s | held-out pass@1 % |")
  lines = [head, "|---|" + "---:|" * (head.count("|") - 2)]
  for s in summaries:
    if not s.get("runs"):
      continue
    reps = " / ".join(_fmt(x) for x in s["repeat_medians"])
    lines.append(
        f"| {s['trainer']} | {_fmt(s['step_min'])} | **{_fmt(s['step_median'])}** | {reps} "
        f"| {_fmt(s['generate_s'])} | {_fmt(s['reward_s'])} | {_fmt(s['old_logprob_s'])} "
        f"| {_fmt(s['update_s'])} | {_fmt(s['other_s'])} "
        f"| {_fmt(s['warmup_cold_s'], '.1f')} / {_fmt(s['warmup_cached_s'], '.1f')} "
        f"| {_fmt(s['peak_rss_gib'])} | {_fmt(s['process_s'], '.0f')} "
        f"| {_fmt(s.get('heldout_pass1'), '.1f')} |")
  return "\n".join(lines)


def main(argv=None):
  args = build_parser().parse_args(argv)
  names = [t.strip() for t in args.trainers.split(",") if t.strip()]
  unknown = [n for n in names if n not in KNOWN]
  if unknown:
    raise SystemExit(f"error: unknown trainer(s) {unknown}; known: {', '.join(KNOWN)}")
  if args.steps < 3:
    raise SystemExit("error: --steps must be >= 3 (steady state is steps 3..N)")
  if not 1 <= args.cold_repeats <= args.repeats:
    raise SystemExit(f"error: --cold-repeats must be in 1..--repeats ({args.repeats}), "
                     f"got {args.cold_repeats}")
  out_dir = os.path.abspath(args.out_dir or tempfile.mkdtemp(prefix="peer_trainers_"))
  os.makedirs(out_dir, exist_ok=True)

  skipped = {}
  for n in names:
    why = availability(n)
    if why:
      skipped[n] = why
      print(f"skipping {n}: {why}", flush=True)
  active = [n for n in names if n not in skipped]
  if not active:
    raise SystemExit("error: no trainer can run")
  print(f"trainers {active}, {args.steps} steps x {args.repeats} repeats, "
        f"results in {out_dir}", flush=True)

  results = {n: [] for n in active}
  for rep in range(args.repeats):
    order = active[rep % len(active):] + active[:rep % len(active)]
    rep_dir = os.path.join(out_dir, f"repeat{rep}")
    os.makedirs(rep_dir, exist_ok=True)
    for n in order:
      print(f"repeat {rep + 1}/{args.repeats}: {n} ...", flush=True)
      cache = os.path.join(out_dir, "xla_cache", n, str(min(rep, args.cold_repeats - 1)))
      r = run_trainer(n, args.steps, args.seed, rep_dir, args.timeout, cache)
      results[n].append(r)
      if "error" in r:
        print(f"  {n} failed: {r['error']}", flush=True)
      else:
        med = _median([st["total_s"] for st in r["steps"] if st["step"] >= 3])
        print(f"  {n}: {len(r['steps'])} steps, median {_fmt(med)} s/step (steps 3..), "
              f"process {r['process_wall_s']:.0f}s", flush=True)

  summaries = [summarize(n, results[n], args.cold_repeats) for n in active]
  initial = None
  if args.heldout:
    print("held-out pass@1 of the initial policy and each first-repeat export ...", flush=True)
    initial, _ = heldout_pass1(common.POLICY_DIR, os.path.join(out_dir, "heldout_initial"))
    for s, n in zip(summaries, active):
      first = results[n][0]
      if "error" not in first:
        s["heldout_pass1"], s["heldout_log"] = heldout_pass1(
            first["export_dir"], os.path.join(out_dir, f"heldout_{n}"))

  print()
  print(f"{args.steps} steps x {args.repeats} repeats; seconds per RL step "
        f"(steady state: steps 3..{args.steps}; phases are medians)")
  print(table(summaries))
  if args.cold_repeats > 1:
    print("warm-up of each cold repeat (s): " + "; ".join(
        f"{x['trainer']} " + " / ".join(_fmt(v, ".1f") for v in x["warmup_cold_runs_s"])
        for x in summaries if x.get("runs")))
  if initial is not None:
    print(f"held-out pass@1 of the initial policy: {initial:.1f}% "
          f"({common.HELDOUT_SAMPLES} samples/problem, T = {common.HELDOUT_TEMPERATURE})")
  for n, why in skipped.items():
    print(f"{n}: skipped ({why})")
  for s in summaries:
    if s.get("failed"):
      print(f"{s['trainer']}: {s['failed']} run(s) failed (logs in {out_dir})")
    if s.get("runs"):
      print(f"\n{s['trainer']} — {s['version']}")
      for note in s["notes"]:
        print(f"  - {note}")

  ours = next((s for s in summaries if s["trainer"] == "ours" and s.get("runs")), None)
  peers = [s for s in summaries if s["trainer"] != "ours" and s.get("step_median")]
  fastest = min(peers, key=lambda s: s["step_median"]) if peers else None
  ratio = (ours["step_median"] / fastest["step_median"]
           if ours and ours.get("step_median") and fastest else float("nan"))
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"steps": args.steps, "repeats": args.repeats,
                 "cold_repeats": args.cold_repeats, "seed": args.seed,
                 "summaries": summaries, "skipped": skipped, "initial_heldout_pass1": initial,
                 "fastest_peer": fastest["trainer"] if fastest else None,
                 "ratio_vs_fastest_peer": ratio, "runs": results}, f, indent=1)
  print()
  if fastest:
    print(f"fastest peer: {fastest['trainer']} ({_fmt(fastest['step_median'])} s/step median)")
  print(f"ratio_vs_fastest_peer={_fmt(ratio, '.3f')}")


if __name__ == "__main__":
  main()
