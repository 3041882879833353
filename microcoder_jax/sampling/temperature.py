"""Sampling temperature T: the diversity-based choice and the per-step controller.

The paper picks T from measured response diversity D (`rl.diversity`) and
keeps it piecewise constant (`rl.schedule.StagedSchedule`): higher T raises
D; at a fixed T, D falls as training goes on; a run whose starting D is below
the value runs converge to (the plateau D*) keeps falling and fails (T = 0.6
started at ≈0.57 against a plateau of ≈0.65); one far above crashes down and
fluctuates (T = 1.8 started at 0.97); the right T starts near the plateau
(T = 1.2, ≈0.71) and stays stable. Staged low → high switches are allowed,
continuous ramps are not.

Two rules, both pure functions of measurements:
  `choose_by_target`  the lowest T whose starting D reaches a target D;
  `choose_by_probe`   from short training probes at several T's: estimate D*
                      from the probes' last steps, pick the lowest T whose
                      starting D ≥ D* and whose D did not drop by more than a
                      set fraction during its probe.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Mapping, Sequence

import numpy as np

from microcoder_jax.rl.diversity import response_diversity
from microcoder_jax.rl.schedule import StagedSchedule

log = logging.getLogger(__name__)
DEFAULT_CANDIDATES = (0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8)


# ----------------------------------------------------------- measurements
@dataclasses.dataclass(frozen=True)
class Measurement:
  """What G samples per prompt at one T look like (N = prompts × G rows).

  Attributes:
    temperature: T.
    diversity: D (`rl.response_diversity`).
    entropy: mean over response tokens of −log π^T(o_t), an unbiased estimate
      of the per-token entropy of the tempered policy.
    length_mean: mean |o_i| in tokens.
    truncated_frac: fraction of responses that hit L_max.
    pass_at_1: fraction of responses judged `pass` (NaN when not judged).
  """
  temperature: float
  diversity: float
  entropy: float
  length_mean: float
  truncated_frac: float
  pass_at_1: float


def measure(temperature: float, *, tokens_NxT, lengths_N, logprobs_NxT, truncated_N,
            group_size: int, ngram: int, passed_N=None) -> Measurement:
  """A `Measurement` from one sampled (and optionally judged) batch."""
  lengths = np.asarray(lengths_N)
  mask = np.arange(np.shape(tokens_NxT)[1])[None] < lengths[:, None]
  tokens = max(int(mask.sum()), 1)
  return Measurement(
      temperature=float(temperature),
      diversity=response_diversity(tokens_NxT, lengths, group_size, ngram),
      entropy=float(-(np.asarray(logprobs_NxT) * mask).sum() / tokens),
      length_mean=float(lengths.mean()),
      truncated_frac=float(np.asarray(truncated_N, bool).mean()),
      pass_at_1=float(np.mean(passed_N)) if passed_N is not None else float("nan"))


# ------------------------------------------------------------------ rules
@dataclasses.dataclass(frozen=True)
class Choice:
  """A chosen T, the rule that chose it and why."""
  temperature: float
  rule: str
  reason: str
  plateau: float | None = None


def choose_by_target(measurements: Sequence[Measurement], target: float) -> Choice:
  """The lowest T whose D reaches `target`.

  When none does, the T with the highest D (the closest to the target from
  below) is returned and the reason says so: raise the candidates or lower
  the target.
  """
  valid = sorted((m for m in measurements if np.isfinite(m.diversity)),
                 key=lambda m: m.temperature)
  if not valid:
    raise ValueError("no temperature produced a measurable diversity (responses "
                     "shorter than the n-gram size?)")
  for m in valid:
    if m.diversity >= target:
      return Choice(m.temperature, f"target D >= {target:g}",
                    f"lowest T with D >= {target:g} (D = {m.diversity:.3f})")
  best = max(valid, key=lambda m: m.diversity)
  return Choice(best.temperature, f"target D >= {target:g}",
                f"no T reached D >= {target:g} (highest D = {best.diversity:.3f} at "
                f"T = {best.temperature:g}); fell back to that T. Try higher "
                "temperatures or a lower target")


def choose_by_probe(trajectories: Mapping[float, Sequence[float]], *, tail: int = 3,
                    max_drop: float = 0.15) -> Choice:
  """The paper's rule from short training probes.

  `trajectories[T]` is D per step of a probe run at T (step 0 first). The
  plateau D* is the median over probes of each probe's mean D over its last
  `tail` steps (where runs converge to). A candidate qualifies when its
  starting D ≥ D* (it does not start below the plateau, which collapses) and
  its D fell by at most `max_drop` (as a fraction of the start) during the
  probe (it does not start far above and crash). The lowest qualifying T wins;
  when none qualifies, the T whose start is closest to D* from above, or
  else the highest start, with the reason.
  """
  starts, ends = {}, {}
  for t, d in sorted(trajectories.items()):
    d = np.asarray(d, np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
      raise ValueError(f"probe at T = {t} has {d.size} diversity values; need >= 2")
    starts[t], ends[t] = float(d[0]), float(d[-min(tail, d.size - 1):].mean())
  plateau = float(np.median(list(ends.values())))
  drop = {t: (starts[t] - ends[t]) / starts[t] if starts[t] > 0 else 0.0 for t in starts}
  for t in sorted(starts):
    if starts[t] >= plateau and drop[t] <= max_drop:
      return Choice(t, f"probe: start D >= D* and drop <= {max_drop:g}",
                    f"lowest T starting at or above the plateau D* = {plateau:.3f} "
                    f"(start {starts[t]:.3f}) whose D fell by {100 * drop[t]:.0f}%",
                    plateau)
  above = [t for t in starts if starts[t] >= plateau]
  t = min(above, key=lambda t: starts[t]) if above else max(starts, key=starts.get)
  return Choice(t, f"probe: start D >= D* and drop <= {max_drop:g}",
                f"no T qualified (D* = {plateau:.3f}; drops "
                + ", ".join(f"T={k:g}: {100 * v:.0f}%" for k, v in sorted(drop.items()))
                + f"); fell back to T = {t:g}, the start closest to D* from above", plateau)


# ------------------------------------------------------------ controller
@dataclasses.dataclass
class TemperatureController:
  """Per-step T from a schedule, with `auto` stages resolved once, plus the
  diversity log and the low-diversity alert.

  Attributes:
    schedule: the T(step) schedule; `auto` stages are None until `resolve`.
    alert_floor: diversity below this for `alert_patience` consecutive steps
      logs a warning with the recommended action (sustained loss of
      diversity precedes collapse).
    low_steps: current run of consecutive steps below the floor.
    history: [(step, T, D)] of every update, for plots and resumption.
    choices: {stage index: the `Choice` that resolved it, as a dict}.
  """

  schedule: StagedSchedule
  alert_floor: float = 0.5
  alert_patience: int = 20
  low_steps: int = 0
  history: list[tuple[int, float, float]] = dataclasses.field(default_factory=list)
  choices: dict[int, dict] = dataclasses.field(default_factory=dict)

  def temperature(self, step: int) -> float | None:
    """T at `step`; None when `step` is in an unresolved `auto` stage."""
    return self.schedule(step)

  def pending_stage(self, step: int) -> int | None:
    """The auto stage to resolve before sampling at `step`, if any."""
    return self.schedule.stage(step) if self.schedule(step) is None else None

  def resolve(self, stage: int, choice: Choice, measurements=()) -> None:
    self.schedule = self.schedule.resolve(stage, choice.temperature)
    self.choices[stage] = {**dataclasses.asdict(choice),
                           "measurements": [dataclasses.asdict(m) for m in measurements]}
    log.info("temperature stage %d set to T = %g (%s)", stage, choice.temperature,
             choice.reason)

  def update(self, step: int, diversity: float) -> dict[str, float]:
    """Records step's D; returns metrics to log."""
    t = self.temperature(step)
    self.history.append((int(step), float(t), float(diversity)))
    self.low_steps = self.low_steps + 1 if diversity < self.alert_floor else 0
    alert = self.low_steps == self.alert_patience
    if alert:
      log.warning("diversity below %.2f for %d steps (now %.3f at T=%.2f): training may "
                  "be collapsing. Recommended: raise T so that the starting diversity "
                  "sits near the plateau runs converge to (a staged switch such as "
                  "rl.temperature='%g,%g@%d' is allowed; a ramp is not), or choose it "
                  "with python -m microcoder_jax.select_temperature",
                  self.alert_floor, self.alert_patience, diversity, t, t,
                  round(t + 0.2, 2), step + 1)
    return {"sampling/temperature": t, "sampling/diversity": float(diversity),
            "sampling/low_diversity_steps": float(self.low_steps),
            "sampling/diversity_alert": float(alert)}

  def state_dict(self) -> dict:
    return {"stages": [list(s) for s in self.schedule.stages],
            "ramp": self.schedule.ramp, "low_steps": self.low_steps,
            "history": [list(h) for h in self.history],
            "choices": {str(k): v for k, v in self.choices.items()}}

  def load_state_dict(self, state: dict) -> None:
    """Restores the log and every resolved `auto` stage (a stage chosen before
    a restart keeps its T)."""
    saved = tuple((int(s), None if t is None else float(t)) for s, t in state["stages"])
    choices = {int(k): v for k, v in state.get("choices", {}).items()}
    configured = self.schedule
    for stage, choice in choices.items():
      if stage < len(configured.stages) and configured.stages[stage][1] is None:
        configured = configured.resolve(stage, choice["temperature"])
    if [s for s, _ in saved] != [s for s, _ in configured.stages] or any(
        a is not None and b is not None and a != b
        for (_, a), (_, b) in zip(saved, configured.stages)):
      log.warning("checkpointed temperature schedule %s differs from the configured "
                  "%s; keeping the configured one", saved, self.schedule.stages)
    self.schedule, self.choices = configured, choices
    self.low_steps = int(state["low_steps"])
    self.history = [(int(s), float(t), float(d)) for s, t, d in state["history"]]
