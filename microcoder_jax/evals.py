"""Held-out evaluation: avg@k pass@1, broken down by platform x difficulty.

Used every N training steps and by `python -m microcoder_jax.benchmark`. The
table mirrors the paper's: rows per platform (plus "All"), columns easy /
medium / hard / overall; each cell is the mean over problems of the fraction
of the k samples that passed.
"""

from __future__ import annotations

import collections
from typing import Sequence

import jax
import numpy as np

from microcoder_jax.data import prompts
from microcoder_jax.rl import rollout as rollout_lib

DIFFICULTIES = ("easy", "medium", "hard")


def pass_at_1_table(problems: Sequence, passed_PxK: np.ndarray) -> dict[str, dict[str, float]]:
  """{platform or "All": {difficulty or "all": pass@1}} from per-sample outcomes."""
  per_problem = np.asarray(passed_PxK, np.float64).mean(axis=1)
  cells: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
  for prob, score in zip(problems, per_problem):
    platform = prob.meta.get("platform") or "unknown"
    difficulty = (prob.meta.get("difficulty") or "unknown").lower()
    for plat in (platform, "All"):
      for diff in (difficulty, "all"):
        cells[(plat, diff)].append(score)
  table: dict[str, dict[str, float]] = collections.defaultdict(dict)
  for (plat, diff), scores in cells.items():
    table[plat][diff] = float(np.mean(scores))
  return dict(table)


def format_table(table: dict[str, dict[str, float]]) -> str:
  """Markdown, percentages, columns easy / medium / hard / all."""
  extra = sorted({d for row in table.values() for d in row} - set(DIFFICULTIES) - {"all"})
  cols = list(DIFFICULTIES) + extra + ["all"]
  lines = ["| platform | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
  for plat in sorted(table, key=lambda p: (p == "All", p)):
    cells = [f"{100 * table[plat][c]:.1f}" if c in table[plat] else "-" for c in cols]
    lines.append(f"| {plat} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def run_eval(sampler, params, evaluator, tokenizer, problems: Sequence,
             prompt_ids: Sequence[Sequence[int]], *, k: int, max_new_tokens: int,
             temperature: float, top_p: float, rng: jax.Array, batch_prompts: int = 64):
  """Samples k responses per problem and judges them.

  Returns (metrics, table, samples, results): `samples` are
  {"id", "completion"} rows and `results` the evaluator's, in the same order.
  With several processes each judges its own rows and all return the same.
  """
  samples, results, passed = [], [], []
  for lo in range(0, len(problems), batch_prompts):
    chunk, ids = problems[lo:lo + batch_prompts], prompt_ids[lo:lo + batch_prompts]
    r = sampler.sample(params, ids, num_samples=k, max_new_tokens=max_new_tokens,
                       temperature=temperature, top_p=top_p,
                       rng=jax.random.fold_in(rng, lo))
    r = jax.tree.map(rollout_lib.host_array, r)
    texts = [prompts.decode_completion(tokenizer, row[:n])
             for row, n in zip(r.tokens_NxT, r.lengths_N)]
    rows = rollout_lib.judge_rows(chunk, ids, texts, tokenizer, k)
    res = evaluator.evaluate({p.id: p for p in chunk}, rows[rollout_lib.own_rows(len(rows))])
    res = rollout_lib.exchange_results([res])[0]
    samples += rows
    results += res
    passed += [x.verdict == "pass" for x in res]
  passed_PxK = np.asarray(passed).reshape(len(problems), k)
  table = pass_at_1_table(problems, passed_PxK)
  metrics = {"heldout/pass@1": table["All"]["all"]}
  for diff in DIFFICULTIES:
    if diff in table["All"]:
      metrics[f"heldout/pass@1_{diff}"] = table["All"][diff]
  return metrics, table, samples, results
