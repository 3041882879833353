"""Shared experiment-config pieces: defaults from microcoder_spec.md, presets, arg parsing.

Experiment files in `configs/` call `base_config(preset, arg)`; `arg` is the part after the
colon in `--config=configs/x.py:model=qwen3_4b,max_len=8192`.
"""

import ml_collections

from microcoder_jax.rl import presets

# Model presets (microcoder_jax.models.PRESETS) -> the HF checkpoint to start from.
MODELS = {
    "qwen3_0p6b": "Qwen/Qwen3-0.6B",
    "qwen3_1p7b": "Qwen/Qwen3-1.7B",
    "qwen3_4b": "Qwen/Qwen3-4B",
    "qwen3_4b_instruct_2507": "Qwen/Qwen3-4B-Instruct-2507",
    "qwen2p5_coder_1p5b": "Qwen/Qwen2.5-Coder-1.5B-Instruct",
    "qwen2p5_coder_7b": "Qwen/Qwen2.5-Coder-7B-Instruct",
    "ds_r1_distill_llama_8b": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
}


def parse_arg(arg: str | None, **defaults):
  """`"model=qwen3_4b,max_len=8192,runlocal"` -> ConfigDict over `defaults`."""
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, eq, value = item.partition("=")
    if key not in out:
      raise KeyError(f"unknown config argument {key!r}; known: {sorted(out)}")
    default = out[key]
    if not eq:
      out[key] = True
    elif isinstance(default, bool):
      out[key] = value.lower() in ("1", "true", "yes")
    elif isinstance(default, int):
      out[key] = int(value)
    elif isinstance(default, float):
      out[key] = float(value)
    else:
      out[key] = value
  return out


def base_config(preset: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """The paper's training setup (microcoder_spec.md §3) for one objective preset."""
  a = parse_arg(arg, model="qwen3_1p7b", max_len=4096, rho=-1.0, temperature="",
                train="", eval="", runlocal=False)
  if a.model not in MODELS:
    raise KeyError(f"unknown model {a.model!r}; known: {sorted(MODELS)}")
  objective = presets.get_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.total_steps = 300
  c.log_every = 1
  c.multihost = False

  c.model = dict(preset=a.model, init_from=MODELS[a.model], tokenizer="",
                 dtype="bfloat16", param_dtype="float32",
                 attention="auto",  # auto | plain | blockwise | splash | cudnn
                 remat="full",      # none | full | dots_saveable | ...
                 scan_layers=True)  # lax.scan over layers (False: unrolled loop)
  c.mesh = dict(data=1, fsdp=-1, tensor=1)
  c.data = dict(train=a.train or "path/to/train.jsonl", eval=a.eval, shuffle_seed=0,
                max_prompt_length=2048, system_prompt="",
                chat_template_kwargs={"enable_thinking": False})

  c.rollout = dict(
      train_batch_size=64,      # prompts per step
      group_size=8,             # G
      max_response_length=str(a.max_len),  # L_max, or a staged "6144,8192@260"
      temperature=a.temperature or str(objective.temperature),  # T schedule
      allow_ramp=False, top_p=1.0, top_k=0,
      chunks=4,                 # generation chunks overlapped with judging (at least)
      chunk_rows=0,             # rows per sampler call; 0: from cache_memory_gib
      cache_memory_gib=8.0,     # per-device KV-cache budget of one sampler call (0: none)
      stop_tokens=(),           # extra stop strings beyond EOS / chat end markers
      max_gen_batches=3)        # DAPO dynamic sampling: rounds per step at most
  c.ppo_mini_batch_size = 32    # prompts per optimizer update
  c.micro_batch_size = 8        # rows per gradient-accumulation micro-batch
  c.logprob_chunk = 1024        # tokens per chunk of the chunked log-probs

  c.rl = objective.to_config()
  c.rl.old_logps = "trainer"    # or "sampler": reuse the sampler's log-probs
  c.rl.ctm.non_incorrect = "pass_or_no_code"
  c.rl.ctm.apply_to = "advantage"
  if a.rho >= 0:
    c.rl.ctm.rho, c.rl.ctm.enabled = a.rho, True

  c.optim = dict(lr=1e-6, warmup_steps=0, weight_decay=0.01, grad_clip=1.0,
                 b1=0.9, b2=0.999)
  c.evaluator = dict(workers=0, timeout_s=6.0, memory_mb=2048)
  c.eval = dict(every=20, k=4, temperature=0.6, top_p=0.95,
                max_response_length=str(a.max_len), max_problems=0)
  c.checkpoint = dict(every=20, keep=3)
  c.diversity = dict(ngram=4, target=0.65, alert_floor=0.5, alert_patience=20)
  c.export = True
  if a.runlocal:
    runlocal(c)
  return c


def runlocal(c: ml_collections.ConfigDict) -> None:
  """Shrinks a config to a tiny random model on CPU (smoke runs)."""
  c.model.update(preset="tiny", init_from="", tokenizer="bundled",
                 dtype="float32", param_dtype="float32", remat="none", scan_layers=False)
  c.data.update(train="bundled:synthetic_train", eval="bundled:synthetic_heldout",
                max_prompt_length=256, chat_template_kwargs={})
  c.rollout.update(train_batch_size=4, group_size=4, max_response_length="32",
                   chunks=2)
  c.ppo_mini_batch_size, c.micro_batch_size, c.logprob_chunk = 2, 8, 64
  c.rl.ctm.repeat_window = 8
  c.total_steps = 2
  c.evaluator.update(workers=2, timeout_s=2.0, memory_mb=512)
  c.eval.update(every=2, k=1, max_response_length="32", max_problems=8)
  c.checkpoint.every = 1
  c.optim.lr = 1e-3
