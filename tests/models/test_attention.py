"""Attention backends against the plain float32 reference: outputs and gradients."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from microcoder_jax import sharding
from microcoder_jax.models import attention as A


def _inputs(b=3, t=37, n=8, k=2, h=16, seed=0, dtype=jnp.float32):
  rng = np.random.default_rng(seed)
  q = jnp.asarray(rng.normal(size=(b, t, n, h)), dtype)
  kv = [jnp.asarray(rng.normal(size=(b, t, k, h)), dtype) for _ in range(2)]
  mask = np.ones((b, t), bool)
  mask[1, :5] = False           # left padding
  mask[2, : t - 6] = False      # mostly padding
  mask[0, t - 3:] = False       # right padding (a finished response)
  return q, kv[0], kv[1], jnp.asarray(mask)


def _loss(fn, mask):
  """A scalar over real positions only (padding outputs are unspecified)."""
  def loss(q, k, v):
    w = jnp.cos(jnp.arange(q.shape[-1], dtype=jnp.float32))
    return jnp.sum(fn(q, k, v, mask) * mask[:, :, None, None] * w)
  return loss


def _check(fn, q, k, v, mask, tol=1e-5):
  """Outputs and gradients within `tol`, absolute or relative (float32)."""
  m = np.asarray(mask)
  want = A.plain_attention(q, k, v, mask)
  got = fn(q, k, v, mask)
  np.testing.assert_allclose(np.asarray(got)[m], np.asarray(want)[m], atol=tol, rtol=tol)
  g_want = jax.grad(_loss(A.plain_attention, mask), argnums=(0, 1, 2))(q, k, v)
  g_got = jax.grad(_loss(fn, mask), argnums=(0, 1, 2))(q, k, v)
  for name, a, b in zip("qkv", g_got, g_want):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=tol, rtol=tol,
                               err_msg=name)


# GQA ratios 1, 2, 4, 8; block sizes that divide T = 37, do not, exceed it.
@pytest.mark.parametrize("kv_heads,blocks", [(8, (8, 8)), (4, (5, 7)), (2, (64, 64)),
                                             (1, (37, 11)), (1, (8, 8))])
def test_blockwise_equals_plain(kv_heads, blocks):
  q, k, v, mask = _inputs(k=kv_heads)
  fn = lambda q, k, v, m: A.blockwise_attention(q, k, v, m, block_q=blocks[0],
                                                block_kv=blocks[1])
  _check(fn, q, k, v, mask)


def test_cudnn_rotation_equals_plain():
  """The cudnn backend's padding arithmetic, run by XLA (no GPU here)."""
  q, k, v, mask = _inputs(k=4)
  _check(lambda q, k, v, m: A.cudnn_attention(q, k, v, m, implementation="xla"),
         q, k, v, mask)


@pytest.mark.parametrize("t", [256, 200])  # 200: padded to a multiple of 128
def test_splash_interpret_equals_plain(t):
  q, k, v, mask = _inputs(b=3, t=t, n=4, k=2, h=64)
  _check(A.splash_attention, q, k, v, mask, tol=2e-5)


def test_splash_under_a_mesh_equals_plain():
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
  q, k, v, mask = _inputs(b=4, t=128, n=4, k=2, h=64)
  with sharding.use_mesh(mesh):
    got = jax.jit(A.splash_attention)(q, k, v, mask)
  m = np.asarray(mask)
  np.testing.assert_allclose(np.asarray(got)[m],
                             np.asarray(A.plain_attention(q, k, v, mask))[m], atol=2e-5)


def _stacked_cache(q_len, slots=29, layers=3, b=3, k=2, h=16, dtype=jnp.float32):
  """A cache with slots [0, fill) written, the query's slots after them."""
  rng = np.random.default_rng(1)
  k_all = jnp.asarray(rng.normal(size=(layers, b, slots, k, h)), dtype)
  v_all = jnp.asarray(rng.normal(size=(layers, b, slots, k, h)), dtype)
  mask = np.ones((b, slots), bool)
  mask[1, :4] = False
  mask[2, :9] = False
  q = jnp.asarray(rng.normal(size=(b, q_len, 8, h)), dtype)
  return q, k_all, v_all, jnp.asarray(mask)


@pytest.mark.parametrize("q_len,fill", [(1, 1), (1, 17), (1, 29), (6, 13), (13, 0)])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_cached_attention_reads_only_the_filled_slots(q_len, fill, dtype):
  """Decode (q_len 1) and prefill (q_len > 1) over a stacked cache at slot
  `fill`; slots past index + q_len hold garbage that must not be read."""
  q, k_all, v_all, mask = _stacked_cache(q_len, dtype=dtype)
  layer, index = 1, fill
  kv_len = index + q_len
  want = A.plain_attention(q, k_all[layer][:, :kv_len], v_all[layer][:, :kv_len],
                           mask[:, :kv_len], q_offset=index)
  stored_k, stored_v = A.to_storage(k_all), A.to_storage(v_all)
  for blocks in [(4, 4), (5, 7), (512, 512)]:
    got = A.cached_attention(q, stored_k, stored_v, mask, layer=jnp.int32(layer),
                             q_offset=jnp.int32(index), kv_len=jnp.int32(kv_len),
                             block_q=blocks[0], block_kv=blocks[1])
    real = np.asarray(mask[:, index:kv_len])
    tol = 1e-5 if dtype == jnp.float32 else 2e-2
    np.testing.assert_allclose(np.asarray(got, np.float32)[real],
                               np.asarray(want, np.float32)[real], atol=tol)


def test_cached_attention_does_not_recompile_across_fills():
  q, k_all, v_all, mask = _stacked_cache(1)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(index):
    return A.cached_attention(q, k_all, v_all, mask, layer=jnp.int32(0), q_offset=index,
                              kv_len=index + 1, block_q=4, block_kv=4)

  chex.clear_trace_counter()
  for index in (0, 7, 28):
    step(jnp.int32(index))


def test_auto_resolution():
  kw = dict(dtype=jnp.bfloat16, head_dim=128)
  assert A.resolve("auto", t=4096, s=4096, cached=False, platform="tpu", **kw) == "splash"
  # Splash tiles by 128: a prompt bucket + L_max that is not a multiple goes blockwise.
  assert A.resolve("auto", t=4176, s=4176, cached=False, platform="tpu", **kw) == "blockwise"
  assert A.resolve("auto", t=4096, s=4096, cached=False, platform="gpu", **kw) == "cudnn"
  assert A.resolve("auto", t=4096, s=4096, cached=False, platform="gpu",
                   dtype=jnp.float32, head_dim=128) == "blockwise"
  assert A.resolve("auto", t=4096, s=4096, cached=False, platform="cpu", **kw) == "blockwise"
  assert A.resolve("auto", t=64, s=64, cached=False, platform="cpu", **kw) == "plain"
  # Cached calls never go to a full-sequence kernel.
  assert A.resolve("splash", t=1, s=10240, cached=True, platform="tpu", **kw) == "blockwise"
  assert A.resolve("auto", t=1, s=256, cached=True, platform="tpu", **kw) == "plain"
  assert A.resolve("auto", t=1, s=8192, cached=True, platform="cpu", **kw) == "blockwise"
  assert A.resolve("plain", t=1, s=10240, cached=True, platform="tpu", **kw) == "plain"
  with pytest.raises(ValueError, match="flash"):
    A.resolve("flash", t=8, s=8, cached=False, **kw)
