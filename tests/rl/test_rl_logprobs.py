"""token_logprobs / token_entropy: chunked == plain == float64 reference."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from microcoder_jax import rl
from rl import rl_reference as reference

N, T, D, V = 3, 7, 16, 50  # N·T = 21 and V = 50: prime-ish, nothing divides


def _inputs(seed):
  rng = np.random.default_rng(seed)
  hidden = rng.normal(0, 1, (N, T, D)).astype(np.float32)
  unembed = rng.normal(0, 0.5, (D, V)).astype(np.float32)
  targets = rng.integers(0, V, (N, T)).astype(np.int32)
  cotangent = rng.normal(0, 1, (N, T)).astype(np.float32)
  return hidden, unembed, targets, cotangent


@functools.partial(jax.jit, static_argnames=("chunk", "vchunk"))
def _logp_and_grads(hidden, unembed, targets, temperature, cotangent, *,
                    chunk, vchunk):

  def f(h, w, temp):
    logp = rl.token_logprobs(h, w, targets, temperature=temp,
                             chunk_size=chunk, vocab_chunk_size=vchunk)
    return (logp * cotangent).sum(), logp

  grads, logp = jax.grad(f, argnums=(0, 1, 2), has_aux=True)(
      hidden, unembed, temperature)
  return logp, grads


def _per_row(temperature):
  return jnp.full((N,), temperature, jnp.float32)


@pytest.mark.parametrize("chunk,vchunk", [(None, None), (1, 1), (4, 7),
                                          (5, None), (8, 50), (21, 13),
                                          (64, 64)])
def test_logprobs_and_grads_match_float64(chunk, vchunk):
  hidden, unembed, targets, cotangent = _inputs(0)
  for temps in (0.6, 1.2, 1.8, np.array([0.6, 1.2, 1.8], np.float32)):
    temps = _per_row(temps) if np.ndim(temps) == 0 else jnp.asarray(temps)
    logp, grads = _logp_and_grads(hidden, unembed, targets, temps, cotangent,
                                  chunk=chunk, vchunk=vchunk)
    want, _, _ = reference.log_softmax_target(hidden, unembed, targets, temps)
    np.testing.assert_allclose(logp, want, rtol=1e-5, atol=1e-5)
    want_grads = reference.logprob_grads(hidden, unembed, targets, temps,
                                         cotangent)
    for got, ref in zip(grads, want_grads):
      np.testing.assert_allclose(got, ref, rtol=1e-4,
                                 atol=1e-5 * np.abs(ref).max())


def test_chunked_equals_plain():
  hidden, unembed, targets, cotangent = _inputs(1)
  temps = jnp.array([0.6, 1.2, 1.8])
  plain, plain_grads = _logp_and_grads(hidden, unembed, targets, temps,
                                       cotangent, chunk=None, vchunk=None)
  for chunk, vchunk in [(4, 7), (21, 13), (5, None)]:
    logp, grads = _logp_and_grads(hidden, unembed, targets, temps, cotangent,
                                  chunk=chunk, vchunk=vchunk)
    np.testing.assert_allclose(logp, plain, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, plain_grads):
      np.testing.assert_allclose(got, want, rtol=1e-5,
                                 atol=1e-5 * np.abs(want).max())


def test_scalar_temperature_and_bf16_inputs():
  hidden, unembed, targets, cotangent = _inputs(2)
  scalar = rl.token_logprobs(hidden, unembed, targets, temperature=1.2,
                             chunk_size=4)
  per_row = rl.token_logprobs(hidden, unembed, targets,
                              temperature=_per_row(1.2), chunk_size=4)
  np.testing.assert_allclose(scalar, per_row, rtol=1e-6, atol=1e-6)
  h16, w16 = hidden.astype(jnp.bfloat16), unembed.astype(jnp.bfloat16)
  got = rl.token_logprobs(h16, w16, targets, temperature=1.2, chunk_size=4)
  assert got.dtype == jnp.float32
  want, _, _ = reference.log_softmax_target(
      np.asarray(h16, np.float32), np.asarray(w16, np.float32), targets, 1.2)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  # bf16 gradients (dW kept in bf16, overlapping last vocab block).
  _, grads = _logp_and_grads(h16, w16, targets, _per_row(1.2), cotangent,
                             chunk=4, vchunk=7)
  want_grads = reference.logprob_grads(
      np.asarray(h16, np.float32), np.asarray(w16, np.float32), targets,
      _per_row(1.2), cotangent)
  for got, ref in zip(grads[:2], want_grads[:2]):
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(got, np.float32), ref, rtol=2e-2,
                               atol=2e-2 * np.abs(ref).max())


def test_entropy_matches_reference():
  hidden, unembed, _, cotangent = _inputs(3)
  temps = jnp.array([0.6, 1.2, 1.8])

  @functools.partial(jax.jit, static_argnames="chunk")
  def ent_and_grad(h, chunk):
    f = lambda h: rl.token_entropy(h, unembed, temperature=temps,
                                   chunk_size=chunk)
    return f(h), jax.grad(lambda h: (f(h) * cotangent).sum())(h)

  plain, plain_grad = ent_and_grad(hidden, None)
  np.testing.assert_allclose(plain, reference.entropy(hidden, unembed, temps),
                             rtol=1e-5, atol=1e-5)
  for chunk in (4, 21):
    ent, grad = ent_and_grad(hidden, chunk)
    np.testing.assert_allclose(ent, plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad, plain_grad, rtol=1e-5, atol=1e-5)


def test_shape_errors():
  hidden, unembed, targets, _ = _inputs(0)
  with pytest.raises(ValueError, match="D="):
    rl.token_logprobs(hidden, unembed[:-1], targets, temperature=1.0)
  with pytest.raises(ValueError, match="chunk"):
    rl.token_logprobs(hidden, unembed, targets, temperature=1.0, chunk_size=0)
  with pytest.raises(AssertionError):
    rl.token_logprobs(hidden, unembed, targets, temperature=jnp.ones(N + 1))
