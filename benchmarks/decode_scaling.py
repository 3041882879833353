"""Per-token decode time against KV-cache fill: a step at fill i should cost O(i).

    python benchmarks/decode_scaling.py                  # auto (blockwise) vs plain
    python benchmarks/decode_scaling.py --repeats 5 --steps 16

A small model whose decode is attention-bound (4 layers, width 256, 4 KV
heads, batch 32, cache capacity 8192, float32 on CPU). The cache is filled
directly with random keys/values to 10%, 50% and 100% (minus the timed
steps), then `--steps` decode steps run as one jitted loop; the figure is
wall seconds per token, median of `--repeats`. The blockwise kernel visits only
the filled key blocks; plain attention reads the whole cache every step.
Last line: `ratio_10_vs_100=<t(10%) / t(100%)>` for `--attention` (target ≤ 0.4).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp
import numpy as np
from flax import nnx

from microcoder_jax.models import ModelConfig, init_model

CFG = ModelConfig(family="qwen3", vocab_size=512, hidden_size=256, num_layers=4,
                  num_heads=4, num_kv_heads=4, head_dim=64, intermediate_size=512)


def filled_cache(model, batch: int, capacity: int, fill: int, seed: int = 0):
  """A cache whose first `fill` slots hold random keys/values of real tokens."""
  cache = model.init_cache(batch, capacity)
  rng = np.random.default_rng(seed)
  shape = cache.k_LxBxSxKxH.shape
  k = jnp.asarray(rng.normal(size=shape).astype(np.float32))
  v = jnp.asarray(rng.normal(size=shape).astype(np.float32))
  return cache.replace(k_LxBxSxKxH=k, v_LxBxSxKxH=v,
                       mask_BxS=jnp.arange(capacity)[None].repeat(batch, 0) < fill,
                       index=jnp.int32(fill), tokens_B=jnp.full((batch,), fill, jnp.int32))


def seconds_per_token(attention: str, fill: int, *, batch: int, capacity: int, steps: int,
                      repeats: int) -> float:
  model = init_model(CFG.replace(attention=attention), seed=0)
  graphdef, params = nnx.split(model)

  def decode(params, cache, tok_B):  # the cache is donated, as in the sampler
    m = nnx.merge(graphdef, params)

    def body(_, carry):
      cache, tok = carry
      logits, cache = m(tok[:, None], cache=cache)
      return cache, jnp.argmax(logits[:, 0], -1).astype(jnp.int32)

    return jax.lax.fori_loop(0, steps, body, (cache, tok_B))

  decode = jax.jit(decode, donate_argnums=1)
  tok = jnp.zeros((batch,), jnp.int32)
  jax.block_until_ready(decode(params, filled_cache(model, batch, capacity, fill), tok))
  times = []
  for _ in range(repeats):
    cache = jax.block_until_ready(filled_cache(model, batch, capacity, fill))
    t0 = time.perf_counter()
    jax.block_until_ready(decode(params, cache, tok))
    times.append((time.perf_counter() - t0) / steps)
  return float(np.median(times))


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument("--attention", default="auto", help="backend under test")
  parser.add_argument("--baseline", default="plain", help="reference backend")
  parser.add_argument("--batch", type=int, default=32, help="rows")
  parser.add_argument("--capacity", type=int, default=8192, help="cache slots")
  parser.add_argument("--steps", type=int, default=8, help="timed decode steps")
  parser.add_argument("--repeats", type=int, default=3, help="timed runs, median")
  return parser


def main(argv=None):
  args = build_parser().parse_args(argv)
  print(f"| backend | fill | ms/token |\n|---|---|---|")
  result = {}
  for attention in (args.attention, args.baseline):
    for frac in (0.1, 0.5, 1.0):
      fill = int(frac * args.capacity) - args.steps
      t = seconds_per_token(attention, fill, batch=args.batch, capacity=args.capacity,
                            steps=args.steps, repeats=args.repeats)
      result[(attention, frac)] = t
      print(f"| {attention} | {frac:.0%} | {1e3 * t:.1f} |", flush=True)
  for attention in (args.attention, args.baseline):
    print(f"{attention}: 10% / 100% = {result[(attention, 0.1)] / result[(attention, 1.0)]:.2f}, "
          f"50% / 100% = {result[(attention, 0.5)] / result[(attention, 1.0)]:.2f}")
  print(f"ratio_10_vs_100={result[(args.attention, 0.1)] / result[(args.attention, 1.0)]:.2f}")


if __name__ == "__main__":
  main()
