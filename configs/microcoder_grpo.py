"""microcoder_grpo: the `microcoder_grpo` objective (microcoder_jax/rl/presets.py; docs/method.md).

Qwen3-1.7B at 4K on a TPU VM or GPU box (the paper's setting):
  python -m microcoder_jax.train --config=configs/microcoder_grpo.py:model=qwen3_1p7b,max_response_length=4096,train=data/train.jsonl,eval=data/lcb_v6.jsonl --workdir=runs/microcoder_grpo_1p7b
Qwen3-4B-Instruct-2507 at 8K:
  python -m microcoder_jax.train --config=configs/microcoder_grpo.py:model=qwen3_4b_instruct_2507,max_response_length=8192,train=...,eval=... --workdir=runs/microcoder_grpo_4b
DeepSeek-R1-Distill-Llama-8B at 16K:
  python -m microcoder_jax.train --config=configs/microcoder_grpo.py:model=ds_r1_distill_llama_8b,max_response_length=16384,train=...,eval=... --workdir=runs/microcoder_grpo_ds8b
Local smoke run (tiny random model, CPU):
  python -m microcoder_jax.train --config=configs/microcoder_grpo.py:runlocal --workdir=/tmp/microcoder_grpo_smoke
Overrides: --config.rl.rho=0.2 --config.rl.temperature="0.6,1.2@140"
"""

from microcoder_jax import config_lib


def get_config(arg=None):
  return config_lib.base_config("microcoder_grpo", arg)
