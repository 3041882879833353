"""Tiny random Hugging Face checkpoints built locally (no downloads)."""

import torch
import transformers

# family -> (config class, model class, config kwargs)
TINY_HF = {
    # Qwen2: q/k/v bias, tied embeddings.
    "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM, dict(
        vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
        max_position_embeddings=256, rope_theta=10000.0)),
    # Qwen3: q/k RMSNorm, untied, head_dim != hidden / heads.
    "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM, dict(
        vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=24,
        tie_word_embeddings=False, max_position_embeddings=256,
        rope_theta=1_000_000.0)),
    # Llama 3: llama3 RoPE scaling, untied.
    "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM, dict(
        vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=False,
        max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 32})),
}


def make_tiny_hf(family: str, seed: int = 0):
  """A random-weight HF model; every parameter (biases, norms too) perturbed."""
  config_cls, model_cls, kwargs = TINY_HF[family]
  torch.manual_seed(seed)
  config = config_cls(**kwargs)
  model = model_cls._from_config(config, attn_implementation="eager").float().eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "norm" in name:
        p.copy_(1.0 + 0.1 * torch.randn_like(p))
      else:
        p.copy_(0.08 * torch.randn_like(p))
  return model


def save_tiny_hf(family: str, path, seed: int = 0, **save_kwargs):
  model = make_tiny_hf(family, seed)
  model.save_pretrained(path, **save_kwargs)
  return model


def hf_logits(model, ids, mask):
  """HF float32 logits with explicit left-padding-aware position ids."""
  ids_t = torch.as_tensor(ids, dtype=torch.long)
  mask_t = torch.as_tensor(mask, dtype=torch.long)
  pos = (mask_t.cumsum(-1) - 1).clamp(min=0)
  with torch.no_grad():
    return model(input_ids=ids_t, attention_mask=mask_t, position_ids=pos).logits.numpy()
