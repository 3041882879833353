"""The identical work every trainer in benchmarks/peer_trainers.py does.

Runner interface. Each trainer has a script `benchmarks/peers/<name>_runner.py`
that the harness runs in its own fresh subprocess:

  python benchmarks/peers/<name>_runner.py --steps N --out RESULT.json \
      --export-dir DIR [--seed S]

It trains for N RL steps on `work_plan(N)` and writes RESULT.json:

  {"trainer": name, "version": "<package version>",
   "steps": [{"step": i, "total_s": .., "generate_s": .., "reward_s": ..,
              "old_logprob_s": .., "update_s": ..}, ...],   # i = 1..N
   "peak_rss_gib": ..,            # `peak_rss_gib()` at the end
   "notes": ["a difference in work this trainer forces", ...]}

A phase a trainer does not have (e.g. old log-probs recomputed with
num_iterations = 1) is 0.0 and explained in "notes"; a phase it cannot split
from another is null and explained. It saves its final policy as a Hugging
Face directory (config.json, model.safetensors, tokenizer files) in DIR, which
the harness evaluates on held-out problems with `heldout_command(DIR)` (the
same sampler and judge for every trainer). `add_runner_args` and
`write_result` give every runner the same flags and file format.

The work (constants below; `python -m microcoder_jax.train
--config=configs/demo.py:objective=dapo_base` is this work):
  * policy: the bundled tiny Qwen3 checkpoint (`POLICY_DIR`, weights stored as
    bfloat16, trained in float32), tokenizer from the same directory;
  * prompts: the bundled synthetic train split, chat template applied with the
    generation prompt (`prompt_ids`), in `ProblemIterator(seed=0)` order,
    `PROMPTS_PER_STEP` problems per step (`work_plan`);
  * sampling: `GROUP_SIZE` samples per prompt, at most `MAX_NEW_TOKENS` new
    tokens, T = 1, top-p = 1, no top-k; a row stops at `stop_ids(tokenizer)`;
  * reward: 1.0 if our sandboxed judge (`Judge`) says "pass" for the decoded
    completion (`completion_text`), else 0.0;
  * objective: advantages normalised by the mean and std of each group, PPO
    clip (EPS_LOW, EPS_HIGH), token-mean loss over each mini-batch, beta = 0
    (no KL, no reference model), one pass over the rollout in
    `UPDATES_PER_STEP` optimizer updates of `ROWS_PER_UPDATE` rows (no
    gradient accumulation), AdamW (LR constant, BETAS, WEIGHT_DECAY), gradient
    norm clipped at GRAD_CLIP.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from typing import Sequence

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
  sys.path.insert(0, _REPO)

from microcoder_jax.data import datasets  # pylint: disable=g-import-not-at-top
from microcoder_jax.data import prompts  # pylint: disable=g-import-not-at-top

REPO_ROOT = _REPO
POLICY_DIR = os.path.join(datasets.BUNDLED_DIR, "tiny_policy")
TRAIN_DATA = "bundled:synthetic_train"
HELDOUT_DATA = "bundled:synthetic_heldout"
DATA_SEED = 0

PROMPTS_PER_STEP = 8
GROUP_SIZE = 8
ROWS_PER_STEP = PROMPTS_PER_STEP * GROUP_SIZE  # 64
MAX_NEW_TOKENS = 64
TEMPERATURE = 1.0
TOP_P = 1.0
TOP_K = 0  # none

EPS_LOW, EPS_HIGH = 0.2, 0.28
BETA = 0.0
UPDATES_PER_STEP = 2
ROWS_PER_UPDATE = ROWS_PER_STEP // UPDATES_PER_STEP  # 32 = the micro-batch
LR = 1e-4
BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
WEIGHT_DECAY = 0.01
GRAD_CLIP = 1.0

JUDGE_WORKERS = 2
JUDGE_TIMEOUT_S = 2.0
JUDGE_MEMORY_MB = 512

HELDOUT_SAMPLES = 4
HELDOUT_TEMPERATURE = 0.6
HELDOUT_TOP_P = 0.95
HELDOUT_MAX_NEW_TOKENS = 64

DEFAULT_STEPS = 20
STEP_KEYS = ("total_s", "generate_s", "reward_s", "old_logprob_s", "update_s")


# ------------------------------------------------------------------ data
def load_tokenizer(path: str = POLICY_DIR):
  import transformers  # pylint: disable=g-import-not-at-top
  return transformers.AutoTokenizer.from_pretrained(path)


def train_problems() -> list:
  """The bundled train split, in file order."""
  return datasets.load_dataset(TRAIN_DATA)


def work_plan(steps: int, problems: Sequence | None = None,
              seed: int = DATA_SEED) -> list[list]:
  """The problems of RL steps 1..`steps`: `PROMPTS_PER_STEP` each, in the
  order our trainer draws them with `data.shuffle_seed = seed`."""
  it = datasets.ProblemIterator(problems if problems is not None else train_problems(),
                                seed=seed)
  return [it.next_batch(PROMPTS_PER_STEP) for _ in range(steps)]


def prompt_text(tokenizer, problem) -> str:
  """The templated prompt (generation prompt appended) as text."""
  return tokenizer.apply_chat_template(prompts.problem_messages(problem), tokenize=False,
                                       add_generation_prompt=True)


def prompt_ids(tokenizer, problem) -> list[int]:
  """The prompt's token ids, exactly as our trainer encodes them."""
  return prompts.encode_prompt(tokenizer, problem)


def stop_ids(tokenizer) -> list[int]:
  """Token ids that end a response (EOS, <|im_end|>, ...)."""
  return prompts.stop_token_ids(tokenizer)


def completion_text(tokenizer, token_ids: Sequence[int]) -> str:
  """A response's text as the judge sees it (the stop marker removed)."""
  return prompts.decode_completion(tokenizer, token_ids)


# ------------------------------------------------------------------ reward
class Judge:
  """Our sandboxed judge with the demo's limits; one per process.

  `rewards(problems_per_row, completions)` scores row i's completion text
  against problems_per_row[i]: 1.0 if the verdict is "pass", else 0.0.
  """

  def __init__(self, workers: int = JUDGE_WORKERS, timeout_s: float = JUDGE_TIMEOUT_S,
               memory_mb: int = JUDGE_MEMORY_MB):
    from microcoder_jax.evaluator import Evaluator  # pylint: disable=g-import-not-at-top
    self._ev = Evaluator(workers=workers, timeout_s=timeout_s, memory_mb=memory_mb)

  def rewards(self, problems_per_row: Sequence, completions: Sequence[str]) -> list[float]:
    if len(problems_per_row) != len(completions):
      raise ValueError(f"{len(problems_per_row)} problems for {len(completions)} completions")
    by_id = {p.id: p for p in problems_per_row}
    samples = [{"id": p.id, "completion": text, "prompt_opens_think": False}
               for p, text in zip(problems_per_row, completions)]
    return [1.0 if r.verdict == "pass" else 0.0 for r in self._ev.evaluate(by_id, samples)]

  def close(self) -> None:
    self._ev.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


# ------------------------------------------------------------------ runners
def add_runner_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
  """The flags every runner takes."""
  parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="RL steps to run")
  parser.add_argument("--out", required=True, help="where to write RESULT.json")
  parser.add_argument("--export-dir", required=True,
                      help="where to save the final policy as a Hugging Face directory")
  parser.add_argument("--seed", type=int, default=0, help="sampling / training seed")
  return parser


def peak_rss_gib(children: bool = False) -> float:
  """Peak resident set size of this process (plus, if `children`, of its
  largest waited-for child, as getrusage reports it) in GiB."""
  kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  if children:
    kib += resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
  return kib / 2**20  # ru_maxrss is in KiB on Linux


def step_record(step: int, **phases) -> dict:
  """One entry of "steps"; missing phases are null."""
  rec = {"step": int(step)}
  for k in STEP_KEYS:
    v = phases.get(k)
    rec[k] = None if v is None else float(v)
  return rec


def write_result(path: str, *, trainer: str, version: str, steps: Sequence[dict],
                 peak_rss_gib: float, notes: Sequence[str] = (), **extra) -> None:
  """Writes RESULT.json (the runner interface in the module docstring)."""
  out = {"trainer": trainer, "version": version, "steps": list(steps),
         "peak_rss_gib": float(peak_rss_gib), "notes": list(notes), **extra}
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1)


def heldout_command(model_dir: str, out_dir: str) -> list[str]:
  """The held-out pass@1 evaluation the harness runs on every export: our
  sampler and judge with the demo's held-out settings (T = 0.6, top-p 0.95,
  4 samples, 64 tokens, judge limits as in training), float32 for all."""
  return [sys.executable, "-m", "microcoder_jax.benchmark", "--model", model_dir,
          "--problems", HELDOUT_DATA, "--samples-per-problem", str(HELDOUT_SAMPLES),
          "--max-new-tokens", str(HELDOUT_MAX_NEW_TOKENS),
          "--temperature", str(HELDOUT_TEMPERATURE), "--top-p", str(HELDOUT_TOP_P),
          "--timeout", str(JUDGE_TIMEOUT_S), "--memory-mb", str(JUDGE_MEMORY_MB),
          "--dtype", "float32", "--out-dir", out_dir]
