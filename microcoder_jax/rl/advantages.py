"""Group-relative advantages Â_i from outcome rewards R_i.

Rows are ordered so that the G responses to one prompt are consecutive:
`rewards_N` has N = num_groups × G entries. Every estimator is a pure jnp
function registered by name in `ADVANTAGE_FNS`; `group_advantages` picks one.

Conventions shared by all estimators (project decisions, see the spec §1.1):
  * a group whose (valid) rewards are all equal gets Â = 0 exactly, so
    float rounding in the mean never leaks a tiny signal;
  * samples later masked by the conditional truncation mask stay in the group
    statistics (the mask multiplies Â afterwards);
  * `valid_N=False` (e.g. a persistent evaluator error) removes a sample from
    the group statistics and gives it Â = 0.
"""
from typing import Callable, Optional

import chex
import jax.numpy as jnp

# fn(rewards_MxG, valid_MxG, *, eps, std_ddof) -> advantages_MxG, where M is
# the number of groups and G the group size.
AdvantageFn = Callable[..., jnp.ndarray]
ADVANTAGE_FNS: dict[str, AdvantageFn] = {}


def register_advantage(name: str) -> Callable[[AdvantageFn], AdvantageFn]:
  """Registers a group advantage estimator under `name`."""

  def decorator(fn: AdvantageFn) -> AdvantageFn:
    ADVANTAGE_FNS[name] = fn
    return fn

  return decorator


def _group_stats(rewards_MxG, valid_MxG, std_ddof):
  """Masked per-group count, mean, std (ddof `std_ddof`) and all-equal flag."""
  count_M = valid_MxG.sum(axis=-1)
  mean_M = jnp.where(valid_MxG, rewards_MxG, 0.0).sum(-1) / jnp.maximum(
      count_M, 1.0)
  centered_MxG = jnp.where(valid_MxG, rewards_MxG - mean_M[:, None], 0.0)
  var_M = (centered_MxG**2).sum(-1) / jnp.maximum(count_M - std_ddof, 1.0)
  big = jnp.finfo(rewards_MxG.dtype).max
  r_max_M = jnp.where(valid_MxG, rewards_MxG, -big).max(-1)
  r_min_M = jnp.where(valid_MxG, rewards_MxG, big).min(-1)
  degenerate_M = (r_max_M <= r_min_M) | (count_M <= 1)
  return count_M, mean_M, jnp.sqrt(var_M), degenerate_M


@register_advantage("grpo")
def grpo_advantages(rewards_MxG, valid_MxG, *, eps, std_ddof):
  """GRPO: Â_i = (R_i − mean(R)) / (std(R) + eps) within the group."""
  _, mean_M, std_M, degenerate_M = _group_stats(rewards_MxG, valid_MxG,
                                                std_ddof)
  adv_MxG = (rewards_MxG - mean_M[:, None]) / (std_M[:, None] + eps)
  return jnp.where(degenerate_M[:, None] | ~valid_MxG, 0.0, adv_MxG)


@register_advantage("drgrpo")
def drgrpo_advantages(rewards_MxG, valid_MxG, *, eps, std_ddof):
  """Dr. GRPO: Â_i = R_i − mean(R) (no std normalisation)."""
  del eps
  _, mean_M, _, degenerate_M = _group_stats(rewards_MxG, valid_MxG, std_ddof)
  adv_MxG = rewards_MxG - mean_M[:, None]
  return jnp.where(degenerate_M[:, None] | ~valid_MxG, 0.0, adv_MxG)


@register_advantage("rloo")
def rloo_advantages(rewards_MxG, valid_MxG, *, eps, std_ddof):
  """RLOO: Â_i = R_i − mean_{j≠i} R_j (leave-one-out baseline)."""
  del eps, std_ddof
  count_M = valid_MxG.sum(axis=-1)
  total_M = jnp.where(valid_MxG, rewards_MxG, 0.0).sum(-1)
  others_MxG = (total_M[:, None] - rewards_MxG) / jnp.maximum(
      count_M[:, None] - 1.0, 1.0)
  adv_MxG = rewards_MxG - others_MxG
  _, _, _, degenerate_M = _group_stats(rewards_MxG, valid_MxG, 0)
  return jnp.where(degenerate_M[:, None] | ~valid_MxG, 0.0, adv_MxG)


def group_advantages(rewards_N: jnp.ndarray,
                     group_size: int,
                     *,
                     method: str = "grpo",
                     eps: float = 1e-6,
                     std_ddof: int = 0,
                     valid_N: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """Outcome advantages Â_i for N = num_groups × G consecutive responses.

  Args:
    rewards_N: rewards R_i, float `[N]`, groups of `group_size` consecutive.
    group_size: G (static).
    method: a key of `ADVANTAGE_FNS`: "grpo", "drgrpo" or "rloo".
    eps: added to the group std ("grpo" only); may be traced.
    std_ddof: 0 = population std (default), 1 = Bessel-corrected as in verl's
      `compute_grpo_outcome_advantage`. Static.
    valid_N: optional bool `[N]`; False drops a sample from the group
      statistics and gives it Â = 0.

  Returns:
    float32 `[N]` advantages; 0 for all-equal groups and invalid samples.
  """
  if method not in ADVANTAGE_FNS:
    raise ValueError(f"Unknown advantage method {method!r}; "
                     f"known: {sorted(ADVANTAGE_FNS)}")
  chex.assert_rank(rewards_N, 1)
  n = rewards_N.shape[0]
  if group_size < 1 or n % group_size:
    raise ValueError(f"N={n} is not a multiple of group_size={group_size}.")
  rewards_MxG = jnp.asarray(rewards_N, jnp.float32).reshape(-1, group_size)
  if valid_N is None:
    valid_MxG = jnp.ones_like(rewards_MxG, dtype=bool)
  else:
    chex.assert_shape(valid_N, (n,))
    valid_MxG = jnp.asarray(valid_N, bool).reshape(-1, group_size)
  adv_MxG = ADVANTAGE_FNS[method](
      rewards_MxG, valid_MxG, eps=eps, std_ddof=std_ddof)
  return adv_MxG.reshape(n)
