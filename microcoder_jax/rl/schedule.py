"""Staged schedules of T and L_max over RL steps.

The paper keeps T piecewise constant (a staged low → high switch, e.g.
0.6 → 1.2 at step 140, beat a constant high T; continuous changes caused
irreversible shifts) and raises L_max in stages (e.g. 6144 → 8192). One
string form serves both: `"1.2"`, `"0.6,1.2@140"`, `"6144,8192@260"`; each
comma-separated item is `value` or `value@step` (the RL step it starts at).
Ramps (`"ramp:0.6,1.2@140"`) interpolate linearly between items and are
allowed only when asked for (ablations). Where allowed (T only), a value may
be `auto`: chosen from measured response diversity when its stage starts
(`"auto"`, `"0.6,auto@140"`); such a stage's value is None until resolved.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class StagedSchedule:
  """Piecewise-constant value(step), optionally with linear ramps.

  Attributes:
    stages: ((start_step, value), ...) sorted by step; the first starts at 0.
      A value of None is an `auto` stage, resolved later (`resolve`).
    ramp: interpolate linearly between stages instead of switching.
  """

  stages: tuple[tuple[int, float | None], ...]
  ramp: bool = False

  def __post_init__(self):
    if not self.stages or self.stages[0][0] != 0:
      raise ValueError(f"schedule stages {self.stages} must start at step 0")
    steps = [s for s, _ in self.stages]
    if steps != sorted(set(steps)):
      raise ValueError(f"schedule stage steps {steps} must increase")
    if not all(v is None or math.isfinite(v) for _, v in self.stages):
      raise ValueError(f"schedule values must be finite, got {self.stages}")
    if self.ramp and None in self.values:
      raise ValueError("a ramp cannot have auto stages")

  def stage(self, step: int) -> int:
    """Index of the stage in effect at `step`."""
    return max(j for j, (s, _) in enumerate(self.stages) if s <= step)

  def __call__(self, step: int) -> float | None:
    i = self.stage(step)
    start, v0 = self.stages[i]
    if v0 is None:
      return None
    if not self.ramp or i + 1 == len(self.stages):
      return float(v0)
    end, v1 = self.stages[i + 1]
    return float(v0 + (v1 - v0) * (step - start) / (end - start))

  @property
  def values(self) -> tuple[float | None, ...]:
    return tuple(v for _, v in self.stages)

  @property
  def has_auto(self) -> bool:
    return None in self.values

  def resolve(self, stage: int, value: float) -> "StagedSchedule":
    """This schedule with the auto stage `stage` set to `value`."""
    if self.stages[stage][1] is not None:
      raise ValueError(f"stage {stage} of {self.stages} is not auto")
    stages = list(self.stages)
    stages[stage] = (stages[stage][0], float(value))
    return StagedSchedule(tuple(stages), self.ramp)

  @classmethod
  def parse(cls, spec: str | float, *, allow_ramp: bool = False, allow_auto: bool = False,
            name: str = "schedule") -> "StagedSchedule":
    """`"1.2"`, staged `"0.6,1.2@140"`, or ramp `"ramp:0.6,1.2@140"`; with
    `allow_auto`, `"auto"` or `"0.6,auto@140"`.

    `name` (e.g. the config key) is used in error messages.
    """
    text = str(spec).strip()
    ramp = text.startswith("ramp:")
    if ramp:
      if not allow_ramp:
        raise ValueError(f"{name}={text!r} is a ramp; ramps are for ablations "
                         "only (set allow_ramp=True to use one)")
      text = text[len("ramp:"):]
    stages = []
    for i, item in enumerate(text.split(",")):
      value, at, step = item.strip().partition("@")
      if at and not step:
        raise ValueError(f"{name}: item {item!r} in {spec!r} has no step after '@'")
      auto = value.strip() == "auto"
      if auto and not allow_auto:
        raise ValueError(f"{name}: 'auto' is not allowed here ({spec!r})")
      try:
        stages.append((int(step) if step else (0 if i == 0 else None),
                       None if auto else float(value)))
      except ValueError as e:
        raise ValueError(f"{name}: bad item {item!r} in {spec!r}") from e
      if stages[-1][0] is None:
        raise ValueError(f"{name}: item {item!r} in {spec!r} needs a start step, "
                         "e.g. 1.2@140")
    try:
      return cls(tuple(stages), ramp)
    except ValueError as e:
      raise ValueError(f"{name}={spec!r}: {e}") from e
