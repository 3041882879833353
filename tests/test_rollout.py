"""The one rollout path: DAPO group collection, scoring into a TrainBatch, a
rollout over several prompt-length buckets, and skipped empty mini-batches."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from microcoder_jax import rollout, update as update_lib
from microcoder_jax.data import tiny_tokenizer
from microcoder_jax.evaluator import Evaluator, Result, parse_problem
from microcoder_jax.models import get_preset, init_model
from microcoder_jax.rl import batch as batch_lib
from microcoder_jax.rl import get_objective
from microcoder_jax.sampling import Rollout, Sampler, bucket_length

G, T, P = 4, 12, 3


def _judged(passed_MxG, lengths_MxG, tag):
  """A judged round: groups of G rows with given pass flags and lengths."""
  passed = np.asarray(passed_MxG, bool).reshape(-1)
  lengths = np.asarray(lengths_MxG).reshape(-1)
  n = passed.size
  tokens = np.zeros((n, T), np.int32)
  for i, length in enumerate(lengths):
    tokens[i, :length] = 1 + (np.arange(length) + 7 * i) % 50
  r = Rollout(tokens_NxT=tokens, lengths_N=lengths, logprobs_NxT=np.full((n, T), -1.0),
              truncated_N=lengths >= T, temperatures_NxT=np.ones((n, T)),
              prompt_ids_NxP=np.ones((n, P), np.int32), prompt_mask_NxP=np.ones((n, P), bool))
  results = [Result(id=f"{tag}{i // G}", sample=i % G, verdict="pass" if ok else "wrong_answer",
                    passed=bool(ok), tests_passed=int(ok), tests_total=1, has_code=True,
                    seconds=0.0) for i, ok in enumerate(passed)]
  return rollout.Judged(r, [None] * (n // G), results, [""] * n, {"generate": 0.0})


def test_dapo_keeps_accuracy_mixed_groups_only():
  """All-fail groups whose lengths differ inside the overlong buffer get
  different shaped rewards; they must not displace groups with real signal."""
  all_fail_long = ([False] * G, [T - 1, T - 2, T - 3, 4])  # shaped rewards differ
  mixed = ([True, False, False, False], [5] * G)
  all_pass = ([True] * G, [5] * G)
  rounds = [
      [all_fail_long, mixed, all_pass],   # round 0: one mixed group
      [all_fail_long, all_fail_long, mixed],  # round 1: one more
  ]
  calls = []

  def sample_round(r):
    calls.append(r)
    groups = rounds[r]
    return _judged([g[0] for g in groups], [g[1] for g in groups], f"r{r}g")

  got = rollout.collect_groups(sample_round, num_groups=2, group_size=G,
                               dynamic_sampling=True, max_rounds=3)
  assert calls == [0, 1] and got.rounds == 2
  assert got.rows.tolist() == list(range(4, 8)) + list(range(20, 24))  # groups 1 and 5
  assert got.valid.all() and got.rows.size == 2 * G

  objective = get_objective("dapo").replace(group_size=G, max_response_length=str(T))
  batch, scored = rollout.train_batch(got, objective, max_response_length=T,
                                      key=jax.random.key(0), diversity_ngram=4)
  assert batch.targets_NxT.shape == (2 * G, T)
  # The shaped all-fail groups have non-zero Â, yet none of their rows train.
  assert np.abs(scored.advantages_N[:G]).max() > 0
  np.testing.assert_array_equal(batch.advantages_N, scored.advantages_N[got.rows])
  assert scored.metrics["rollout/rounds"] == 2


def test_dapo_pads_with_invalid_rows_when_too_few_groups_qualify():
  def sample_round(r):
    return _judged([[False] * G, [True, True, False, False]], [[5] * G] * 2, f"r{r}g")

  got = rollout.collect_groups(sample_round, num_groups=3, group_size=G,
                               dynamic_sampling=True, max_rounds=2)
  assert got.rounds == 2 and got.rows.size == 3 * G
  assert got.valid.tolist() == [True] * (2 * G) + [False] * G
  objective = get_objective("dapo").replace(group_size=G, max_response_length=str(T))
  batch, _ = rollout.train_batch(got, objective, max_response_length=T,
                                 key=jax.random.key(0), diversity_ngram=4)
  assert batch.loss_mask_NxT[2 * G:].sum() == 0 and batch.loss_mask_NxT[:2 * G].sum() > 0
  assert not batch.advantages_N[2 * G:].any()
  tokens = batch_lib.mini_batch_tokens(batch, G)
  assert tokens.tolist()[2] == 0 and min(tokens[:2]) > 0


def test_without_dynamic_sampling_one_round_trains_every_row():
  got = rollout.collect_groups(
      lambda r: _judged([[False] * G, [True] * G], [[5] * G] * 2, "g"), num_groups=2,
      group_size=G, dynamic_sampling=False, max_rounds=3)
  assert got.rounds == 1 and got.rows.tolist() == list(range(2 * G)) and got.valid.all()


def _tiny_update(seed=0):
  tok = tiny_tokenizer.load()
  model = init_model(get_preset("tiny", vocab_size=len(tok)), seed=seed)
  graphdef, params = nnx.split(model)
  opt = optax.adam(1e-2)
  cfg = update_lib.UpdateConfig.from_objective(
      get_objective("microcoder_grpo"), micro_batch_size=G, logprob_chunk=16,
      compute_entropy=False)
  update = jax.jit(lambda s, b, cur=False: update_lib.update_step(
      s, b, cur, graphdef=graphdef, optimizer=opt, cfg=cfg))
  state = update_lib.TrainState(params, opt.init(params), jnp.zeros((), jnp.int32))
  return state, update


def test_mini_batches_without_loss_tokens_take_no_optimizer_step():
  state, update = _tiny_update()
  judged = _judged([[True, False, False, False], [False] * G], [[5] * G] * 2, "g")
  collected = rollout.Collected(judged, np.arange(2 * G),
                                np.array([True] * G + [False] * G), 1)
  objective = get_objective("microcoder_grpo").replace(group_size=G,
                                                       max_response_length=str(T))
  host, _ = rollout.train_batch(collected, objective, max_response_length=T,
                                key=jax.random.key(0), diversity_ngram=4)
  tokens = batch_lib.mini_batch_tokens(host, G)
  assert tokens[0] > 0 and tokens[1] == 0
  before = jax.tree.map(np.asarray, (state.params, state.opt_state))
  batch = jax.tree.map(jnp.asarray, host)
  # Only the padding mini-batch: nothing changes, no update is counted.
  padding_only = jax.tree.map(lambda x: x[G:], batch)
  after, metrics, skipped = update_lib.apply_mini_batches(
      state, padding_only, update, rows_per_update=G, tokens_per_mini_batch=tokens[1:])
  assert skipped == 1 and metrics == [] and int(after.optimizer_updates) == 0
  jax.tree.map(np.testing.assert_array_equal, before,
               jax.tree.map(np.asarray, (after.params, after.opt_state)))
  # Both: one real update, one skipped.
  after, metrics, skipped = update_lib.apply_mini_batches(
      state, batch, update, rows_per_update=G, tokens_per_mini_batch=tokens)
  assert skipped == 1 and len(metrics) == 1 and int(after.optimizer_updates) == 1


def test_ratio_extremes_ignore_micro_batches_without_loss_tokens():
  state, update = _tiny_update()
  judged = _judged([[True, False, False, False], [True, True, False, False]],
                   [[5] * G] * 2, "g")
  collected = rollout.Collected(judged, np.arange(2 * G), np.ones(2 * G, bool), 1)
  objective = get_objective("microcoder_grpo").replace(group_size=G,
                                                       max_response_length=str(T))
  host, _ = rollout.train_batch(collected, objective, max_response_length=T,
                                key=jax.random.key(0), diversity_ngram=4)
  # Micro-batches are strided (rows m, m + 2, ...): empty the odd rows, so one
  # of the two micro-batches has no loss tokens, and make the ratios ≠ 1.
  mask = np.asarray(host.loss_mask_NxT).copy()
  mask[1::2] = 0
  host = host.replace(loss_mask_NxT=mask, old_logp_NxT=np.full_like(mask, -3.0))
  _, m = update(state, jax.tree.map(jnp.asarray, host))
  # log π ≈ −log V ≈ −6 for the random policy, so every live ratio is ≪ 1;
  # an empty micro-batch's placeholder ratio of 1 must not become the max.
  assert float(m["ratio_min"]) <= float(m["ratio_mean"]) <= float(m["ratio_max"]) < 0.5


class _Tokenizer:
  """The tiny tokenizer, with completions decoded as a fixed program."""

  def __init__(self, tok):
    self.tok = tok

  def decode(self, ids, **kwargs):
    return self.tok.decode(ids, **kwargs)

  def __getattr__(self, name):
    return getattr(self.tok, name)


def test_rollout_over_several_length_buckets_and_chunks(monkeypatch):
  from microcoder_jax.data import prompts
  monkeypatch.setattr(prompts, "decode_completion",
                      lambda tok, ids: "```python\nprint(input())\n```")
  tok = tiny_tokenizer.load()
  model = init_model(get_preset("tiny", vocab_size=len(tok)), seed=0)
  sampler = Sampler(model, stop_ids=(tok.eos_token_id,), pad_id=tok.pad_token_id or 0)
  problems = [parse_problem({"id": f"p{i}", "question": "echo",
                             "tests": [{"input": f"{i}\n", "output": f"{i}\n",
                                        "testtype": "stdin"}]}) for i in range(5)]
  # Prompts of 3..300 tokens: buckets 16, 40, 112, 384; 3 chunks of <= 2 prompts.
  prompt_ids = [[5] * n for n in (3, 40, 100, 300, 7)]
  with Evaluator(workers=1, timeout_s=2.0, memory_mb=256) as ev:
    judged = rollout.sample_and_judge(
        sampler, nnx.state(model), ev, _Tokenizer(tok), problems, prompt_ids,
        group_size=2, max_new_tokens=4, temperature=1.0, rng=jax.random.key(0),
        chunks=2, max_chunk_prompts=2)
  r = judged.rollout
  assert r.tokens_NxT.shape == (10, 4) and r.prompt_ids_NxP.shape == (10, bucket_length(300))
  for i, n in enumerate((3, 40, 100, 300, 7)):  # left-padded to the widest bucket
    assert r.prompt_mask_NxP[2 * i].sum() == n and r.prompt_mask_NxP[2 * i, -n:].all()
  assert [x.id for x in judged.results] == [f"p{i // 2}" for i in range(10)]
  assert all(x.verdict == "pass" for x in judged.results)


def test_dapo_ignores_rows_the_judge_could_not_judge():
  judged = _judged([[True, True, True, False], [True, False, False, False]], [[5] * G] * 2, "g")
  judged.results[3].verdict = "eval_error"  # group 0: every judged row passed
  got = rollout.collect_groups(lambda r: judged, num_groups=1, group_size=G,
                               dynamic_sampling=True, max_rounds=1)
  assert got.rows.tolist() == list(range(G, 2 * G)) and got.valid.all()
