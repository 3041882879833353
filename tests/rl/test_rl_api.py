"""Public API: no recompiles on scalar changes, presets, import isolation."""
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from microcoder_jax import rl

N, T = 4, 6


def test_policy_loss_traces_once_across_scalars():

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(logp, old, adv, mask, ref, clip_low, clip_high, dual, kl_coef):
    return rl.policy_loss(logp, old, adv, mask, clip_low=clip_low,
                          clip_high=clip_high, dual_clip=dual,
                          ref_logp_NxT=ref, kl_coef=kl_coef)

  rng = np.random.default_rng(0)
  arrays = [rng.normal(size=(N, T)), rng.normal(size=(N, T)),
            rng.normal(size=(N,)), np.ones((N, T)), rng.normal(size=(N, T))]
  arrays = [jnp.asarray(x, jnp.float32) for x in arrays]
  losses = [step(*arrays, *scalars) for scalars in
            [(0.2, 0.28, 3.0, 0.0), (0.1, 0.2, 2.0, 0.001),
             (0.3, 0.3, 10.0, 0.5)]]
  assert len({float(loss) for loss, _ in losses}) == 3


def test_logprobs_traces_once_across_temperatures():
  rng = np.random.default_rng(0)
  hidden = jnp.asarray(rng.normal(size=(N, T, 8)), jnp.float32)
  unembed = jnp.asarray(rng.normal(size=(8, 11)), jnp.float32)
  targets = jnp.asarray(rng.integers(0, 11, (N, T)))

  @jax.jit
  @chex.assert_max_traces(n=1)
  def logp(temperature):
    return rl.token_logprobs(hidden, unembed, targets,
                             temperature=temperature, chunk_size=5,
                             vocab_chunk_size=4)

  outs = [logp(jnp.full((N,), t, jnp.float32)) for t in (0.6, 1.2, 1.8)]
  outs.append(logp(jnp.array([0.6, 1.2, 1.8, 1.0], jnp.float32)))
  assert not np.allclose(outs[0], outs[1])


def test_masks_and_advantages_trace_once_across_scalars():

  @jax.jit
  @chex.assert_max_traces(n=1)
  def ctm_and_adv(key, lengths, rewards, max_length, rho, eps):
    mask = rl.conditional_truncation_mask(
        key, lengths_N=lengths, max_response_length=max_length,
        non_incorrect_N=jnp.ones_like(lengths, bool),
        repeating_N=jnp.zeros_like(lengths, bool), rho=rho)
    return mask, rl.group_advantages(rewards, 2, eps=eps)

  lengths = jnp.array([3, 8, 8, 5])
  rewards = jnp.array([1.0, 0.0, 1.0, 1.0])
  key = jax.random.key(0)
  mask, adv = ctm_and_adv(key, lengths, rewards, 8, 1.0, 1e-6)
  np.testing.assert_array_equal(mask, [False, True, True, False])
  np.testing.assert_allclose(adv, [1.0, -1.0, 0.0, 0.0], rtol=1e-5)
  mask, adv = ctm_and_adv(key, lengths, rewards, 5, 0.0, 1.0)
  assert not mask.any()
  np.testing.assert_allclose(adv, [1 / 3, -1 / 3, 0.0, 0.0], rtol=1e-5)


def test_objectives():
  assert set(rl.OBJECTIVES) == {"grpo", "dapo", "dapo_base", "mask_all", "microcoder_grpo"}
  grpo = rl.get_objective("grpo")
  assert (grpo.kl_coef, grpo.kl_estimator) == (0.001, "k3") and grpo.uses_reference
  assert (grpo.clip_eps_low, grpo.clip_eps_high) == (0.2, 0.2)
  dapo = rl.get_objective("dapo")
  assert dapo.kl_coef == 0.0 and dapo.clip_eps_high == 0.28
  assert dapo.dynamic_sampling and dapo.overlong_buffer_frac == 0.25
  mc = rl.get_objective("microcoder_grpo")
  assert (mc.rho, mc.repeat_window, mc.temperature_at(0)) == (0.1, 128, 1.2)
  assert mc.aggregation == "token-mean" and mc.kl_coef == 0.0 and mc.uses_ctm
  assert rl.get_objective("mask_all").rho == 1.0
  assert not rl.get_objective("dapo_base").uses_ctm
  logp = jnp.zeros((2, 3))
  loss, _ = rl.policy_loss(logp, logp, jnp.ones(2), jnp.ones((2, 3)),
                           **mc.loss_kwargs())
  np.testing.assert_allclose(loss, -1.0)
  with pytest.raises(ValueError, match="unknown objective"):
    rl.get_objective("ppo")


def test_staged_schedules_of_an_objective():
  o = rl.Objective(temperature="0.6,1.2@140", max_response_length="6144,8192@260")
  assert [o.temperature_at(s) for s in (0, 139, 140)] == [0.6, 0.6, 1.2]
  assert [o.max_response_length_at(s) for s in (0, 259, 260)] == [6144, 6144, 8192]
  assert o.longest_response_length == 8192
  assert rl.Objective(temperature=0.8).temperature_at(5) == 0.8


@pytest.mark.parametrize("field,value", [
    ("rho", 1.5), ("rho", -0.1), ("rho", float("nan")), ("group_size", 1),
    ("group_size", 0), ("temperature", "0"), ("temperature", "1.2,0@5"),
    ("temperature", "ramp:0.6,1.2@10"), ("max_response_length", "0"),
    ("max_response_length", "100.5"), ("clip_eps_low", 1.0), ("clip_ratio_c", 1.0),
    ("kl_coef", -1.0), ("kl_estimator", "k4"), ("aggregation", "sum"),
    ("non_incorrect", "pass"), ("ctm_apply_to", "mask"), ("old_logps", "ref"),
    ("repeat_window", 0), ("repeat_mode", "fuzzy"), ("adv_estimator", "ppo"),
    ("overlong_buffer_frac", 0.0), ("max_gen_batches", 0)])
def test_invalid_objective_fields_are_named(field, value):
  with pytest.raises(rl.ObjectiveError, match=field) as e:
    rl.Objective(name="bad", **{field: value})
  assert e.value.field == field


def test_group_size_one_is_fine_without_a_group_baseline():
  name = "test_absolute"
  rl.register_advantage(name)(lambda r, v, *, eps, std_ddof: r)
  try:
    assert rl.Objective(adv_estimator=name, group_size=1).group_size == 1
  finally:
    del rl.ADVANTAGE_FNS[name]


def test_import_does_not_pull_models_sampler_or_evaluator():
  code = ("import sys, microcoder_jax.rl; "
          "bad = [m for m in sys.modules if m.startswith("
          "('microcoder_jax.models', 'microcoder_jax.evaluator', "
          "'microcoder_jax.sampling', 'flax', 'transformers', 'torch'))]; "
          "assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True, env=None)


def test_rl_modules_import_nothing_outside_rl():
  """By inspection of every `import` in microcoder_jax/rl: only the standard
  library, array libraries and other rl modules."""
  import ast
  import pathlib
  allowed_third_party = {"jax", "numpy", "chex"}
  root = pathlib.Path(rl.__file__).parent
  offenders = []
  for path in root.glob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
      names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
               [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
      for name in names:
        top = name.split(".")[0]
        if top == "microcoder_jax":
          ok = name == "microcoder_jax.rl" or name.startswith("microcoder_jax.rl.")
        else:
          ok = top in allowed_third_party or top in sys.stdlib_module_names
        if not ok:
          offenders.append(f"{path.name}: {name}")
  assert not offenders, offenders
