"""Held-out evaluation of a policy: avg@k pass@1 by platform x difficulty.

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

from microcoder_jax import rollout

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


def evaluate_policy(sampler, params, evaluator, tokenizer, problems: Sequence,
                    prompt_ids: Sequence[Sequence[int]], *, k: int, max_new_tokens: int,
                    temperature: float, top_p: float, rng: jax.Array, batch_prompts: int):
  """Samples k responses per problem (at most `batch_prompts` prompts per
  sampler call) and judges them, through `rollout.sample_and_judge`.

  Returns (metrics, table, samples, results): `samples` are the judge's
  {"id", "completion", "prompt_opens_think"} rows and `results` its
  verdicts, in the same order. With several processes all return the same.
  """
  judged = rollout.sample_and_judge(
      sampler, params, evaluator, tokenizer, problems, prompt_ids, group_size=k,
      max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, rng=rng,
      max_chunk_prompts=batch_prompts)
  samples = rollout.judge_rows(problems, prompt_ids, judged.texts, tokenizer, k)
  table = pass_at_1_table(problems, judged.passed_N.reshape(len(problems), k))
  metrics = {"heldout/pass@1": table["All"]["all"]}
  for diff in DIFFICULTIES:
    if diff in table["All"]:
      metrics[f"heldout/pass@1_{diff}"] = table["All"][diff]
  return metrics, table, samples, judged.results
