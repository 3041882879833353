"""Token log-probs log π_θ^T(o_t | q, o_<t) and entropies from final hiddens.

Both functions apply the LM head themselves, `logits = h · W / T_row`, so that
`[N, T, V]` logits (V = 151,936 for Qwen) never have to exist at once. With
`chunk_size=None` they run the plain reference computation. Otherwise:

* `token_logprobs` walks `[chunk_size, vocab_chunk_size]` blocks of logits
  (vocabulary blocks outer, token chunks inner) under a custom VJP. The
  forward keeps only the per-token log-normaliser; the backward recomputes
  each block and writes dW one `[D, vocab_chunk_size]` slice at a time. Peak
  temporary memory is O(chunk·vocab_chunk + D·vocab_chunk + N·T·D), not
  O(N·T·V). The price is one extra head matmul in the backward (4 instead of
  3 for forward + backward).
* `token_entropy` maps over token chunks with `jax.checkpoint` (full V per
  chunk); it is mostly a metric.

The temperature T may be a scalar or a per-row `[N]` array (broadcast over the
response); it is traced, so a schedule never recompiles. Gradients flow to
hidden, unembed and temperature. Logits are computed in float32 whatever the
input dtype; with bfloat16 weights dW is accumulated in float32 and cast once.
"""
import functools
from typing import Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np

# Vocabulary block of the chunked path: [chunk, 8192] float32 logits.
DEFAULT_VOCAB_CHUNK = 8192


def _per_token_temperature(temperature, n, t):
  """Broadcasts a scalar or `[N]` temperature to float32 `[N·T]`."""
  temperature = jnp.asarray(temperature, jnp.float32)
  if temperature.ndim == 0:
    return jnp.full((n * t,), temperature)
  chex.assert_shape(temperature, (n,))
  return jnp.broadcast_to(temperature[:, None], (n, t)).reshape(n * t)


def _logits(h_KxD, w_DxV):
  return jnp.einsum("kd,dv->kv", h_KxD, w_DxV,
                    preferred_element_type=jnp.float32)


def _to_chunks(x_M, chunk, fill):
  """Pads the leading axis to a multiple of `chunk`, reshapes to chunks."""
  m = x_M.shape[0]
  pad = (-m) % chunk
  if pad:
    widths = [(0, pad)] + [(0, 0)] * (x_M.ndim - 1)
    x_M = jnp.pad(x_M, widths, constant_values=fill)
  return x_M.reshape((m + pad) // chunk, chunk, *x_M.shape[1:])


def _chunk_length(size, total):
  if size < 1:
    raise ValueError(f"chunk sizes must be >= 1, got {size}.")
  return min(size, total)


def _check_inputs(hidden_NxTxD, unembed_DxV, targets_NxT=None):
  chex.assert_rank([hidden_NxTxD, unembed_DxV], [3, 2])
  if hidden_NxTxD.shape[-1] != unembed_DxV.shape[0]:
    raise ValueError(f"hidden D={hidden_NxTxD.shape[-1]} != unembed D="
                     f"{unembed_DxV.shape[0]}.")
  if targets_NxT is not None:
    chex.assert_shape(targets_NxT, hidden_NxTxD.shape[:2])


# --- log-probs ---------------------------------------------------------------


def _plain_logprobs(h_MxD, w_DxV, tgt_M, temp_M):
  logits_MxV = _logits(h_MxD, w_DxV) / temp_M[:, None]
  logp_MxV = jax.nn.log_softmax(logits_MxV, axis=-1)
  return jnp.take_along_axis(logp_MxV, tgt_M[:, None], axis=-1)[:, 0]


def _vocab_block(w_DxV, b, block):
  """Block b of `block` columns; the last one is shifted left to stay inside V.

  Columns already covered by an earlier block are flagged invalid, so V need
  not be a multiple of `block`.
  """
  v = w_DxV.shape[1]
  start = jnp.minimum(b * block, v - block)
  w_DxB = jax.lax.dynamic_slice_in_dim(w_DxV, start, block, axis=1)
  col_B = start + jnp.arange(block)
  return start, w_DxB, col_B, col_B >= b * block


def _block_fwd(w_DxB, col_B, valid_B, h_KxD, tgt_K, temp_K):
  """Block log-normaliser and target logit (0 if not in block), `[K]` each."""
  logits_KxB = _logits(h_KxD, w_DxB) / temp_K[:, None]
  logits_KxB = jnp.where(valid_B[None], logits_KxB, -jnp.inf)
  hit_KxB = (col_B[None] == tgt_K[:, None]) & valid_B[None]
  return (jax.nn.logsumexp(logits_KxB, axis=-1),
          jnp.sum(jnp.where(hit_KxB, logits_KxB, 0.0), axis=-1))


def _block_bwd(w_DxB, col_B, valid_B, h_KxD, tgt_K, temp_K, lse_K, g_K):
  """One [K, B] block of the backward: (h^T dz, dz W^T)."""
  z_KxB = _logits(h_KxD, w_DxB) / temp_K[:, None]
  p_KxB = jnp.where(valid_B[None], jnp.exp(z_KxB - lse_K[:, None]), 0.0)
  hit_KxB = (col_B[None] == tgt_K[:, None]) & valid_B[None]
  # d logp / d (h·W) = (onehot − p) / T, times the incoming cotangent.
  dz_KxB = (hit_KxB.astype(jnp.float32) - p_KxB) * (g_K / temp_K)[:, None]
  dw_DxB = jnp.einsum("kd,kb->db", h_KxD, dz_KxB.astype(h_KxD.dtype),
                      preferred_element_type=jnp.float32)
  dh_KxD = jnp.einsum("kb,db->kd", dz_KxB.astype(w_DxB.dtype), w_DxB,
                      preferred_element_type=jnp.float32)
  return dw_DxB, dh_KxD


# The loops run over vocabulary blocks (outer) and token chunks (inner), so
# each [D, B] slice of W is cut once per pass, and dW is written one slice at
# a time into the gradient buffer: no [D, V]-sized temporary besides dW.


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _chunked_logprobs(block, h_CxKxD, w_DxV, tgt_CxK, temp_CxK):
  return _chunked_logprobs_fwd(block, h_CxKxD, w_DxV, tgt_CxK, temp_CxK)[0]


def _chunked_logprobs_fwd(block, h_CxKxD, w_DxV, tgt_CxK, temp_CxK):
  def vocab_body(carry, b):
    lse_CxK, tgt_logit_CxK = carry
    _, w_DxB, col_B, valid_B = _vocab_block(w_DxV, b, block)
    _, (lse_b_CxK, tgt_b_CxK) = jax.lax.scan(
        lambda c, xs: (c, _block_fwd(w_DxB, col_B, valid_B, *xs)), None,
        (h_CxKxD, tgt_CxK, temp_CxK))
    return (jnp.logaddexp(lse_CxK, lse_b_CxK), tgt_logit_CxK + tgt_b_CxK), None

  num_blocks = -(-w_DxV.shape[1] // block)
  init = (jnp.full(tgt_CxK.shape, -jnp.inf, jnp.float32),
          jnp.zeros(tgt_CxK.shape, jnp.float32))
  (lse_CxK, tgt_logit_CxK), _ = jax.lax.scan(vocab_body, init,
                                             jnp.arange(num_blocks))
  logp_CxK = tgt_logit_CxK - lse_CxK
  return logp_CxK, (h_CxKxD, w_DxV, tgt_CxK, temp_CxK, lse_CxK)


def _chunked_logprobs_bwd(block, res, g_CxK):
  h_CxKxD, w_DxV, tgt_CxK, temp_CxK, lse_CxK = res
  d = w_DxV.shape[0]

  def vocab_body(carry, b):
    dw_DxV, dh_CxKxD = carry
    start, w_DxB, col_B, valid_B = _vocab_block(w_DxV, b, block)

    def token_body(carry, xs):
      dw_DxB, dh_CxKxD = carry
      i, *rest = xs
      dw_b_DxB, dh_KxD = _block_bwd(w_DxB, col_B, valid_B, *rest)
      dh_CxKxD = dh_CxKxD.at[i].add(dh_KxD)
      return (dw_DxB + dw_b_DxB, dh_CxKxD), None

    init = (jnp.zeros((d, block), jnp.float32), dh_CxKxD)
    xs = (jnp.arange(h_CxKxD.shape[0]), h_CxKxD, tgt_CxK, temp_CxK, lse_CxK,
          g_CxK)
    (dw_DxB, dh_CxKxD), _ = jax.lax.scan(token_body, init, xs)
    # Columns of a shifted last block that belong to an earlier block carry a
    # zero gradient here, so adding the existing slice keeps them intact. The
    # slice is complete (float32 sum over all tokens), so dW itself can be
    # kept in W's dtype.
    dw_DxB += jax.lax.dynamic_slice_in_dim(dw_DxV, start, block, axis=1)
    dw_DxV = jax.lax.dynamic_update_slice_in_dim(
        dw_DxV, dw_DxB.astype(dw_DxV.dtype), start, axis=1)
    return (dw_DxV, dh_CxKxD), None

  num_blocks = -(-w_DxV.shape[1] // block)
  init = (jnp.zeros_like(w_DxV), jnp.zeros(h_CxKxD.shape, jnp.float32))
  (dw_DxV, dh_CxKxD), _ = jax.lax.scan(vocab_body, init,
                                       jnp.arange(num_blocks))
  # d logp / d T = (E_p[z] − z_target) / T² with z = h·W, which equals
  # −h·(d logp / d h) / T: no extra pass over the vocabulary.
  dtemp_CxK = -jnp.einsum("ckd,ckd->ck", h_CxKxD.astype(jnp.float32),
                          dh_CxKxD) / temp_CxK
  dtgt = np.zeros(tgt_CxK.shape, dtype=jax.dtypes.float0)
  return dh_CxKxD.astype(h_CxKxD.dtype), dw_DxV, dtgt, dtemp_CxK


_chunked_logprobs.defvjp(_chunked_logprobs_fwd, _chunked_logprobs_bwd)


def token_logprobs(hidden_NxTxD: jnp.ndarray,
                   unembed_DxV: jnp.ndarray,
                   targets_NxT: jnp.ndarray,
                   *,
                   temperature,
                   chunk_size: Optional[int] = None,
                   vocab_chunk_size: Optional[int] = None) -> jnp.ndarray:
  """log softmax(h · W / T)[target] per token: log π_θ^T(o_t | ·).

  Args:
    hidden_NxTxD: final hidden states that predict `targets_NxT`.
    unembed_DxV: LM head W (for tied embeddings pass `embedding.T`).
    targets_NxT: int token ids o_t.
    temperature: T, a scalar or per-row `[N]`; traced.
    chunk_size: tokens per chunk (static). None = plain reference path. Need
      not divide N·T (the flattened tokens are padded).
    vocab_chunk_size: vocabulary columns per block inside a chunk (static,
      chunked path only); None = `DEFAULT_VOCAB_CHUNK`. Need not divide V.

  Returns:
    float32 `[N, T]` log-probs.
  """
  _check_inputs(hidden_NxTxD, unembed_DxV, targets_NxT)
  n, t, d = hidden_NxTxD.shape
  h_MxD = hidden_NxTxD.reshape(n * t, d)
  tgt_M = jnp.asarray(targets_NxT, jnp.int32).reshape(n * t)
  temp_M = _per_token_temperature(temperature, n, t)
  if chunk_size is None or n * t == 0:
    return _plain_logprobs(h_MxD, unembed_DxV, tgt_M, temp_M).reshape(n, t)
  chunk = _chunk_length(chunk_size, n * t)
  block = _chunk_length(vocab_chunk_size or DEFAULT_VOCAB_CHUNK,
                        unembed_DxV.shape[1])
  logp_CxK = _chunked_logprobs(
      block, _to_chunks(h_MxD, chunk, 0), unembed_DxV,
      _to_chunks(tgt_M, chunk, 0), _to_chunks(temp_M, chunk, 1.0))
  return logp_CxK.reshape(-1)[:n * t].reshape(n, t)


# --- entropy -----------------------------------------------------------------


def _entropy_rows(h_KxD, w_DxV, temp_K):
  """H(softmax(h·W/T)) = logsumexp(l) − Σ p·l per row."""
  logits_KxV = _logits(h_KxD, w_DxV) / temp_K[:, None]
  lse_K = jax.nn.logsumexp(logits_KxV, axis=-1)
  p_KxV = jnp.exp(logits_KxV - lse_K[:, None])
  return lse_K - jnp.sum(p_KxV * logits_KxV, axis=-1)


def token_entropy(hidden_NxTxD: jnp.ndarray,
                  unembed_DxV: jnp.ndarray,
                  *,
                  temperature,
                  chunk_size: Optional[int] = None) -> jnp.ndarray:
  """Entropy of the tempered next-token distribution π_θ^T(· | ·), `[N, T]`.

  Same arguments and chunking as `token_logprobs`; the chunked path uses
  `jax.checkpoint` per chunk so its gradient is memory-bounded too.
  """
  _check_inputs(hidden_NxTxD, unembed_DxV)
  n, t, d = hidden_NxTxD.shape
  h_MxD = hidden_NxTxD.reshape(n * t, d)
  temp_M = _per_token_temperature(temperature, n, t)
  if chunk_size is None or n * t == 0:
    return _entropy_rows(h_MxD, unembed_DxV, temp_M).reshape(n, t)
  chunk = _chunk_length(chunk_size, n * t)
  body = jax.checkpoint(lambda xs: _entropy_rows(xs[0], unembed_DxV, xs[1]))
  ent_CxK = jax.lax.map(
      body, (_to_chunks(h_MxD, chunk, 0), _to_chunks(temp_M, chunk, 1.0)))
  return ent_CxK.reshape(-1)[:n * t].reshape(n, t)
