"""Float64 NumPy references for microcoder_jax.rl, written loop-first.

Independent of the library: plain per-group / per-row Python following the
paper's formulas and verl's `core_algos` semantics.
"""
import numpy as np


def group_advantages(rewards, group_size, method="grpo", eps=1e-6, ddof=0,
                     valid=None):
  rewards = np.asarray(rewards, np.float64)
  valid = np.ones(rewards.shape, bool) if valid is None else np.asarray(valid)
  out = np.zeros_like(rewards)
  for start in range(0, len(rewards), group_size):
    idx = [i for i in range(start, start + group_size) if valid[i]]
    r = rewards[idx]
    if len(r) <= 1 or np.all(r == r[0]):
      continue
    if method == "grpo":
      std = np.std(r, ddof=ddof) if len(r) > ddof else 0.0
      a = (r - r.mean()) / (std + eps)
    elif method == "drgrpo":
      a = r - r.mean()
    elif method == "rloo":
      a = np.array([r[j] - np.mean(np.delete(r, j)) for j in range(len(r))])
    else:
      raise ValueError(method)
    out[idx] = a
  return out


def repeat_tail(tokens, lengths, window, periodic=False):
  out = []
  for row, length in zip(np.asarray(tokens), np.asarray(lengths)):
    length = int(length)
    if length < 2 * window:
      out.append(False)
      continue
    tail = list(row[length - 2 * window:length])
    if not periodic:
      out.append(tail[:window] == tail[window:])
      continue
    out.append(any(tail[:-p] == tail[p:] for p in range(1, window + 1)))
  return np.array(out, bool)


def ctm(u, lengths, max_length, non_incorrect, repeating, rho):
  return np.array([
      l >= max_length and ni and not rep and ui < rho
      for ui, l, ni, rep in zip(u, lengths, non_incorrect, repeating)
  ], bool)


def log_softmax_target(hidden, unembed, targets, temperature):
  """float64 log softmax(h W / T)[target], temperature scalar or per row."""
  h = np.asarray(hidden, np.float64)
  w = np.asarray(unembed, np.float64)
  n, t, _ = h.shape
  temp = np.broadcast_to(np.asarray(temperature, np.float64).reshape(-1, 1),
                         (n, t))
  logits = np.einsum("ntd,dv->ntv", h, w) / temp[..., None]
  m = logits.max(-1, keepdims=True)
  lse = (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))[..., 0]
  tgt = np.take_along_axis(logits, np.asarray(targets)[..., None], -1)[..., 0]
  return tgt - lse, logits, lse


def entropy(hidden, unembed, temperature):
  _, logits, lse = log_softmax_target(
      hidden, unembed, np.zeros(np.asarray(hidden).shape[:2], int),
      temperature)
  p = np.exp(logits - lse[..., None])
  return -(p * (logits - lse[..., None])).sum(-1)


def _kl(logp, ref, estimator):
  if estimator in ("k1", "kl"):
    return logp - ref, np.ones_like(logp)
  if estimator in ("k2", "mse"):
    return 0.5 * (logp - ref)**2, logp - ref
  x = np.clip(ref - logp, -20, 20)
  val = np.exp(x) - x - 1
  grad = np.where(np.abs(ref - logp) < 20, 1 - np.exp(x), 0.0)
  grad = np.where(np.abs(val) < 10, grad, 0.0)
  return np.clip(val, -10, 10), grad


def policy_loss(logp, old_logp, adv, mask, clip_low=0.2, clip_high=0.28,
                dual_clip=None, ref_logp=None, kl_coef=0.0, kl_estimator="k3",
                aggregation="token-mean", norm_length=None):
  """Returns (loss, d loss / d logp, metrics) in float64, token by token."""
  logp = np.asarray(logp, np.float64)
  old_logp = np.asarray(old_logp, np.float64)
  mask = np.asarray(mask, np.float64)
  n, t = logp.shape
  loss_tok = np.zeros((n, t))
  dtok = np.zeros((n, t))  # d loss_tok / d logp
  stats = {"clip": [], "high": [], "low": [], "k3": [], "k1": [], "ratio": [],
           "dual": [], "kl": []}
  for i in range(n):
    a = float(adv[i])
    for j in range(t):
      lr = logp[i, j] - old_logp[i, j]
      inside = abs(lr) < 20
      lr = min(max(lr, -20.0), 20.0)
      r = np.exp(lr)
      unclipped = -a * r
      clipped = -a * min(max(r, 1 - clip_low), 1 + clip_high)
      if unclipped >= clipped:
        val, dval = unclipped, (-a * r if inside else 0.0)
      else:
        val, dval = clipped, 0.0
      capped = False
      if dual_clip is not None and a < 0 and val > -a * dual_clip:
        val, dval, capped = -a * dual_clip, 0.0, True
      if ref_logp is not None:
        k, dk = _kl(logp[i, j], float(ref_logp[i, j]), kl_estimator)
        val, dval = val + kl_coef * k, dval + kl_coef * dk
        stats["kl"].append((k, mask[i, j]))
      loss_tok[i, j], dtok[i, j] = val, dval
      w = mask[i, j]
      stats["clip"].append((clipped > unclipped, w))
      stats["high"].append((a > 0 and r > 1 + clip_high, w))
      stats["low"].append((a < 0 and r < 1 - clip_low, w))
      stats["k3"].append((r - 1 - lr, w))
      stats["k1"].append((-lr, w))
      stats["dual"].append((capped, w))
      if w > 0:
        stats["ratio"].append((r, w))

  count = mask.sum(1)
  live = (count > 0).astype(np.float64)
  if aggregation == "token-mean":
    weights = mask / mask.sum() if mask.sum() > 0 else 0 * mask
  else:
    if aggregation == "seq-mean-token-mean":
      per_row = mask / np.maximum(count, 1e-8)[:, None]
    elif aggregation == "seq-mean-token-sum":
      per_row = mask
    elif aggregation == "seq-mean-token-sum-norm":
      per_row = mask / (t if norm_length is None else norm_length)
    else:
      raise ValueError(aggregation)
    weights = per_row * live[:, None] / live.sum() if live.sum() else 0 * mask
  loss = float((weights * loss_tok).sum())

  def mean(key):
    vals = stats[key]
    total = sum(w for _, w in vals)
    return sum(float(v) * w for v, w in vals) / total if total else 0.0

  ratios = stats["ratio"]
  metrics = {
      "clipfrac": mean("clip"), "clipfrac_high": mean("high"),
      "clipfrac_low": mean("low"), "approx_kl": mean("k3"),
      "ppo_kl": mean("k1"),
      "ratio_mean": (sum(r * w for r, w in ratios) / sum(w for _, w in ratios)
                     if ratios else 1.0),
      "ratio_min": min(r for r, _ in ratios) if ratios else 1.0,
      "ratio_max": max(r for r, _ in ratios) if ratios else 1.0,
  }
  if dual_clip is not None:
    metrics["clipfrac_dual"] = mean("dual")
  if ref_logp is not None:
    metrics["kl"] = mean("kl")
  return loss, weights * dtok, metrics


def overlong_penalty(lengths, max_length, buffer, factor):
  out = []
  for length in lengths:
    exceed = length - (max_length - buffer)
    out.append(min(-exceed / buffer * factor, 0.0))
  return np.array(out)


def logprob_grads(hidden, unembed, targets, temperature, cotangent):
  """float64 gradients of Σ c·logp w.r.t. hidden, unembed and per-row T."""
  h = np.asarray(hidden, np.float64)
  w = np.asarray(unembed, np.float64)
  c = np.asarray(cotangent, np.float64)
  n, t, _ = h.shape
  temp = np.broadcast_to(np.asarray(temperature, np.float64).reshape(-1),
                         (n,))
  _, logits, lse = log_softmax_target(h, w, targets, temp)
  p = np.exp(logits - lse[..., None])
  onehot = np.eye(w.shape[1])[np.asarray(targets)]
  dz = c[..., None] * (onehot - p) / temp[:, None, None]
  z = logits * temp[:, None, None]
  ez = (p * z).sum(-1)
  z_tgt = (onehot * z).sum(-1)
  dtemp = (c * (ez - z_tgt)).sum(-1) / temp**2
  return (np.einsum("ntv,dv->ntd", dz, w), np.einsum("ntd,ntv->dv", h, dz),
          dtemp)


def dynamic_sampling_keep(rewards, group_size):
  return np.array([len(set(rewards[i:i + group_size])) > 1
                   for i in range(0, len(rewards), group_size)])
