"""DAPO reward-side helpers: dynamic sampling and overlong shaping.

They run on the host between evaluation and the update step, but are written
in jnp so they also jit. Groups are G consecutive rows, as everywhere in
`microcoder_jax.rl`.
"""
import chex
import jax.numpy as jnp


def dynamic_sampling_keep(rewards_N: jnp.ndarray,
                          group_size: int) -> jnp.ndarray:
  """bool `[N / G]`: True for groups whose rewards are not all equal.

  DAPO's dynamic sampling drops all-equal groups (accuracy 0 or 1): their
  group-normalised Â is 0, so they only dilute the token-mean.
  """
  chex.assert_rank(rewards_N, 1)
  n = rewards_N.shape[0]
  if group_size < 1 or n % group_size:
    raise ValueError(f"N={n} is not a multiple of group_size={group_size}.")
  rewards_MxG = jnp.asarray(rewards_N).reshape(-1, group_size)
  return rewards_MxG.max(-1) > rewards_MxG.min(-1)


def mixed_accuracy_groups(passed_N: jnp.ndarray, valid_N: jnp.ndarray,
                          group_size: int) -> jnp.ndarray:
  """bool `[N / G]`: groups where some judged responses pass and some fail.

  DAPO's criterion on accuracy, not on (possibly shaped) rewards. Rows the
  judge could not judge (`valid_N` False) count as neither, as they leave
  the group statistics.
  """
  chex.assert_rank([passed_N, valid_N], 1)
  n = passed_N.shape[0]
  if group_size < 1 or n % group_size:
    raise ValueError(f"N={n} is not a multiple of group_size={group_size}.")
  passed = jnp.asarray(passed_N, bool).reshape(-1, group_size)
  valid = jnp.asarray(valid_N, bool).reshape(-1, group_size)
  return (passed & valid).any(-1) & (~passed & valid).any(-1)


def fill_groups(keep_groups: jnp.ndarray, num_groups: int):
  """Fixed-shape refill: indices of the first `num_groups` kept groups.

  Returns (indices `[num_groups]` int32, valid `[num_groups]` bool). When
  fewer groups qualify, the tail repeats group 0 with valid False, so the
  caller can zero those rows' loss mask and keep static shapes.
  """
  chex.assert_rank(keep_groups, 1)
  keep = jnp.asarray(keep_groups, bool)
  order = jnp.argsort(~keep, stable=True)  # kept groups first, in order
  padded = jnp.concatenate([order, jnp.zeros((num_groups,), order.dtype)])
  valid = jnp.arange(num_groups) < keep.sum()
  indices = jnp.where(valid, padded[:num_groups], 0).astype(jnp.int32)
  return indices, valid


def overlong_penalty(lengths_N: jnp.ndarray, max_response_length, buffer,
                     factor) -> jnp.ndarray:
  """DAPO soft overlong punishment in tokens (verl's overlong_buffer).

  With L_exp = L_max − buffer: penalty = min(−(|o| − L_exp) / buffer · factor,
  0), i.e. 0 up to L_exp, falling linearly to −factor at |o| = L_max. Added
  to the reward. Lengths are token counts, never characters.
  """
  lengths_N = jnp.asarray(lengths_N, jnp.float32)
  chex.assert_rank(lengths_N, 1)
  expected = max_response_length - buffer
  return jnp.minimum(-(lengths_N - expected) / buffer * factor, 0.0)
