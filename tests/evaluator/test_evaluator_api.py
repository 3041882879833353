"""Evaluator API: async submit/collect, cache, early exit, robustness, CLI."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from microcoder_jax.evaluator import Evaluator
from microcoder_jax.evaluator import parse_problem
from microcoder_jax.evaluator import Problem

ADD = parse_problem({"id": "add", "question": "", "tests": [
    {"input": f"{i} {i}\n", "output": f"{2 * i}\n", "testtype": "stdin"}
    for i in range(5)]})
GOOD = "a, b = map(int, input().split())\nprint(a + b)"
LAST_WRONG = "a, b = map(int, input().split())\nprint(a + b + (a == 4))"
SLEEP = "import time\ntime.sleep(30)"
DATA = os.path.join(os.path.dirname(__file__), "..", "data", "evaluator")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="module")
def ev():
  with Evaluator(workers=2, timeout_s=1.0) as e:
    yield e


def test_submit_collect_overlap_and_order(ev):
  t1 = ev.submit([ADD], [{"id": "add", "code": SLEEP.replace("30", "0.3") + "\n" + GOOD}])
  t2 = ev.submit([ADD], [("add", f"```python\n{GOOD}\n```"),
                         ("add", "```python\nprint(0)\n```")])
  r2 = ev.collect(t2)
  assert [(r.sample, r.verdict) for r in r2] == [(0, "pass"), (1, "wrong_answer")]
  assert ev.collect(t1)[0].verdict == "pass"


def test_identical_programs_run_once(ev):
  before = dict(ev.stats)
  code = GOOD + "\n# group member"
  res = ev.evaluate({"add": ADD}, [{"id": "add", "code": code}] * 6)
  assert [r.sample for r in res] == list(range(6))
  assert all(r.verdict == "pass" for r in res)
  assert ev.stats["programs"] - before.get("programs", 0) == 1
  again = ev.evaluate({"add": ADD}, [{"id": "add", "code": code}])
  assert again[0].verdict == "pass" and ev.stats["cache_hits"] >= 1
  # Any textual difference is another program (whitespace inside a literal
  # can change what a program does).
  ev.evaluate({"add": ADD}, [{"id": "add", "code": code + "  \n"}])
  assert ev.stats["programs"] - before.get("programs", 0) == 2


def test_early_exit_and_partial_credit(ev):
  res = ev.evaluate({"add": ADD}, [{"id": "add", "code": "print(0)"},
                                   {"id": "add", "code": LAST_WRONG}])
  assert [(r.verdict, r.tests_passed, r.tests_total) for r in res] == [
      ("wrong_answer", 1, 5), ("wrong_answer", 4, 5)]
  with Evaluator(workers=1, timeout_s=1.0, early_exit=False) as full:
    res = full.evaluate({"add": ADD}, [{"id": "add", "code": "print(0)"}])
  assert (res[0].verdict, res[0].tests_passed) == ("wrong_answer", 1)


def test_empty_or_unknown_problem_is_never_a_pass(ev):
  empty = Problem(id="e", mode="stdin", tests=())
  res = ev.evaluate({"e": empty}, [{"id": "e", "code": "print(1)"},
                                   {"id": "nope", "code": "print(1)"}])
  assert [r.verdict for r in res] == ["eval_error", "eval_error"]


def test_submit_limits_replace_the_defaults_for_those_samples():
  """Held-out evaluation judges under its own limits (`heldout.Settings`)
  through an evaluator shared with rollouts."""
  loop = "a, b = map(int, input().split())\nx = 0\nfor i in range(10**9): x += i\nprint(a + b)"
  with Evaluator(workers=1, timeout_s=30.0) as e:
    t0 = time.perf_counter()
    res = e.collect(e.submit([ADD], [{"id": "add", "code": loop}], timeout_s=0.3))
    assert res[0].verdict == "timeout" and time.perf_counter() - t0 < 10
    with pytest.raises(ValueError, match="timeout_s"):
      e.submit([ADD], [{"id": "add", "code": GOOD}], timeout_s=-1)


def test_wrong_answer_detail_shows_the_first_difference(ev):
  res = ev.evaluate({"add": ADD}, [{"id": "add", "code": LAST_WRONG}])[0]
  assert res.verdict == "wrong_answer"
  assert res.detail.startswith("test 4: token 1: expected '8', got '9'"), res.detail


def test_failure_detail_carries_the_stderr_tail(ev):
  code = "import sys\nprint('note', file=sys.stderr)\nraise ValueError('boom-17')"
  res = ev.evaluate({"add": ADD}, [{"id": "add", "code": code}])[0]
  assert res.verdict == "runtime_error"
  assert "stderr: note" in res.detail and "ValueError: boom-17" in res.detail
  assert 'File "main.py", line 3' in res.detail and "program.py" not in res.detail


CONCURRENT = """
import threading, signal, time, queue, sys
q = queue.Queue()
workers = [threading.Thread(target=lambda i=i: q.put(i * i)) for i in range(4)]
for t in workers:
    t.start()
for t in workers:
    t.join()
assert sorted(q.get() for _ in range(4)) == [0, 1, 4, 9]
fired = []
signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
signal.setitimer(signal.ITIMER_REAL, 0.01)
time.sleep(0.05)
assert fired and threading.current_thread() is threading.main_thread()
sys.setrecursionlimit(10 ** 6)
threading.stack_size(1 << 27)
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
out = []
t = threading.Thread(target=lambda: out.append(depth(100000)))
t.start()
t.join()
a, b = map(int, input().split())
print(a + b if out == [100000] else "broken")
"""


def test_threads_signals_and_deep_recursion_work(ev):
  """Test processes are forked without CPython's after-fork hooks
  (sandbox.fork_bare): threads, signal handlers and big thread stacks must
  still behave as in a normal interpreter."""
  res = ev.evaluate({"add": ADD}, [{"id": "add", "code": CONCURRENT}])[0]
  assert res.verdict == "pass", res.detail


def _worker_pids(evaluator):
  return [p.proc.pid for p in evaluator._procs]  # pylint: disable=protected-access


def test_killed_worker_is_replaced_and_sample_retried():
  with Evaluator(workers=1, timeout_s=1.0) as e:
    ticket = e.submit([ADD], [{"id": "add", "code": "import time\ntime.sleep(0.5)\n" + GOOD}])
    time.sleep(0.2)
    os.killpg(_worker_pids(e)[0], signal.SIGKILL)
    assert e.collect(ticket, timeout=30)[0].verdict == "pass"
    assert e.stats["worker_restarts"] == 1 and e.stats["retries"] == 1
  with Evaluator(workers=1, timeout_s=1.0, max_attempts=1) as e:
    ticket = e.submit([ADD], [{"id": "add", "code": SLEEP}])
    time.sleep(0.2)
    os.killpg(_worker_pids(e)[0], signal.SIGKILL)
    assert e.collect(ticket, timeout=30)[0].verdict == "eval_error"
    assert e.evaluate([ADD], [{"id": "add", "code": GOOD}])[0].verdict == "pass"


def _cli(tmp_path, problems, samples, *extra):
  out = tmp_path / "r.jsonl"
  proc = subprocess.run(
      [sys.executable, "-m", "microcoder_jax.evaluate", "--problems", problems,
       "--samples", samples, "--out", str(out), "--timeout", "1",
       "--workers", "2", *extra], cwd=REPO, capture_output=True, text=True,
      timeout=120, check=False)
  return proc, [json.loads(l) for l in out.read_text().splitlines()]


def test_cli_on_livecodebench_rows(tmp_path):
  proc, rows = _cli(tmp_path, os.path.join(DATA, "lcb_problems.jsonl"),
                    os.path.join(DATA, "lcb_samples.jsonl"))
  assert proc.returncode == 0, proc.stderr
  labels = [json.loads(l)["label"] for l in open(
      os.path.join(DATA, "lcb_samples.jsonl"))]
  assert [r["verdict"] == "pass" for r in rows] == [l == "pass" for l in labels]
  assert [(r["id"], r["sample"]) for r in rows][:2] == [("abc999_a", 0), ("abc999_a", 1)]
  assert set(rows[0]) >= {"id", "sample", "verdict", "passed", "tests_passed",
                          "tests_total", "seconds"}
  assert "pass rate 0.5000" in proc.stderr and "programs/s" in proc.stderr


def test_cli_native_schema_reports_bad_rows_and_lcb_comparator(tmp_path):
  probs = tmp_path / "p.jsonl"
  probs.write_text(json.dumps({"id": "m", "question": "", "tests": [
      {"input": "1 11\n", "output": "11\n", "testtype": "stdin"}]}) +
                   "\n{broken\n")
  samples = tmp_path / "s.jsonl"
  samples.write_text(json.dumps({"id": "m", "completion":
                                 "```python\nprint('%04d' % 11)\n```"}) + "\n")
  proc, rows = _cli(tmp_path, str(probs), str(samples))
  assert proc.returncode == 1 and "p.jsonl:2: bad JSON" in proc.stderr
  assert rows[0]["verdict"] == "wrong_answer"
  proc, rows = _cli(tmp_path, str(probs), str(samples), "--comparator", "lcb")
  assert rows[0]["verdict"] == "pass"  # LCB's Decimal compare accepts 0011.


def test_close_never_leaves_a_ticket_waiting():
  e = Evaluator(workers=1, timeout_s=1.0)
  ticket = e.submit([ADD], [{"id": "add", "code": SLEEP}])
  time.sleep(0.2)
  e.close()
  assert e.collect(ticket, timeout=10)[0].verdict == "eval_error"


def test_workers_keep_inputs_of_recent_problems():
  probs = [parse_problem({"id": f"p{k}", "question": "", "tests": [
      {"input": f"{k}\n", "output": f"{2 * k}\n", "testtype": "stdin"},
      {"input": f"{k + 1}\n", "output": f"{2 * k + 2}\n", "testtype": "stdin"}]})
           for k in range(12)]
  code = "print(2 * int(input()))"
  with Evaluator(workers=1, timeout_s=1.0, cache=False) as e:
    for rnd, order in enumerate((range(12), range(11, -1, -1),
                                 [0, 5, 0, 11, 3, 3, 7, 1])):
      samples = [{"id": f"p{k}", "code": f"{code}\n# {rnd} {i}"}
                 for i, k in enumerate(order)]
      samples.append({"id": "p3", "code": f"print(int(input()))\n# {rnd}"})
      res = e.evaluate(probs, samples)
      assert [r.verdict for r in res] == ["pass"] * len(order) + ["wrong_answer"]


_VENV_PROBE = """
from microcoder_jax.evaluator import Evaluator, parse_problem
p = parse_problem({"id": "a", "question": "q",
                   "tests": [{"input": "3\\n", "output": "3\\n", "testtype": "stdin"}]})
with Evaluator(workers=1) as ev:
  r = ev.evaluate({"a": p}, [{"id": "a", "code": "print(input())"}])[0]
print(r.verdict, r.isolation)
"""


def test_full_sandbox_from_a_virtual_environment_under_tmp(tmp_path):
  """A venv whose lib directory lies below /tmp: the minimal root must not be
  staged on /tmp, or the venv's paths are hidden and mntns is lost."""
  venv = tmp_path / "venv"
  assert str(venv).startswith("/tmp/"), venv
  subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                  str(venv)], check=True)
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
  out = subprocess.run([str(venv / "bin" / "python"), "-c", _VENV_PROBE], env=env,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  verdict, isolation = out.stdout.split()
  assert verdict == "pass" and isolation.startswith("mntns,"), out.stdout
