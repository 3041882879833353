"""tunix's GRPO learner on the work of peers/common.py (runner interface there).

  python benchmarks/peers/tunix_runner.py --steps 20 --out tunix.json --export-dir DIR

Installing tunix. google-tunix 0.1.7 declares `safetensors<0.8`, while our
transformers 5.24 needs `safetensors>=0.8`, so pip cannot install it next to
our pinned stack. It goes in its own environment that reuses ours (same jax,
flax, optax, orbax, torch, transformers, numpy, safetensors 0.8.0, which
tunix's safetensors code works with):

  python -m venv --system-site-packages ENV
  pip freeze | grep -iE "^(jax|jaxlib|flax|orbax-checkpoint|optax|chex|numpy)==" > pins.txt
  pip freeze | grep -iE "^(torch|transformers|safetensors)==" >> pins.txt
  ENV/bin/pip install -c pins.txt datasets google-metrax grain hf_transfer jaxtyping \\
      kagglehub numba omegaconf pylatexenc perfetto qwix sentencepiece tenacity
  ENV/bin/pip install --no-deps google-tunix==0.1.7

then run this script with ENV/bin/python, or with any python and
`--python ENV/bin/python` (or TUNIX_PYTHON=ENV/bin/python): it re-runs itself
under that interpreter.

tunix is used through its public API (`tunix.models.qwen3` ModelConfig and
`params.create_model_from_safe_tensors`, `rl_cluster.RLCluster` with the
"vanilla" rollout engine, `grpo_learner.GRPOLearner`, a reward function);
nothing of tunix is copied. Setup:
  * model: `ModelConfig` built from the checkpoint's config.json, weights from
    its safetensors, float32 compute and parameters, on a 1x1 ("fsdp", "tp")
    mesh; actor and rollout share it (same mesh, so no weight sync).
    tunix 0.1.7's Qwen3 attention calls `apply_rope` without the config's
    `rope_theta` (always 1e6; this checkpoint uses 1e4), so the module's
    `apply_rope` is rebound to pass the config's value. Logits are checked
    against transformers (torch, float32, in a subprocess) before anything is
    timed; the run stops if they differ by more than --parity-tol.
  * prompts: the work plan's templated prompt texts; tunix tokenizes them
    itself (`tokenizer.encode`, no BOS for this tokenizer), which is checked to
    give `common.prompt_ids` for every row it samples.
  * objective: `GRPOConfig(num_generations=8, num_iterations=1, beta=0,
    epsilon=0.2, loss_agg_mode="token-mean")` plus an `epsilon_high = 0.28`
    field (tunix's GRPO loss reads `epsilon_high` when the config has one, as
    its DAPOConfig does); no reference model. mini_batch_size = 4 prompts
    (32 rows: 2 updates per step), micro-batch = mini-batch (no gradient
    accumulation), optax.chain(clip_by_global_norm(1), adamw(...)).
  * reward: our judge on `common.completion_text` of the tokens tunix sampled.

Phases are timed by instance-level wrappers around tunix methods, each of
which only calls the original:
  generate_s     `RLCluster.generate` (tokenizing, prefill + decode, detokenize),
                 summed over the step's 2 mini-batch rollouts;
  reward_s       `RLLearner._compute_rewards` (our judge), summed likewise;
  old_logprob_s  0.0: with num_iterations = 1 tunix computes no log pi_old
                 (the loss uses stop_gradient of the current log-probs);
  update_s       `RLCluster.update_actor` until the new parameters are ready
                 (tunix dispatches the train step asynchronously; the wrapper
                 waits for it), summed over the 2 updates;
  total_s        from the start of `RLLearner._run_global_step` of this step to
                 that of the next one (the last: until `train` returns), so it
                 also holds advantages, batching and tunix's metric buffering.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from peers import common  # pylint: disable=g-import-not-at-top

from microcoder_jax import cli  # pylint: disable=g-import-not-at-top,g-bad-import-order

TUNIX_VERSION = "0.1.7"
MINI_BATCH_PROMPTS = common.ROWS_PER_UPDATE // common.GROUP_SIZE  # 4
PARITY_PROMPTS = 4
INSTALL_HINT = ("google-tunix is not importable by this python; install it in its own "
                "environment (see the module docstring) and pass --python ENV/bin/python "
                "or set TUNIX_PYTHON")


# ------------------------------------------------------------------ helpers
def hf_config(path: str = common.POLICY_DIR) -> dict:
  with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
    return json.load(f)


def rope_theta(cfg: dict) -> float:
  theta = cfg.get("rope_theta")
  if theta is None:
    theta = (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)
  return float(theta)


def hf_logits(model_dir: str, seqs: list[list[int]]) -> list:
  """transformers' float32 logits for each unpadded sequence (torch, CPU)."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
  model.eval()
  with torch.no_grad():
    return [model(torch.tensor([s])).logits[0].numpy() for s in seqs]


def hf_logits_in_subprocess(model_dir: str, seqs: list[list[int]]) -> list:
  """`hf_logits` in a child process (its model and forward stay out of our peak RSS)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory(prefix="tunix_parity_") as tmp:
    ids_path = os.path.join(tmp, "ids.json")
    with open(ids_path, "w", encoding="utf-8") as f:
      json.dump(seqs, f)
    out = os.path.join(tmp, "logits.npz")
    subprocess.run([sys.executable, os.path.abspath(__file__), "--hf-logits", model_dir,
                    ids_path, out], check=True)
    with np.load(out) as z:
      return [z[f"s{i}"] for i in range(len(seqs))]


def _hf_logits_main(model_dir: str, ids_path: str, out: str) -> None:
  import numpy as np  # pylint: disable=g-import-not-at-top
  with open(ids_path, encoding="utf-8") as f:
    seqs = json.load(f)
  np.savez(out, **{f"s{i}": a for i, a in enumerate(hf_logits(model_dir, seqs))})


def _maybe_reexec(python: str) -> None:
  """Re-runs this script under `python` when tunix is not importable here."""
  try:
    import tunix  # pylint: disable=g-import-not-at-top,unused-import
    return
  except ImportError as e:
    if not python or os.path.abspath(python) == os.path.abspath(sys.executable):
      raise SystemExit(f"error: {INSTALL_HINT} ({e})") from None
  # `--python ''` last: the child reports a missing tunix instead of re-running.
  os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:] + ["--python", ""])


class PhaseClock:
  """Seconds per phase for the RL step in progress."""

  def __init__(self):
    self.phases: dict[str, float] = {}
    self.extra: dict[str, list[float]] = {}

  def reset(self) -> None:
    self.phases = {"generate_s": 0.0, "reward_s": 0.0, "old_logprob_s": 0.0, "update_s": 0.0}
    self.extra = {"reward": [], "response_len": []}

  def add(self, key: str, seconds: float) -> None:
    self.phases[key] = self.phases.get(key, 0.0) + seconds


# ------------------------------------------------------------------ tunix
def tunix_model_config(cfg: dict):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from tunix.models.qwen3 import model as qwen3_model  # pylint: disable=g-import-not-at-top
  if cfg.get("model_type") != "qwen3":
    raise SystemExit(f"error: expected a qwen3 checkpoint, got {cfg.get('model_type')!r}")
  return qwen3_model.ModelConfig(
      num_layers=cfg["num_hidden_layers"], vocab_size=cfg["vocab_size"],
      embed_dim=cfg["hidden_size"], hidden_dim=cfg["intermediate_size"],
      num_heads=cfg["num_attention_heads"],
      head_dim=cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"],
      num_kv_heads=cfg["num_key_value_heads"], rope_theta=rope_theta(cfg),
      norm_eps=cfg["rms_norm_eps"], use_tied_embedding=bool(cfg.get("tie_word_embeddings")),
      dtype=jnp.float32, param_dtype=jnp.float32)


def patch_rope_theta(theta: float) -> None:
  """tunix 0.1.7's Qwen3 attention ignores ModelConfig.rope_theta; pass it."""
  from tunix.models.qwen3 import model as qwen3_model  # pylint: disable=g-import-not-at-top
  base = getattr(qwen3_model.apply_rope, "func", qwen3_model.apply_rope)
  qwen3_model.apply_rope = functools.partial(base, rope_theta=theta)


def _forward(model, tokens):
  """Logits of unpadded `tokens` [B, T] under a causal mask."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  n = tokens.shape[1]
  logits, _ = model(tokens, jnp.arange(n, dtype=jnp.int32)[None], None,
                    jnp.tril(jnp.ones((n, n), bool))[None])
  return logits


def max_logit_diff(model, seqs, reference) -> float:
  """Largest |tunix logit - reference logit| over the unpadded sequences."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  forward = nnx.jit(_forward)
  return max(float(np.abs(np.asarray(forward(model, jnp.asarray([s], jnp.int32))[0]) - r).max())
             for s, r in zip(seqs, reference))


def to_hf_state(model, cfg) -> dict:
  """The tunix Qwen3's parameters under Hugging Face names and layouts."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  s = nnx.state(model, nnx.Param).to_pure_dict()
  a = lambda x: np.ascontiguousarray(np.asarray(x, np.float32))
  d, nh, kh, hd = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
  out = {"model.embed_tokens.weight": a(s["embedder"]["input_embedding"]),
         "model.norm.weight": a(s["final_norm"]["w"])}
  if not cfg.use_tied_embedding:
    out["lm_head.weight"] = a(np.asarray(s["lm_head"]["w"]).T)
  for i in range(cfg.num_layers):
    layer = s["layers"][i]
    att, mlp, p = layer["attn"], layer["mlp"], f"model.layers.{i}."
    out[p + "self_attn.q_proj.weight"] = a(np.asarray(att["q_proj"]["w"]).reshape(d, nh * hd).T)
    out[p + "self_attn.k_proj.weight"] = a(np.asarray(att["k_proj"]["w"]).reshape(d, kh * hd).T)
    out[p + "self_attn.v_proj.weight"] = a(np.asarray(att["v_proj"]["w"]).reshape(d, kh * hd).T)
    out[p + "self_attn.o_proj.weight"] = a(np.asarray(att["o_proj"]["w"]).reshape(nh * hd, d).T)
    out[p + "self_attn.q_norm.weight"] = a(att["q_norm"]["w"])
    out[p + "self_attn.k_norm.weight"] = a(att["k_norm"]["w"])
    for name in ("gate_proj", "up_proj", "down_proj"):
      out[p + f"mlp.{name}.weight"] = a(np.asarray(mlp[name]["kernel"]).T)
    out[p + "input_layernorm.weight"] = a(layer["input_layernorm"]["w"])
    out[p + "post_attention_layernorm.weight"] = a(layer["post_attention_layernorm"]["w"])
  return out


def export_hf(model, cfg, out_dir: str) -> None:
  """config.json, tokenizer files (copied from the bundled policy) and the
  trained weights as float32 model.safetensors."""
  import safetensors.numpy  # pylint: disable=g-import-not-at-top
  tmp = out_dir.rstrip("/") + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  for name in os.listdir(common.POLICY_DIR):
    src = os.path.join(common.POLICY_DIR, name)
    if os.path.isfile(src) and not name.endswith(".safetensors") and name != "config.json":
      shutil.copy(src, os.path.join(tmp, name))
  hf = hf_config()
  hf["dtype"] = hf["torch_dtype"] = "float32"  # what the file stores
  with open(os.path.join(tmp, "config.json"), "w", encoding="utf-8") as f:
    json.dump(hf, f, indent=2)
  safetensors.numpy.save_file(to_hf_state(model, cfg), os.path.join(tmp, "model.safetensors"),
                              metadata={"format": "pt"})
  shutil.rmtree(out_dir, ignore_errors=True)
  os.replace(tmp, out_dir)


def run(args) -> None:
  """Trains with tunix on the common work and writes RESULT.json + the export."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from tunix.models.qwen3 import params as qwen3_params  # pylint: disable=g-import-not-at-top
  from tunix.rl import rl_cluster as rl_cluster_lib  # pylint: disable=g-import-not-at-top
  from tunix.rl.grpo import grpo_learner  # pylint: disable=g-import-not-at-top
  from tunix.rl.rollout import base_rollout  # pylint: disable=g-import-not-at-top

  @dataclasses.dataclass(kw_only=True)
  class ClipHigherGRPOConfig(grpo_learner.GRPOConfig):
    """GRPOConfig with the `epsilon_high` that tunix's GRPO loss reads."""
    epsilon_high: float = common.EPS_HIGH

  wall0 = time.perf_counter()
  tokenizer = common.load_tokenizer()
  plan = common.work_plan(args.steps)
  texts = {}  # prompt text -> the ids our trainer uses
  for batch in plan:
    for p in batch:
      texts[common.prompt_text(tokenizer, p)] = common.prompt_ids(tokenizer, p)
  all_prompt_ids = [common.prompt_ids(tokenizer, p) for p in common.train_problems()]
  max_prompt_len = max(len(x) for x in all_prompt_ids)
  stop = common.stop_ids(tokenizer)
  if tokenizer.pad_token_id is None or tokenizer.pad_token_id not in stop:
    # tunix masks completions by `!= pad_id` and cuts them at the first stop
    # token; a pad id that could be sampled inside a response would be masked.
    raise SystemExit(f"error: pad id {tokenizer.pad_token_id} is not a stop token {stop}")

  # ---- model + logits parity
  hf = hf_config()
  mcfg = tunix_model_config(hf)
  patch_rope_theta(mcfg.rope_theta)
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("fsdp", "tp"))
  model = qwen3_params.create_model_from_safe_tensors(common.POLICY_DIR, mcfg, mesh=mesh,
                                                      dtype=jnp.float32)
  parity_seqs = all_prompt_ids[:PARITY_PROMPTS]
  parity_ref = hf_logits_in_subprocess(common.POLICY_DIR, parity_seqs)
  parity = max_logit_diff(model, parity_seqs, parity_ref)
  print(f"[tunix] logits vs transformers on {len(parity_seqs)} prompts: max |diff| "
        f"{parity:.2e} (tol {args.parity_tol:g})", flush=True)
  if not parity <= args.parity_tol:
    raise SystemExit(f"error: tunix's Qwen3 logits differ from transformers' by {parity:.3g}")

  # ---- cluster + learner
  rollout_config = base_rollout.RolloutConfig(
      max_tokens_to_generate=common.MAX_NEW_TOKENS, temperature=common.TEMPERATURE,
      top_p=common.TOP_P, top_k=common.TOP_K or None, max_prompt_length=max_prompt_len,
      kv_cache_size=max_prompt_len + common.MAX_NEW_TOKENS, eos_tokens=list(stop),
      seed=jax.random.PRNGKey(args.seed))
  optimizer = optax.chain(
      optax.clip_by_global_norm(common.GRAD_CLIP),
      optax.adamw(common.LR, b1=common.BETAS[0], b2=common.BETAS[1], eps=common.ADAM_EPS,
                  weight_decay=common.WEIGHT_DECAY))
  cluster_config = rl_cluster_lib.ClusterConfig(
      role_to_mesh={rl_cluster_lib.Role.ACTOR: mesh, rl_cluster_lib.Role.ROLLOUT: mesh,
                    rl_cluster_lib.Role.REFERENCE: mesh},
      rollout_engine="vanilla", offload_to_cpu=False,
      training_config=rl_cluster_lib.RLTrainingConfig(
          actor_optimizer=optimizer, eval_every_n_steps=10**9,
          max_steps=args.steps * common.UPDATES_PER_STEP,
          mini_batch_size=MINI_BATCH_PROMPTS, checkpoint_root_directory=None),
      rollout_config=rollout_config)
  cluster = rl_cluster_lib.RLCluster(actor=model, tokenizer=tokenizer,
                                     cluster_config=cluster_config)
  algo = ClipHigherGRPOConfig(
      num_generations=common.GROUP_SIZE, num_iterations=1, beta=common.BETA,
      epsilon=common.EPS_LOW, epsilon_high=common.EPS_HIGH, loss_agg_mode="token-mean")

  flat_problems = [p for batch in plan for p in batch]
  clock = PhaseClock()
  sampled = {"tokens": None}
  judge = common.Judge()

  def judge_reward(prompts, completions, problem_idx, **unused):
    del prompts, unused
    tokens = sampled["tokens"]
    if tokens is None or len(tokens) != len(completions):
      raise RuntimeError("reward call does not follow the rollout it scores")
    texts_ = [common.completion_text(tokenizer, t.tolist()) for t in tokens]
    rewards = judge.rewards([flat_problems[int(i)] for i in problem_idx], texts_)
    clock.extra["reward"] += rewards
    clock.extra["response_len"] += [len(t) for t in tokens]
    return rewards

  learner = grpo_learner.GRPOLearner(rl_cluster=cluster, algo_config=algo,
                                     reward_fns=[judge_reward])

  # ---- timing wrappers (instance attributes; each only calls the original)
  orig_generate = cluster.generate
  calls = {"generate": 0}

  def timed_generate(prompts, *a, **kw):
    rollout_config.seed = jax.random.fold_in(jax.random.PRNGKey(args.seed), calls["generate"])
    calls["generate"] += 1
    t0 = time.perf_counter()
    out = orig_generate(prompts, *a, **kw)
    clock.add("generate_s", time.perf_counter() - t0)
    pad = tokenizer.pad_token_id
    for text, row in zip(prompts, np.asarray(out.left_padded_prompt_tokens)):
      first = int(np.argmax(row != pad))
      if row[first:].tolist() != texts[text]:
        raise RuntimeError("tunix tokenized a prompt differently from common.prompt_ids")
    sampled["tokens"] = out.tokens
    return out

  cluster.generate = timed_generate

  orig_rewards = learner._compute_rewards  # pylint: disable=protected-access

  def timed_rewards(*a, **kw):
    t0 = time.perf_counter()
    out = orig_rewards(*a, **kw)
    clock.add("reward_s", time.perf_counter() - t0)
    return out

  learner._compute_rewards = timed_rewards  # pylint: disable=protected-access

  orig_update = cluster.update_actor

  def timed_update(*a, **kw):
    t0 = time.perf_counter()
    out = orig_update(*a, **kw)
    jax.block_until_ready(nnx.state(cluster.actor_trainer.model, nnx.Param))
    clock.add("update_s", time.perf_counter() - t0)
    return out

  cluster.update_actor = timed_update

  starts, records = [], []

  def close_step(now: float) -> None:
    i = len(starts)
    ex = clock.extra
    rec = common.step_record(i, total_s=now - starts[-1], **clock.phases)
    rec["reward_mean"] = float(np.mean(ex["reward"])) if ex["reward"] else None
    rec["response_len_mean"] = float(np.mean(ex["response_len"])) if ex["response_len"] else None
    records.append(rec)
    print(f"[tunix] step {i}: " + " ".join(
        f"{k}={rec[k]:.2f}" for k in common.STEP_KEYS) +
          f" reward={rec['reward_mean']:.3f} len={rec['response_len_mean']:.1f}", flush=True)

  orig_global_step = learner._run_global_step  # pylint: disable=protected-access

  def timed_global_step(*a, **kw):
    now = time.perf_counter()
    if starts:
      close_step(now)
    starts.append(now)
    clock.reset()
    return orig_global_step(*a, **kw)

  learner._run_global_step = timed_global_step  # pylint: disable=protected-access

  train_ds = [{"prompts": [common.prompt_text(tokenizer, p) for p in batch],
               "problem_idx": np.arange(k * len(batch), (k + 1) * len(batch))}
              for k, batch in enumerate(plan)]
  setup_s = time.perf_counter() - wall0
  try:
    learner.train(train_ds)
    close_step(time.perf_counter())
  finally:
    judge.close()
  peak = common.peak_rss_gib()
  if len(records) != args.steps:
    raise SystemExit(f"error: tunix ran {len(records)} RL steps, expected {args.steps}")
  if cluster.actor_trainer.train_steps != args.steps * common.UPDATES_PER_STEP:
    raise SystemExit(f"error: {cluster.actor_trainer.train_steps} optimizer updates, "
                     f"expected {args.steps * common.UPDATES_PER_STEP}")

  # ---- export + check
  trained = cluster.actor_trainer.model
  leaves_a = jax.tree.leaves(nnx.state(trained, nnx.Param))
  leaves_r = jax.tree.leaves(nnx.state(cluster.rollout.model(), nnx.Param))
  rollout_in_sync = all(np.array_equal(np.asarray(x), np.asarray(y))
                        for x, y in zip(leaves_a, leaves_r))
  export_hf(trained, mcfg, args.export_dir)
  export_diff = max_logit_diff(trained, parity_seqs,
                               hf_logits_in_subprocess(args.export_dir, parity_seqs))
  print(f"[tunix] export {args.export_dir}: transformers vs tunix logits max |diff| "
        f"{export_diff:.2e}; rollout weights == actor weights: {rollout_in_sync}", flush=True)
  if not export_diff <= args.parity_tol:
    raise SystemExit(f"error: the export's logits differ from the trained model's by "
                     f"{export_diff:.3g}")

  notes = [
      f"tunix {TUNIX_VERSION} (google-tunix, GRPOLearner, vanilla rollout) in its own "
      "environment over our jax/flax/optax/transformers: it declares safetensors<0.8, our "
      "transformers 5.24 needs >=0.8; installed with --no-deps, runs on safetensors 0.8.0",
      "tunix 0.1.7's Qwen3 ignores ModelConfig.rope_theta (apply_rope is called with its "
      f"default 1e6; this checkpoint uses {mcfg.rope_theta:g}): the module's apply_rope is "
      f"rebound with the config's theta; logits then match transformers to {parity:.1e} "
      f"(without it they differ by several units)",
      "each mini-batch is sampled separately: 2 rollouts of 4 prompts x 8 (32 rows) per "
      "step, the second one by the policy after the first update (ours samples all 64 "
      "rows with pi_old, then makes 2 updates)",
      "no old-log-prob pass (old_logprob_s = 0): with num_iterations = 1 tunix's GRPO loss "
      "uses stop_gradient(log pi) as log pi_old, so the ratio is 1 and clipping never acts "
      "(ours recomputes log pi_old for all 64 rows; its second mini-batch is off-policy)",
      "clip-higher: GRPOConfig has no epsilon_high, but tunix's GRPO loss uses one when the "
      "config defines it (DAPOConfig does); a GRPOConfig subclass adds epsilon_high = 0.28. "
      "DAPOLearner itself is not usable without a reference model: beta=None passes its "
      "`beta != 0.0` test, so it computes reference log-probs every step",
      "the stop token is not trained: tunix cuts a completion before its first stop token "
      "and masks it out of the loss (ours includes the stop token in |o_i| and the loss)",
      f"padding: every prompt left-padded to {max_prompt_len} tokens (the longest train "
      "prompt, fixed to avoid recompiles) and every completion right-padded to "
      f"{common.MAX_NEW_TOKENS}; the update's forward runs on all "
      f"{max_prompt_len + common.MAX_NEW_TOKENS} positions of its 32 rows",
      "advantages: group std with ddof = 1, (r - mean) / (std + 1e-6) (ours: ddof = 0, "
      "same eps), so tunix's advantages are about 7% smaller for G = 8",
      "reward: judged synchronously after each mini-batch rollout (no overlap with "
      "generation); 2 judge calls of 32 rows per step",
      "token entropy is computed in every loss evaluation (tunix's GRPO loss always does)",
      "sampling seed: rollout_config.seed is fold_in(PRNGKey(seed), rollout index) per "
      "rollout (tunix would reuse one fixed key for every rollout)",
      "update_s waits for the new parameters after each update (tunix dispatches the train "
      "step asynchronously; its next rollout depends on them anyway)",
      "peak RSS: this process (getrusage); judge workers and the transformers logits "
      "checks run in child processes and are not counted",
  ]
  common.write_result(
      args.out, trainer="tunix", version=TUNIX_VERSION, steps=records, peak_rss_gib=peak,
      notes=notes, logits_parity_max_abs=parity, export_parity_max_abs=export_diff,
      rollout_weights_in_sync=rollout_in_sync, setup_s=setup_s,
      wall_s=time.perf_counter() - wall0, max_prompt_len=max_prompt_len)


def build_parser() -> argparse.ArgumentParser:
  p = common.add_runner_args(argparse.ArgumentParser(
      description=__doc__.split("\n")[0],
      formatter_class=cli.HelpFormatter))
  p.add_argument("--python", default=os.environ.get("TUNIX_PYTHON", ""),
                 help="interpreter with google-tunix installed, used when this one lacks it "
                 "(default: $TUNIX_PYTHON)")
  p.add_argument("--parity-tol", type=float, default=1e-4,
                 help="largest |logit difference| allowed between tunix's model and "
                 "transformers' (before training and for the export)")
  return p


def main(argv=None):
  if argv is None and len(sys.argv) == 5 and sys.argv[1] == "--hf-logits":
    _hf_logits_main(*sys.argv[2:])
    return
  args = build_parser().parse_args(argv)
  if args.steps < 1:
    raise SystemExit("error: --steps must be >= 1")
  _maybe_reexec(args.python)
  run(args)


if __name__ == "__main__":
  main()
