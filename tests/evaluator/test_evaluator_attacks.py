"""The attack corpus (tests/data/evaluator/attacks.jsonl, see build_attacks.py).

Each attack is judged as the issue's threat model requires, no attack can
reach the host canaries this module sets up, answers cannot be learned across
attempts, and no attack turns anything into `eval_error`.
"""
import json
import os
import socket
import threading

import pytest

from microcoder_jax.evaluator import Evaluator
from microcoder_jax.evaluator import load_problems
from microcoder_jax.evaluator.orchestrator import IsolationError

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "evaluator")
CANARY_DIR = "/tmp/mcj-canary-7c41"  # build_attacks.CANARY_DIR
ABSTRACT = "\0mcj-canary-7c41"


def _attacks():
  with open(os.path.join(DATA, "attacks.jsonl"), encoding="utf-8") as f:
    return [json.loads(l) for l in f if l.strip()]


def _sample(row):
  s = {"id": row["id"]}
  if row.get("code_parts"):
    s["code"] = "".join(text * times for text, times in row["code_parts"])
  elif row.get("completion") is not None:
    s["completion"] = row["completion"]
    s["prompt_opens_think"] = row.get("prompt_opens_think", False)
  else:
    s["code"] = row["code"]
  return s


class _Listener:
  """A unix socket server that records every connection it accepts."""

  def __init__(self, address):
    self.sock = socket.socket(socket.AF_UNIX)
    self.sock.bind(address)
    self.sock.listen(8)
    self.sock.settimeout(0.1)
    self.accepted, self._stop = [], threading.Event()
    self._thread = threading.Thread(target=self._serve, daemon=True)
    self._thread.start()

  def _serve(self):
    while not self._stop.is_set():
      try:
        self.accepted.append(self.sock.accept()[0])
      except OSError:
        pass

  def close(self):
    self._stop.set()
    self._thread.join()
    self.sock.close()


@pytest.fixture(scope="module")
def canaries():
  """Root-owned host files and sockets that no program may touch."""
  os.makedirs(CANARY_DIR, mode=0o755, exist_ok=True)
  victim = os.path.join(CANARY_DIR, "victim")
  with open(victim, "w") as f:
    f.write("victim")
  os.chmod(victim, 0o644)
  os.utime(victim, ns=(1_000_000_000, 1_000_000_000))
  listeners = [_Listener(os.path.join(CANARY_DIR, "sock")), _Listener(ABSTRACT)]
  before = os.stat(victim)
  yield dict(victim=victim, before=before, listeners=listeners)
  for l in listeners:
    l.close()
  for name in os.listdir(CANARY_DIR):
    os.unlink(os.path.join(CANARY_DIR, name))
  os.rmdir(CANARY_DIR)


@pytest.fixture(scope="module")
def attack_run(canaries):
  problems = load_problems(os.path.join(DATA, "attack_problems.jsonl"))
  rows = [r for r in _attacks() if not r.get("repeat")]
  with Evaluator(workers=2, timeout_s=2.0, memory_mb=256) as ev:
    results = ev.evaluate(problems, [_sample(r) for r in rows])
  return rows, results


def test_every_attack_gets_its_verdict(attack_run):
  rows, results = attack_run
  wrong = [(r["class"], r["note"], r["expect"], res.verdict, res.detail[:120])
           for r, res in zip(rows, results) if res.verdict != r["expect"]]
  assert not wrong, "\n".join(map(str, wrong))
  assert not any(res.verdict == "eval_error" for res in results)
  classes = {r["class"] for r in _attacks()}
  assert classes == {"host", "answer_learning", "limits", "verdict_faking", "batch",
                     "comparator", "correct_rejected", "thinking"}


def test_host_canaries_are_untouched(attack_run, canaries):
  del attack_run
  after = os.stat(canaries["victim"])
  before = canaries["before"]
  assert (after.st_mode, after.st_uid, after.st_mtime_ns) == (
      before.st_mode, before.st_uid, before.st_mtime_ns)
  with open(canaries["victim"]) as f:
    assert f.read() == "victim"
  try:
    assert not os.listxattr(canaries["victim"])
  except OSError:  # File system without xattrs: nothing to check.
    pass
  assert sorted(os.listdir(CANARY_DIR)) == ["sock", "victim"]
  for listener in canaries["listeners"]:
    assert not listener.accepted


def test_answers_cannot_be_learned_across_attempts(canaries):
  """The learner would find the 4-digit answer within 40 attempts through any
  channel that outlives a program; run one worker, one attempt at a time."""
  del canaries
  problems = load_problems(os.path.join(DATA, "attack_problems.jsonl"))
  (row,) = [r for r in _attacks() if r.get("repeat")]
  verdicts = []
  with Evaluator(workers=1, timeout_s=2.0, cache=False) as ev:
    for _ in range(row["repeat"]):
      verdicts.append(ev.evaluate(problems, [_sample(row)])[0])
  assert [r.verdict for r in verdicts] == ["wrong_answer"] * row["repeat"]
  assert all(r.tests_passed == 0 for r in verdicts)


def test_compilation_runs_under_the_memory_limit():
  problems = load_problems(os.path.join(DATA, "attack_problems.jsonl"))
  (row,) = [r for r in _attacks() if r.get("code_parts")]
  with Evaluator(workers=1, timeout_s=2.0, memory_mb=128,
                 max_code_bytes=64 << 20) as ev:
    res = ev.evaluate(problems, [_sample(row)])[0]
  assert res.verdict == "compile_error", res.detail
  assert "MemoryError" in res.detail or "limits" in res.detail


def test_a_weaker_sandbox_is_refused_unless_accepted():
  with pytest.raises(IsolationError, match="seccomp"):
    Evaluator(workers=1, sandbox_disable=("seccomp",))
  with Evaluator(workers=1, sandbox_disable=("seccomp",), allow_weak_isolation=True) as ev:
    assert "seccomp" not in ev.isolation.split(",")


@pytest.mark.parametrize("kwargs", [dict(timeout_s=float("nan")), dict(timeout_s=0),
                                    dict(timeout_s=-1), dict(memory_mb=float("inf")),
                                    dict(disk_mb=0), dict(timeout_s=[1])])
def test_limits_must_be_finite_and_positive(kwargs):
  with pytest.raises(ValueError, match=next(iter(kwargs))):
    Evaluator(workers=1, **kwargs)
