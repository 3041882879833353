"""Transformer layers: RMSNorm, RoPE, GQA attention with a static KV cache, SwiGLU.

Shapes in names: B batch, T query length, S key slots, D model width, N query
heads, K key/value heads, G = N // K, H head dim, F MLP width, V vocabulary,
L layers. Every parameter carries `logical_axes` metadata that
`microcoder_jax.sharding` maps to mesh axes.
"""

from __future__ import annotations

import functools
import math

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from microcoder_jax import sharding
from microcoder_jax.models import attention as attention_lib
from microcoder_jax.models.config import ModelConfig

# ------------------------------------------------------------- projections
# Remat policies that save dot outputs: they must see plain dot_generals.
_DOT_POLICIES = ("dots_saveable", "dots_with_no_batch_dims_saveable")


def dense(spec: str, x, w, cfg: ModelConfig):
  """`jnp.einsum(spec, x, w)` for a weight w, differentiated by `_dense`.

  JAX transposes y = x·W into dW = transpose(dyᵀ·x); XLA:CPU lays that
  out as a transposed copy of dy fused into the elementwise op producing
  it (the SwiGLU backward), 27% of the CPU demo's update. `_dense` forms
  dW as one dot whose only transposed operand is the smaller of x and dy:
  the demo's update step is 0.79 -> 0.56 s. Same values. Under a remat
  policy that saves dots this is the plain einsum: the policy cannot see
  into a custom VJP.
  """
  if cfg.remat in _DOT_POLICIES:
    return jnp.einsum(spec, x, w)
  return _dense(spec, x, w)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _dense(spec, x, w):
  return jnp.einsum(spec, x, w)


def _dense_fwd(spec, x, w):
  return jnp.einsum(spec, x, w), (x, w)


def _dense_bwd(spec, res, dy):
  x, w = res
  x_spec, rest = spec.split(",")
  w_spec, y_spec = rest.split("->")
  # The dot transposes one operand in memory: let it be the smaller one.
  if x.size > dy.size:
    dw = jnp.einsum(f"{y_spec},{x_spec}->{w_spec}", dy, x)
  else:
    dw = jnp.einsum(f"{x_spec},{y_spec}->{w_spec}", x, dy)
  return jnp.einsum(f"{y_spec},{w_spec}->{x_spec}", dy, w), dw


_dense.defvjp(_dense_fwd, _dense_bwd)


def _param(rngs: nnx.Rngs | None, shape, axes, dtype, init="normal"):
  if init == "normal":
    value = 0.02 * jax.random.normal(rngs.params(), shape, jnp.float32)
  elif init == "ones":
    value = jnp.ones(shape, jnp.float32)
  else:
    value = jnp.zeros(shape, jnp.float32)
  return nnx.Param(value.astype(dtype), logical_axes=axes)


class RMSNorm(nnx.Module):
  """y = w ⊙ x / sqrt(mean(x²) + eps), normalised in float32 (as HF does)."""

  def __init__(self, dim: int, eps: float, dtype, *, rngs: nnx.Rngs | None = None):
    del rngs
    self.scale = _param(None, (dim,), ("norm",), dtype, init="ones")
    self.eps = eps

  def __call__(self, x):
    dtype = x.dtype
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return self.scale[...].astype(dtype) * x32.astype(dtype)


# ---------------------------------------------------------------------- RoPE
def rope_inv_freq(cfg: ModelConfig) -> np.ndarray:
  """Inverse frequencies θ^(-2i/H), with llama3 or YaRN scaling when configured."""
  h = cfg.head_dim
  inv = 1.0 / (cfg.rope_theta ** (np.arange(0, h, 2, dtype=np.float64) / h))
  sc = cfg.rope_scaling_dict
  if sc and sc["rope_type"] == "llama3":
    factor, lo, hi = sc["factor"], sc["low_freq_factor"], sc["high_freq_factor"]
    old_len = sc["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > old_len / lo, inv / factor, inv)
    smooth = (old_len / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_len / hi) & (wavelen <= old_len / lo)
    inv = np.where(medium, smoothed, scaled)
  elif sc and sc["rope_type"] == "yarn":
    inv = _yarn_inv_freq(cfg, sc, inv)
  return inv.astype(np.float32)


def _yarn_factor(cfg: ModelConfig, sc) -> float:
  # A missing factor is the ratio of the extended to the original length.
  return sc["factor"] or cfg.max_position_embeddings / sc["original_max_position_embeddings"]


def _yarn_inv_freq(cfg: ModelConfig, sc, inv):
  """YaRN ("NTK-by-parts"): frequency pairs that turn more than `beta_fast`
  times over the original context keep their frequency, those that turn
  fewer than `beta_slow` times are divided by `factor`, and a linear ramp
  over the pair index blends the two in between."""
  h, old_len = cfg.head_dim, sc["original_max_position_embeddings"]
  factor = _yarn_factor(cfg, sc)

  def pair_index(turns):  # fractional pair index that turns `turns` times in old_len
    return h * math.log(old_len / (turns * 2 * math.pi)) / (2 * math.log(cfg.rope_theta))

  lo, hi = pair_index(sc.get("beta_fast") or 32), pair_index(sc.get("beta_slow") or 1)
  if sc.get("truncate", True):
    lo, hi = math.floor(lo), math.ceil(hi)
  lo, hi = max(lo, 0), min(hi, h - 1)
  if lo == hi:
    hi += 0.001
  interpolated = np.clip((np.arange(h // 2, dtype=np.float64) - lo) / (hi - lo), 0, 1)
  return inv / factor * interpolated + inv * (1 - interpolated)


def _yarn_mscale(factor: float, mscale: float = 1.0) -> float:
  return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def rope_attention_scale(cfg: ModelConfig) -> float:
  """The factor YaRN applies to cos and sin (so q·k scales by its square).

  As transformers computes it: `attention_factor` when given, else
  (0.1 ln(factor) + 1), or the ratio of the `mscale` / `mscale_all_dim`
  variants when both are given. A config's `attn_factor` (the YaRN reference
  implementation's name, honoured by vLLM and SGLang) multiplies that value;
  transformers ignores `attn_factor`, so for such checkpoints our logits match
  vLLM and SGLang rather than transformers. 1.0 without YaRN.
  """
  sc = cfg.rope_scaling_dict
  if not sc or sc["rope_type"] != "yarn":
    return 1.0
  factor = _yarn_factor(cfg, sc)
  scale = sc.get("attention_factor")
  if scale is None:
    mscale, mscale_all_dim = sc.get("mscale"), sc.get("mscale_all_dim")
    if mscale and mscale_all_dim:
      scale = _yarn_mscale(factor, mscale) / _yarn_mscale(factor, mscale_all_dim)
    else:
      scale = _yarn_mscale(factor)
  return float(scale) * float(sc.get("attn_factor", 1.0))


def apply_rope(x_BxTxNxH, positions_BxT, inv_freq, scale: float = 1.0):
  """Rotary embedding, HF's rotate-half layout, computed in float32; `scale`
  multiplies cos and sin (YaRN's attention scale)."""
  freqs_BxTxH2 = positions_BxT.astype(jnp.float32)[..., None] * inv_freq
  cos = jnp.cos(freqs_BxTxH2)[:, :, None, :]
  sin = jnp.sin(freqs_BxTxH2)[:, :, None, :]
  if scale != 1.0:
    cos, sin = cos * scale, sin * scale
  x = x_BxTxNxH.astype(jnp.float32)
  x1, x2 = jnp.split(x, 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxTxNxH.dtype)


# ------------------------------------------------------------------ KV cache
@flax.struct.dataclass
class KVCache:
  """Static-shape KV cache for all layers, in the compute dtype.

  Attributes:
    k_LxBxSxKxH, v_LxBxSxKxH: keys and values per slot. 16-bit compute
      dtypes are stored as their uint16 bit patterns (`read` and
      `attention` reinterpret them), so every backend updates the cache in
      place: XLA:CPU has no bfloat16 dynamic-update-slice and would otherwise
      carry a float32 copy of the whole cache.
    mask_BxS: True where a slot holds a real (non-padding) token.
    index: next slot to write (int32 scalar); slots >= index are empty.
    tokens_B: real tokens already in the cache per row (the next RoPE
      position), kept as a counter so a decode step never scans `mask_BxS`.
    dtype: the compute dtype of keys and values (static).
  """

  k_LxBxSxKxH: jax.Array
  v_LxBxSxKxH: jax.Array
  mask_BxS: jax.Array
  index: jax.Array
  tokens_B: jax.Array
  dtype: str = flax.struct.field(pytree_node=False, default="float32")

  @classmethod
  def init(cls, cfg: ModelConfig, batch: int, max_len: int, dtype=None):
    dtype = jnp.dtype(dtype or cfg.jnp_dtype)
    shape = (cfg.num_layers, batch, max_len, cfg.num_kv_heads, cfg.head_dim)
    kv = sharding.constrain(jnp.zeros(shape, _storage_dtype(dtype)), CACHE_AXES)
    return cls(kv, kv, jnp.zeros((batch, max_len), bool),
               jnp.zeros((), jnp.int32), jnp.zeros((batch,), jnp.int32), dtype.name)

  @property
  def max_len(self) -> int:
    return self.mask_BxS.shape[1]

  @staticmethod
  def bytes_per_row(cfg: ModelConfig, max_len: int, dtype=None) -> int:
    """Device bytes one row of a cache of `max_len` slots takes (k and v)."""
    itemsize = jnp.dtype(dtype or cfg.jnp_dtype).itemsize
    return 2 * cfg.num_layers * max_len * cfg.num_kv_heads * cfg.head_dim * itemsize

  def repeat(self, times: int) -> "KVCache":
    """Each row repeated `times` times, consecutively (row b -> rows
    b*times .. b*times+times-1): one prefilled prompt serves its G samples."""
    kv = lambda x: sharding.constrain(jnp.repeat(x, times, axis=1), CACHE_AXES)
    return self.replace(k_LxBxSxKxH=kv(self.k_LxBxSxKxH), v_LxBxSxKxH=kv(self.v_LxBxSxKxH),
                        mask_BxS=jnp.repeat(self.mask_BxS, times, axis=0),
                        tokens_B=jnp.repeat(self.tokens_B, times, axis=0))

  def write(self, layer, k_BxTxKxH, v_BxTxKxH) -> "KVCache":
    """Stores one layer's new keys/values at slots [index, index + T)."""
    at = (layer, 0, self.index, 0, 0)
    store = lambda x: attention_lib.to_storage(x[None].astype(self.dtype))
    return self.replace(
        k_LxBxSxKxH=jax.lax.dynamic_update_slice(self.k_LxBxSxKxH, store(k_BxTxKxH), at),
        v_LxBxSxKxH=jax.lax.dynamic_update_slice(self.v_LxBxSxKxH, store(v_BxTxKxH), at))


def _storage_dtype(dtype):
  return jnp.dtype(jnp.uint16) if jnp.dtype(dtype).itemsize == 2 else jnp.dtype(dtype)


CACHE_AXES = ("cache_layers", "cache_batch", "cache_length", "cache_kv_heads",
              "head_dim")


# ----------------------------------------------------------------- attention
class Attention(nnx.Module):
  """GQA self-attention with optional q/k/v bias (Qwen2) and q/k norm (Qwen3).

  The score computation is `microcoder_jax.models.attention.attention` with
  the backend named by `cfg.attention`.
  """

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    d, n, k, h, pd = (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads,
                      cfg.head_dim, cfg.jnp_param_dtype)
    self.wq_DxNxH = _param(rngs, (d, n, h), ("embed", "heads", "head_dim"), pd)
    self.wk_DxKxH = _param(rngs, (d, k, h), ("embed", "kv_heads", "head_dim"), pd)
    self.wv_DxKxH = _param(rngs, (d, k, h), ("embed", "kv_heads", "head_dim"), pd)
    self.wo_NxHxD = _param(rngs, (n, h, d), ("heads", "head_dim", "embed"), pd)
    if cfg.qkv_bias:
      self.bq_NxH = _param(rngs, (n, h), ("heads", "head_dim"), pd, init="zeros")
      self.bk_KxH = _param(rngs, (k, h), ("kv_heads", "head_dim"), pd, init="zeros")
      self.bv_KxH = _param(rngs, (k, h), ("kv_heads", "head_dim"), pd, init="zeros")
    if cfg.qk_norm:
      self.q_norm = RMSNorm(h, cfg.rms_norm_eps, pd)
      self.k_norm = RMSNorm(h, cfg.rms_norm_eps, pd)
    self.cfg = cfg

  def _project(self, x_BxTxD, w, bias_name):
    out = dense("btd,dnh->btnh", x_BxTxD, w[...].astype(x_BxTxD.dtype), self.cfg)
    if self.cfg.qkv_bias:
      out = out + getattr(self, bias_name)[...].astype(out.dtype)
    return out

  def _qkv(self, x_BxTxD, positions_BxT):
    """Projected, normalised (Qwen3) and rotated q, k, v."""
    cfg = self.cfg
    q = self._project(x_BxTxD, self.wq_DxNxH, "bq_NxH")
    k = self._project(x_BxTxD, self.wk_DxKxH, "bk_KxH")
    v = self._project(x_BxTxD, self.wv_DxKxH, "bv_KxH")
    if cfg.qk_norm:
      q, k = self.q_norm(q), self.k_norm(k)
    inv_freq, scale = rope_inv_freq(cfg), rope_attention_scale(cfg)
    q = apply_rope(q, positions_BxT, inv_freq, scale)
    k = apply_rope(k, positions_BxT, inv_freq, scale)
    q = sharding.constrain(q, ("act_batch", "act_length", "act_heads", "head_dim"))
    k = sharding.constrain(k, ("act_batch", "act_length", "act_kv_heads", "head_dim"))
    return q, k, v

  def _blocks(self):
    cfg = self.cfg
    return dict(impl=cfg.attention, block_q=cfg.attention_block_q,
                block_kv=cfg.attention_block_kv)

  def _output(self, out_BxTxNxH):
    return dense("btnh,nhd->btd", out_BxTxNxH,
                 self.wo_NxHxD[...].astype(out_BxTxNxH.dtype), self.cfg)

  def __call__(self, x_BxTxD, positions_BxT, mask_BxT, layer, cache: KVCache | None):
    """Without a cache: causal attention over x. With one: writes this layer's
    keys/values at the cache index and attends over the filled slots (the
    cache's `mask_BxS` must already cover the new tokens)."""
    q, k, v = self._qkv(x_BxTxD, positions_BxT)
    if cache is None:
      out = attention_lib.attention(q, k, v, mask_BxT, **self._blocks())
    else:
      t = x_BxTxD.shape[1]
      cache = cache.write(layer, k, v)
      out = attention_lib.attention(
          q.astype(cache.dtype), cache.k_LxBxSxKxH, cache.v_LxBxSxKxH,
          cache.mask_BxS, q_offset=cache.index, kv_len=cache.index + t, layer=layer,
          **self._blocks()).astype(q.dtype)
    return self._output(out), cache

  def shared_prefix(self, x_UxSxD, pos_UxS, mask_UxP, mask_NxT):
    """Attention over U packed rows, each a prompt of P tokens followed by
    the T tokens of each of the G = N / U responses that continue it
    (S = P + G·T; `Decoder.shared_prefix_hidden`). Projections run once per
    token; a prompt attends causally over itself, and response r over
    prompt r // G and its own earlier tokens. Returns [U, S, D]."""
    (u, s), (n, t), p = pos_UxS.shape, mask_NxT.shape, mask_UxP.shape[1]
    group = n // u
    q, k, v = self._qkv(x_UxSxD, pos_UxS)
    split = lambda a: (a[:, :p], a[:, p:].reshape((n, t) + a.shape[2:]))
    (qp, qr), (kp, kr), (vp, vr) = split(q), split(k), split(v)
    out_p = attention_lib.attention(qp, kp, vp, mask_UxP, **self._blocks())
    both = lambda prompt, resp: jnp.concatenate([jnp.repeat(prompt, group, axis=0), resp], 1)
    out_r = attention_lib.attention(qr, both(kp, kr), both(vp, vr), both(mask_UxP, mask_NxT),
                                    q_offset=p, **self._blocks())
    out = jnp.concatenate([out_p, out_r.reshape((u, s - p) + out_r.shape[2:])], axis=1)
    return self._output(out)


class MLP(nnx.Module):
  """SwiGLU: down(silu(gate(x)) ⊙ up(x))."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    d, f, pd = cfg.hidden_size, cfg.intermediate_size, cfg.jnp_param_dtype
    self.gate_DxF = _param(rngs, (d, f), ("embed", "mlp"), pd)
    self.up_DxF = _param(rngs, (d, f), ("embed", "mlp"), pd)
    self.down_FxD = _param(rngs, (f, d), ("mlp", "embed"), pd)
    self.cfg = cfg

  def __call__(self, x_BxTxD):
    dt = x_BxTxD.dtype
    gate = dense("...d,df->...f", x_BxTxD, self.gate_DxF[...].astype(dt), self.cfg)
    up = dense("...d,df->...f", x_BxTxD, self.up_DxF[...].astype(dt), self.cfg)
    h_BxTxF = sharding.constrain(jax.nn.silu(gate) * up,
                                 ("act_batch", "act_length", "act_mlp"))
    return dense("...f,fd->...d", h_BxTxF, self.down_FxD[...].astype(dt), self.cfg)
