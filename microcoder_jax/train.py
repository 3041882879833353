r"""GRPO / DAPO / MicroCoder-GRPO trainer.

  python -m microcoder_jax.train --config=configs/demo.py --workdir=runs/demo
  python -m microcoder_jax.train --config=configs/microcoder_grpo.py:model=qwen3_1p7b \
      --config.data.train=data/train.jsonl --workdir=runs/mc_1p7b

Per step (verl semantics): `train_batch_size` prompts x G responses at the
controller's temperature T -> evaluator verdicts -> rewards, CTM, Â_i ->
`train_batch_size / ppo_mini_batch_size` optimizer updates.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys

import jax
import jax.numpy as jnp
from absl import app, flags
from absl import logging as absl_logging
from flax import nnx
from ml_collections import config_flags
from tqdm import tqdm

from microcoder_jax import checkpoint, evals, metrics as metrics_lib, sharding
from microcoder_jax.data import datasets, prompts, tiny_tokenizer
from microcoder_jax.evaluator import Evaluator
from microcoder_jax.models import (KVCache, from_pretrained, get_preset, init_model,
                                   save_pretrained)
from microcoder_jax.models.config import ATTENTION_BACKENDS, REMAT_POLICIES
from microcoder_jax.rl import rollout as rollout_lib
from microcoder_jax.rl import step as step_lib
from microcoder_jax.sampling import Sampler
from microcoder_jax.sampling.sampler import bucket_length
from microcoder_jax.sampling.temperature import TemperatureController, TemperatureSchedule

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Checkpoints, metrics, plots, export.")
log = logging.getLogger("microcoder_jax.train")


class ConfigError(ValueError):
  """An invalid config combination, detected before any work starts."""


def validate(c) -> None:
  r = c.rollout
  if r.train_batch_size % c.ppo_mini_batch_size:
    raise ConfigError(f"ppo_mini_batch_size={c.ppo_mini_batch_size} does not "
                      f"divide rollout.train_batch_size={r.train_batch_size}")
  rows = c.ppo_mini_batch_size * r.group_size
  if rows % min(c.micro_batch_size, rows):
    raise ConfigError(f"micro_batch_size={c.micro_batch_size} does not divide a "
                      f"mini-batch of {rows} rows (ppo_mini_batch_size x G)")
  if c.rl.old_logps not in ("trainer", "sampler"):
    raise ConfigError(f"rl.old_logps={c.rl.old_logps!r}; use 'trainer' or 'sampler'")
  if c.rl.ctm.apply_to not in ("advantage", "loss_mask"):
    raise ConfigError(f"rl.ctm.apply_to={c.rl.ctm.apply_to!r}")
  if c.model.attention not in ATTENTION_BACKENDS:
    raise ConfigError(f"model.attention={c.model.attention!r}; one of {ATTENTION_BACKENDS}")
  if c.model.remat not in REMAT_POLICIES:
    raise ConfigError(f"model.remat={c.model.remat!r}; one of {REMAT_POLICIES}")
  if r.chunk_rows < 0 or r.cache_memory_gib < 0:
    raise ConfigError("rollout.chunk_rows and rollout.cache_memory_gib must be >= 0")
  shards = math.prod(sharding.mesh_shape(c.mesh, jax.device_count())[:2])  # MeshError
  if rows % shards or min(c.micro_batch_size, rows) % shards:
    log.warning("micro_batch_size=%d is not a multiple of the %d batch shards "
                "(data x fsdp): some devices will compute replicated rows",
                c.micro_batch_size, shards)
  TemperatureSchedule.parse(r.temperature, allow_ramp=r.allow_ramp)
  TemperatureSchedule.parse(r.max_response_length)


def sampler_row_cap(c, model_cfg, mesh, prompt_len: int, length_spec: str,
                    group: int) -> int:
  """Rows per sampler call: `rollout.chunk_rows`, else what the per-device
  KV-cache budget `rollout.cache_memory_gib` holds for responses of up to
  `length_spec` tokens, in whole groups of `group` rows (0: no cap).

  The cache of one row takes 2·L·S·K·H·bytes (S = prompt bucket + L_max);
  rows are sharded over the batch axes, so a device holds rows / shards.
  """
  r = c.rollout
  if r.chunk_rows:
    rows = r.chunk_rows
  elif r.cache_memory_gib:
    longest = max(t for _, t in TemperatureSchedule.parse(length_spec).stages)
    per_row = KVCache.bytes_per_row(model_cfg, bucket_length(prompt_len) + int(longest))
    shards = mesh.shape["data"] * mesh.shape["fsdp"]
    rows = int(r.cache_memory_gib * 2**30 * shards // per_row)
    if rows < group:
      raise ConfigError(
          f"rollout.cache_memory_gib={r.cache_memory_gib} holds {rows} rows of "
          f"{per_row / 2**20:.0f} MiB cache each; a group needs {group}")
  else:
    return 0
  return max(group, rows - rows % group)


def length_schedule(spec: str):
  """L_max(step) from "4096" or a staged "6144,8192@260"."""
  sched = TemperatureSchedule.parse(spec)
  return lambda step: int(sched(step))


def load_tokenizer(c):
  name = c.model.tokenizer or c.model.init_from
  if name in ("", "bundled"):
    return tiny_tokenizer.load()
  import transformers  # pylint: disable=g-import-not-at-top
  return transformers.AutoTokenizer.from_pretrained(name)


def encode_all(tokenizer, problems, c):
  """Prompt ids per problem; problems whose prompt is too long are dropped."""
  kept, ids = [], []
  for p in problems:
    x = prompts.encode_prompt(tokenizer, p, system=c.data.system_prompt or None,
                              chat_template_kwargs=dict(c.data.chat_template_kwargs))
    if len(x) <= c.data.max_prompt_length:
      kept.append(p)
      ids.append(x)
  if len(kept) < len(problems):
    log.warning("dropped %d problems with prompts over %d tokens",
                len(problems) - len(kept), c.data.max_prompt_length)
  if not kept:
    raise ConfigError(f"no problem fits data.max_prompt_length={c.data.max_prompt_length}")
  return kept, ids


def init_distributed() -> None:
  """Multi-controller start. TPU VMs and Slurm/MPI clusters are auto-detected;
  elsewhere set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID.
  Multi-process CPU runs (tests, loopback rehearsals) need gloo collectives."""
  env = os.environ
  kwargs = {}
  if env.get("JAX_NUM_PROCESSES"):
    kwargs = dict(num_processes=int(env["JAX_NUM_PROCESSES"]),
                  process_id=int(env["JAX_PROCESS_ID"]))
  if env.get("JAX_PLATFORMS", "").strip() == "cpu":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kwargs)


def main(argv):
  del argv
  c, workdir = FLAGS.config, FLAGS.workdir
  if not workdir:
    raise app.UsageError("--workdir is required")
  absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every file at INFO
  logging.getLogger("microcoder_jax").setLevel(logging.INFO)
  if c.multihost or os.environ.get("JAX_COORDINATOR_ADDRESS"):
    init_distributed()
  validate(c)
  os.makedirs(workdir, exist_ok=True)
  is_main = jax.process_index() == 0

  # ----------------------------------------------------------------- mesh
  mesh = sharding.make_mesh(c.mesh)
  log.info("mesh %s over %d %s devices", dict(mesh.shape), mesh.size,
           jax.devices()[0].platform)

  # ----------------------------------------------------------------- data
  tokenizer = load_tokenizer(c)
  stop_ids = prompts.stop_token_ids(tokenizer, tuple(c.rollout.stop_tokens))
  train_problems, train_ids = encode_all(tokenizer, datasets.load_problems(c.data.train), c)
  prompt_of = {p.id: x for p, x in zip(train_problems, train_ids)}
  data_iter = datasets.ProblemIterator(train_problems, seed=c.data.shuffle_seed)
  eval_problems, eval_ids = [], []
  if c.data.eval:
    eval_problems, eval_ids = encode_all(tokenizer, datasets.load_problems(c.data.eval), c)
    if c.eval.max_problems:
      eval_problems = eval_problems[:c.eval.max_problems]
      eval_ids = eval_ids[:c.eval.max_problems]

  # ---------------------------------------------------- model and optimizer
  # Resume precedence: a checkpoint in workdir > init_from > random init.
  options = dict(attention=c.model.attention, remat=c.model.remat,
                 scan_layers=c.model.scan_layers)
  if c.model.init_from:
    model = from_pretrained(c.model.init_from, dtype=c.model.dtype,
                            param_dtype=c.model.param_dtype, mesh=mesh, **options)
  else:
    overrides = dict(dtype=c.model.dtype, param_dtype=c.model.param_dtype, **options)
    if c.model.preset == "tiny":
      overrides["vocab_size"] = len(tokenizer)
    cfg = get_preset(c.model.preset, **overrides)
    model = init_model(cfg, seed=c.seed, mesh=mesh)
  if len(tokenizer) > model.cfg.vocab_size:
    raise ConfigError(f"tokenizer has {len(tokenizer)} tokens but the model's "
                      f"vocabulary is {model.cfg.vocab_size}")
  if is_main:  # what `microcoder_jax.benchmark` needs to rebuild the policy
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(c.to_json_best_effort(indent=2))
    with open(os.path.join(workdir, "model_config.json"), "w") as f:
      json.dump(model.cfg.to_hf(), f, indent=2)
    tokenizer.save_pretrained(os.path.join(workdir, "tokenizer"))
  graphdef, params = nnx.split(model)
  ref_params = jax.tree.map(lambda x: x.copy(), params) if c.rl.kl_coef > 0 else None
  optimizer = step_lib.make_optimizer(
      c.optim.lr, warmup_steps=c.optim.warmup_steps, weight_decay=c.optim.weight_decay,
      grad_clip=c.optim.grad_clip, b1=c.optim.b1, b2=c.optim.b2)
  param_sharding = sharding.state_shardings(params, mesh)
  state_sharding = step_lib.train_state_shardings(param_sharding, optimizer, params, mesh)
  with sharding.use_mesh(mesh):
    state = step_lib.TrainState(
        params, jax.jit(optimizer.init, out_shardings=state_sharding.opt_state)(params),
        jax.device_put(jnp.zeros((), jnp.int32), state_sharding.step))
  controller = TemperatureController(
      TemperatureSchedule.parse(c.rollout.temperature, allow_ramp=c.rollout.allow_ramp),
      alert_floor=c.diversity.alert_floor, alert_patience=c.diversity.alert_patience)
  max_len = length_schedule(c.rollout.max_response_length)

  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"),
                                 every=c.checkpoint.every, keep=c.checkpoint.keep)
  start = 0
  if ckpt.latest_step() is not None:
    state, meta = ckpt.restore(state)
    data_iter.load_state_dict(meta["data"])
    controller.load_state_dict(meta["temperature"])
    start = int(meta["step"])
    log.info("resumed from %s at step %d", ckpt.directory, start)

  # ------------------------------------------------------------- programs
  loss_cfg = step_lib.LossConfig(
      clip_low=c.rl.clip_eps_low, clip_high=c.rl.clip_eps_high,
      dual_clip=c.rl.clip_ratio_c, kl_coef=c.rl.kl_coef, kl_estimator=c.rl.kl_estimator,
      aggregation=c.rl.loss_agg_mode, logprob_chunk=c.logprob_chunk or None,
      micro_batch_size=c.micro_batch_size)
  rows_per_update = c.ppo_mini_batch_size * c.rollout.group_size
  rollout_rows = c.rollout.train_batch_size * c.rollout.group_size
  update = step_lib.jit_update_step(graphdef, optimizer, loss_cfg, mesh=mesh,
                                    state_sharding=state_sharding, rows=rows_per_update)
  recompute_logps = step_lib.jit_recompute(
      graphdef, mesh=mesh, param_sharding=param_sharding, rows=rollout_rows,
      micro_batch_size=c.micro_batch_size, chunk=c.logprob_chunk or None)
  rows_sharding = step_lib.batch_sharding(mesh, rollout_rows)
  sampler = Sampler(model, stop_ids=stop_ids, pad_id=tokenizer.pad_token_id or 0,
                    mesh=mesh)
  evaluator = Evaluator(workers=c.evaluator.workers or None, timeout_s=c.evaluator.timeout_s,
                        memory_mb=c.evaluator.memory_mb)
  writer = metrics_lib.MetricWriter(workdir, enabled=is_main)
  timer = metrics_lib.PhaseTimer()
  key = jax.random.key(c.seed)
  max_prompt_len = max(map(len, train_ids + eval_ids))
  chunk_rows = sampler_row_cap(c, model.cfg, mesh, max_prompt_len,
                               c.rollout.max_response_length, c.rollout.group_size)
  eval_rows = sampler_row_cap(c, model.cfg, mesh, max_prompt_len,
                              c.eval.max_response_length, c.eval.k)
  if chunk_rows and chunk_rows < c.rollout.train_batch_size * c.rollout.group_size:
    log.info("rollout sampled in calls of at most %d rows (held-out: %d rows)",
             chunk_rows, eval_rows)

  def run_heldout(step):
    m, table, samples, results = evals.run_eval(
        sampler, state.params, evaluator, tokenizer, eval_problems, eval_ids,
        k=c.eval.k, max_new_tokens=length_schedule(c.eval.max_response_length)(step),
        temperature=c.eval.temperature, top_p=c.eval.top_p,
        rng=jax.random.fold_in(jax.random.fold_in(key, 2), step),
        batch_prompts=eval_rows // c.eval.k if eval_rows else 64)
    if is_main:
      with open(os.path.join(workdir, f"heldout_{step:06d}.jsonl"), "w") as f:
        for s, r in zip(samples, results):
          f.write(json.dumps({**s, **r.to_json()}) + "\n")
    return m, table

  # ------------------------------------------------------------------ loop
  if eval_problems and start == 0:
    m, _ = run_heldout(0)
    writer.write(0, m)
  bar = tqdm(range(start, c.total_steps), initial=start, total=c.total_steps,
             desc="train", disable=not is_main, dynamic_ncols=True)
  with sharding.use_mesh(mesh):
    for step in bar:
      temperature, length = controller.temperature(step), max_len(step)
      step_key = jax.random.fold_in(key, step)
      judged_rounds = []
      for round_ in range(c.rollout.max_gen_batches if c.rl.dynamic_sampling else 1):
        problems = data_iter.next_batch(c.rollout.train_batch_size)
        with timer("rollout"):
          judged = rollout_lib.generate_and_judge(
              sampler, state.params, evaluator, tokenizer, problems,
              [prompt_of[p.id] for p in problems], group_size=c.rollout.group_size,
              max_new_tokens=length, temperature=temperature,
              top_p=c.rollout.top_p, top_k=c.rollout.top_k,
              rng=jax.random.fold_in(step_key, round_), chunks=c.rollout.chunks,
              max_chunk_prompts=chunk_rows // c.rollout.group_size if chunk_rows else 0)
        for phase, secs in judged.seconds.items():
          timer.seconds[phase] = timer.seconds.get(phase, 0.0) + secs
        judged_rounds.append(judged)
        if c.rl.dynamic_sampling and rollout_lib.enough_groups(
            judged_rounds, c.rollout.group_size, c.rollout.train_batch_size):
          break
      judged = rollout_lib.merge_judged(judged_rounds)

      with timer("score"):
        scored = rollout_lib.score(judged, group_size=c.rollout.group_size,
                                   max_new_tokens=length, rl_cfg=c.rl,
                                   key=jax.random.fold_in(step_key, 10_000))
        batch = rollout_lib.assemble(judged.rollout, scored,
                                     loss_mask_ctm=c.rl.ctm.apply_to == "loss_mask")
        if c.rl.dynamic_sampling:
          rows, valid = rollout_lib.dynamic_sampling_rows(
              scored.rewards_N, c.rollout.group_size, c.rollout.train_batch_size)
          batch = rollout_lib.select_rows(batch, rows, valid)
        # Every process holds the same host batch; it becomes one global
        # array with rows over the batch axes.
        batch = rollout_lib.to_device(batch, rows_sharding)
      with timer("logprobs"):
        if c.rl.old_logps == "trainer":
          old = recompute_logps(state.params, batch)
          # Reduced on device: the arrays may span processes.
          logp_diff = float(jnp.max(jnp.where(batch.loss_mask_NxT > 0,
                                              jnp.abs(old - batch.old_logp_NxT), 0.0)))
          batch = batch.replace(old_logp_NxT=old)
        if ref_params is not None:
          batch = batch.replace(ref_logp_NxT=recompute_logps(ref_params, batch))
      with timer("update"):
        update_metrics = []
        n = batch.targets_NxT.shape[0]
        for lo in range(0, n, rows_per_update):
          mini = jax.tree.map(lambda x: x[lo:lo + rows_per_update], batch)
          state, m = update(state, mini)
          update_metrics.append(m)
        update_metrics = rollout_lib.metric_means(jax.device_get(update_metrics))

      metrics_lib.check_finite(step + 1, update_metrics)
      step_metrics = {**scored.metrics, **{f"actor/{k}": v for k, v in update_metrics.items()},
                      **controller.update(step, scored.metrics["rollout/diversity"]),
                      **timer.pop(), "rollout/max_length": length,
                      "actor/lr": c.optim.lr}
      if c.rl.old_logps == "trainer":
        step_metrics["rollout/logp_diff_max"] = logp_diff
      tokens = float(judged.rollout.lengths_N.sum())
      step_metrics["perf/rollout_tokens_per_s"] = tokens / max(step_metrics["time/rollout_s"], 1e-9)
      if eval_problems and ((step + 1) % c.eval.every == 0 or step + 1 == c.total_steps):
        with timer("heldout"):
          m, _ = run_heldout(step + 1)
        step_metrics.update(m, **timer.pop())
      writer.write(step + 1, step_metrics)
      bar.set_postfix(reward=f"{step_metrics['reward/mean']:.3f}",
                      len=f"{step_metrics['rollout/length_mean']:.0f}",
                      T=f"{temperature:.2f}", D=f"{step_metrics['rollout/diversity']:.2f}")
      if ckpt.should_save(step + 1) or step + 1 == c.total_steps:
        ckpt.save(step + 1, state, {"step": step + 1, "data": data_iter.state_dict(),
                                    "temperature": controller.state_dict()})
  ckpt.close()
  evaluator.close()
  writer.close()

  # --------------------------------------------------------------- outputs
  if is_main and os.path.exists(writer.path):
    rows = metrics_lib.read_metrics(writer.path)
    png = metrics_lib.plot_run(rows, os.path.join(workdir, "curves.png"))
    report = metrics_lib.write_report(rows, os.path.join(workdir, "report.md"), c, png)
    print(f"\nplot: {png}\nreport: {report}")
  if c.export:
    model = nnx.merge(graphdef, state.params)
    save_pretrained(model, os.path.join(workdir, "export"),
                    tokenizer=tokenizer if is_main else None)
    if is_main:
      print(f"exported policy: {os.path.join(workdir, 'export')}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
