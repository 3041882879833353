"""Curation stage 4: measure, predict, calibrate and select by difficulty.

Pass rates come from k samples per problem with a policy (our `Sampler`,
judged by the `Evaluator`). A difficulty score (higher = harder) from the
metadata or from a rating file is calibrated against the measured rates with
a binomial logistic fit, p = sigmoid(a + b * score); problems that were not
measured (beyond `measure_max`) are selected by the calibrated prediction.
"""

from __future__ import annotations

import json
import math

import numpy as np

LABEL_SCORE = {"easy": 1.0, "medium": 2.0, "hard": 3.0}
RATE_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)


def measure_pass_rates(policy_path: str, ev, rows: list[dict], *, k: int,
                       max_new_tokens: int, temperature: float, seed: int) -> dict:
  """{id: fraction of k samples that passed} with the policy at `policy_path`."""
  import jax  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top

  from microcoder_jax import heldout, models  # pylint: disable=g-import-not-at-top
  from microcoder_jax.data import prompts  # pylint: disable=g-import-not-at-top
  from microcoder_jax.curation.verify import problem_of  # pylint: disable=g-import-not-at-top
  from microcoder_jax.sampling import Sampler  # pylint: disable=g-import-not-at-top

  if not rows:
    return {}
  model = models.from_pretrained(policy_path)
  tokenizer = transformers.AutoTokenizer.from_pretrained(policy_path)
  problems = [problem_of(r) for r in rows]
  ids = [prompts.encode_prompt(tokenizer, p) for p in problems]
  sampler = Sampler(model, stop_ids=prompts.stop_token_ids(tokenizer),
                    pad_id=tokenizer.pad_token_id or 0)
  _, _, _, results = heldout.evaluate_policy(
      sampler, nnx.state(model), ev, tokenizer, problems, ids,
      heldout.Settings(k=k, temperature=temperature, top_p=1.0,
                       max_new_tokens=max_new_tokens, timeout_s=ev.timeout_s,
                       memory_mb=ev.memory_mb),
      rng=jax.random.key(seed), batch_prompts=64)
  passed_PxK = np.asarray([r.verdict == "pass" for r in results]).reshape(len(rows), k)
  return {p.id: float(x) for p, x in zip(problems, passed_PxK.mean(axis=1))}


def band_reason(rate: float, band: tuple[float, float]) -> str:
  """"" inside the inclusive band, else "too_easy" / "too_hard"."""
  lo, hi = band
  if rate > hi:
    return "too_easy"
  if rate < lo:
    return "too_hard"
  return ""


# ----------------------------------------------------------- predictor
def load_ratings(path: str) -> dict:
  """{id: score} from JSONL rows {"id", "rating"} (higher = harder)."""
  out = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      if line.strip():
        row = json.loads(line)
        out[str(row["id"])] = float(row["rating"])
  return out


def metadata_score(row: dict):
  """A numeric rating if present, else easy/medium/hard as 1/2/3, else None."""
  if isinstance(row.get("rating"), (int, float)):
    return float(row["rating"])
  return LABEL_SCORE.get(str(row.get("difficulty", "")).lower())


def fit_logistic(score_N, passed_N, total_N, iters: int = 50, l2: float = 1e-3):
  """(a, b) maximising the binomial likelihood of passed/total (Newton)."""
  x = np.asarray(score_N, float)
  mu, sd = x.mean(), x.std() or 1.0
  z = (x - mu) / sd
  y, n = np.asarray(passed_N, float), np.asarray(total_N, float)
  w = np.zeros(2)
  X = np.stack([np.ones_like(z), z], axis=1)
  for _ in range(iters):
    p = 1 / (1 + np.exp(-(X @ w)))
    grad = X.T @ (y - n * p) - l2 * w
    hess = -(X.T * (n * p * (1 - p))) @ X - l2 * np.eye(2)
    step = np.linalg.solve(hess, grad)
    w -= step
    if np.abs(step).max() < 1e-9:
      break
  return float(w[0] - w[1] * mu / sd), float(w[1] / sd)


def predict(a: float, b: float, score: float) -> float:
  return 1 / (1 + math.exp(-(a + b * score)))


def calibrate(scores: dict, rates: dict, k: int) -> dict:
  """Fits the predictor on problems with both a score and a measured rate."""
  ids = sorted(set(scores) & set(rates))
  if len({scores[i] for i in ids}) < 2 or len({rates[i] for i in ids}) < 2:
    return {"fitted": False, "n": len(ids),
            "why": "needs two or more distinct scores and measured pass rates"}
  s = np.asarray([scores[i] for i in ids])
  r = np.asarray([rates[i] for i in ids])
  a, b = fit_logistic(s, r * k, np.full(len(ids), k))
  p = np.asarray([predict(a, b, x) for x in s])
  eps = 1e-9
  log_loss = -np.mean(r * np.log(p + eps) + (1 - r) * np.log(1 - p + eps))
  base = np.full_like(r, r.mean())
  table = [{"score": float(v), "n": int((s == v).sum()),
            "measured": round(float(r[s == v].mean()), 4),
            "predicted": round(predict(a, b, float(v)), 4)} for v in np.unique(s)][:20]
  return {"fitted": True, "n": len(ids), "a": round(a, 4), "b": round(b, 4),
          "log_loss": round(float(log_loss), 4),
          "brier": round(float(np.mean((p - r) ** 2)), 4),
          "brier_constant": round(float(np.mean((base - r) ** 2)), 4),
          "spearman": round(spearman(s, r), 4), "by_score": table}


def spearman(x, y) -> float:
  rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
  if rx.std() == 0 or ry.std() == 0:
    return 0.0
  return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(v):
  order = v.argsort(kind="stable")
  ranks = np.empty(len(v))
  ranks[order] = np.arange(len(v))
  for u in np.unique(v):  # Ties share their mean rank.
    ranks[v == u] = ranks[v == u].mean()
  return ranks


def rate_histogram(rates) -> dict:
  """Counts per pass-rate bin: "0", "(0,0.25]", ..., "(0.75,1)", "1"."""
  hist = {"0": 0}
  for lo, hi in zip(RATE_BINS[:-1], RATE_BINS[1:]):
    hist[f"({lo:g},{hi:g}{')' if hi == 1 else ']'}"] = 0
  hist["1"] = 0
  for r in rates:
    if r == 0 or r == 1:
      hist[f"{r:g}"] += 1
      continue
    for lo, hi in zip(RATE_BINS[:-1], RATE_BINS[1:]):
      if lo < r <= hi:
        hist[f"({lo:g},{hi:g}{')' if hi == 1 else ']'}"] += 1
        break
  return hist
