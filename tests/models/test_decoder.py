"""Decoder: KV-cache decoding, hidden-state path, configs and presets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import transformers
from flax import nnx

from microcoder_jax.models import PRESETS, ModelConfig, get_preset, init_model


@pytest.fixture(scope="module", params=["qwen3", "qwen2", "llama"])
def model(request):
  extra = {"qwen2": dict(qkv_bias=True, qk_norm=False),
           "llama": dict(qk_norm=False, rope_scaling={
               "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
           # YaRN (frequencies and attention scale); qwen2 covers plain RoPE.
           "qwen3": dict(tie_word_embeddings=False, rope_scaling={
               "rope_type": "yarn", "factor": 4.0,
               "original_max_position_embeddings": 16})}[request.param]
  cfg = get_preset("tiny", family=request.param, **extra)
  return init_model(cfg, seed=1)


def _left_padded(vocab, b=3, t=7, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(0, vocab, (b, t))
  mask = np.ones((b, t), bool)
  mask[1, :2] = False
  mask[2, :5] = False
  ids[~mask] = 0
  return jnp.asarray(ids), jnp.asarray(mask)


def test_kv_cache_decoding_equals_full_forward(model):
  """Prefill a left-padded prompt, then feed tokens one by one."""
  ids, mask = _left_padded(model.cfg.vocab_size)
  new = jnp.asarray(np.random.default_rng(1).integers(0, model.cfg.vocab_size, (3, 5)))
  full_ids = jnp.concatenate([ids, new], axis=1)
  full_mask = jnp.concatenate([mask, jnp.ones_like(new, bool)], axis=1)
  full = np.asarray(model(full_ids, attention_mask_BxT=full_mask))

  cache = model.init_cache(batch=3, max_len=16)
  logits, cache = model(ids, attention_mask_BxT=mask, cache=cache)
  m = np.asarray(mask)
  np.testing.assert_allclose(np.asarray(logits)[m], full[:, :7][m], atol=1e-5)
  for step in range(5):
    logits, cache = model(new[:, step:step + 1], cache=cache)
    np.testing.assert_allclose(np.asarray(logits[:, 0]), full[:, 7 + step], atol=1e-5)
  assert int(cache.index) == 12


def test_hidden_states_times_unembedding_are_logits(model):
  ids, mask = _left_padded(model.cfg.vocab_size)
  hidden = model(ids, attention_mask_BxT=mask, return_hidden=True)
  assert hidden.shape == ids.shape + (model.cfg.hidden_size,)
  logits = jnp.einsum("btd,dv->btv", hidden, model.unembedding_DxV())
  np.testing.assert_allclose(np.asarray(logits),
                             np.asarray(model(ids, attention_mask_BxT=mask)), atol=1e-5)


def test_padding_rows_are_finite_and_do_not_leak(model):
  """Changing padded tokens changes nothing at real positions."""
  ids, mask = _left_padded(model.cfg.vocab_size)
  other = jnp.where(mask, ids, (ids + 7) % model.cfg.vocab_size)
  a = np.asarray(model(ids, attention_mask_BxT=mask))
  b = np.asarray(model(other, attention_mask_BxT=mask))
  assert np.isfinite(a).all()
  np.testing.assert_array_equal(a[np.asarray(mask)], b[np.asarray(mask)])


def test_bfloat16_compute_close_to_float32():
  cfg = get_preset("tiny")
  m32 = init_model(cfg, seed=3)
  m16 = init_model(cfg.replace(dtype="bfloat16", param_dtype="bfloat16"), seed=3)
  ids, mask = _left_padded(cfg.vocab_size)
  a = np.asarray(m32(ids, attention_mask_BxT=mask))
  b = np.asarray(m16(ids, attention_mask_BxT=mask))
  assert b.dtype == np.float32  # logits come out in float32
  assert np.abs(a - b)[np.asarray(mask)].max() < 0.05


def test_forward_jits_once():
  model = init_model(get_preset("tiny"))
  graphdef, state = nnx.split(model)
  traces = []

  @jax.jit
  def fwd(state, ids):
    traces.append(1)
    return nnx.merge(graphdef, state)(ids)

  for seed in range(3):
    fwd(state, _left_padded(512, seed=seed)[0])
  assert len(traces) == 1


# Model-card parameter counts (total, non-embedding), in billions.
_PUBLISHED = {
    "qwen3_0p6b": (0.6, 0.44), "qwen3_1p7b": (1.7, 1.4), "qwen3_4b": (4.0, 3.6),
    "qwen3_4b_instruct_2507": (4.0, 3.6), "qwen2p5_coder_1p5b": (1.54, 1.31),
    "qwen2p5_coder_7b": (7.61, 6.53), "ds_r1_distill_llama_8b": (8.03, 6.98),
    "ds_r1_0528_qwen3_8b": (8.2, 6.95),  # Qwen3-8B's model card
}


@pytest.mark.parametrize("name", sorted(_PUBLISHED))
def test_presets_match_published_sizes_and_build_abstractly(name):
  cfg = PRESETS[name]
  total, non_embedding = _PUBLISHED[name]
  embed = cfg.vocab_size * cfg.hidden_size * (1 if cfg.tie_word_embeddings else 2)
  assert abs(cfg.num_params() / 1e9 / total - 1) < 0.02
  assert abs((cfg.num_params() - embed) / 1e9 / non_embedding - 1) < 0.02
  abstract = nnx.eval_shape(lambda: init_model(cfg))
  n = sum(np.prod(v.get_value().shape) for _, v in nnx.to_flat_state(nnx.state(abstract)))
  assert n == cfg.num_params()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_hf_config_round_trip(name):
  cfg = PRESETS[name]
  hf = cfg.to_hf()
  cls = {"qwen2": transformers.Qwen2Config, "qwen3": transformers.Qwen3Config,
         "llama": transformers.LlamaConfig}[cfg.family]
  via_transformers = cls(**hf).to_dict()
  via_transformers["architectures"] = hf["architectures"]
  assert ModelConfig.from_hf(via_transformers) == cfg
  assert ModelConfig.from_hf(hf) == cfg


def test_invalid_configs():
  with pytest.raises(ValueError, match="num_kv_heads=3"):
    get_preset("tiny", num_kv_heads=3)
  with pytest.raises(ValueError, match="rope_scaling type 'dynamic'"):
    get_preset("tiny", rope_scaling={"rope_type": "dynamic", "factor": 4.0})
  with pytest.raises(ValueError, match=r"'yarn' needs \['original_max_position_embeddings'\]"):
    get_preset("tiny", rope_scaling={"rope_type": "yarn", "factor": 4.0})
  with pytest.raises(ValueError, match="not both"):
    get_preset("tiny", rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                     "original_max_position_embeddings": 512,
                                     "attention_factor": 1.0, "attn_factor": 0.9})
  with pytest.raises(ValueError, match="use_sliding_window"):
    ModelConfig.from_hf(dict(PRESETS["qwen3_1p7b"].to_hf(), use_sliding_window=True,
                             sliding_window=4096))
  with pytest.raises(KeyError, match="qwen9"):
    get_preset("qwen9")


# ------------------------------------------------ scan, remat, attention backends
def _grads_and_logits(model, ids, mask):
  """Logits and d(loss)/d(params) for a scalar over real positions."""
  graphdef, params = nnx.split(model)

  def loss(params):
    logits = nnx.merge(graphdef, params)(ids, attention_mask_BxT=mask)
    w = jnp.cos(jnp.arange(logits.shape[-1], dtype=jnp.float32))
    return jnp.sum(logits * w * mask[..., None]) / 100.0, logits

  (_, logits), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
  return np.asarray(logits), grads


@pytest.mark.parametrize("variant", [
    dict(remat="full"), dict(remat="dots_saveable", attention="blockwise"),
    dict(remat="full", attention="blockwise", attention_block_q=3, attention_block_kv=4)])
def test_scanned_remat_model_equals_unscanned_reference(model, variant):
  """Same parameters, scanned + rematerialised (+ blockwise attention) vs an
  unrolled loop with plain attention and no remat: logits, gradients, decode."""
  ref_cfg = model.cfg.replace(scan_layers=False, remat="none", attention="plain")
  graphdef, params = nnx.split(model)
  reference = nnx.merge(nnx.graphdef(init_model(ref_cfg)), params)
  scanned = nnx.merge(nnx.graphdef(init_model(model.cfg.replace(**variant))), params)
  ids, mask = _left_padded(model.cfg.vocab_size, t=11)
  want_logits, want_grads = _grads_and_logits(reference, ids, mask)
  got_logits, got_grads = _grads_and_logits(scanned, ids, mask)
  m = np.asarray(mask)
  np.testing.assert_allclose(got_logits[m], want_logits[m], atol=1e-5)
  for (path, g), (_, w) in zip(nnx.to_flat_state(got_grads), nnx.to_flat_state(want_grads)):
    np.testing.assert_allclose(np.asarray(g.get_value()), np.asarray(w.get_value()),
                               atol=1e-5, rtol=1e-5, err_msg=str(path))
  # KV-cache decoding with the scanned model reproduces the reference forward.
  cache = scanned.init_cache(batch=3, max_len=16)
  logits, cache = scanned(ids[:, :7], attention_mask_BxT=mask[:, :7], cache=cache)
  for step in range(7, 11):
    logits, cache = scanned(ids[:, step:step + 1], cache=cache)
    np.testing.assert_allclose(np.asarray(logits[:, 0]), want_logits[:, step], atol=1e-5)


def test_prefill_hidden_then_last_logits_equal_full_logits(model):
  ids, mask = _left_padded(model.cfg.vocab_size)
  hidden, _ = model(ids, attention_mask_BxT=mask, cache=model.init_cache(3, 8),
                    return_hidden=True)
  np.testing.assert_allclose(np.asarray(model.logits(hidden[:, -1])),
                             np.asarray(model(ids, attention_mask_BxT=mask)[:, -1]), atol=1e-5)


def test_bfloat16_cache_is_stored_as_bits_and_decodes_like_the_forward():
  cfg = get_preset("tiny", dtype="bfloat16", param_dtype="bfloat16")
  m = init_model(cfg, seed=4)
  cache = m.init_cache(batch=3, max_len=12)
  assert cache.k_LxBxSxKxH.dtype == jnp.uint16 and cache.dtype == "bfloat16"
  ids, mask = _left_padded(cfg.vocab_size)
  full = np.asarray(m(ids, attention_mask_BxT=mask))
  logits, cache = m(ids[:, :6], attention_mask_BxT=mask[:, :6], cache=cache)
  logits, cache = m(ids[:, 6:7], cache=cache)
  np.testing.assert_allclose(np.asarray(logits[:, 0]), full[:, 6], atol=0.05)
  assert int(cache.index) == 7
  np.testing.assert_array_equal(np.asarray(cache.tokens_B), np.asarray(mask).sum(1))


def test_runtime_options_are_validated_and_not_exported():
  with pytest.raises(ValueError, match="attention='flash'"):
    get_preset("tiny", attention="flash")
  with pytest.raises(ValueError, match="remat='some'"):
    get_preset("tiny", remat="some")
  cfg = get_preset("tiny", attention="blockwise", remat="full", scan_layers=False)
  assert not {"attention", "remat", "scan_layers"} & set(cfg.to_hf())


def _prompt_groups(u=3, g=4, p=7, t=5, vocab=64, seed=0):
  """U left-padded prompts, G responses each (right-padded)."""
  rng = np.random.default_rng(seed)
  prompt = rng.integers(1, vocab, (u, p))
  pmask = np.ones((u, p), bool)
  pmask[0, :3] = False
  pmask[2, :1] = False
  resp = rng.integers(1, vocab, (u * g, t))
  rmask = np.arange(t)[None] < rng.integers(0, t + 1, u * g)[:, None]
  return prompt, pmask, resp, rmask


@pytest.mark.parametrize("scan,remat,attention", [
    (False, "none", "plain"), (True, "full", "blockwise")])
def test_shared_prefix_hidden_equals_full_forward(scan, remat, attention):
  """Each prompt computed once for its G responses: the same hidden states and
  parameter gradients as G full rows."""
  cfg = get_preset("tiny", vocab_size=64).replace(
      scan_layers=scan, remat=remat, attention=attention, attention_block_q=4,
      attention_block_kv=4)
  graphdef, params = nnx.split(init_model(cfg, seed=0))
  prompt, pmask, resp, rmask = (jnp.asarray(x) for x in _prompt_groups())
  g, p = resp.shape[0] // prompt.shape[0], prompt.shape[1]
  ids = jnp.concatenate([jnp.repeat(prompt, g, 0), resp], 1)
  mask = jnp.concatenate([jnp.repeat(pmask, g, 0), rmask], 1)
  weight = jnp.asarray(np.random.default_rng(1).normal(size=resp.shape + (cfg.hidden_size,)),
                       jnp.float32) * rmask[..., None]
  full = jax.jit(lambda prm: nnx.merge(graphdef, prm)(ids, attention_mask_BxT=mask,
                                                      return_hidden=True)[:, p - 1:-1])
  shared = jax.jit(lambda prm: nnx.merge(graphdef, prm).shared_prefix_hidden(
      prompt, pmask, resp, rmask))
  live = np.array(rmask)
  live[:, 0] = True  # the prompt's last position predicts every row's first token
  np.testing.assert_allclose(np.asarray(shared(params))[live], np.asarray(full(params))[live],
                             atol=1e-5)
  want = jax.jit(jax.grad(lambda prm: jnp.sum(full(prm) * weight)))(params)
  got = jax.jit(jax.grad(lambda prm: jnp.sum(shared(prm) * weight)))(params)
  scale = max(float(jnp.abs(x).max()) for x in jax.tree.leaves(want))
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5 * scale)


def test_shared_prefix_needs_equal_groups(model):
  prompt, pmask, resp, rmask = _prompt_groups(u=3, g=4)
  with pytest.raises(ValueError, match="equal groups"):
    model.shared_prefix_hidden(jnp.asarray(prompt), jnp.asarray(pmask),
                               jnp.asarray(resp[:11]), jnp.asarray(rmask[:11]))
