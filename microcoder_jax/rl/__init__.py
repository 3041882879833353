"""Pure pieces of the GRPO / DAPO / MicroCoder-GRPO objective.

Arrays in, arrays out: nothing here imports the model, the sampler or the
evaluator (a test enforces it). N = num_groups × G responses (groups
consecutive), T = response length, D = hidden size, V = vocabulary size.
`Objective` owns every symbol of the paper; `OBJECTIVES` holds the presets.
"""
from microcoder_jax.rl.advantages import ADVANTAGE_FNS
from microcoder_jax.rl.advantages import group_advantages
from microcoder_jax.rl.advantages import register_advantage
from microcoder_jax.rl.batch import TrainBatch
from microcoder_jax.rl.diversity import response_diversity
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
from microcoder_jax.rl.objective import Objective
from microcoder_jax.rl.objective import ObjectiveError
from microcoder_jax.rl.presets import get_objective
from microcoder_jax.rl.presets import OBJECTIVES
from microcoder_jax.rl.rewards import dynamic_sampling_keep
from microcoder_jax.rl.rewards import fill_groups
from microcoder_jax.rl.rewards import mixed_accuracy_groups
from microcoder_jax.rl.rewards import overlong_penalty
from microcoder_jax.rl.schedule import StagedSchedule
from microcoder_jax.rl.scoring import score
from microcoder_jax.rl.scoring import Scored
