"""Token selection: tempered log-probs, top-k / top-p support, one draw per row.

The log-prob returned for a sampled token is always the one under the
*tempered full-vocabulary* distribution softmax(logits / T), the quantity the
loss recomputes (`microcoder_jax.rl.token_logprobs`); top-k and top-p only
restrict which tokens may be drawn. Rows with T <= 0 are greedy; their log-prob
is taken at T = 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_MASKED = -jnp.inf


def tempered_logprobs(logits_BxV, temperature_B):
  """log softmax(logits / T) per row, in float32 (T <= 0 rows use T = 1)."""
  t = jnp.where(temperature_B > 0, temperature_B, 1.0).astype(jnp.float32)
  return jax.nn.log_softmax(logits_BxV.astype(jnp.float32) / t[:, None], axis=-1)


def restrict_top_k(logp_BxV, top_k: int):
  """Keeps the k most likely tokens per row (static k; 0 disables)."""
  if top_k <= 0 or top_k >= logp_BxV.shape[-1]:
    return logp_BxV
  kth_B1 = jax.lax.top_k(logp_BxV, top_k)[0][:, -1:]
  return jnp.where(logp_BxV >= kth_B1, logp_BxV, _MASKED)


def restrict_top_p(logp_BxV, top_p):
  """Nucleus: the smallest set of most likely tokens whose mass reaches p.

  `top_p` is traced; the full-vocabulary sort only runs when p < 1.
  """

  def nucleus(logp):
    sorted_BxV = jnp.sort(logp, axis=-1)[:, ::-1]
    probs = jnp.exp(sorted_BxV)
    mass_before_BxV = jnp.cumsum(probs, axis=-1) - probs
    keep = mass_before_BxV < top_p
    # Smallest kept log-prob per row is the threshold.
    threshold_B1 = jnp.min(jnp.where(keep, sorted_BxV, jnp.inf), axis=-1,
                           keepdims=True)
    return jnp.where(logp >= threshold_B1, logp, _MASKED)

  return jax.lax.cond(top_p < 1.0, nucleus, lambda x: x, logp_BxV)


def draw(key, logp_BxV):
  """One exact draw per row: Gumbel-max, argmax(log p + G), G ~ Gumbel(0, 1).

  `key` is one PRNG key for the whole batch, or a batch of keys [B], one per
  row; with per-row keys a row's draw depends on its key and its log-probs
  only, never on which other rows share the batch.

  Exact for any vocabulary size: no cumulative sum whose float32 rounding
  would shift mass or make tail tokens undrawable. The noise uses
  `mode="high"` (about 32 random bits per value), so the Gumbel tail that
  decides rare tokens is resolved far below 1e-7. Restricted (-inf) tokens
  are never drawn.
  """
  if key.ndim == 1:
    gumbel_BxV = jax.vmap(lambda k: jax.random.gumbel(
        k, logp_BxV.shape[1:], jnp.float32, mode="high"))(key)
  else:
    gumbel_BxV = jax.random.gumbel(key, logp_BxV.shape, jnp.float32, mode="high")
  return jnp.argmax(logp_BxV + gumbel_BxV, axis=-1).astype(jnp.int32)


def select(key, logits_BxV, temperature_B, top_p, top_k: int):
  """Returns (token_B, logprob_B) with the conventions of the module docstring."""
  logp_BxV = tempered_logprobs(logits_BxV, temperature_B)
  restricted = restrict_top_p(restrict_top_k(logp_BxV, top_k), top_p)
  sampled_B = draw(key, restricted)
  # Greedy rows are rare (evaluation); skip the full-vocabulary argmax otherwise.
  greedy_B = jax.lax.cond(
      jnp.any(temperature_B <= 0),
      lambda: jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32),
      lambda: sampled_B)
  token_B = jnp.where(temperature_B > 0, sampled_B, greedy_B)
  logprob_B = jnp.take_along_axis(logp_BxV, token_B[:, None], axis=-1)[:, 0]
  return token_B, logprob_B
