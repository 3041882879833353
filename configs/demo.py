"""CPU demo: MicroCoder-GRPO on a warm-started tiny policy and synthetic problems.

The policy (~1.6M parameters, bundled, made by `python -m microcoder_jax.warm_start`)
was fine-tuned on reference solutions of the synthetic train split only, 30% of
them carrying each of two family-independent bad habits (see `warm_start.HABITS`);
the held-out split uses unseen parameter settings of the same task families.
A run takes about 1.5 minutes on 2 CPU cores; held-out pass@1 (113 problems x 4
samples, T = 0.6) is measured every 10 steps and rises from about 53% to about
69% (seed 0: 52.7% -> 70.1%; mean of seeds 0-2 +15.7 points; see
docs/cpu_demo.md for the spread):
  python -m microcoder_jax.train --config=configs/demo.py --workdir=runs/demo
Shorter, other objectives or a random init:
  python -m microcoder_jax.train --config=configs/demo.py:steps=2 --workdir=/tmp/demo
  python -m microcoder_jax.train --config=configs/demo.py:objective=dapo --workdir=/tmp/dapo
  python -m microcoder_jax.train --config=configs/demo.py:init_from= --workdir=/tmp/rand
"""

import os

from microcoder_jax import config_lib
from microcoder_jax.data.datasets import BUNDLED_DIR


def get_config(arg=None):
  a = config_lib.parse_arg(arg, steps=40, objective="microcoder_grpo", rho=None, seed=0,
                           init_from=os.path.join(BUNDLED_DIR, "tiny_policy"))
  c = config_lib.base_config(a.objective, "runlocal")
  c.seed = a.seed
  c.data.shuffle_seed = a.seed
  c.total_steps = a.steps
  # 4 layers on 2 CPU cores: no remat; the layers run in a lax.scan, like the
  # paper-scale configs. Unrolled, XLA:CPU runs a step ~5% faster but compiles
  # every program (training step, held-out sampler) more slowly: a whole run
  # took 113 s unrolled against 101 s scanned (benchmarks/README.md,
  # "Compile time").
  c.model.update(init_from=a.init_from, tokenizer="" if a.init_from else "bundled",
                 dtype="float32", param_dtype="float32", remat="none", scan_layers=True)
  c.rl.update(group_size=8, max_response_length="64", temperature="1.0", max_gen_batches=3,
              repeat_window=16)  # m, scaled to L_max = 64
  if a.rho is not None:
    c.rl.rho = a.rho
  c.rollout.update(num_groups=8, chunks=2)
  c.ppo_mini_batch_size, c.micro_batch_size, c.logprob_chunk = 4, 32, 512
  c.optim.update(lr=1e-4, warmup_steps=0)
  # Short responses: 4-gram diversity starts near 0.25 at T = 1.0 here, not near
  # 0.65. The target of `rl.temperature=auto` is the plateau D* = 0.337 that
  # 10-step training probes at T = 0.6, 1.0, 1.4, 1.8 estimated for this policy
  # (select_temperature --probe-steps 10; docs/temperature.md).
  c.diversity.update(alert_floor=0.1, target=0.337, probe_prompts=64)
  c.eval.update(every=10, k=4, temperature=0.6, top_p=0.95, max_response_length="64",
                max_problems=0)
  c.checkpoint.every = 20
  return c
