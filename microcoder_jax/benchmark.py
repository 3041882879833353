"""Benchmark a policy: generate with our sampler, judge, print the paper's table.

  python -m microcoder_jax.benchmark --model Qwen/Qwen3-1.7B \
      --problems lcb_v6.jsonl --samples-per-problem 4 --max-new-tokens 4096
  python -m microcoder_jax.benchmark --model runs/demo --problems bundled:synthetic_heldout

`--model` is a Hugging Face repo id, a local HF directory, or a training
workdir (its latest orbax checkpoint, or `--step N`). For a workdir every
setting defaults to the run's held-out evaluation (`eval` block, seed, data,
prompt format, model options), so the benchmark scores a checkpoint exactly
as the run scored it at that step. Writes `samples.jsonl` and
`results.jsonl` (formats in docs/formats.md) to `--out-dir`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import ml_collections
from flax import nnx

from microcoder_jax import checkpoint, cli, heldout, sharding
from microcoder_jax.data import datasets, prompts, tiny_tokenizer
from microcoder_jax.evaluator import Evaluator
from microcoder_jax.models import CheckpointError, ModelConfig, from_pretrained, init_model
from microcoder_jax.sampling import Sampler


def run_config(path: str):
  """The recorded config of a training workdir (`config.json`), else None."""
  if not os.path.isdir(os.path.join(path, "checkpoints")):
    return None
  with open(os.path.join(path, "config.json")) as f:
    return ml_collections.ConfigDict(json.load(f))


def load_policy(path: str, *, dtype: str | None, mesh, step: int | None = None,
                options: dict | None = None):
  """(model, tokenizer) from a HF id/dir or a training workdir (its policy
  parameters alone; no optimizer is built). `options` are run-time
  `ModelConfig` fields (attention, scan_layers, ...)."""
  options = dict(options or {})
  if os.path.isdir(os.path.join(path, "checkpoints")):
    with open(os.path.join(path, "model_config.json")) as f:
      cfg = ModelConfig.from_hf(json.load(f), **options)
    if dtype:
      cfg = cfg.replace(dtype=dtype)
    graphdef, params = nnx.split(init_model(cfg, seed=0, mesh=mesh))
    ckpt = checkpoint.Checkpointer(os.path.join(path, "checkpoints"), read_only=True)
    params = ckpt.restore_params(params, step)
    ckpt.close()
    model = nnx.merge(graphdef, params)
    tok_dir = os.path.join(path, "tokenizer")
  else:
    model = from_pretrained(path, dtype=dtype, mesh=mesh, **options)
    tok_dir = path
  import transformers  # pylint: disable=g-import-not-at-top
  try:
    tokenizer = transformers.AutoTokenizer.from_pretrained(tok_dir)
  except (OSError, ValueError):
    tokenizer = tiny_tokenizer.load()
  return model, tokenizer


def _flag_help(text: str, default) -> str:
  return f"{text} (default: the run's setting for a training workdir, else {default})"


def parse_args(argv=None):
  d = heldout.Settings()
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   formatter_class=cli.HelpFormatter)
  add = parser.add_argument
  add("--model", required=True, help="HF repo id, HF directory, or training workdir")
  add("--problems", default=None,
      help=_flag_help("problem file, bundled:NAME, hf:DATASET[:SPLIT] or tfds:DIR",
                      "required"))
  add("--samples-per-problem", type=int, default=None, help=_flag_help("k of avg@k pass@1", d.k))
  add("--max-new-tokens", type=int, default=None,
      help=_flag_help("response budget L_max", d.max_new_tokens))
  add("--temperature", type=float, default=None,
      help=_flag_help("sampling temperature", d.temperature))
  add("--top-p", type=float, default=None, help=_flag_help("nucleus sampling", d.top_p))
  add("--timeout", type=float, default=None,
      help=_flag_help("judge CPU seconds per test", d.timeout_s))
  add("--memory-mb", type=int, default=None,
      help=_flag_help("judge memory per program, MB", d.memory_mb))
  add("--seed", type=int, default=None, help=_flag_help("sampling seed", 0))
  add("--max-problems", type=int, default=None,
      help=_flag_help("judge only the first N problems (0: all)", 0))
  add("--step", type=int, default=None,
      help="checkpoint step of a workdir (default: the latest saved step)")
  add("--dtype", default=None, help="compute dtype (float32, bfloat16) (default: the "
      "run's model.dtype for a training workdir, else the checkpoint's)")
  add("--batch-prompts", type=int, default=16,
      help="prompts per sampler call (speed only: responses do not depend on it)")
  add("--workers", type=int, default=0,
      help="judge worker processes (0: usable cores; verdicts do not depend on it)")
  add("--out-dir", default="benchmark_out",
      help="where samples.jsonl and results.jsonl go")
  return parser.parse_args(argv)


def resolve(args, run, rl_step: int):
  """(held-out settings, seed, problems spec, max problems): flags, else the
  run's `eval` block and seed (a workdir), else `heldout.Settings()`."""
  base = heldout.Settings.from_config(run, rl_step) if run is not None else heldout.Settings()
  pick = lambda flag, default: default if flag is None else flag
  settings = dataclasses.replace(
      base, k=pick(args.samples_per_problem, base.k),
      max_new_tokens=pick(args.max_new_tokens, base.max_new_tokens),
      temperature=pick(args.temperature, base.temperature), top_p=pick(args.top_p, base.top_p),
      timeout_s=pick(args.timeout, base.timeout_s), memory_mb=pick(args.memory_mb, base.memory_mb))
  seed = pick(args.seed, int(run.seed) if run is not None else 0)
  problems = pick(args.problems, run.data.eval if run is not None else None)
  if not problems:
    raise SystemExit("error: --problems is required (the model is not a training workdir "
                     "with data.eval)")
  max_problems = pick(args.max_problems, int(run.eval.max_problems) if run is not None else 0)
  return settings, seed, problems, max_problems


def main(argv=None):
  args = parse_args(argv)
  mesh = sharding.make_mesh({"fsdp": -1})
  run = run_config(args.model)
  options, encode = {}, {}
  if run is not None:  # decode and prompt exactly as the run's held-out evaluation
    options = dict(attention=run.model.attention, scan_layers=run.model.scan_layers)
    encode = dict(system=run.data.system_prompt or None,
                  chat_template_kwargs=dict(run.data.chat_template_kwargs),
                  max_prompt_length=int(run.data.max_prompt_length))
  try:
    model, tokenizer = load_policy(args.model, dtype=args.dtype or (run.model.dtype if run else None),
                                   mesh=mesh, step=args.step, options=options)
  except (CheckpointError, FileNotFoundError) as e:
    raise SystemExit(f"error: {e}") from None
  rl_step = _checkpoint_step(args.model, args.step) if run is not None else 0
  settings, seed, spec, max_problems = resolve(args, run, rl_step)
  problems, ids = prompts.encode_problems(tokenizer, datasets.load_dataset(spec), **encode)
  if max_problems:
    problems, ids = problems[:max_problems], ids[:max_problems]
  stop = tuple(run.rollout.stop_tokens) if run is not None else ()
  sampler = Sampler(model, stop_ids=prompts.stop_token_ids(tokenizer, stop),
                    pad_id=tokenizer.pad_token_id or 0, mesh=mesh)
  print(f"{args.model}{f' (RL step {rl_step})' if run is not None else ''}: "
        f"{len(problems)} problems x {settings.k} samples, {settings}, seed {seed}")
  t0 = time.perf_counter()
  with Evaluator(workers=args.workers or None, timeout_s=settings.timeout_s,
                 memory_mb=settings.memory_mb) as evaluator, sharding.use_mesh(mesh):
    metrics, table, samples, results = heldout.evaluate_policy(
        sampler, nnx.state(model), evaluator, tokenizer, problems, ids, settings,
        rng=heldout.sample_key(seed, rl_step), batch_prompts=args.batch_prompts)
  seconds = time.perf_counter() - t0
  write_outputs(args.out_dir, samples, results)
  print(f"{len(problems)} problems x {settings.k} samples in {seconds:.1f}s; "
        f"pass@1 (avg@{settings.k}) by platform x difficulty, %:")
  print(heldout.format_table(table))
  print(f"overall pass@1: {100 * metrics['heldout/pass@1']:.2f}%  "
        f"(samples and results in {args.out_dir}/)")


def _checkpoint_step(path: str, step: int | None) -> int:
  if step is not None:
    return step
  ckpt = checkpoint.Checkpointer(os.path.join(path, "checkpoints"), read_only=True)
  latest = ckpt.latest_step()
  ckpt.close()
  return int(latest or 0)


def write_outputs(out_dir: str, samples, results) -> None:
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "samples.jsonl"), "w") as f:
    for s in samples:
      f.write(json.dumps(s) + "\n")
  with open(os.path.join(out_dir, "results.jsonl"), "w") as f:
    for r in results:
      f.write(json.dumps({k: v for k, v in r.to_json().items()
                          if k in ("id", "sample", "verdict", "passed", "tests_passed",
                                   "tests_total", "seconds", "detail")}) + "\n")


if __name__ == "__main__":
  main()
