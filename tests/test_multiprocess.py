"""Two JAX processes x 4 CPU devices == one process x 8 devices, for a train step.

The closest this machine gets to a TPU pod: `jax.distributed` on a localhost
coordinator, gloo CPU collectives, one global ("fsdp", "tensor") = (4, 2) mesh
over 8 devices. Each run goes through the trainer's own pieces: the sharded
sampler, `rollout.sample_and_judge` (each process judges only its own rows
with the real Evaluator; verdicts are exchanged), `rollout.train_batch`
(`rl.score`, `rl.batch.assemble`), `multihost.to_device`, the old-log-prob
recompute, the jitted `update_step`, and then the held-out evaluation
`heldout.evaluate_policy` with the updated parameters.

The file is also the worker: `python test_multiprocess.py WORKER_ARGS...`.
"""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TIMEOUT_S = 240

# Four copies of one task with distinct ids; the tokenizer wrapper below turns
# sampled token rows into a passing, a failing or a code-free completion, so the
# rewards (and hence the update) depend on every row's verdict landing on the
# right row after the exchange.
PROBLEMS = [{"id": f"echo_{i}", "question": "Print the input line.",
             "tests": [{"input": f"{i} {j}\n", "output": f"{i} {j}\n"} for j in range(2)]}
            for i in range(4)]
PASS = "```python\nprint(input())\n```"
FAIL = "```python\nprint(1 // 0)\n```"


class _VerdictTokenizer:
  """Wraps the tiny tokenizer: decode maps a token row to PASS / FAIL / text."""

  def __init__(self, tok):
    self.tok = tok

  def decode(self, ids, skip_special_tokens=True):
    h = int(hashlib.sha256(np.asarray(ids, np.int64).tobytes()).hexdigest(), 16) % 3
    return (PASS, FAIL, self.tok.decode(ids, skip_special_tokens=skip_special_tokens))[h]

  def __getattr__(self, name):  # eos_token, pad_token, ...
    return getattr(self.tok, name)


def worker(process_id: int, num_processes: int, port: int, out: str) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  if num_processes > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"localhost:{port}",
                               num_processes=num_processes, process_id=process_id,
                               initialization_timeout=120)
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax
  from flax import nnx
  from jax.experimental import multihost_utils
  from microcoder_jax import config_lib, heldout as heldout_lib, multihost, sharding
  from microcoder_jax import rollout as rollout_lib, update as update_lib
  from microcoder_jax.data import tiny_tokenizer
  from microcoder_jax.evaluator import Evaluator, parse_problem
  from microcoder_jax.rl import batch as batch_lib
  from microcoder_jax.models import get_preset, init_model
  from microcoder_jax.sampling import Sampler

  assert jax.device_count() == 8 and jax.process_count() == num_processes
  mesh = sharding.make_mesh({"fsdp": 4, "tensor": 2})
  tok = tiny_tokenizer.load()
  problems = [parse_problem(p) for p in PROBLEMS]
  # The last prompt falls into a longer length bucket than the others, so the
  # two rollout chunks have different prompt widths.
  prompt_ids = [tok.encode(f"problem {i}: print the input line." * (1 + 5 * (i == 3)))
                for i in range(4)]
  model = init_model(get_preset("tiny", vocab_size=len(tok)), seed=0, mesh=mesh)
  graphdef, params = nnx.split(model)
  optimizer = optax.sgd(1.0)  # deltas are the gradients (see test_train.py)
  objective = config_lib.check(config_lib.base_config("microcoder_grpo", "runlocal"))
  update_cfg = update_lib.UpdateConfig.from_objective(
      objective, micro_batch_size=8, logprob_chunk=64, compute_entropy=True)
  param_sharding = sharding.state_shardings(params, mesh)
  state_sharding = update_lib.train_state_shardings(param_sharding, optimizer, params, mesh)
  update = update_lib.jit_update_step(graphdef, optimizer, update_cfg, mesh=mesh,
                                      state_sharding=state_sharding, rows=8)
  # As the trainer: log π_θold of the second mini-batch only; the first
  # update reads it off its own forward.
  recompute = update_lib.jit_recompute(graphdef, mesh=mesh, param_sharding=param_sharding,
                                       rows=16, micro_batch_size=8, chunk=64, first_row=8)
  sampler = Sampler(model, stop_ids=(tok.eos_token_id,), pad_id=tok.pad_token_id or 0,
                    mesh=mesh)
  key = jax.random.key(0)
  with Evaluator(workers=1, timeout_s=2.0, memory_mb=512) as evaluator, \
       sharding.use_mesh(mesh):
    state = update_lib.TrainState(
        params, jax.jit(optimizer.init, out_shardings=state_sharding.opt_state)(params),
        jax.device_put(jnp.zeros((), jnp.int32), state_sharding.optimizer_updates))
    judged = rollout_lib.sample_and_judge(
        sampler, state.params, evaluator, _VerdictTokenizer(tok), problems, prompt_ids,
        group_size=4, max_new_tokens=12, temperature=1.2, rng=key, chunks=2)
    collected = rollout_lib.Collected(judged, np.arange(16), np.ones(16, bool), 1)
    batch, scored = rollout_lib.train_batch(
        collected, objective.replace(max_response_length="12"), max_response_length=12,
        key=jax.random.fold_in(key, 1), diversity_ngram=4)
    multi = jax.process_count() > 1
    tokens_per_update = batch_lib.mini_batch_tokens(batch, 8)
    batch = multihost.to_device(batch, update_lib.batch_sharding(mesh, 16))
    old = recompute(state.params, batch)
    logp_diff = float(jnp.max(jnp.where(batch.loss_mask_NxT > 0,
                                        jnp.abs(old - batch.old_logp_NxT), 0.0)))
    batch = batch.replace(old_logp_NxT=old)
    # Two mini-batches of 8 rows, sliced from the global batch as the trainer does.
    state, per_update, skipped = update_lib.apply_mini_batches(
        state, batch, update, rows_per_update=8, tokens_per_mini_batch=tokens_per_update,
        first_is_current=True)
    assert len(per_update) == 2 and skipped == 0
    metrics = jax.device_get(per_update[-1])
    logp_diff = max(logp_diff, float(per_update[0]["sampler_logp_diff_max"]))
    # Held-out evaluation with the updated policy (as the trainer runs it).
    heldout, _, _, heldout_results = heldout_lib.evaluate_policy(
        sampler, state.params, evaluator, _VerdictTokenizer(tok), problems, prompt_ids,
        heldout_lib.Settings(k=2, max_new_tokens=8, temperature=1.0, top_p=1.0),
        rng=jax.random.fold_in(key, 2), batch_prompts=2)
  flat = {}
  for path, var in nnx.to_flat_state(state.params):
    value = var.get_value()
    if not value.is_fully_addressable:
      value = multihost_utils.process_allgather(value, tiled=True)
    flat["param/" + "/".join(map(str, path))] = np.asarray(value)
  np.savez(out, **flat, tokens=judged.rollout.tokens_NxT, rewards=scored.rewards_N,
           advantages=scored.advantages_N,
           verdicts=np.array([r.verdict for r in judged.results]),
           samples=np.array([r.sample for r in judged.results]),
           heldout_verdicts=np.array([r.verdict for r in heldout_results]),
           heldout_pass=heldout["heldout/pass@1"],
           loss=float(metrics["loss"]), grad_norm=float(metrics["grad_norm"]),
           logp_diff=logp_diff)
  if multi:  # nobody leaves before everyone has written
    multihost_utils.sync_global_devices("done")


# -------------------------------------------------------------------- test
def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _spawn(args, devices: int, log):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONHASHSEED="0",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  return subprocess.Popen([sys.executable, __file__, *map(str, args)], cwd=ROOT, env=env,
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_two_processes_match_one_process(tmp_path):
  port = _free_port()
  runs = {"single": ([0, 1, 0], 8), "p0": ([0, 2, port], 4), "p1": ([1, 2, port], 4)}
  procs, logs = {}, {}
  deadline = time.monotonic() + TIMEOUT_S
  try:
    for name, (args, devices) in runs.items():
      logs[name] = open(tmp_path / f"{name}.log", "w")
      procs[name] = _spawn([*args, tmp_path / f"{name}.npz"], devices, logs[name])
    # Wait for all; stop early if one fails (its partner would block in a collective).
    while any(p.poll() is None for p in procs.values()):
      failed = [n for n, p in procs.items() if p.poll() not in (None, 0)]
      assert not failed and time.monotonic() < deadline, \
          f"{failed or 'not finished'} after {time.monotonic() - deadline + TIMEOUT_S:.0f} s"
      time.sleep(0.2)
  except AssertionError as e:
    out = {n: (tmp_path / f"{n}.log").read_text()[-3000:] for n in procs}
    raise AssertionError(f"{e}\n" + "\n".join(f"--- {n}:\n{t}" for n, t in out.items())) from None
  finally:
    for p in procs.values():  # our own children and their process groups only
      if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    for f in logs.values():
      f.close()
  for name, p in procs.items():
    assert p.returncode == 0, f"{name} failed:\n{(tmp_path / f'{name}.log').read_text()[-4000:]}"

  want = np.load(tmp_path / "single.npz")
  verdicts = set(want["verdicts"].tolist())
  assert {"pass", "runtime_error"} <= verdicts, verdicts  # mixed rewards, real judging
  assert float(want["grad_norm"]) > 0
  for name in ("p0", "p1"):
    got = np.load(tmp_path / f"{name}.npz")
    assert set(got.files) == set(want.files)
    for k in ("tokens", "verdicts", "samples", "rewards", "heldout_verdicts", "heldout_pass"):
      np.testing.assert_array_equal(got[k], want[k], err_msg=f"{name} {k}")
    np.testing.assert_allclose(got["advantages"], want["advantages"], rtol=1e-6, atol=1e-7)
    for k in ("loss", "grad_norm", "logp_diff"):
      np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-7, err_msg=f"{name} {k}")
    for k in want.files:
      if k.startswith("param/"):
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-6, err_msg=f"{name} {k}")


if __name__ == "__main__":
  worker(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
