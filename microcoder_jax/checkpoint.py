"""Orbax checkpoints of a run: three items per RL step.

  params     the policy parameters alone (restorable without building an
             optimizer: evaluation, export, `benchmark`);
  opt_state  the optimizer state and the count of optimizer updates;
  run        JSON: `rl_step`, `optimizer_updates`, the data position, the
             temperature controller, the PRNG key data and the format version.

Resume precedence (see `train.py`): a checkpoint in `workdir` > `init_from`
(HF repo id or directory) > random init. Orbax writes each step into a
temporary directory and renames it when complete, so a crash mid-save leaves
the previous checkpoint as the latest valid one.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

FORMAT = 2


class CheckpointFormatError(ValueError):
  """A checkpoint written by another version of the trainer."""


def _abstract(tree):
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
      tree)


class Checkpointer:
  """Saves every `every` RL steps (and on demand), keeps the last `keep`."""

  def __init__(self, directory: str, *, every: int = 0, keep: int = 3,
               async_save: bool = True, read_only: bool = False):
    self.directory = os.path.abspath(directory)
    self.every = every
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=not read_only, read_only=read_only,
        enable_async_checkpointing=async_save)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    """The saved RL steps, ascending."""
    return sorted(self._manager.all_steps())

  def should_save(self, rl_step: int) -> bool:
    return self.every > 0 and rl_step % self.every == 0

  def save(self, rl_step: int, state, run: dict) -> None:
    """`state` is an `update.TrainState`; `run` the JSON run state."""
    run = {**run, "rl_step": int(rl_step), "format": FORMAT}
    self._manager.save(rl_step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(state.params),
        opt_state=ocp.args.StandardSave({"opt_state": state.opt_state,
                                         "optimizer_updates": state.optimizer_updates}),
        run=ocp.args.JsonSave(run)), force=True)

  def _step(self, rl_step: int | None) -> int:
    rl_step = self.latest_step() if rl_step is None else rl_step
    if rl_step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    saved = self.all_steps()
    if rl_step not in saved:
      raise FileNotFoundError(
          f"no checkpoint of RL step {rl_step} in {self.directory}; saved steps: "
          f"{', '.join(map(str, saved)) or 'none'}")
    items = os.listdir(os.path.join(self.directory, str(rl_step)))
    if "params" not in items or "run" not in items:
      raise CheckpointFormatError(
          f"{self.directory}/{rl_step} holds {sorted(items)}, not the items "
          "params/opt_state/run of this trainer's checkpoints")
    return rl_step

  def restore(self, abstract_state, rl_step: int | None = None):
    """(state, run) at `rl_step` (default latest), laid out like `abstract_state`."""
    rl_step = self._step(rl_step)
    out = self._manager.restore(rl_step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(_abstract(abstract_state.params)),
        opt_state=ocp.args.StandardRestore(_abstract(
            {"opt_state": abstract_state.opt_state,
             "optimizer_updates": abstract_state.optimizer_updates})),
        run=ocp.args.JsonRestore()))
    state = abstract_state.replace(params=out.params, **out.opt_state)
    return state, out.run

  def restore_params(self, abstract_params, rl_step: int | None = None) -> Any:
    """The policy parameters alone, laid out like `abstract_params`."""
    rl_step = self._step(rl_step)
    out = self._manager.restore(rl_step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(_abstract(abstract_params))))
    return out.params

  def restore_run(self, rl_step: int | None = None) -> dict:
    rl_step = self._step(rl_step)
    return self._manager.restore(rl_step, args=ocp.args.Composite(
        run=ocp.args.JsonRestore())).run

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
