"""Decoder-only transformer covering Qwen2/2.5, Qwen3 and Llama 3.

    logits_BxTxV = model(input_ids_BxT)                       # unpadded batch
    logits_BxTxV = model(ids_BxT, attention_mask_BxT=mask)    # left padding
    hidden_BxTxD = model(ids_BxT, return_hidden=True)         # for chunked log-probs
    hidden, cache = model(ids_BxT, attention_mask_BxT=mask, cache=cache,
                          return_hidden=True)                 # prefill
    logits_BxV = model.logits(hidden[:, -1])                  # the last position only
    logits, cache = model(next_Bx1, cache=cache)              # one decode step
    hidden_NxTxD = model.shared_prefix_hidden(                # G rows per prompt:
        prompt_UxP, prompt_mask_UxP, ids_NxT, mask_NxT)       # prompts computed once

Positions default to the count of real tokens before each token (left padding
aware), continuing from what the cache already holds.

The decoder blocks are one `Block` whose parameters are stacked along a
leading `layers` axis (logical axis "layers", never sharded). The forward
pass scans over them (`cfg.scan_layers`), so compile time does not grow with
depth, and rematerialises each block in the backward pass per `cfg.remat`,
so only each block's input is kept for the backward pass under "full".
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

  def _residuals(self, x_BxTxD, attn_BxTxD):
    """x + attn, then + mlp(norm(x + attn))."""
    x_BxTxD = sharding.constrain(x_BxTxD + attn_BxTxD, _ACT)
    return sharding.constrain(x_BxTxD + self.mlp(self.post_attn_norm(x_BxTxD)), _ACT)

  def __call__(self, x_BxTxD, positions_BxT, mask_BxT, layer, cache):
    h, cache = self.attn(self.input_norm(x_BxTxD), positions_BxT, mask_BxT,
                         layer, cache)
    return self._residuals(x_BxTxD, h), cache

  def shared_prefix(self, x_UxSxD, pos_UxS, mask_UxP, mask_NxT):
    """`__call__` for U packed rows of a prompt and the G responses that
    continue it (`layers.Attention.shared_prefix`)."""
    h = self.attn.shared_prefix(self.input_norm(x_UxSxD), pos_UxS, mask_UxP, mask_NxT)
    return self._residuals(x_UxSxD, h)


def stacked_blocks(cfg: ModelConfig, rngs: nnx.Rngs) -> Block:
  """`cfg.num_layers` blocks as one Block with [L, ...] parameters.

  Each layer is initialised from its own key; every parameter's logical
  axes gain a leading "layers".
  """
  keys = jax.random.split(rngs.params(), cfg.num_layers)
  blocks = nnx.vmap(lambda key: Block(cfg, rngs=nnx.Rngs(params=key)))(keys)
  for _, var in nnx.to_flat_state(nnx.state(blocks, nnx.Param)):
    var.set_metadata(logical_axes=("layers",) + tuple(var.get_metadata()["logical_axes"]))
  return blocks


def _positions(mask_BxT, before_B=0):
  """Position of each token: the real tokens before it (left padding aware),
  after `before_B` real tokens that precede the row."""
  count_BxT = jnp.cumsum(mask_BxT, axis=-1, dtype=jnp.int32)
  return jnp.maximum(jnp.asarray(before_B, jnp.int32)[..., None] + count_BxT - 1, 0)


def _remat(fn, policy: str):
  if policy == "none":
    return fn
  if policy == "full":
    return jax.checkpoint(fn, prevent_cse=False)
  return jax.checkpoint(fn, policy=getattr(jax.checkpoint_policies, policy),
                        prevent_cse=False)


class Decoder(nnx.Module):
  """The policy / reference model. See the module docstring for call forms."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    pd = cfg.jnp_param_dtype
    self.embed_VxD = layers._param(rngs, (cfg.vocab_size, cfg.hidden_size),
                                   ("vocab", "embed"), pd)
    self.layers = stacked_blocks(cfg, rngs)
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

  def logits(self, hidden_xD: jax.Array) -> jax.Array:
    """float32 logits for final hidden states of any leading shape."""
    return jnp.einsum("...d,vd->...v", hidden_xD, self.unembedding_VxD(),
                      preferred_element_type=jnp.float32)

  def init_cache(self, batch: int, max_len: int) -> layers.KVCache:
    return layers.KVCache.init(self.cfg, batch, max_len)

  def _over_layers(self, apply, carry, *, remat: bool):
    """carry = apply(block_i, carry, i) for every layer i, unrolled or scanned
    (`cfg.scan_layers`); with `remat`, each block is rematerialised in the
    backward pass per `cfg.remat`."""
    graphdef, stacked = nnx.split(self.layers)

    def layer(carry, i, params):
      return apply(nnx.merge(graphdef, params), carry, i)

    if remat:
      layer = _remat(layer, self.cfg.remat)
    if not self.cfg.scan_layers:
      for i in range(self.cfg.num_layers):
        with jax.named_scope(f"layer_{i}"):
          carry = layer(carry, i, jax.tree.map(lambda a: a[i], stacked))
      return carry
    carry, _ = jax.lax.scan(lambda c, xs: (layer(c, *xs), None), carry,
                            (jnp.arange(self.cfg.num_layers), stacked))
    return carry

  def _run_layers(self, x_BxTxD, positions_BxT, mask_BxT, cache):
    return self._over_layers(  # remat matters only where gradients are taken
        lambda block, c, i: block(c[0], positions_BxT, mask_BxT, i, c[1]),
        (x_BxTxD, cache), remat=cache is None)

  def shared_prefix_hidden(self, prompt_ids_UxP, prompt_mask_UxP, ids_NxT, mask_NxT):
    """Final hidden states at the positions predicting each of `ids_NxT`.

    Row r is prompt r // G (left-padded) followed by `ids_NxT[r]`, G = N / U:
    the same as `self(concat(prompt, ids), ...)[:, P - 1:-1]`, with each
    prompt's forward pass computed once instead of G times (the policy
    update's G responses per prompt). Returns [N, T, D].
    """
    u, p = prompt_ids_UxP.shape
    n, t = ids_NxT.shape
    if n % u:
      raise ValueError(f"{n} rows do not continue {u} prompts in equal groups")
    group = n // u
    mask_p, mask_r = prompt_mask_UxP.astype(bool), mask_NxT.astype(bool)
    pos_p = _positions(mask_p)
    pos_r = _positions(mask_r, jnp.repeat(mask_p.sum(-1, dtype=jnp.int32), group))
    # Row u of the packed [U, S = P + G·T] layout: prompt u, then the tokens
    # of responses uG, ..., uG + G − 1. Every token-wise op (norms,
    # projections, RoPE, MLP) then runs on one array; only attention splits.
    pack = lambda a_UxP, b_NxT: jnp.concatenate([a_UxP, b_NxT.reshape(u, group * t)], 1)
    x = sharding.constrain(jnp.take(self.embed_VxD[...], pack(prompt_ids_UxP, ids_NxT), axis=0)
                           .astype(self.cfg.jnp_dtype), _ACT)
    pos_UxS = pack(pos_p, pos_r)
    x = self._over_layers(lambda block, x, i: block.shared_prefix(x, pos_UxS, mask_p, mask_r),
                          x, remat=True)
    last_NxD = jnp.repeat(self.final_norm(x[:, p - 1]), group, axis=0)
    resp_NxTxD = self.final_norm(x[:, p:].reshape(n, t, x.shape[-1])[:, :-1])
    return jnp.concatenate([last_NxD[:, None], resp_NxTxD], axis=1)

  def __call__(self, input_ids_BxT, positions_BxT=None, attention_mask_BxT=None,
               *, cache: layers.KVCache | None = None, return_hidden: bool = False):
    b, t = input_ids_BxT.shape
    mask_BxT = (jnp.ones((b, t), bool) if attention_mask_BxT is None
                else attention_mask_BxT.astype(bool))
    if positions_BxT is None:
      positions_BxT = _positions(mask_BxT)
      if cache is not None:
        positions_BxT = positions_BxT + cache.tokens_B[:, None]
    if cache is not None:
      cache = cache.replace(mask_BxS=jax.lax.dynamic_update_slice_in_dim(
          cache.mask_BxS, mask_BxT, cache.index, axis=1))

    x = jnp.take(self.embed_VxD[...], input_ids_BxT, axis=0).astype(self.cfg.jnp_dtype)
    x = sharding.constrain(x, _ACT)
    x, cache = self._run_layers(x, positions_BxT, mask_BxT, cache)
    x = self.final_norm(x)
    if return_hidden:
      out = x
    else:
      out = sharding.constrain(self.logits(x), ("act_batch", "act_length", "act_vocab"))
    if cache is None:
      return out
    return out, cache.replace(index=cache.index + t,
                              tokens_B=cache.tokens_B + mask_BxT.sum(-1, dtype=jnp.int32))


def init_model(cfg: ModelConfig, seed: int = 0, mesh=None) -> Decoder:
  """A randomly initialised model, built sharded when `mesh` is given."""
  make = lambda: Decoder(cfg, rngs=nnx.Rngs(params=seed))
  if mesh is None:
    return make()
  return sharding.create_sharded(make, mesh)
