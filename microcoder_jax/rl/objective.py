"""`Objective`: every symbol of the GRPO / DAPO / MicroCoder-GRPO objective, in one place.

The paper's symbols and where they act:
  G      `group_size`            responses per prompt; Â_i is group-relative.
  T      `temperature`           sampling temperature, also inside r_i(θ)
                                  (log-probs under softmax(logits / T)); a
                                  staged schedule such as "0.6,1.2@140", where
                                  a stage may be "auto" (chosen from diversity).
  L_max  `max_response_length`   response budget; staged, e.g. "6144,8192@260".
  ε      `clip_eps_low`          r_i(θ) clipped below at 1 − ε.
  ε_high `clip_eps_high`         clipped above at 1 + ε_high (clip-higher).
  c      `clip_ratio_c`          dual clip for Â < 0 (None: off).
  β      `kl_coef`               KL penalty to π_ref (0: no reference model).
  ρ      `rho`                   conditional truncation mask probability
                                  (None: no mask).
  m      `repeat_window`         repeat(o, m): the last m tokens equal the m before.

Everything below the trainer takes these as explicit arguments; defaults live
here and in the named presets (`rl.presets`) only.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

from microcoder_jax.rl import advantages, losses, masks
from microcoder_jax.rl.schedule import StagedSchedule

NON_INCORRECT = ("pass_or_no_code", "pass_only")
CTM_APPLY_TO = ("advantage", "loss_mask")
OLD_LOGPS = ("trainer", "sampler")
# Estimators whose Â_i compares a response with the rest of its group.
GROUP_RELATIVE = ("grpo", "drgrpo", "rloo")


class ObjectiveError(ValueError):
  """An invalid objective field; `field` names it."""

  def __init__(self, field: str, message: str):
    super().__init__(message)
    self.field = field


@dataclasses.dataclass(frozen=True, kw_only=True)
class Objective:
  """One RL objective, in the paper's symbols (see the module docstring).

  Attributes:
    name: a label (the preset it came from).
    group_size: G.
    temperature: T schedule; every stage must be > 0 or `auto`.
    allow_ramp: allow a "ramp:..." T schedule (ablations only).
    max_response_length: L_max schedule, whole tokens.
    adv_estimator: "grpo", "drgrpo", "rloo" or a registered estimator.
    adv_std_ddof: ddof of the group std in Â_i (0 = population).
    adv_std_eps: added to the group std.
    clip_eps_low: ε.
    clip_eps_high: ε_high.
    clip_ratio_c: c > 1, or None.
    kl_coef: β ≥ 0.
    kl_estimator: "k1", "k2" or "k3" (and aliases).
    aggregation: how token losses are reduced ("token-mean", ...).
    old_logps: where log π_θold comes from: "trainer" (recomputed by the
      trainer's forward) or "sampler" (the sampler's own log-probs).
    rho: ρ ∈ [0, 1], or None for no conditional truncation mask.
    ctm_conditions: False masks every truncated response (non-incorrect and
      ¬repeat taken as true): DeepCoder's "mask all".
    repeat_window: m.
    repeat_mode: "exact" (the paper's repeat(o, m)) or "periodic".
    non_incorrect: what counts as non-incorrect for the mask: "pass_or_no_code"
      (passed, or truncated before any complete code) or "pass_only".
    ctm_apply_to: "advantage" (Â_i ← Â_i · (1 − mask_i)) or "loss_mask"
      (the row's tokens leave the loss and its denominator).
    dynamic_sampling: DAPO: keep only groups with mixed accuracy, sampling
      up to `max_gen_batches` rounds per step to fill the batch.
    max_gen_batches: rounds per step at most (dynamic sampling).
    overlong_buffer_frac: DAPO's soft overlong punishment over the last
      fraction of L_max, or None for none.
    overlong_penalty_factor: the penalty reached at |o| = L_max.
  """

  name: str = "custom"
  group_size: int = 8
  temperature: str = "1.2"
  allow_ramp: bool = False
  max_response_length: str = "4096"
  adv_estimator: str = "grpo"
  adv_std_ddof: int = 0
  adv_std_eps: float = 1e-6
  clip_eps_low: float = 0.2
  clip_eps_high: float = 0.28
  clip_ratio_c: Optional[float] = None
  kl_coef: float = 0.0
  kl_estimator: str = "k3"
  aggregation: str = "token-mean"
  old_logps: str = "trainer"
  rho: Optional[float] = None
  ctm_conditions: bool = True
  repeat_window: int = 128
  repeat_mode: str = "exact"
  non_incorrect: str = "pass_or_no_code"
  ctm_apply_to: str = "advantage"
  dynamic_sampling: bool = False
  max_gen_batches: int = 3
  overlong_buffer_frac: Optional[float] = None
  overlong_penalty_factor: float = 1.0

  def __post_init__(self):
    for field in ("temperature", "max_response_length"):
      object.__setattr__(self, field, str(getattr(self, field)).strip())
    for ok, field, why in self._checks():
      if not ok:
        raise ObjectiveError(field, f"{field}={getattr(self, field)!r} {why} "
                             f"(objective {self.name!r})")
    temps = [t for t in self._schedule("temperature", allow_ramp=self.allow_ramp).values
             if t is not None]
    if temps and min(temps) <= 0:
      raise ObjectiveError("temperature", f"temperature={self.temperature!r}: training "
                           "needs T > 0 in every stage (T also divides the logits of "
                           f"r_i(θ)) (objective {self.name!r})")
    lengths = self._schedule("max_response_length").values
    if any(v < 1 or v != int(v) for v in lengths):
      raise ObjectiveError("max_response_length", f"max_response_length="
                           f"{self.max_response_length!r}: every stage must be a whole "
                           f"number of tokens >= 1 (objective {self.name!r})")

  def _checks(self):
    def positive_int(x):
      return isinstance(x, int) and not isinstance(x, bool) and x >= 1

    def finite(*xs):
      return all(isinstance(x, (int, float)) and math.isfinite(x) for x in xs)

    min_group = 2 if self.adv_estimator in GROUP_RELATIVE else 1
    return [
        (positive_int(self.group_size) and self.group_size >= min_group, "group_size",
         f"must be an integer >= {min_group} for adv_estimator={self.adv_estimator!r}"),
        (self.adv_estimator in advantages.ADVANTAGE_FNS, "adv_estimator",
         f"is not one of {sorted(advantages.ADVANTAGE_FNS)}"),
        (self.adv_std_ddof in (0, 1), "adv_std_ddof", "must be 0 or 1"),
        (finite(self.adv_std_eps) and self.adv_std_eps >= 0, "adv_std_eps", "must be >= 0"),
        (finite(self.clip_eps_low) and 0.0 <= self.clip_eps_low < 1.0, "clip_eps_low",
         "must be in [0, 1)"),
        (finite(self.clip_eps_high) and self.clip_eps_high >= 0.0, "clip_eps_high",
         "must be >= 0"),
        (self.clip_ratio_c is None or (finite(self.clip_ratio_c) and self.clip_ratio_c > 1),
         "clip_ratio_c", "must be None or > 1"),
        (finite(self.kl_coef) and self.kl_coef >= 0.0, "kl_coef", "must be >= 0"),
        (self.kl_estimator in losses.KL_ESTIMATORS, "kl_estimator",
         f"is not one of {sorted(losses.KL_ESTIMATORS)}"),
        (self.aggregation in losses.AGGREGATIONS, "aggregation",
         f"is not one of {sorted(losses.AGGREGATIONS)}"),
        (self.old_logps in OLD_LOGPS, "old_logps", f"is not one of {OLD_LOGPS}"),
        (self.rho is None or (finite(self.rho) and 0.0 <= self.rho <= 1.0), "rho",
         "must be None (no mask) or in [0, 1]"),
        (positive_int(self.repeat_window), "repeat_window", "must be an integer >= 1"),
        (self.repeat_mode in masks.REPEAT_MODES, "repeat_mode",
         f"is not one of {masks.REPEAT_MODES}"),
        (self.non_incorrect in NON_INCORRECT, "non_incorrect",
         f"is not one of {NON_INCORRECT}"),
        (self.ctm_apply_to in CTM_APPLY_TO, "ctm_apply_to", f"is not one of {CTM_APPLY_TO}"),
        (positive_int(self.max_gen_batches), "max_gen_batches", "must be an integer >= 1"),
        (self.overlong_buffer_frac is None or (finite(self.overlong_buffer_frac)
                                               and 0.0 < self.overlong_buffer_frac <= 1.0),
         "overlong_buffer_frac", "must be None or in (0, 1]"),
        (finite(self.overlong_penalty_factor) and self.overlong_penalty_factor >= 0,
         "overlong_penalty_factor", "must be >= 0"),
    ]

  def _schedule(self, field: str, allow_ramp: bool = False) -> StagedSchedule:
    try:
      return StagedSchedule.parse(getattr(self, field), allow_ramp=allow_ramp,
                                  allow_auto=field == "temperature", name=field)
    except ValueError as e:
      raise ObjectiveError(field, f"{e} (objective {self.name!r})") from e

  # ------------------------------------------------------------ schedules
  @functools.cached_property
  def temperature_schedule(self) -> StagedSchedule:
    return self._schedule("temperature", allow_ramp=self.allow_ramp)

  @functools.cached_property
  def length_schedule(self) -> StagedSchedule:
    return self._schedule("max_response_length")

  def temperature_at(self, rl_step: int) -> float | None:
    """T at an RL step; None in an `auto` stage (the trainer's temperature
    controller resolves it from measured diversity)."""
    return self.temperature_schedule(rl_step)

  def max_response_length_at(self, rl_step: int) -> int:
    """L_max at an RL step."""
    return int(self.length_schedule(rl_step))

  @property
  def longest_response_length(self) -> int:
    """The largest L_max of the schedule (sizes buffers and caches)."""
    return int(max(self.length_schedule.values))

  # ---------------------------------------------------------------- views
  @property
  def uses_ctm(self) -> bool:
    return self.rho is not None

  @property
  def uses_reference(self) -> bool:
    """β > 0: a frozen reference model is kept and run."""
    return self.kl_coef > 0

  def loss_kwargs(self) -> dict:
    """Keyword arguments of `rl.policy_loss` (pass `ref_logp_NxT` if β > 0)."""
    return dict(clip_low=self.clip_eps_low, clip_high=self.clip_eps_high,
                dual_clip=self.clip_ratio_c, kl_coef=self.kl_coef,
                kl_estimator=self.kl_estimator, aggregation=self.aggregation)

  def replace(self, **changes) -> "Objective":
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)
