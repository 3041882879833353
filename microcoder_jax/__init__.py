"""microcoder_jax: MicroCoder-GRPO (arXiv 2603.07777) in JAX.

Subpackages:
  models     Flax NNX decoders (Qwen2/2.5, Qwen3, Llama 3) with HF checkpoint I/O.
  sampling   the jitted KV-cache sampler and temperature control.
  rl         the pure objective: `Objective`, scoring, advantages, masks, losses.
  evaluator  the sandboxed multiprocessing code judge.
  data       problem sources, prompts, the synthetic demo task.
  curation   dataset curation.
Top-level modules wire them into the trainer (`train`, `rollout`, `update`,
`heldout`, `checkpoint`, ...): see docs/architecture.md.
"""

__version__ = "0.1.0"
