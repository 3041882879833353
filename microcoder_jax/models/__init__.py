"""Flax NNX decoders (Qwen2/2.5, Qwen3, Llama 3) and HF checkpoint I/O."""

from microcoder_jax.models.config import ModelConfig, PRESETS, UnsupportedModelError, get_preset
from microcoder_jax.models.decoder import Decoder, init_model
from microcoder_jax.models.layers import KVCache
from microcoder_jax.models.hf_io import CheckpointError, from_pretrained, load_config, save_pretrained
