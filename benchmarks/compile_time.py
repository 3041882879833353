"""Compile time of the trainer's three programs at the CPU demo's shapes.

    python benchmarks/compile_time.py [--repeats 3]

Lowers and compiles (never runs) what a demo step compiles on its first
call: the update of one 32-row mini-batch (`update.jit_update_step`, prompt
sharing on, G = 8), the old-policy recompute of the second mini-batch
(`update.jit_recompute`) and the sampler (`sampling.Sampler`, 4 prompts x 8
samples), with the bundled policy's shapes (prompts padded to 96 tokens,
64-token responses). Each variant combines the layer loop (`scan_layers`
True / False) with XLA:CPU's LLVM level (the trainer's O1 from
`sharding.compiler_options`, or XLA's default O2). Prints, per variant and
program, the median over `--repeats` of lowering (tracing + StableHLO) and
of XLA compilation in seconds; the persistent compilation cache is off and
the in-memory caches are cleared between repeats.
"""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # pylint: disable=g-import-not-at-top,wrong-import-position
import json
import statistics
import time

import jax

from microcoder_jax import cli, memory, sharding
from microcoder_jax.data.datasets import BUNDLED_DIR
from microcoder_jax.models.config import ModelConfig

ROWS, MICRO, GROUP, PROMPT, RESPONSE, CHUNK = 32, 32, 8, 96, 64, 512


def demo_config(scan: bool) -> ModelConfig:
  with open(os.path.join(BUNDLED_DIR, "tiny_policy", "config.json"), encoding="utf-8") as f:
    hf = json.load(f)
  return ModelConfig.from_hf(hf, dtype="float32", param_dtype="float32", remat="none",
                             scan_layers=scan)


def lower(program: str, cfg: ModelConfig, mesh):
  if program == "update":
    return memory.lower_update(cfg, mesh, rows=ROWS, micro_rows=MICRO, prompt=PROMPT,
                               response=RESPONSE, logprob_chunk=CHUNK, prompt_group=GROUP)
  if program == "recompute":
    return memory.lower_recompute(cfg, mesh, rows=2 * ROWS, micro_rows=MICRO, prompt=PROMPT,
                                  response=RESPONSE, logprob_chunk=CHUNK, first_row=ROWS,
                                  prompt_group=GROUP)
  return memory.lower_sampler(cfg, mesh, rows=ROWS, prompt=PROMPT, new_tokens=RESPONSE,
                              num_samples=GROUP)


def time_program(program: str, cfg: ModelConfig, mesh, repeats: int) -> tuple[float, float]:
  lowering, compiling = [], []
  for _ in range(repeats):
    jax.clear_caches()
    t0 = time.perf_counter()
    lowered = lower(program, cfg, mesh)
    t1 = time.perf_counter()
    lowered.compile()
    lowering.append(t1 - t0)
    compiling.append(time.perf_counter() - t1)
  return statistics.median(lowering), statistics.median(compiling)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=cli.HelpFormatter)
  p.add_argument("--repeats", type=int, default=3, help="compiles per program and variant")
  args = p.parse_args(argv)
  jax.config.update("jax_enable_compilation_cache", False)
  mesh = sharding.make_mesh(devices=jax.devices()[:1])
  o1 = dict(sharding.CPU_COMPILER_OPTIONS)
  print("| layers | LLVM | update lower / compile | recompute lower / compile "
        "| sampler lower / compile | total |")
  print("|---|---|---:|---:|---:|---:|")
  for scan in (True, False):
    for level, options in (("O1 (trainer)", o1), ("O2 (XLA default)", {})):
      sharding.CPU_COMPILER_OPTIONS.clear()
      sharding.CPU_COMPILER_OPTIONS.update(options)
      cfg = demo_config(scan)
      cells, total = [], 0.0
      for program in ("update", "recompute", "sampler"):
        lo, co = time_program(program, cfg, mesh, args.repeats)
        cells.append(f"{lo:.2f} / {co:.2f}")
        total += lo + co
      print(f"| {'scanned' if scan else 'unrolled'} | {level} | " + " | ".join(cells)
            + f" | {total:.2f} |", flush=True)
  sharding.CPU_COMPILER_OPTIONS.clear()
  sharding.CPU_COMPILER_OPTIONS.update(o1)


if __name__ == "__main__":
  main()
