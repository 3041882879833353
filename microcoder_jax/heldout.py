"""Held-out evaluation of a policy: avg@k pass@1 by platform x difficulty.

Used every N training steps and by `python -m microcoder_jax.benchmark`. The
table mirrors the paper's: rows per platform (plus "All"), columns easy /
medium / hard / overall; each cell is the mean over problems of the fraction
of the k samples that passed.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Sequence

import jax
import numpy as np

from microcoder_jax import rollout
from microcoder_jax.rl.schedule import StagedSchedule

DIFFICULTIES = ("easy", "medium", "hard")
STREAM = 2  # the held-out PRNG stream of a run's base key (`train.prng_streams`)


@dataclasses.dataclass(frozen=True)
class Settings:
  """Everything that decides a held-out score, shared by the in-run
  evaluation (config block `eval`) and `python -m microcoder_jax.benchmark`,
  so the same weights score the same in both.

  Responses depend on (`sample_key`, problem order, prompt, params) only, not
  on batching (`Sampler.sample`'s `first_row`); verdicts depend on the judge
  limits below, not on the number of judge workers (limits are CPU time).
  """
  k: int = 4                    # samples per problem (avg@k pass@1)
  temperature: float = 0.6
  top_p: float = 0.95
  max_new_tokens: int = 4096    # response budget L_max
  timeout_s: float = 6.0        # judge CPU seconds per test (a problem's own limit wins)
  memory_mb: int = 2048         # judge memory per program (a problem's own limit wins)

  @classmethod
  def from_config(cls, c, rl_step: int = 0) -> "Settings":
    """The `eval` block of a training config at RL step `rl_step`."""
    e, default = c.eval, cls()
    length = StagedSchedule.parse(str(e.max_response_length))(rl_step)
    return cls(k=int(e.k), temperature=float(e.temperature), top_p=float(e.top_p),
               max_new_tokens=int(length),
               timeout_s=float(e.get("timeout_s", default.timeout_s)),
               memory_mb=int(e.get("memory_mb", default.memory_mb)))


def sample_key(seed_or_key, rl_step: int) -> jax.Array:
  """The sampling key of the held-out evaluation at `rl_step` of a run whose
  base key is `jax.random.key(seed)` (or the key itself)."""
  key = (jax.random.key(seed_or_key) if isinstance(seed_or_key, int) else seed_or_key)
  return jax.random.fold_in(jax.random.fold_in(key, STREAM), rl_step)


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
                    prompt_ids: Sequence[Sequence[int]], settings: Settings, *,
                    rng: jax.Array, batch_prompts: int):
  """Samples `settings.k` responses per problem (at most `batch_prompts`
  prompts per sampler call) and judges them under the settings' limits,
  through `rollout.sample_and_judge`. `rng` is `sample_key(...)`.

  Returns (metrics, table, samples, results): `samples` are the judge's
  {"id", "completion", "prompt_opens_think"} rows and `results` its
  verdicts, in the same order. With several processes all return the same.
  """
  k = settings.k
  judged = rollout.sample_and_judge(
      sampler, params, evaluator, tokenizer, problems, prompt_ids, group_size=k,
      max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
      top_p=settings.top_p, rng=rng, max_chunk_prompts=batch_prompts,
      judge_limits=dict(timeout_s=settings.timeout_s, memory_mb=settings.memory_mb))
  samples = rollout.judge_rows(problems, prompt_ids, judged.texts, tokenizer, k)
  table = pass_at_1_table(problems, judged.passed_N.reshape(len(problems), k))
  metrics = {"heldout/pass@1": table["All"]["all"]}
  for diff in DIFFICULTIES:
    if diff in table["All"]:
      metrics[f"heldout/pass@1_{diff}"] = table["All"][diff]
  return metrics, table, samples, judged.results
