"""The jitted policy update: micro-batched gradient accumulation, one optax step.

Also the trainer's recompute of log π_θold / log π_ref and the jit
boundaries (declared shardings, donated state) of both.

One call of `update_step` is one optimizer update on one PPO mini-batch
(`ppo_mini_batch_size` prompts x G rows). The mini-batch is split into
micro-batches that are scanned over; each contributes loss_sum / D_global, with
D_global the aggregation denominator of the whole mini-batch, so accumulation
reproduces the full-batch loss exactly (`policy_loss_terms`). The train state
is donated. Log-probs come from final hidden states through the chunked
`token_logprobs`, so [rows, T, V] logits never materialise.

The loss itself is `rl.policy_loss_terms`; this module adds the model.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.struct
import numpy as np
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from microcoder_jax import sharding
from microcoder_jax.rl import logprobs as logprobs_lib
from microcoder_jax.rl import losses
from microcoder_jax.rl.batch import TrainBatch


@flax.struct.dataclass
class TrainState:
  """Parameters, optimizer state and the count of optimizer updates applied."""
  params: nnx.State
  opt_state: Any
  optimizer_updates: jax.Array


@dataclasses.dataclass(frozen=True, kw_only=True)
class UpdateConfig:
  """Static parts of an update: the loss's symbols (from an `rl.Objective`)
  and how the mini-batch is computed."""
  clip_low: float
  clip_high: float
  dual_clip: float | None
  kl_coef: float
  kl_estimator: str
  aggregation: str
  logprob_chunk: int | None
  micro_batch_size: int
  compute_entropy: bool
  prompt_group: int = 0

  @classmethod
  def from_objective(cls, objective, *, micro_batch_size: int, logprob_chunk: int | None,
                     compute_entropy: bool, prompt_group: int = 0) -> "UpdateConfig":
    return cls(**objective.loss_kwargs(), micro_batch_size=micro_batch_size,
               logprob_chunk=logprob_chunk, compute_entropy=compute_entropy,
               prompt_group=prompt_group)


def lr_schedule(lr: float, warmup_steps: int) -> optax.Schedule:
  """Learning rate per optimizer update: linear warmup, then constant."""
  if warmup_steps:
    return optax.linear_schedule(0.0, lr, warmup_steps)
  return optax.constant_schedule(lr)


def make_optimizer(lr: float, *, warmup_steps: int = 0, weight_decay: float = 0.01,
                   grad_clip: float = 1.0, b1: float = 0.9, b2: float = 0.999,
                   eps: float = 1e-8) -> optax.GradientTransformation:
  """AdamW with `lr_schedule` and global-norm clipping."""
  return optax.chain(optax.clip_by_global_norm(grad_clip),
                     optax.adamw(lr_schedule(lr, warmup_steps), b1=b1, b2=b2, eps=eps,
                                 weight_decay=weight_decay))


def response_hidden(model, batch: TrainBatch, group: int = 0):
  """Hidden states at the positions that predict each response token.

  `group` G > 0: rows come in groups of G with the same prompt (the
  rollout's G responses per prompt); each prompt's forward pass is then
  computed once (`Decoder.shared_prefix_hidden`), not G times.
  """
  t = batch.targets_NxT.shape[1]
  if group:
    p = batch.input_ids_NxL.shape[1] - t
    prompts = lambda x: x[::group, :p]
    return model.shared_prefix_hidden(
        prompts(batch.input_ids_NxL), prompts(batch.attention_mask_NxL),
        batch.input_ids_NxL[:, p:], batch.attention_mask_NxL[:, p:])
  hidden = model(batch.input_ids_NxL, attention_mask_BxT=batch.attention_mask_NxL,
                 return_hidden=True)
  return hidden[:, -t - 1:-1]


def sequence_logprobs(graphdef, params, batch: TrainBatch, chunk: int | None,
                      group: int = 0):
  """log π^T(o_t) for every response token of every row, in one pass."""
  model = nnx.merge(graphdef, params)
  return logprobs_lib.token_logprobs(
      response_hidden(model, batch, group), model.unembedding_DxV(), batch.targets_NxT,
      temperature=batch.temperature_N, chunk_size=chunk)


# Micro-batch m holds rows m, m + n/mb, m + 2n/mb, ...: with rows sharded in
# contiguous blocks over the batch devices, every micro-batch then spans all
# of them (mb / devices rows each) and splitting moves no data. With prompt
# groups of G rows the same holds for groups: micro-batch m holds groups m,
# m + n/mb, ..., each whole.
def split_micro_batches(tree, micro_batch_size: int, group: int = 0):
  """[n, ...] leaves -> [n / mb, mb, ...], strided as described above."""
  g = group or 1
  def split(x):
    n, rest = x.shape[0], x.shape[1:]
    x = x.reshape((micro_batch_size // g, n // micro_batch_size, g) + rest).swapaxes(0, 1)
    return x.reshape((n // micro_batch_size, micro_batch_size) + rest)
  return jax.tree.map(split, tree)


def merge_micro_batches(x_MxBx, group: int = 0):
  """Inverse of `split_micro_batches` for one array."""
  g = group or 1
  m, mb, rest = x_MxBx.shape[0], x_MxBx.shape[1], x_MxBx.shape[2:]
  x = x_MxBx.reshape((m, mb // g, g) + rest).swapaxes(0, 1)
  return x.reshape((m * mb,) + rest)


def check_prompt_group(rows: int, micro_batch_size: int, group: int) -> None:
  """Prompt sharing needs whole groups in every micro-batch."""
  if group and (rows % group or min(micro_batch_size, rows) % group):
    raise ValueError(f"prompt groups of {group} rows do not tile {rows} rows in "
                     f"micro-batches of {micro_batch_size}")


def recompute_logprobs(graphdef, params, batch: TrainBatch, *, micro_batch_size: int,
                       chunk: int | None, first_row: int = 0, group: int = 0):
  """Old-policy / reference log π^T(o_t), `micro_batch_size` rows at a time.

  Memory is bounded by one micro-batch's forward pass whatever the number
  of rows (a scan, like the update's); rows are padded to a multiple of the
  micro-batch and the padding dropped. Rows before `first_row` are not
  computed: they keep `batch.old_logp_NxT` (the trainer's first mini-batch,
  whose update reads log π_θold off its own forward, `update_step`).
  """
  out = batch.old_logp_NxT[:first_row]
  batch = jax.tree.map(lambda x: x[first_row:], batch)
  n = batch.targets_NxT.shape[0]
  mb = min(micro_batch_size, n)
  check_prompt_group(n, mb, group)
  pad = (-n) % mb
  if pad:
    batch = jax.tree.map(lambda x: jnp.concatenate([x, jnp.zeros_like(x[:pad])]), batch)
  micro = split_micro_batches(batch, mb, group)
  _, logp = jax.lax.scan(
      lambda _, m: (None, sequence_logprobs(graphdef, params, m, chunk, group)), None, micro)
  return jnp.concatenate([out, merge_micro_batches(logp, group)[:n]])


@jax.jit
def logp_diff_max(logp_NxT, other_NxT, loss_mask_NxT):
  """max |logp − other| over loss tokens (0 if none): how far two log-prob
  computations of the same rows disagree (`rollout/logp_diff_max`)."""
  return jnp.max(jnp.where(loss_mask_NxT > 0, jnp.abs(logp_NxT - other_NxT), 0.0),
                 initial=0.0)


def _micro_loss(params, graphdef, micro: TrainBatch, denominator, cfg: UpdateConfig,
                old_is_current):
  model = nnx.merge(graphdef, params)
  hidden = response_hidden(model, micro, cfg.prompt_group)
  w = model.unembedding_DxV()
  logp = logprobs_lib.token_logprobs(hidden, w, micro.targets_NxT,
                                     temperature=micro.temperature_N,
                                     chunk_size=cfg.logprob_chunk)
  # On-policy (parameters = θ_old): log π_θold is this forward's own value,
  # and the batch's log-probs are the sampler's, compared for the metric.
  current = jax.lax.stop_gradient(logp)
  sampler_diff = jnp.where(old_is_current,
                           logp_diff_max(current, micro.old_logp_NxT, micro.loss_mask_NxT), 0.0)
  old_logp = jnp.where(old_is_current, current, micro.old_logp_NxT)
  entropy = None
  if cfg.compute_entropy:
    entropy = jax.lax.stop_gradient(logprobs_lib.token_entropy(
        hidden, w, temperature=micro.temperature_N, chunk_size=cfg.logprob_chunk))
  loss_sum, denom, metrics = losses.policy_loss_terms(
      logp, old_logp, micro.advantages_N, micro.loss_mask_NxT,
      clip_low=cfg.clip_low, clip_high=cfg.clip_high, dual_clip=cfg.dual_clip,
      ref_logp_NxT=micro.ref_logp_NxT if cfg.kl_coef > 0 else None,
      kl_coef=cfg.kl_coef, kl_estimator=cfg.kl_estimator,
      aggregation=cfg.aggregation, entropy_NxT=entropy)
  del denom
  tokens = micro.loss_mask_NxT.sum()
  metrics["sampler_logp_diff_max"] = sampler_diff
  return losses.safe_ratio(loss_sum, denominator), (metrics, tokens)


def update_step(state: TrainState, batch: TrainBatch, old_is_current=False, *, graphdef,
                optimizer: optax.GradientTransformation, cfg: UpdateConfig):
  """One optimizer update on a mini-batch; returns (new state, metrics).

  `old_is_current` (a traced bool) says the parameters are still θ_old, as
  for the first mini-batch of a step: log π_θold is then taken from the
  update's own forward (exact, and no recompute), and `batch.old_logp_NxT`
  (the sampler's) only feeds the metric `sampler_logp_diff_max`
  (0 otherwise).
  """
  n = batch.targets_NxT.shape[0]
  mb = min(cfg.micro_batch_size, n)
  if n % mb:
    raise ValueError(f"mini-batch of {n} rows does not split into micro-batches "
                     f"of {mb}")
  check_prompt_group(n, mb, cfg.prompt_group)
  denominator = losses.aggregation_denominator(batch.loss_mask_NxT, cfg.aggregation)
  micro_batches = split_micro_batches(batch, mb, cfg.prompt_group)
  grad_fn = jax.value_and_grad(_micro_loss, has_aux=True)

  def body(carry, micro):
    grads, loss, msum, tokens = carry
    (l, (m, tok)), g = grad_fn(state.params, graphdef, micro, denominator, cfg,
                              old_is_current)
    grads = jax.tree.map(jnp.add, grads, g)
    msum = jax.tree.map(lambda a, b: a + b * tok, msum, m)
    return (grads, loss + l, msum, tokens + tok), (m, tok)

  zeros = jax.tree.map(jnp.zeros_like, state.params)
  first = jax.tree.map(lambda x: x[0], micro_batches)
  metric_shapes = jax.eval_shape(
      lambda: _micro_loss(state.params, graphdef, first, denominator, cfg,
                          old_is_current)[1][0])
  msum0 = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)
  (grads, loss, msum, tokens), (per_micro, per_micro_tokens) = jax.lax.scan(
      body, (zeros, jnp.zeros(()), msum0, jnp.zeros(())), micro_batches)
  metrics = {k: losses.safe_ratio(v, tokens) for k, v in msum.items()}
  # Extremes are over the micro-batches that have loss tokens (1 if none).
  live = per_micro_tokens > 0
  metrics["sampler_logp_diff_max"] = per_micro["sampler_logp_diff_max"].max()
  for k, reduce, fill in (("ratio_min", jnp.min, jnp.inf), ("ratio_max", jnp.max, -jnp.inf)):
    if k in per_micro:
      metrics[k] = jnp.where(live.any(), reduce(jnp.where(live, per_micro[k], fill)), 1.0)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics.update(loss=loss, grad_norm=optax.tree.norm(grads),
                 update_norm=optax.tree.norm(updates),
                 param_norm=optax.tree.norm(params), loss_tokens=tokens)
  return TrainState(params, opt_state, state.optimizer_updates + 1), metrics


# ------------------------------------------------------------- jit boundary
def train_state_shardings(param_shardings: nnx.State, optimizer: optax.GradientTransformation,
                          abstract_params: nnx.State, mesh) -> TrainState:
  """Shardings of a TrainState: optimizer moments like their parameters,
  everything else (counts) replicated."""
  replicated = NamedSharding(mesh, P())
  opt_state = jax.eval_shape(optimizer.init, abstract_params)
  opt_shardings = optax.tree_map_params(
      optimizer, lambda _, sh: sh, opt_state, param_shardings,
      transform_non_params=lambda _: replicated)
  return TrainState(param_shardings, opt_shardings, replicated)


def batch_sharding(mesh, rows: int) -> NamedSharding:
  """Rows over the batch axes ("data", "fsdp") when they divide evenly."""
  shards = mesh.shape["data"] * mesh.shape["fsdp"]
  return NamedSharding(mesh, P(("data", "fsdp")) if rows % shards == 0 else P())


def jit_update_step(graphdef, optimizer, cfg: UpdateConfig, *, mesh, state_sharding: TrainState,
                    rows: int):
  """`update_step` jitted with its shardings declared and the state donated;
  called as fn(state, batch, old_is_current)."""
  fn = functools.partial(update_step, graphdef=graphdef, optimizer=optimizer, cfg=cfg)
  replicated = NamedSharding(mesh, P())
  return jax.jit(fn, in_shardings=(state_sharding, batch_sharding(mesh, rows), replicated),
                 out_shardings=(state_sharding, replicated), donate_argnums=0,
                 compiler_options=sharding.compiler_options(mesh))


def jit_recompute(graphdef, *, mesh, param_sharding: nnx.State, rows: int,
                  micro_batch_size: int, chunk: int | None, first_row: int = 0,
                  group: int = 0):
  """`recompute_logprobs` jitted with its shardings declared."""
  fn = functools.partial(recompute_logprobs, graphdef, micro_batch_size=micro_batch_size,
                         chunk=chunk, first_row=first_row, group=group)
  rows_sharding = batch_sharding(mesh, rows)
  return jax.jit(fn, in_shardings=(param_sharding, rows_sharding), out_shardings=rows_sharding,
                 compiler_options=sharding.compiler_options(mesh))


def apply_mini_batches(state: TrainState, batch: TrainBatch, update, *,
                       rows_per_update: int, tokens_per_mini_batch,
                       first_is_current: bool = False):
  """Runs `update` on each consecutive mini-batch of a device batch.

  `first_is_current`: mini-batch 0's log π_θold was not recomputed; its
  update (run with the step's first parameters) takes it from its forward.

  A mini-batch without loss tokens (all rows invalid or masked) is skipped:
  no optimizer step, so parameters, moments and the update count stay as
  they are. `tokens_per_mini_batch` comes from the host batch
  (`rl.batch.mini_batch_tokens`), so deciding costs no device round trip.
  Returns (state, per-update metrics on device, number of updates skipped).
  """
  metrics, skipped = [], 0
  for i, tokens in enumerate(np.asarray(tokens_per_mini_batch)):
    if tokens == 0:
      skipped += 1
      continue
    state, m = update(state, mini_batch(batch, i * rows_per_update, rows_per_update),
                      np.bool_(first_is_current and i == 0))
    metrics.append(m)
  return state, metrics, skipped


def mini_batch(batch: TrainBatch, lo: int, rows: int) -> TrainBatch:
  """Rows [lo, lo + rows) of a device batch, laid out as the update expects
  (`batch_sharding(mesh, rows)`). Plain indexing would return a replicated
  array, which a jitted update refuses when the batch spans processes."""
  leaf = jax.tree.leaves(batch)[0]
  if not isinstance(leaf.sharding, NamedSharding):
    return jax.tree.map(lambda x: x[lo:lo + rows], batch)
  return _slicer(batch_sharding(leaf.sharding.mesh, rows), rows)(batch, jnp.int32(lo))


@functools.lru_cache(maxsize=None)
def _slicer(out_sharding: NamedSharding, rows: int):
  return jax.jit(lambda b, lo: jax.tree.map(
      lambda x: jax.lax.dynamic_slice_in_dim(x, lo, rows), b), out_shardings=out_sharding)
