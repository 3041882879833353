"""`TrainBatch`: the fixed-shape arrays one policy update consumes.

Built on the host from the sampler's rows and `rl.score`'s results by
`assemble`; the trainer then fills `old_logp_NxT` / `ref_logp_NxT` (when it
recomputes them) with `TrainBatch.replace`.
"""

from __future__ import annotations

import chex
import jax
import numpy as np


@chex.dataclass(frozen=True)
class TrainBatch:
  """Rows = prompt (left-padded, length P) + response (length T).

  Attributes:
    input_ids_NxL, attention_mask_NxL: prompt ++ response, L = P + T.
    targets_NxT: response tokens o_t.
    loss_mask_NxT: response tokens that enter the loss.
    advantages_N: Â_i after the truncation mask.
    old_logp_NxT: log π_θold^T(o_t).
    ref_logp_NxT: log π_ref(o_t) (zeros when β = 0; then never read).
    temperature_N: the T that sampled each row.
  """

  input_ids_NxL: jax.Array
  attention_mask_NxL: jax.Array
  targets_NxT: jax.Array
  loss_mask_NxT: jax.Array
  advantages_N: jax.Array
  old_logp_NxT: jax.Array
  ref_logp_NxT: jax.Array
  temperature_N: jax.Array


def assemble(*, prompt_ids_NxP, prompt_mask_NxP, tokens_NxT, lengths_N, logprobs_NxT,
             temperature_N, advantages_N, valid_N, ctm_mask_N=None) -> TrainBatch:
  """Host arrays → a `TrainBatch`.

  Rows with `valid_N` False (the judge failed) train on nothing; rows with
  `ctm_mask_N` True (CTM applied to the loss mask) likewise.
  """
  t = tokens_NxT.shape[1]
  resp_mask = np.arange(t)[None] < np.asarray(lengths_N)[:, None]
  loss_mask = resp_mask & np.asarray(valid_N, bool)[:, None]
  if ctm_mask_N is not None:
    loss_mask &= ~np.asarray(ctm_mask_N, bool)[:, None]
  return TrainBatch(
      input_ids_NxL=np.concatenate([prompt_ids_NxP, tokens_NxT], 1),
      attention_mask_NxL=np.concatenate([prompt_mask_NxP, resp_mask], 1),
      targets_NxT=np.asarray(tokens_NxT),
      loss_mask_NxT=loss_mask.astype(np.float32),
      advantages_N=np.asarray(advantages_N, np.float32),
      old_logp_NxT=np.asarray(logprobs_NxT, np.float32),
      ref_logp_NxT=np.zeros(np.shape(logprobs_NxT), np.float32),
      temperature_N=np.asarray(temperature_N, np.float32))


def select_rows(batch: TrainBatch, rows, valid_rows) -> TrainBatch:
  """Rows `rows` of a host batch; rows with `valid_rows` False keep their
  shape but train on nothing (zero loss mask and advantage)."""
  out = jax.tree.map(lambda x: np.asarray(x)[rows], batch)
  valid_rows = np.asarray(valid_rows, np.float32)
  return out.replace(loss_mask_NxT=out.loss_mask_NxT * valid_rows[:, None],
                     advantages_N=out.advantages_N * valid_rows)


def mini_batch_tokens(batch: TrainBatch, rows_per_update: int) -> np.ndarray:
  """Loss tokens of each consecutive mini-batch of a host batch."""
  mask = np.asarray(batch.loss_mask_NxT)
  return mask.reshape(-1, rows_per_update, mask.shape[1]).sum(axis=(1, 2))


def check_prompt_groups(batch: TrainBatch, group: int) -> None:
  """Raises unless every `group` consecutive rows share one prompt (the
  rows a prompt-sharing update reads one prompt from; 0: no check)."""
  if not group:
    return
  p = batch.input_ids_NxL.shape[1] - batch.targets_NxT.shape[1]
  for name in ("input_ids_NxL", "attention_mask_NxL"):
    x = np.asarray(getattr(batch, name))[:, :p]
    if x.shape[0] % group or not (x.reshape(-1, group, p) == x[::group, None]).all():
      raise ValueError(f"{name}: the rows are not groups of {group} with one prompt each")
