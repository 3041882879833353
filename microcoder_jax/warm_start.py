"""Supervised warm start of the tiny demo policy on reference solutions.

    python -m microcoder_jax.warm_start --out microcoder_jax/data/bundled/tiny_policy

Trains a ~1.6M-parameter Qwen3-style model from scratch, with the bundled
tiny tokenizer, on (prompt, reference solution) pairs of the synthetic *train*
split only, for a fixed small number of steps, so that the held-out pass rate
starts clearly above zero but far from solved; RL then has room to improve it.
The result is written as a Hugging Face checkpoint (bfloat16, a few MB) plus
the tokenizer, and the held-out pass@1 of the result is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from microcoder_jax import evals
from microcoder_jax.data import datasets, prompts, tiny_tokenizer
from microcoder_jax.evaluator import Evaluator
from microcoder_jax.models import ModelConfig, init_model, save_pretrained
from microcoder_jax.rl import logprobs as logprobs_lib
from microcoder_jax.sampling import Sampler

TINY_POLICY = ModelConfig(
    family="qwen3", vocab_size=512, hidden_size=192, num_layers=4, num_heads=4,
    num_kv_heads=2, head_dim=48, intermediate_size=512, max_position_embeddings=512,
    tie_word_embeddings=True, rope_theta=10000.0)


def sft_examples(tokenizer, split: str):
  """(ids, loss mask) per train problem: prompt, then fenced solution + end."""
  path = os.path.join(datasets.BUNDLED_DIR, f"{split}.jsonl")
  with open(path) as f:
    refs = {r["id"]: r["reference_solution"] for r in map(json.loads, f)}
  end = tokenizer.convert_tokens_to_ids("<|im_end|>")
  out = []
  for p in datasets.load_problems(path):
    prompt = prompts.encode_prompt(tokenizer, p)
    answer = tokenizer(f"```python\n{refs[p.id]}\n```", add_special_tokens=False)["input_ids"]
    answer = answer + [end]
    out.append((prompt + answer, [0] * len(prompt) + [1] * len(answer)))
  return out


def pad_batch(examples, length: int, pad_id: int):
  ids = np.full((len(examples), length), pad_id, np.int32)
  loss = np.zeros((len(examples), length), np.float32)
  attn = np.zeros((len(examples), length), bool)
  for i, (x, m) in enumerate(examples):
    ids[i, :len(x)], loss[i, :len(m)], attn[i, :len(x)] = x, m, True
  return ids, attn, loss


def train(tokenizer, *, steps: int, batch: int, lr: float, seed: int):
  examples = sft_examples(tokenizer, "synthetic_train")
  length = max(len(x) for x, _ in examples)
  cfg = TINY_POLICY.replace(vocab_size=len(tokenizer))
  model = init_model(cfg, seed=seed)
  graphdef, params = nnx.split(model)
  opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(
      optax.warmup_cosine_decay_schedule(0.0, lr, 20, steps, lr * 0.1), weight_decay=0.01))
  opt_state = opt.init(params)

  def loss_fn(params, ids, attn, loss_mask):
    m = nnx.merge(graphdef, params)
    hidden = m(ids[:, :-1], attention_mask_BxT=attn[:, :-1], return_hidden=True)
    logp = logprobs_lib.token_logprobs(hidden, m.unembedding_DxV(), ids[:, 1:],
                                       temperature=1.0)
    mask = loss_mask[:, 1:]
    return -(logp * mask).sum() / mask.sum()

  @jax.jit
  def step(params, opt_state, ids, attn, loss_mask):
    loss, grads = jax.value_and_grad(loss_fn)(params, ids, attn, loss_mask)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(seed)
  pad = tokenizer.pad_token_id
  for i in range(steps):
    pick = rng.choice(len(examples), batch, replace=False)
    params, opt_state, loss = step(params, opt_state,
                                   *map(jnp.asarray, pad_batch([examples[j] for j in pick],
                                                               length, pad)))
    if i % 50 == 0 or i == steps - 1:
      print(f"step {i:4d} loss {float(loss):.3f}", flush=True)
  return nnx.merge(graphdef, params)


def heldout_pass_rate(model, tokenizer, *, k=4, temperature=0.6, seed=0,
                      split="synthetic_heldout", max_new_tokens=64):
  problems = datasets.load_problems(f"bundled:{split}")
  ids = [prompts.encode_prompt(tokenizer, p) for p in problems]
  sampler = Sampler(model, stop_ids=prompts.stop_token_ids(tokenizer),
                    pad_id=tokenizer.pad_token_id)
  with Evaluator(timeout_s=2.0, memory_mb=512) as ev:
    metrics, table, _, _ = evals.run_eval(
        sampler, nnx.state(model), ev, tokenizer, problems, ids, k=k,
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=0.95,
        rng=jax.random.key(seed))
  return metrics["heldout/pass@1"], table


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(datasets.BUNDLED_DIR, "tiny_policy"))
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--lr", type=float, default=3e-3)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  tokenizer = tiny_tokenizer.load()
  t0 = time.perf_counter()
  model = train(tokenizer, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
  print(f"trained {args.steps} steps in {time.perf_counter() - t0:.0f}s")
  save_pretrained(model, args.out, tokenizer=tokenizer, dtype="bfloat16")
  for split in ("synthetic_train", "synthetic_heldout"):
    rate, table = heldout_pass_rate(model, tokenizer, split=split)
    print(f"{split}: pass@1 (avg@4, T=0.6) = {100 * rate:.1f}%")
    print(evals.format_table(table))


if __name__ == "__main__":
  main()
