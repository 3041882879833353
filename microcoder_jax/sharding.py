"""Device mesh, logical axis rules and sharded state creation.

Every parameter and key activation carries *logical* axis names (`embed`,
`heads`, `act_batch`, ...). One rules table maps them to the mesh axes
`("data", "fsdp", "tensor")`, in the manner of maxtext's logical axis rules:

  logical      mesh              logical        mesh
  vocab        tensor            act_batch      (data, fsdp)
  embed        fsdp              act_heads      tensor
  heads        tensor            act_kv_heads   tensor
  kv_heads     tensor            act_mlp        tensor
  mlp          tensor            act_vocab      tensor
  head_dim     -                 cache_batch    (data, fsdp)
  norm         -                 cache_kv_heads tensor
  layers       -                 (stacked layers, scanned over)

A mesh axis that does not divide a dimension is dropped for that array (it is
replicated along that axis instead); `assert_params_sufficiently_sharded`
catches large parameters that end up fully replicated by accident.
"""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")

LogicalRules = tuple[tuple[str, Any], ...]

DEFAULT_RULES: LogicalRules = (
    # parameters
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("norm", None),
    ("layers", None),  # stacked (scanned) layers: never sharded
    # activations
    ("act_batch", ("data", "fsdp")),
    ("act_length", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_kv_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    # KV cache [layer, batch, length, kv_heads, head_dim]
    ("cache_layers", None),
    ("cache_batch", ("data", "fsdp")),
    ("cache_length", None),
    ("cache_kv_heads", "tensor"),
)


class MeshError(ValueError):
  """A mesh shape that does not fit the available devices."""


# --------------------------------------------------------------------- mesh
def mesh_shape(axes: Mapping[str, int], num_devices: int) -> tuple[int, ...]:
  """Resolves `{"data": 1, "fsdp": -1, "tensor": 2}` against a device count.

  At most one axis may be -1 ("the rest"). Missing axes default to 1.
  """
  unknown = set(axes) - set(MESH_AXES)
  if unknown:
    raise MeshError(f"unknown mesh axes {sorted(unknown)}; use {MESH_AXES}")
  sizes = [int(axes.get(name, 1)) for name in MESH_AXES]
  free = [i for i, s in enumerate(sizes) if s == -1]
  if len(free) > 1:
    raise MeshError(f"mesh {dict(axes)}: only one axis may be -1")
  if any(s == 0 or s < -1 for s in sizes):
    raise MeshError(f"mesh {dict(axes)}: axis sizes must be positive or -1")
  fixed = math.prod(s for s in sizes if s != -1)
  if free:
    if num_devices % fixed:
      raise MeshError(
          f"mesh {dict(axes)}: fixed axes multiply to {fixed}, which does not "
          f"divide the {num_devices} available devices")
    sizes[free[0]] = num_devices // fixed
  if math.prod(sizes) != num_devices:
    raise MeshError(
        f"mesh {dict(axes)} needs {math.prod(sizes)} devices but "
        f"{num_devices} are available")
  return tuple(sizes)


def make_mesh(axes: Mapping[str, int] | None = None,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A `("data", "fsdp", "tensor")` mesh; default: all devices on `fsdp`."""
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(axes or {"fsdp": -1}, len(devices))
  try:
    from jax.experimental import mesh_utils  # pylint: disable=g-import-not-at-top
    grid = mesh_utils.create_device_mesh(shape, devices=devices)
  except (ValueError, NotImplementedError, AssertionError):
    grid = np.asarray(devices).reshape(shape)
  return Mesh(grid, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


# XLA:CPU spends most of a program's compile time in LLVM. Its O1 pipeline
# compiles the trainer's programs (update, recompute, sampler) 13-20% faster
# and runs them as fast on the CPU demo (benchmarks/README.md, "Compile
# time"); other platforms keep XLA's defaults.
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def compiler_options(mesh: Mesh | None = None) -> dict[str, Any] | None:
  """`jax.jit(compiler_options=...)` for programs on `mesh` (default: the
  default devices): `CPU_COMPILER_OPTIONS` on CPU, else None."""
  device = mesh.devices.flat[0] if mesh is not None else jax.devices()[0]
  return dict(CPU_COMPILER_OPTIONS) if device.platform == "cpu" else None


# ------------------------------------------------------------ logical rules
def logical_to_spec(logical_axes: Sequence[str | None], *,
                    rules: LogicalRules = DEFAULT_RULES,
                    mesh: Mesh | None = None,
                    shape: Sequence[int] | None = None) -> P:
  """Maps logical axis names to a PartitionSpec.

  With `mesh` and `shape`, mesh axes that do not divide their dimension (or
  that an earlier dimension already uses) are dropped.
  """
  table = dict(rules)
  used: set[str] = set()
  out = []
  for i, name in enumerate(logical_axes):
    if name is not None and name not in table:
      raise KeyError(f"logical axis {name!r} has no rule; known: {sorted(table)}")
    target = table.get(name) if name is not None else None
    mesh_axes = [] if target is None else (
        [target] if isinstance(target, str) else list(target))
    kept = []
    for ax in mesh_axes:
      if ax in used:
        continue
      if mesh is not None and shape is not None:
        size = math.prod(mesh.shape[a] for a in kept + [ax])
        if shape[i] % size:
          continue
      kept.append(ax)
    used.update(kept)
    out.append(None if not kept else kept[0] if len(kept) == 1 else tuple(kept))
  while out and out[-1] is None:
    out.pop()
  return P(*out)


class _Context(threading.local):
  mesh: Mesh | None = None
  rules: LogicalRules = DEFAULT_RULES


_CTX = _Context()


@contextlib.contextmanager
def use_mesh(mesh: Mesh, rules: LogicalRules = DEFAULT_RULES):
  """Activates `mesh` and `rules` for `constrain` (trace-time)."""
  prev = (_CTX.mesh, _CTX.rules)
  _CTX.mesh, _CTX.rules = mesh, rules
  try:
    yield mesh
  finally:
    _CTX.mesh, _CTX.rules = prev


def active_mesh() -> Mesh | None:
  return _CTX.mesh


def active_rules() -> LogicalRules:
  return _CTX.rules


def constrain(x: jax.Array, logical_axes: Sequence[str | None]) -> jax.Array:
  """`with_sharding_constraint` by logical names; a no-op without a mesh."""
  mesh = _CTX.mesh
  if mesh is None or mesh.size == 1:
    return x
  spec = logical_to_spec(logical_axes, rules=_CTX.rules, mesh=mesh, shape=x.shape)
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


# ---------------------------------------------------------- sharded state
def _is_var(x) -> bool:
  return isinstance(x, nnx.Variable)


def state_shardings(state: nnx.State, mesh: Mesh,
                    rules: LogicalRules = DEFAULT_RULES) -> nnx.State:
  """NamedShardings for an (abstract) nnx.State, from `logical_axes` metadata.

  Variables without `logical_axes` are replicated.
  """

  def one(var):
    axes = getattr(var, "logical_axes", None)
    shape = var.get_value().shape
    spec = P() if not axes else logical_to_spec(axes, rules=rules, mesh=mesh,
                                                shape=shape)
    return var.replace(NamedSharding(mesh, spec))

  return jax.tree.map(one, state, is_leaf=_is_var)


def partition_specs(state: nnx.State, mesh: Mesh,
                    rules: LogicalRules = DEFAULT_RULES) -> dict[str, P]:
  """`{"layers/attn/wq_DxNxH": PartitionSpec(...), ...}` for golden tables."""
  shardings = state_shardings(state, mesh, rules)
  return {"/".join(map(str, path)): var.get_value().spec
          for path, var in nnx.to_flat_state(shardings)}


def create_sharded(make_module: Callable[[], nnx.Module], mesh: Mesh,
                   rules: LogicalRules = DEFAULT_RULES) -> nnx.Module:
  """Builds a module directly into sharded device memory.

  `jax.eval_shape` gives the abstract state; its logical axes give the
  shardings; a jitted constructor with those `out_shardings` materialises each
  shard on its device, so no full copy is ever assembled on one host.
  """
  abstract = nnx.eval_shape(make_module)
  graphdef, abs_state = nnx.split(abstract)
  shardings = state_shardings(abs_state, mesh, rules)

  def init():
    return nnx.state(make_module())

  init = jax.jit(init, out_shardings=shardings)
  with use_mesh(mesh, rules):
    state = init()
  return nnx.merge(graphdef, state)


def assert_params_sufficiently_sharded(state: nnx.State, mesh: Mesh, *,
                                       min_size: int = 2**20) -> None:
  """Fails if a parameter of at least `min_size` elements is fully replicated.

  Silent replication of a large matrix is the usual way a sharded run runs out
  of memory; this check names every offender.
  """
  if mesh.size == 1:
    return
  offenders = []
  for path, var in nnx.to_flat_state(state):
    value = var.get_value()
    if not hasattr(value, "sharding") or math.prod(value.shape) < min_size:
      continue
    if value.sharding.is_fully_replicated:
      offenders.append(f"{'/'.join(map(str, path))} {tuple(value.shape)}")
  if offenders:
    raise AssertionError(
        f"parameters fully replicated over a {dict(mesh.shape)} mesh: "
        + ", ".join(offenders))
