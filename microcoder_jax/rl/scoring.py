"""Judged rollouts → rewards R_i, the conditional truncation mask and Â_i.

`score` is pure array math on host arrays (NumPy in, NumPy out; the JAX
part is one jitted program): it takes
what the sampler and the judge produced, as arrays, and never sees a model,
a sampler or an evaluator. N = num_groups × G rows, groups consecutive.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from microcoder_jax.rl import advantages as adv_lib
from microcoder_jax.rl import masks, rewards as rewards_lib
from microcoder_jax.rl.diversity import response_diversity
from microcoder_jax.rl.objective import Objective

PASS, EVAL_ERROR = "pass", "eval_error"


@dataclasses.dataclass
class Scored:
  """Per-row results of `score`.

  Attributes:
    rewards_N: R_i (pass = 1, plus DAPO's overlong shaping when enabled).
    advantages_N: Â_i after the truncation mask (when it applies to Â).
    valid_N: False for rows the judge could not judge (`eval_error`): they
      leave the group statistics and the loss.
    ctm_mask_N: mask_i of the conditional truncation mask.
    metrics: reward/, rollout/, ctm/ and verdict/ scalars.
  """
  rewards_N: np.ndarray
  advantages_N: np.ndarray
  valid_N: np.ndarray
  ctm_mask_N: np.ndarray
  metrics: dict[str, float]


def non_incorrect(objective: Objective, passed_N, truncated_N, has_code_N) -> np.ndarray:
  """non-incorrect(o_i): passed, or (`pass_or_no_code`) truncated before any
  complete code block."""
  if objective.non_incorrect == "pass_only":
    return passed_N
  return passed_N | (truncated_N & ~has_code_N)


def score(objective: Objective, *, verdicts_N, has_code_N, tokens_NxT, lengths_N,
          truncated_N, max_response_length: int, key: jax.Array,
          diversity_ngram: int, verdict_names: Sequence[str]) -> Scored:
  """Rewards, the CTM factor and Â_i for one step's rows.

  Args:
    objective: G, ρ, m, the advantage estimator, shaping, ...
    verdicts_N: the judge's verdict strings ("pass", "wrong_answer", ...).
    has_code_N: whether a complete code block was extracted.
    tokens_NxT, lengths_N, truncated_N: the sampled responses, |o_i|, and
      whether a response hit L_max without stopping.
    max_response_length: L_max in effect for these rows.
    key: PRNG key of the CTM draws U_i.
    diversity_ngram: n of the diversity metric.
    verdict_names: every verdict class, for `verdict/<name>` fractions.
  """
  verdicts = np.asarray(verdicts_N)
  passed, valid = verdicts == PASS, verdicts != EVAL_ERROR
  has_code = np.asarray(has_code_N, bool)
  truncated = np.asarray(truncated_N, bool)
  lengths = np.asarray(lengths_N, np.int32)
  g = objective.group_size
  ok = non_incorrect(objective, passed, truncated, has_code)
  rewards, adv, repeating, ok, mask = jax.device_get(_score_terms(
      objective, max_response_length, key, passed, valid, ok, truncated,
      np.asarray(tokens_NxT, np.int32), lengths))
  metrics = _metrics(rewards, passed, valid, lengths, truncated, g)
  counts = collections.Counter(verdicts.tolist())
  metrics.update({f"verdict/{v}": counts.get(v, 0) / len(verdicts) for v in verdict_names})
  metrics.update({
      "rollout/diversity": response_diversity(tokens_NxT, lengths, g, diversity_ngram),
      "ctm/eligible_frac": float((truncated & ok & ~repeating).mean()),
      "ctm/masked_frac": float(mask.mean()),
      "ctm/repeat_frac": float(repeating.mean()),
  })
  return Scored(rewards, adv.astype(np.float32), valid, mask, metrics)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _score_terms(objective: Objective, max_response_length: int, key, passed_N, valid_N,
                 ok_N, truncated_N, tokens_NxT, lengths_N):
  """R_i, Â_i, repeat(o_i, m), the CTM's non-incorrect condition and mask_i,
  as one program: a step's scoring compiles once (then never again for the
  same N, T and L_max) instead of running a few dozen small ops eagerly."""
  rewards_N = passed_N.astype(jnp.float32)
  if objective.overlong_buffer_frac is not None:
    buffer = max(1, int(objective.overlong_buffer_frac * max_response_length))
    rewards_N = rewards_N + rewards_lib.overlong_penalty(
        lengths_N, max_response_length, buffer, objective.overlong_penalty_factor)
  adv_N = adv_lib.group_advantages(
      rewards_N, objective.group_size, method=objective.adv_estimator,
      eps=objective.adv_std_eps, std_ddof=objective.adv_std_ddof, valid_N=valid_N)
  repeating_N = masks.repeat_tail(tokens_NxT, lengths_N, objective.repeat_window,
                                  mode=objective.repeat_mode)
  if not objective.ctm_conditions:
    ok_N, repeating_N = jnp.ones_like(passed_N), jnp.zeros_like(passed_N)
  mask_N = jnp.zeros_like(passed_N)
  if objective.uses_ctm:
    mask_N = masks.conditional_truncation_mask(
        key, lengths_N=lengths_N, max_response_length=max_response_length,
        non_incorrect_N=ok_N, repeating_N=repeating_N, rho=objective.rho,
        truncated_N=truncated_N)
  if objective.ctm_apply_to == "advantage":
    adv_N = adv_N * (1.0 - mask_N)
  return rewards_N, adv_N.astype(jnp.float32), repeating_N, ok_N, mask_N


def _metrics(rewards, passed, valid, lengths, truncated, group_size):
  groups = rewards.reshape(-1, group_size)
  lengths = lengths.astype(np.float64)
  return {
      "reward/mean": float(rewards[valid].mean()) if valid.any() else 0.0,
      "reward/std": float(rewards[valid].std()) if valid.any() else 0.0,
      "reward/pass_rate": float(passed.mean()),
      "reward/frac_zero_std": float((groups.std(axis=1) == 0).mean()),
      "rollout/length_mean": float(lengths.mean()),
      "rollout/length_max": float(lengths.max()),
      "rollout/truncated_frac": float(truncated.mean()),
      "eval/error_rate": float((~valid).mean()),
  }
