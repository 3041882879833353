"""microcoder_jax: MicroCoder-GRPO (arXiv 2603.07777) in JAX.

Subpackages:
  models     Flax NNX decoders (Qwen2/2.5, Qwen3, Llama 3) with HF checkpoint I/O.
  rl         pure jittable GRPO / DAPO / MicroCoder-GRPO objective pieces.
  evaluator  sandboxed multiprocessing code judge.
"""

__version__ = "0.1.0"
