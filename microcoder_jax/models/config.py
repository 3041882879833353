"""Decoder configuration: one dataclass for Qwen2/2.5, Qwen3 and Llama 3.

The three families differ only in a few switches:

  family   q/k/v bias   q/k RMSNorm   RoPE scaling     tied embeddings
  qwen2    yes          no            none             size dependent
  qwen3    no           yes           none or yarn     size dependent
  llama    no           no            llama3           no (8B)

Presets are named after the checkpoints they describe, with the values of
each checkpoint's published `config.json`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax.numpy as jnp

from microcoder_jax.models.attention import BACKENDS as ATTENTION_BACKENDS

# HF `architectures` / `model_type` values we implement, mapped to a family.
_ARCHITECTURES = {
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "LlamaForCausalLM": "llama",
}
_MODEL_TYPES = {"qwen2": "qwen2", "qwen3": "qwen3", "llama": "llama"}
_FAMILY_ARCH = {v: k for k, v in _ARCHITECTURES.items()}
# Supported `rope_scaling` types and the keys each one needs.
_ROPE_SCALINGS = {
    "llama3": ("factor", "low_freq_factor", "high_freq_factor",
               "original_max_position_embeddings"),
    "yarn": ("factor", "original_max_position_embeddings"),
}
REMAT_POLICIES = ("none", "full", "dots_saveable", "dots_with_no_batch_dims_saveable",
                  "nothing_saveable", "everything_saveable")
_DTYPES = {
    "float32": jnp.float32,
    "bfloat16": jnp.bfloat16,
    "float16": jnp.float16,
}


class UnsupportedModelError(ValueError):
  """A checkpoint whose architecture or options this package does not run."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Hyper-parameters of a decoder-only transformer.

  Attributes:
    family: "qwen2", "qwen3" or "llama".
    vocab_size: V.
    hidden_size: D, the residual width.
    num_layers: number of decoder blocks.
    num_heads: N, query heads.
    num_kv_heads: K, key/value heads (GQA: N % K == 0).
    head_dim: H.
    intermediate_size: F, SwiGLU width.
    rms_norm_eps: RMSNorm epsilon.
    rope_theta: RoPE base.
    rope_scaling: None, or a dict with `rope_type="llama3"`, `factor`,
      `low_freq_factor`, `high_freq_factor`, `original_max_position_embeddings`;
      or `rope_type="yarn"`, `factor`, `original_max_position_embeddings` and
      optionally `beta_fast`, `beta_slow`, `truncate`, `attention_factor` (or
      `mscale`, `mscale_all_dim`) and `attn_factor` (see
      `microcoder_jax.models.layers.rope_attention_scale`).
    max_position_embeddings: longest position the checkpoint was trained for.
    tie_word_embeddings: unembedding is the transposed embedding.
    qkv_bias: q/k/v projections carry a bias (Qwen2).
    qk_norm: per-head RMSNorm on q and k before RoPE (Qwen3).
    param_dtype: storage dtype of parameters ("float32" or "bfloat16").
    dtype: compute dtype of activations and matmuls.
    bos_token_id, eos_token_id: from the checkpoint, for reference only (the
      sampler takes its own stop ids).

  Run-time options (how the model computes, not what it is; never exported):
    attention: attention backend, "auto", "plain", "blockwise", "splash" or
      "cudnn" (see `microcoder_jax.models.attention`).
    attention_block_q, attention_block_kv: tile sizes of the blockwise
      kernel (queries per tile, key slots per tile, also per decode block).
    remat: rematerialisation per decoder block in the backward pass: "none",
      "full" (keep only each block's input), or the name of a
      `jax.checkpoint_policies` policy such as "dots_saveable".
    scan_layers: run the stacked layers with `lax.scan` (compile time
      independent of depth); False unrolls a Python loop over the same
      parameters (a reference for tests and debugging).
  """

  family: str = "qwen3"
  vocab_size: int = 151936
  hidden_size: int = 1024
  num_layers: int = 28
  num_heads: int = 16
  num_kv_heads: int = 8
  head_dim: int = 128
  intermediate_size: int = 3072
  rms_norm_eps: float = 1e-6
  rope_theta: float = 1_000_000.0
  rope_scaling: Any = None  # Mapping in, tuple of pairs stored
  max_position_embeddings: int = 40960
  tie_word_embeddings: bool = True
  qkv_bias: bool = False
  qk_norm: bool = True
  param_dtype: str = "float32"
  dtype: str = "float32"
  bos_token_id: int | None = None
  eos_token_id: Any = None  # int, or tuple of ints
  attention: str = "auto"
  attention_block_q: int = 512
  attention_block_kv: int = 512
  remat: str = "none"
  scan_layers: bool = True

  def __post_init__(self):
    if self.family not in _FAMILY_ARCH:
      raise UnsupportedModelError(
          f"family={self.family!r}; supported: {sorted(_FAMILY_ARCH)}")
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"num_heads={self.num_heads} is not a multiple of "
                       f"num_kv_heads={self.num_kv_heads}")
    for name in ("param_dtype", "dtype"):
      if getattr(self, name) not in _DTYPES:
        raise ValueError(f"{name}={getattr(self, name)!r}; one of {sorted(_DTYPES)}")
    if self.attention not in ATTENTION_BACKENDS:
      raise ValueError(f"attention={self.attention!r}; one of {ATTENTION_BACKENDS}")
    if self.remat not in REMAT_POLICIES:
      raise ValueError(f"remat={self.remat!r}; one of {REMAT_POLICIES}")
    if min(self.attention_block_q, self.attention_block_kv) < 1:
      raise ValueError("attention block sizes must be >= 1")
    # Stored as sorted (key, value) pairs so the config stays hashable (it is a
    # static attribute of the NNX graph and part of jit cache keys).
    if isinstance(self.rope_scaling, Mapping):
      object.__setattr__(self, "rope_scaling",
                         tuple(sorted(self.rope_scaling.items())))
    if isinstance(self.eos_token_id, list):
      object.__setattr__(self, "eos_token_id", tuple(self.eos_token_id))
    if self.rope_scaling is not None:
      sc = self.rope_scaling_dict
      if "type" in sc:  # the older spelling of `rope_type`
        sc.setdefault("rope_type", sc.pop("type"))
        object.__setattr__(self, "rope_scaling", tuple(sorted(sc.items())))
      kind = sc.get("rope_type")
      if kind not in _ROPE_SCALINGS:
        raise UnsupportedModelError(
            f"rope_scaling type {kind!r}; supported: None or one of {sorted(_ROPE_SCALINGS)}")
      missing = [k for k in _ROPE_SCALINGS[kind] if k not in sc]
      if missing:
        raise ValueError(f"rope_scaling {kind!r} needs {missing}")
      if "attention_factor" in sc and "attn_factor" in sc:
        raise ValueError("rope_scaling: give attention_factor (replaces the YaRN "
                         "scale) or attn_factor (multiplies it), not both")

  @property
  def rope_scaling_dict(self) -> dict[str, Any] | None:
    return None if self.rope_scaling is None else dict(self.rope_scaling)

  @property
  def jnp_param_dtype(self):
    return _DTYPES[self.param_dtype]

  @property
  def jnp_dtype(self):
    return _DTYPES[self.dtype]

  def replace(self, **kwargs) -> "ModelConfig":
    return dataclasses.replace(self, **kwargs)

  def num_params(self) -> int:
    d, h, f, v = self.hidden_size, self.head_dim, self.intermediate_size, self.vocab_size
    attn = d * h * (2 * self.num_heads + 2 * self.num_kv_heads)
    if self.qkv_bias:
      attn += h * (self.num_heads + 2 * self.num_kv_heads)
    if self.qk_norm:
      attn += 2 * h
    layer = attn + 3 * d * f + 2 * d
    emb = v * d * (1 if self.tie_word_embeddings else 2)
    return self.num_layers * layer + emb + d

  # ---------------------------------------------------------------- HF config
  @classmethod
  def from_hf(cls, hf: Mapping[str, Any], **overrides) -> "ModelConfig":
    """Builds a config from a HF `config.json` dict (transformers 4.x or 5.x)."""
    family = _family_of(hf)
    if hf.get("use_sliding_window") and hf.get("sliding_window"):
      raise UnsupportedModelError(
          f"config field use_sliding_window=True (window {hf['sliding_window']}) "
          "is not supported; only full attention")
    if hf.get("hidden_act", "silu") != "silu":
      raise UnsupportedModelError(f"hidden_act={hf['hidden_act']!r}; only 'silu'")
    if hf.get("mlp_bias"):
      raise UnsupportedModelError("mlp_bias=True is not supported")
    rope = dict(hf.get("rope_parameters") or {})
    theta = hf.get("rope_theta") or rope.get("rope_theta") or 10000.0
    scaling = hf.get("rope_scaling") or (rope if rope.get("rope_type", "default")
                                         != "default" else None)
    if scaling is not None:
      scaling = {k: v for k, v in scaling.items() if k != "rope_theta"}
      kind = scaling.get("rope_type", scaling.get("type"))
      if kind == "default":
        scaling = None
      elif kind in _ROPE_SCALINGS:
        # As transformers does: the pre-scaling length defaults to the model's.
        scaling.setdefault("original_max_position_embeddings",
                           hf.get("max_position_embeddings", 32768))
    heads = hf["num_attention_heads"]
    head_dim = hf.get("head_dim") or hf["hidden_size"] // heads
    dtype = hf.get("dtype") or hf.get("torch_dtype") or "float32"
    if dtype not in _DTYPES:
      dtype = "float32"
    kwargs = dict(
        family=family,
        vocab_size=hf["vocab_size"],
        hidden_size=hf["hidden_size"],
        num_layers=hf["num_hidden_layers"],
        num_heads=heads,
        num_kv_heads=hf.get("num_key_value_heads") or heads,
        head_dim=head_dim,
        intermediate_size=hf["intermediate_size"],
        rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
        rope_theta=float(theta),
        rope_scaling=scaling,
        max_position_embeddings=hf.get("max_position_embeddings", 32768),
        tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
        qkv_bias=family == "qwen2" or bool(hf.get("attention_bias", False)),
        qk_norm=family == "qwen3",
        param_dtype=dtype,
        dtype=dtype,
        bos_token_id=hf.get("bos_token_id"),
        eos_token_id=hf.get("eos_token_id"),
    )
    kwargs.update(overrides)
    return cls(**kwargs)

  def to_hf(self) -> dict[str, Any]:
    """The `config.json` dict that transformers loads for this model."""
    rope_parameters = {"rope_type": "default", "rope_theta": self.rope_theta}
    if self.rope_scaling:
      rope_parameters = dict(self.rope_scaling_dict, rope_theta=self.rope_theta)
    hf = {
        "architectures": [_FAMILY_ARCH[self.family]],
        "model_type": self.family,
        "vocab_size": self.vocab_size,
        "hidden_size": self.hidden_size,
        "intermediate_size": self.intermediate_size,
        "num_hidden_layers": self.num_layers,
        "num_attention_heads": self.num_heads,
        "num_key_value_heads": self.num_kv_heads,
        "head_dim": self.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": self.max_position_embeddings,
        "rms_norm_eps": self.rms_norm_eps,
        "rope_theta": self.rope_theta,
        "rope_scaling": self.rope_scaling_dict,
        "rope_parameters": rope_parameters,
        "tie_word_embeddings": self.tie_word_embeddings,
        "attention_bias": self.qkv_bias and self.family != "qwen2",
        "use_sliding_window": False,
        "dtype": self.param_dtype,
        "torch_dtype": self.param_dtype,
        "bos_token_id": self.bos_token_id,
        "eos_token_id": (list(self.eos_token_id)
                         if isinstance(self.eos_token_id, tuple)
                         else self.eos_token_id),
    }
    return hf


def _family_of(hf: Mapping[str, Any]) -> str:
  archs = hf.get("architectures") or []
  for arch in archs:
    if arch in _ARCHITECTURES:
      return _ARCHITECTURES[arch]
  model_type = hf.get("model_type")
  if not archs and model_type in _MODEL_TYPES:
    return _MODEL_TYPES[model_type]
  raise UnsupportedModelError(
      f"architecture {archs or model_type!r} is not supported; supported: "
      f"{sorted(_ARCHITECTURES)}")


# ------------------------------------------------------------------ presets
_LLAMA3_SCALING = {
    "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
}

_DS_QWEN3_YARN = {
    "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768,
    "attn_factor": 0.8782488562869419,
}

PRESETS: dict[str, ModelConfig] = {
    # Tests and CPU demos: a few hundred thousand parameters.
    "tiny": ModelConfig(
        family="qwen3", vocab_size=512, hidden_size=64, num_layers=2,
        num_heads=4, num_kv_heads=2, head_dim=16, intermediate_size=128,
        max_position_embeddings=2048, tie_word_embeddings=True),
    "qwen3_0p6b": ModelConfig(
        family="qwen3", hidden_size=1024, num_layers=28, num_heads=16,
        num_kv_heads=8, intermediate_size=3072, tie_word_embeddings=True,
        param_dtype="bfloat16", dtype="bfloat16",
        bos_token_id=151643, eos_token_id=151645),
    "qwen3_1p7b": ModelConfig(
        family="qwen3", hidden_size=2048, num_layers=28, num_heads=16,
        num_kv_heads=8, intermediate_size=6144, tie_word_embeddings=True,
        param_dtype="bfloat16", dtype="bfloat16",
        bos_token_id=151643, eos_token_id=151645),
    "qwen3_4b": ModelConfig(
        family="qwen3", hidden_size=2560, num_layers=36, num_heads=32,
        num_kv_heads=8, intermediate_size=9728, tie_word_embeddings=True,
        param_dtype="bfloat16", dtype="bfloat16",
        bos_token_id=151643, eos_token_id=151645),
    "qwen3_4b_instruct_2507": ModelConfig(
        family="qwen3", hidden_size=2560, num_layers=36, num_heads=32,
        num_kv_heads=8, intermediate_size=9728, tie_word_embeddings=True,
        rope_theta=5_000_000.0, max_position_embeddings=262144,
        param_dtype="bfloat16", dtype="bfloat16",
        bos_token_id=151643, eos_token_id=151645),
    "qwen2p5_coder_1p5b": ModelConfig(
        family="qwen2", hidden_size=1536, num_layers=28, num_heads=12,
        num_kv_heads=2, intermediate_size=8960, qkv_bias=True, qk_norm=False,
        max_position_embeddings=32768, tie_word_embeddings=True,
        param_dtype="bfloat16", dtype="bfloat16",
        bos_token_id=151643, eos_token_id=151643),
    "qwen2p5_coder_7b": ModelConfig(
        family="qwen2", vocab_size=152064, hidden_size=3584, num_layers=28,
        num_heads=28, num_kv_heads=4, intermediate_size=18944, qkv_bias=True,
        qk_norm=False, max_position_embeddings=32768, tie_word_embeddings=False,
        param_dtype="bfloat16", dtype="bfloat16",
        bos_token_id=151643, eos_token_id=151643),
    # Qwen3-8B's architecture with YaRN (factor 4 over 32K positions); its
    # `attn_factor` cancels YaRN's attention scale (1 / (0.1 ln 4 + 1)).
    "ds_r1_0528_qwen3_8b": ModelConfig(
        family="qwen3", vocab_size=151936, hidden_size=4096, num_layers=36,
        num_heads=32, num_kv_heads=8, head_dim=128, intermediate_size=12288,
        rms_norm_eps=1e-6, rope_theta=1_000_000.0, rope_scaling=_DS_QWEN3_YARN,
        max_position_embeddings=131072, tie_word_embeddings=False,
        param_dtype="bfloat16", dtype="bfloat16",
        bos_token_id=151643, eos_token_id=151645),
    "ds_r1_distill_llama_8b": ModelConfig(
        family="llama", vocab_size=128256, hidden_size=4096, num_layers=32,
        num_heads=32, num_kv_heads=8, intermediate_size=14336,
        rms_norm_eps=1e-5, rope_theta=500000.0, rope_scaling=_LLAMA3_SCALING,
        max_position_embeddings=131072, tie_word_embeddings=False,
        qkv_bias=False, qk_norm=False, param_dtype="bfloat16",
        dtype="bfloat16", bos_token_id=128000, eos_token_id=128001),
}


def get_preset(name: str, **overrides) -> ModelConfig:
  """A preset by name, e.g. `get_preset("qwen3_1p7b", dtype="float32")`."""
  if name not in PRESETS:
    raise KeyError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}")
  return PRESETS[name].replace(**overrides)
