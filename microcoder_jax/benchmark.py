"""Benchmark a policy: generate with our sampler, judge, print the paper's table.

  python -m microcoder_jax.benchmark --model Qwen/Qwen3-1.7B \
      --problems lcb_v6.jsonl --samples-per-problem 4 --max-new-tokens 4096
  python -m microcoder_jax.benchmark --model runs/demo --problems bundled:synthetic_heldout

`--model` is a Hugging Face repo id, a local HF directory, or a training
workdir (its latest orbax checkpoint, or `--step N`). Writes `samples.jsonl`
and `results.jsonl` (formats in docs/formats.md) to `--out-dir`.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
from flax import nnx

from microcoder_jax import checkpoint, heldout, sharding
from microcoder_jax.data import datasets, prompts, tiny_tokenizer
from microcoder_jax.evaluator import Evaluator
from microcoder_jax.models import ModelConfig, from_pretrained, init_model
from microcoder_jax.sampling import Sampler


def load_policy(path: str, *, dtype: str | None, mesh, step: int | None = None):
  """(model, tokenizer) from a HF id/dir or a training workdir (its policy
  parameters alone; no optimizer is built)."""
  if os.path.isdir(os.path.join(path, "checkpoints")):
    with open(os.path.join(path, "model_config.json")) as f:
      cfg = ModelConfig.from_hf(json.load(f))
    if dtype:
      cfg = cfg.replace(dtype=dtype)
    graphdef, params = nnx.split(init_model(cfg, seed=0, mesh=mesh))
    ckpt = checkpoint.Checkpointer(os.path.join(path, "checkpoints"), read_only=True)
    params = ckpt.restore_params(params, step)
    ckpt.close()
    model = nnx.merge(graphdef, params)
    tok_dir = os.path.join(path, "tokenizer")
  else:
    model = from_pretrained(path, dtype=dtype, mesh=mesh)
    tok_dir = path
  import transformers  # pylint: disable=g-import-not-at-top
  try:
    tokenizer = transformers.AutoTokenizer.from_pretrained(tok_dir)
  except (OSError, ValueError):
    tokenizer = tiny_tokenizer.load()
  return model, tokenizer


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument("--model", required=True, help="HF repo id, HF directory, or training workdir")
  parser.add_argument("--problems", required=True, help="problem file, bundled:NAME, hf:DATASET[:SPLIT] or tfds:DIR")
  parser.add_argument("--samples-per-problem", type=int, default=4, help="k of avg@k pass@1")
  parser.add_argument("--max-new-tokens", type=int, default=4096, help="response budget L_max")
  parser.add_argument("--temperature", type=float, default=0.6, help="sampling temperature")
  parser.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step of a workdir (default: latest)")
  parser.add_argument("--dtype", default=None, help="compute dtype override (float32, bfloat16)")
  parser.add_argument("--batch-prompts", type=int, default=16, help="prompts per sampler call")
  parser.add_argument("--max-problems", type=int, default=0, help="judge only the first N problems (0: all)")
  parser.add_argument("--workers", type=int, default=0, help="judge worker processes (0: usable cores)")
  parser.add_argument("--timeout", type=float, default=6.0, help="CPU seconds per test")
  parser.add_argument("--out-dir", default="benchmark_out", help="where samples.jsonl and results.jsonl go")
  parser.add_argument("--seed", type=int, default=0, help="sampling seed")
  args = parser.parse_args()

  mesh = sharding.make_mesh({"fsdp": -1})
  model, tokenizer = load_policy(args.model, dtype=args.dtype, mesh=mesh, step=args.step)
  problems = datasets.load_dataset(args.problems)
  if args.max_problems:
    problems = problems[:args.max_problems]
  ids = [prompts.encode_prompt(tokenizer, p) for p in problems]
  sampler = Sampler(model, stop_ids=prompts.stop_token_ids(tokenizer),
                    pad_id=tokenizer.pad_token_id or 0, mesh=mesh)
  t0 = time.perf_counter()
  with Evaluator(workers=args.workers or None, timeout_s=args.timeout) as evaluator, \
      sharding.use_mesh(mesh):
    metrics, table, samples, results = heldout.evaluate_policy(
        sampler, nnx.state(model), evaluator, tokenizer, problems, ids,
        k=args.samples_per_problem, max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, top_p=args.top_p, rng=jax.random.key(args.seed),
        batch_prompts=args.batch_prompts)
  seconds = time.perf_counter() - t0
  os.makedirs(args.out_dir, exist_ok=True)
  with open(os.path.join(args.out_dir, "samples.jsonl"), "w") as f:
    for s in samples:
      f.write(json.dumps(s) + "\n")
  with open(os.path.join(args.out_dir, "results.jsonl"), "w") as f:
    for r in results:
      f.write(json.dumps({k: v for k, v in r.to_json().items()
                          if k in ("id", "sample", "verdict", "passed", "tests_passed",
                                   "tests_total", "seconds")}) + "\n")
  print(f"{len(problems)} problems x {args.samples_per_problem} samples in {seconds:.1f}s; "
        f"pass@1 (avg@{args.samples_per_problem}) by platform x difficulty, %:")
  print(heldout.format_table(table))
  print(f"overall pass@1: {100 * metrics['heldout/pass@1']:.2f}%  "
        f"(samples and results in {args.out_dir}/)")


if __name__ == "__main__":
  main()
