"""Paper-scale memory and compile time, ahead of time, on fake CPU devices.

    python benchmarks/scale_aot.py                          # every row + targets
    python benchmarks/scale_aot.py --rows update_1p7b,sampler_1p7b
    python benchmarks/scale_aot.py --attention plain --remat none   # for comparison

Compiles (never runs) the programs the trainer runs, at the paper's shapes,
for 8 or 32 fake CPU devices, with the trainer's own jit boundaries and
shardings: the update (`update.jit_update_step`), the old-policy/reference
log-prob recompute (`update.jit_recompute`) and the sampler
(`sampling.Sampler`). Parameters are float32 (the trainer's master copy),
compute bfloat16. One table row per program: per-device argument / temporary /
output / total GiB from XLA's `memory_analysis()` (total = arguments +
temporaries + outputs - donated aliases), the hand estimate of
`microcoder_jax.memory` (docs/scaling.md) and the accelerators it fits. The
last line is `targets_met=<k>/<n>` over the rows that carry a target, plus the
compile-time ratio of the 28-layer update to the 4-layer one.

XLA:CPU's buffer assignment is not TPU's or GPU's; treat the figures as the
program's working set, to be checked on the real accelerator.
"""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=32").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # pylint: disable=g-import-not-at-top,wrong-import-position
import dataclasses
import json
import time

import jax

from microcoder_jax import cli, memory, sharding
from microcoder_jax.models import get_preset

GIB = 2**30
ACCELERATORS = ((16, "v5e"), (32, "v4"), (80, "H100"), (95, "v5p"))


@dataclasses.dataclass(frozen=True)
class Row:
  name: str
  program: str          # update | recompute | sampler
  preset: str
  devices: int
  rows: int             # rows in the program's batch (mini-batch, rollout, sampler batch)
  micro: int            # micro-batch rows (update, recompute)
  prompt: int
  response: int
  target_gib: float | None = None
  num_layers: int | None = None  # override (compile-time comparison)


ROWS = (
    Row("update_1p7b", "update", "qwen3_1p7b", 8, 256, 8, 2048, 8192, 14.0),
    Row("recompute_1p7b", "recompute", "qwen3_1p7b", 8, 512, 8, 2048, 8192, 14.0),
    Row("sampler_1p7b", "sampler", "qwen3_1p7b", 8, 64, 0, 2048, 8192, 14.0),
    Row("update_ds8b", "update", "ds_r1_distill_llama_8b", 32, 256, 32, 2048, 16384, 60.0),
    Row("update_1p7b_4layers", "update", "qwen3_1p7b", 8, 256, 8, 2048, 8192, None, 4),
)
COMPILE_TARGET = 2.0  # 28-layer update compile <= 2x the 4-layer one


def _mesh(devices: int):
  return sharding.make_mesh({"fsdp": devices}, devices=jax.devices()[:devices])


def measure(row: Row, *, attention: str, remat: str, logprob_chunk: int,
            num_samples: int = 8) -> dict:
  """Compiles one row; its per-device memory beside the hand estimate."""
  mesh = _mesh(row.devices)
  overrides = dict(param_dtype="float32", dtype="bfloat16", attention=attention, remat=remat)
  if row.num_layers:
    overrides["num_layers"] = row.num_layers
  cfg = get_preset(row.preset, **overrides)
  shards = dict(param_shards=row.devices, batch_shards=row.devices)
  t0 = time.perf_counter()
  if row.program == "update":
    lowered = memory.lower_update(cfg, mesh, rows=row.rows, micro_rows=row.micro,
                                  prompt=row.prompt, response=row.response,
                                  logprob_chunk=logprob_chunk)
    estimate = memory.update(cfg, micro_rows=row.micro, prompt=row.prompt,
                             response=row.response, logprob_chunk=logprob_chunk, **shards)
  elif row.program == "recompute":
    lowered = memory.lower_recompute(cfg, mesh, rows=row.rows, micro_rows=row.micro,
                                     prompt=row.prompt, response=row.response,
                                     logprob_chunk=logprob_chunk)
    estimate = memory.recompute(cfg, rows=row.rows, micro_rows=row.micro,
                                prompt=row.prompt, response=row.response,
                                logprob_chunk=logprob_chunk, **shards)
  else:
    lowered = memory.lower_sampler(cfg, mesh, rows=row.rows, prompt=row.prompt,
                                   num_samples=num_samples,
                                   new_tokens=row.response)
    estimate = memory.sampler(cfg, rows=row.rows, prompt=row.prompt,
                              new_tokens=row.response, **shards)
  compiled = lowered.compile()
  seconds = time.perf_counter() - t0
  m = {k: v / GIB for k, v in memory.compiled_bytes(compiled).items()}
  return dict(row=row.name, program=row.program, preset=row.preset, devices=row.devices,
              rows=row.rows, micro=row.micro, prompt=row.prompt, response=row.response,
              compile_s=seconds, args_gib=m["args"], temp_gib=m["temp"], out_gib=m["out"],
              total_gib=m["total"], estimate_gib=estimate.total / GIB,
              estimate_terms={k: v / GIB for k, v in estimate.terms.items()},
              target_gib=row.target_gib,
              fits=[name for gib, name in ACCELERATORS if m["total"] <= gib])


HEADER = ("| row | program | preset | devices | rows (micro) | prompt + response | attention "
          "| remat | compile s | args GiB | temp GiB | total GiB | estimate GiB | target | fits |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def format_row(r: dict, attention: str, remat: str) -> str:
  target = "-" if r["target_gib"] is None else (
      f"≤ {r['target_gib']:g} {'met' if r['total_gib'] <= r['target_gib'] else 'MISSED'}")
  micro = f" ({r['micro']})" if r["micro"] else ""
  return (f"| {r['row']} | {r['program']} | {r['preset']} | {r['devices']} | {r['rows']}{micro} "
          f"| {r['prompt']} + {r['response']} | {attention} | {remat} | {r['compile_s']:.1f} "
          f"| {r['args_gib']:.2f} | {r['temp_gib']:.2f} | {r['total_gib']:.2f} "
          f"| {r['estimate_gib']:.2f} | {target} "
          f"| {', '.join(r['fits']) or 'none'} |")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   formatter_class=cli.HelpFormatter)
  parser.add_argument("--rows", default=",".join(r.name for r in ROWS),
                      help=f"comma-separated row names, of {', '.join(r.name for r in ROWS)} "
                           "(default: all)")
  parser.add_argument("--attention", default="blockwise",
                      help="attention backend on the fake CPU devices (default: blockwise, "
                           "what `auto` picks at these sizes on CPU)")
  parser.add_argument("--remat", default="full", help="remat policy")
  parser.add_argument("--logprob-chunk", type=int, default=1024,
                      help="tokens per chunk of the chunked log-probs")
  parser.add_argument("--num-samples", type=int, default=8,
                      help="G: samples per prompt in the sampler rows (one prefill per prompt)")
  parser.add_argument("--json", default="", help="also write the rows to this JSON file")
  return parser


def main(argv=None):
  parser = build_parser()
  args = parser.parse_args(argv)
  wanted = args.rows.split(",")
  unknown = set(wanted) - {r.name for r in ROWS}
  if unknown:
    parser.error(f"unknown rows {sorted(unknown)}; known: {[r.name for r in ROWS]}")
  print(HEADER, flush=True)
  results = {}
  for row in ROWS:
    if row.name in wanted:
      results[row.name] = measure(row, attention=args.attention, remat=args.remat,
                                  num_samples=args.num_samples,
                                  logprob_chunk=args.logprob_chunk)
      print(format_row(results[row.name], args.attention, args.remat), flush=True)
  met, total = 0, 0
  for r in results.values():
    if r["target_gib"] is not None:
      total += 1
      met += r["total_gib"] <= r["target_gib"]
  if "update_1p7b" in results and "update_1p7b_4layers" in results:
    ratio = results["update_1p7b"]["compile_s"] / results["update_1p7b_4layers"]["compile_s"]
    total += 1
    met += ratio <= COMPILE_TARGET
    print(f"\ncompile: 28 layers {results['update_1p7b']['compile_s']:.1f} s, "
          f"4 layers {results['update_1p7b_4layers']['compile_s']:.1f} s, "
          f"ratio {ratio:.2f} (target ≤ {COMPILE_TARGET:g})")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(dict(attention=args.attention, remat=args.remat, rows=results), f, indent=2)
  print(f"targets_met={met}/{total}")


if __name__ == "__main__":
  main()
