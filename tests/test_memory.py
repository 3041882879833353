"""Compiled per-device memory stays within the hand arithmetic (docs/scaling.md).

A mid-size model on 8 fake devices, compiled ahead of time and never run. The
bounds have teeth: the same program with plain attention (materialised
[T, S] scores) or without rematerialisation breaks them.
"""

import jax
import pytest

from microcoder_jax import memory, sharding
from microcoder_jax.models import ModelConfig

MID = ModelConfig(family="qwen3", vocab_size=8192, hidden_size=512, num_layers=4,
                  num_heads=8, num_kv_heads=4, head_dim=64, intermediate_size=1024,
                  param_dtype="float32", dtype="bfloat16")
SHAPE = dict(prompt=512, response=1536)
SLACK = 1.5  # XLA's buffer assignment vs the arithmetic's peak


@pytest.fixture(scope="module")
def mesh():
  return sharding.make_mesh({"fsdp": 8}, devices=jax.devices()[:8])


def _update_total(mesh, **options):
  lowered = memory.lower_update(MID.replace(**options), mesh, rows=64, micro_rows=8,
                                logprob_chunk=256, **SHAPE)
  return memory.compiled_bytes(lowered.compile())["total"]


def test_update_within_the_arithmetic_and_regressions_are_caught(mesh):
  bound = SLACK * memory.update(MID.replace(attention="blockwise", remat="full"),
                                param_shards=8, batch_shards=8, micro_rows=8,
                                logprob_chunk=256, **SHAPE).total
  assert _update_total(mesh, attention="blockwise", remat="full") <= bound
  assert _update_total(mesh, attention="plain", remat="full") > bound      # T x S scores
  assert _update_total(mesh, attention="blockwise", remat="none") > bound  # no remat


def test_recompute_memory_does_not_grow_with_the_rollout(mesh):
  cfg = MID.replace(attention="blockwise")
  totals = {}
  for rows in (64, 512):
    lowered = memory.lower_recompute(cfg, mesh, rows=rows, micro_rows=8, logprob_chunk=256,
                                     **SHAPE)
    totals[rows] = memory.compiled_bytes(lowered.compile())
  assert totals[512]["temp"] <= 1.05 * totals[64]["temp"]
  bound = SLACK * memory.recompute(cfg, param_shards=8, batch_shards=8, rows=512,
                                   micro_rows=8, logprob_chunk=256, **SHAPE).total
  assert totals[512]["total"] <= bound


def test_sampler_within_the_arithmetic(mesh):
  cfg = MID.replace(attention="blockwise")
  lowered = memory.lower_sampler(cfg, mesh, rows=32, prompt=512, new_tokens=1536)
  total = memory.compiled_bytes(lowered.compile())["total"]
  estimate = memory.sampler(cfg, param_shards=8, batch_shards=8, rows=32, prompt=512,
                            new_tokens=1536)
  assert total <= SLACK * estimate.total
  # The KV cache, the dominant term, is held once (not copied per step or layer).
  assert total < estimate.total + estimate.terms["kv cache"]
