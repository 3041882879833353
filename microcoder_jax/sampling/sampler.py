"""Jitted KV-cache sampler: prefill + `lax.while_loop` decode into a static buffer.

    sampler = Sampler(model, stop_ids=(tok.eos_token_id, im_end_id), mesh=mesh)
    rollout = sampler.sample(params, prompts, num_samples=8, max_new_tokens=4096,
                             temperature=1.2, rng=jax.random.key(step))

Prompts (lists of token ids) are left-padded to a length bucket and prefilled
once each; the prefilled cache is then repeated `num_samples` times,
consecutive, so rows i*G .. i*G+G-1 are prompt i's group (a G-fold cheaper
prefill than prefilling every row). A run compiles one program per (bucket,
batch) pair. Temperature,
top-p and the RNG are traced: changing them never recompiles. Top-k is static
(it fixes a `lax.top_k` shape).

The loop stops when every row has emitted a stop id, or after
`max_new_tokens`; its carry is a `DecodeState`. A row's response includes its stop token; tokens after it
are `pad_id` with log-prob 0. `truncated` marks rows that never stopped: the
paper's |o| = L_max, judged by stop reason rather than by the last token.

Memory: the KV cache (`models.KVCache`, compute dtype, rows sharded over the
batch axes) dominates, 2·L·(P + max_new_tokens)·K·H bytes·dtype per row; the
prefill attends over the prompt it writes and each decode step over the filled
part of the cache only. Callers size batches with `KVCache.bytes_per_row`
(the trainer's `rollout.cache_memory_gib`).
"""

from __future__ import annotations

import bisect
import contextlib
import math
from typing import Any, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from microcoder_jax import sharding
from microcoder_jax.sampling import strategies

# Prompt-length buckets: four per octave (x1, x1.25, x1.5, x1.75) below 128,
# multiples of 128 above (TPU splash attention tiles by 128), so padding is at
# most 25% beyond 512 tokens (a 75-token prompt pads to 80, not 128), which the
# update and the log-prob recompute pay on every row, for a bounded number of
# compiled shapes.
DEFAULT_BUCKETS = (16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 256, 384, 512,
                   640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096,
                   5120, 6144, 7168, 8192)


@flax.struct.dataclass
class Rollout:
  """Sampled responses for N = num_prompts x G rows (groups consecutive).

  Attributes:
    tokens_NxT: response token ids, `pad_id` after the stop token.
    lengths_N: response lengths |o_i|, stop token included.
    logprobs_NxT: log π^T(o_t | q, o_<t) under softmax(logits / T), 0 past the end.
    truncated_N: True where no stop id came within `max_new_tokens`.
    temperatures_NxT: the T that sampled each token.
    prompt_ids_NxP: left-padded prompt ids (bucketed length P).
    prompt_mask_NxP: True on real prompt tokens.
  """

  tokens_NxT: jax.Array
  lengths_N: jax.Array
  logprobs_NxT: jax.Array
  truncated_N: jax.Array
  temperatures_NxT: jax.Array
  prompt_ids_NxP: jax.Array
  prompt_mask_NxP: jax.Array

  def to_numpy(self) -> "Rollout":
    return jax.tree.map(np.asarray, self)


@flax.struct.dataclass
class DecodeState:
  """The `lax.while_loop` carry of the decode loop (N rows, T = max_new_tokens).

  Decode step `step` feeds `last_N` to the model, samples response position
  `step` and writes it into the buffers; the prefill fills position 0, so the
  loop starts at step 1. Every field is traced; shapes never change between
  iterations.

  Attributes:
    step: int32 scalar, the response position the next iteration samples.
    last_N: int32, each row's most recent token (the next step's input):
      its stop token at the step it stops, `pad_id` after that.
    done_N: bool, True once a row has emitted a stop id.
    lengths_N: int32, response length |o_i| with the stop token included;
      `max_new_tokens` until the row stops.
    tokens_NxT: int32 response buffer, `pad_id` at positions not (yet) sampled
      and after the stop token.
    logprobs_NxT: float32 log π^T of each sampled token, 0 past the end.
    temperatures_NxT: float32 T that sampled each token, 0 past the end.
    cache: the `models.KVCache`, holding the prompt and every fed token.
  """

  step: jax.Array
  last_N: jax.Array
  done_N: jax.Array
  lengths_N: jax.Array
  tokens_NxT: jax.Array
  logprobs_NxT: jax.Array
  temperatures_NxT: jax.Array
  cache: Any


def bucket_length(n: int, buckets: Sequence[int] = DEFAULT_BUCKETS) -> int:
  """Smallest bucket >= n; beyond the largest, the next multiple of it."""
  i = bisect.bisect_left(buckets, n)
  if i < len(buckets):
    return buckets[i]
  return math.ceil(n / buckets[-1]) * buckets[-1]


class Sampler:
  """Built once per model graph and mesh; see the module docstring."""

  def __init__(self, model: nnx.Module, *, stop_ids: Sequence[int], pad_id: int = 0,
               mesh: Mesh | None = None,
               rules: sharding.LogicalRules = sharding.DEFAULT_RULES,
               buckets: Sequence[int] = DEFAULT_BUCKETS):
    if not stop_ids:
      raise ValueError("stop_ids must name at least one token id")
    self.graphdef = nnx.graphdef(model)
    self.compute_dtype = model.cfg.jnp_dtype
    self.stop_ids = tuple(int(s) for s in stop_ids)
    self.pad_id = int(pad_id)
    self.mesh = mesh
    self.rules = rules
    self.buckets = tuple(sorted(buckets))
    self.num_traces = 0  # incremented each time the program is (re)traced
    # The jitted program (public for ahead-of-time lowering, see
    # `microcoder_jax.memory.lower_sampler`).
    self.generate_fn = jax.jit(self._generate_impl,
                               static_argnames=("max_new_tokens", "top_k", "per_step",
                                                "num_samples"),
                               compiler_options=sharding.compiler_options(mesh))

  # ------------------------------------------------------------ host side
  def prepare_prompts(self, prompts: Sequence[Sequence[int]], min_length: int = 0):
    """Left-pads each prompt to a bucket (of at least `min_length` tokens)
    and pads the number of prompts to the mesh's batch size. Returns
    (ids_UxP, mask_UxP, number of real prompts)."""
    if not prompts or any(len(p) == 0 for p in prompts):
      raise ValueError("every prompt needs at least one token")
    rows = _row_multiple(self.mesh)
    u_padded = math.ceil(len(prompts) / rows) * rows
    length = bucket_length(max(min_length, *(len(p) for p in prompts)), self.buckets)
    ids = np.full((u_padded, length), self.pad_id, np.int32)
    mask = np.zeros((u_padded, length), bool)
    for i, p in enumerate(prompts):
      ids[i, length - len(p):] = p
      mask[i, length - len(p):] = True
    mask[len(prompts):, -1] = True  # filler prompts: one pad token, discarded afterwards
    return ids, mask, len(prompts)

  def sample(self, params: nnx.State, prompts: Sequence[Sequence[int]], *,
             num_samples: int, max_new_tokens: int, temperature=1.0,
             top_p: float = 1.0, top_k: int = 0, rng: jax.Array,
             temperature_schedule=None, first_row: int = 0,
             min_prompt_length: int = 0) -> Rollout:
    """Samples `num_samples` responses per prompt.

    Args:
      params: the model's nnx.State (e.g. `nnx.state(model)`).
      prompts: token-id lists.
      temperature: scalar, or per-row array [len(prompts) * num_samples].
      temperature_schedule: optional [max_new_tokens] array; when given, decode
        step t samples every row at `temperature_schedule[t]`.
      rng: a JAX PRNG key.
      first_row: the global index of this call's first row. Row r draws its
        token at decode step i with `fold_in(fold_in(rng, i), first_row + r)`,
        so a response depends on (rng, its global row, its prompt, params)
        only: splitting a batch into calls (with consecutive `first_row`s)
        or changing the batch size leaves every response the same.
      min_prompt_length: pad prompts to the bucket of at least this length;
        calls that pass the longest prompt of a whole batch share one
        prompt shape (one compilation) however the batch is split.
    """
    ids, mask, u = self.prepare_prompts(prompts, min_prompt_length)
    n, n_padded = u * num_samples, ids.shape[0] * num_samples
    temp_N = np.broadcast_to(np.asarray(temperature, np.float32), (n,))
    temp_N = np.concatenate([temp_N, np.ones(n_padded - n, np.float32)])
    per_step = temperature_schedule is not None
    sched = (np.asarray(temperature_schedule, np.float32) if per_step
             else np.zeros((max_new_tokens,), np.float32))
    if sched.shape != (max_new_tokens,):
      raise ValueError(f"temperature_schedule has shape {sched.shape}, expected "
                       f"({max_new_tokens},)")
    row_N = np.arange(first_row, first_row + n_padded, dtype=np.int32)
    args = (jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(temp_N), jnp.asarray(row_N))
    if self.mesh is not None:
      rows = NamedSharding(self.mesh, P(("data", "fsdp")))
      args = tuple(jax.device_put(a, rows) for a in args)
    ctx = (sharding.use_mesh(self.mesh, self.rules) if self.mesh is not None
           else contextlib.nullcontext())
    with ctx:
      out = self.generate_fn(params, *args, jnp.asarray(sched),
                           jnp.asarray(top_p, jnp.float32), rng,
                           max_new_tokens=max_new_tokens, top_k=int(top_k),
                           per_step=per_step, num_samples=int(num_samples))
    return jax.tree.map(lambda x: x[:n], out) if n != n_padded else out

  # ------------------------------------------------------------ the program
  def _generate_impl(self, params, ids_UxP, mask_UxP, temp_N, row_N, sched_T, top_p, rng,
                     *, max_new_tokens: int, top_k: int, per_step: bool,
                     num_samples: int = 1):
    self.num_traces += 1
    model = nnx.merge(self.graphdef, _in_compute_dtype(params, self.compute_dtype))
    u, p = ids_UxP.shape
    n = u * num_samples
    repeat = lambda x: jnp.repeat(x, num_samples, axis=0)
    stop = jnp.asarray(self.stop_ids, jnp.int32)

    def temps(i):
      return jnp.full((n,), sched_T[i]) if per_step else temp_N

    def row_keys(i):
      step_key = jax.random.fold_in(rng, i)
      return jax.vmap(jax.random.fold_in, (None, 0))(step_key, row_N)

    with jax.named_scope("prefill"):  # once per prompt, then G rows each
      cache = model.init_cache(u, p + max_new_tokens)
      hidden, cache = model(ids_UxP, attention_mask_BxT=mask_UxP, cache=cache,
                            return_hidden=True)
      logits_UxV = model.logits(hidden[:, -1])
      cache = cache.repeat(num_samples)
      tok, lp = strategies.select(row_keys(0), repeat(logits_UxV), temps(0), top_p, top_k)
    tokens_NxT = jnp.full((n, max_new_tokens), self.pad_id, jnp.int32).at[:, 0].set(tok)
    logprobs_NxT = jnp.zeros((n, max_new_tokens), jnp.float32).at[:, 0].set(lp)
    temperatures_NxT = jnp.zeros((n, max_new_tokens), jnp.float32).at[:, 0].set(temps(0))
    done_N = jnp.isin(tok, stop)
    lengths_N = jnp.where(done_N, 1, max_new_tokens).astype(jnp.int32)

    def cond(s: DecodeState):
      return (s.step < max_new_tokens) & ~jnp.all(s.done_N)

    def body(s: DecodeState) -> DecodeState:
      i, done = s.step, s.done_N
      logits, cache = model(s.last_N[:, None], cache=s.cache)
      t_N = temps(i)
      tok, lp = strategies.select(row_keys(i), logits[:, 0], t_N,
                                  top_p, top_k)
      tok = jnp.where(done, self.pad_id, tok)
      lp = jnp.where(done, 0.0, lp)
      tokens_NxT = s.tokens_NxT.at[:, i].set(tok)
      logprobs_NxT = s.logprobs_NxT.at[:, i].set(lp)
      temperatures_NxT = s.temperatures_NxT.at[:, i].set(jnp.where(done, 0.0, t_N))
      stopped = ~done & jnp.isin(tok, stop)
      lengths_N = jnp.where(stopped, i + 1, s.lengths_N)
      return DecodeState(step=i + 1, last_N=tok, done_N=done | stopped,
                         lengths_N=lengths_N, tokens_NxT=tokens_NxT, logprobs_NxT=logprobs_NxT,
                         temperatures_NxT=temperatures_NxT, cache=cache)

    with jax.named_scope("decode"):
      state = DecodeState(step=jnp.asarray(1, jnp.int32), last_N=tok, done_N=done_N,
                          lengths_N=lengths_N, tokens_NxT=tokens_NxT,
                          logprobs_NxT=logprobs_NxT, temperatures_NxT=temperatures_NxT,
                          cache=cache)
      state = jax.lax.while_loop(cond, body, state)
    return Rollout(tokens_NxT=state.tokens_NxT, lengths_N=state.lengths_N,
                   logprobs_NxT=state.logprobs_NxT, truncated_N=~state.done_N,
                   temperatures_NxT=state.temperatures_NxT,
                   prompt_ids_NxP=repeat(ids_UxP), prompt_mask_NxP=repeat(mask_UxP))


def _in_compute_dtype(params: nnx.State, dtype) -> nnx.State:
  """Floating parameters cast once to the compute dtype before decoding.

  Every decode step reads every weight; reading them in the compute dtype
  (bfloat16 at scale) halves that traffic and the gathered copies' size.
  """
  return jax.tree.map(
      lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, params)


def _row_multiple(mesh: Mesh | None) -> int:
  if mesh is None:
    return 1
  return mesh.shape["data"] * mesh.shape["fsdp"]

