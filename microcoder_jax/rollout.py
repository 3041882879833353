"""The one rollout path: sample G responses per prompt, judge them, collect groups.

  `sample_and_judge`  sample in chunks; each chunk is submitted to the judge
                      while the next one generates. Used by training,
                      held-out evaluation and `python -m microcoder_jax.benchmark`.
  `collect_groups`    one step's rows: a single round, or DAPO's dynamic
                      sampling (rounds until `num_groups` groups have mixed
                      accuracy; exactly num_groups × G rows plus valid flags).
  `train_batch`       judged rows → `rl.score` → the host `TrainBatch`.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Callable, Sequence

import jax
import numpy as np

from microcoder_jax import multihost
from microcoder_jax.data import prompts
from microcoder_jax.evaluator import VERDICTS
from microcoder_jax.evaluator.extract import prompt_opens_think
from microcoder_jax.rl import batch as batch_lib
from microcoder_jax.rl import rewards as rewards_lib
from microcoder_jax.rl import scoring as score_lib
from microcoder_jax.rl.objective import Objective
from microcoder_jax.sampling import Rollout


@dataclasses.dataclass
class Judged:
  """G responses per prompt, judged. Rows are prompt-major (groups consecutive)."""
  rollout: Rollout  # numpy arrays
  problems: list
  results: list
  texts: list[str]
  seconds: dict[str, float]

  @property
  def verdicts_N(self) -> np.ndarray:
    return np.array([r.verdict for r in self.results])

  @property
  def has_code_N(self) -> np.ndarray:
    return np.array([r.has_code for r in self.results], bool)

  @property
  def passed_N(self) -> np.ndarray:
    return self.verdicts_N == score_lib.PASS


def sample_and_judge(sampler, params, evaluator, tokenizer, problems: Sequence,
                     prompt_ids: Sequence[Sequence[int]], *, group_size: int,
                     max_new_tokens: int, temperature: float, rng: jax.Array,
                     top_p: float = 1.0, top_k: int = 0, chunks: int = 1,
                     max_chunk_prompts: int = 0, judge_limits=None) -> Judged:
  """Samples `group_size` responses per prompt and judges them; generation of
  chunk c+1 overlaps judging of chunk c.

  Prompts are split into at least `chunks` chunks of at most
  `max_chunk_prompts` prompts each (0: no cap; the trainer derives the cap
  from `rollout.chunk_rows` or the KV-cache budget). Every chunk pads its
  prompts to the bucket of the longest prompt of all chunks, so one sampler
  program serves them (chunks in different buckets each compiled their own:
  about 4.5 s more in the CPU demo's first step). With several processes, each judges only
  its own rows of every chunk; the verdicts are exchanged once at the end.
  Every response depends on (rng, its row, its prompt, params) only, never on
  the chunking (`Sampler.sample`'s `first_row`). `judge_limits` (timeout_s,
  memory_mb) replace the evaluator's defaults for these samples.
  """
  n = len(problems)
  if max_chunk_prompts:
    chunks = max(chunks, -(-n // max_chunk_prompts))
  chunks = max(1, min(chunks, n))
  bounds = np.linspace(0, n, chunks + 1).astype(int)
  longest = max(len(p) for p in prompt_ids)
  t0 = time.perf_counter()

  def dispatch(c):  # async: returns device arrays at once
    lo, hi = bounds[c], bounds[c + 1]
    return sampler.sample(params, prompt_ids[lo:hi], num_samples=group_size,
                          max_new_tokens=max_new_tokens, temperature=temperature,
                          top_p=top_p, top_k=top_k, rng=rng,
                          first_row=int(lo) * group_size, min_prompt_length=longest)

  pending, tickets, parts, texts = dispatch(0), [], [], []
  gen_wait = 0.0
  for c in range(chunks):
    nxt = dispatch(c + 1) if c + 1 < chunks else None
    w0 = time.perf_counter()
    part = jax.tree.map(multihost.host_array, pending)
    gen_wait += time.perf_counter() - w0
    chunk_texts = [prompts.decode_completion(tokenizer, row[:length])
                   for row, length in zip(part.tokens_NxT, part.lengths_N)]
    lo, hi = bounds[c], bounds[c + 1]
    samples = judge_rows(problems[lo:hi], prompt_ids[lo:hi], chunk_texts, tokenizer,
                         group_size)
    mine = samples[multihost.own_rows(len(samples))]
    tickets.append(evaluator.submit({p.id: p for p in problems[lo:hi]}, mine,
                                    **(judge_limits or {})))
    parts.append(part)
    texts += chunk_texts
    pending = nxt
  generated = time.perf_counter()
  results = [r for part in multihost.exchange_results([evaluator.collect(t) for t in tickets])
             for r in part]
  done = time.perf_counter()
  return Judged(concat_rollouts(parts), list(problems), results, texts,
                {"generate": generated - t0, "judge_wait": done - generated,
                 "generate_device_wait": gen_wait})


def judge_rows(problems: Sequence, prompt_ids: Sequence[Sequence[int]],
               texts: Sequence[str], tokenizer, group_size: int) -> list[dict]:
  """Judge samples for `group_size` consecutive completions per problem.

  `prompt_opens_think` tells the judge that the completion starts inside a
  reasoning block the chat template opened (DeepSeek-R1-distill templates end
  the prompt with `<think>`), so code before `</think>` is never graded.
  """
  opens = [prompt_opens_think(tokenizer.decode(ids)) for ids in prompt_ids]
  return [{"id": problems[i // group_size].id, "completion": text,
           "prompt_opens_think": opens[i // group_size]} for i, text in enumerate(texts)]


def _left_pad(x_NxP: np.ndarray, length: int, value) -> np.ndarray:
  pad = length - x_NxP.shape[1]
  return np.pad(x_NxP, ((0, 0), (pad, 0)), constant_values=value) if pad else x_NxP


def concat_rollouts(parts: Sequence[Rollout]) -> Rollout:
  """Host rollouts concatenated row-wise; prompts left-padded to the widest
  length bucket among them."""
  if len(parts) == 1:
    return parts[0]
  p = max(r.prompt_ids_NxP.shape[1] for r in parts)
  parts = [r.replace(prompt_ids_NxP=_left_pad(r.prompt_ids_NxP, p, 0),
                     prompt_mask_NxP=_left_pad(r.prompt_mask_NxP, p, False))
           for r in parts]
  return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)


def merge_judged(rounds: Sequence[Judged]) -> Judged:
  """Rounds of `sample_and_judge` concatenated row-wise."""
  if len(rounds) == 1:
    return rounds[0]
  seconds = collections.Counter()
  for j in rounds:
    seconds.update(j.seconds)
  return Judged(concat_rollouts([j.rollout for j in rounds]),
                [p for j in rounds for p in j.problems],
                [r for j in rounds for r in j.results],
                [t for j in rounds for t in j.texts], dict(seconds))


@dataclasses.dataclass
class Collected:
  """One step's judged rows and the num_groups × G of them that train.

  Attributes:
    judged: every row sampled this step (all rounds).
    rows: indices into `judged` of the training rows, num_groups × G.
    valid: False for padding rows (too few mixed groups): they train on nothing.
    rounds: sampling rounds used.
  """
  judged: Judged
  rows: np.ndarray
  valid: np.ndarray
  rounds: int


def collect_groups(sample_round: Callable[[int], Judged], *, num_groups: int,
                   group_size: int, dynamic_sampling: bool, max_rounds: int) -> Collected:
  """The step's groups. `sample_round(r)` samples and judges round r (the
  next `num_groups` prompts).

  Without dynamic sampling: one round, every row trains. With it (DAPO):
  rounds until `num_groups` groups have mixed *accuracy* (some judged
  responses pass, some fail), at most `max_rounds`; the first `num_groups` such groups
  train, and when too few qualify the batch is padded with rows that repeat
  group 0 with valid False. Reward shaping never decides which groups train.
  """
  rounds = []
  while True:
    rounds.append(sample_round(len(rounds)))
    if not dynamic_sampling:
      judged = rounds[0]
      n = len(judged.results)
      return Collected(judged, np.arange(n), np.ones(n, bool), 1)
    judged = merge_judged(rounds)
    keep = np.asarray(rewards_lib.mixed_accuracy_groups(
        judged.passed_N, judged.verdicts_N != score_lib.EVAL_ERROR, group_size))
    if keep.sum() >= num_groups or len(rounds) == max_rounds:
      break
  idx, valid = (np.asarray(x) for x in rewards_lib.fill_groups(keep, num_groups))
  rows = (idx[:, None] * group_size + np.arange(group_size)).reshape(-1)
  return Collected(judged, rows, np.repeat(valid, group_size), len(rounds))


def train_batch(collected: Collected, objective: Objective, *, max_response_length: int,
                key: jax.Array, diversity_ngram: int):
  """Scores every judged row (`rl.score`) and assembles the training rows.

  Returns (host `TrainBatch` of num_groups × G rows, `Scored` of all rows).
  """
  judged, r = collected.judged, collected.judged.rollout
  scored = score_lib.score(
      objective, verdicts_N=judged.verdicts_N, has_code_N=judged.has_code_N,
      tokens_NxT=r.tokens_NxT, lengths_N=r.lengths_N, truncated_N=r.truncated_N,
      max_response_length=max_response_length, key=key,
      diversity_ngram=diversity_ngram, verdict_names=VERDICTS)
  batch = batch_lib.assemble(
      prompt_ids_NxP=r.prompt_ids_NxP, prompt_mask_NxP=r.prompt_mask_NxP,
      tokens_NxT=r.tokens_NxT, lengths_N=r.lengths_N, logprobs_NxT=r.logprobs_NxT,
      temperature_N=r.temperatures_NxT[:, 0], advantages_N=scored.advantages_N,
      valid_N=scored.valid_N,
      ctm_mask_N=scored.ctm_mask_N if objective.ctm_apply_to == "loss_mask" else None)
  batch = batch_lib.select_rows(batch, collected.rows, collected.valid)
  scored.metrics["rollout/rounds"] = float(collected.rounds)
  return batch, scored
