"""Sampler throughput: microcoder_jax vs transformers' PyTorch `generate`, same CPU.

    python benchmarks/sampler_vs_hf.py [--batch 8] [--prompt 128] [--new 256] [--runs 3]

Both sides get the same random weights (a Qwen3-style model of about 100M
parameters: hidden 512, 8 layers, 8 heads / 4 KV heads, vocabulary 151,936),
the same prompts, T = 1.0, top-p 1, top-k off, and generate exactly
`--new` tokens per row (no stop token can fire). The two are timed in
alternation (ours, HF, ours, HF, ...) so machine noise hits both alike; the
median per side is reported. Our compile time is reported separately; the
last line is `ratio=<ours tokens/s ÷ HF tokens/s>`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
from flax import nnx

from microcoder_jax.models import from_pretrained
from microcoder_jax.sampling import Sampler

_NEVER = -1  # a stop id no token equals


def make_hf_model(path: str, seed: int = 0):
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  config = transformers.Qwen3Config(
      vocab_size=151936, hidden_size=512, intermediate_size=1536,
      num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
      head_dim=64, tie_word_embeddings=True, max_position_embeddings=4096)
  torch.manual_seed(seed)
  model = transformers.Qwen3ForCausalLM(config).float().eval()
  model.save_pretrained(path)
  return model


def time_ours(sampler, params, prompts, args, seed):
  t0 = time.perf_counter()
  r = sampler.sample(params, prompts, num_samples=1, max_new_tokens=args.new,
                     temperature=1.0, rng=jax.random.key(seed))
  jax.block_until_ready(r.tokens_NxT)
  assert int(np.asarray(r.lengths_N).min()) == args.new
  return time.perf_counter() - t0


def measure_compile(sampler, params, prompts, args):
  ids, mask, n = sampler.prepare_prompts(prompts)
  t0 = time.perf_counter()
  sampler.generate_fn.lower(
      params, ids, mask, np.ones(n, np.float32), np.arange(n, dtype=np.int32),
      np.zeros(args.new, np.float32),
      np.float32(1.0), jax.random.key(0), max_new_tokens=args.new, top_k=0,
      per_step=False).compile()
  return time.perf_counter() - t0


def time_hf(model, prompts, args, seed):
  import torch  # pylint: disable=g-import-not-at-top
  ids = torch.tensor(prompts, dtype=torch.long)
  torch.manual_seed(seed)
  t0 = time.perf_counter()
  with torch.no_grad():
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                         temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=args.new,
                         min_new_tokens=args.new, eos_token_id=None, pad_token_id=0)
  dt = time.perf_counter() - t0
  assert out.shape[1] == ids.shape[1] + args.new
  return dt


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument("--batch", type=int, default=8, help="prompts (rows) per generate call")
  parser.add_argument("--prompt", type=int, default=128, help="prompt tokens per row")
  parser.add_argument("--new", type=int, default=256, help="generated tokens per row")
  parser.add_argument("--runs", type=int, default=3, help="timed runs per side, median")
  return parser


def main(argv=None):
  args = build_parser().parse_args(argv)
  # torch and transformers are imported where used: `--help` needs neither.
  import torch  # pylint: disable=g-import-not-at-top

  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, torch "
        f"{torch.__version__} with {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs")
  with tempfile.TemporaryDirectory() as tmp:
    hf = make_hf_model(tmp)
    ours = from_pretrained(tmp)
  print(f"model: {sum(p.numel() for p in hf.parameters()) / 1e6:.1f}M parameters")
  rng = np.random.default_rng(0)
  prompts = rng.integers(0, 151936, (args.batch, args.prompt)).tolist()
  sampler = Sampler(ours, stop_ids=(_NEVER,))
  params = nnx.state(ours)

  compile_s = measure_compile(sampler, params, prompts, args)
  time_ours(sampler, params, prompts, args, seed=0)  # warm-up (fills jit's cache)
  ours_times, hf_times = [], []
  time_hf(hf, prompts, args, seed=0)  # warm-up
  for i in range(args.runs):
    ours_times.append(time_ours(sampler, params, prompts, args, seed=i + 1))
    hf_times.append(time_hf(hf, prompts, args, seed=i + 1))
  tokens = args.batch * args.new
  ours_tps = tokens / statistics.median(ours_times)
  hf_tps = tokens / statistics.median(hf_times)
  print(f"ours: {ours_tps:8.1f} tokens/s (median of {args.runs}: "
        f"{statistics.median(ours_times):.2f}s; runs {[round(t, 2) for t in ours_times]})")
  print(f"ours: compile {compile_s:.1f}s (lower + compile, ahead of time)")
  print(f"HF:   {hf_tps:8.1f} tokens/s (median of {args.runs}: "
        f"{statistics.median(hf_times):.2f}s; runs {[round(t, 2) for t in hf_times]})")
  print(f"ratio={ours_tps / hf_tps:.2f}")


if __name__ == "__main__":
  main()
