"""microcoder_jax's trainer on the work of peers/common.py (runner interface there).

  python benchmarks/peers/ours_runner.py --steps 20 --out ours.json --export-dir DIR

Runs `python -m microcoder_jax.train --config=configs/demo.py:objective=dapo_base`
in a subprocess with every field of the common work set explicitly (so a
change of the demo config cannot silently change the benchmark), held-out
evaluation off (`data.eval=`) and no checkpoint before the last step; then
reads the per-step phase times from WORKDIR/metrics.jsonl and copies
WORKDIR/export (the final policy as a Hugging Face directory) to --export-dir.

Phases, as the trainer itself times them (`time/*_s` in metrics.jsonl):
  generate_s     `time/generate_s`: sampling, including decoding the texts and
                 submitting each chunk to the judge; judging of chunk c runs
                 in worker processes while chunk c + 1 is generated.
  reward_s       `time/judge_wait_s`: waiting for the verdicts after the last
                 chunk is generated (the judging not hidden behind generation).
  old_logprob_s  `time/logprobs_s`: log pi_old of the second mini-batch's rows
                 by the trainer's forward (before the first update, whose own
                 forward gives its rows' log pi_old).
  update_s       `time/update_s`: the 2 optimizer updates.
  total_s        `time/step_s`: the whole step; it also holds `time/score_s`
                 (advantages, batch building, host-to-device copy) and metric
                 bookkeeping, but not the checkpoint saved after the last step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from peers import common  # pylint: disable=g-import-not-at-top


def overrides(steps: int, seed: int) -> list[str]:
  """`--config.*` flags that pin every field of the common work."""
  c = common
  fields = {
      "data.train": c.TRAIN_DATA, "data.eval": "", "data.shuffle_seed": c.DATA_SEED,
      "data.system_prompt": "", "model.init_from": c.POLICY_DIR,
      "model.dtype": "float32", "model.param_dtype": "float32",
      "rollout.num_groups": c.PROMPTS_PER_STEP, "rl.group_size": c.GROUP_SIZE,
      "rl.max_response_length": str(c.MAX_NEW_TOKENS),
      "rl.temperature": str(c.TEMPERATURE), "rollout.top_p": c.TOP_P,
      "rollout.top_k": c.TOP_K, "rl.clip_eps_low": c.EPS_LOW,
      "rl.clip_eps_high": c.EPS_HIGH, "rl.kl_coef": c.BETA,
      "rl.aggregation": "token-mean", "rl.adv_estimator": "grpo",
      "rl.dynamic_sampling": False, "rl.old_logps": "trainer",
      "ppo_mini_batch_size": c.ROWS_PER_UPDATE // c.GROUP_SIZE,  # groups: 4 -> 2 updates
      "micro_batch_size": c.ROWS_PER_UPDATE,
      "optim.lr": c.LR, "optim.warmup_steps": 0, "optim.b1": c.BETAS[0],
      "optim.b2": c.BETAS[1], "optim.weight_decay": c.WEIGHT_DECAY,
      "optim.grad_clip": c.GRAD_CLIP, "evaluator.workers": c.JUDGE_WORKERS,
      "evaluator.timeout_s": c.JUDGE_TIMEOUT_S, "evaluator.memory_mb": c.JUDGE_MEMORY_MB,
      "checkpoint.every": 10**9, "export": True,
  }
  return ([f"--config=configs/demo.py:objective=dapo_base,steps={steps},seed={seed}"]
          + [f"--config.{k}={v}" for k, v in fields.items()])


def version() -> str:
  """Package version and git commit ("+dirty" if the trainer's code or configs
  differ from it in the working tree)."""
  def git(*a):
    return subprocess.run(["git", *a], cwd=common.REPO_ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
  try:
    rev = git("rev-parse", "--short", "HEAD")
    if git("status", "--porcelain", "--", "microcoder_jax", "configs"):
      rev += "+dirty"
  except (OSError, subprocess.CalledProcessError):
    rev = "unknown"
  import importlib.metadata  # pylint: disable=g-import-not-at-top
  try:
    pkg = importlib.metadata.version("microcoder_jax")
  except importlib.metadata.PackageNotFoundError:
    pkg = "0.1.0"
  return f"{pkg} (git {rev})"


def main(argv=None):
  p = common.add_runner_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
  p.add_argument("--workdir", default="",
                 help="training workdir (default: a temporary directory, removed after)")
  args = p.parse_args(argv)
  workdir = args.workdir or tempfile.mkdtemp(prefix="peer_ours_")
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    raise SystemExit(f"error: {workdir} holds a previous run; give an empty --workdir")
  cmd = [sys.executable, "-m", "microcoder_jax.train", f"--workdir={workdir}"]
  cmd += overrides(args.steps, args.seed)
  code_version = version()  # before training: the checkout may change meanwhile
  t0 = time.perf_counter()
  proc = subprocess.run(cmd, cwd=common.REPO_ROOT, check=False)
  wall = time.perf_counter() - t0
  if proc.returncode:
    raise SystemExit(f"error: training exited with {proc.returncode}: {' '.join(cmd)}")
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    rows = [json.loads(line) for line in f if line.strip()]
  steps, peak = [], 0.0
  for r in rows:
    if int(r.get("step", 0)) < 1:
      continue
    steps.append(common.step_record(
        r["step"], total_s=r["time/step_s"], generate_s=r.get("time/generate_s"),
        reward_s=r.get("time/judge_wait_s"), old_logprob_s=r.get("time/logprobs_s", 0.0),
        update_s=r.get("time/update_s")))
    steps[-1]["score_s"] = r.get("time/score_s")
    peak = max(peak, float(r.get("perf/peak_host_gib", 0.0)))
  if os.path.exists(args.export_dir):
    shutil.rmtree(args.export_dir)
  shutil.copytree(os.path.join(workdir, "export"), args.export_dir)
  notes = [
      "our trainer: `python -m microcoder_jax.train --config=configs/demo.py:"
      "objective=dapo_base` with every field of the common work pinned by --config flags",
      "held-out evaluation off while timing (data.eval empty); no checkpoint before the "
      "last step, whose save (after the step's timer) is outside total_s",
      "judging overlaps generation (2 chunks): generate_s includes handing chunk 1 to the "
      "judge while chunk 2 is generated; reward_s is only the wait after generation",
      "old log-probs: the first update (parameters still pi_old) takes them from its own "
      "forward; the trainer recomputes them for the second mini-batch's 32 rows only "
      "(whose pi_old differs from the updated policy). Same values as recomputing all 64",
      "each prompt's forward runs once for its 8 rows in the update and the recompute "
      "(share_prompts): same log-probs and gradients up to float rounding, about half "
      "the tokens (prompts pad to 96, responses to 64)",
      "token entropy is computed as a metric in the update (rl default log_entropy=True)",
      "peak RSS: the training process (perf/peak_host_gib; judge workers are separate "
      "processes and not counted)",
  ]
  common.write_result(args.out, trainer="ours", version=code_version, steps=steps,
                      peak_rss_gib=peak or common.peak_rss_gib(children=True), notes=notes,
                      wall_s=wall,
                      command=" ".join(cmd[1:]))
  if not args.workdir:
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
  main()
