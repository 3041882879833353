"""Advantages, the conditional truncation mask and DAPO reward helpers."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from microcoder_jax import rl
from rl import rl_reference as reference

G = 4


def _rewards(seed):
  rng = np.random.default_rng(seed)
  rewards = rng.integers(0, 2, (6 * G,)).astype(np.float32)
  rewards[:G] = 1.0  # all-equal group (all pass)
  rewards[G:2 * G] = 0.0  # all-equal group (all fail)
  rewards[2 * G:3 * G] = rng.normal(0, 3, G)  # continuous rewards
  rewards[3 * G:4 * G] = [0.1, 0.1, 0.1, 0.1]  # equal but not exact in f32
  rewards[4 * G:5 * G] = [1, 0, 0, 0]
  rewards[5 * G:] = [0, 1, 1, 0]
  return rewards


@functools.partial(jax.jit, static_argnames=("method", "std_ddof"))
def _advantages(rewards, valid, eps, *, method, std_ddof):
  return rl.group_advantages(rewards, G, method=method, eps=eps,
                             std_ddof=std_ddof, valid_N=valid)


@pytest.mark.parametrize("method", ["grpo", "drgrpo", "rloo"])
@pytest.mark.parametrize("std_ddof", [0, 1])
def test_group_advantages_match_reference(method, std_ddof):
  for seed in range(3):
    rewards = _rewards(seed)
    valid = np.ones_like(rewards, bool)
    valid[5 * G + 1] = False  # an evaluator error leaves the statistics
    for eps in (1e-6, 0.5):
      got = _advantages(rewards, valid, eps, method=method, std_ddof=std_ddof)
      want = reference.group_advantages(rewards, G, method, eps, std_ddof,
                                        valid)
      np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
      assert np.all(np.asarray(got)[:2 * G] == 0.0)
      assert np.all(np.asarray(got)[3 * G:4 * G] == 0.0)
      assert got[5 * G + 1] == 0.0


def test_grpo_population_std_value():
  adv = rl.group_advantages(jnp.array([1.0, 0.0, 0.0, 0.0]), 4)
  # mean 0.25, population std sqrt(0.1875).
  np.testing.assert_allclose(adv[0], 0.75 / (np.sqrt(0.1875) + 1e-6),
                             rtol=1e-6)


def test_group_advantages_rejects_bad_shapes():
  with pytest.raises(ValueError, match="multiple"):
    rl.group_advantages(jnp.zeros(6), 4)
  with pytest.raises(ValueError, match="Unknown"):
    rl.group_advantages(jnp.zeros(8), 4, method="ppo")


def _tokens(seed, n=12, t=40, window=4):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, 3, (n, t))
  lengths = rng.integers(0, t + 1, (n,))
  lengths[:4] = t
  tokens[0, t - 2 * window:] = np.tile([1, 2, 0, 2], 2)  # period 4 = m
  tokens[1, t - 2 * window:] = 1  # period 1
  tokens[2, t - 2 * window:] = np.tile([1, 2], window)  # period 2
  tokens[3, t - 3 * window:] = np.tile([0, 1, 2], window)  # period 3 ∤ m
  tokens[4, :2 * window] = np.tile([2, 1, 1, 0], 2)
  lengths[4] = 2 * window  # exactly 2m long, repeating
  tokens[5, :2 * window - 1] = 1
  lengths[5] = 2 * window - 1  # repeating but shorter than 2m
  return tokens, lengths


@pytest.mark.parametrize("mode", ["exact", "periodic"])
def test_repeat_tail_matches_reference(mode):
  fn = jax.jit(functools.partial(rl.repeat_tail, window=4, mode=mode))
  for seed in range(3):
    tokens, lengths = _tokens(seed)
    want = reference.repeat_tail(tokens, lengths, 4, mode == "periodic")
    np.testing.assert_array_equal(fn(tokens, lengths), want)
  assert want[:5].tolist() == ([True, True, True, True, True]
                               if mode == "periodic" else
                               [True, True, True, False, True])
  assert not want[5]


def test_repeat_tail_window_longer_than_buffer():
  assert not rl.repeat_tail(jnp.ones((2, 10), int), jnp.array([10, 10]),
                            window=6).any()


@jax.jit
def _ctm(key, lengths, max_length, non_incorrect, repeating, rho):
  return rl.conditional_truncation_mask(
      key, lengths_N=lengths, max_response_length=max_length,
      non_incorrect_N=non_incorrect, repeating_N=repeating, rho=rho)


def test_ctm_matches_reference_and_mask_all():
  n, max_length = 4000, 64
  rng = np.random.default_rng(0)
  lengths = np.where(rng.random(n) < 0.5, max_length,
                     rng.integers(1, max_length, n))
  non_incorrect = rng.random(n) < 0.6
  repeating = rng.random(n) < 0.3
  key = jax.random.fold_in(jax.random.key(1234), 17)  # (seed, step)
  u = np.asarray(jax.random.uniform(key, (n,)))
  for rho in (0.0, 0.1, 0.3, 1.0):
    got = _ctm(key, lengths, max_length, non_incorrect, repeating, rho)
    want = reference.ctm(u, lengths, max_length, non_incorrect, repeating,
                         rho)
    np.testing.assert_array_equal(got, want)
  eligible = (lengths == max_length) & non_incorrect & ~repeating
  rate = np.asarray(
      _ctm(key, lengths, max_length, non_incorrect, repeating, 0.1))
  assert abs(rate[eligible].mean() - 0.1) < 0.03
  # ρ = 1, all non-incorrect, nothing repeating: every truncated response.
  all_true = np.ones(n, bool)
  got = _ctm(key, lengths, max_length, all_true, ~all_true, 1.0)
  np.testing.assert_array_equal(got, lengths == max_length)


def test_ctm_truncated_override():
  got = rl.conditional_truncation_mask(
      jax.random.key(0), lengths_N=jnp.array([5, 10]), max_response_length=10,
      non_incorrect_N=jnp.array([True, True]),
      repeating_N=jnp.array([False, False]), rho=1.0,
      truncated_N=jnp.array([True, False]))
  np.testing.assert_array_equal(got, [True, False])


def test_dapo_helpers():
  rewards = _rewards(1)
  keep = rl.dynamic_sampling_keep(rewards, G)
  np.testing.assert_array_equal(keep, [False, False, True, False, True, True])
  for seed in range(5):
    random_rewards = np.random.default_rng(seed).integers(0, 2, 10 * G)
    np.testing.assert_array_equal(
        rl.dynamic_sampling_keep(random_rewards, G),
        reference.dynamic_sampling_keep(random_rewards, G))
  indices, valid = rl.fill_groups(keep, 5)
  np.testing.assert_array_equal(indices, [2, 4, 5, 0, 0])
  np.testing.assert_array_equal(valid, [True, True, True, False, False])
  lengths = np.array([0, 3000, 3072, 3500, 4000, 4096])
  for args in [(4096, 1024, 1.0), (4096, 512, 0.5)]:
    np.testing.assert_allclose(rl.overlong_penalty(lengths, *args),
                               reference.overlong_penalty(lengths, *args),
                               rtol=1e-6, atol=1e-7)
