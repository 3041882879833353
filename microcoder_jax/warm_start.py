"""Supervised warm start of the tiny demo policy on reference solutions.

    python -m microcoder_jax.warm_start --out microcoder_jax/data/bundled/tiny_policy

Trains a ~1.6M-parameter Qwen3-style model from scratch, with the bundled
tiny tokenizer, on (prompt, reference solution) pairs of the synthetic *train*
split only, for a fixed small number of steps, so that the held-out pass rate
starts clearly above zero but far from solved; RL then has room to improve it.

The corpus is deliberately imperfect, as scraped human solutions are: each
target independently carries each of `HABITS` (family-independent bugs such as
labelling the answer) with probability `--noise`. The warm-started policy
therefore mixes right and wrong habits in every task family. Rewards from the
judge are the only signal that tells them apart, and because the habits are
shared across families and parameters, what RL learns on train problems
transfers to held-out ones. With `--noise 0` the corpus is clean.

The result is written as a Hugging Face checkpoint (bfloat16, a few MB) plus
the tokenizer, and the pass@1 of the result on both splits is printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from microcoder_jax import cli, heldout
from microcoder_jax.data import datasets, prompts, tiny_tokenizer
from microcoder_jax.evaluator import Evaluator
from microcoder_jax.models import ModelConfig, init_model, save_pretrained
from microcoder_jax.rl import logprobs as logprobs_lib
from microcoder_jax.sampling import Sampler

TINY_POLICY = ModelConfig(
    family="qwen3", vocab_size=512, hidden_size=192, num_layers=4, num_heads=4,
    num_kv_heads=2, head_dim=48, intermediate_size=512, max_position_embeddings=512,
    tie_word_embeddings=True, rope_theta=10000.0)


# Family-independent bad habits of the warm-start corpus, like those of scraped
# human solutions: each turns a correct reference solution into a wrong one.
HABITS = {
    # Strips a newline that `input()` has already removed: drops a character.
    "strip_newline": lambda code: code.replace("input()", "input()[:-1]"),
    # Labels the answer, which the judge's exact output comparison rejects.
    "label_output": lambda code: code.replace("print(", "print('Answer:',"),
}


def with_habits(code: str, habits) -> str:
  for name in habits:
    code = HABITS[name](code)
  return code


def sft_examples(tokenizer, split: str):
  """Per train problem, (ids, loss mask) for the solution with each habit subset.

  Returns a list over problems of dicts {habit subset (tuple): (ids, mask)}:
  prompt, then the fenced solution + end token.
  """
  path = os.path.join(datasets.BUNDLED_DIR, f"{split}.jsonl")
  with open(path) as f:
    refs = {r["id"]: r["reference_solution"] for r in map(json.loads, f)}
  end = tokenizer.convert_tokens_to_ids("<|im_end|>")
  subsets = [s for k in range(len(HABITS) + 1) for s in itertools.combinations(HABITS, k)]
  out = []
  for p in datasets.load_dataset(path):
    prompt = prompts.encode_prompt(tokenizer, p)
    variants = {}
    for habits in subsets:
      code = with_habits(refs[p.id], habits)
      answer = tokenizer(f"```python\n{code}\n```", add_special_tokens=False)["input_ids"]
      answer = answer + [end]
      variants[habits] = (prompt + answer, [0] * len(prompt) + [1] * len(answer))
    out.append(variants)
  return out


def draw_batch(examples, batch: int, noise: float, rng: np.random.Generator):
  """Random problems; each habit independently present with probability `noise`."""
  picks = rng.choice(len(examples), batch, replace=False)
  out = []
  for j in picks:
    habits = tuple(h for h in HABITS if rng.random() < noise)
    out.append(examples[j][habits])
  return out


def pad_batch(examples, length: int, pad_id: int):
  ids = np.full((len(examples), length), pad_id, np.int32)
  loss = np.zeros((len(examples), length), np.float32)
  attn = np.zeros((len(examples), length), bool)
  for i, (x, m) in enumerate(examples):
    ids[i, :len(x)], loss[i, :len(m)], attn[i, :len(x)] = x, m, True
  return ids, attn, loss


def train(tokenizer, *, steps: int, batch: int, lr: float, seed: int, noise: float):
  """Supervised fine-tuning from scratch; returns (model, per-step losses)."""
  examples = sft_examples(tokenizer, "synthetic_train")
  length = max(len(x) for ex in examples for x, _ in ex.values())
  cfg = TINY_POLICY.replace(vocab_size=len(tokenizer))
  model = init_model(cfg, seed=seed)
  graphdef, params = nnx.split(model)
  warmup = min(20, max(1, steps // 10))
  schedule = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps, lr * 0.1)
  opt = optax.chain(optax.clip_by_global_norm(1.0),
                    optax.adamw(schedule, weight_decay=0.01))
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
  losses = []
  for i in range(steps):
    drawn = draw_batch(examples, batch, noise, rng)
    params, opt_state, loss = step(params, opt_state,
                                   *map(jnp.asarray, pad_batch(drawn, length, pad)))
    losses.append(loss)
    if i % 50 == 0 or i == steps - 1:
      print(f"step {i:4d} loss {float(loss):.3f}", flush=True)
  return nnx.merge(graphdef, params), np.asarray(jax.device_get(losses))


def heldout_pass_rate(model, tokenizer, *, k=4, temperature=0.6, seed=0,
                      split="synthetic_heldout", max_new_tokens=64):
  problems = datasets.load_dataset(f"bundled:{split}")
  ids = [prompts.encode_prompt(tokenizer, p) for p in problems]
  sampler = Sampler(model, stop_ids=prompts.stop_token_ids(tokenizer),
                    pad_id=tokenizer.pad_token_id)
  with Evaluator(timeout_s=2.0, memory_mb=512) as ev:
    metrics, table, _, _ = heldout.evaluate_policy(
        sampler, nnx.state(model), ev, tokenizer, problems, ids,
        heldout.Settings(k=k, temperature=temperature, top_p=0.95,
                         max_new_tokens=max_new_tokens, timeout_s=2.0, memory_mb=512),
        rng=jax.random.key(seed), batch_prompts=64)
  return metrics["heldout/pass@1"], table


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   formatter_class=cli.HelpFormatter)
  parser.add_argument("--out", default="runs/tiny_policy",
                      help="HF directory to write (the bundled demo policy lives in "
                           "microcoder_jax/data/bundled/tiny_policy)")
  parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps")
  parser.add_argument("--batch", type=int, default=16, help="reference solutions per step")
  parser.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate")
  parser.add_argument("--seed", type=int, default=0, help="init and data seed")
  parser.add_argument("--noise", type=float, default=0.3,
                      help="probability of each bad habit in a warm-start target")
  args = parser.parse_args()
  tokenizer = tiny_tokenizer.load()
  t0 = time.perf_counter()
  model, _ = train(tokenizer, steps=args.steps, batch=args.batch, lr=args.lr,
                   seed=args.seed, noise=args.noise)
  print(f"trained {args.steps} steps in {time.perf_counter() - t0:.0f}s")
  save_pretrained(model, args.out, tokenizer=tokenizer, dtype="bfloat16",
                  stop_ids=prompts.stop_token_ids(tokenizer))
  for split in ("synthetic_train", "synthetic_heldout"):
    rate, table = heldout_pass_rate(model, tokenizer, split=split)
    print(f"{split}: pass@1 (avg@4, T=0.6) = {100 * rate:.1f}%")
    print(heldout.format_table(table))


if __name__ == "__main__":
  main()
