"""Rollout -> judge -> rewards, CTM and advantages -> TrainBatch.

Four named steps with dataclass hand-offs:
  `generate_and_judge`  sample G responses per prompt in chunks; each chunk is
                        submitted to the evaluator while the next generates.
  `score`               rewards, non-incorrect flags, repeat check, the
                        conditional truncation mask and group advantages.
  `assemble`            the fixed-shape `TrainBatch` arrays.
Rewards and group statistics run host-side in NumPy; the pieces from
`microcoder_jax.rl` used here are the same pure functions users import.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from microcoder_jax.data import prompts
from microcoder_jax.evaluator import VERDICTS, Result
from microcoder_jax.evaluator.extract import prompt_opens_think
from microcoder_jax.rl import advantages as adv_lib
from microcoder_jax.rl import masks, rewards as rewards_lib
from microcoder_jax.rl.step import TrainBatch
from microcoder_jax.sampling import Rollout
from microcoder_jax.sampling.temperature import response_diversity


@dataclasses.dataclass
class Judged:
  """G responses per prompt, judged. Rows are prompt-major (groups consecutive)."""
  rollout: Rollout  # numpy arrays
  problems: list
  results: list
  texts: list[str]
  seconds: dict[str, float]


# ------------------------------------------------------------- multi-process
# Under multi-controller JAX (TPU pods, `jax.distributed`) every process runs
# this code on the same global arrays. Each process fetches the whole rollout,
# judges only its own contiguous share of the rows, and the verdicts are then
# exchanged, so every process builds the same TrainBatch. With one process
# these helpers are the identity.
def host_array(x) -> np.ndarray:
  """The whole of `x` as NumPy on this host (gathered across processes)."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def own_rows(n: int) -> slice:
  """This process's contiguous share of `n` rows (all of them with one process)."""
  bounds = np.linspace(0, n, jax.process_count() + 1).astype(int)
  i = jax.process_index()
  return slice(int(bounds[i]), int(bounds[i + 1]))


def exchange_results(own_parts: Sequence[Sequence[Result]]) -> list[list[Result]]:
  """All processes' `own_parts` (one list per chunk), merged chunk by chunk in
  process order; `Result.sample` is renumbered per chunk as one process would."""
  if jax.process_count() == 1:
    return [list(p) for p in own_parts]
  payload = np.frombuffer(json.dumps(
      [[r.to_json() for r in part] for part in own_parts]).encode(), np.uint8)
  sizes = np.asarray(multihost_utils.process_allgather(
      np.array([payload.size], np.int64))).reshape(-1)
  buf = np.zeros(int(sizes.max()), np.uint8)
  buf[:payload.size] = payload
  gathered = np.asarray(multihost_utils.process_allgather(buf)).reshape(len(sizes), -1)
  per_process = [json.loads(bytes(row[:size])) for row, size in zip(gathered, sizes)]
  merged = []
  for c in range(len(own_parts)):
    counts, part = collections.Counter(), []
    for proc in per_process:
      for d in proc[c]:
        d["sample"], counts[d["id"]] = counts[d["id"]], counts[d["id"]] + 1
        part.append(Result(**d))
    merged.append(part)
  return merged


def generate_and_judge(sampler, params, evaluator, tokenizer, problems: Sequence,
                       prompt_ids: Sequence[Sequence[int]], *, group_size: int,
                       max_new_tokens: int, temperature: float, rng: jax.Array,
                       top_p: float = 1.0, top_k: int = 0, chunks: int = 1,
                       max_chunk_prompts: int = 0) -> Judged:
  """Samples and judges; generation of chunk c+1 overlaps judging of chunk c.

  Prompts are split into at least `chunks` chunks of at most
  `max_chunk_prompts` prompts each (0: no cap; the trainer derives the cap
  from `rollout.chunk_rows` or the KV-cache memory budget). With several
  processes, each judges only its own rows of every chunk (`own_rows`); the
  verdicts are exchanged once at the end.
  """
  n = len(problems)
  if max_chunk_prompts:
    chunks = max(chunks, -(-n // max_chunk_prompts))
  chunks = max(1, min(chunks, n))
  bounds = np.linspace(0, n, chunks + 1).astype(int)
  t0 = time.perf_counter()

  def dispatch(c):  # async: returns device arrays at once
    lo, hi = bounds[c], bounds[c + 1]
    return sampler.sample(params, prompt_ids[lo:hi], num_samples=group_size,
                          max_new_tokens=max_new_tokens, temperature=temperature,
                          top_p=top_p, top_k=top_k, rng=jax.random.fold_in(rng, c))

  pending, tickets, parts, texts = dispatch(0), [], [], []
  gen_wait = 0.0
  for c in range(chunks):
    nxt = dispatch(c + 1) if c + 1 < chunks else None
    w0 = time.perf_counter()
    part = jax.tree.map(host_array, pending)
    gen_wait += time.perf_counter() - w0
    chunk_texts = [prompts.decode_completion(tokenizer, row[:length])
                   for row, length in zip(part.tokens_NxT, part.lengths_N)]
    chunk_problems = problems[bounds[c]:bounds[c + 1]]
    samples = judge_rows(chunk_problems, prompt_ids[bounds[c]:bounds[c + 1]],
                         chunk_texts, tokenizer, group_size)
    mine = samples[own_rows(len(samples))]
    tickets.append(evaluator.submit({p.id: p for p in chunk_problems}, mine))
    parts.append(part)
    texts += chunk_texts
    pending = nxt
  generated = time.perf_counter()
  results = [r for part in exchange_results([evaluator.collect(t) for t in tickets])
             for r in part]
  done = time.perf_counter()
  rollout = concat_rollouts(parts)
  return Judged(rollout, list(problems), results, texts,
                {"generate": generated - t0, "judge_wait": done - generated,
                 "generate_device_wait": gen_wait})


def judge_rows(problems: Sequence, prompt_ids: Sequence[Sequence[int]],
               texts: Sequence[str], tokenizer, group_size: int) -> list[dict]:
  """Evaluator samples for `group_size` consecutive completions per problem.

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
  length bucket among them (chunks may fall into different buckets)."""
  if len(parts) == 1:
    return parts[0]
  p = max(r.prompt_ids_NxP.shape[1] for r in parts)
  parts = [r.replace(prompt_ids_NxP=_left_pad(r.prompt_ids_NxP, p, 0),
                     prompt_mask_NxP=_left_pad(r.prompt_mask_NxP, p, False))
           for r in parts]
  return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)


def merge_judged(rounds: Sequence[Judged]) -> Judged:
  """Concatenates rounds of `generate_and_judge` (DAPO refills) row-wise."""
  if len(rounds) == 1:
    return rounds[0]
  seconds = collections.Counter()
  for j in rounds:
    seconds.update(j.seconds)
  return Judged(concat_rollouts([j.rollout for j in rounds]),
                [p for j in rounds for p in j.problems],
                [r for j in rounds for r in j.results],
                [t for j in rounds for t in j.texts], dict(seconds))


def enough_groups(rounds: Sequence[Judged], group_size: int, num_groups: int) -> bool:
  """DAPO: do the rounds so far hold `num_groups` groups with mixed rewards?"""
  passed = np.array([r.verdict == "pass" for j in rounds for r in j.results], np.float32)
  keep = np.asarray(rewards_lib.dynamic_sampling_keep(passed, group_size))
  return int(keep.sum()) >= num_groups


@dataclasses.dataclass
class Scored:
  rewards_N: np.ndarray
  advantages_N: np.ndarray
  valid_N: np.ndarray  # False: eval_error rows, dropped from stats and loss
  ctm_mask_N: np.ndarray
  metrics: dict[str, float]


def score(judged: Judged, *, group_size: int, max_new_tokens: int, rl_cfg,
          key: jax.Array) -> Scored:
  """Rewards R_i, the CTM factor and Â_i (see `microcoder_spec.md` §1)."""
  r = judged.rollout
  verdicts = np.array([x.verdict for x in judged.results])
  passed = verdicts == "pass"
  has_code = np.array([x.has_code for x in judged.results])
  valid = verdicts != "eval_error"
  truncated = r.truncated_N.astype(bool)
  rewards = passed.astype(np.float32)
  if rl_cfg.get("overlong_buffer_frac"):
    buffer = max(1, int(rl_cfg.overlong_buffer_frac * max_new_tokens))
    rewards = rewards + np.asarray(rewards_lib.overlong_penalty(
        r.lengths_N, max_new_tokens, buffer, rl_cfg.overlong_penalty_factor))
  adv = np.asarray(adv_lib.group_advantages(
      rewards, group_size, method=rl_cfg.adv_estimator, eps=rl_cfg.adv_std_eps,
      std_ddof=rl_cfg.adv_std_ddof, valid_N=valid))

  ctm = rl_cfg.ctm
  repeating = np.asarray(masks.repeat_tail(r.tokens_NxT, r.lengths_N,
                                           ctm.repeat_window, mode=ctm.repeat_mode))
  if ctm.non_incorrect == "pass_only":
    non_incorrect = passed
  else:  # "pass_or_no_code": passed, or truncated before any complete code
    non_incorrect = passed | (truncated & ~has_code)
  if not ctm.conditions:
    non_incorrect, repeating = np.ones_like(passed), np.zeros_like(passed)
  mask = np.zeros_like(passed)
  if ctm.enabled:
    mask = np.asarray(masks.conditional_truncation_mask(
        key, lengths_N=r.lengths_N, max_length=max_new_tokens,
        non_incorrect_N=non_incorrect, repeating_N=repeating, rho=ctm.rho,
        truncated_N=truncated))
  if ctm.apply_to == "advantage":
    adv = adv * (1.0 - mask)

  groups = rewards.reshape(-1, group_size)
  counts = collections.Counter(verdicts.tolist())
  lengths = r.lengths_N.astype(np.float64)
  metrics = {
      "reward/mean": float(rewards[valid].mean()) if valid.any() else 0.0,
      "reward/std": float(rewards[valid].std()) if valid.any() else 0.0,
      "reward/pass_rate": float(passed.mean()),
      "reward/frac_zero_std": float((groups.std(axis=1) == 0).mean()),
      "rollout/length_mean": float(lengths.mean()),
      "rollout/length_max": float(lengths.max()),
      "rollout/truncated_frac": float(truncated.mean()),
      "rollout/diversity": response_diversity(r.tokens_NxT, r.lengths_N, group_size),
      "ctm/eligible_frac": float((truncated & non_incorrect & ~repeating).mean()),
      "ctm/masked_frac": float(mask.mean()),
      "ctm/repeat_frac": float(repeating.mean()),
      "eval/error_rate": float((~valid).mean()),
  }
  metrics.update({f"verdict/{v}": counts.get(v, 0) / len(verdicts) for v in VERDICTS})
  return Scored(rewards, adv.astype(np.float32), valid, mask, metrics)


def assemble(rollout: Rollout, scored: Scored, *, loss_mask_ctm: bool = False) -> TrainBatch:
  """Fixed-shape arrays for `update_step` (old/ref log-probs filled later)."""
  t = rollout.tokens_NxT.shape[1]
  resp_mask = np.arange(t)[None] < rollout.lengths_N[:, None]
  loss_mask = resp_mask & scored.valid_N[:, None]
  if loss_mask_ctm:
    loss_mask &= ~scored.ctm_mask_N[:, None].astype(bool)
  return TrainBatch(
      input_ids_NxL=np.concatenate([rollout.prompt_ids_NxP, rollout.tokens_NxT], 1),
      attention_mask_NxL=np.concatenate([rollout.prompt_mask_NxP, resp_mask], 1),
      targets_NxT=rollout.tokens_NxT,
      loss_mask_NxT=loss_mask.astype(np.float32),
      advantages_N=scored.advantages_N,
      old_logp_NxT=rollout.logprobs_NxT.astype(np.float32),
      ref_logp_NxT=np.zeros_like(rollout.logprobs_NxT, np.float32),
      temperature_N=rollout.temperatures_NxT[:, 0].astype(np.float32))


def select_rows(batch: TrainBatch, rows: np.ndarray, valid_rows: np.ndarray) -> TrainBatch:
  """Rows `rows` of a batch; rows with valid False keep shape but train on nothing."""
  out = jax.tree.map(lambda x: np.asarray(x)[rows], batch)
  return out.replace(loss_mask_NxT=out.loss_mask_NxT * valid_rows[:, None],
                     advantages_N=out.advantages_N * valid_rows)


def dynamic_sampling_rows(rewards_N: np.ndarray, group_size: int, num_groups: int):
  """DAPO: rows of the first `num_groups` groups with non-equal rewards.

  Returns (row indices, row valid flags), both of length num_groups x G; when
  too few groups qualify, padding rows repeat group 0 with valid False.
  """
  keep = np.asarray(rewards_lib.dynamic_sampling_keep(rewards_N, group_size))
  idx, valid = (np.asarray(x) for x in rewards_lib.fill_groups(keep, num_groups))
  rows = (idx[:, None] * group_size + np.arange(group_size)).reshape(-1)
  return rows, np.repeat(valid, group_size)


def to_device(batch: TrainBatch, sharding=None) -> TrainBatch:
  """Host arrays -> global device arrays laid out as `sharding`.

  Every process holds the same host batch; each places only its own
  devices' slices, so this works under multi-controller JAX too.
  """
  if sharding is None:
    return jax.tree.map(jnp.asarray, batch)
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx]),
      jax.tree.map(np.asarray, batch))


def metric_means(dicts: Sequence[dict[str, Any]]) -> dict[str, float]:
  keys = dicts[0].keys() if dicts else ()
  return {k: float(np.mean([float(d[k]) for d in dicts])) for k in keys}
