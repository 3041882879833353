"""Curation stage 2: statement analysis, judging options and deduplication.

Near duplicates are found with MinHash locality-sensitive hashing over word
3-shingles of the normalised statement (32 bands x 4 rows); every candidate
pair is then confirmed with the exact Jaccard similarity, so LSH only decides
which pairs are compared, never whether a pair is a duplicate.
"""

from __future__ import annotations

import collections
import hashlib
import re
import zlib

import numpy as np

from microcoder_jax.evaluator.problems import infer_compare

_INTERACTIVE = re.compile(
    r"this\s+is\s+an\s+interactive\s+(problem|task)|\binteractor\b|"
    r"interactive\s+problem|(flush|fflush)\s*\(?\s*(the\s+)?(output|stdout)",
    re.IGNORECASE)
_MULTI_ANSWER = re.compile(
    r"(if|when)\s+there\s+(are|is)\s+(several|multiple|many|more\s+than\s+one)\s+"
    r"(possible\s+|valid\s+|correct\s+|optimal\s+)?(answers|solutions)|"
    r"(print|output|return)\s+any\s+(one\s+)?(of\s+them|valid|such|correct|possible)|"
    r"any\s+(valid|correct)\s+(answer|solution)|multiple\s+(valid\s+|correct\s+)?answers",
    re.IGNORECASE)
_ANY_ORDER = re.compile(
    r"in\s+any\s+order|order\s+(of\s+\w+\s+)?does\s*n[o']t\s+matter|"
    r"(any|arbitrary)\s+order", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+|[-+*/%^<>=!]")
SHINGLE = 3
BANDS, ROWS = 32, 4
_PRIME = (1 << 61) - 1


# ------------------------------------------------------- judging options
def judging(question: str, row: dict) -> tuple[dict, str]:
  """(compare options, drop reason or "") for one problem statement.

  An explicit `compare` in the row wins. "Any order" becomes `unordered`;
  several valid answers need a checker; interactive problems are dropped.
  """
  if _INTERACTIVE.search(question):
    return {}, "interactive"
  if _MULTI_ANSWER.search(question) and not row.get("checker"):
    return {}, "needs_checker"
  if "compare" in row:
    return dict(row["compare"]), ""
  opts = infer_compare(question, row["tests"])
  if _ANY_ORDER.search(question):
    opts["unordered"] = True
  return opts, ""


# --------------------------------------------------------------- dedup
def normalise_text(text: str) -> str:
  """Lowercase words, numbers and operators: markup and spacing vanish."""
  return " ".join(_WORD.findall((text or "").lower().replace("\\", " ")))


def shingles(text: str) -> set[int]:
  words = normalise_text(text).split()
  grams = [" ".join(words[i:i + SHINGLE]) for i in range(max(len(words) - SHINGLE + 1, 1))]
  return {zlib.crc32(g.encode()) for g in grams if g}


def jaccard(a: set, b: set) -> float:
  return len(a & b) / len(a | b) if a or b else 1.0


def minhash_N(sh: set[int], a_N: np.ndarray, b_N: np.ndarray) -> np.ndarray:
  x_S = np.fromiter(sh or {0}, np.uint64)
  return ((a_N[:, None] * x_S[None, :] + b_N[:, None]) % _PRIME).min(axis=1)


def duplicates(texts: list[str], threshold: float) -> dict[int, tuple[str, int, float]]:
  """{index: ("exact" | "near", index of the kept copy, similarity)}.

  The earliest text of each group is kept; later ones are duplicates.
  """
  out, first_exact = {}, {}
  for i, t in enumerate(texts):
    key = hashlib.sha256(normalise_text(t).encode()).hexdigest()
    if key in first_exact:
      out[i] = ("exact", first_exact[key], 1.0)
    else:
      first_exact[key] = i
  rest = [i for i in range(len(texts)) if i not in out]
  sh = {i: shingles(texts[i]) for i in rest}
  rng = np.random.default_rng(0)
  a_N = rng.integers(1, 1 << 29, BANDS * ROWS).astype(np.uint64)
  b_N = rng.integers(0, 1 << 29, BANDS * ROWS).astype(np.uint64)
  buckets, keys = collections.defaultdict(list), {}
  for i in rest:
    sig = minhash_N(sh[i], a_N, b_N).reshape(BANDS, ROWS)
    keys[i] = [(band, rows.tobytes()) for band, rows in enumerate(sig)]
    for key in keys[i]:
      buckets[key].append(i)
  for i in rest:
    if i in out:
      continue
    pairs = {j for key in keys[i] for j in buckets[key] if j > i and j not in out}
    for j in sorted(pairs):
      sim = jaccard(sh[i], sh[j])
      if sim >= threshold:
        out[j] = ("near", i, round(sim, 3))
  return out


# ----------------------------------------------------------------- dates
def date_reason(date: str, after: str, before: str) -> str:
  """Drop reason for the time split ("" to keep); dates are YYYY-MM-DD."""
  if not (after or before):
    return ""
  if not date:
    return "no_date"
  if after and date < after:
    return "before_split"
  if before and date >= before:
    return "after_split"
  return ""
