"""`rl.score` (verdicts → R_i, mask_i, Â_i) against a float64 NumPy reference
built from the per-formula references; one compile per shape."""
import dataclasses

import jax
import numpy as np
import pytest

from microcoder_jax import rl
from microcoder_jax.rl import scoring
from tests.rl import rl_reference as ref

G, GROUPS, T = 4, 6, 16
N = G * GROUPS
VERDICTS = ("pass", "wrong_answer", "timeout", "eval_error")


def _rows(seed: int, max_length: int):
  """Random verdicts and responses; some hit L_max, some end in a loop."""
  rng = np.random.default_rng(seed)
  verdicts = rng.choice(VERDICTS, size=N, p=[0.4, 0.35, 0.15, 0.1])
  lengths = rng.integers(1, max_length + 1, N)
  lengths[rng.random(N) < 0.4] = max_length
  tokens = rng.integers(5, 50, (N, T))
  for i in np.flatnonzero(rng.random(N) < 0.5):  # a repeated tail of period 2
    tokens[i, :lengths[i]] = np.resize([7, 9], lengths[i])
  truncated = lengths >= max_length
  has_code = rng.random(N) < 0.5
  return verdicts, has_code, tokens, lengths, truncated


def _reference(objective, verdicts, has_code, tokens, lengths, truncated, max_length, key):
  passed, valid = verdicts == "pass", verdicts != "eval_error"
  rewards = passed.astype(np.float64)
  if objective.overlong_buffer_frac is not None:
    buffer = max(1, int(objective.overlong_buffer_frac * max_length))
    rewards = rewards + ref.overlong_penalty(lengths, max_length, buffer,
                                             objective.overlong_penalty_factor)
  adv = ref.group_advantages(rewards, objective.group_size, objective.adv_estimator,
                             eps=objective.adv_std_eps, ddof=objective.adv_std_ddof,
                             valid=valid)
  ok = passed | (truncated & ~has_code)
  repeating = ref.repeat_tail(tokens, lengths, objective.repeat_window,
                              periodic=objective.repeat_mode == "periodic")
  if not objective.ctm_conditions:
    ok, repeating = np.ones(N, bool), np.zeros(N, bool)
  mask = np.zeros(N, bool)
  if objective.uses_ctm:
    u = np.asarray(jax.random.uniform(key, (N,)), np.float64)
    mask = ref.ctm(u, lengths, max_length, ok & truncated, repeating, objective.rho)
  return rewards, adv * (1.0 - mask), valid, mask, (truncated & ok & ~repeating).mean()


@pytest.mark.parametrize("name", ["microcoder_grpo", "dapo", "mask_all", "grpo"])
def test_score_matches_float64_reference(name):
  max_length = 12
  # m = 2 so that the period-2 tails count as repeats; ρ = 0.6 so that
  # some truncated rows are masked and some are not.
  objective = dataclasses.replace(rl.get_objective(name), group_size=G, repeat_window=2)
  if objective.uses_ctm:
    objective = dataclasses.replace(objective, rho=0.6)
  for seed in range(3):
    verdicts, has_code, tokens, lengths, truncated = _rows(seed, max_length)
    key = jax.random.key(seed)
    got = rl.score(objective, verdicts_N=verdicts, has_code_N=has_code, tokens_NxT=tokens,
                   lengths_N=lengths, truncated_N=truncated, max_response_length=max_length,
                   key=key, diversity_ngram=2, verdict_names=VERDICTS)
    rewards, adv, valid, mask, eligible = _reference(
        objective, verdicts, has_code, tokens, lengths, truncated, max_length, key)
    np.testing.assert_allclose(got.rewards_N, rewards, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.advantages_N, adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got.valid_N, valid)
    np.testing.assert_array_equal(got.ctm_mask_N, mask)
    assert got.advantages_N.dtype == np.float32
    assert got.metrics["ctm/masked_frac"] == pytest.approx(mask.mean())
    assert got.metrics["ctm/eligible_frac"] == pytest.approx(eligible)
    assert got.metrics["verdict/pass"] == pytest.approx(np.mean(verdicts == "pass"))
    if name == "microcoder_grpo":  # ρ < 1: some eligible rows masked, some kept
      assert 0 < mask.sum() < round(eligible * N)


def test_score_compiles_once_per_shape():
  objective = dataclasses.replace(rl.get_objective("microcoder_grpo"), group_size=G,
                                  repeat_window=2, rho=0.6)
  scoring._score_terms.clear_cache()  # pylint: disable=protected-access
  for seed in range(4):
    verdicts, has_code, tokens, lengths, truncated = _rows(seed, 12)
    rl.score(objective, verdicts_N=verdicts, has_code_N=has_code, tokens_NxT=tokens,
             lengths_N=lengths, truncated_N=truncated, max_response_length=12,
             key=jax.random.key(seed), diversity_ngram=2, verdict_names=VERDICTS)
  assert scoring._score_terms._cache_size() == 1  # pylint: disable=protected-access
