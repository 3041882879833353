"""Causal GQA attention with selectable backends; one call for every use.

    out_BxTxNxH = attention(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, kv_mask_BxS,
                            q_offset=0, kv_len=None, impl="auto")

Query t sits at key slot `q_offset + t`. Key slot s is visible to it iff
s <= q_offset + t (causal), `kv_mask_BxS[b, s]` (a real token, not padding) and
s < kv_len (the filled part of a KV cache). Training and log-prob recompute
call it with q_offset = 0 and T == S; a cached prefill or decode step passes
the cache index as q_offset and index + T as kv_len.

Backends (`impl`, the model config's `attention`):
  plain      reference: full [B, K, G, T, S] float32 scores; tests compare to it.
  blockwise  pure JAX, flash-style: online softmax over [block_q, block_kv]
             tiles, only the key blocks a query block can see (causal, filled),
             custom VJP that recomputes tiles instead of storing scores. CPU,
             GPU and TPU.
  splash     TPU Pallas splash attention (interpret mode elsewhere: tests only).
  cudnn      `jax.nn.dot_product_attention(implementation="cudnn")`, GPU,
             bfloat16/float16 only.
  auto       TPU -> splash, GPU -> cudnn (blockwise for float32), CPU ->
             blockwise once T x S exceeds `AUTO_PLAIN_MAX`, plain below;
             cached calls: blockwise over caches of more than
             `AUTO_PLAIN_CACHE` slots, plain below.

splash and cudnn are full-sequence kernels: they serve calls without a cache
(q_offset 0, T == S, the training forward). Calls on a KV cache always use the
blockwise kernel (or plain, when asked for or under `auto` at small sizes),
which reads only the filled key blocks: a decode step at fill i costs O(i).
Padding for cudnn must be left and/or right padding around one contiguous run
of real tokens per row (the trainer's layout); splash and blockwise take any
key mask.

Shapes: B batch, T queries, S key slots, N query heads, K key/value heads,
G = N // K, H head dim, L layers (a stacked KV cache).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from microcoder_jax import sharding

BACKENDS = ("auto", "plain", "blockwise", "splash", "cudnn")
# Under "auto": uncached calls with T x S at or below this use the plain path
# on CPU (small demos); cached calls over at most this many slots use it on
# every platform (one einsum beats a loop over a few short blocks).
AUTO_PLAIN_MAX = 1024 * 1024
AUTO_PLAIN_CACHE = 1024
_NEG = -1e30  # finite: fully masked (padding) rows stay NaN-free


def resolve(impl: str, *, t: int, s: int, cached: bool, dtype, head_dim: int,
            platform: str | None = None) -> str:
  """The backend that `impl` means for one call (static: shapes and platform)."""
  if impl not in BACKENDS:
    raise ValueError(f"attention={impl!r}; one of {BACKENDS}")
  if impl == "plain":
    return "plain"
  if cached:  # full-sequence kernels do not take a cache offset
    return "plain" if impl == "auto" and s <= AUTO_PLAIN_CACHE else "blockwise"
  if impl != "auto":
    return impl
  platform = platform or jax.devices()[0].platform
  if platform == "tpu":  # splash tiles the sequence in blocks of 128 or more
    return "splash" if t % 128 == 0 else "blockwise"
  if (platform == "gpu" and jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16)
      and head_dim % 8 == 0 and head_dim <= 256):
    return "cudnn"
  return "plain" if t * s <= AUTO_PLAIN_MAX else "blockwise"


def attention(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, kv_mask_BxS, *, q_offset=0,
              kv_len=None, impl: str = "auto", block_q: int = 512,
              block_kv: int = 512, layer=None):
  """Softmax(q·kᵀ/√H)·v over the visible keys; see the module docstring.

  With `layer` given, k and v are a stacked cache [L, B, S, K, H] (16-bit
  floats stored as uint16 bit patterns, as `layers.KVCache` keeps them) and
  only layer `layer` is read (block by block, never copied whole).
  """
  t, s = q_BxTxNxH.shape[1], k_BxSxKxH.shape[-3]
  cached = kv_len is not None or layer is not None or not (
      isinstance(q_offset, int) and q_offset == 0 and t == s)
  backend = resolve(impl, t=t, s=s, cached=cached, dtype=q_BxTxNxH.dtype,
                    head_dim=q_BxTxNxH.shape[-1])
  if backend == "plain":
    if layer is not None:
      k_BxSxKxH, v_BxSxKxH = (_from_storage(x[layer], q_BxTxNxH.dtype)
                              for x in (k_BxSxKxH, v_BxSxKxH))
    return plain_attention(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, kv_mask_BxS,
                           q_offset=q_offset, kv_len=kv_len)
  if backend == "blockwise":
    if layer is not None:
      return cached_attention(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, kv_mask_BxS,
                              layer=layer, q_offset=q_offset, kv_len=kv_len,
                              block_q=block_q, block_kv=block_kv)
    return blockwise_attention(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, kv_mask_BxS,
                               q_offset=q_offset, kv_len=kv_len,
                               block_q=block_q, block_kv=block_kv)
  if backend == "splash":
    return splash_attention(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, kv_mask_BxS)
  return cudnn_attention(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, kv_mask_BxS)


# ------------------------------------------------------------------ plain
def plain_attention(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, kv_mask_BxS, *, q_offset=0,
                    kv_len=None):
  """The reference: every score in float32, masked, softmax, weighted sum."""
  b, t, n, h = q_BxTxNxH.shape
  s, k = k_BxSxKxH.shape[1], k_BxSxKxH.shape[2]
  slots_S = jnp.arange(s)
  allowed_BxTxS = ((slots_S[None, None, :] <= (q_offset + jnp.arange(t))[None, :, None])
                   & kv_mask_BxS[:, None, :])
  if kv_len is not None:
    allowed_BxTxS &= (slots_S < kv_len)[None, None, :]
  q = q_BxTxNxH.reshape(b, t, k, n // k, h)
  scores = jnp.einsum("btkgh,bskh->bkgts", q, k_BxSxKxH,
                      preferred_element_type=jnp.float32) / math.sqrt(h)
  scores = jnp.where(allowed_BxTxS[:, None, None], scores, _NEG)
  probs = jax.nn.softmax(scores, axis=-1).astype(v_BxSxKxH.dtype)
  out = jnp.einsum("bkgts,bskh->btkgh", probs, v_BxSxKxH)
  return out.reshape(b, t, n, h).astype(q_BxTxNxH.dtype)


# -------------------------------------------------------------- blockwise
# One kernel body serves the training forward (4-D k/v, custom VJP) and
# cached calls (a stacked [L, B, S, K, H] cache read at one layer). Query
# blocks are visited in a loop; for each, only the key blocks it can see are
# visited (a dynamic trip count), each as one [B, K, G, block_q, block_kv]
# float32 tile. A last block that would run past the end is shifted left to
# stay inside; rows or columns it repeats are flagged and ignored, so no
# input is ever padded or copied.
def _cdiv(a, b):
  return (a + b - 1) // b


def to_storage(x):
  """A KV-cache value as stored: 16-bit floats as their uint16 bit patterns."""
  if x.dtype.itemsize == 2 and jnp.issubdtype(x.dtype, jnp.floating):
    return jax.lax.bitcast_convert_type(x, jnp.uint16)
  return x


def _from_storage(x, dtype):
  """Inverse of `to_storage` for a block read from the cache."""
  return jax.lax.bitcast_convert_type(x, dtype) if x.dtype == jnp.uint16 else x


def _kv_reader(k, v, layer, dtype):
  """(S, read(start, size) -> k, v blocks [B, size, K, H])."""
  if layer is None:
    return k.shape[1], lambda st, n: (
        jax.lax.dynamic_slice_in_dim(k, st, n, axis=1),
        jax.lax.dynamic_slice_in_dim(v, st, n, axis=1))
  _, b, s, kh, h = k.shape

  def read(st, n):
    at = (layer, 0, st, 0, 0)
    return (_from_storage(jax.lax.dynamic_slice(k, at, (1, b, n, kh, h))[0], dtype),
            _from_storage(jax.lax.dynamic_slice(v, at, (1, b, n, kh, h))[0], dtype))
  return s, read


class _Tiles:
  """Index arithmetic shared by the forward and backward passes."""

  def __init__(self, t, s, block_q, block_kv, q_offset, kv_len):
    self.t, self.s = t, s
    self.bq, self.bk = min(block_q, t), min(block_kv, s)
    self.nq, self.nk = _cdiv(t, self.bq), _cdiv(s, self.bk)
    self.q_offset = jnp.asarray(q_offset, jnp.int32)
    self.kv_len = jnp.asarray(s if kv_len is None else kv_len, jnp.int32)

  def q_block(self, i):
    """(start, fresh_rows [bq], slots [bq], number of key blocks to visit)."""
    start = jnp.minimum(i * self.bq, self.t - self.bq)
    rows = start + jnp.arange(self.bq)
    slots = self.q_offset + rows
    limit = jnp.minimum(self.kv_len, self.q_offset + start + self.bq)
    return start, rows >= i * self.bq, slots, jnp.clip(_cdiv(limit, self.bk), 0, self.nk)

  def k_block(self, j, mask_BxS, slots_Q):
    """(start, allowed [B, bq, bk]) for key block j."""
    start = jnp.minimum(j * self.bk, self.s - self.bk)
    cols = start + jnp.arange(self.bk)
    ok = (cols >= j * self.bk) & (cols < self.kv_len)
    real = jax.lax.dynamic_slice_in_dim(mask_BxS, start, self.bk, axis=1)
    allowed = (real[:, None, :] & ok[None, None, :]
               & (cols[None, None, :] <= slots_Q[None, :, None]))
    return start, allowed


def _scores(q_BxQxKxGxH, k_BxCxKxH, allowed_BxQxC):
  h = q_BxQxKxGxH.shape[-1]
  s = jnp.einsum("bqkgh,bckh->bkgqc", q_BxQxKxGxH, k_BxCxKxH,
                 preferred_element_type=jnp.float32) / math.sqrt(h)
  return jnp.where(allowed_BxQxC[:, None, None], s, _NEG)


def _forward(q_BxTxNxH, k, v, mask_BxS, q_offset, kv_len, layer, block_q, block_kv):
  """Returns (out [B, T, N, H], lse [B, K, G, T] float32)."""
  b, t, n, h = q_BxTxNxH.shape
  s, read = _kv_reader(k, v, layer, q_BxTxNxH.dtype)
  kh = k.shape[-2]
  g = n // kh
  tiles = _Tiles(t, s, block_q, block_kv, q_offset, kv_len)
  bq = tiles.bq
  q = q_BxTxNxH.reshape(b, t, kh, g, h)

  def q_body(i, carry):
    out, lse = carry
    start, _, slots, nk = tiles.q_block(i)
    q_blk = jax.lax.dynamic_slice_in_dim(q, start, bq, axis=1)

    def k_body(j, c):
      m, l, acc = c
      kstart, allowed = tiles.k_block(j, mask_BxS, slots)
      k_blk, v_blk = read(kstart, tiles.bk)
      sc = _scores(q_blk, k_blk, allowed)
      m_new = jnp.maximum(m, sc.max(-1))
      p = jnp.where(allowed[:, None, None], jnp.exp(sc - m_new[..., None]), 0.0)
      corr = jnp.exp(m - m_new)
      acc = acc * corr[..., None] + jnp.einsum(
          "bkgqc,bckh->bkgqh", p.astype(v_blk.dtype), v_blk,
          preferred_element_type=jnp.float32)
      return m_new, l * corr + p.sum(-1), acc

    init = (jnp.full((b, kh, g, bq), _NEG, jnp.float32),
            jnp.zeros((b, kh, g, bq), jnp.float32),
            jnp.zeros((b, kh, g, bq, h), jnp.float32))
    m, l, acc = jax.lax.fori_loop(0, nk, k_body, init)
    o = (acc / jnp.where(l > 0, l, 1.0)[..., None]).transpose(0, 3, 1, 2, 4)
    out = jax.lax.dynamic_update_slice_in_dim(out, o.astype(out.dtype), start, axis=1)
    lse_blk = jnp.where(l > 0, m + jnp.log(jnp.where(l > 0, l, 1.0)), 0.0)
    lse = jax.lax.dynamic_update_slice_in_dim(lse, lse_blk, start, axis=3)
    return out, lse

  init = (jnp.zeros((b, t, kh, g, h), q_BxTxNxH.dtype),
          jnp.zeros((b, kh, g, t), jnp.float32))
  out, lse = jax.lax.fori_loop(0, tiles.nq, q_body, init)
  return out.reshape(b, t, n, h), lse


def _backward(q_BxTxNxH, k, v, mask_BxS, q_offset, kv_len, out, lse, d_out,
              block_q, block_kv):
  """FlashAttention-2 backward: tiles recomputed from q, k, v and lse."""
  b, t, n, h = q_BxTxNxH.shape
  s, kh = k.shape[1], k.shape[2]
  g = n // kh
  tiles = _Tiles(t, s, block_q, block_kv, q_offset, kv_len)
  bq, bk = tiles.bq, tiles.bk
  q = q_BxTxNxH.reshape(b, t, kh, g, h)
  do = d_out.reshape(b, t, kh, g, h)
  # D_i = Σ_h dO·O, the softmax-backward row term.
  delta = jnp.einsum("btkgh,btkgh->bkgt", do.astype(jnp.float32),
                     out.reshape(b, t, kh, g, h).astype(jnp.float32))
  scale = 1.0 / math.sqrt(h)

  def q_body(i, carry):
    dq, dk, dv = carry
    start, fresh, slots, nk = tiles.q_block(i)
    q_blk = jax.lax.dynamic_slice_in_dim(q, start, bq, axis=1)
    # Rows an earlier block already handled contribute nothing here.
    do_blk = jnp.where(fresh[None, :, None, None, None],
                       jax.lax.dynamic_slice_in_dim(do, start, bq, axis=1), 0)
    lse_blk = jax.lax.dynamic_slice_in_dim(lse, start, bq, axis=3)
    d_blk = jnp.where(fresh, jax.lax.dynamic_slice_in_dim(delta, start, bq, axis=3), 0.0)

    def k_body(j, c):
      dq_blk, dk, dv = c
      kstart, allowed = tiles.k_block(j, mask_BxS, slots)
      k_blk = jax.lax.dynamic_slice_in_dim(k, kstart, bk, axis=1)
      v_blk = jax.lax.dynamic_slice_in_dim(v, kstart, bk, axis=1)
      sc = _scores(q_blk, k_blk, allowed)
      p = jnp.where(allowed[:, None, None], jnp.exp(sc - lse_blk[..., None]), 0.0)
      dv_blk = jnp.einsum("bkgqc,bqkgh->bckh", p.astype(do_blk.dtype), do_blk,
                          preferred_element_type=jnp.float32)
      dp = jnp.einsum("bqkgh,bckh->bkgqc", do_blk, v_blk,
                      preferred_element_type=jnp.float32)
      ds = p * (dp - d_blk[..., None]) * scale
      dq_blk = dq_blk + jnp.einsum("bkgqc,bckh->bqkgh", ds.astype(k_blk.dtype), k_blk,
                                   preferred_element_type=jnp.float32)
      dk_blk = jnp.einsum("bkgqc,bqkgh->bckh", ds.astype(q_blk.dtype), q_blk,
                          preferred_element_type=jnp.float32)
      dk = jax.lax.dynamic_update_slice_in_dim(
          dk, jax.lax.dynamic_slice_in_dim(dk, kstart, bk, axis=1) + dk_blk, kstart, axis=1)
      dv = jax.lax.dynamic_update_slice_in_dim(
          dv, jax.lax.dynamic_slice_in_dim(dv, kstart, bk, axis=1) + dv_blk, kstart, axis=1)
      return dq_blk, dk, dv

    dq_blk, dk, dv = jax.lax.fori_loop(
        0, nk, k_body, (jnp.zeros((b, bq, kh, g, h), jnp.float32), dk, dv))
    old = jax.lax.dynamic_slice_in_dim(dq, start, bq, axis=1)
    dq_blk = jnp.where(fresh[None, :, None, None, None], dq_blk, old)
    return jax.lax.dynamic_update_slice_in_dim(dq, dq_blk, start, axis=1), dk, dv

  init = (jnp.zeros((b, t, kh, g, h), jnp.float32),
          jnp.zeros(k.shape, jnp.float32), jnp.zeros(v.shape, jnp.float32))
  dq, dk, dv = jax.lax.fori_loop(0, tiles.nq, q_body, init)
  return (dq.reshape(b, t, n, h).astype(q_BxTxNxH.dtype), dk.astype(k.dtype),
          dv.astype(v.dtype))


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _flash(q, k, v, mask, q_offset, kv_len, block_q, block_kv):
  return _forward(q, k, v, mask, q_offset, kv_len, None, block_q, block_kv)[0]


def _flash_fwd(q, k, v, mask, q_offset, kv_len, block_q, block_kv):
  out, lse = _forward(q, k, v, mask, q_offset, kv_len, None, block_q, block_kv)
  return out, (q, k, v, mask, q_offset, kv_len, out, lse)


def _flash_bwd(block_q, block_kv, res, d_out):
  q, k, v, mask, q_offset, kv_len, out, lse = res
  dq, dk, dv = _backward(q, k, v, mask, q_offset, kv_len, out, lse, d_out,
                         block_q, block_kv)
  return dq, dk, dv, None, None, None


_flash.defvjp(_flash_fwd, _flash_bwd)


def blockwise_attention(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, kv_mask_BxS, *, q_offset=0,
                        kv_len=None, block_q: int = 512, block_kv: int = 512):
  """Flash-style attention in pure JAX; differentiable (custom VJP).

  Never holds more than one [B, K, G, block_q, block_kv] tile of scores; the
  backward recomputes tiles from q, k, v and the per-row log-normaliser.
  """
  s = k_BxSxKxH.shape[1]
  kv_len = jnp.asarray(s if kv_len is None else kv_len, jnp.int32)
  return _flash(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, kv_mask_BxS.astype(bool),
                jnp.asarray(q_offset, jnp.int32), kv_len, block_q, block_kv)


def cached_attention(q_BxTxNxH, k_LxBxSxKxH, v_LxBxSxKxH, kv_mask_BxS, *, layer,
                     q_offset, kv_len, block_q: int = 512, block_kv: int = 512):
  """Blockwise forward over layer `layer` of a stacked cache (no gradient).

  Visits key blocks up to the filled length only, so its cost grows with
  the cache's fill, not its capacity.
  """
  return _forward(q_BxTxNxH, k_LxBxSxKxH, v_LxBxSxKxH, kv_mask_BxS.astype(bool),
                  q_offset, kv_len, layer, block_q, block_kv)[0]


# ----------------------------------------------------------------- splash
_SPLASH_BLOCK = 512


@functools.lru_cache(maxsize=32)
def _splash_kernel(t: int, num_heads: int, interpret: bool):
  from jax.experimental.pallas.ops.tpu.splash_attention import (  # pylint: disable=g-import-not-at-top
      splash_attention_kernel as sk, splash_attention_mask as sm)
  block = max(b for b in (_SPLASH_BLOCK, 256, 128) if t % b == 0)
  sizes = sk.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block,
                        block_q_dkv=block, block_kv_dkv=block,
                        block_kv_dkv_compute=block, block_q_dq=block,
                        block_kv_dq=block)
  mask = sm.MultiHeadMask([sm.CausalMask((t, t)) for _ in range(num_heads)])
  kernel = sk.make_splash_mha(mask, block_sizes=sizes, head_shards=1,
                              q_seq_shards=1, interpret=interpret)
  return kernel, sk.SegmentIds


def splash_attention(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, mask_BxT):
  """TPU splash attention; padding as segment 0, so real tokens see only real.

  T is padded to a multiple of 128. Under a mesh the kernel runs per shard
  (`shard_map`: batch over the batch axes, heads over the tensor axis).
  """
  b, t, n, h = q_BxTxNxH.shape
  pad = (-t) % 128
  if pad:
    widths = ((0, 0), (0, pad), (0, 0), (0, 0))
    q_BxTxNxH, k_BxTxKxH, v_BxTxKxH = (jnp.pad(x, widths) for x in
                                       (q_BxTxNxH, k_BxTxKxH, v_BxTxKxH))
    mask_BxT = jnp.pad(mask_BxT, ((0, 0), (0, pad)))
  interpret = jax.devices()[0].platform != "tpu"

  def run(q, k, v, seg):  # [b, T, n, h] per shard
    kernel, segment_ids = _splash_kernel(q.shape[1], q.shape[2], interpret)
    one = lambda q, k, v, s: kernel(q, k, v, segment_ids=segment_ids(q=s, kv=s))
    q = q.transpose(0, 2, 1, 3) / math.sqrt(h)
    out = jax.vmap(one)(q, k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3), seg)
    return out.transpose(0, 2, 1, 3).astype(q_BxTxNxH.dtype)

  seg = mask_BxT.astype(jnp.int32)
  mesh = sharding.active_mesh()
  if mesh is not None and mesh.size > 1:
    spec = lambda *axes, shape: sharding.logical_to_spec(
        axes, rules=sharding.active_rules(), mesh=mesh, shape=shape)
    qs = spec("act_batch", None, "act_heads", None, shape=q_BxTxNxH.shape)
    ks = spec("act_batch", None, "act_kv_heads", None, shape=k_BxTxKxH.shape)
    ms = P(*(tuple(qs)[:1] or (None,)))
    run = jax.shard_map(run, mesh=mesh, in_specs=(qs, ks, ks, ms), out_specs=qs,
                        check_vma=False)
  return run(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, seg)[:, :t]


# ------------------------------------------------------------------ cudnn
def cudnn_attention(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, mask_BxT, *,
                    implementation: str = "cudnn"):
  """cuDNN flash attention for one contiguous run of real tokens per row.

  Each row is rotated so its real tokens start at slot 0 (a left-padded row
  becomes right-padded), attended with a padding-causal mask from the row's
  real length, and rotated back. Causality among real tokens is unchanged
  by the rotation. `implementation="xla"` runs the same arithmetic on CPU
  (tests).
  """
  t = q_BxTxNxH.shape[1]
  mask_BxT = mask_BxT.astype(bool)
  lead_B = jnp.argmax(mask_BxT, axis=1).astype(jnp.int32)  # left padding
  length_B = jnp.sum(mask_BxT, axis=1, dtype=jnp.int32)
  idx_BxT = (jnp.arange(t)[None, :] + lead_B[:, None]) % t
  gather = lambda x, i: jnp.take_along_axis(x, i[:, :, None, None], axis=1)
  q, k, v = (gather(x, idx_BxT) for x in (q_BxTxNxH, k_BxTxKxH, v_BxTxKxH))
  length_B = jnp.maximum(length_B, 1)  # an all-padding row: one dummy token
  out = jax.nn.dot_product_attention(
      q, k, v, is_causal=True, query_seq_lengths=length_B,
      key_value_seq_lengths=length_B, implementation=implementation)
  back_BxT = (jnp.arange(t)[None, :] - lead_B[:, None]) % t
  return gather(out, back_BxT).astype(q_BxTxNxH.dtype)
