"""Hugging Face checkpoint I/O: safetensors <-> sharded NNX state.

`from_pretrained` reads `config.json` and the safetensors files (one file, or
shards listed in `model.safetensors.index.json`) tensor by tensor. Each file is
memory-mapped; each device's shard of each tensor is sliced from the map and
transferred on its own (`jax.make_array_from_callback`), so host memory never
holds two full copies of the weights, nor even one full copy of a large
tensor per device.

The HF <-> microcoder_jax names form one declarative table, `_KEYS`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import tempfile
from typing import Any, Callable, Sequence

import jax
import ml_dtypes
import numpy as np
import safetensors.numpy
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from microcoder_jax import sharding
from microcoder_jax.models.config import ModelConfig
from microcoder_jax.models.decoder import Decoder

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
  """A checkpoint file or tensor that cannot be loaded; names the culprit."""


# ------------------------------------------------------------- key table
# (HF name regex, our state path, layout). Per-layer HF tensors (the regex
# starts with `model.layers.{i}.`) are slices [i] of one stacked parameter of
# ours whose leading axis is the layer. Layouts:
#   copy      same shape
#   t         2-D transpose               [out, in] -> [in, out]
#   in_proj   [N*H, D] -> [D, N, H]       (q/k/v projections)
#   out_proj  [D, N*H] -> [N, H, D]       (o projection)
#   heads     [N*H]    -> [N, H]          (q/k/v bias)
_L = r"model\.layers\.(\d+)\."
_KEYS: tuple[tuple[str, str, str], ...] = (
    (r"model\.embed_tokens\.weight", "embed_VxD", "copy"),
    (r"lm_head\.weight", "lm_head_VxD", "copy"),
    (r"model\.norm\.weight", "final_norm/scale", "copy"),
    (_L + r"input_layernorm\.weight", "layers/input_norm/scale", "copy"),
    (_L + r"post_attention_layernorm\.weight", "layers/post_attn_norm/scale", "copy"),
    (_L + r"self_attn\.q_proj\.weight", "layers/attn/wq_DxNxH", "in_proj"),
    (_L + r"self_attn\.k_proj\.weight", "layers/attn/wk_DxKxH", "in_proj"),
    (_L + r"self_attn\.v_proj\.weight", "layers/attn/wv_DxKxH", "in_proj"),
    (_L + r"self_attn\.o_proj\.weight", "layers/attn/wo_NxHxD", "out_proj"),
    (_L + r"self_attn\.q_proj\.bias", "layers/attn/bq_NxH", "heads"),
    (_L + r"self_attn\.k_proj\.bias", "layers/attn/bk_KxH", "heads"),
    (_L + r"self_attn\.v_proj\.bias", "layers/attn/bv_KxH", "heads"),
    (_L + r"self_attn\.q_norm\.weight", "layers/attn/q_norm/scale", "copy"),
    (_L + r"self_attn\.k_norm\.weight", "layers/attn/k_norm/scale", "copy"),
    (_L + r"mlp\.gate_proj\.weight", "layers/mlp/gate_DxF", "t"),
    (_L + r"mlp\.up_proj\.weight", "layers/mlp/up_DxF", "t"),
    (_L + r"mlp\.down_proj\.weight", "layers/mlp/down_FxD", "t"),
)
_COMPILED = tuple((re.compile(rx + "$"), path, kind) for rx, path, kind in _KEYS)
_BY_PATH = {path: (rx, kind) for rx, path, kind in _KEYS}
_IGNORED = re.compile(r".*rotary_emb\.inv_freq$")


def _is_stacked(path: str) -> bool:
  return _BY_PATH[path][0].startswith(_L)


def _hf_name(path: str, layer: int | None = None) -> str:
  """Inverse of the table: our state path (and layer) -> HF tensor name."""
  rx = _BY_PATH[path][0]
  name = rx.replace(_L, "model.layers.{0}.").replace("\\.", ".")
  return name.format(layer) if _is_stacked(path) else name


def _to_ours(arr: np.ndarray, kind: str, shape: tuple[int, ...]) -> np.ndarray:
  """HF layout -> ours, as a view when possible (no copy of the mmap)."""
  if kind == "t":
    return arr.T
  if kind in ("in_proj", "out_proj"):
    return arr.T.reshape(shape)
  if kind == "heads":
    return arr.reshape(shape)
  return arr


def _to_hf(arr: np.ndarray, kind: str) -> np.ndarray:
  if kind == "t":
    return arr.T
  if kind == "in_proj":
    return arr.reshape(arr.shape[0], -1).T
  if kind == "out_proj":
    return arr.reshape(-1, arr.shape[-1]).T
  if kind == "heads":
    return arr.reshape(-1)
  return arr


def _expected_hf_shape(kind: str, shape: tuple[int, ...]) -> tuple[int, ...]:
  if kind == "t":
    return shape[::-1]
  if kind == "in_proj":
    return (shape[1] * shape[2], shape[0])
  if kind == "out_proj":
    return (shape[2], shape[0] * shape[1])
  if kind == "heads":
    return (shape[0] * shape[1],)
  return shape


# ------------------------------------------------------- safetensors read
_ST_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "BF16": ml_dtypes.bfloat16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}


def read_safetensors_lazy(path: str) -> dict[str, np.ndarray]:
  """Memory-mapped views of every tensor in a safetensors file.

  Validates the header and that every tensor lies inside the file, so a
  truncated or corrupt download fails here with the file's name.
  """
  try:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
      head = f.read(8)
      if len(head) < 8:
        raise CheckpointError(f"{path}: truncated safetensors file (no header)")
      (n,) = struct.unpack("<Q", head)
      if n > size - 8:
        raise CheckpointError(f"{path}: truncated safetensors file (header "
                              f"says {n} bytes, file has {size})")
      header = json.loads(f.read(n))
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise CheckpointError(f"{path}: corrupt safetensors header: {e}") from e
  header.pop("__metadata__", None)
  base = 8 + n
  out = {}
  for name, info in header.items():
    begin, end = info["data_offsets"]
    dtype = _ST_DTYPES.get(info["dtype"])
    if dtype is None:
      raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
    if base + end > size:
      raise CheckpointError(
          f"{path}: truncated safetensors file: tensor {name} needs bytes up to "
          f"{base + end}, file has {size}")
    shape = tuple(info["shape"])
    if (end - begin) != int(np.prod(shape)) * np.dtype(dtype).itemsize:
      raise CheckpointError(f"{path}: tensor {name} byte range does not match "
                            f"shape {shape} and dtype {info['dtype']}")
    out[name] = np.memmap(path, dtype=dtype, mode="r", offset=base + begin,
                          shape=shape) if shape and 0 not in shape else \
        np.zeros(shape, dtype)
  return out


def _checkpoint_files(directory: str) -> list[str]:
  index = os.path.join(directory, "model.safetensors.index.json")
  single = os.path.join(directory, "model.safetensors")
  if os.path.exists(index):
    try:
      with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    except (json.JSONDecodeError, KeyError) as e:
      raise CheckpointError(f"{index}: not a valid safetensors index: {e}") from e
    files = sorted(set(weight_map.values()))
  elif os.path.exists(single):
    files = ["model.safetensors"]
  else:
    raise CheckpointError(
        f"{directory}: no model.safetensors or model.safetensors.index.json")
  paths = [os.path.join(directory, f) for f in files]
  for p in paths:
    if not os.path.exists(p):
      raise CheckpointError(f"{p}: safetensors shard listed in the index is missing")
  return paths


def resolve_checkpoint(path_or_repo_id: str) -> str:
  """A local directory as is; otherwise a HF Hub repo id, downloaded."""
  if os.path.isdir(path_or_repo_id):
    return path_or_repo_id
  if os.path.exists(path_or_repo_id):
    raise CheckpointError(f"{path_or_repo_id}: expected a checkpoint directory")
  try:
    import huggingface_hub  # pylint: disable=g-import-not-at-top
    return huggingface_hub.snapshot_download(
        path_or_repo_id,
        allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.txt",
                        "*.model", "*.jinja"])
  except Exception as e:  # network, auth, missing repo: all reported the same
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    raise CheckpointError(
        f"model {path_or_repo_id!r} is neither a local directory nor reachable on "
        f"the Hugging Face Hub ({reason})") from e


def load_config(directory: str, **overrides) -> ModelConfig:
  path = os.path.join(directory, "config.json")
  try:
    with open(path) as f:
      hf = json.load(f)
  except FileNotFoundError as e:
    raise CheckpointError(f"{path}: missing config.json") from e
  except json.JSONDecodeError as e:
    raise CheckpointError(f"{path}: invalid JSON: {e}") from e
  try:
    return ModelConfig.from_hf(hf, **overrides)
  except KeyError as e:
    raise CheckpointError(f"{path}: missing field {e}") from e


# ----------------------------------------------------------------- load
def from_pretrained(path_or_repo_id: str, *, dtype: str | None = None,
                    param_dtype: str | None = None, mesh: Mesh | None = None,
                    rules: sharding.LogicalRules = sharding.DEFAULT_RULES,
                    **options) -> Decoder:
  """Loads a HF Qwen2/Qwen2.5/Qwen3/Llama checkpoint into a (sharded) Decoder.

  Args:
    path_or_repo_id: local directory, or a Hub repo id (needs a network).
    dtype: compute dtype ("float32", "bfloat16"); default: the checkpoint's.
    param_dtype: storage dtype; default: `dtype`, else the checkpoint's.
    mesh: device mesh; default: the first local device.
    rules: logical-axis rules (see `microcoder_jax.sharding`).
    **options: run-time `ModelConfig` fields, e.g. `attention="blockwise"`,
      `remat="full"`.
  """
  directory = resolve_checkpoint(path_or_repo_id)
  overrides = dict(options)
  if dtype:
    overrides["dtype"] = dtype
  if param_dtype or dtype:
    overrides["param_dtype"] = param_dtype or dtype
  cfg = load_config(directory, **overrides)
  if mesh is None:
    mesh = sharding.make_mesh({"data": 1, "fsdp": 1, "tensor": 1},
                              devices=jax.devices()[:1])
  abstract = nnx.eval_shape(lambda: Decoder(cfg, rngs=nnx.Rngs(0)))
  graphdef, abs_state = nnx.split(abstract)
  shardings = dict(nnx.to_flat_state(sharding.state_shardings(abs_state, mesh, rules)))
  targets = {"/".join(map(str, k)): (k, v) for k, v in nnx.to_flat_state(abs_state)}
  views: dict[str, dict[int | None, np.ndarray]] = {}

  for file in _checkpoint_files(directory):
    for name, arr in read_safetensors_lazy(file).items():
      key = _match(name, file, cfg)
      if key is None:
        continue
      path, kind, layer = key
      if path not in targets or (layer is not None and layer >= cfg.num_layers):
        raise CheckpointError(f"{file}: tensor {name} does not belong to a "
                              f"{cfg.family} model with this config.json")
      shape = tuple(targets[path][1].get_value().shape)
      shape = shape[1:] if layer is not None else shape
      if tuple(arr.shape) != _expected_hf_shape(kind, shape):
        raise CheckpointError(
            f"{file}: tensor {name} has shape {tuple(arr.shape)}, expected "
            f"{_expected_hf_shape(kind, shape)} from config.json")
      views.setdefault(path, {})[layer] = _to_ours(arr, kind, shape)
  missing = []
  for path in targets:
    wanted = range(cfg.num_layers) if _is_stacked(path) else [None]
    missing += [_hf_name(path, i) for i in wanted if i not in views.get(path, {})]
  if missing:
    raise CheckpointError(f"{directory}: checkpoint lacks tensors {missing[:8]}"
                          + (" ..." if len(missing) > 8 else ""))
  loaded = {}
  for path, (flat_key, var) in targets.items():
    target = shardings[flat_key].get_value()
    value = var.get_value()
    if _is_stacked(path):
      loaded[flat_key] = _device_put_stacked(views[path], value.shape, target, value.dtype)
    else:
      loaded[flat_key] = _device_put(views[path][None], target, value.dtype)
  state = nnx.from_flat_state(
      [(k, v.replace(loaded[k])) for k, v in nnx.to_flat_state(abs_state)])
  return nnx.merge(graphdef, state)


def _match(name: str, file: str, cfg: ModelConfig):
  """(our path, layout, layer or None) for a HF tensor name; None to skip it."""
  for rx, path, kind in _COMPILED:
    m = rx.match(name)
    if m:
      if path == "lm_head_VxD" and cfg.tie_word_embeddings:
        return None  # tied checkpoints sometimes store a copy; ignore it
      return path, kind, (int(m.group(1)) if m.groups() else None)
  if _IGNORED.match(name):
    return None
  raise CheckpointError(f"{file}: unexpected tensor {name} for a {cfg.family} model")


def _device_put(view: np.ndarray, target: NamedSharding, dtype) -> jax.Array:
  """Transfers each device's slice on its own."""
  def shard(index):
    return np.ascontiguousarray(view[index]).astype(dtype)
  return jax.make_array_from_callback(view.shape, target, shard)


def _device_put_stacked(per_layer: dict[int, np.ndarray], shape, target: NamedSharding,
                        dtype) -> jax.Array:
  """Stacks per-layer views into one [L, ...] array, each device's slice on its own."""
  def shard(index):
    layers = range(shape[0])[index[0]]
    return np.stack([np.asarray(per_layer[i][index[1:]]).astype(dtype) for i in layers])
  return jax.make_array_from_callback(tuple(shape), target, shard)


# ----------------------------------------------------------------- save
def save_pretrained(model: Decoder, path: str, *, tokenizer: Any = None,
                    max_shard_bytes: int = 4 << 30, dtype: str | None = None,
                    stop_ids: Sequence[int] = ()) -> None:
  """Writes `config.json` + safetensors that transformers and vLLM load.

  `stop_ids` (the sampler's stop tokens: EOS and the chat end marker) become
  `eos_token_id` in `config.json` and `generation_config.json`, so
  `generate` and vLLM stop where the trained policy stops. Files are
  readable by everyone (0644, directory 0755).

  Shards are planned from shapes, then gathered and written one file at a
  time, so host memory holds at most one file's tensors. Files go into a
  temporary directory beside `path` and are moved into place, so an
  interrupted export never leaves a half-written checkpoint. Every process
  takes part in the gathers; only process 0 writes.
  """
  cfg = model.cfg if dtype is None else model.cfg.replace(param_dtype=dtype, dtype=dtype)
  np_dtype = np.dtype(cfg.jnp_param_dtype)
  plan: list[list[tuple[str, str, Callable[[], jax.Array]]]] = [[]]
  size = 0
  for key, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
    ours = "/".join(map(str, key))
    kind, stacked, value = _BY_PATH[ours][1], _is_stacked(ours), var.get_value()
    parts = ([(_hf_name(ours, i), (lambda v=value, i=i: v[i]))
              for i in range(value.shape[0])] if stacked
             else [(_hf_name(ours), lambda v=value: v)])
    nbytes = int(np.prod(value.shape[1:] if stacked else value.shape)) * np_dtype.itemsize
    for name, get in parts:
      if size + nbytes > max_shard_bytes and plan[-1]:
        plan.append([])
        size = 0
      plan[-1].append((name, kind, get))
      size += nbytes
  writer = jax.process_index() == 0
  tmp = None
  if writer:
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
  try:
    weight_map, total = {}, 0
    for i, group in enumerate(plan):
      fname = ("model.safetensors" if len(plan) == 1 else
               f"model-{i + 1:05d}-of-{len(plan):05d}.safetensors")
      tensors = {}
      for name, kind, get in group:
        arr = _to_hf(_gather(get()), kind)
        tensors[name] = np.ascontiguousarray(arr).astype(np_dtype)
      if writer:
        safetensors.numpy.save_file(tensors, os.path.join(tmp, fname),
                                    metadata={"format": "pt"})
        for name, arr in tensors.items():
          weight_map[name] = fname
          total += arr.nbytes
      del tensors
    if not writer:
      return
    if len(plan) > 1:
      with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map},
                  f, indent=2)
    hf_config = cfg.to_hf()
    generation = {}
    if stop_ids:
      eos = [int(i) for i in stop_ids]
      generation["eos_token_id"] = hf_config["eos_token_id"] = eos[0] if len(eos) == 1 else eos
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is not None:
      generation["pad_token_id"] = hf_config["pad_token_id"] = int(pad)
    with open(os.path.join(tmp, "config.json"), "w") as f:
      json.dump(hf_config, f, indent=2)
    if generation:
      with open(os.path.join(tmp, "generation_config.json"), "w") as f:
        json.dump(generation, f, indent=2)
    if tokenizer is not None:
      tokenizer.save_pretrained(tmp)
    for root, dirs, files in os.walk(tmp):
      os.chmod(root, 0o755)
      for name in files:
        os.chmod(os.path.join(root, name), 0o644)
    if os.path.isdir(path):  # swap in whole: no file of an older export lingers
      old = tempfile.mkdtemp(prefix=".old-export-", dir=os.path.dirname(tmp))
      os.replace(path, os.path.join(old, "export"))
      os.replace(tmp, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, path)
  except BaseException:
    if tmp:
      shutil.rmtree(tmp, ignore_errors=True)
    raise


def _gather(value: jax.Array) -> np.ndarray:
  if not value.is_fully_addressable:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    value = multihost_utils.process_allgather(value, tiled=True)
  return np.asarray(jax.device_get(value))
