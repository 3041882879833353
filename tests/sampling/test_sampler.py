"""Sampler: greedy == argmax of full forwards, log-probs == rl.token_logprobs,
empirical frequencies == softmax(logits / T), stopping, no recompiles, sharding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from flax import nnx

from microcoder_jax import rl, sharding
from microcoder_jax.models import get_preset, init_model
from microcoder_jax.sampling import Sampler, bucket_length

PROMPTS = [[5, 17, 9, 33], [2, 8], [40, 41, 42, 43, 44, 45, 46]]
_UNUSED = 511  # a stop id that the tiny models below do not emit in tests


@pytest.fixture(scope="module")
def model():
  return init_model(get_preset("tiny", tie_word_embeddings=False), seed=0)


def _peaked(model, scale):
  """Same model with sharper logits (larger final-norm scale)."""
  graphdef, state = nnx.split(model)
  state = jax.tree.map(lambda x: x, state)
  m = nnx.merge(graphdef, state)
  m.final_norm.scale[...] = m.final_norm.scale[...] * scale
  return m


def _full_sequence(r):
  seq = jnp.concatenate([r.prompt_ids_NxP, r.tokens_NxT], axis=1)
  t = r.tokens_NxT.shape[1]
  resp_mask = jnp.arange(t)[None] < r.lengths_N[:, None]
  return seq, jnp.concatenate([r.prompt_mask_NxP, resp_mask], axis=1)


def test_greedy_equals_argmax_of_full_forward(model):
  sampler = Sampler(model, stop_ids=(_UNUSED,))
  r = sampler.sample(nnx.state(model), PROMPTS, num_samples=2, max_new_tokens=12,
                     temperature=0.0, rng=jax.random.key(0))
  assert r.tokens_NxT.shape == (6, 12) and r.prompt_ids_NxP.shape[1] == bucket_length(7)
  tokens = np.asarray(r.tokens_NxT)
  np.testing.assert_array_equal(tokens[0::2], tokens[1::2])  # greedy: groups agree
  # Token by token: a full forward over the growing sequence.
  ids, mask = r.prompt_ids_NxP, r.prompt_mask_NxP
  for t in range(12):
    nxt = jnp.argmax(model(ids, attention_mask_BxT=mask)[:, -1], -1)
    np.testing.assert_array_equal(np.asarray(nxt), tokens[:, t])
    ids = jnp.concatenate([ids, nxt[:, None]], axis=1)
    mask = jnp.concatenate([mask, jnp.ones((6, 1), bool)], axis=1)


@pytest.mark.parametrize("temperature", [0.6, 1.2, 1.8])
def test_logprobs_match_loss_logprobs(model, temperature):
  sampler = Sampler(model, stop_ids=(3, 4, 5))
  r = sampler.sample(nnx.state(model), PROMPTS, num_samples=4, max_new_tokens=16,
                     temperature=temperature, rng=jax.random.key(7))
  seq, mask = _full_sequence(r)
  p = r.prompt_ids_NxP.shape[1]
  hidden = model(seq, attention_mask_BxT=mask, return_hidden=True)[:, p - 1:-1]
  want = rl.token_logprobs(hidden, model.unembedding_DxV(), r.tokens_NxT,
                           temperature=temperature)
  valid = np.arange(16)[None] < np.asarray(r.lengths_N)[:, None]
  np.testing.assert_allclose(np.asarray(r.logprobs_NxT)[valid], np.asarray(want)[valid],
                             atol=1e-5)
  assert np.all(np.asarray(r.logprobs_NxT)[~valid] == 0)
  np.testing.assert_allclose(np.asarray(r.temperatures_NxT)[valid], temperature)


def _first_token_counts(model, n, **kwargs):
  sampler = Sampler(model, stop_ids=(_UNUSED,))
  r = sampler.sample(nnx.state(model), [[1, 2, 3]], num_samples=n, max_new_tokens=1,
                     rng=jax.random.key(123), **kwargs)
  return np.bincount(np.asarray(r.tokens_NxT[:, 0]), minlength=model.cfg.vocab_size)


def test_empirical_frequencies_match_tempered_softmax():
  m = _peaked(init_model(get_preset("tiny", vocab_size=16), seed=4), 5.0)
  logits = np.asarray(m(jnp.asarray([[1, 2, 3]]))[0, -1], np.float64)
  for temperature in (0.7, 1.5):
    probs = np.exp(logits / temperature - np.logaddexp.reduce(logits / temperature))
    counts = _first_token_counts(m, 4000, temperature=temperature)
    assert 0.2 < probs.max() < 0.9  # a non-trivial distribution
    expected = probs * counts.sum()
    keep = expected >= 5  # pool rare tokens (chi-square validity)
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    obs, exp = (obs, exp) if exp[-1] > 0 else (obs[:-1], exp[:-1])
    p_value = scipy.stats.chisquare(obs, exp).pvalue
    assert p_value > 1e-3, (temperature, obs, exp)


def test_draw_is_exact_on_a_qwen_sized_vocabulary():
  """151,936 tokens: 64 likely ones, then a tail whose tokens each hold less
  than half a float32 ulp of the head's mass (0.7% of the mass in all): the
  tail is drawn at its rate and the head at its rates."""
  from microcoder_jax.sampling import strategies
  v, head, rows, calls = 151_936, 64, 64, 30
  weights = np.full(v, 3e-6)
  weights[:head] = np.linspace(0.5, 1.5, head)
  probs = weights / weights.sum()
  logp = jnp.broadcast_to(jnp.log(jnp.asarray(probs, jnp.float32)), (rows, v))
  draw = jax.jit(strategies.draw)
  tokens = np.concatenate([np.asarray(draw(jax.random.key(i), logp)) for i in range(calls)])
  n, tail_p = tokens.size, probs[head:].sum()
  tail = int((tokens >= head).sum())
  sd = np.sqrt(n * tail_p * (1 - tail_p))
  assert abs(tail - n * tail_p) < 4.5 * sd and tail > 0, (tail, n * tail_p)
  counts = np.bincount(tokens[tokens < head], minlength=head)
  p_value = scipy.stats.chisquare(counts, probs[:head] / probs[:head].sum() * counts.sum()).pvalue
  assert p_value > 1e-3


def test_responses_do_not_depend_on_how_the_batch_is_split(model):
  """Row r's draws use its global row index, so one call of 6 prompts and two
  calls of 3 (consecutive `first_row`) give the same responses; a different
  row gives a different response."""
  sampler = Sampler(model, stop_ids=(_UNUSED,))
  prompts = [[5 + i, 17, 9, 33] for i in range(6)]
  kw = dict(num_samples=2, max_new_tokens=10, temperature=1.3, rng=jax.random.key(3))
  whole = np.asarray(sampler.sample(nnx.state(model), prompts, **kw).tokens_NxT)
  parts = [np.asarray(sampler.sample(nnx.state(model), prompts[lo:lo + 3], first_row=2 * lo,
                                     **kw).tokens_NxT) for lo in (0, 3)]
  np.testing.assert_array_equal(whole, np.concatenate(parts))
  shifted = np.asarray(sampler.sample(nnx.state(model), prompts[3:], **kw).tokens_NxT)
  assert (shifted != parts[1]).any()
  assert (whole[0::2] != whole[1::2]).any()  # the samples of a group differ


def test_top_k_and_top_p_restrict_support():
  m = _peaked(init_model(get_preset("tiny", vocab_size=16), seed=4), 5.0)
  logits = np.asarray(m(jnp.asarray([[1, 2, 3]]))[0, -1], np.float64)
  order = np.argsort(-logits)
  counts = _first_token_counts(m, 2000, temperature=1.0, top_k=3)
  assert set(np.flatnonzero(counts)) <= set(order[:3])
  assert len(np.flatnonzero(counts)) == 3
  probs = np.exp(logits - np.logaddexp.reduce(logits))[order]
  nucleus = order[: int(np.searchsorted(np.cumsum(probs), 0.6) + 1)]
  counts = _first_token_counts(m, 2000, temperature=1.0, top_p=0.6)
  assert set(np.flatnonzero(counts)) <= set(nucleus)


def test_rows_stop_independently_and_truncation_is_flagged(model):
  params = nnx.state(model)
  sampler = Sampler(model, stop_ids=(_UNUSED,))
  free = np.asarray(sampler.sample(params, PROMPTS, num_samples=1, max_new_tokens=10,
                                   temperature=0.0, rng=jax.random.key(0)).tokens_NxT)
  # Stop on row 0's 4th token if it does not occur earlier in row 0 nor in row 2.
  stop = next(int(t) for k, t in enumerate(free[0]) if k >= 2 and t not in free[0][:k]
              and t not in free[2])
  k = list(free[0]).index(stop)
  r = Sampler(model, stop_ids=(stop, _UNUSED), pad_id=0).sample(
      params, PROMPTS, num_samples=1, max_new_tokens=10, temperature=0.0,
      rng=jax.random.key(0))
  tokens = np.asarray(r.tokens_NxT)
  assert int(r.lengths_N[0]) == k + 1 and not bool(r.truncated_N[0])
  np.testing.assert_array_equal(tokens[0, : k + 1], free[0, : k + 1])
  assert np.all(tokens[0, k + 1:] == 0)
  assert np.all(np.asarray(r.logprobs_NxT)[0, k + 1:] == 0)
  assert bool(r.truncated_N[2]) and int(r.lengths_N[2]) == 10
  np.testing.assert_array_equal(tokens[2], free[2])


def test_no_recompilation_across_temperatures_and_calls(model):
  sampler = Sampler(model, stop_ids=(3,))
  params = nnx.state(model)
  for i, t in enumerate([0.6, 0.9, 1.2, 1.5, 1.8]):
    sampler.sample(params, PROMPTS, num_samples=2, max_new_tokens=8, temperature=t,
                   top_p=1.0 - 0.05 * i, rng=jax.random.key(i))
  sampler.sample(params, PROMPTS, num_samples=2, max_new_tokens=8,
                 temperature=np.linspace(0.5, 1.5, 6), rng=jax.random.key(9))
  sampler.sample(params, [[9, 9], [1], [3, 3, 3]], num_samples=2, max_new_tokens=8,
                 temperature=1.0, rng=jax.random.key(10))  # same bucket
  assert sampler.num_traces == 1
  sched = np.linspace(0.6, 1.2, 8)
  r = sampler.sample(params, PROMPTS, num_samples=2, max_new_tokens=8, temperature=1.0,
                     temperature_schedule=sched, rng=jax.random.key(0))
  sampler.sample(params, PROMPTS, num_samples=2, max_new_tokens=8, temperature=1.0,
                 temperature_schedule=sched[::-1], rng=jax.random.key(0))
  assert sampler.num_traces == 2  # one more program for per-step schedules
  valid = np.arange(8)[None] < np.asarray(r.lengths_N)[:, None]
  np.testing.assert_allclose(np.asarray(r.temperatures_NxT),
                             np.where(valid, sched[None].astype(np.float32), 0))


def test_sharded_sampling_equals_one_device(model):
  params = nnx.state(model)
  kwargs = dict(num_samples=4, max_new_tokens=10, temperature=1.1,
                rng=jax.random.key(3))
  want = Sampler(model, stop_ids=(3, 4)).sample(params, PROMPTS, **kwargs)
  mesh = sharding.make_mesh({"fsdp": 4, "tensor": 2})
  sharded_params = jax.device_put(params, sharding.state_shardings(params, mesh))
  got = Sampler(model, stop_ids=(3, 4), mesh=mesh).sample(sharded_params, PROMPTS,
                                                           **kwargs)
  assert got.tokens_NxT.shape == (12, 10)  # 12 rows padded to 16, then cut
  np.testing.assert_array_equal(np.asarray(got.tokens_NxT), np.asarray(want.tokens_NxT))
  np.testing.assert_array_equal(np.asarray(got.lengths_N), np.asarray(want.lengths_N))
  np.testing.assert_allclose(np.asarray(got.logprobs_NxT), np.asarray(want.logprobs_NxT),
                             atol=1e-5)


def test_bad_arguments():
  m = init_model(get_preset("tiny"))
  with pytest.raises(ValueError, match="stop_ids"):
    Sampler(m, stop_ids=())
  s = Sampler(m, stop_ids=(1,))
  with pytest.raises(ValueError, match="at least one token"):
    s.sample(nnx.state(m), [[1], []], num_samples=1, max_new_tokens=4,
             rng=jax.random.key(0))
  with pytest.raises(ValueError, match=r"temperature_schedule has shape \(3,\)"):
    s.sample(nnx.state(m), [[1]], num_samples=1, max_new_tokens=4,
             temperature_schedule=[1.0, 1.0, 1.0], rng=jax.random.key(0))


def test_min_prompt_length_shares_one_program_across_buckets(model):
  """Chunks of one batch padded to the longest prompt of all: one program."""
  sampler = Sampler(model, stop_ids=(3,), buckets=(8, 16, 32))
  params = nnx.state(model)
  short, long = [[5, 6, 7]], [list(range(1, 13))]  # buckets 8 and 16 on their own
  kw = dict(num_samples=2, max_new_tokens=6, temperature=1.0, rng=jax.random.key(0))
  want = sampler.sample(params, short, **kw)
  got = sampler.sample(params, short, min_prompt_length=12, **kw)
  sampler.sample(params, long, min_prompt_length=12, **kw)
  assert sampler.num_traces == 2  # buckets 8 and 16; the long chunk reused 16
  assert np.asarray(got.prompt_ids_NxP).shape[1] == 16
  np.testing.assert_allclose(np.asarray(got.logprobs_NxT), np.asarray(want.logprobs_NxT),
                             atol=1e-5)
  np.testing.assert_array_equal(got.tokens_NxT, want.tokens_NxT)
