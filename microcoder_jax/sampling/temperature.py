"""Sampling temperature T: the diversity-based choice and the per-step controller.

The paper picks T from measured response diversity (`rl.diversity`) and keeps
it piecewise constant (`rl.schedule.StagedSchedule`): continuous changes
destabilise training; a staged low -> high switch, e.g. 0.6 -> 1.2 at step
140, beat a constant high T.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Sequence

import numpy as np

from microcoder_jax.rl.diversity import response_diversity
from microcoder_jax.rl.schedule import StagedSchedule

log = logging.getLogger(__name__)


# ------------------------------------------------------------- selection
@dataclasses.dataclass
class SelectionResult:
  temperature: float
  diversity: dict[float, float]
  reason: str


def select_temperature(sample_fn: Callable[[float], tuple[np.ndarray, np.ndarray]],
                       group_size: int, *,
                       candidates: Sequence[float] = (0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8),
                       target: float = 0.65, reject_above: float = 0.90,
                       n: int = 4) -> SelectionResult:
  """The lowest candidate T whose initial diversity reaches `target`.

  `sample_fn(T)` samples a probe batch (e.g. 64 training prompts x G) with the
  initial policy and returns (tokens_NxT, lengths_N). Candidates with
  D >= `reject_above` are never chosen (T = 1.8 started at D = 0.97 and
  crashed in the paper). If none qualifies, the candidate closest to the
  target from below `reject_above` is returned, with the reason.
  """
  measured: dict[float, float] = {}
  for t in sorted(candidates):
    tokens, lengths = sample_fn(t)
    measured[t] = response_diversity(tokens, lengths, group_size, n)
    log.info("temperature probe: T=%.2f D=%.3f", t, measured[t])
    if target <= measured[t] < reject_above:
      return SelectionResult(t, measured, f"lowest T with D >= {target}")
  allowed = {t: d for t, d in measured.items() if d < reject_above and not np.isnan(d)}
  if not allowed:
    raise ValueError(f"no candidate temperature has diversity below {reject_above}: "
                     f"{measured}")
  best = min(allowed, key=lambda t: abs(allowed[t] - target))
  return SelectionResult(best, measured,
                         f"no T reached D >= {target}; closest below {reject_above}")


# ------------------------------------------------------------ controller
@dataclasses.dataclass
class TemperatureController:
  """Per-step T from a schedule, plus the diversity log and low-diversity alert.

  Attributes:
    schedule: the T(step) schedule.
    alert_floor: diversity below this for `alert_patience` consecutive steps
      logs a warning (sustained loss of diversity precedes collapse).
    low_steps: current run of consecutive steps below the floor.
    history: [(step, T, D)] of every update, for plots and resumption.
  """

  schedule: StagedSchedule
  alert_floor: float = 0.5
  alert_patience: int = 20
  low_steps: int = 0
  history: list[tuple[int, float, float]] = dataclasses.field(default_factory=list)

  def temperature(self, step: int) -> float:
    return self.schedule(step)

  def update(self, step: int, diversity: float) -> dict[str, float]:
    """Records step's D; returns metrics to log."""
    t = self.temperature(step)
    self.history.append((int(step), float(t), float(diversity)))
    self.low_steps = self.low_steps + 1 if diversity < self.alert_floor else 0
    if self.low_steps == self.alert_patience:
      log.warning("diversity below %.2f for %d steps (now %.3f at T=%.2f): "
                  "training may be collapsing", self.alert_floor,
                  self.alert_patience, diversity, t)
    return {"sampling/temperature": t, "sampling/diversity": float(diversity),
            "sampling/low_diversity_steps": float(self.low_steps)}

  def state_dict(self) -> dict:
    return {"stages": [list(s) for s in self.schedule.stages],
            "ramp": self.schedule.ramp, "low_steps": self.low_steps,
            "history": [list(h) for h in self.history]}

  def load_state_dict(self, state: dict) -> None:
    stages = tuple((int(s), float(t)) for s, t in state["stages"])
    if stages != self.schedule.stages or bool(state["ramp"]) != self.schedule.ramp:
      log.warning("checkpointed temperature schedule %s differs from the "
                  "configured %s; keeping the configured one", stages,
                  self.schedule.stages)
    self.low_steps = int(state["low_steps"])
    self.history = [(int(s), float(t), float(d)) for s, t, d in state["history"]]
