"""Bad input files: every bad row is reported by file, line and field and
skipped, the rest is judged; bad limits and --out fail before any work."""
import base64
import json
import os
import pickle
import subprocess
import sys
import zlib

import pytest

from microcoder_jax.evaluator import load_problems

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOOD = {"id": "add", "question": "", "tests": [
    {"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]}
ADD = "a, b = map(int, input().split())\nprint(a + b)"


def _cli(tmp_path, problems: bytes, samples: bytes, *extra, out=None,
         module="microcoder_jax.evaluate", python_flags=()):
  p, s = tmp_path / "p.jsonl", tmp_path / "s.jsonl"
  p.write_bytes(problems)
  s.write_bytes(samples)
  out = out or str(tmp_path / "r.jsonl")
  proc = subprocess.run(
      [sys.executable, *python_flags, "-m", module, "--problems", str(p),
       "--samples", str(s), "--out", out, "--timeout", "1", "--workers", "1", *extra],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  rows = [json.loads(l) for l in open(out)] if os.path.exists(out) else None
  return proc, rows


def _lines(*rows) -> bytes:
  return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n"
                  for r in rows)


BAD_PROBLEMS = [
    (dict(GOOD, id="tl", time_limit_s=[1]), "time_limit_s"),
    (dict(GOOD, id="nan", time_limit_s=float("nan")), "time_limit_s"),
    (dict(GOOD, id="neg", time_limit_s=-2), "time_limit_s"),
    (dict(GOOD, id="mem", memory_mb=0), "memory_mb"),
    (dict(GOOD, id="fn", fn_name=123, tests=[
        {"input": "1", "output": "1", "testtype": "functional"}]), "fn_name"),
    (dict(GOOD, id="json", fn_name="f", tests=[
        {"input": "[1, 2", "output": "3", "testtype": "functional"}]), "not JSON"),
    (dict(GOOD, id="tol", compare={"float_tol": "1e-6"}), "compare.float_tol"),
    (dict(GOOD, id="key", compare={"lenient": True}), "unknown keys"),
    (dict(GOOD, id="q", question=5), "question"),
    (dict(GOOD, id="tt", tests=[{"input": "1", "output": "1", "testtype": "x"}]), "testtype"),
    (dict(GOOD, id=7), "'id'"),
]


def test_every_field_is_checked_and_named(tmp_path):
  path = tmp_path / "p.jsonl"
  path.write_bytes(_lines(GOOD, *[row for row, _ in BAD_PROBLEMS]))
  errors = []
  probs = load_problems(str(path), errors)
  assert list(probs) == ["add"]
  assert len(errors) == len(BAD_PROBLEMS)
  for n, (error, (_, field)) in enumerate(zip(errors, BAD_PROBLEMS), 2):
    assert error.startswith(f"{path}:{n}: ") and field in error, error


def test_cli_skips_bad_rows_and_judges_the_rest(tmp_path):
  problems = _lines(GOOD, b'{"id": "bad \xff utf8", "tests": []}', dict(GOOD, id="tl", time_limit_s=[1]))
  samples = _lines({"id": "add", "completion": f"```python\n{ADD}\n```"},
                   b'{"id": "add", "completion": "\xc3"}',
                   {"id": "add", "code": 5},
                   {"id": "nope", "code": ADD},
                   {"id": "add", "code": ADD, "completion": "x"},
                   {"id": "add", "code": "print(4)"})
  proc, rows = _cli(tmp_path, problems, samples)
  assert proc.returncode == 1, proc.stderr
  for where in ("p.jsonl:2: invalid UTF-8", "p.jsonl:3: field 'time_limit_s'",
                "s.jsonl:2: invalid UTF-8", "s.jsonl:3: needs exactly one",
                "s.jsonl:4: unknown problem id 'nope'", "s.jsonl:5: needs exactly one"):
    assert where in proc.stderr, where
  assert [(r["id"], r["sample"], r["verdict"]) for r in rows] == [
      ("add", 0, "pass"), ("add", 1, "wrong_answer")]


def test_evaluator_package_runs_the_same_cli_without_jax(tmp_path):
  """`python -m microcoder_jax.evaluator` judges like `microcoder_jax.evaluate`
  and imports no jax (`-X importtime` lists every module imported)."""
  samples = _lines({"id": "add", "code": ADD}, {"id": "add", "code": "print(4)"})
  proc, rows = _cli(tmp_path, _lines(GOOD), samples, module="microcoder_jax.evaluator",
                    python_flags=("-X", "importtime"))
  assert proc.returncode == 0, proc.stderr
  assert [(r["id"], r["sample"], r["verdict"]) for r in rows] == [
      ("add", 0, "pass"), ("add", 1, "wrong_answer")]
  imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
              if line.startswith("import time:") and "|" in line}
  assert "microcoder_jax.evaluate" in imported
  assert not {m for m in imported if m.split(".")[0] in ("jax", "jaxlib", "flax")}


@pytest.mark.parametrize("flags,message", [
    (("--timeout", "nan"), "timeout_s"), (("--timeout", "0"), "timeout_s"),
    (("--memory-mb", "-5"), "memory_mb"), (("--disk-mb", "0"), "disk_mb")])
def test_cli_rejects_bad_limits_before_judging(tmp_path, flags, message):
  proc, _ = _cli(tmp_path, _lines(GOOD), _lines({"id": "add", "code": ADD}), *flags)
  assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_cli_validates_out_before_judging(tmp_path):
  missing = str(tmp_path / "no" / "such" / "dir" / "r.jsonl")
  proc, rows = _cli(tmp_path, _lines(GOOD), _lines({"id": "add", "code": ADD}), out=missing)
  assert proc.returncode != 0 and "does not exist" in proc.stderr and rows is None
  assert "judged" not in proc.stderr


def test_decompression_bomb_is_rejected_with_bounded_memory(tmp_path):
  """A small LiveCodeBench row whose private tests inflate to 600 MB."""
  comp = zlib.compressobj(9)
  inner = pickle.dumps("x" * 0)  # The header of a pickled str, then the bomb.
  chunks = [comp.compress(inner[:-1])]
  block = b"\0" * (1 << 20)
  chunks += [comp.compress(block) for _ in range(600)]
  chunks.append(comp.flush())
  row = {"question_id": "bomb", "question_content": "", "public_test_cases": "[]",
         "private_test_cases": base64.b64encode(b"".join(chunks)).decode(),
         "metadata": "{}"}
  path = tmp_path / "bomb.jsonl"
  path.write_bytes(_lines(row, GOOD))
  assert path.stat().st_size < 4 << 20
  code = ("import resource, sys\nfrom microcoder_jax.evaluator import load_problems\n"
          "from microcoder_jax.evaluator.problems import MAX_TESTS_BYTES\n"
          "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
          f"errors = []\nprobs = load_problems({str(path)!r}, errors)\n"
          "print(list(probs), errors[0][:200])\n"
          "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
          "print((peak - base) * 1024 - MAX_TESTS_BYTES)\n")
  proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                        text=True, timeout=120, check=True)
  listing, errors, over = proc.stdout.splitlines()[0], proc.stdout, int(
      proc.stdout.splitlines()[-1])
  assert listing.startswith("['add']") and "decompresses to more than" in errors
  assert over < 64 << 20  # Growth bounded by MAX_TESTS_BYTES, never the 600 MB.
