"""Trainer: the demo end to end, kill-and-resume, sharded update step, configs."""

import dataclasses
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from microcoder_jax import config_lib, sharding
from microcoder_jax import update as update_lib
from microcoder_jax.models import get_preset, init_model
from microcoder_jax.rl import get_objective
from microcoder_jax.rl import batch as batch_lib
from microcoder_jax.rl.batch import TrainBatch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The demo config (warm-started tiny policy, real evaluator), made small for CI.
_SMALL = ("--config.rollout.num_groups=4", "--config.rl.group_size=4",
          "--config.ppo_mini_batch_size=2", "--config.micro_batch_size=8",
          "--config.rl.max_response_length=48", "--config.eval.max_problems=6",
          "--config.eval.k=2", "--config.eval.max_response_length=48")


def _train(workdir, config_arg, *overrides):
  env = dict(os.environ, XLA_FLAGS="", PYTHONHASHSEED="0")  # one device: faster
  cmd = [sys.executable, "-m", "microcoder_jax.train",
         f"--config={ROOT}/configs/demo.py:{config_arg}", f"--workdir={workdir}", *_SMALL,
         f"--config.compilation_cache_dir={os.path.dirname(workdir)}/xla", *overrides]
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(l) for l in f]


def _deterministic(row):
  return {k: v for k, v in row.items() if not k.startswith(("time/", "perf/"))}


def test_demo_runs_end_to_end_and_resumes_identically(tmp_path):
  # Uninterrupted: 3 steps.
  full = tmp_path / "full"
  proc = _train(full, "steps=3", "--config.checkpoint.every=1", "--config.eval.every=3")
  assert "held-out pass@1 (avg@2, T = 0.6): " in proc.stdout and " -> best " in proc.stdout
  rows = _metrics(full)
  assert [r["step"] for r in rows] == [0, 1, 2, 3]  # step 0: held-out baseline
  train_rows = [r for r in rows if "reward/mean" in r]
  assert [r["step"] for r in train_rows] == [1, 2, 3]
  for key in ("reward/mean", "rollout/length_mean", "rollout/diversity", "actor/grad_norm",
              "sampling/temperature", "ctm/masked_frac", "time/update_s", "time/step_s",
              "perf/peak_host_gib"):
    assert key in train_rows[-1]
  assert any("heldout/pass@1" in r for r in rows)
  # The warm-started policy solves some problems, so the update sees real signal.
  assert any(r["reward/mean"] > 0 for r in train_rows)
  assert any(r["actor/grad_norm"] > 0 for r in train_rows)
  for name in ("curves.png", "report.md", "export/model.safetensors", "export/config.json",
               "export/tokenizer.json"):
    assert os.path.exists(full / name), name
  assert sorted(os.listdir(full / "checkpoints")) == ["1", "2", "3"]
  # The compiled sampler and update are in the persistent cache (later runs reuse them).
  cached = os.listdir(tmp_path / "xla")
  assert any(n.startswith("jit__generate_impl") for n in cached), cached
  base = full / "export" / "additional_chat_templates"  # the original template, named
  assert oct(base.stat().st_mode)[-3:] == "755" and (base / "base.jinja").exists()

  # Benchmark CLI on the HF export, then on the training workdir with the
  # run's own held-out settings: it scores the checkpoint exactly as the run did.
  def bench(*args):
    return subprocess.run(
        [sys.executable, "-m", "microcoder_jax.benchmark", *map(str, args),
         "--out-dir", str(tmp_path / "bench")],
        cwd=ROOT, env=dict(os.environ, XLA_FLAGS=""), capture_output=True, text=True,
        timeout=300)

  out = bench("--model", full / "export", "--problems", "bundled:synthetic_heldout",
              "--samples-per-problem", "2", "--max-new-tokens", "16", "--max-problems", "5")
  assert out.returncode == 0, out.stderr[-3000:]
  assert "| All |" in out.stdout and "overall pass@1" in out.stdout
  with open(tmp_path / "bench" / "results.jsonl") as f:
    results = [json.loads(l) for l in f]
  assert len(results) == 10 and {"id", "sample", "verdict", "passed"} <= set(results[0])
  out = bench("--model", full, "--step", "3")
  assert out.returncode == 0, out.stderr[-3000:]
  with open(full / "heldout_000003.jsonl") as f:
    in_run = [json.loads(l) for l in f]
  with open(tmp_path / "bench" / "samples.jsonl") as f:
    samples = [json.loads(l) for l in f]
  with open(tmp_path / "bench" / "results.jsonl") as f:
    verdicts = [json.loads(l)["verdict"] for l in f]
  assert [r["completion"] for r in in_run] == [s["completion"] for s in samples]
  assert [r["verdict"] for r in in_run] == verdicts
  held3 = next(r["heldout/pass@1"] for r in rows if r["step"] == 3 and "heldout/pass@1" in r)
  assert f"overall pass@1: {100 * held3:.2f}%" in out.stdout
  out = bench("--model", full, "--step", "7")  # a step that was never saved
  assert out.returncode != 0 and "saved steps: 1, 2, 3" in out.stderr, out.stderr[-2000:]

  # Interrupted after step 1, then resumed to step 3 in a new process.
  part = tmp_path / "part"
  _train(part, "steps=1", "--config.checkpoint.every=1", "--config.eval.every=3")
  with open(part / "metrics.jsonl", "a") as f:  # written, then crashed before saving
    f.write(json.dumps({"step": 2, "reward/mean": 123.0}) + "\n")
  _train(part, "steps=3", "--config.checkpoint.every=1", "--config.eval.every=3")
  assert [r["step"] for r in _metrics(part)] == [0, 1, 2, 3]  # each step once
  resumed = [r for r in _metrics(part) if "reward/mean" in r]
  assert [r["step"] for r in resumed] == [1, 2, 3] and resumed[1]["reward/mean"] != 123.0
  assert _deterministic(resumed[-1]) == pytest.approx(_deterministic(train_rows[-1]), rel=1e-6)
  from safetensors.numpy import load_file
  a, b = load_file(full / "export/model.safetensors"), load_file(part / "export/model.safetensors")
  for k in a:
    np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7, err_msg=k)

  # Resuming with another objective is refused, naming the keys, before any
  # work; with allow_config_change it continues and the report records it.
  def train(config_arg, *extra):
    return subprocess.run(
        [sys.executable, "-m", "microcoder_jax.train",
         f"--config={ROOT}/configs/demo.py:{config_arg}", f"--workdir={part}", *_SMALL, *extra],
        cwd=ROOT, env=dict(os.environ, XLA_FLAGS=""), capture_output=True, text=True,
        timeout=300)

  proc = train("steps=3,objective=dapo")
  assert proc.returncode != 0
  assert "rl.name: 'microcoder_grpo' (recorded) -> 'dapo' (now)" in proc.stderr, proc.stderr
  assert "Traceback" not in proc.stderr
  proc = train("steps=3,rho=0.3", "--config.allow_config_change=True")
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = (part / "report.md").read_text()
  assert "RL step 3: `rl.rho` 0.1 -> 0.3" in report, report

  # The policy alone, restored from the checkpoint without any optimizer.
  from microcoder_jax import benchmark
  from microcoder_jax.models import from_pretrained
  mesh = sharding.make_mesh({"fsdp": 1}, devices=jax.devices()[:1])
  restored, _ = benchmark.load_policy(str(part), dtype=None, mesh=mesh)
  exported = from_pretrained(str(part / "export"), mesh=mesh)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7),
               nnx.state(restored, nnx.Param), nnx.state(exported, nnx.Param))


def test_unreachable_model_id_fails_fast_with_one_message(tmp_path):
  env = dict(os.environ, XLA_FLAGS="", HF_HUB_OFFLINE="1")
  proc = subprocess.run(
      [sys.executable, "-m", "microcoder_jax.train",
       f"--config={ROOT}/configs/demo.py:init_from=no-such-org/no-such-model",
       f"--workdir={tmp_path}"], cwd=ROOT, env=env, capture_output=True, text=True,
      timeout=120)
  assert proc.returncode != 0
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "'no-such-org/no-such-model'" in errors[0], proc.stderr
  assert "neither a local directory nor reachable" in errors[0]
  assert "Traceback" not in proc.stderr


def _random_batch(cfg, n=8, p=5, t=6, seed=0):
  rng = np.random.default_rng(seed)
  prompt = rng.integers(0, cfg.vocab_size, (n, p))
  resp = rng.integers(0, cfg.vocab_size, (n, t))
  lengths = rng.integers(1, t + 1, n)
  resp_mask = np.arange(t)[None] < lengths[:, None]
  pmask = np.ones((n, p), bool)
  pmask[::2, :2] = False
  return TrainBatch(
      input_ids_NxL=jnp.asarray(np.concatenate([prompt, resp], 1)),
      attention_mask_NxL=jnp.asarray(np.concatenate([pmask, resp_mask], 1)),
      targets_NxT=jnp.asarray(resp), loss_mask_NxT=jnp.asarray(resp_mask, jnp.float32),
      advantages_N=jnp.asarray(rng.normal(size=n), jnp.float32),
      old_logp_NxT=jnp.asarray(-6.3 + 0.1 * rng.normal(size=(n, t)), jnp.float32),
      ref_logp_NxT=jnp.zeros((n, t), jnp.float32),
      temperature_N=jnp.full((n,), 1.2, jnp.float32))


def _update_cfg(micro, chunk):
  return update_lib.UpdateConfig.from_objective(
      get_objective("microcoder_grpo"), micro_batch_size=micro, logprob_chunk=chunk,
      compute_entropy=True)


def _one_update(model, batch, mesh=None, micro=4):
  """One update with plain SGD, so parameter deltas are the gradients themselves
  (Adam's g / (|g| + eps) would amplify round-off in near-zero gradients)."""
  graphdef, params = nnx.split(model)
  opt = optax.sgd(1.0)
  cfg = _update_cfg(micro, 16)
  fn = jax.jit(lambda s, b: update_lib.update_step(s, b, graphdef=graphdef, optimizer=opt,
                                                  cfg=cfg))
  if mesh is not None:
    params = jax.device_put(params, sharding.state_shardings(params, mesh))
  with sharding.use_mesh(mesh) if mesh is not None else nnx.use_eager_sharding(False):
    state = update_lib.TrainState(params, jax.jit(opt.init)(params), jnp.zeros((), jnp.int32))
    state, metrics = fn(state, batch)
  return state, metrics


def test_sharded_update_equals_one_device():
  model = init_model(get_preset("tiny", vocab_size=64), seed=0)
  batch = _random_batch(model.cfg)
  want, m1 = _one_update(model, batch)
  got, m2 = _one_update(model, batch, mesh=sharding.make_mesh({"fsdp": 4, "tensor": 2}))
  assert float(m1["grad_norm"]) > 0
  for (path, a), (_, b) in zip(nnx.to_flat_state(want.params), nnx.to_flat_state(got.params)):
    np.testing.assert_allclose(np.asarray(b[...]), np.asarray(a[...]), atol=1e-6, err_msg=str(path))
  assert float(m2["loss"]) == pytest.approx(float(m1["loss"]), rel=1e-5)


def test_gradient_accumulation_reproduces_full_batch():
  model = init_model(get_preset("tiny", vocab_size=64), seed=1)
  batch = _random_batch(model.cfg, seed=3)
  a, ma = _one_update(model, batch, micro=8)
  b, mb = _one_update(model, batch, micro=2)
  assert float(ma["loss"]) == pytest.approx(float(mb["loss"]), rel=1e-5)
  assert float(ma["grad_norm"]) == pytest.approx(float(mb["grad_norm"]), rel=1e-4)


def test_update_with_remat_equals_update_without():
  base = init_model(get_preset("tiny", vocab_size=64), seed=2)
  graphdef, params = nnx.split(base)
  batch = _random_batch(base.cfg, seed=5)
  results = []
  for remat in ("none", "full", "dots_saveable"):
    cfg = base.cfg.replace(remat=remat, attention="blockwise", attention_block_q=4,
                           attention_block_kv=4)
    model = nnx.merge(nnx.graphdef(init_model(cfg)), params)
    results.append(_one_update(model, batch)[0].params)
  for other in results[1:]:
    for (path, a), (_, b) in zip(nnx.to_flat_state(results[0]), nnx.to_flat_state(other)):
      a, b = np.asarray(a[...]), np.asarray(b[...])
      rel = np.abs(a - b).max() / max(np.abs(a).max(), 1e-12)
      assert rel <= 1e-6, (path, rel)


def _sharded_recompute(graphdef, params, batch, **kwargs):
  """`jit_recompute` over an fsdp 4 x tensor 2 mesh, as a NumPy array."""
  mesh = sharding.make_mesh({"fsdp": 4, "tensor": 2})
  fn = update_lib.jit_recompute(graphdef, mesh=mesh, rows=batch.targets_NxT.shape[0],
                                param_sharding=sharding.state_shardings(params, mesh),
                                chunk=16, **kwargs)
  with sharding.use_mesh(mesh):
    return np.asarray(fn(params, batch))


def test_micro_batched_recompute_equals_one_shot():
  model = init_model(get_preset("tiny", vocab_size=64), seed=3)
  graphdef, params = nnx.split(model)
  batch = _random_batch(model.cfg, n=12, seed=6)
  want = np.asarray(jax.jit(lambda p, b: update_lib.sequence_logprobs(graphdef, p, b, 16))(
      params, batch))
  for micro in (4, 5, 12):  # 5: rows padded to a multiple of the micro-batch
    got = _sharded_recompute(graphdef, params, batch, micro_batch_size=micro)
    np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"micro={micro}")


def test_recompute_from_first_row_keeps_earlier_rows():
  model = init_model(get_preset("tiny", vocab_size=64), seed=3)
  graphdef, params = nnx.split(model)
  batch = _random_batch(model.cfg, n=12, seed=6)
  full = np.asarray(jax.jit(lambda p, b: update_lib.sequence_logprobs(graphdef, p, b, 16))(
      params, batch))
  got = _sharded_recompute(graphdef, params, batch, micro_batch_size=4, first_row=4)
  np.testing.assert_array_equal(got[:4], np.asarray(batch.old_logp_NxT)[:4])
  np.testing.assert_allclose(got[4:], full[4:], atol=1e-5)


def test_on_policy_update_reads_old_logps_off_its_own_forward():
  """old_is_current: the same update as with recomputed log π_θold, whatever
  the batch holds; the batch's (sampler) log-probs only feed the metric."""
  model = init_model(get_preset("tiny", vocab_size=64), seed=4)
  graphdef, params = nnx.split(model)
  batch = _random_batch(model.cfg, seed=7)
  old = jax.jit(lambda p, b: update_lib.sequence_logprobs(graphdef, p, b, 16))(params, batch)
  opt = optax.sgd(1.0)
  fn = jax.jit(lambda s, b, cur: update_lib.update_step(
      s, b, cur, graphdef=graphdef, optimizer=opt, cfg=_update_cfg(4, 16)))
  state = update_lib.TrainState(params, opt.init(params), jnp.zeros((), jnp.int32))
  want, m_want = fn(state, batch.replace(old_logp_NxT=old), False)
  got, m_got = fn(state, batch, True)
  for (path, a), (_, b) in zip(nnx.to_flat_state(want.params), nnx.to_flat_state(got.params)):
    np.testing.assert_allclose(np.asarray(b[...]), np.asarray(a[...]), atol=1e-6,
                               err_msg=str(path))
  assert float(m_got["loss"]) == pytest.approx(float(m_want["loss"]), rel=1e-5, abs=1e-7)
  mask = np.asarray(batch.loss_mask_NxT) > 0
  diff = np.abs(np.asarray(old) - np.asarray(batch.old_logp_NxT))[mask].max()
  assert float(m_got["sampler_logp_diff_max"]) == pytest.approx(diff, rel=1e-5)
  assert float(m_want["sampler_logp_diff_max"]) == 0.0


def test_logp_diff_max_is_the_largest_loss_token_difference():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 5, 7)).astype(np.float32)
  mask = (rng.random((5, 7)) < 0.5).astype(np.float32)
  update_lib.logp_diff_max.clear_cache()
  want = np.abs(a.astype(np.float64) - b)[mask > 0].max()
  assert float(update_lib.logp_diff_max(a, b, mask)) == pytest.approx(want, rel=1e-6)
  assert float(update_lib.logp_diff_max(a, b, np.zeros_like(mask))) == 0.0
  update_lib.logp_diff_max(b, a, mask)
  assert update_lib.logp_diff_max._cache_size() == 1  # pylint: disable=protected-access


def _grouped(batch, g):
  """Rows in groups of g with one prompt each (the first row's)."""
  p = batch.input_ids_NxL.shape[1] - batch.targets_NxT.shape[1]
  share = lambda x: x.at[:, :p].set(jnp.repeat(x[::g, :p], g, axis=0))
  return batch.replace(input_ids_NxL=share(batch.input_ids_NxL),
                       attention_mask_NxL=share(batch.attention_mask_NxL))


def test_prompt_sharing_update_equals_plain_update():
  model = init_model(get_preset("tiny", vocab_size=64), seed=5)
  graphdef, params = nnx.split(model)
  batch = _grouped(_random_batch(model.cfg, n=16, seed=8), 4)
  batch_lib.check_prompt_groups(batch, 4)
  opt = optax.sgd(1.0)
  results = []
  for group, micro in ((0, 8), (4, 8)):  # 8 rows: 2 micro-batches of 2 groups
    cfg = dataclasses.replace(_update_cfg(micro, 16), prompt_group=group)
    fn = jax.jit(lambda s, b, cfg=cfg: update_lib.update_step(s, b, graphdef=graphdef,
                                                              optimizer=opt, cfg=cfg))
    state = update_lib.TrainState(params, opt.init(params), jnp.zeros((), jnp.int32))
    results.append(fn(state, batch))
  (want, m_want), others = results[0], results[1:]
  assert float(m_want["grad_norm"]) > 0
  for got, m_got in others:
    for (path, a), (_, b) in zip(nnx.to_flat_state(want.params), nnx.to_flat_state(got.params)):
      np.testing.assert_allclose(np.asarray(b[...]), np.asarray(a[...]), atol=2e-6,
                                 err_msg=str(path))
    for k in ("loss", "entropy", "ratio_mean"):
      assert float(m_got[k]) == pytest.approx(float(m_want[k]), rel=1e-5, abs=1e-7), k
  recompute = lambda group: _sharded_recompute(graphdef, params, batch, micro_batch_size=8,
                                               first_row=4, group=group)
  np.testing.assert_allclose(recompute(4), recompute(0), atol=1e-5)


def test_prompt_groups_are_checked():
  model_cfg = get_preset("tiny", vocab_size=64)
  batch = _random_batch(model_cfg, n=8, seed=1)
  batch_lib.check_prompt_groups(batch, 0)
  with pytest.raises(ValueError, match="groups of 4"):
    batch_lib.check_prompt_groups(batch, 4)
  with pytest.raises(ValueError, match="micro-batches of 6"):
    update_lib.check_prompt_group(12, 6, 4)


def test_recompute_compiles_once():
  model = init_model(get_preset("tiny", vocab_size=64), seed=0)
  graphdef, params = nnx.split(model)
  traces = []

  def fn(p, b):
    traces.append(1)
    return update_lib.recompute_logprobs(graphdef, p, b, micro_batch_size=4, chunk=16)

  recompute = jax.jit(fn)
  for seed in range(3):
    recompute(params, _random_batch(model.cfg, seed=seed))
  assert len(traces) == 1


def test_update_step_compiles_once():
  model = init_model(get_preset("tiny", vocab_size=64), seed=0)
  graphdef, params = nnx.split(model)
  opt = update_lib.make_optimizer(1e-3)
  traces = []

  def fn(s, b):
    traces.append(1)
    return update_lib.update_step(s, b, graphdef=graphdef, optimizer=opt,
                                cfg=_update_cfg(4, 1024))

  update = jax.jit(fn, donate_argnums=0)
  state = update_lib.TrainState(params, opt.init(params), jnp.zeros((), jnp.int32))
  for seed in range(3):
    state, _ = update(state, _random_batch(model.cfg, seed=seed))
  assert len(traces) == 1 and int(state.optimizer_updates) == 3


def _load_config(path, arg=None):
  spec = importlib.util.spec_from_file_location("cfg", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))))
def test_every_config_resolves_and_builds_abstractly(path):
  c = _load_config(path)
  objective = config_lib.check(c)
  cfg = get_preset(c.model.preset, dtype=c.model.dtype, param_dtype=c.model.param_dtype)
  abstract = nnx.eval_shape(lambda: init_model(cfg))
  params = nnx.state(abstract)
  opt_state = jax.eval_shape(update_lib.make_optimizer(c.optim.lr).init, params)
  assert jax.tree.leaves(opt_state)
  assert c.ppo_mini_batch_size * objective.group_size % c.micro_batch_size == 0


def test_rollout_chunk_rows_from_the_cache_budget():
  from microcoder_jax import train
  from microcoder_jax.models import KVCache
  c = _load_config(os.path.join(ROOT, "configs", "microcoder_grpo.py"),
                   "max_response_length=8192")
  c.unlock()
  cfg = get_preset("qwen3_1p7b")
  mesh = sharding.make_mesh({"fsdp": 8})
  per_row = KVCache.bytes_per_row(cfg, 2048 + 8192)  # prompt bucket + L_max
  c.rollout.cache_memory_gib = 8.0
  cap = lambda length=8192, group=8: train.sampler_row_cap(c, cfg, mesh, 1500, length, group)
  rows = cap()
  assert rows % 8 == 0
  assert rows * per_row / 8 <= 8 * 2**30 < (rows + 8) * per_row / 8
  staged = config_lib.check(c).replace(max_response_length="4096,8192@100")
  assert cap(staged.longest_response_length) == rows  # the longest stage counts
  assert cap(4096) > rows and cap(group=4) % 4 == 0
  c.rollout.chunk_rows = 24
  assert cap() == 24
  c.rollout.chunk_rows, c.rollout.cache_memory_gib = 0, 0.0
  assert cap() == 0  # no cap
  c.rollout.cache_memory_gib = 0.5
  with pytest.raises(config_lib.ConfigError, match="cache_memory_gib=0.5"):
    cap()


_BAD = [  # (key, value, what the message must name)
    ("ppo_mini_batch_size", 48, "ppo_mini_batch_size=48"),
    ("model.attention", "flash", "model.attention='flash'"),
    ("model.remat", "sometimes", "model.remat='sometimes'"),
    ("rl.temperature", "ramp:0.6,1.2@100", "allow_ramp"),
    ("rl.temperature", "0", "rl.temperature"),
    ("rl.temperature", "0.6,-1@10", "rl.temperature"),
    ("rl.rho", 1.5, "rl.rho"),
    ("rl.rho", -0.1, "rl.rho"),
    ("rl.group_size", 1, "rl.group_size"),
    ("rl.non_incorrect", "pass_ony", "rl.non_incorrect"),
    ("rl.ctm_apply_to", "loss", "rl.ctm_apply_to"),
    ("rl.aggregation", "token-sum", "rl.aggregation"),
    ("rl.max_response_length", "4096,8192", "rl.max_response_length"),
    ("optim.lr", 0.0, "optim.lr"),
    ("optim.lr", -1e-6, "optim.lr"),
    ("eval.every", 0, "eval.every"),
    ("rollout.num_groups", 0, "rollout.num_groups"),
    ("diversity.ngram", 0, "diversity.ngram"),
]


@pytest.mark.parametrize("key,value,message", _BAD)
def test_invalid_configs_fail_before_any_work(key, value, message):
  c = _load_config(os.path.join(ROOT, "configs", "microcoder_grpo.py"),
                   "eval=data/heldout.jsonl")
  c.unlock()
  section, _, name = key.rpartition(".")
  (c[section] if section else c)[name] = value
  with pytest.raises(config_lib.ConfigError, match=re.escape(message)):
    config_lib.check(c)


def test_unknown_keys_and_arguments_fail_by_name():
  from microcoder_jax.sharding import MeshError
  c = _load_config(os.path.join(ROOT, "configs", "microcoder_grpo.py"))
  c.unlock()
  c.rollout.chunkrows = 3
  with pytest.raises(config_lib.ConfigError, match="rollout.chunkrows"):
    config_lib.check(c)
  del c.rollout["chunkrows"]
  c.rl.ctm = {"rho": 0.2}
  with pytest.raises(config_lib.ConfigError, match="rl.ctm"):
    config_lib.check(c)
  del c.rl["ctm"]
  c.mesh.fsdp, c.mesh.tensor = 3, 1
  with pytest.raises(MeshError, match="3"):
    config_lib.check(c)
  with pytest.raises(config_lib.ConfigError, match="qwen9"):
    _load_config(os.path.join(ROOT, "configs", "grpo.py"), "model=qwen9")
  with pytest.raises(config_lib.ConfigError, match="max_len"):
    _load_config(os.path.join(ROOT, "configs", "grpo.py"), "max_len=8192")
  for arg in ("runlocal,train=data/x.jsonl", "eval=data/y.jsonl,runlocal"):
    with pytest.raises(config_lib.ConfigError, match="runlocal"):
      _load_config(os.path.join(ROOT, "configs", "grpo.py"), arg)


def test_rho_override_turns_the_mask_on_in_every_config():
  for name in ("grpo", "dapo", "microcoder_grpo"):
    c = _load_config(os.path.join(ROOT, "configs", f"{name}.py"), "rho=0.2")
    assert config_lib.check(c).rho == 0.2
    c = _load_config(os.path.join(ROOT, "configs", f"{name}.py"))
    c.unlock()
    c.rl.rho = 0.3  # as --config.rl.rho=0.3 does
    objective = config_lib.check(c)
    assert objective.uses_ctm and objective.rho == 0.3


def test_every_config_key_is_read():
  """Each leaf key of the base config is read somewhere in the package (as an
  attribute or a string key), so no key silently does nothing."""
  c = config_lib.base_config("microcoder_grpo")
  sources = ""
  for path in glob.glob(os.path.join(ROOT, "microcoder_jax", "**", "*.py"), recursive=True):
    if not path.endswith("config_lib.py"):
      with open(path) as f:
        sources += f.read()
  objective_fields = set(get_objective("grpo").to_dict())
  dead = []
  for key in config_lib._leaves(c):
    section, _, name = key.rpartition(".")
    if section == "rl":
      assert name in objective_fields, key
      found = re.search(rf"objective\.{name}\b|\b{name}=|self\.{name}\b", sources)
    else:
      found = re.search(rf"\.{name}\b|[\"']{name}[\"']", sources)
    if not found:
      dead.append(key)
  assert not dead, f"config keys nothing reads: {dead}"


def test_logged_lr_is_the_scheduled_rate_the_optimizer_uses():
  lr = update_lib.lr_schedule(1e-3, warmup_steps=4)
  assert [float(lr(u)) for u in (0, 2, 4, 9)] == pytest.approx([0.0, 5e-4, 1e-3, 1e-3])
  opt = update_lib.make_optimizer(1e-3, warmup_steps=4, weight_decay=0.0)
  params = {"w": jnp.ones(3)}
  state = opt.init(params)
  grads = {"w": jnp.ones(3)}
  steps = []
  for _ in range(5):  # Adam's first steps move each weight by about lr(u)
    updates, state = opt.update(grads, state, params)
    steps.append(float(-updates["w"][0]))
  assert steps == pytest.approx([float(lr(u)) for u in range(5)], rel=1e-3, abs=1e-9)


def test_auto_temperature_is_chosen_once_and_survives_resume(tmp_path):
  wd = tmp_path / "auto"
  args = ("--config.rl.temperature=auto", "--config.diversity.candidates=0.5,1.5",
          "--config.diversity.probe_prompts=4", "--config.diversity.target=0.2",
          "--config.data.eval=", "--config.checkpoint.every=1", "--config.export=False")
  first = _train(wd, "steps=1", *args)
  assert "auto temperature at RL step 0" in first.stderr
  chosen = json.loads((wd / "temperature_stage0" / "temperature.json").read_text())
  assert chosen["temperature"] in (0.5, 1.5) and len(chosen["measurements"]) == 2
  second = _train(wd, "steps=2", *args)  # a new process resumes from the checkpoint
  assert "auto temperature" not in second.stderr  # not chosen again
  temps = [r["sampling/temperature"] for r in _metrics(wd) if "sampling/temperature" in r]
  assert temps == [chosen["temperature"]] * 2


@pytest.mark.parametrize("spec", ["auto@", "0.6,auto", "-0.5", "ramp:0.6,1.2@10",
                                  "0.6,auto@x"])
def test_invalid_temperature_specs_fail_before_any_work(spec):
  c = _load_config(os.path.join(ROOT, "configs", "demo.py"))
  c.unlock()
  c.rl.temperature = spec
  with pytest.raises(config_lib.ConfigError, match="rl.temperature"):
    config_lib.check(c)
