"""Response diversity D, per prompt group, in [0, 1].

The paper chooses the training temperature T from measured response
diversity but publishes no formula; ours: per prompt group, pool the token
n-grams (n = 4 by default, `diversity.ngram` in configs) of all G responses;
D_group = |distinct| / |all|; D = mean over the groups that have any n-gram.
Pure NumPy on host arrays.
"""

from __future__ import annotations

import numpy as np


def _ngrams(tokens: np.ndarray, n: int) -> list[tuple[int, ...]]:
  if len(tokens) < n:
    return []
  windows = np.lib.stride_tricks.sliding_window_view(tokens, n)
  return [tuple(w) for w in windows.tolist()]


def group_diversity(tokens_NxT, lengths_N, group_size: int, n: int = 4) -> np.ndarray:
  """D_group per prompt group (NaN for groups without any n-gram)."""
  tokens_NxT, lengths_N = np.asarray(tokens_NxT), np.asarray(lengths_N)
  num = tokens_NxT.shape[0]
  if num % group_size:
    raise ValueError(f"{num} responses do not split into groups of {group_size}")
  out = np.full(num // group_size, np.nan)
  for g in range(num // group_size):
    grams = []
    for r in range(g * group_size, (g + 1) * group_size):
      grams += _ngrams(tokens_NxT[r, : lengths_N[r]], n)
    if grams:
      out[g] = len(set(grams)) / len(grams)
  return out


def response_diversity(tokens_NxT, lengths_N, group_size: int, n: int = 4) -> float:
  """D: mean over groups of pooled distinct-n-gram ratios, in [0, 1].

  NaN when no group has a response of at least n tokens.
  """
  per_group = group_diversity(tokens_NxT, lengths_N, group_size, n)
  valid = per_group[~np.isnan(per_group)]
  return float(valid.mean()) if valid.size else float("nan")
