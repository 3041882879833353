# ---
# jupyter:
#   colab:
#     provenance: []
#   jupytext:
#     cell_metadata_filter: -all
#     notebook_metadata_filter: colab,kernelspec,language_info,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # Judging code with the sandboxed evaluator
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/your-org/microcoder_jax/blob/main/colab/evaluator.ipynb)
#
# **Target runtime: Colab's default CPU runtime.** The evaluator runs on host
# CPUs only and never imports JAX.
#
# The evaluator is microcoder_jax's reward judge: it extracts the last fenced
# code block of a completion, runs it against the tests in a sandbox (separate
# process per program, rlimits, no network, namespaces / seccomp / landlock where
# the kernel allows them) and returns one verdict per sample. Judging rules,
# sandbox guarantees and limits are in `docs/evaluator.md`.
#
# The install cell takes the first of: an importable microcoder_jax; a checkout
# in the working directory (upload `microcoder_jax/`, or a `microcoder_jax*.zip` /
# `.tar.gz` of it, which the cell unpacks); a `microcoder_jax-*.whl` there; a
# clone of `REPO_URL` at `REF`. `your-org` in `REPO_URL` and in the links stands
# for the GitHub organisation that hosts microcoder_jax; put your fork's URL in
# `REPO_URL`.

# %%
# @title Install microcoder_jax (skipped when it is already importable)
import glob
import importlib.util
import os
import shutil
import subprocess
import sys

REPO_URL = "https://github.com/your-org/microcoder_jax"  # @param {type:"string"}
REF = "main"  # @param {type:"string"}


def importable():
  spec = importlib.util.find_spec("microcoder_jax")
  return spec is not None and spec.origin is not None  # not only a directory of that name


def uploaded_checkout():
  """A checkout in the working directory: microcoder_jax*/, or a .zip / .tar.gz of one."""
  for archive in glob.glob("microcoder_jax*.zip") + glob.glob("microcoder_jax*.tar.gz"):
    target = archive.removesuffix(".zip").removesuffix(".tar.gz") + "_unpacked"
    if not os.path.isdir(target):
      shutil.unpack_archive(archive, target)
  for top in sorted(glob.glob("microcoder_jax*/")):
    for root in [top, *sorted(glob.glob(os.path.join(top, "*/")))]:
      if (os.path.exists(os.path.join(root, "setup.py")) and
          os.path.exists(os.path.join(root, "microcoder_jax", "__init__.py"))):
        return os.path.abspath(root)
  return None


def pip_install(*args):
  subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)
  importlib.invalidate_caches()


WHEELS = sorted(glob.glob("microcoder_jax-*.whl"), key=os.path.getmtime)  # newest last
if importable():
  SOURCE = "the installed package"
elif (ROOT := uploaded_checkout()) is not None:
  pip_install("-e", ROOT)
  sys.path.insert(0, ROOT)  # an editable install is only on sys.path after a restart
  SOURCE = f"an uploaded checkout, {ROOT}"
elif WHEELS:
  pip_install(WHEELS[-1])
  SOURCE = f"the wheel {WHEELS[-1]}"
else:
  pip_install(f"git+{REPO_URL}@{REF}")
  SOURCE = f"{REPO_URL} at {REF}"
PACKAGE = os.path.dirname(importlib.util.find_spec("microcoder_jax").origin)
print(f"microcoder_jax from {SOURCE}: {PACKAGE}")

# %% [markdown]
# ## Problems
# Two schemas are accepted per row: the native one (`id`, `tests`, optional
# `fn_name` for LeetCode-style functions) and LiveCodeBench's
# `code_generation_lite` rows (`question_id`, `public_test_cases`, ...), so
# LiveCodeBench releases can be judged as downloaded.

# %%
# @title Three problems: stdin, functional, and a LiveCodeBench row
import json

from microcoder_jax.evaluator import Evaluator, parse_problem

rows = [
    {"id": "sum_ab", "question": "Read two integers A and B; print A+B.",
     "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "-5 5\n", "output": "0\n"},
               {"input": "1000000000 1000000000\n", "output": "2000000000\n"}]},
    {"id": "two_sum", "question": "Return indices of two numbers adding up to target.",
     "fn_name": "twoSum",
     "tests": [{"input": "[2, 7, 11, 15]\n9", "output": "[0, 1]", "testtype": "functional"},
               {"input": "[3, 2, 4]\n6", "output": "[1, 2]", "testtype": "functional"}]},
    {"question_id": "abc000_a", "question_title": "Double", "platform": "atcoder",
     "difficulty": "easy", "contest_date": "2025-01-01T00:00:00", "starter_code": "",
     "question_content": "Print twice N.", "metadata": "{}", "private_test_cases": "[]",
     "public_test_cases": json.dumps([{"input": "21\n", "output": "42\n", "testtype": "stdin"},
                                      {"input": "0\n", "output": "0\n", "testtype": "stdin"}])},
]
problems = {p.id: p for p in map(parse_problem, rows)}
for p in problems.values():
  print(f"{p.id:10s} mode={p.mode:10s} tests={len(p.tests)}")

# %% [markdown]
# ## Samples
# Completions as a model would write them: prose plus a fenced block. Some are
# right, some are wrong in the usual ways, and some try to cheat.

# %%
# @title Sample completions


def fenced(code):
  return f"Here is my solution.\n```python\n{code}\n```"


samples = [
    ("sum_ab", "correct", fenced("a, b = map(int, input().split())\nprint(a + b)")),
    ("sum_ab", "wrong answer", fenced("a, b = map(int, input().split())\nprint(a - b)")),
    ("sum_ab", "crashes", fenced("print(1 // 0)")),
    ("sum_ab", "infinite loop", fenced("while True:\n    pass")),
    ("sum_ab", "memory hog", fenced("x = bytearray(1 << 34)\nprint(len(x))")),
    ("sum_ab", "syntax error", fenced("print(")),
    ("sum_ab", "no code block", "The answer is A+B."),
    ("sum_ab", "prints nothing", fenced("import sys\nsys.exit(0)")),
    ("sum_ab", "opens a socket", fenced(
        "import socket\nsocket.create_connection(('example.com', 80), timeout=1)\nprint(3)")),
    ("two_sum", "correct", fenced(
        "class Solution:\n    def twoSum(self, nums, target):\n"
        "        seen = {}\n        for i, x in enumerate(nums):\n"
        "            if target - x in seen:\n                return [seen[target - x], i]\n"
        "            seen[x] = i")),
    ("two_sum", "wrong answer", fenced(
        "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 0]")),
    ("abc000_a", "correct", fenced("print(2 * int(input()))")),
]

# %% [markdown]
# ## Judge
# `submit` returns at once (the trainer keeps sampling while programs run);
# `collect` waits for the verdicts. `timeout_s` is CPU seconds per test,
# `memory_mb` the address-space limit on top of the warm interpreter.

# %%
# @title Judge and show the verdict table
with Evaluator(workers=2, timeout_s=1.0, memory_mb=512) as ev:
  ticket = ev.submit(problems, [{"id": pid, "completion": text} for pid, _, text in samples])
  results = ev.collect(ticket)

header = f"| {'problem':9s} | {'sample':15s} | {'verdict':14s} | tests | seconds |"
print(header)
print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
for (pid, what, _), r in zip(samples, results):
  print(f"| {pid:9s} | {what:15s} | {r.verdict:14s} | {r.tests_passed}/{r.tests_total:<3d} "
        f"| {r.seconds:7.2f} |")
print("\nsandbox isolation level:", results[0].isolation or "n/a")

counts = {}
for r in results:
  counts[r.verdict] = counts.get(r.verdict, 0) + 1
print("verdict counts:", counts)
assert [r.verdict for r in results][:3] == ["pass", "wrong_answer", "runtime_error"]
assert results[6].verdict == "no_code" and results[8].verdict != "pass"
