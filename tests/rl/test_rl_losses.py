"""policy_loss and its aggregations against the float64 reference."""
import functools

import jax
import numpy as np
import pytest

from microcoder_jax import rl
from rl import rl_reference as reference

N, T = 6, 9
RTOL = 1e-6
CLIP = dict(clip_low=0.2, clip_high=0.28)  # ε, ε_high of DAPO / MicroCoder-GRPO


def _inputs(seed, *, extreme=False, zero_rows=(), zero_all=False):
  rng = np.random.default_rng(seed)
  old = rng.normal(-2.0, 1.0, (N, T)).astype(np.float32)
  # Log-ratios spanning the clip range on both sides (and far beyond).
  scale = 30.0 if extreme else 0.4
  logp = (old + rng.normal(0, scale, (N, T))).astype(np.float32)
  ref = (logp + rng.normal(0, 0.3, (N, T))).astype(np.float32)
  # Â = 0, then alternating signs so both clip sides are exercised.
  signs = np.array([0, 1, -1, 1, -1, 1])
  adv = (signs * np.abs(rng.normal(0, 1, (N,)))).astype(np.float32)
  lengths = rng.integers(T // 2, T + 1, (N,))
  mask = (np.arange(T)[None] < lengths[:, None]).astype(np.float32)
  for row in zero_rows:
    mask[row] = 0.0
  if zero_all:
    mask[:] = 0.0
  return logp, old, adv, mask, ref


@functools.partial(
    jax.jit, static_argnames=("aggregation", "kl_estimator", "use_ref",
                              "use_dual"))
def _loss_and_grad(logp, old, adv, mask, ref, clip_low, clip_high, dual,
                   kl_coef, *, aggregation, kl_estimator, use_ref, use_dual):

  def f(lp):
    return rl.policy_loss(
        lp, old, adv, mask, clip_low=clip_low, clip_high=clip_high,
        dual_clip=dual if use_dual else None,
        ref_logp_NxT=ref if use_ref else None, kl_coef=kl_coef,
        kl_estimator=kl_estimator, aggregation=aggregation)

  (loss, metrics), grad = jax.value_and_grad(f, has_aux=True)(logp)
  return loss, metrics, grad


def _check(inputs, *, aggregation="token-mean", kl_estimator="k3",
           use_ref=False, use_dual=False, clip_low=0.2, clip_high=0.28,
           dual=3.0, kl_coef=0.05):
  logp, old, adv, mask, ref = inputs
  loss, metrics, grad = _loss_and_grad(
      logp, old, adv, mask, ref, clip_low, clip_high, dual, kl_coef,
      aggregation=aggregation, kl_estimator=kl_estimator, use_ref=use_ref,
      use_dual=use_dual)
  want_loss, want_grad, want_metrics = reference.policy_loss(
      logp, old, adv, mask, clip_low=clip_low, clip_high=clip_high,
      dual_clip=dual if use_dual else None, ref_logp=ref if use_ref else None,
      kl_coef=kl_coef, kl_estimator=kl_estimator, aggregation=aggregation)
  scale = max(abs(want_loss), 1e-3)
  np.testing.assert_allclose(loss, want_loss, rtol=RTOL, atol=RTOL * scale)
  gscale = max(np.abs(want_grad).max(), 1e-3)
  np.testing.assert_allclose(grad, want_grad, rtol=RTOL, atol=RTOL * gscale)
  assert set(want_metrics) <= set(metrics)
  for key, want in want_metrics.items():
    np.testing.assert_allclose(metrics[key], want, rtol=RTOL, atol=1e-6,
                               err_msg=key)
  for value in jax.tree.leaves((loss, metrics, grad)):
    assert np.all(np.isfinite(value))
  return loss, metrics


@pytest.mark.parametrize("aggregation", sorted(rl.AGGREGATIONS))
def test_aggregations_match_reference(aggregation):
  for seed in range(3):
    _check(_inputs(seed, zero_rows=(2,)), aggregation=aggregation)


@pytest.mark.parametrize("kl_estimator", ["k1", "k2", "k3"])
def test_kl_estimators_match_reference(kl_estimator):
  loss, metrics = _check(_inputs(7), kl_estimator=kl_estimator, use_ref=True)
  assert "kl" in metrics


def test_dual_clip_and_extreme_ratios():
  inputs = _inputs(11, extreme=True)
  _, metrics = _check(inputs, use_dual=True, use_ref=True)
  assert metrics["clipfrac_dual"] > 0
  assert metrics["ratio_max"] == pytest.approx(np.exp(20.0), rel=1e-5)
  # Symmetric clip values and a different dual c, same compiled function.
  _check(inputs, use_dual=True, clip_low=0.1, clip_high=0.1, dual=1.5)


def test_zero_mask_is_finite_and_zero():
  loss, metrics = _check(_inputs(3, zero_all=True), use_ref=True,
                         aggregation="seq-mean-token-mean")
  assert float(loss) == 0.0
  assert metrics["ratio_min"] == metrics["ratio_max"] == 1.0
  assert metrics["clipfrac"] == 0.0


def test_clip_fractions_partition_clipfrac():
  _, metrics = _check(_inputs(5))
  np.testing.assert_allclose(
      metrics["clipfrac"], metrics["clipfrac_low"] + metrics["clipfrac_high"],
      atol=1e-6)
  assert metrics["clipfrac_low"] > 0 and metrics["clipfrac_high"] > 0


def test_non_finite_padding_does_not_leak():
  logp, old, adv, mask, ref = _inputs(4, zero_rows=(1,))
  logp, old = logp.copy(), old.copy()
  logp[mask == 0] = -np.inf
  old[mask == 0] = np.nan
  loss, metrics, grad = _loss_and_grad(
      logp, old, adv, mask, ref, 0.2, 0.28, 3.0, 0.0,
      aggregation="token-mean", kl_estimator="k3", use_ref=False,
      use_dual=False)
  assert np.isfinite(loss) and np.all(np.isfinite(grad))
  assert all(np.isfinite(v) for v in metrics.values())


def test_entropy_metric_and_no_kl_without_ref():
  logp, old, adv, mask, _ = _inputs(8)
  ent = np.abs(logp)
  _, metrics = rl.policy_loss(logp, old, adv, mask, entropy_NxT=ent,
                              kl_coef=0.5, **CLIP)
  assert "kl" not in metrics
  np.testing.assert_allclose(metrics["entropy"],
                             (ent * mask).sum() / mask.sum(), rtol=RTOL)


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-mean"])
def test_micro_batches_reproduce_full_batch(aggregation):
  logp, old, adv, mask, ref = _inputs(9, zero_rows=(4,))
  kwargs = dict(aggregation=aggregation, ref_logp_NxT=None, **CLIP)

  def full(lp):
    return rl.policy_loss(lp, old, adv, mask, **kwargs)[0]

  def accumulated(lp):
    denominator = rl.aggregation_denominator(mask, aggregation)
    total = 0.0
    for rows in (slice(0, 2), slice(2, N)):
      loss_sum, _, _ = rl.policy_loss_terms(lp[rows], old[rows], adv[rows],
                                            mask[rows], **kwargs)
      total += loss_sum
    return total / denominator

  want, want_grad = jax.value_and_grad(full)(logp)
  got, got_grad = jax.value_and_grad(accumulated)(logp)
  np.testing.assert_allclose(got, want, rtol=RTOL)
  np.testing.assert_allclose(got_grad, want_grad, rtol=RTOL, atol=1e-9)


def test_unknown_names_raise():
  logp, old, adv, mask, _ = _inputs(0)
  with pytest.raises(ValueError, match="aggregation"):
    rl.policy_loss(logp, old, adv, mask, aggregation="token-sum", **CLIP)
  with pytest.raises(ValueError, match="KL estimator"):
    rl.policy_loss(logp, old, adv, mask, ref_logp_NxT=logp,
                   kl_estimator="k4", **CLIP)
