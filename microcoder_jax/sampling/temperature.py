"""Sampling temperature T: schedules, the diversity metric D, and the controller.

The paper picks T from measured response diversity and keeps it piecewise
constant (continuous changes destabilise training; a staged low -> high switch,
e.g. 0.6 -> 1.2 at step 140, beat a constant high T). See
`microcoder_spec.md` §1.3.

Diversity (project definition; the paper publishes no formula): per prompt
group, pool the token 4-grams of all G responses; D_group = |distinct| / |all|;
D = mean over groups that have any 4-gram. D lies in [0, 1].
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)


# ------------------------------------------------------------- schedules
@dataclasses.dataclass(frozen=True)
class TemperatureSchedule:
  """Piecewise-constant T(step), optionally with linear ramps (ablations only).

  Attributes:
    stages: ((start_step, T), ...) sorted by step; the first starts at 0.
    ramp: interpolate linearly between stages instead of switching.
  """

  stages: tuple[tuple[int, float], ...]
  ramp: bool = False

  def __post_init__(self):
    if not self.stages or self.stages[0][0] != 0:
      raise ValueError(f"temperature stages {self.stages} must start at step 0")
    steps = [s for s, _ in self.stages]
    if steps != sorted(set(steps)):
      raise ValueError(f"temperature stage steps {steps} must increase")
    if any(t < 0 for _, t in self.stages):
      raise ValueError(f"temperatures must be >= 0, got {self.stages}")

  def __call__(self, step: int) -> float:
    steps = [s for s, _ in self.stages]
    i = int(np.searchsorted(steps, step, side="right")) - 1
    start, t0 = self.stages[i]
    if not self.ramp or i + 1 == len(self.stages):
      return float(t0)
    end, t1 = self.stages[i + 1]
    return float(t0 + (t1 - t0) * (step - start) / (end - start))

  @classmethod
  def parse(cls, spec: str | float, *, allow_ramp: bool = False) -> "TemperatureSchedule":
    """`"1.2"`, staged `"0.6,1.2@140"`, or ramp `"ramp:0.6,1.2@140"`.

    Each comma-separated item is `T` or `T@step` (the step it starts at).
    Ramps interpolate between items and need `allow_ramp=True`: the paper
    reports that gradual temperature changes cause irreversible shifts.
    """
    text = str(spec).strip()
    ramp = text.startswith("ramp:")
    if ramp:
      if not allow_ramp:
        raise ValueError(f"temperature schedule {text!r} is a ramp; set "
                         "sampling.allow_ramp=True to use one (ablations only)")
      text = text[len("ramp:"):]
    stages = []
    for i, item in enumerate(text.split(",")):
      value, _, step = item.strip().partition("@")
      try:
        stages.append((int(step) if step else (0 if i == 0 else None), float(value)))
      except ValueError as e:
        raise ValueError(f"bad temperature schedule item {item!r} in {spec!r}") from e
      if stages[-1][0] is None:
        raise ValueError(f"temperature schedule item {item!r} in {spec!r} needs "
                         "a start step, e.g. 1.2@140")
    return cls(tuple(stages), ramp)


# ------------------------------------------------------------- diversity
def _ngrams(tokens: np.ndarray, n: int) -> list[tuple[int, ...]]:
  if len(tokens) < n:
    return []
  windows = np.lib.stride_tricks.sliding_window_view(tokens, n)
  return [tuple(w) for w in windows.tolist()]


def group_diversity(tokens_NxT, lengths_N, group_size: int, n: int = 4) -> np.ndarray:
  """D_group per prompt group (NaN for groups without any n-gram)."""
  tokens_NxT, lengths_N = np.asarray(tokens_NxT), np.asarray(lengths_N)
  num = tokens_NxT.shape[0]
  if num % group_size:
    raise ValueError(f"{num} responses do not split into groups of {group_size}")
  out = np.full(num // group_size, np.nan)
  for g in range(num // group_size):
    grams = []
    for r in range(g * group_size, (g + 1) * group_size):
      grams += _ngrams(tokens_NxT[r, : lengths_N[r]], n)
    if grams:
      out[g] = len(set(grams)) / len(grams)
  return out


def response_diversity(tokens_NxT, lengths_N, group_size: int, n: int = 4) -> float:
  """D: mean over groups of pooled distinct-n-gram ratios, in [0, 1].

  NaN when no group has a response of at least n tokens.
  """
  per_group = group_diversity(tokens_NxT, lengths_N, group_size, n)
  valid = per_group[~np.isnan(per_group)]
  return float(valid.mean()) if valid.size else float("nan")


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

  schedule: TemperatureSchedule
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
