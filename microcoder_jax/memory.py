"""Per-device memory of the update, the recompute and the sampler: by hand and AOT.

Two views of the same question, "does this fit my slice?":

* `update`, `recompute`, `sampler` estimate what `docs/scaling.md` derives by
  hand: which arrays each program holds at its peak, term by term, for a
  mesh whose parameters are sharded `param_shards` ways (fsdp x tensor) and
  whose rows are sharded `batch_shards` ways (data x fsdp). They need no
  compile, and they bound the compiled programs in the tests (a regression
  that materialises [T, S] attention scores or keeps every layer's
  activations blows through them).
* `lower_update`, `lower_recompute`, `lower_sampler` lower the trainer's own
  jitted programs at given shapes from abstract (never allocated) sharded
  parameters; `.compile()` then `compiled_bytes` reads XLA's per-device
  memory analysis. This works on fake CPU devices
  (`--xla_force_host_platform_device_count`), ahead of renting a slice.

Symbols: n parameters, L layers, D width, F MLP width, N/K query/key-value
heads, H head dim, V vocabulary, T = prompt + response tokens per row,
r rows per device per micro-batch, a bytes per compute-dtype value.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from microcoder_jax import sharding
from microcoder_jax.models.config import ModelConfig
from microcoder_jax.models.decoder import Decoder
from microcoder_jax import update as update_lib
from microcoder_jax.rl import get_objective
from microcoder_jax.rl.batch import TrainBatch
from microcoder_jax.sampling.sampler import Sampler

GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Bytes per device, by term; `total` is their sum."""
  terms: dict[str, float]

  @property
  def total(self) -> float:
    return float(sum(self.terms.values()))

  def describe(self) -> str:
    return ", ".join(f"{k} {v / GIB:.2f}" for k, v in self.terms.items()) + \
        f"; total {self.total / GIB:.2f} GiB"


def _layer_params(cfg: ModelConfig) -> int:
  return (cfg.num_params() - cfg.vocab_size * cfg.hidden_size
          * (1 if cfg.tie_word_embeddings else 2)) // cfg.num_layers


def _block_activations(cfg: ModelConfig, tokens: int, a: int) -> int:
  """Values one block's forward keeps for its own backward: norms, q/k/v,
  attention output, MLP gate/up/product, residuals."""
  d, f, h = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
  per_token = 4 * d + (2 * cfg.num_heads + 2 * cfg.num_kv_heads) * h + 3 * f
  return tokens * per_token * a


def _attention_tiles(cfg: ModelConfig, rows: int, tokens: int, copies: int) -> int:
  """float32 [rows, N, block_q, block_kv] score tiles of the blockwise kernel
  (scores, probabilities; in the backward also their gradients); the whole
  [T, T] score matrix for plain attention (also what `auto` picks for short
  sequences)."""
  full = _full_scores(cfg, tokens)
  bq = tokens if full else min(cfg.attention_block_q, tokens)
  bk = tokens if full else min(cfg.attention_block_kv, tokens)
  return rows * cfg.num_heads * bq * bk * 4 * copies


def _full_scores(cfg: ModelConfig, tokens: int) -> bool:
  return cfg.attention == "plain" or (cfg.attention == "auto" and tokens <= 1024)


def update(cfg: ModelConfig, *, param_shards: int, batch_shards: int, micro_rows: int,
           prompt: int, response: int, logprob_chunk: int = 1024,
           vocab_chunk: int = 8192) -> Estimate:
  """One `update_step` (AdamW, float32 master parameters), remat per `cfg.remat`."""
  a = jnp.dtype(cfg.jnp_dtype).itemsize
  n, d, v = cfg.num_params(), cfg.hidden_size, cfg.vocab_size
  r = max(1, micro_rows // batch_shards)
  t = prompt + response
  block = _block_activations(cfg, r * t, a)
  # Without remat every block's activations stay alive, and with plain
  # attention so do its [T, T] probabilities.
  if cfg.remat == "full":
    saved = r * t * d * a * cfg.num_layers
  else:
    scores = _attention_tiles(cfg, r, t, 2) if _full_scores(cfg, t) else 0
    saved = (block + scores) * cfg.num_layers
  return Estimate({
      # float32 parameters, Adam mu and nu
      "state": 12 * n / param_shards,
      # the accumulated gradient and the current micro-batch's
      "gradients": 8 * n / param_shards,
      # what the forward keeps for the backward: block inputs (full remat)
      # or every block's activations
      "saved activations": saved,
      # one block recomputed in the backward: activations and their gradients
      "block working set": 2 * block,
      "attention tiles": _attention_tiles(cfg, r, t, 4),
      # one layer's weights gathered in the compute dtype (and its gradient)
      "gathered layer": 2 * _layer_params(cfg) * (a + 4),
      # LM head: gathered W, float32 dW before reduce-scatter, one block of logits
      "lm head": v * d * (a + 4) + 4 * logprob_chunk * vocab_chunk * 3,
  })


def recompute(cfg: ModelConfig, *, param_shards: int, batch_shards: int, rows: int,
              micro_rows: int, prompt: int, response: int,
              logprob_chunk: int = 1024, vocab_chunk: int = 8192) -> Estimate:
  """Old-policy / reference log-probs over `rows` rows in micro-batches."""
  a = jnp.dtype(cfg.jnp_dtype).itemsize
  r = max(1, micro_rows // batch_shards)
  t = prompt + response
  return Estimate({
      "parameters": 4 * cfg.num_params() / param_shards,
      # inputs (ids, mask, targets, ...) and the log-prob output, rows sharded
      "batch": rows / batch_shards * (t * 5 + response * 16),
      # one micro-batch's forward, one block at a time
      "block working set": _block_activations(cfg, r * t, a),
      "attention tiles": _attention_tiles(cfg, r, t, 3),
      "residual stream": 2 * r * t * cfg.hidden_size * a,
      "gathered layer": 2 * _layer_params(cfg) * a,
      "lm head": cfg.vocab_size * cfg.hidden_size * a / param_shards
                 + 4 * logprob_chunk * vocab_chunk * 2,
  })


def sampler(cfg: ModelConfig, *, param_shards: int, batch_shards: int, rows: int,
            prompt: int, new_tokens: int) -> Estimate:
  """One sampler call: prefill `prompt` tokens, decode `new_tokens`."""
  a = jnp.dtype(cfg.jnp_dtype).itemsize
  r = max(1, rows // batch_shards)
  n, d, v = cfg.num_params(), cfg.hidden_size, cfg.vocab_size
  cache_row = 2 * cfg.num_layers * (prompt + new_tokens) * cfg.num_kv_heads * cfg.head_dim * a
  return Estimate({
      # float32 arguments and their compute-dtype copy
      "parameters": n * (4 + a) / param_shards,
      "kv cache": r * cache_row,
      # the prefill's widest point: one block over the whole prompt
      "prefill working set": _block_activations(cfg, r * prompt, a),
      "attention tiles": _attention_tiles(cfg, r, prompt, 3),
      # the LM head gathered, decode-step logits, log-probs and noise
      "lm head": v * d * a + 4 * r * v * 4,
      # the output buffers: tokens, log-probs, temperatures
      "outputs": r * new_tokens * 12,
  })


# ------------------------------------------------------------------ AOT
def compiled_bytes(compiled) -> dict[str, float]:
  """Per-device bytes of a compiled program: arguments, temporaries, outputs,
  donated aliases and total = arguments + temporaries + outputs - aliases."""
  m = compiled.memory_analysis()
  out = dict(args=m.argument_size_in_bytes, temp=m.temp_size_in_bytes,
             out=m.output_size_in_bytes, alias=m.alias_size_in_bytes)
  out["total"] = out["args"] + out["temp"] + out["out"] - out["alias"]
  return out


def _abstract_params(cfg: ModelConfig, mesh):
  graphdef, params = nnx.split(nnx.eval_shape(lambda: Decoder(cfg, rngs=nnx.Rngs(0))))
  shardings = sharding.state_shardings(params, mesh)
  return graphdef, params, shardings, _with_shardings(params, shardings)


def _with_shardings(tree, shardings):
  return jax.tree.map(lambda v, s: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=s),
                      tree, shardings)


def abstract_batch(mesh, rows: int, prompt: int, response: int) -> TrainBatch:
  """A TrainBatch of ShapeDtypeStructs, rows sharded as the trainer shards them."""
  sh = update_lib.batch_sharding(mesh, rows)
  s = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype, sharding=sh)
  n, t = rows, response
  return TrainBatch(
      input_ids_NxL=s((n, prompt + t), jnp.int32),
      attention_mask_NxL=s((n, prompt + t), bool), targets_NxT=s((n, t), jnp.int32),
      loss_mask_NxT=s((n, t), jnp.float32), advantages_N=s((n,), jnp.float32),
      old_logp_NxT=s((n, t), jnp.float32), ref_logp_NxT=s((n, t), jnp.float32),
      temperature_N=s((n,), jnp.float32))


def lower_update(cfg: ModelConfig, mesh, *, rows: int, micro_rows: int, prompt: int,
                 response: int, logprob_chunk: int = 1024, lr: float = 1e-6,
                 prompt_group: int = 0):
  """The trainer's jitted `update_step` (AdamW), lowered for one mini-batch."""
  graphdef, params, param_sharding, _ = _abstract_params(cfg, mesh)
  optimizer = update_lib.make_optimizer(lr)
  state_sharding = update_lib.train_state_shardings(param_sharding, optimizer, params, mesh)
  state = update_lib.TrainState(params, jax.eval_shape(optimizer.init, params),
                                jax.ShapeDtypeStruct((), jnp.int32))
  update_cfg = update_lib.UpdateConfig.from_objective(
      get_objective("microcoder_grpo"), micro_batch_size=micro_rows,
      logprob_chunk=logprob_chunk, compute_entropy=True, prompt_group=prompt_group)
  fn = update_lib.jit_update_step(graphdef, optimizer, update_cfg, mesh=mesh,
                                  state_sharding=state_sharding, rows=rows)
  with sharding.use_mesh(mesh):
    return fn.lower(_with_shardings(state, state_sharding),
                    abstract_batch(mesh, rows, prompt, response),
                    jax.ShapeDtypeStruct((), jnp.bool_))


def lower_recompute(cfg: ModelConfig, mesh, *, rows: int, micro_rows: int, prompt: int,
                    response: int, logprob_chunk: int = 1024, first_row: int = 0,
                    prompt_group: int = 0):
  """The trainer's jitted old-policy / reference log-prob recompute."""
  graphdef, _, param_sharding, abs_params = _abstract_params(cfg, mesh)
  fn = update_lib.jit_recompute(graphdef, mesh=mesh, param_sharding=param_sharding,
                                rows=rows, micro_batch_size=micro_rows, chunk=logprob_chunk,
                                first_row=first_row, group=prompt_group)
  with sharding.use_mesh(mesh):
    return fn.lower(abs_params, abstract_batch(mesh, rows, prompt, response))


def lower_sampler(cfg: ModelConfig, mesh, *, rows: int, prompt: int, new_tokens: int,
                  num_samples: int = 1):
  """One `Sampler` program: prefill of `rows / num_samples` prompts of a
  `prompt`-token bucket, then decode of `rows` rows."""
  graphdef, params, _, abs_params = _abstract_params(cfg, mesh)
  sampler = Sampler(nnx.merge(graphdef, params), stop_ids=(1,), mesh=mesh)
  rows_sh = NamedSharding(mesh, P(("data", "fsdp")))
  s = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype, sharding=rows_sh)
  with sharding.use_mesh(mesh):
    return sampler.generate_fn.lower(
        abs_params, s((rows // num_samples, prompt), jnp.int32),
        s((rows // num_samples, prompt), bool), s((rows,), jnp.float32), s((rows,), jnp.int32),
        jnp.zeros((new_tokens,), jnp.float32), jnp.float32(1.0),
        jax.random.key(0), max_new_tokens=new_tokens, top_k=0, per_step=False,
        num_samples=num_samples)
