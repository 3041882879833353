"""Experiment configs: the paper's defaults, the argument string, and validation.

Experiment files in `configs/` call `base_config(objective, arg)`; `arg` is
the part after the colon in
`--config=configs/x.py:model=qwen3_4b,max_response_length=8192`.

Sections: `rl` is an `rl.Objective` field by field (G, T, L_max, ε, ε_high,
c, β, ρ, m, ...: see docs/configuration.md); `rollout` how rows are sampled;
`model`, `mesh`, `data`, `optim`, `evaluator` (the judge), `eval` (held-out
evaluation), `checkpoint`, `diversity`. `check(c)` validates a config before
any work and names the offending key.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import ml_collections
from ml_collections import config_dict

from microcoder_jax import sharding
from microcoder_jax.models.config import ATTENTION_BACKENDS, PRESETS, REMAT_POLICIES
from microcoder_jax.rl.objective import Objective, ObjectiveError
from microcoder_jax.rl.presets import get_objective
from microcoder_jax.rl.schedule import StagedSchedule

# Model presets (microcoder_jax.models.PRESETS) -> the HF checkpoint to start from.
MODELS = {
    "qwen3_0p6b": "Qwen/Qwen3-0.6B",
    "qwen3_1p7b": "Qwen/Qwen3-1.7B",
    "qwen3_4b": "Qwen/Qwen3-4B",
    "qwen3_4b_instruct_2507": "Qwen/Qwen3-4B-Instruct-2507",
    "qwen2p5_coder_1p5b": "Qwen/Qwen2.5-Coder-1.5B-Instruct",
    "qwen2p5_coder_7b": "Qwen/Qwen2.5-Coder-7B-Instruct",
    "ds_r1_distill_llama_8b": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    "ds_r1_0528_qwen3_8b": "deepseek-ai/DeepSeek-R1-0528-Qwen3-8B",
}
_DTYPES = ("float32", "bfloat16", "float16")
# Objective fields that may be None (off); the config holds a typed placeholder.
_OPTIONAL_FLOATS = ("clip_ratio_c", "rho", "overlong_buffer_frac")


class ConfigError(ValueError):
  """An invalid config, detected before any work starts; names the key."""


def parse_arg(arg: str | None, **defaults):
  """`"model=qwen3_4b,max_response_length=8192,runlocal"` -> ConfigDict over
  `defaults` (a default of None takes a float)."""
  out = dict(defaults)
  given = set()
  for item in filter(None, (arg or "").split(",")):
    key, eq, value = item.partition("=")
    if key not in out:
      raise ConfigError(f"unknown config argument {key!r}; known: {sorted(out)}")
    default = out[key]
    try:
      if not eq:
        out[key] = True
      elif isinstance(default, bool):
        out[key] = value.lower() in ("1", "true", "yes")
      elif isinstance(default, int):
        out[key] = int(value)
      elif default is None or isinstance(default, float):
        out[key] = float(value) if value else None
      else:
        out[key] = value
    except ValueError as e:
      raise ConfigError(f"config argument {key}={value!r}: {e}") from e
    given.add(key)
  out = ml_collections.ConfigDict(out)
  out.given = tuple(sorted(given))
  return out


def objective_section(objective: Objective) -> ml_collections.ConfigDict:
  """The `rl` section for `objective`, field by field."""
  fields = objective.to_dict()
  section = ml_collections.ConfigDict()
  for name, value in fields.items():
    section[name] = (config_dict.placeholder(float) if value is None and
                     name in _OPTIONAL_FLOATS else value)
  return section


def base_config(objective: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """The paper's training setup for one named objective."""
  a = parse_arg(arg, model="qwen3_1p7b", max_response_length=4096, rho=None,
                temperature="", train="", eval="", runlocal=False)
  if a.model not in MODELS:
    raise ConfigError(f"unknown model {a.model!r}; known: {sorted(MODELS)}")
  if a.runlocal and {"train", "eval"} & set(a.given):
    raise ConfigError("config arguments train=/eval= cannot be combined with runlocal "
                      "(it trains on the bundled synthetic data); override "
                      "--config.data.train / --config.data.eval instead")
  obj = get_objective(objective).replace(max_response_length=str(a.max_response_length))
  if a.temperature:
    obj = obj.replace(temperature=a.temperature)
  if a.rho is not None:
    obj = obj.replace(rho=a.rho)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.total_steps = 300
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

  c.rl = objective_section(obj)  # G, T, L_max, ε, ε_high, c, β, ρ, m, ...
  c.rollout = dict(
      num_groups=64,            # prompts per RL step (groups of G responses)
      top_p=1.0, top_k=0,
      chunks=4,                 # generation chunks overlapped with judging (at least)
      chunk_rows=0,             # rows per sampler call; 0: from cache_memory_gib
      cache_memory_gib=8.0,     # per-device KV-cache budget of one sampler call (0: none)
      stop_tokens=())           # extra stop strings beyond EOS / chat end markers
  c.ppo_mini_batch_size = 32    # groups per optimizer update
  c.micro_batch_size = 8        # rows per gradient-accumulation micro-batch
  c.logprob_chunk = 1024        # tokens per chunk of the chunked log-probs
  c.log_entropy = True          # token entropy metric (~1/4 more LM-head compute)
  c.share_prompts = True        # each prompt's forward once per group in the update

  c.optim = dict(lr=1e-6, warmup_steps=0, weight_decay=0.01, grad_clip=1.0,
                 b1=0.9, b2=0.999)
  c.evaluator = dict(workers=0, timeout_s=6.0, memory_mb=2048)
  # Held-out evaluation (`heldout.Settings`; `benchmark` uses the same
  # settings, so the same weights score the same in both).
  c.eval = dict(every=20, k=4, temperature=0.6, top_p=0.95,
                max_response_length=str(a.max_response_length), max_problems=0,
                timeout_s=6.0, memory_mb=2048)
  c.checkpoint = dict(every=20, keep=3)
  # Response diversity D: its n-gram size, `auto` temperature selection (the
  # lowest candidate T whose D on `probe_prompts` training prompts reaches
  # `target`), and the low-diversity alert.
  c.diversity = dict(ngram=4, target=0.65, candidates="0.6,0.8,1.0,1.2,1.4,1.6,1.8",
                     probe_prompts=64, alert_floor=0.5, alert_patience=20)
  c.export = True
  # Resuming a workdir whose recorded objective, model, data or seed differ is
  # refused unless this is True (the change is then recorded in report.md).
  c.allow_config_change = False
  # XLA's persistent compilation cache: a later run with the same programs
  # skips compiling them ("" turns it off; JAX_COMPILATION_CACHE_DIR wins).
  c.compilation_cache_dir = "~/.cache/microcoder_jax/xla"
  if a.runlocal:
    runlocal(c)
  return c


def runlocal(c: ml_collections.ConfigDict) -> None:
  """Shrinks a config to a tiny random model on CPU (smoke runs)."""
  c.model.update(preset="tiny", init_from="", tokenizer="bundled",
                 dtype="float32", param_dtype="float32", remat="none", scan_layers=False)
  c.data.update(train="bundled:synthetic_train", eval="bundled:synthetic_heldout",
                max_prompt_length=256, chat_template_kwargs={})
  c.rl.update(group_size=4, max_response_length="32", repeat_window=8)
  c.rollout.update(num_groups=4, chunks=2)
  c.ppo_mini_batch_size, c.micro_batch_size, c.logprob_chunk = 2, 8, 64
  c.total_steps = 2
  c.evaluator.update(workers=2, timeout_s=2.0, memory_mb=512)
  c.eval.update(every=2, k=1, max_response_length="32", max_problems=8)
  c.checkpoint.every = 1
  c.optim.lr = 1e-3


# ----------------------------------------------------------------- checks
def _leaves(c, prefix=""):
  for k, v in c.items():
    path = f"{prefix}{k}"
    if isinstance(v, (ml_collections.ConfigDict, dict)) and k not in ("chat_template_kwargs",):
      yield from _leaves(v, path + ".")
    else:
      yield path


def objective(c) -> Objective:
  """The `rl` section as an `Objective`; errors name the key."""
  fields = {f.name for f in dataclasses.fields(Objective)}
  values = c.rl.to_dict()
  unknown = sorted(set(values) - fields)
  if unknown:
    raise ConfigError(f"unknown config key rl.{unknown[0]}; the rl section holds "
                      f"the objective's fields: {sorted(fields)}")
  try:
    return Objective(**values)
  except ObjectiveError as e:
    raise ConfigError(f"config rl.{e.field}: {e}") from e


def check(c) -> Objective:
  """Validates every section before any work; returns the objective."""
  schema = set(_leaves(base_config("microcoder_grpo")))
  for key in _leaves(c):
    if key not in schema:
      raise ConfigError(f"unknown config key {key}")
  obj = objective(c)
  sharding.mesh_shape(dict(c.mesh), jax.device_count())  # MeshError names the axis
  for ok, key, why in _checks(c, obj):
    if not ok:
      value = c
      for part in key.split("."):
        value = value[part]
      raise ConfigError(f"config {key}={value!r}: {why}")
  for key in ("eval.max_response_length",):
    try:
      lengths = StagedSchedule.parse(c.eval.max_response_length, name=key).values
    except ValueError as e:
      raise ConfigError(f"config {e}") from e
    if min(lengths) < 1:
      raise ConfigError(f"config {key}={c.eval.max_response_length!r}: must be >= 1")
  return obj


def _positive_floats(text: str) -> bool:
  try:
    values = [float(t) for t in str(text).split(",")]
  except ValueError:
    return False
  return bool(values) and all(math.isfinite(v) and v > 0 for v in values)


def _checks(c, obj: Objective):
  def pos(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0

  r, g = c.rollout, obj.group_size
  rows = c.ppo_mini_batch_size * g
  return [
      (c.total_steps >= 0, "total_steps", "must be >= 0"),
      (r.num_groups >= 1, "rollout.num_groups", "must be >= 1"),
      (c.ppo_mini_batch_size >= 1 and r.num_groups % c.ppo_mini_batch_size == 0,
       "ppo_mini_batch_size", f"must divide rollout.num_groups={r.num_groups}"),
      (c.micro_batch_size >= 1 and rows % min(c.micro_batch_size, rows) == 0,
       "micro_batch_size", f"must divide a mini-batch of {rows} rows "
       "(ppo_mini_batch_size x rl.group_size)"),
      (c.logprob_chunk >= 0, "logprob_chunk", "must be >= 0 (0: unchunked)"),
      (c.model.attention in ATTENTION_BACKENDS, "model.attention",
       f"must be one of {ATTENTION_BACKENDS}"),
      (c.model.remat in REMAT_POLICIES, "model.remat", f"must be one of {REMAT_POLICIES}"),
      (r.chunks >= 1, "rollout.chunks", "must be >= 1"),
      (r.chunk_rows >= 0, "rollout.chunk_rows", "must be >= 0"),
      (r.cache_memory_gib >= 0, "rollout.cache_memory_gib", "must be >= 0"),
      (0 < r.top_p <= 1, "rollout.top_p", "must be in (0, 1]"),
      (r.top_k >= 0, "rollout.top_k", "must be >= 0"),
      (pos(c.optim.lr), "optim.lr", "must be a finite number > 0"),
      (c.optim.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0"),
      (pos(c.optim.grad_clip), "optim.grad_clip", "must be > 0"),
      (0 <= c.optim.b1 < 1, "optim.b1", "must be in [0, 1)"),
      (0 <= c.optim.b2 < 1, "optim.b2", "must be in [0, 1)"),
      (c.optim.weight_decay >= 0, "optim.weight_decay", "must be >= 0"),
      (c.model.dtype in _DTYPES, "model.dtype", f"must be one of {_DTYPES}"),
      (c.model.param_dtype in _DTYPES, "model.param_dtype", f"must be one of {_DTYPES}"),
      (bool(c.model.init_from) or c.model.preset in PRESETS, "model.preset",
       f"must be one of {sorted(PRESETS)} when model.init_from is empty"),
      (0 < c.eval.top_p <= 1, "eval.top_p", "must be in (0, 1]"),
      (0 <= c.diversity.alert_floor <= 1, "diversity.alert_floor", "must be in [0, 1]"),
      (pos(c.evaluator.timeout_s), "evaluator.timeout_s", "must be > 0"),
      (pos(c.evaluator.memory_mb), "evaluator.memory_mb", "must be > 0"),
      (pos(c.eval.timeout_s), "eval.timeout_s", "must be > 0"),
      (pos(c.eval.memory_mb), "eval.memory_mb", "must be > 0"),
      (c.evaluator.workers >= 0, "evaluator.workers", "must be >= 0 (0: usable cores)"),
      (not c.data.eval or c.eval.every >= 1, "eval.every",
       "must be >= 1 when data.eval is set"),
      (c.eval.k >= 1, "eval.k", "must be >= 1"),
      (c.eval.temperature >= 0, "eval.temperature", "must be >= 0"),
      (c.eval.max_problems >= 0, "eval.max_problems", "must be >= 0 (0: all)"),
      (c.checkpoint.every >= 0, "checkpoint.every", "must be >= 0 (0: only at the end)"),
      (c.checkpoint.keep >= 1, "checkpoint.keep", "must be >= 1"),
      (c.diversity.ngram >= 1, "diversity.ngram", "must be >= 1"),
      (0 < c.diversity.target <= 1, "diversity.target", "must be in (0, 1]"),
      (_positive_floats(c.diversity.candidates), "diversity.candidates",
       "must be comma-separated temperatures > 0"),
      (c.diversity.probe_prompts >= 1, "diversity.probe_prompts", "must be >= 1"),
      (c.diversity.alert_patience >= 1, "diversity.alert_patience", "must be >= 1"),
      (c.data.max_prompt_length >= 1, "data.max_prompt_length", "must be >= 1"),
  ]
