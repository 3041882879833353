"""Pure, jittable pieces of the GRPO / DAPO / MicroCoder-GRPO objective.

Arrays in, arrays out: nothing here imports models, the sampler or the
evaluator. N = num_groups × G responses (groups consecutive), T = response
length, D = hidden size, V = vocabulary size.
"""
from microcoder_jax.rl.advantages import ADVANTAGE_FNS
from microcoder_jax.rl.advantages import group_advantages
from microcoder_jax.rl.advantages import register_advantage
from microcoder_jax.rl.logprobs import token_entropy
from microcoder_jax.rl.logprobs import token_logprobs
from microcoder_jax.rl.losses import AGGREGATIONS
from microcoder_jax.rl.losses import aggregation_denominator
from microcoder_jax.rl.losses import KL_ESTIMATORS
from microcoder_jax.rl.losses import policy_loss
from microcoder_jax.rl.losses import policy_loss_terms
from microcoder_jax.rl.losses import register_aggregation
from microcoder_jax.rl.losses import register_kl
from microcoder_jax.rl.losses import safe_ratio
from microcoder_jax.rl.masks import conditional_truncation_mask
from microcoder_jax.rl.masks import repeat_tail
from microcoder_jax.rl.presets import get_preset
from microcoder_jax.rl.presets import ObjectivePreset
from microcoder_jax.rl.presets import PRESETS
from microcoder_jax.rl.rewards import dynamic_sampling_keep
from microcoder_jax.rl.rewards import fill_groups
from microcoder_jax.rl.rewards import overlong_penalty
