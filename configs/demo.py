"""CPU demo: MicroCoder-GRPO on a tiny model and bundled synthetic problems.

Finishes in a few minutes on 2 CPU cores:
  python -m microcoder_jax.train --config=configs/demo.py --workdir=runs/demo
Shorter or longer:
  python -m microcoder_jax.train --config=configs/demo.py:steps=2 --workdir=/tmp/demo
"""

from microcoder_jax import config_lib


def get_config(arg=None):
  a = config_lib.parse_arg(arg, steps=8, init_from="")
  c = config_lib.base_config("microcoder_grpo", "runlocal")
  c.total_steps = a.steps
  if a.init_from:
    c.model.init_from = a.init_from
  c.rollout.update(train_batch_size=4, group_size=4, max_response_length="48",
                   temperature="1.2")
  c.eval.update(every=4, k=2, max_response_length="48", max_problems=12)
  c.checkpoint.every = 4
  return c
