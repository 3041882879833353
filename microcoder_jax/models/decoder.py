"""Decoder-only transformer covering Qwen2/2.5, Qwen3 and Llama 3.

    logits_BxTxV = model(input_ids_BxT)                       # unpadded batch
    logits_BxTxV = model(ids_BxT, attention_mask_BxT=mask)    # left padding
    hidden_BxTxD = model(ids_BxT, return_hidden=True)         # for chunked log-probs
    logits, cache = model(ids_BxT, attention_mask_BxT=mask, cache=cache)  # prefill
    logits, cache = model(next_Bx1, cache=cache)              # one decode step

Positions default to the count of real tokens before each token (left padding
aware), continuing from what the cache already holds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from microcoder_jax import sharding
from microcoder_jax.models import layers
from microcoder_jax.models.config import ModelConfig

_ACT = ("act_batch", "act_length", "act_embed")


class Block(nnx.Module):
  """Pre-norm residual block: x + attn(norm(x)); x + mlp(norm(x))."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    pd = cfg.jnp_param_dtype
    self.input_norm = layers.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, pd)
    self.attn = layers.Attention(cfg, rngs=rngs)
    self.post_attn_norm = layers.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, pd)
    self.mlp = layers.MLP(cfg, rngs=rngs)

  def __call__(self, x_BxTxD, positions_BxT, mask_BxT, layer, cache):
    h, cache = self.attn(self.input_norm(x_BxTxD), positions_BxT, mask_BxT,
                         layer, cache)
    x_BxTxD = sharding.constrain(x_BxTxD + h, _ACT)
    x_BxTxD = x_BxTxD + self.mlp(self.post_attn_norm(x_BxTxD))
    return sharding.constrain(x_BxTxD, _ACT), cache


class Decoder(nnx.Module):
  """The policy / reference model. See the module docstring for call forms."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    pd = cfg.jnp_param_dtype
    self.embed_VxD = layers._param(rngs, (cfg.vocab_size, cfg.hidden_size),
                                   ("vocab", "embed"), pd)
    self.layers = nnx.List([Block(cfg, rngs=rngs) for _ in range(cfg.num_layers)])
    self.final_norm = layers.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, pd)
    if not cfg.tie_word_embeddings:
      self.lm_head_VxD = layers._param(rngs, (cfg.vocab_size, cfg.hidden_size),
                                       ("vocab", "embed"), pd)

  def unembedding_VxD(self) -> jax.Array:
    """The output projection W (tied: the embedding), in compute dtype."""
    w = self.embed_VxD if self.cfg.tie_word_embeddings else self.lm_head_VxD
    return w[...].astype(self.cfg.jnp_dtype)

  def unembedding_DxV(self) -> jax.Array:
    """W transposed, as `microcoder_jax.rl.token_logprobs` takes it."""
    return self.unembedding_VxD().T

  def init_cache(self, batch: int, max_len: int) -> layers.KVCache:
    return layers.KVCache.init(self.cfg, batch, max_len)

  def __call__(self, input_ids_BxT, positions_BxT=None, attention_mask_BxT=None,
               *, cache: layers.KVCache | None = None, return_hidden: bool = False):
    b, t = input_ids_BxT.shape
    mask_BxT = (jnp.ones((b, t), bool) if attention_mask_BxT is None
                else attention_mask_BxT.astype(bool))
    if positions_BxT is None:
      positions_BxT = jnp.maximum(
          jnp.cumsum(mask_BxT, axis=-1, dtype=jnp.int32) - 1, 0)
      if cache is not None:
        positions_BxT = positions_BxT + cache.num_tokens_B()[:, None]
    if cache is not None:
      cache = cache.replace(mask_BxS=jax.lax.dynamic_update_slice_in_dim(
          cache.mask_BxS, mask_BxT, cache.index, axis=1))

    x = jnp.take(self.embed_VxD[...], input_ids_BxT, axis=0).astype(self.cfg.jnp_dtype)
    x = sharding.constrain(x, _ACT)
    for i, block in enumerate(self.layers):
      with jax.named_scope(f"layer_{i}"):
        x, cache = block(x, positions_BxT, mask_BxT, i, cache)
    x = self.final_norm(x)
    if return_hidden:
      out = x
    else:
      out = jnp.einsum("btd,vd->btv", x, self.unembedding_VxD(),
                       preferred_element_type=jnp.float32)
      out = sharding.constrain(out, ("act_batch", "act_length", "act_vocab"))
    if cache is None:
      return out
    return out, cache.replace(index=cache.index + t)


def init_model(cfg: ModelConfig, seed: int = 0, mesh=None) -> Decoder:
  """A randomly initialised model, built sharded when `mesh` is given."""
  make = lambda: Decoder(cfg, rngs=nnx.Rngs(params=seed))
  if mesh is None:
    return make()
  return sharding.create_sharded(make, mesh)
