"""The conditional truncation mask (CTM) of MicroCoder-GRPO.

Â_i is zeroed where |o_i| = L_max ∧ non-incorrect(o_i) ∧ ¬repeat(o_i, m) ∧
U(0,1) < ρ. `repeat_tail` computes repeat(o, m); `conditional_truncation_mask`
combines the four conditions. Both are pure jnp and jittable.
"""
from typing import Optional

import chex
import jax
import jax.numpy as jnp

REPEAT_MODES = ("exact", "periodic")


def _tail_windows(tokens_NxT, lengths_N, window):
  """Returns the last 2·window tokens of each response, `[N, 2·window]`."""
  t = tokens_NxT.shape[1]
  idx_NxW2 = lengths_N[:, None] - 2 * window + jnp.arange(2 * window)[None]
  idx_NxW2 = jnp.clip(idx_NxW2, 0, t - 1)
  return jnp.take_along_axis(tokens_NxT, idx_NxW2, axis=1)


def repeat_tail(tokens_NxT: jnp.ndarray,
                lengths_N: jnp.ndarray,
                window: int = 128,
                *,
                mode: str = "exact") -> jnp.ndarray:
  """The paper's repeat(o, m) with m = `window`.

  "exact" (paper): True where o[|o|−m:|o|] == o[|o|−2m:|o|−m] token by token.
  It catches loops whose period divides m. "periodic" (our extension, off by
  default): True where the last 2m tokens have some period p ≤ m, i.e.
  o[k] == o[k+p] over the whole tail. Responses shorter than 2m are never
  repeating.

  Args:
    tokens_NxT: response token ids, right padded.
    lengths_N: response lengths |o_i| (≤ T).
    window: m, static.
    mode: "exact" or "periodic", static.

  Returns:
    bool `[N]`.
  """
  chex.assert_rank(tokens_NxT, 2)
  chex.assert_shape(lengths_N, (tokens_NxT.shape[0],))
  if mode not in REPEAT_MODES:
    raise ValueError(f"Unknown repeat mode {mode!r}; known: {REPEAT_MODES}")
  if window < 1:
    raise ValueError(f"window must be >= 1, got {window}.")
  lengths_N = jnp.asarray(lengths_N, jnp.int32)
  long_enough_N = lengths_N >= 2 * window
  if 2 * window > tokens_NxT.shape[1]:
    return jnp.zeros_like(long_enough_N)
  tail_NxW2 = _tail_windows(tokens_NxT, lengths_N, window)
  if mode == "exact":
    same_N = jnp.all(tail_NxW2[:, :window] == tail_NxW2[:, window:], axis=1)
  else:
    k_W2 = jnp.arange(2 * window)
    p_P = jnp.arange(1, window + 1)
    shifted_idx_PxW2 = jnp.minimum(k_W2[None] + p_P[:, None], 2 * window - 1)
    in_range_PxW2 = (k_W2[None] + p_P[:, None]) < 2 * window
    shifted_NxPxW2 = tail_NxW2[:, shifted_idx_PxW2]
    eq_NxPxW2 = (tail_NxW2[:, None, :] == shifted_NxPxW2) | ~in_range_PxW2
    same_N = jnp.any(jnp.all(eq_NxPxW2, axis=2), axis=1)
  return same_N & long_enough_N


def conditional_truncation_mask(key: jax.Array,
                                *,
                                lengths_N: jnp.ndarray,
                                max_response_length: int,
                                non_incorrect_N: jnp.ndarray,
                                repeating_N: jnp.ndarray,
                                rho: float,
                                truncated_N: Optional[jnp.ndarray] = None
                               ) -> jnp.ndarray:
  """True where Â_i must be zeroed (the CTM factor is 1 − this).

  mask_i = |o_i| = L_max ∧ non-incorrect_i ∧ ¬repeat_i ∧ U_i < ρ, with
  U = `jax.random.uniform(key, (N,))`. For reproducible runs fold the seed and
  the step into `key` (e.g. `jax.random.fold_in(jax.random.key(seed), step)`):
  the draw for row i then depends only on (seed, step, N, i). With ρ = 1,
  `non_incorrect_N` all True and `repeating_N` all False this is DAPO /
  DeepCoder's "mask every truncated response".

  Args:
    key: PRNG key.
    lengths_N: response lengths |o_i|.
    max_response_length: L_max; may be traced.
    non_incorrect_N: bool `[N]`, the caller's non-incorrect(o_i) verdict.
    repeating_N: bool `[N]`, repeat(o_i, m), e.g. from `repeat_tail`.
    rho: ρ ∈ [0, 1]; may be traced.
    truncated_N: optional bool `[N]` overriding |o_i| ≥ L_max, for callers
      that judge truncation by stop reason rather than by length.

  Returns:
    bool `[N]`.
  """
  lengths_N = jnp.asarray(lengths_N)
  chex.assert_rank(lengths_N, 1)
  n = lengths_N.shape[0]
  chex.assert_shape([non_incorrect_N, repeating_N], (n,))
  if truncated_N is None:
    truncated_N = lengths_N >= max_response_length
  else:
    chex.assert_shape(truncated_N, (n,))
  u_N = jax.random.uniform(key, (n,))
  return (jnp.asarray(truncated_N, bool) & jnp.asarray(non_incorrect_N, bool)
          & ~jnp.asarray(repeating_N, bool) & (u_N < rho))
