"""HF parity, export round trip and bad-checkpoint errors."""

import json
import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
import transformers

from hf_fixtures import TINY_HF, hf_logits, save_tiny_hf
from microcoder_jax.models import (CheckpointError, UnsupportedModelError,
                                   from_pretrained, save_pretrained)
from microcoder_jax.models.config import PRESETS, ModelConfig
from microcoder_jax.models.layers import rope_attention_scale, rope_inv_freq


def _batch(vocab=256):
  rng = np.random.default_rng(0)
  ids = rng.integers(0, vocab, (3, 12))
  mask = np.ones((3, 12), np.int32)
  mask[1, :4] = 0  # left padding
  mask[2, :9] = 0
  ids[mask == 0] = 0
  return ids, mask


@pytest.fixture(scope="module", params=sorted(TINY_HF))
def hf_checkpoint(request, tmp_path_factory):
  path = tmp_path_factory.mktemp(request.param)
  model = save_tiny_hf(request.param, path)
  return request.param, str(path), model


def _ours(model, ids, mask):
  return np.asarray(model(jnp.asarray(ids), attention_mask_BxT=jnp.asarray(mask)))


def test_parity_with_transformers(hf_checkpoint):
  family, path, hf_model = hf_checkpoint
  ids, mask = _batch()
  ours = from_pretrained(path)
  assert ours.cfg.family == family
  diff = np.abs(_ours(ours, ids, mask) - hf_logits(hf_model, ids, mask))[mask == 1]
  print(f"{family}: max |logits - HF| = {diff.max():.3g}")
  assert diff.max() <= 1e-4


def test_parity_scanned_remat_blockwise(hf_checkpoint):
  """Run-time options change how the model computes, not what it computes."""
  family, path, hf_model = hf_checkpoint
  ids, mask = _batch()
  ours = from_pretrained(path, remat="full", attention="blockwise",
                         attention_block_q=5, attention_block_kv=4)
  assert ours.cfg.scan_layers
  diff = np.abs(_ours(ours, ids, mask) - hf_logits(hf_model, ids, mask))[mask == 1]
  assert diff.max() <= 1e-4, (family, diff.max())


def test_default_call_unpadded(hf_checkpoint):
  _, path, hf_model = hf_checkpoint
  ids, _ = _batch()
  ours = from_pretrained(path)
  full = np.ones_like(ids)
  np.testing.assert_allclose(np.asarray(ours(jnp.asarray(ids))),
                             hf_logits(hf_model, ids, full), atol=1e-4)


def test_export_round_trip(hf_checkpoint, tmp_path):
  family, path, hf_model = hf_checkpoint
  ids, mask = _batch()
  ours = from_pretrained(path)
  out = str(tmp_path / "export")
  save_pretrained(ours, out)
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(
      out, attn_implementation="eager").float().eval()
  assert type(reloaded) is type(hf_model)
  np.testing.assert_allclose(hf_logits(reloaded, ids, mask)[mask == 1],
                             hf_logits(hf_model, ids, mask)[mask == 1], atol=1e-5)
  again = from_pretrained(out)
  np.testing.assert_array_equal(_ours(again, ids, mask), _ours(ours, ids, mask))


def test_sharded_export_and_bf16(tmp_path):
  hf_model = save_tiny_hf("qwen3", tmp_path / "src", max_shard_size="40KB")
  assert os.path.exists(tmp_path / "src" / "model.safetensors.index.json")
  ours = from_pretrained(str(tmp_path / "src"))
  save_pretrained(ours, str(tmp_path / "out"), max_shard_bytes=60_000,
                  dtype="bfloat16")
  index = json.load(open(tmp_path / "out" / "model.safetensors.index.json"))
  assert len(set(index["weight_map"].values())) > 1
  bf16 = from_pretrained(str(tmp_path / "out"))
  assert bf16.cfg.param_dtype == "bfloat16"
  assert bf16.embed_VxD[...].dtype == jnp.bfloat16
  ids, mask = _batch()
  diff = np.abs(_ours(bf16, ids, mask) - hf_logits(hf_model, ids, mask))[mask == 1]
  assert diff.max() < 0.1  # bfloat16 weights and compute


def test_llama3_scaling_changes_frequencies():
  from microcoder_jax.models.config import ModelConfig
  cfg = ModelConfig.from_hf(dict(TINY_HF["llama"][0](**TINY_HF["llama"][2]).to_dict(),
                                 architectures=["LlamaForCausalLM"]))
  plain = cfg.replace(rope_scaling=None)
  assert not np.allclose(rope_inv_freq(cfg), rope_inv_freq(plain))


# ------------------------------------------------------------------- YaRN
# rope_scaling of a tiny Qwen3 (max_position_embeddings 256, head_dim 24).
_YARN = {
    "default": {"factor": 4.0, "original_max_position_embeddings": 64},
    "betas_untruncated": {"factor": 8.0, "original_max_position_embeddings": 32,
                          "beta_fast": 16.0, "beta_slow": 2.0, "truncate": False},
    "attention_factor": {"factor": 4.0, "original_max_position_embeddings": 64,
                         "attention_factor": 0.9},
    "mscale": {"factor": 4.0, "original_max_position_embeddings": 64, "mscale": 0.707,
               "mscale_all_dim": 1.0},
}


def _save_yarn(monkeypatch, path, rope_scaling):
  """A tiny random Qwen3 with YaRN RoPE, saved at `path`; the weights depend
  only on the seed, not on the RoPE settings."""
  config_cls, model_cls, kwargs = TINY_HF["qwen3"]
  kwargs = dict(kwargs, rope_scaling=dict(rope_type="yarn", **rope_scaling))
  monkeypatch.setitem(TINY_HF, "qwen3_yarn", (config_cls, model_cls, kwargs))
  return save_tiny_hf("qwen3_yarn", path)


def _hf_yarn(hf_config):
  from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
  inv_freq, scale = ROPE_INIT_FUNCTIONS["yarn"](hf_config)
  return inv_freq.numpy(), scale


@pytest.mark.parametrize("variant", sorted(_YARN))
def test_yarn_parity_with_transformers(variant, tmp_path, monkeypatch):
  hf_model = _save_yarn(monkeypatch, tmp_path, _YARN[variant])
  ours = from_pretrained(str(tmp_path))
  inv_freq, scale = _hf_yarn(hf_model.config)
  np.testing.assert_allclose(rope_inv_freq(ours.cfg), inv_freq, rtol=1e-6)
  assert rope_attention_scale(ours.cfg) == pytest.approx(scale, rel=1e-12)
  ids, mask = _batch()
  expected = hf_logits(hf_model, ids, mask)
  diff = np.abs(_ours(ours, ids, mask) - expected)[mask == 1]
  assert diff.max() <= 1e-4, diff.max()
  plain = from_pretrained(str(tmp_path), rope_scaling=None)  # YaRN matters here
  assert np.abs(_ours(plain, ids, mask) - expected)[mask == 1].max() > 1e-3
  if variant == "default":
    save_pretrained(ours, str(tmp_path / "export"))
    assert json.load(open(tmp_path / "export" / "config.json"))["rope_scaling"] == dict(
        rope_type="yarn", **_YARN[variant])
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path / "export"), attn_implementation="eager").float().eval()
    np.testing.assert_allclose(hf_logits(reloaded, ids, mask)[mask == 1],
                               expected[mask == 1], atol=1e-5)


def test_yarn_attn_factor_multiplies_the_yarn_scale(tmp_path, monkeypatch):
  """`attn_factor` (DeepSeek-R1-0528-Qwen3-8B's config) scales YaRN's
  attention factor, as in vLLM and SGLang: such a checkpoint computes what
  transformers computes with `attention_factor` = (0.1 ln 4 + 1) * attn_factor.
  (transformers itself ignores `attn_factor`.)"""
  yarn = _YARN["default"]
  _save_yarn(monkeypatch, tmp_path / "a", dict(yarn, attn_factor=0.8))
  reference = _save_yarn(monkeypatch, tmp_path / "b", dict(
      yarn, attention_factor=0.8 * (0.1 * np.log(4.0) + 1)))
  ours = from_pretrained(str(tmp_path / "a"))
  assert rope_attention_scale(ours.cfg) == pytest.approx(_hf_yarn(reference.config)[1])
  ids, mask = _batch()
  diff = np.abs(_ours(ours, ids, mask) - hf_logits(reference, ids, mask))[mask == 1]
  assert diff.max() <= 1e-4, diff.max()


def test_ds_r1_0528_qwen3_8b_rope():
  """The preset's YaRN: transformers' frequencies; `attn_factor` cancels the
  YaRN scale (1 / (0.1 ln 4 + 1)), so cos and sin are not rescaled."""
  cfg = PRESETS["ds_r1_0528_qwen3_8b"]
  inv_freq, scale = _hf_yarn(transformers.Qwen3Config(**cfg.to_hf()))
  np.testing.assert_allclose(rope_inv_freq(cfg), inv_freq, rtol=1e-6)
  assert scale == pytest.approx(0.1 * np.log(4.0) + 1)
  assert rope_attention_scale(cfg) == pytest.approx(1.0, abs=1e-9)
  # Low frequencies are interpolated by 4, high ones kept.
  plain = rope_inv_freq(cfg.replace(rope_scaling=None))
  np.testing.assert_allclose(rope_inv_freq(cfg)[[0, -1]], plain[[0, -1]] / [1, 4], rtol=1e-6)


def test_yarn_config_spellings():
  old = ModelConfig(rope_scaling={"type": "yarn", "factor": 2.0,
                                  "original_max_position_embeddings": 512})
  assert old.rope_scaling_dict == {"rope_type": "yarn", "factor": 2.0,
                                   "original_max_position_embeddings": 512}
  hf = dict(PRESETS["qwen3_1p7b"].to_hf(), rope_scaling={"rope_type": "yarn", "factor": 4.0})
  cfg = ModelConfig.from_hf(hf)  # transformers' default for the original length
  assert cfg.rope_scaling_dict["original_max_position_embeddings"] == 40960


# ----------------------------------------------------------------- errors
@pytest.fixture()
def qwen3_dir(tmp_path):
  save_tiny_hf("qwen3", tmp_path / "ckpt")
  return tmp_path / "ckpt"


def test_missing_safetensors(qwen3_dir):
  os.remove(qwen3_dir / "model.safetensors")
  with pytest.raises(CheckpointError, match="no model.safetensors"):
    from_pretrained(str(qwen3_dir))


def test_truncated_safetensors(qwen3_dir):
  f = qwen3_dir / "model.safetensors"
  data = f.read_bytes()
  f.write_bytes(data[: len(data) // 2])
  with pytest.raises(CheckpointError, match=r"model\.safetensors: truncated"):
    from_pretrained(str(qwen3_dir))


def test_missing_shard(tmp_path):
  save_tiny_hf("qwen3", tmp_path / "c", max_shard_size="40KB")
  shard = sorted(p for p in os.listdir(tmp_path / "c") if p.endswith("safetensors"))[0]
  os.remove(tmp_path / "c" / shard)
  with pytest.raises(CheckpointError, match=shard):
    from_pretrained(str(tmp_path / "c"))


def test_wrong_shape_names_tensor(qwen3_dir):
  import safetensors.numpy
  f = str(qwen3_dir / "model.safetensors")
  tensors = safetensors.numpy.load_file(f)
  tensors["model.layers.1.mlp.up_proj.weight"] = np.zeros((7, 64), np.float32)
  safetensors.numpy.save_file(tensors, f, metadata={"format": "pt"})
  with pytest.raises(CheckpointError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
    from_pretrained(str(qwen3_dir))


def test_missing_tensor_named(qwen3_dir):
  import safetensors.numpy
  f = str(qwen3_dir / "model.safetensors")
  tensors = safetensors.numpy.load_file(f)
  del tensors["model.layers.0.self_attn.k_norm.weight"]
  safetensors.numpy.save_file(tensors, f, metadata={"format": "pt"})
  with pytest.raises(CheckpointError, match=r"model\.layers\.0\.self_attn\.k_norm"):
    from_pretrained(str(qwen3_dir))


def test_unsupported_architecture(qwen3_dir):
  cfg = json.load(open(qwen3_dir / "config.json"))
  cfg["architectures"] = ["MistralForCausalLM"]
  cfg["model_type"] = "mistral"
  json.dump(cfg, open(qwen3_dir / "config.json", "w"))
  with pytest.raises(UnsupportedModelError, match="MistralForCausalLM"):
    from_pretrained(str(qwen3_dir))


def test_not_a_directory_or_repo(tmp_path):
  with pytest.raises(CheckpointError, match="no-such-org/no-such-model"):
    from_pretrained("no-such-org/no-such-model")


def test_export_generates_and_stops_like_our_sampler(tmp_path):
  """The demo policy, exported with its stop tokens, generates greedily in
  transformers exactly what our sampler does, and stops at the end marker."""
  import jax
  import torch
  from flax import nnx
  from microcoder_jax.data import datasets, prompts, tiny_tokenizer
  from microcoder_jax.models import from_pretrained, save_pretrained
  from microcoder_jax.sampling import Sampler
  tok = tiny_tokenizer.load()
  model = from_pretrained(os.path.join(datasets.BUNDLED_DIR, "tiny_policy"), dtype="float32",
                          param_dtype="float32")
  stop = prompts.stop_token_ids(tok)
  save_pretrained(model, str(tmp_path / "export"), tokenizer=tok, stop_ids=stop)
  gen = json.loads((tmp_path / "export" / "generation_config.json").read_text())
  assert gen["eos_token_id"] in (stop, stop[0])
  assert oct(os.stat(tmp_path / "export" / "config.json").st_mode)[-3:] == "644"
  hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "export"),
                                                         torch_dtype=torch.float32)
  problems = datasets.load_dataset("bundled:synthetic_train")[:3]
  sampler = Sampler(model, stop_ids=stop, pad_id=tok.pad_token_id or 0)
  for p in problems:
    ids = prompts.encode_prompt(tok, p)
    out = hf.generate(torch.tensor([ids]), max_new_tokens=64, do_sample=False)
    hf_new = out[0, len(ids):].tolist()
    r = sampler.sample(nnx.state(model), [ids], num_samples=1, max_new_tokens=64,
                       temperature=0.0, rng=jax.random.key(0))
    ours = np.asarray(r.tokens_NxT)[0, :int(r.lengths_N[0])].tolist()
    assert hf_new == ours, p.id
    assert ours[-1] in stop and not bool(r.truncated_N[0])  # stopped at the end marker
