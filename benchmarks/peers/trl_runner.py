"""TRL's GRPOTrainer on the work of peers/common.py (runner interface there).

  pip install trl==1.16.0   # or: pip install -e .[bench]
  python benchmarks/peers/trl_runner.py --steps 20 --out trl.json --export-dir DIR

TRL is used through its public API (`GRPOConfig`, `GRPOTrainer`, a reward
function, a `TrainerCallback`); nothing of TRL is copied. The policy is the
bundled checkpoint loaded in float32 (TRL's default `bf16=True` mixed precision
is turned off, as is its default gradient checkpointing: our demo trains in
float32 without remat). The dataset is the work plan's prompts, already
templated, in the plan's order (`shuffle_dataset=False`); TRL tokenizes a
plain-text prompt with `tokenizer(text)`, which for this tokenizer (no BOS)
gives exactly `common.prompt_ids` (checked for every prompt at start).

Phases are timed by subclassing GRPOTrainer with thin timing wrappers around
its (private) methods, each of which only calls the original:
  generate_s     `_generate`: prompt tokenization, `model.generate`, decoding;
  reward_s       `_calculate_rewards`: our judge on the decoded completions;
  old_logprob_s  `_get_per_token_logps_and_entropies` called without gradients
                 inside `_generate_and_score_completions` (log pi_old; TRL
                 computes it because steps_per_generation = 2 > 1 gradient
                 accumulation step, even with num_iterations = 1);
  update_s       per optimizer step, `on_step_begin` -> `on_step_end` (forward,
                 backward, clipping, AdamW) minus the rollout
                 (`_generate_and_score_completions`) that runs inside the first
                 optimizer step of each RL step;
  total_s        between the `on_step_end` of the last optimizer step of the
                 previous RL step (or `on_train_begin`) and of this one.
One RL step = `UPDATES_PER_STEP` = 2 TRL optimizer steps (global_step).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from peers import common  # pylint: disable=g-import-not-at-top

INSTALL_HINT = ("TRL is not installed: pip install trl==1.16.0 (or pip install -e .[bench]; "
                "keep our torch/transformers: pip install -c <(pip freeze) trl==1.16.0)")


def _imports():
  try:
    import datasets as hf_datasets  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top
    import transformers  # pylint: disable=g-import-not-at-top
    import trl  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise SystemExit(f"error: {INSTALL_HINT} ({e})") from None
  return hf_datasets, torch, transformers, trl


def main(argv=None):
  args = common.add_runner_args(
      argparse.ArgumentParser(description=__doc__.split("\n")[0])).parse_args(argv)
  hf_datasets, torch, transformers, trl = _imports()
  tokenizer = common.load_tokenizer()
  plan = common.work_plan(args.steps)
  rows = [{"prompt": common.prompt_text(tokenizer, p), "problem_id": p.id}
          for batch in plan for p in batch]
  by_id = {p.id: p for batch in plan for p in batch}
  mismatched = sum(
      tokenizer(r["prompt"])["input_ids"] != common.prompt_ids(tokenizer, by_id[r["problem_id"]])
      for r in rows)
  stop = common.stop_ids(tokenizer)

  model = transformers.AutoModelForCausalLM.from_pretrained(common.POLICY_DIR,
                                                            dtype=torch.float32)
  # TRL ends a completion at every eos id the model's generation config
  # declares: make that our stop set (<|im_end|> and <|endoftext|>).
  model.generation_config.eos_token_id = list(stop)

  judge = common.Judge()

  def judge_reward(prompts, completions, completion_ids, problem_id, **kwargs):
    del prompts, completions, kwargs  # our judge sees our decoding of the ids
    texts = [common.completion_text(tokenizer, ids) for ids in completion_ids]
    return judge.rewards([by_id[i] for i in problem_id], texts)

  phases = {k: 0.0 for k in ("generate", "reward", "old_logprob", "rollout")}
  state = {"in_rollout": False}

  @contextlib.contextmanager
  def timed(name):
    t0 = time.perf_counter()
    try:
      yield
    finally:
      phases[name] += time.perf_counter() - t0

  class TimedGRPOTrainer(trl.GRPOTrainer):
    """GRPOTrainer whose rollout phases are timed (each wrapper only times)."""

    def _generate_and_score_completions(self, inputs):
      state["in_rollout"] = True
      try:
        with timed("rollout"):
          return super()._generate_and_score_completions(inputs)
      finally:
        state["in_rollout"] = False

    def _generate(self, prompts):
      with timed("generate"):
        return super()._generate(prompts)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
      with timed("reward"):
        return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)

    def _get_per_token_logps_and_entropies(self, *a, **kw):
      if state["in_rollout"] and not torch.is_grad_enabled():
        with timed("old_logprob"):
          return super()._get_per_token_logps_and_entropies(*a, **kw)
      return super()._get_per_token_logps_and_entropies(*a, **kw)

  steps: list[dict] = []

  class StepTimer(transformers.TrainerCallback):
    """Closes an RL step every `UPDATES_PER_STEP` optimizer steps."""

    def __init__(self):
      self.last = self.began = None
      self.update = 0.0
      self.rollout_at_begin = 0.0

    def on_train_begin(self, args_, st, control, **kw):
      self.last = time.perf_counter()

    def on_step_begin(self, args_, st, control, **kw):
      self.began = time.perf_counter()
      self.rollout_at_begin = phases["rollout"]

    def on_step_end(self, args_, st, control, **kw):
      now = time.perf_counter()
      self.update += (now - self.began) - (phases["rollout"] - self.rollout_at_begin)
      if st.global_step % common.UPDATES_PER_STEP == 0:
        steps.append(common.step_record(
            st.global_step // common.UPDATES_PER_STEP, total_s=now - self.last,
            generate_s=phases["generate"], reward_s=phases["reward"],
            old_logprob_s=phases["old_logprob"], update_s=self.update))
        steps[-1]["rollout_s"] = phases["rollout"]
        for k in phases:
          phases[k] = 0.0
        self.update, self.last = 0.0, now

  out_dir = tempfile.mkdtemp(prefix="peer_trl_")
  config = trl.GRPOConfig(
      output_dir=out_dir, seed=args.seed, use_cpu=True, bf16=False,
      gradient_checkpointing=False,
      # rollout: 8 prompts x G = 8, in the plan's order
      num_generations=common.GROUP_SIZE,  # generation batch: 32 rows x 2 steps = 64
      shuffle_dataset=False, max_completion_length=common.MAX_NEW_TOKENS,
      temperature=common.TEMPERATURE, top_p=common.TOP_P, top_k=common.TOP_K,
      # objective: token-mean over each 32-row mini-batch ("bnpo" = active
      # tokens of the local batch; "dapo" would divide by the average tokens
      # per mini-batch of the whole rollout), clip-higher, no KL
      loss_type="bnpo", epsilon=common.EPS_LOW, epsilon_high=common.EPS_HIGH,
      beta=common.BETA, scale_rewards="group", num_iterations=1,
      mask_truncated_completions=False,
      # 2 optimizer updates of 32 rows per RL step, no accumulation
      per_device_train_batch_size=common.ROWS_PER_UPDATE, gradient_accumulation_steps=1,
      steps_per_generation=common.UPDATES_PER_STEP, max_steps=args.steps * common.UPDATES_PER_STEP,
      optim="adamw_torch", learning_rate=common.LR, lr_scheduler_type="constant",
      warmup_steps=0, adam_beta1=common.BETAS[0], adam_beta2=common.BETAS[1],
      adam_epsilon=common.ADAM_EPS, weight_decay=common.WEIGHT_DECAY,
      max_grad_norm=common.GRAD_CLIP,
      # bookkeeping like ours: metrics every step, no checkpoint, no trackers
      logging_steps=1, save_strategy="no", report_to="none", log_completions=False,
      dataloader_num_workers=0, disable_tqdm=True)
  trainer = TimedGRPOTrainer(
      model=model, reward_funcs=judge_reward, args=config,
      train_dataset=hf_datasets.Dataset.from_list(rows), processing_class=tokenizer,
      callbacks=[StepTimer()])
  threads = torch.get_num_threads()
  checks = {"eos_token_ids": list(trainer.eos_token_ids),
            "generation_eos_token_id": trainer.generation_config.eos_token_id,
            "gradient_checkpointing": bool(getattr(
                trainer.model, "is_activation_checkpointing",
                getattr(trainer.model, "is_gradient_checkpointing", False))),
            "param_dtype": str(next(trainer.model.parameters()).dtype)}
  t0 = time.perf_counter()
  try:
    trainer.train()
  finally:
    judge.close()
  wall = time.perf_counter() - t0
  peak = common.peak_rss_gib()

  if os.path.exists(args.export_dir):
    shutil.rmtree(args.export_dir)
  trainer.save_model(args.export_dir)
  tokenizer.save_pretrained(args.export_dir)
  shutil.rmtree(out_dir, ignore_errors=True)

  notes = [
      f"torch {torch.__version__} with {threads} intra-op threads (torch's default here: "
      "one per core); float32, bf16 autocast and gradient checkpointing off",
      f"prompts: the same token ids ({len(rows) - mismatched}/{len(rows)} equal to ours); "
      "TRL left-pads each rollout's prompts to the longest (attention-masked; RoPE is "
      "relative, so only extra padded compute)",
      "generation: transformers `generate` (dynamic KV cache, no compilation), stops at "
      f"ids {stop} (set as the model's generation eos_token_id), completions padded to "
      "the longest",
      "advantages: TRL divides by the Bessel-corrected group std + 1e-4 (ours and "
      "dapo_base: population std + 1e-6): same work, advantages differ by about 7%",
      "mini-batches: TRL shuffles the 64 rows before splitting them into the 2 updates "
      "(ours: groups 0-3, then 4-7); loss_type='bnpo' = token-mean over each mini-batch",
      "old log-probs: recomputed without gradients for all 64 rows (steps_per_generation "
      "= 2 > gradient_accumulation_steps = 1)",
      "entropy is computed in the loss forward (TRL always logs it), as ours does",
      "judging is not overlapped with generation (TRL calls the reward function after "
      "generating the whole rollout)",
      "peak RSS: this process (TRL trains in it; judge workers not counted)",
  ]
  version = (f"trl {trl.__version__} (torch {torch.__version__}, "
             f"transformers {transformers.__version__})")
  common.write_result(args.out, trainer="trl", version=version, steps=steps,
                      peak_rss_gib=peak, notes=notes, wall_s=wall, torch_threads=threads,
                      prompt_ids_mismatched=mismatched, checks=checks)


if __name__ == "__main__":
  main()
