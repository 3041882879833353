"""Multi-controller JAX (TPU pods, `jax.distributed`): start-up and host data.

Every process runs the trainer on the same global arrays. Each fetches the
whole rollout (`host_array`), judges only its own contiguous share of the
rows (`own_rows`), and the verdicts are exchanged (`exchange_results`), so
every process builds the same host batch; `to_device` then places each
process's slices of it. With one process these are the identity.
"""

from __future__ import annotations

import collections
import json
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from microcoder_jax.evaluator import Result


def init_distributed() -> None:
  """Multi-controller start. TPU VMs and Slurm/MPI clusters are auto-detected;
  elsewhere set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID.
  Multi-process CPU runs (tests, loopback rehearsals) need gloo collectives."""
  env = os.environ
  kwargs = {}
  if env.get("JAX_NUM_PROCESSES"):
    kwargs = dict(num_processes=int(env["JAX_NUM_PROCESSES"]),
                  process_id=int(env["JAX_PROCESS_ID"]))
  if env.get("JAX_PLATFORMS", "").strip() == "cpu":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kwargs)


def host_array(x) -> np.ndarray:
  """The whole of `x` as NumPy on this host (gathered across processes)."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def own_rows(n: int) -> slice:
  """This process's contiguous share of `n` rows (all of them with one process)."""
  bounds = np.linspace(0, n, jax.process_count() + 1).astype(int)
  i = jax.process_index()
  return slice(int(bounds[i]), int(bounds[i + 1]))


def exchange_results(own_parts: Sequence[Sequence[Result]]) -> list[list[Result]]:
  """All processes' `own_parts` (one list per chunk), merged chunk by chunk in
  process order; `Result.sample` is renumbered per chunk as one process would."""
  if jax.process_count() == 1:
    return [list(p) for p in own_parts]
  payload = np.frombuffer(json.dumps(
      [[r.to_json() for r in part] for part in own_parts]).encode(), np.uint8)
  sizes = np.asarray(multihost_utils.process_allgather(
      np.array([payload.size], np.int64))).reshape(-1)
  buf = np.zeros(int(sizes.max()), np.uint8)
  buf[:payload.size] = payload
  gathered = np.asarray(multihost_utils.process_allgather(buf)).reshape(len(sizes), -1)
  per_process = [json.loads(bytes(row[:size])) for row, size in zip(gathered, sizes)]
  merged = []
  for c in range(len(own_parts)):
    counts, part = collections.Counter(), []
    for proc in per_process:
      for d in proc[c]:
        d["sample"], counts[d["id"]] = counts[d["id"]], counts[d["id"]] + 1
        part.append(Result(**d))
    merged.append(part)
  return merged


def to_device(tree, sharding=None):
  """Host arrays → global device arrays laid out as `sharding`.

  Every process holds the same host arrays; each places only its own
  devices' slices, so this works under multi-controller JAX too.
  """
  if sharding is None:
    return jax.tree.map(jnp.asarray, tree)
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx]),
      jax.tree.map(np.asarray, tree))
