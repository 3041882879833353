"""Named objectives: GRPO, DAPO and MicroCoder-GRPO as `Objective` values.

    from microcoder_jax import rl
    objective = rl.get_objective("microcoder_grpo").replace(rho=0.2)
    loss, metrics = rl.policy_loss(..., **objective.loss_kwargs())

The trainer's `rl` config section is an `Objective`, field by field.
"""

from microcoder_jax.rl.objective import Objective

OBJECTIVES: dict[str, Objective] = {
    o.name: o for o in [
        # GRPO with verl's KL-loss defaults: β = 0.001 (k3), ε = ε_high = 0.2.
        Objective(name="grpo", clip_eps_high=0.2, kl_coef=0.001, kl_estimator="k3"),
        # DAPO: β = 0, ε = 0.2, ε_high = 0.28, token-mean, dynamic sampling,
        # overlong shaping over the last 0.25·L_max tokens down to −1.
        Objective(name="dapo", dynamic_sampling=True, overlong_buffer_frac=0.25),
        # DAPO without dynamic sampling or shaping (= MicroCoder-GRPO − CTM).
        Objective(name="dapo_base"),
        # Every truncated response masked (DeepCoder's overlong filtering).
        Objective(name="mask_all", rho=1.0, ctm_conditions=False),
        # MicroCoder-GRPO: dapo_base + CTM with ρ = 0.1, m = 128, at T = 1.2.
        Objective(name="microcoder_grpo", rho=0.1),
    ]
}


def get_objective(name: str) -> Objective:
  """The objective called `name` (see `OBJECTIVES`)."""
  if name not in OBJECTIVES:
    raise ValueError(f"unknown objective {name!r}; known: {sorted(OBJECTIVES)}")
  return OBJECTIVES[name]
