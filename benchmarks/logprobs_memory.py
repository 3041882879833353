r"""Peak temporary memory and time of chunked vs plain `token_logprobs`.

Memory is XLA's compiled memory analysis (`temp_size_in_bytes`: everything
the executable allocates besides its arguments and outputs), so the full size
(N=1, T=4096, D=2048, V=151,936, float32) is compiled but never run. Time is
measured at a smaller T on real arrays over `--repeats` runs, plain and
chunked interleaved so that background load hits both alike; the time ratio
is reported as the median over back-to-back pairs and as the ratio of minima.
"Fwd+bwd" is `value_and_grad` of Σ logp w.r.t. hidden and unembed.

Run from the repository root:

  python -m benchmarks.logprobs_memory
  python -m benchmarks.logprobs_memory --time_t=512 --repeats=7
  python -m benchmarks.logprobs_memory --time_t=0 --dtype=bfloat16
"""
import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from microcoder_jax import rl

_N = flags.DEFINE_integer("rows", 1, "Responses N.")
_FULL_T = flags.DEFINE_integer("full_t", 4096, "T for the memory analysis.")
_TIME_T = flags.DEFINE_integer("time_t", 256,
                               "T for the timing runs; 0 = memory only.")
_D = flags.DEFINE_integer("hidden", 2048, "Hidden size D.")
_V = flags.DEFINE_integer("vocab", 151936, "Vocabulary size V.")
_CHUNK = flags.DEFINE_integer("chunk_size", 256, "Tokens per chunk.")
_VCHUNK = flags.DEFINE_integer("vocab_chunk_size", 8192, "Vocab block.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs per function.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"],
                           "dtype of hidden and unembed.")


def _functions(chunk_size, vocab_chunk_size):
  """(forward, forward+backward) of token_logprobs at this chunking."""

  def fwd(hidden, unembed, targets, temperature):
    return rl.token_logprobs(hidden, unembed, targets,
                             temperature=temperature, chunk_size=chunk_size,
                             vocab_chunk_size=vocab_chunk_size)

  def fwd_bwd(hidden, unembed, targets, temperature):
    loss = lambda h, w: fwd(h, w, targets, temperature).sum()
    return jax.value_and_grad(loss, argnums=(0, 1))(hidden, unembed)

  return {"fwd": fwd, "fwd+bwd": fwd_bwd}


def _specs(n, t, d, v, dtype):
  return (jax.ShapeDtypeStruct((n, t, d), dtype),
          jax.ShapeDtypeStruct((d, v), dtype),
          jax.ShapeDtypeStruct((n, t), jnp.int32),
          jax.ShapeDtypeStruct((n,), jnp.float32))


def _temp_mib(fn, specs):
  analysis = jax.jit(fn).lower(*specs).compile().memory_analysis()
  return analysis.temp_size_in_bytes / 2**20


def _arrays(n, t, d, v, dtype):
  k_h, k_w, k_t = jax.random.split(jax.random.key(0), 3)
  return (jax.random.normal(k_h, (n, t, d), dtype),
          (jax.random.normal(k_w, (d, v)) * d**-0.5).astype(dtype),
          jax.random.randint(k_t, (n, t), 0, v),
          jnp.full((n,), 1.2, jnp.float32))


def _time(fns, args, repeats):
  """Wall and process-CPU seconds per function, interleaved run by run."""
  compiled = {name: jax.jit(fn) for name, fn in fns.items()}
  for fn in compiled.values():
    jax.block_until_ready(fn(*args))  # compile + warm up
  wall = {name: [] for name in compiled}
  cpu = {name: [] for name in compiled}
  for _ in range(repeats):
    for name, fn in compiled.items():
      start, start_cpu = time.perf_counter(), time.process_time()
      jax.block_until_ready(fn(*args))
      wall[name].append(time.perf_counter() - start)
      cpu[name].append(time.process_time() - start_cpu)
  return wall, cpu


def main(argv):
  del argv
  n, d, v = _N.value, _D.value, _V.value
  dtype = jnp.dtype(_DTYPE.value)
  plain = _functions(None, None)
  chunked = _functions(_CHUNK.value, _VCHUNK.value)
  print(f"device: {jax.devices()[0].device_kind}, N={n}, D={d}, V={v}, "
        f"dtype={dtype.name}, chunk_size={_CHUNK.value}, "
        f"vocab_chunk_size={_VCHUNK.value}")

  print(f"\nCompiled peak temporary memory (MiB), T={_FULL_T.value} "
        f"and T={_TIME_T.value}:")
  for t in filter(None, (_FULL_T.value, _TIME_T.value)):
    specs = _specs(n, t, d, v, dtype)
    for mode in ("fwd", "fwd+bwd"):
      p, c = _temp_mib(plain[mode], specs), _temp_mib(chunked[mode], specs)
      print(f"  T={t:5d} {mode:8s} plain {p:9.1f}  chunked {c:8.1f}  "
            f"ratio {c / p:.4f} = 1/{p / c:.1f}")

  t = _TIME_T.value
  if not t:
    return
  print(f"\nTime: wall seconds, median (min) of {_REPEATS.value} runs, "
        f"T={t}:")
  args = _arrays(n, t, d, v, dtype)
  fns = {f"{kind} {mode}": fn for kind, group in
         (("plain", plain), ("chunked", chunked)) for mode, fn in group.items()}
  wall, cpu = _time(fns, args, _REPEATS.value)
  for mode in ("fwd", "fwd+bwd"):
    p, c = wall[f"plain {mode}"], wall[f"chunked {mode}"]
    # Back-to-back pairs see the same background load: their ratio is the
    # steadiest wall-clock number on a shared machine.
    paired = statistics.median(ci / pi for pi, ci in zip(p, c))
    print(f"  {mode:8s} plain {statistics.median(p):7.3f} (min {min(p):.3f})"
          f"  chunked {statistics.median(c):7.3f} (min {min(c):.3f})"
          f"  ratio: median of pairs {paired:.2f}, of mins "
          f"{min(c) / min(p):.2f}")
  print("CPU seconds of this process (all threads), median; less sensitive "
        "to other processes:")
  for mode in ("fwd", "fwd+bwd"):
    p = statistics.median(cpu[f"plain {mode}"])
    c = statistics.median(cpu[f"chunked {mode}"])
    print(f"  {mode:8s} plain {p:7.3f}  chunked {c:7.3f}  ratio {c / p:.2f}")


if __name__ == "__main__":
  app.run(main)
