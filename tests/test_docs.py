"""The documentation cannot drift silently.

Commands: every command of a fenced ```bash / ```sh / ```shell block in
README.md and docs/*.md needs a CI decision in DECISIONS below: `run` (CI
executes it exactly as written, in a scratch copy of the checkout, under a
timeout, and it must succeed) or `skip` with the reason CI cannot run it.
Only cheap commands run (together about 50 CPU-seconds on a 2-core x86-64
VM); anything longer is a `skip` that says how long it takes.
Commands with placeholders (`...`, `<...>`, `your-org`) are skipped
automatically. A documented command without a decision, or a decision that
no longer matches any documented command, fails with a message saying what
to do.

Configuration: docs/configuration.md lists every key of
`config_lib.base_config` with its default, and no other key.

How commands are read from a block: backslash-continued lines are joined,
comment lines are skipped, a trailing `# comment` is dropped, and a
`for`/`while`/`if` compound is one command up to its `done`/`fi`.
"""
import ast
import dataclasses
import glob
import os
import re
import subprocess
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DOCS = ["README.md"] + sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md")))
# Entries of the checkout a scratch copy does not link: where documented
# commands write their outputs (and git's own directory).
NOT_LINKED = {".git", "runs", "benchmark_out"}
PLACEHOLDER = re.compile(r"\.\.\.|<[A-Za-z][^<>]*>|your-org")


@dataclasses.dataclass(frozen=True)
class Decision:
  """`pattern`: the command's exact text, or a compiled regex matching it
  whole. `run`: executed in CI within `timeout_s`, its output containing
  `expect`; else `why` says why CI skips it."""
  pattern: str | re.Pattern
  run: bool
  why: str = ""
  timeout_s: int = 0
  expect: str = ""

  def matches(self, command: str) -> bool:
    if isinstance(self.pattern, re.Pattern):
      return self.pattern.fullmatch(command) is not None
    return self.pattern == command


def run(pattern, timeout_s: int, expect: str = "") -> Decision:
  return Decision(pattern, True, timeout_s=timeout_s, expect=expect)


def skip(pattern, why: str) -> Decision:
  assert why, f"a skip needs its reason: {pattern}"
  return Decision(pattern, False, why=why)


_TRAIN = "python -m microcoder_jax.train "

# Times are wall times on a 2-core x86-64 VM.
DECISIONS = [
    # README: set-up and the demo.
    skip("pip install -e . && " + _TRAIN + "--config=configs/demo.py --workdir=runs/demo",
         "installs from the package index; the demo trains for about 5 minutes"),
    skip('pip install -e ".[test]" && python -m pytest tests -q',
         "installs from the package indexes; this is CI's own test command (about "
         "10 minutes)"),
    skip('git clone "$REPO_URL" && cd microcoder_jax',
         "clones the repository over the network (REPO_URL is the reader's fork)"),
    skip("python -m venv .venv && source .venv/bin/activate",
         "creates a virtual environment for the reader's shell"),
    skip("pip install -e .", "installs from the package index (network)"),
    skip(_TRAIN + "--config=configs/demo.py --workdir=runs/demo",
         "the 40-step demo: about 5 minutes (tests/test_train.py runs it shortened)"),
    skip("python -m microcoder_jax.benchmark --model runs/demo --out-dir runs/demo/benchmark",
         "needs the demo's workdir (5 minutes of training); tests/test_train.py checks "
         "that the benchmark reproduces a run's held-out evaluation"),
    # Training.
    skip(_TRAIN + "--config=configs/microcoder_grpo.py:model=qwen3_1p7b,max_response_length="
         "4096,train=data/train.jsonl,eval=data/lcb_v6.jsonl --workdir=runs/mc_1p7b",
         "downloads Qwen3-1.7B and needs an accelerator and data/*.jsonl"),
    skip(_TRAIN + "--config=configs/microcoder_grpo.py:model=qwen3_4b_instruct_2507,"
         'max_response_length=8192 --config.rl.rho=0.2 --config.rl.temperature="0.6,1.2@140" '
         "--workdir=runs/x",
         "downloads Qwen3-4B and needs an accelerator and training data"),
    run(_TRAIN + "--config=configs/microcoder_grpo.py:runlocal --config.rl.rho=0.2 "
        "--workdir=runs/rho_smoke", 240, expect="exported policy"),
    skip(_TRAIN + "--config=configs/dapo.py:runlocal --workdir=runs/dapo_smoke",
         "about 20 s, the same runlocal path as the README's smoke run above, which "
         "runs (keeps the commands CI runs under a minute)"),
    skip(_TRAIN + "--config=configs/demo.py --config.rl.temperature=auto --workdir=runs/auto",
         "the 40-step demo plus a temperature probe: over 5 minutes "
         "(tests/test_train.py runs `auto` shortened)"),
    skip("python -m microcoder_jax.select_temperature --model microcoder_jax/data/bundled/"
         "tiny_policy --problems bundled:synthetic_train --max-new-tokens 64 --target 0.337 "
         "--out runs/temperature",
         "7 temperatures x 64 prompts x 8 responses: about 2 minutes "
         "(tests/test_select_temperature.py covers it)"),
    skip("python -m microcoder_jax.warm_start --out microcoder_jax/data/bundled/tiny_policy",
         "about 3 minutes, and it rewrites the committed policy"),
    skip("python benchmarks/temperature_study.py --steps 40 --seeds 0 1 2 "
         "--out-dir runs/temperature",
         "the temperature study: many 40-step trainings, hours on 2 cores"),
    # Launch scripts: the real ones need gcloud and a cloud project; the
    # documented dry runs only print.
    skip(re.compile(r"NAME=\S+ ZONE=\S+"), "sets variables for the launch commands after it"),
    skip(re.compile(r"launch/(create_tpu|run_tpu|copy_checkpoints|delete_tpu)\.sh (?!--dry-run)"
                    r".*"),
         "needs gcloud, a cloud project and TPU quota"),
    skip(re.compile(r"launch/run_gpu\.sh (?!--dry-run).*"), "needs NVIDIA GPUs"),
    run("launch/create_tpu.sh --dry-run --name mc --zone us-west4-a --type v5litepod-16 "
        "--from-local", 60, expect="+ gcloud compute tpus tpu-vm create mc"),
    run("launch/run_tpu.sh --dry-run --name mc --zone us-west4-a -- "
        "--config=configs/microcoder_grpo.py:model=qwen3_1p7b,train=data/train.jsonl",
        60, expect="--config.multihost=True"),
    run("launch/delete_tpu.sh --dry-run --name mc --zone us-west4-a --copy-to "
        "gs://my-bucket/runs", 60, expect="+ gcloud compute tpus tpu-vm delete mc"),
    skip(re.compile(r"for i in 0 1; do\n.*-m microcoder_jax\.train .*\ndone; wait", re.S),
         "two trainer processes for 2 steps: about 2.5 minutes (tests/test_multiprocess.py "
         "runs the same arrangement on a smaller model in about 100 s)"),
    # Evaluation.
    skip("python -m microcoder_jax.benchmark --model runs/mc_1p7b --problems lcb_v6.jsonl "
         "--samples-per-problem 4 --max-new-tokens 4096 --out-dir runs/mc_1p7b/lcb_4k",
         "needs a paper-scale workdir and LiveCodeBench data"),
    skip("python -m microcoder_jax.evaluator --problems P.jsonl --samples S.jsonl "
         "--out R.jsonl", "P.jsonl and S.jsonl stand for the reader's files"),
    run("python -m microcoder_jax.evaluator --problems tests/data/evaluator/lcb_problems.jsonl "
        "--samples tests/data/evaluator/lcb_samples.jsonl --out /tmp/lcb_results.jsonl", 120,
        expect="pass rate 0.5000"),
    # Curation.
    skip(re.compile(r"python -m microcoder_jax\.curation --inputs lcb\.jsonl taco\.jsonl .*"),
         "needs the reader's problem collections (lcb.jsonl, taco.jsonl, ...)"),
    run("python -m microcoder_jax.curation --inputs tests/data/curation/native.jsonl "
        "tests/data/curation/taco.jsonl tests/data/curation/codecontests.jsonl --out-dir "
        "runs/curated --min-tests 2 --after 2024-08-01 --max-tests 5 --policy "
        "microcoder_jax/data/bundled/tiny_policy --samples 4 --temperature 0.6 "
        "--max-new-tokens 64 --ratings tests/data/curation/ratings.jsonl", 180,
        expect="collected 23, kept 10"),
    # Scaling.
    skip("python benchmarks/scale_aot.py",
         "five paper-scale ahead-of-time compiles on 8 and 32 fake devices, about 15 s "
         "each and more for the 8B row (tests/test_memory.py checks small shapes)"),
    skip("python benchmarks/scale_aot.py --rows update_1p7b --remat dots_saveable",
         "one paper-scale compile, about 15 s; CI's time goes to the commands above"),
]


# ------------------------------------------------------------ extraction
_FENCE = re.compile(r"^```(?:bash|sh|shell)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
_OPENERS = {"for", "while", "until", "if", "case"}
_CLOSERS = {"done", "fi", "esac"}


def strip_comment(line: str) -> str:
  """`line` without a trailing shell comment (a `#` starting a word outside quotes)."""
  quote = None
  for i, ch in enumerate(line):
    if quote:
      if ch == quote:
        quote = None
    elif ch in "'\"":
      quote = ch
    elif ch == "#" and (i == 0 or line[i - 1].isspace()):
      return line[:i].rstrip()
  return line.rstrip()


def _words(line: str) -> list[str]:
  return re.split(r"[\s;]+", line.strip())


def commands_of_block(block: str) -> list[tuple[int, str]]:
  """[(line offset in the block, command)] of one fenced block."""
  logical, start, pending = [], 0, None  # lines with continuations joined
  for i, raw in enumerate(block.splitlines()):
    line = raw.rstrip()
    continued = line.endswith("\\")
    part = line[:-1].rstrip() if continued else line
    if pending is None:
      start, pending = i, part
    else:
      pending += " " + part.lstrip()
    if not continued:
      logical.append((start, pending))
      pending = None
  if pending is not None:
    logical.append((start, pending))
  out, compound, depth = [], [], 0
  for offset, line in logical:
    text = strip_comment(line)
    if not text.strip():
      continue
    words = _words(text)
    opens = sum(w in _OPENERS for w in words)
    closes = sum(w in _CLOSERS for w in words)
    if depth or (opens > closes):
      compound.append((offset, text.strip() if not compound else text.rstrip()))
      depth += opens - closes
      if depth <= 0:
        out.append((compound[0][0], "\n".join(t for _, t in compound)))
        compound, depth = [], 0
      continue
    out.append((offset, text.strip()))
  if compound:
    out.append((compound[0][0], "\n".join(t for _, t in compound)))
  return out


def documented_commands() -> list[tuple[str, int, str]]:
  """[(file, line, command)] over README.md and docs/*.md."""
  out = []
  for name in DOCS:
    with open(os.path.join(REPO, name), encoding="utf-8") as f:
      text = f.read()
    for m in _FENCE.finditer(text):
      first = text.count("\n", 0, m.start(1)) + 1
      for offset, command in commands_of_block(m.group(1)):
        out.append((name, first + offset, command))
  return out


def decisions_for(command: str) -> list[Decision]:
  return [d for d in DECISIONS if d.matches(command)]


COMMANDS = documented_commands()
RUN_COMMANDS = sorted({c for _, _, c in COMMANDS
                       if not PLACEHOLDER.search(c) and any(d.run for d in decisions_for(c))})


# ----------------------------------------------------------------- tests
def test_extraction():
  block = ("# a comment line\n"
           "python -m x --a 1 \\\n"
           "    --b '#not a comment'   # a comment\n"
           "for i in 0 1; do\n"
           "  echo $i &\n"
           "done; wait\n"
           "echo done-ish\n")
  assert commands_of_block(block) == [
      (1, "python -m x --a 1 --b '#not a comment'"),
      (3, "for i in 0 1; do\n  echo $i &\ndone; wait"),
      (6, "echo done-ish")]
  assert PLACEHOLDER.search("--model <HF id>") and PLACEHOLDER.search("--config=...")
  assert not PLACEHOLDER.search("python -m x --out a.jsonl")


def test_every_command_has_a_decision():
  assert COMMANDS, "no commands found: is the fence pattern still right?"
  missing, ambiguous = [], []
  for name, line, command in COMMANDS:
    if PLACEHOLDER.search(command):
      continue  # skipped: it has a placeholder the reader fills in
    found = decisions_for(command)
    if not found:
      missing.append(f"  {name}:{line}: {command}")
    elif len(found) > 1:
      ambiguous.append(f"  {name}:{line}: {command}")
  assert not missing, (
      "documented commands without a CI decision; classify each in DECISIONS in "
      "tests/test_docs.py as run(COMMAND, timeout_s) if it is cheap (well under a minute "
      "on 2 cores, no network, no accelerator), else skip(COMMAND, 'why, and how long'):\n"
      + "\n".join(missing))
  assert not ambiguous, ("commands matched by several DECISIONS entries; make the "
                         "patterns exclusive:\n" + "\n".join(ambiguous))


def test_every_decision_matches_a_documented_command():
  stale = [d.pattern if isinstance(d.pattern, str) else d.pattern.pattern
           for d in DECISIONS
           if not any(d.matches(c) for _, _, c in COMMANDS if not PLACEHOLDER.search(c))]
  assert not stale, ("DECISIONS entries that match no documented command (the docs "
                     "changed?); update or remove them:\n  " + "\n  ".join(stale))


@pytest.fixture
def scratch(tmp_path):
  """A copy of the checkout made of links, so that what a command writes
  (runs/, results) lands in a temporary directory."""
  for name in os.listdir(REPO):
    if name not in NOT_LINKED:
      os.symlink(os.path.join(REPO, name), tmp_path / name)
  return tmp_path


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=lambda c: c[:60])
def test_documented_command_runs(command, scratch):
  (decision,) = decisions_for(command)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      p for p in (str(scratch), os.environ.get("PYTHONPATH", "")) if p))
  # As on a reader's machine: no fake devices from tests/conftest.py.
  env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
      "--xla_force_host_platform_device_count=8", "").strip()
  t0 = time.monotonic()
  proc = subprocess.run(["bash", "-c", command], cwd=scratch, env=env, capture_output=True,
                        text=True, timeout=decision.timeout_s)
  output = proc.stdout + proc.stderr
  assert proc.returncode == 0, (
      f"documented command failed (exit {proc.returncode}) after "
      f"{time.monotonic() - t0:.0f} s; fix the docs or the code:\n{command}\n{output[-4000:]}")
  assert decision.expect in output, (
      f"expected {decision.expect!r} in the output of\n{command}\n{output[-4000:]}")


# --------------------------------------------------- configuration keys
def _documented_keys() -> dict[str, str]:
  """{key: default cell} from the tables of the "Keys" section."""
  with open(os.path.join(REPO, "docs", "configuration.md"), encoding="utf-8") as f:
    text = f.read()
  section = text.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
  out, prefix, previous = {}, "", ""
  for line in section.splitlines():
    heading = not previous.strip() and re.match(r"^(Top level|`(\w+)`)", line)
    previous = line
    if heading:
      prefix = f"{heading.group(2)}." if heading.group(2) else ""
      continue
    if not line.startswith("| `"):
      continue
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
    keys = re.findall(r"`(\w+)`", cells[0])
    default = cells[2] if prefix == "rl." else cells[1]  # rl has a symbol column
    values = default.split(", ") if len(keys) > 1 else [default]
    assert len(values) == len(keys), line
    for key, value in zip(keys, values):
      out[prefix + key] = value
  return out


def _parse_default(cell: str):
  text = cell.split(" (")[0].replace("`", "").strip()
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def test_configuration_doc_lists_every_key_with_its_default():
  from microcoder_jax import config_lib  # pylint: disable=g-import-not-at-top
  c = config_lib.base_config("microcoder_grpo")
  actual = {}
  for key in config_lib._leaves(c):  # pylint: disable=protected-access
    value = c
    for part in key.split("."):
      value = value[part]
    actual[key] = value.to_dict() if hasattr(value, "to_dict") else value
  documented = _documented_keys()
  assert sorted(set(actual) - set(documented)) == [], "keys missing in docs/configuration.md"
  assert sorted(set(documented) - set(actual)) == [], "docs/configuration.md lists unknown keys"
  wrong = {k: (documented[k], actual[k]) for k in actual
           if _parse_default(documented[k]) != actual[k]
           and not (isinstance(actual[k], tuple) and _parse_default(documented[k]) == ())}
  assert not wrong, f"docs/configuration.md defaults (documented, base_config): {wrong}"
