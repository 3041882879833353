"""Mesh construction, logical rules, sharded init/forward on 8 fake devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from hf_fixtures import hf_logits, save_tiny_hf
from microcoder_jax import sharding
from microcoder_jax.models import from_pretrained, get_preset, init_model

# Golden PartitionSpecs of the tiny model on the default mesh (all 8 devices on
# fsdp) and on fsdp=4 x tensor=2. Decoder blocks are stacked along a leading,
# never-sharded `layers` axis.
_GOLDEN_DEFAULT = {
    "embed_VxD": P("tensor", "fsdp"),
    "final_norm/scale": P(),
    "layers/attn/wq_DxNxH": P(None, "fsdp", "tensor"),
    "layers/attn/wk_DxKxH": P(None, "fsdp", "tensor"),
    "layers/attn/wv_DxKxH": P(None, "fsdp", "tensor"),
    "layers/attn/wo_NxHxD": P(None, "tensor", None, "fsdp"),
    "layers/attn/q_norm/scale": P(),
    "layers/attn/k_norm/scale": P(),
    "layers/input_norm/scale": P(),
    "layers/post_attn_norm/scale": P(),
    "layers/mlp/gate_DxF": P(None, "fsdp", "tensor"),
    "layers/mlp/up_DxF": P(None, "fsdp", "tensor"),
    "layers/mlp/down_FxD": P(None, "tensor", "fsdp"),
}
_GOLDEN_FSDP4_TP2 = {
    "embed_VxD": P("tensor", "fsdp"),
    "layers/attn/wq_DxNxH": P(None, "fsdp", "tensor"),
    "layers/attn/wk_DxKxH": P(None, "fsdp", "tensor"),
    "layers/attn/wo_NxHxD": P(None, "tensor", None, "fsdp"),
    "layers/mlp/gate_DxF": P(None, "fsdp", "tensor"),
    "layers/mlp/down_FxD": P(None, "tensor", "fsdp"),
    "layers/post_attn_norm/scale": P(),
}


def _specs(mesh_axes):
  mesh = sharding.make_mesh(mesh_axes)
  abstract = nnx.eval_shape(lambda: init_model(get_preset("tiny")))
  return sharding.partition_specs(nnx.state(abstract), mesh)


def test_golden_partition_specs_default_mesh():
  assert _specs({"fsdp": -1}) == _GOLDEN_DEFAULT


def test_golden_partition_specs_fsdp_tensor():
  specs = _specs({"fsdp": 4, "tensor": 2})
  for name, want in _GOLDEN_FSDP4_TP2.items():
    assert specs[name] == want, name


def test_mesh_errors_name_the_value():
  with pytest.raises(sharding.MeshError, match="3"):
    sharding.make_mesh({"fsdp": 3, "tensor": 1})
  with pytest.raises(sharding.MeshError, match="fsdp.*-1"):
    sharding.make_mesh({"fsdp": -1, "tensor": -1})
  with pytest.raises(sharding.MeshError, match="expert"):
    sharding.make_mesh({"expert": 2})
  with pytest.raises(sharding.MeshError, match="16"):
    sharding.make_mesh({"data": 2, "fsdp": 8})
  assert sharding.mesh_shape({"data": 2, "fsdp": -1}, 8) == (2, 4, 1)


def test_non_dividing_axes_are_dropped():
  mesh = sharding.make_mesh({"fsdp": 4, "tensor": 2})
  spec = sharding.logical_to_spec(("vocab", "embed"), mesh=mesh, shape=(511, 64))
  assert spec == P(None, "fsdp")
  spec = sharding.logical_to_spec(("act_batch", "act_length"), mesh=mesh, shape=(6, 3))
  assert spec == P("data")  # size-1 data axis kept; fsdp=4 does not divide 6


def _batch():
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 512, (8, 10))
  mask = np.ones((8, 10), bool)
  mask[::3, :4] = False
  return jnp.asarray(ids), jnp.asarray(mask)


def _sharded_logits(model, mesh):
  graphdef, state = nnx.split(model)
  state = jax.device_put(state, sharding.state_shardings(state, mesh))

  @jax.jit
  def fwd(state, ids, mask):
    return nnx.merge(graphdef, state)(ids, attention_mask_BxT=mask)

  with sharding.use_mesh(mesh):
    return np.asarray(fwd(state, *_batch()))


@pytest.mark.parametrize("axes", [{"fsdp": 4, "tensor": 2}, {"fsdp": 8},
                                  {"data": 2, "fsdp": 2, "tensor": 2}])
def test_sharded_forward_equals_one_device(axes):
  cfg = get_preset("tiny", tie_word_embeddings=False)
  model = init_model(cfg, seed=2)
  ids, mask = _batch()
  want = np.asarray(model(ids, attention_mask_BxT=mask))
  got = _sharded_logits(model, sharding.make_mesh(axes))
  np.testing.assert_allclose(got[np.asarray(mask)], want[np.asarray(mask)], atol=1e-5)


def test_sharded_init_matches_and_is_sharded():
  cfg = get_preset("tiny")
  mesh = sharding.make_mesh({"fsdp": 4, "tensor": 2})
  sharded = init_model(cfg, seed=5, mesh=mesh)
  plain = init_model(cfg, seed=5)
  wq = sharded.layers.attn.wq_DxNxH[...]
  assert wq.sharding.spec == P(None, "fsdp", "tensor")
  np.testing.assert_allclose(np.asarray(wq), np.asarray(plain.layers.attn.wq_DxNxH[...]),
                             rtol=1e-6, atol=1e-8)  # same RNG stream, fused vs eager
  sharding.assert_params_sufficiently_sharded(nnx.state(sharded), mesh, min_size=1024)


def test_replicated_params_are_reported():
  mesh = sharding.make_mesh({"fsdp": 8})
  replicate_all = tuple((name, None) for name, _ in sharding.DEFAULT_RULES)
  model = sharding.create_sharded(lambda: init_model(get_preset("tiny")), mesh,
                                  rules=replicate_all)
  with pytest.raises(AssertionError, match="embed_VxD"):
    sharding.assert_params_sufficiently_sharded(nnx.state(model), mesh, min_size=1024)


def test_from_pretrained_on_mesh(tmp_path):
  hf_model = save_tiny_hf("qwen2", tmp_path)
  mesh = sharding.make_mesh({"fsdp": 4, "tensor": 2})
  model = from_pretrained(str(tmp_path), mesh=mesh)
  assert model.layers.mlp.gate_DxF[...].sharding.spec == P(None, "fsdp", "tensor")
  ids = np.random.default_rng(0).integers(0, 256, (8, 6))
  mask = np.ones_like(ids)
  graphdef, state = nnx.split(model)
  with sharding.use_mesh(mesh):
    got = jax.jit(lambda s, i: nnx.merge(graphdef, s)(i))(state, jnp.asarray(ids))
  np.testing.assert_allclose(np.asarray(got), hf_logits(hf_model, ids, mask), atol=1e-4)


def test_cpu_programs_compile_at_llvm_o1():
  """XLA:CPU gets O1 (`compiler_options`); the options are valid XLA flags."""
  mesh = sharding.make_mesh()
  opts = sharding.compiler_options(mesh)
  assert opts == {"xla_backend_optimization_level": 1}
  assert sharding.compiler_options() == opts
  f = jax.jit(lambda x: jnp.sin(x) * 2, compiler_options=opts)
  np.testing.assert_allclose(f(jnp.ones(3)), 2 * np.sin(1.0), rtol=1e-6)
