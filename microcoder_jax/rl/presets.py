"""Objective presets: GRPO, DAPO and MicroCoder-GRPO as plain config.

Each preset is a frozen `ObjectivePreset`; `get_preset(name)` returns one,
`preset.loss_kwargs()` the keyword arguments of `policy_loss`, and
`preset.to_config()` an ml_collections `rl` section whose keys follow the
project's knob names (`rl.clip_eps_low`, `rl.ctm.rho`, ...).
"""
import dataclasses
from typing import Optional

import ml_collections

from microcoder_jax.rl import advantages
from microcoder_jax.rl import losses
from microcoder_jax.rl import masks


@dataclasses.dataclass(frozen=True, kw_only=True)
class ObjectivePreset:
  """One objective, in the paper's symbols.

  Attributes:
    name: preset name.
    adv_estimator: group advantage method ("grpo", "drgrpo", "rloo").
    adv_std_ddof: ddof of the group std in Â_i (0 = population).
    adv_std_eps: added to the group std.
    clip_eps_low: ε, lower clip 1 − ε of r_i(θ).
    clip_eps_high: ε_high, upper clip 1 + ε_high (DAPO clip-higher).
    clip_ratio_c: dual-clip constant c, None = off.
    kl_coef: β; 0 means no reference model is loaded or run.
    kl_estimator: "k1", "k2" or "k3" (used only when β > 0).
    loss_agg_mode: aggregation of `policy_loss`.
    ctm_rho: ρ of the conditional truncation mask; None = no mask.
    ctm_conditions: False masks every truncated response (non-incorrect and
      ¬repeat treated as true), i.e. DeepCoder's "mask all".
    ctm_repeat_window: m of repeat(o, m).
    ctm_repeat_mode: "exact" (paper) or "periodic" (our extension).
    temperature: sampling temperature T, also used in r_i(θ).
    dynamic_sampling: drop all-equal-reward groups and refill (DAPO).
    overlong_buffer_frac: soft punishment buffer as a fraction of L_max;
      None = no overlong shaping.
    overlong_penalty_factor: penalty reached at |o| = L_max.
  """
  name: str
  adv_estimator: str = "grpo"
  adv_std_ddof: int = 0
  adv_std_eps: float = 1e-6
  clip_eps_low: float = 0.2
  clip_eps_high: float = 0.28
  clip_ratio_c: Optional[float] = None
  kl_coef: float = 0.0
  kl_estimator: str = "k3"
  loss_agg_mode: str = "token-mean"
  ctm_rho: Optional[float] = None
  ctm_conditions: bool = True
  ctm_repeat_window: int = 128
  ctm_repeat_mode: str = "exact"
  temperature: float = 1.2
  dynamic_sampling: bool = False
  overlong_buffer_frac: Optional[float] = None
  overlong_penalty_factor: float = 1.0

  def __post_init__(self):
    checks = [
        (self.adv_estimator in advantages.ADVANTAGE_FNS, "adv_estimator"),
        (self.adv_std_ddof in (0, 1), "adv_std_ddof"),
        (0.0 <= self.clip_eps_low < 1.0, "clip_eps_low"),
        (self.clip_eps_high >= 0.0, "clip_eps_high"),
        (self.clip_ratio_c is None or self.clip_ratio_c > 1.0, "clip_ratio_c"),
        (self.kl_coef >= 0.0, "kl_coef"),
        (self.kl_estimator in losses.KL_ESTIMATORS, "kl_estimator"),
        (self.loss_agg_mode in losses.AGGREGATIONS, "loss_agg_mode"),
        (self.ctm_rho is None or 0.0 <= self.ctm_rho <= 1.0, "ctm_rho"),
        (self.ctm_repeat_window >= 1, "ctm_repeat_window"),
        (self.ctm_repeat_mode in masks.REPEAT_MODES, "ctm_repeat_mode"),
        (self.temperature > 0.0, "temperature"),
        (self.overlong_buffer_frac is None
         or 0.0 < self.overlong_buffer_frac <= 1.0, "overlong_buffer_frac"),
    ]
    for ok, field in checks:
      if not ok:
        raise ValueError(f"Invalid {field}={getattr(self, field)!r} in "
                         f"preset {self.name!r}.")

  def loss_kwargs(self) -> dict:
    """Keyword arguments for `policy_loss` (pass `ref_logp_NxT` if β > 0)."""
    return dict(clip_low=self.clip_eps_low, clip_high=self.clip_eps_high,
                dual_clip=self.clip_ratio_c, kl_coef=self.kl_coef,
                kl_estimator=self.kl_estimator,
                aggregation=self.loss_agg_mode)

  def to_config(self) -> ml_collections.ConfigDict:
    """The `rl` config section (ml_collections) for this preset."""
    fields = dataclasses.asdict(self)
    ctm = {k[len("ctm_"):]: fields.pop(k) for k in list(fields)
           if k.startswith("ctm_")}
    ctm["enabled"] = ctm["rho"] is not None
    ctm["rho"] = 0.0 if ctm["rho"] is None else ctm["rho"]
    fields["ctm"] = ctm
    return ml_collections.ConfigDict(fields)


PRESETS: dict[str, ObjectivePreset] = {
    p.name: p for p in [
        # GRPO with verl's KL-loss defaults: β = 0.001 (k3), ε = ε_high = 0.2.
        ObjectivePreset(name="grpo", clip_eps_high=0.2, kl_coef=0.001,
                        kl_estimator="k3"),
        # DAPO: β = 0, ε = 0.2, ε_high = 0.28, token-mean, dynamic sampling,
        # overlong shaping over the last 0.25·L_max tokens down to −1.
        ObjectivePreset(name="dapo", dynamic_sampling=True,
                        overlong_buffer_frac=0.25),
        # DAPO without dynamic sampling or shaping (= MicroCoder-GRPO - CTM).
        ObjectivePreset(name="dapo_base"),
        # Every truncated response masked (DeepCoder's overlong filtering).
        ObjectivePreset(name="mask_all", ctm_rho=1.0, ctm_conditions=False),
        # MicroCoder-GRPO: dapo_base + CTM with ρ = 0.1, m = 128, at T = 1.2.
        ObjectivePreset(name="microcoder_grpo", ctm_rho=0.1),
    ]
}


def get_preset(name: str) -> ObjectivePreset:
  """Returns the preset called `name` (see `PRESETS`)."""
  if name not in PRESETS:
    raise ValueError(f"Unknown preset {name!r}; known: {sorted(PRESETS)}")
  return PRESETS[name]
