"""Transformer layers: RMSNorm, RoPE, GQA attention with a static KV cache, SwiGLU.

Shapes in names: B batch, T query length, S key slots, D model width, N query
heads, K key/value heads, G = N // K, H head dim, F MLP width, V vocabulary,
L layers. Every parameter carries `logical_axes` metadata that
`microcoder_jax.sharding` maps to mesh axes.
"""

from __future__ import annotations

import math

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from microcoder_jax import sharding
from microcoder_jax.models.config import ModelConfig

_NEG_INF = -1e30  # finite, so fully masked (padding) rows stay NaN-free


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
  """Inverse frequencies θ^(-2i/H), with llama3 scaling when configured."""
  h = cfg.head_dim
  inv = 1.0 / (cfg.rope_theta ** (np.arange(0, h, 2, dtype=np.float64) / h))
  sc = cfg.rope_scaling_dict
  if sc:
    factor, lo, hi = sc["factor"], sc["low_freq_factor"], sc["high_freq_factor"]
    old_len = sc["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > old_len / lo, inv / factor, inv)
    smooth = (old_len / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_len / hi) & (wavelen <= old_len / lo)
    inv = np.where(medium, smoothed, scaled)
  return inv.astype(np.float32)


def apply_rope(x_BxTxNxH, positions_BxT, inv_freq):
  """Rotary embedding, HF's rotate-half layout, computed in float32."""
  freqs_BxTxH2 = positions_BxT.astype(jnp.float32)[..., None] * inv_freq
  cos = jnp.cos(freqs_BxTxH2)[:, :, None, :]
  sin = jnp.sin(freqs_BxTxH2)[:, :, None, :]
  x = x_BxTxNxH.astype(jnp.float32)
  x1, x2 = jnp.split(x, 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxTxNxH.dtype)


# ------------------------------------------------------------------ KV cache
@flax.struct.dataclass
class KVCache:
  """Static-shape KV cache for all layers.

  Attributes:
    k_LxBxSxKxH, v_LxBxSxKxH: keys and values per slot.
    mask_BxS: True where a slot holds a real (non-padding) token.
    index: next slot to write (int32 scalar); slots >= index are empty.
  """

  k_LxBxSxKxH: jax.Array
  v_LxBxSxKxH: jax.Array
  mask_BxS: jax.Array
  index: jax.Array

  @classmethod
  def init(cls, cfg: ModelConfig, batch: int, max_len: int, dtype=None):
    dtype = dtype or cfg.jnp_dtype
    shape = (cfg.num_layers, batch, max_len, cfg.num_kv_heads, cfg.head_dim)
    kv = jnp.zeros(shape, dtype)
    kv = sharding.constrain(kv, CACHE_AXES)
    return cls(kv, kv, jnp.zeros((batch, max_len), bool),
               jnp.zeros((), jnp.int32))

  @property
  def max_len(self) -> int:
    return self.mask_BxS.shape[1]

  def num_tokens_B(self):
    """Real tokens already in the cache per row (the next RoPE position)."""
    return jnp.sum(self.mask_BxS, axis=-1, dtype=jnp.int32)


CACHE_AXES = ("cache_layers", "cache_batch", "cache_length", "cache_kv_heads",
              "head_dim")


# ----------------------------------------------------------------- attention
def attend(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, allowed_BxTxS):
  """Grouped-query softmax attention in float32 with a boolean key mask."""
  b, t, n, h = q_BxTxNxH.shape
  k = k_BxSxKxH.shape[2]
  q = q_BxTxNxH.reshape(b, t, k, n // k, h)
  scores = jnp.einsum("btkgh,bskh->bkgts", q, k_BxSxKxH,
                      preferred_element_type=jnp.float32) / math.sqrt(h)
  scores = jnp.where(allowed_BxTxS[:, None, None], scores, _NEG_INF)
  probs = jax.nn.softmax(scores, axis=-1).astype(v_BxSxKxH.dtype)
  out = jnp.einsum("bkgts,bskh->btkgh", probs, v_BxSxKxH)
  return out.reshape(b, t, n, h)


class Attention(nnx.Module):
  """GQA self-attention with optional q/k/v bias (Qwen2) and q/k norm (Qwen3)."""

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
    out = jnp.einsum("btd,dnh->btnh", x_BxTxD, w[...].astype(x_BxTxD.dtype))
    if self.cfg.qkv_bias:
      out = out + getattr(self, bias_name)[...].astype(out.dtype)
    return out

  def __call__(self, x_BxTxD, positions_BxT, mask_BxT, layer: int,
               cache: KVCache | None):
    q = self._project(x_BxTxD, self.wq_DxNxH, "bq_NxH")
    k = self._project(x_BxTxD, self.wk_DxKxH, "bk_KxH")
    v = self._project(x_BxTxD, self.wv_DxKxH, "bv_KxH")
    if self.cfg.qk_norm:
      q, k = self.q_norm(q), self.k_norm(k)
    inv_freq = rope_inv_freq(self.cfg)
    q = apply_rope(q, positions_BxT, inv_freq)
    k = apply_rope(k, positions_BxT, inv_freq)
    q = sharding.constrain(q, ("act_batch", "act_length", "act_heads", "head_dim"))
    t = x_BxTxD.shape[1]
    if cache is None:
      causal_TxT = jnp.tril(jnp.ones((t, t), bool))
      allowed = causal_TxT[None] & mask_BxT[:, None, :]
      out = attend(q, k, v, allowed)
    else:
      idx = cache.index
      k_all = jax.lax.dynamic_update_slice_in_dim(
          cache.k_LxBxSxKxH[layer], k.astype(cache.k_LxBxSxKxH.dtype), idx, axis=1)
      v_all = jax.lax.dynamic_update_slice_in_dim(
          cache.v_LxBxSxKxH[layer], v.astype(cache.v_LxBxSxKxH.dtype), idx, axis=1)
      slots_S = jnp.arange(cache.max_len)
      query_slots_T = idx + jnp.arange(t)
      allowed = (slots_S[None, None, :] <= query_slots_T[None, :, None]) \
          & cache.mask_BxS[:, None, :]
      out = attend(q, k_all.astype(q.dtype), v_all.astype(q.dtype), allowed)
      cache = cache.replace(
          k_LxBxSxKxH=cache.k_LxBxSxKxH.at[layer].set(k_all),
          v_LxBxSxKxH=cache.v_LxBxSxKxH.at[layer].set(v_all))
    out = jnp.einsum("btnh,nhd->btd", out, self.wo_NxHxD[...].astype(out.dtype))
    return out, cache


class MLP(nnx.Module):
  """SwiGLU: down(silu(gate(x)) ⊙ up(x))."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    d, f, pd = cfg.hidden_size, cfg.intermediate_size, cfg.jnp_param_dtype
    self.gate_DxF = _param(rngs, (d, f), ("embed", "mlp"), pd)
    self.up_DxF = _param(rngs, (d, f), ("embed", "mlp"), pd)
    self.down_FxD = _param(rngs, (f, d), ("mlp", "embed"), pd)

  def __call__(self, x_BxTxD):
    dt = x_BxTxD.dtype
    gate = x_BxTxD @ self.gate_DxF[...].astype(dt)
    up = x_BxTxD @ self.up_DxF[...].astype(dt)
    h_BxTxF = sharding.constrain(jax.nn.silu(gate) * up,
                                 ("act_batch", "act_length", "act_mlp"))
    return h_BxTxF @ self.down_FxD[...].astype(dt)
