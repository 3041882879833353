r"""GRPO / DAPO / MicroCoder-GRPO trainer.

  python -m microcoder_jax.train --config=configs/demo.py --workdir=runs/demo
  python -m microcoder_jax.train --config=configs/microcoder_grpo.py:model=qwen3_1p7b \
      --config.data.train=data/train.jsonl --workdir=runs/mc_1p7b

One RL step (verl semantics): `rollout.num_groups` prompts x G responses at
T(step) -> the judge's verdicts -> `rl.score` (R_i, the truncation mask, Â_i)
-> `num_groups / ppo_mini_batch_size` optimizer updates. The data path:
`rollout.collect_groups` (sampler + judge) -> `rollout.train_batch` ->
`update.recompute_logprobs` (log π_θold, log π_ref) -> `update.update_step`
-> `checkpoint.Checkpointer.save`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from absl import logging as absl_logging
from flax import nnx
from ml_collections import config_flags
from tqdm import tqdm

from microcoder_jax import checkpoint, config_lib, heldout, multihost, provenance
from microcoder_jax import metrics as metrics_lib
from microcoder_jax import rollout as rollout_lib
from microcoder_jax import sharding
from microcoder_jax import update as update_lib
from microcoder_jax.config_lib import ConfigError
from microcoder_jax.data import datasets, prompts, tiny_tokenizer
from microcoder_jax.evaluator import Evaluator
from microcoder_jax.models import hf_io
from microcoder_jax.models import (KVCache, from_pretrained, get_preset, init_model,
                                   save_pretrained)
from microcoder_jax.rl import batch as batch_lib
from microcoder_jax.rl.schedule import StagedSchedule
from microcoder_jax.sampling import Sampler
from microcoder_jax.sampling.sampler import bucket_length
from microcoder_jax.sampling.temperature import TemperatureController, choose_by_target

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Checkpoints, metrics, plots, export.")
log = logging.getLogger("microcoder_jax.train")


def sampler_row_cap(c, model_cfg, mesh, prompt_len: int, max_response_length: int,
                    group: int) -> int:
  """Rows per sampler call: `rollout.chunk_rows`, else what the per-device
  KV-cache budget `rollout.cache_memory_gib` holds for responses of up to
  `max_response_length` tokens, in whole groups of `group` rows (0: no cap).

  The cache of one row takes 2·L·S·K·H·bytes (S = prompt bucket + L_max);
  rows are sharded over the batch axes, so a device holds rows / shards.
  """
  r = c.rollout
  if r.chunk_rows:
    rows = r.chunk_rows
  elif r.cache_memory_gib:
    per_row = KVCache.bytes_per_row(model_cfg, bucket_length(prompt_len) + max_response_length)
    shards = mesh.shape["data"] * mesh.shape["fsdp"]
    rows = int(r.cache_memory_gib * 2**30 * shards // per_row)
    if rows < group:
      raise ConfigError(
          f"rollout.cache_memory_gib={r.cache_memory_gib} holds {rows} rows of "
          f"{per_row / 2**20:.0f} MiB cache each; a group needs {group}")
  else:
    return 0
  return max(group, rows - rows % group)


def enable_compilation_cache(directory: str) -> None:
  """XLA's persistent compilation cache in `directory` (every program of the
  run, however quick to compile), unless JAX_COMPILATION_CACHE_DIR is set or
  `directory` is empty. On the CPU demo a second run's first step takes
  2.3-2.7 s instead of 7.5 s."""
  if not directory or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def resolve_sources(c) -> dict[str, str]:
  """Local directories of `model.init_from` and `model.tokenizer` (HF repo ids
  are fetched once, here, before any other work; an unreachable id fails in
  seconds with a `CheckpointError` naming it)."""
  out = {}
  for key in ("init_from", "tokenizer"):
    name = c.model[key]
    out[key] = name if name in ("", "bundled") else hf_io.resolve_checkpoint(name)
  return out


def load_tokenizer(c, sources):
  name = sources["tokenizer"] or sources["init_from"]
  if name in ("", "bundled"):
    return tiny_tokenizer.load()
  import transformers  # pylint: disable=g-import-not-at-top
  return transformers.AutoTokenizer.from_pretrained(name)


def encode_all(tokenizer, problems, c):
  """Prompt ids per problem; problems whose prompt is too long are dropped."""
  kept, ids = prompts.encode_problems(
      tokenizer, problems, system=c.data.system_prompt or None,
      chat_template_kwargs=dict(c.data.chat_template_kwargs),
      max_prompt_length=c.data.max_prompt_length)
  if len(kept) < len(problems):
    log.warning("dropped %d problems with prompts over %d tokens",
                len(problems) - len(kept), c.data.max_prompt_length)
  if not kept:
    raise ConfigError(f"no problem fits data.max_prompt_length={c.data.max_prompt_length}")
  return kept, ids




def warn_replicated_rows(c, objective, mesh) -> None:
  rows = c.ppo_mini_batch_size * objective.group_size
  shards = mesh.shape["data"] * mesh.shape["fsdp"]
  if rows % shards or min(c.micro_batch_size, rows) % shards:
    log.warning("micro_batch_size=%d is not a multiple of the %d batch shards "
                "(data x fsdp): some devices will compute replicated rows",
                c.micro_batch_size, shards)


def build_policy(c, tokenizer, mesh, init_dir: str = ""):
  """The policy: from `init_dir` (`model.init_from`, resolved to a local
  directory) or a random init."""
  options = dict(attention=c.model.attention, remat=c.model.remat,
                 scan_layers=c.model.scan_layers)
  if init_dir:
    model = from_pretrained(init_dir, dtype=c.model.dtype,
                            param_dtype=c.model.param_dtype, mesh=mesh, **options)
  else:
    overrides = dict(dtype=c.model.dtype, param_dtype=c.model.param_dtype, **options)
    if c.model.preset == "tiny":
      overrides["vocab_size"] = len(tokenizer)
    model = init_model(get_preset(c.model.preset, **overrides), seed=c.seed, mesh=mesh)
  if len(tokenizer) > model.cfg.vocab_size:
    raise ConfigError(f"tokenizer has {len(tokenizer)} tokens but the model's "
                      f"vocabulary is {model.cfg.vocab_size}")
  return model


def write_run_files(workdir: str, c, model, tokenizer) -> None:
  """What rebuilding the policy from the workdir needs (`benchmark`, export)."""
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(c.to_json_best_effort(indent=2))
  with open(os.path.join(workdir, "model_config.json"), "w") as f:
    json.dump(model.cfg.to_hf(), f, indent=2)
  tokenizer.save_pretrained(os.path.join(workdir, "tokenizer"))


def prng_streams(key: jax.Array) -> dict[str, jax.Array]:
  """Independent streams: rollout sampling, CTM draws U_i and `auto`
  temperature selection; each is folded with the RL step (and the rollout
  stream with the round). Stream `heldout.STREAM` (2) is the held-out
  evaluation's (`heldout.sample_key`, shared with the benchmark CLI)."""
  return {name: jax.random.fold_in(key, i)
          for i, name in enumerate(("rollout", "ctm", None, "select")) if name}


def load_data(c, tokenizer):
  """(prompt ids by training problem id, the training iterator, held-out
  problems, their prompt ids)."""
  train_problems, train_ids = encode_all(tokenizer, datasets.load_dataset(c.data.train), c)
  prompt_of = {p.id: x for p, x in zip(train_problems, train_ids)}
  data_iter = datasets.ProblemIterator(train_problems, seed=c.data.shuffle_seed)
  eval_problems, eval_ids = [], []
  if c.data.eval:
    eval_problems, eval_ids = encode_all(tokenizer, datasets.load_dataset(c.data.eval), c)
    if c.eval.max_problems:
      eval_problems = eval_problems[:c.eval.max_problems]
      eval_ids = eval_ids[:c.eval.max_problems]
  return prompt_of, data_iter, eval_problems, eval_ids


def init_train_state(c, params, mesh):
  """(optimizer, TrainState, parameter shardings, state shardings)."""
  optimizer = update_lib.make_optimizer(
      c.optim.lr, warmup_steps=c.optim.warmup_steps, weight_decay=c.optim.weight_decay,
      grad_clip=c.optim.grad_clip, b1=c.optim.b1, b2=c.optim.b2)
  param_sharding = sharding.state_shardings(params, mesh)
  state_sharding = update_lib.train_state_shardings(param_sharding, optimizer, params, mesh)
  with sharding.use_mesh(mesh):
    state = update_lib.TrainState(
        params, jax.jit(optimizer.init, out_shardings=state_sharding.opt_state)(params),
        jax.device_put(jnp.zeros((), jnp.int32), state_sharding.optimizer_updates))
  return optimizer, state, param_sharding, state_sharding


def run_state(state, data_iter, controller, key) -> dict:
  """The checkpoint's JSON `run` item (the RL step is added on save)."""
  return {"optimizer_updates": int(state.optimizer_updates),
          "data": data_iter.state_dict(), "temperature": controller.state_dict(),
          "prng_impl": str(jax.random.key_impl(key)),
          "prng_key_data": np.asarray(jax.random.key_data(key)).tolist()}


def resume(ckpt, state, data_iter, controller):
  """Restores the latest checkpoint; returns (state, base PRNG key, RL step)."""
  state, run = ckpt.restore(state)
  data_iter.load_state_dict(run["data"])
  controller.load_state_dict(run["temperature"])
  key = jax.random.wrap_key_data(jnp.asarray(run["prng_key_data"], jnp.uint32),
                                 impl=run["prng_impl"])
  log.info("resumed from %s at RL step %d (%d optimizer updates)", ckpt.directory,
           run["rl_step"], run["optimizer_updates"])
  return state, key, int(run["rl_step"])


def jit_programs(c, objective, graphdef, optimizer, mesh, param_sharding, state_sharding,
                 group: int):
  """The jitted update (one PPO mini-batch) and the log-prob recomputes of a
  step's rows: log π_θold (None when not needed) and log π_ref (None when β = 0).

  log π_θold skips the first mini-batch: its update runs with θ_old itself
  and reads log π_θold off its own forward (`update.update_step`).
  """
  g = objective.group_size
  rows, rows_per_update = c.rollout.num_groups * g, c.ppo_mini_batch_size * g
  update_cfg = update_lib.UpdateConfig.from_objective(
      objective, micro_batch_size=c.micro_batch_size,
      logprob_chunk=c.logprob_chunk or None, compute_entropy=c.log_entropy,
      prompt_group=group)
  update = update_lib.jit_update_step(graphdef, optimizer, update_cfg, mesh=mesh,
                                      state_sharding=state_sharding, rows=rows_per_update)
  recompute = functools.partial(
      update_lib.jit_recompute, graphdef, mesh=mesh, param_sharding=param_sharding,
      rows=rows, micro_batch_size=c.micro_batch_size, chunk=c.logprob_chunk or None,
      group=group)
  old = None
  if objective.old_logps == "trainer" and rows > rows_per_update:
    old = recompute(first_row=rows_per_update)
  ref = recompute() if objective.uses_reference else None
  return update, old, ref


def prompt_group(c, g: int, rows_per_update: int, mesh) -> int:
  """G when the update shares each prompt's forward among its G rows
  (`share_prompts`), else 0. Sharing needs whole groups in a micro-batch,
  and saves work only when every batch device holds whole groups: a
  prompt row that the devices must split gets replicated instead."""
  if not c.share_prompts:
    return 0
  micro = min(c.micro_batch_size, rows_per_update)
  shards = mesh.shape["data"] * mesh.shape["fsdp"]
  if micro % g:
    log.warning("share_prompts is off: micro_batch_size=%d is not a multiple of "
                "rl.group_size=%d", c.micro_batch_size, g)
    return 0
  if (micro // g) % shards:
    log.info("share_prompts is off: %d prompts per micro-batch over %d batch devices",
             micro // g, shards)
    return 0
  return g


def fill_logprobs(batch, recompute_old, recompute_ref, params, ref_params):
  """log π_θold of the rows after the first mini-batch (`jit_programs`) and
  log π_ref (β > 0); the largest |trainer − sampler| log-prob among the
  recomputed rows as `rollout/logp_diff_max`."""
  metrics = {}
  if recompute_old is not None:
    old = recompute_old(params, batch)
    # Reduced on device: the arrays may span processes.
    metrics["rollout/logp_diff_max"] = float(update_lib.logp_diff_max(
        old, batch.old_logp_NxT, batch.loss_mask_NxT))
    batch = batch.replace(old_logp_NxT=old)
  if recompute_ref is not None:
    batch = batch.replace(ref_logp_NxT=recompute_ref(ref_params, batch))
  return batch, metrics


def probe_prompts(problems, prompt_of, n: int, seed: int):
  """(problems, prompt ids) of `n` training prompts for temperature selection:
  a fixed seeded sample, drawn without touching the training order."""
  order = np.random.default_rng(seed).permutation(len(problems))[:n]
  chosen = [problems[i] for i in sorted(order)]
  return chosen, [prompt_of[p.id] for p in chosen]


def select_auto_temperature(c, objective, controller, stage, rl_step, sampler, params,
                            evaluator, tokenizer, probe, chunk_rows, key, workdir) -> None:
  """Resolves an `auto` T stage: the lowest candidate T whose diversity on the
  probe prompts (current policy, G responses each, L_max(step)) reaches
  `diversity.target`; logged, written to the workdir, and checkpointed with
  the controller."""
  from microcoder_jax import select_temperature  # pylint: disable=g-import-not-at-top
  g = objective.group_size
  candidates = [float(t) for t in c.diversity.candidates.split(",")]
  measurements = select_temperature.measure_temperatures(
      sampler, params, evaluator, tokenizer, *probe, temperatures=candidates,
      group_size=g, max_new_tokens=objective.max_response_length_at(rl_step), rng=key,
      ngram=c.diversity.ngram, top_p=c.rollout.top_p,
      max_chunk_prompts=chunk_rows // g if chunk_rows else 0)
  choice = choose_by_target(measurements, c.diversity.target)
  controller.resolve(stage, choice, measurements)
  log.info("auto temperature at RL step %d:\n%s\nchosen T = %g: %s", rl_step,
           select_temperature.format_table(measurements, choice), choice.temperature,
           choice.reason)
  if workdir:
    select_temperature.write_outputs(
        os.path.join(workdir, f"temperature_stage{stage}"), measurements, choice,
        c.diversity.target, {"rl_step": rl_step, "stage": stage})


def main(argv):
  del argv
  c, workdir = FLAGS.config, FLAGS.workdir
  if not workdir:
    raise app.UsageError("--workdir is required")
  absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every file at INFO
  logging.getLogger("microcoder_jax").setLevel(logging.INFO)
  if c.multihost or os.environ.get("JAX_COORDINATOR_ADDRESS"):
    multihost.init_distributed()
  objective = config_lib.check(c)
  enable_compilation_cache(c.compilation_cache_dir)
  os.makedirs(workdir, exist_ok=True)
  accepted_changes = provenance.check_resume(workdir, c)
  sources = resolve_sources(c)
  is_main = jax.process_index() == 0
  g = objective.group_size

  # ----------------------------------------------------------------- mesh
  mesh = sharding.make_mesh(c.mesh)  # MeshError names the bad axis
  warn_replicated_rows(c, objective, mesh)
  log.info("mesh %s over %d %s devices", dict(mesh.shape), mesh.size,
           jax.devices()[0].platform)

  # ----------------------------------------------------------------- data
  tokenizer = load_tokenizer(c, sources)
  stop_ids = prompts.stop_token_ids(tokenizer, tuple(c.rollout.stop_tokens))
  prompt_of, data_iter, eval_problems, eval_ids = load_data(c, tokenizer)
  probe = probe_prompts(data_iter.problems, prompt_of, c.diversity.probe_prompts,
                        c.data.shuffle_seed)

  # ------------------------------------------------ policy, optimizer, state
  # Resume precedence: a checkpoint in workdir > init_from > random init.
  model = build_policy(c, tokenizer, mesh, sources["init_from"])
  if is_main:
    write_run_files(workdir, c, model, tokenizer)
  graphdef, params = nnx.split(model)
  ref_params = jax.tree.map(lambda x: x.copy(), params) if objective.uses_reference else None
  lr = update_lib.lr_schedule(c.optim.lr, c.optim.warmup_steps)
  optimizer, state, param_sharding, state_sharding = init_train_state(c, params, mesh)
  controller = TemperatureController(
      objective.temperature_schedule, alert_floor=c.diversity.alert_floor,
      alert_patience=c.diversity.alert_patience)
  key = jax.random.key(c.seed)

  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"),
                                 every=c.checkpoint.every, keep=c.checkpoint.keep)
  start = 0
  if ckpt.latest_step() is not None:
    state, key, start = resume(ckpt, state, data_iter, controller)
    if is_main:
      provenance.record(workdir, accepted_changes, start)
  streams = prng_streams(key)

  # ------------------------------------------------------------- programs
  rows_per_update = c.ppo_mini_batch_size * g
  rollout_rows = c.rollout.num_groups * g
  trainer_old_logps = objective.old_logps == "trainer"
  group = prompt_group(c, g, rows_per_update, mesh)
  update, recompute_old, recompute_ref = jit_programs(
      c, objective, graphdef, optimizer, mesh, param_sharding, state_sharding, group)
  rows_sharding = update_lib.batch_sharding(mesh, rollout_rows)
  sampler = Sampler(model, stop_ids=stop_ids, pad_id=tokenizer.pad_token_id or 0,
                    mesh=mesh)
  evaluator = Evaluator(workers=c.evaluator.workers or None, timeout_s=c.evaluator.timeout_s,
                        memory_mb=c.evaluator.memory_mb)
  writer = metrics_lib.MetricWriter(workdir, enabled=is_main,
                                    resume_step=start if start else None)
  timer = metrics_lib.PhaseTimer()
  max_prompt_len = max(map(len, list(prompt_of.values()) + eval_ids))
  eval_length = StagedSchedule.parse(c.eval.max_response_length)
  chunk_rows = sampler_row_cap(c, model.cfg, mesh, max_prompt_len,
                               objective.longest_response_length, g)
  eval_rows = sampler_row_cap(c, model.cfg, mesh, max_prompt_len,
                              int(max(eval_length.values)), c.eval.k)
  if chunk_rows and chunk_rows < rollout_rows:
    log.info("rollout sampled in calls of at most %d rows (held-out: %d rows)",
             chunk_rows, eval_rows)

  def run_heldout(rl_step):
    log.info("held-out evaluation at RL step %d: %d problems x %d samples", rl_step,
             len(eval_problems), c.eval.k)
    m, table, samples, results = heldout.evaluate_policy(
        sampler, state.params, evaluator, tokenizer, eval_problems, eval_ids,
        heldout.Settings.from_config(c, rl_step), rng=heldout.sample_key(key, rl_step),
        batch_prompts=eval_rows // c.eval.k if eval_rows else 64)
    if is_main:
      with open(os.path.join(workdir, f"heldout_{rl_step:06d}.jsonl"), "w") as f:
        for sample, r in zip(samples, results):
          f.write(json.dumps({**sample, **r.to_json()}) + "\n")
    return m, table

  def sample_round(problems, temperature, length, key):
    prompt_ids = [prompt_of[p.id] for p in problems]
    with timer("rollout"):
      judged = rollout_lib.sample_and_judge(
          sampler, state.params, evaluator, tokenizer, problems, prompt_ids,
          group_size=g, max_new_tokens=length, temperature=temperature,
          top_p=c.rollout.top_p, top_k=c.rollout.top_k, rng=key, chunks=c.rollout.chunks,
          max_chunk_prompts=chunk_rows // g if chunk_rows else 0)
    for phase, secs in judged.seconds.items():
      timer.seconds[phase] = timer.seconds.get(phase, 0.0) + secs
    return judged

  # ------------------------------------------------------------------ loop
  if eval_problems and start == 0:
    m, _ = run_heldout(0)
    writer.write(0, m)
  bar = tqdm(range(start, c.total_steps), initial=start, total=c.total_steps,
             desc="train", disable=not is_main, dynamic_ncols=True)
  with sharding.use_mesh(mesh):
    for rl_step in bar:
      step_start = time.perf_counter()
      stage = controller.pending_stage(rl_step)
      if stage is not None:  # an `auto` stage starts: choose T from diversity
        with timer("select_temperature"):
          select_auto_temperature(c, objective, controller, stage, rl_step, sampler,
                                  state.params, evaluator, tokenizer, probe, chunk_rows,
                                  jax.random.fold_in(streams["select"], rl_step),
                                  workdir if is_main else None)
      temperature = controller.temperature(rl_step)
      length = objective.max_response_length_at(rl_step)
      step_key = jax.random.fold_in(streams["rollout"], rl_step)
      collected = rollout_lib.collect_groups(
          lambda r: sample_round(data_iter.next_batch(c.rollout.num_groups), temperature,
                                 length, jax.random.fold_in(step_key, r)),
          num_groups=c.rollout.num_groups, group_size=g,
          dynamic_sampling=objective.dynamic_sampling, max_rounds=objective.max_gen_batches)

      with timer("score"):
        host_batch, scored = rollout_lib.train_batch(
            collected, objective, max_response_length=length,
            key=jax.random.fold_in(streams["ctm"], rl_step),
            diversity_ngram=c.diversity.ngram)
        tokens_per_update = batch_lib.mini_batch_tokens(host_batch, rows_per_update)
        batch_lib.check_prompt_groups(host_batch, group)
        # Every process holds the same host batch; it becomes one global
        # array with rows over the batch axes.
        batch = multihost.to_device(host_batch, rows_sharding)
      with timer("logprobs"):
        batch, step_metrics = fill_logprobs(batch, recompute_old, recompute_ref,
                                            state.params, ref_params)
      with timer("update"):
        first = int(state.optimizer_updates)
        state, per_update, skipped = update_lib.apply_mini_batches(
            state, batch, update, rows_per_update=rows_per_update,
            tokens_per_mini_batch=tokens_per_update, first_is_current=trainer_old_logps)
        per_update = jax.device_get(per_update)
        # The first update compared the sampler's log-probs with its own.
        sampler_diff = max((float(m.pop("sampler_logp_diff_max")) for m in per_update),
                           default=0.0)
        update_metrics = metric_means(per_update)
        if trainer_old_logps:
          step_metrics["rollout/logp_diff_max"] = max(
              step_metrics.get("rollout/logp_diff_max", 0.0), sampler_diff)
        # The rate the step's updates used (update u steps with lr(u)).
        lr_now = float(np.mean([lr(u) for u in range(first, first + max(len(per_update), 1))]))

      metrics_lib.check_finite(rl_step + 1, update_metrics)
      step_metrics.update(
          scored.metrics, **{f"actor/{k}": v for k, v in update_metrics.items()},
          **controller.update(rl_step, scored.metrics["rollout/diversity"]), **timer.pop())
      step_metrics.update({
          "rollout/max_response_length": length, "actor/lr": lr_now,
          "actor/updates_skipped": float(skipped),
          "actor/optimizer_updates": float(int(state.optimizer_updates)),
          "perf/rollout_tokens_per_s": float(collected.judged.rollout.lengths_N.sum())
                                       / max(step_metrics["time/rollout_s"], 1e-9)})
      if eval_problems and ((rl_step + 1) % c.eval.every == 0 or rl_step + 1 == c.total_steps):
        with timer("heldout"):
          m, _ = run_heldout(rl_step + 1)
        step_metrics.update(m, **timer.pop())
        if is_main:
          bar.write(f"RL step {rl_step + 1}: held-out pass@1 "
                    f"{100 * m['heldout/pass@1']:.1f}%")
      step_metrics.update(metrics_lib.memory_metrics(),
                          **{"time/step_s": time.perf_counter() - step_start})
      writer.write(rl_step + 1, step_metrics)
      bar.set_postfix(reward=f"{step_metrics['reward/mean']:.3f}",
                      len=f"{step_metrics['rollout/length_mean']:.0f}",
                      T=f"{temperature:.2f}",
                      diversity=f"{step_metrics['rollout/diversity']:.2f}")
      if ckpt.should_save(rl_step + 1) or rl_step + 1 == c.total_steps:
        ckpt.save(rl_step + 1, state, run_state(state, data_iter, controller, key))
  ckpt.close()
  evaluator.close()
  writer.close()
  finish(c, workdir, writer.path, graphdef, state.params, tokenizer, stop_ids, is_main)


def metric_means(dicts) -> dict[str, float]:
  """Per-key means over the updates of a step (empty: no update ran)."""
  keys = dicts[0].keys() if dicts else ()
  return {k: float(np.mean([float(d[k]) for d in dicts])) for k in keys}


def finish(c, workdir, metrics_path, graphdef, params, tokenizer, stop_ids,
           is_main) -> None:
  """Plots, the report and the exported policy."""
  if is_main and os.path.exists(metrics_path):
    rows = metrics_lib.read_metrics(metrics_path)
    png = metrics_lib.plot_run(rows, os.path.join(workdir, "curves.png"))
    report = metrics_lib.write_report(rows, os.path.join(workdir, "report.md"), c, png,
                                      extra=provenance.report_lines(
                                          provenance.history(workdir)))
    summary = metrics_lib.heldout_summary(rows, k=c.eval.k, temperature=c.eval.temperature)
    print(f"\n{summary}\nplot: {png}\nreport: {report}" if summary
          else f"\nplot: {png}\nreport: {report}")
  if c.export:
    # The export prompts as training did: its default chat template adds the
    # format instruction, system prompt and template arguments of this run.
    export_tokenizer = prompts.with_training_template(
        tokenizer, system=c.data.system_prompt or None,
        chat_template_kwargs=dict(c.data.chat_template_kwargs)) if is_main else None
    save_pretrained(nnx.merge(graphdef, params), os.path.join(workdir, "export"),
                    tokenizer=export_tokenizer, stop_ids=stop_ids)
    if is_main:
      print(f"exported policy: {os.path.join(workdir, 'export')}")


def run(argv):
  """`main`, with a user's mistakes (bad config, unreachable model, a workdir
  of another run) reported as one message instead of a traceback."""
  try:
    main(argv)
  except (ConfigError, hf_io.CheckpointError, provenance.ProvenanceError,
          checkpoint.CheckpointFormatError, sharding.MeshError) as e:
    raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(run)
