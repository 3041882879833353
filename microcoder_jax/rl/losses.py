"""The clipped policy loss of GRPO / DAPO / MicroCoder-GRPO over arrays.

Per token, with r_t(θ) = π_θ^T(o_t|·) / π_θold^T(o_t|·) and the sequence's Â_i:

  ℓ_t = max(−Â_i·r_t, −Â_i·clip(r_t, 1−ε, 1+ε_high))   PPO, asymmetric clip
  ℓ_t = min(ℓ_t, −Â_i·c) where Â_i < 0                  dual clip c, optional
  ℓ_t += β · KL_t(π_θ ‖ π_ref)                          only with ref log-probs

then aggregated over the response mask. The result is a loss to minimise
(−J(θ)). log r is clamped to ±20 before exp, as in verl.

Every aggregation is a (sum, denominator) pair: `policy_loss_terms` returns
both, so a trainer that splits a batch into micro-batches can sum the
micro-batch sums and divide by the full batch's `aggregation_denominator`,
reproducing the full-batch loss and gradient exactly.
"""
from typing import Callable, Optional

import chex
import jax
import jax.numpy as jnp

LOG_RATIO_CLAMP = 20.0

# --- KL estimators -----------------------------------------------------------

KLFn = Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]
KL_ESTIMATORS: dict[str, KLFn] = {}


def register_kl(*names: str) -> Callable[[KLFn], KLFn]:
  """Registers a per-token KL(π_θ ‖ π_ref) estimator under `names`."""

  def decorator(fn: KLFn) -> KLFn:
    for name in names:
      KL_ESTIMATORS[name] = fn
    return fn

  return decorator


@register_kl("k1", "kl")
def kl_k1(logp, ref_logp):
  """k1 = log π_θ − log π_ref (unbiased value, can be negative)."""
  return logp - ref_logp


@register_kl("k2", "mse")
def kl_k2(logp, ref_logp):
  """k2 = ½ (log π_θ − log π_ref)²."""
  return 0.5 * jnp.square(logp - ref_logp)


@register_kl("k3", "low_var_kl")
def kl_k3(logp, ref_logp):
  """k3 = π_ref/π_θ − log(π_ref/π_θ) − 1, clamped as verl's low_var_kl."""
  log_r = jnp.clip(ref_logp - logp, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
  return jnp.clip(jnp.exp(log_r) - log_r - 1.0, -10.0, 10.0)


# --- aggregation -------------------------------------------------------------

# fn(loss_NxT, mask_NxT, norm_length) -> (sum, denominator).
AggFn = Callable[[jnp.ndarray, jnp.ndarray, float], tuple]
AGGREGATIONS: dict[str, AggFn] = {}


def register_aggregation(name: str) -> Callable[[AggFn], AggFn]:
  """Registers a loss aggregation mode under `name`."""

  def decorator(fn: AggFn) -> AggFn:
    AGGREGATIONS[name] = fn
    return fn

  return decorator


def _live_rows(mask_NxT):
  return (mask_NxT.sum(-1) > 0).astype(jnp.float32)


@register_aggregation("token-mean")
def _token_mean(loss_NxT, mask_NxT, norm_length):
  """Σ_i,t m·ℓ / Σ_i,t m (DAPO, verl default)."""
  del norm_length
  return (loss_NxT * mask_NxT).sum(), mask_NxT.sum()


@register_aggregation("seq-mean-token-mean")
def _seq_mean_token_mean(loss_NxT, mask_NxT, norm_length):
  """Mean over rows with tokens of each row's token mean (GRPO paper)."""
  del norm_length
  count_N = mask_NxT.sum(-1)
  row_N = (loss_NxT * mask_NxT).sum(-1) / jnp.maximum(count_N, 1e-8)
  live_N = _live_rows(mask_NxT)
  return (row_N * live_N).sum(), live_N.sum()


@register_aggregation("seq-mean-token-sum")
def _seq_mean_token_sum(loss_NxT, mask_NxT, norm_length):
  """Mean over rows with tokens of each row's token sum."""
  del norm_length
  return (loss_NxT * mask_NxT).sum(), _live_rows(mask_NxT).sum()


@register_aggregation("seq-mean-token-sum-norm")
def _seq_mean_token_sum_norm(loss_NxT, mask_NxT, norm_length):
  """Row token sums / L, averaged over rows with tokens (Dr. GRPO)."""
  return ((loss_NxT * mask_NxT).sum() / norm_length,
          _live_rows(mask_NxT).sum())


def _aggregate(loss_NxT, mask_NxT, aggregation, norm_length):
  if aggregation not in AGGREGATIONS:
    raise ValueError(f"Unknown aggregation {aggregation!r}; "
                     f"known: {sorted(AGGREGATIONS)}")
  if norm_length is None:
    norm_length = loss_NxT.shape[1]
  # `where` keeps inf/NaN in padded positions out of the sums.
  loss_NxT = jnp.where(mask_NxT > 0, loss_NxT, 0.0)
  return AGGREGATIONS[aggregation](loss_NxT, mask_NxT, norm_length)


def aggregation_denominator(mask_NxT: jnp.ndarray,
                            aggregation: str = "token-mean") -> jnp.ndarray:
  """The denominator `policy_loss_terms` returns for this mask (global use)."""
  mask_NxT = jnp.asarray(mask_NxT, jnp.float32)
  return _aggregate(jnp.zeros_like(mask_NxT), mask_NxT, aggregation, 1.0)[1]


def safe_ratio(total, denominator):
  """total / denominator, 0 where the denominator is 0 (no NaN, no grad NaN)."""
  positive = denominator > 0
  return jnp.where(positive, total / jnp.where(positive, denominator, 1.0), 0.0)


# --- the loss ----------------------------------------------------------------


def _masked_mean(x_NxT, mask_NxT):
  x_NxT = jnp.where(mask_NxT > 0, x_NxT, 0.0)
  return safe_ratio((x_NxT * mask_NxT).sum(), mask_NxT.sum())


def policy_loss_terms(logp_NxT: jnp.ndarray,
                      old_logp_NxT: jnp.ndarray,
                      advantages_N: jnp.ndarray,
                      mask_NxT: jnp.ndarray,
                      *,
                      clip_low,
                      clip_high,
                      dual_clip=None,
                      ref_logp_NxT: Optional[jnp.ndarray] = None,
                      kl_coef=0.0,
                      kl_estimator: str = "k3",
                      aggregation: str = "token-mean",
                      norm_length=None,
                      entropy_NxT: Optional[jnp.ndarray] = None):
  """Per-batch (loss_sum, denominator, metrics); loss = sum / denominator.

  Arguments are those of `policy_loss`. For gradient accumulation, minimise
  Σ_micro loss_sum / D_global with D_global = `aggregation_denominator` of
  the whole batch's mask (or the sum of the returned denominators). Metrics
  are means over this call's masked tokens.
  """
  chex.assert_rank([logp_NxT, advantages_N], [2, 1])
  chex.assert_equal_shape([logp_NxT, old_logp_NxT, mask_NxT])
  chex.assert_shape(advantages_N, logp_NxT.shape[:1])
  if kl_estimator not in KL_ESTIMATORS:
    raise ValueError(f"Unknown KL estimator {kl_estimator!r}; "
                     f"known: {sorted(KL_ESTIMATORS)}")
  mask_NxT = jnp.asarray(mask_NxT, jnp.float32)
  live = mask_NxT > 0
  # Masked positions may hold anything (padding, -inf): zero them first so
  # neither the loss nor its gradient can see them.
  logp_NxT, old_logp_NxT = (jnp.where(live, jnp.asarray(x, jnp.float32), 0.0)
                            for x in (logp_NxT, old_logp_NxT))
  adv_Nx1 = jnp.asarray(advantages_N, jnp.float32)[:, None]
  log_ratio_NxT = jnp.clip(logp_NxT - old_logp_NxT, -LOG_RATIO_CLAMP,
                           LOG_RATIO_CLAMP)
  ratio_NxT = jnp.exp(log_ratio_NxT)

  pg_unclipped_NxT = -adv_Nx1 * ratio_NxT
  pg_clipped_NxT = -adv_Nx1 * jnp.clip(ratio_NxT, 1.0 - clip_low,
                                       1.0 + clip_high)
  pg_NxT = jnp.maximum(pg_unclipped_NxT, pg_clipped_NxT)
  metrics = {}
  if dual_clip is not None:
    # verl clip_ratio_c: for Â < 0 the loss is capped at −Â·c (c > 1).
    pg_dual_NxT = -adv_Nx1 * dual_clip
    capped_NxT = (adv_Nx1 < 0) & (pg_NxT > pg_dual_NxT)
    metrics["clipfrac_dual"] = _masked_mean(capped_NxT, mask_NxT)
    pg_NxT = jnp.where(adv_Nx1 < 0, jnp.minimum(pg_NxT, pg_dual_NxT), pg_NxT)
  loss_NxT = pg_NxT

  if ref_logp_NxT is not None:
    chex.assert_equal_shape([logp_NxT, ref_logp_NxT])
    ref_logp_NxT = jnp.where(live, jnp.asarray(ref_logp_NxT, jnp.float32), 0.0)
    kl_NxT = KL_ESTIMATORS[kl_estimator](logp_NxT, ref_logp_NxT)
    loss_NxT = loss_NxT + kl_coef * kl_NxT
    metrics["kl"] = _masked_mean(kl_NxT, mask_NxT)

  loss_sum, denominator = _aggregate(loss_NxT, mask_NxT, aggregation,
                                     norm_length)
  pg_sum, _ = _aggregate(pg_NxT, mask_NxT, aggregation, norm_length)

  adv_pos_NxT = jnp.broadcast_to(adv_Nx1 > 0, mask_NxT.shape)
  adv_neg_NxT = jnp.broadcast_to(adv_Nx1 < 0, mask_NxT.shape)
  any_live = live.any()
  metrics.update({
      "pg_loss": safe_ratio(pg_sum, denominator),
      "clipfrac": _masked_mean(pg_clipped_NxT > pg_unclipped_NxT, mask_NxT),
      "clipfrac_high": _masked_mean(
          adv_pos_NxT & (ratio_NxT > 1.0 + clip_high), mask_NxT),
      "clipfrac_low": _masked_mean(
          adv_neg_NxT & (ratio_NxT < 1.0 - clip_low), mask_NxT),
      # KL(π_old ‖ π_θ) on tokens sampled from π_old: k3 = (r − 1) − log r;
      # ppo_kl is verl's k1 = −log r.
      "approx_kl": _masked_mean(ratio_NxT - 1.0 - log_ratio_NxT, mask_NxT),
      "ppo_kl": _masked_mean(-log_ratio_NxT, mask_NxT),
      "ratio_mean": jnp.where(any_live, _masked_mean(ratio_NxT, mask_NxT),
                              1.0),
      "ratio_min": jnp.where(any_live,
                             jnp.where(live, ratio_NxT, jnp.inf).min(), 1.0),
      "ratio_max": jnp.where(any_live,
                             jnp.where(live, ratio_NxT, -jnp.inf).max(), 1.0),
  })
  if entropy_NxT is not None:
    chex.assert_equal_shape([logp_NxT, entropy_NxT])
    metrics["entropy"] = _masked_mean(entropy_NxT, mask_NxT)
  metrics = jax.tree.map(
      lambda x: jax.lax.stop_gradient(jnp.asarray(x, jnp.float32)), metrics)
  return loss_sum, denominator, metrics


def policy_loss(logp_NxT: jnp.ndarray,
                old_logp_NxT: jnp.ndarray,
                advantages_N: jnp.ndarray,
                mask_NxT: jnp.ndarray,
                *,
                clip_low,
                clip_high,
                dual_clip=None,
                ref_logp_NxT: Optional[jnp.ndarray] = None,
                kl_coef=0.0,
                kl_estimator: str = "k3",
                aggregation: str = "token-mean",
                norm_length=None,
                entropy_NxT: Optional[jnp.ndarray] = None):
  """Clipped surrogate loss −J(θ) and metrics.

  Args:
    logp_NxT: log π_θ^T(o_t) of the policy being optimised (differentiable).
    old_logp_NxT: log π_θold^T(o_t) from rollout time.
    advantages_N: Â_i per response (after any truncation mask).
    mask_NxT: response-token mask m (bool or float weights).
    clip_low: ε; the ratio is clipped below at 1 − ε. Traced.
    clip_high: ε_high; clipped above at 1 + ε_high. Traced.
    dual_clip: None (off) or c > 1: for Â < 0 the loss is capped at −Â·c.
    ref_logp_NxT: log π_ref(o_t). None skips the KL term entirely (β = 0
      callers should not run a reference forward at all).
    kl_coef: β, multiplies the KL estimator when `ref_logp_NxT` is given.
    kl_estimator: "k1", "k2" or "k3" (aliases kl, mse, low_var_kl). Static.
    aggregation: "token-mean", "seq-mean-token-mean", "seq-mean-token-sum"
      or "seq-mean-token-sum-norm". Static.
    norm_length: L of "seq-mean-token-sum-norm"; None = T (verl's default).
    entropy_NxT: optional per-token entropies, reported as `entropy`.

  Returns:
    (loss, metrics): a float32 scalar to minimise and a dict of float32
    scalars: pg_loss, clipfrac, clipfrac_low, clipfrac_high, approx_kl,
    ppo_kl, ratio_mean/min/max, plus clipfrac_dual, kl and entropy when
    enabled. With an all-zero mask the loss and fractions are 0 and the ratio
    statistics are 1.
  """
  loss_sum, denominator, metrics = policy_loss_terms(
      logp_NxT, old_logp_NxT, advantages_N, mask_NxT, clip_low=clip_low,
      clip_high=clip_high, dual_clip=dual_clip, ref_logp_NxT=ref_logp_NxT,
      kl_coef=kl_coef, kl_estimator=kl_estimator, aggregation=aggregation,
      norm_length=norm_length, entropy_NxT=entropy_NxT)
  return safe_ratio(loss_sum, denominator), metrics
