"""A re-implementation of LiveCodeBench's harness semantics, for benchmarks.

Written from the published description of `lcb_runner/evaluation`
(testing_util.py and compute_code_generation_metrics.py); only behaviour is
reproduced, so the comparison measures the same design:

* a ProcessPoolExecutor over programs; per program a `multiprocessing.Manager`
  plus one `Process`, joined with (timeout + 1) * tests + 5 seconds;
* inside the process: a denylist "reliability guard", then the solution is
  exec'd in-process. Stdin programs are rewritten: imports hoisted, a block of
  star imports prepended, a trailing `if __name__ == '__main__'` unwrapped and
  all other top-level code moved into `def wrapped_function()`;
* mocked I/O: stdout is a StringIO (no `.buffer`); stdin's `read()` returns
  the whole input on every call, `readlines()` drops the newlines,
  `.buffer.readline()` always returns line 1, and it is not iterable;
  `builtins.open` is mocked; SystemExit is swallowed whatever its code;
* `signal.alarm` (whole seconds, wall clock) per test, first failure stops;
* comparison: stripped lines, equal count, then exact or `Decimal` equality
  per line; call-based: a top-level tuple becomes a list, then `==`.

Never run it on hostile code: it is not a sandbox (that is the point).
"""
import ast
import concurrent.futures
import io
import json
import multiprocessing
import signal
import sys
from unittest import mock

import numpy as np

sys.set_int_max_str_digits(50000)  # As LCB sets at import time.

_PRELUDE_MODULES = ("string", "re", "datetime", "collections", "heapq",
                    "bisect", "copy", "math", "random", "statistics",
                    "itertools", "functools", "operator", "io", "sys", "json",
                    "builtins", "typing")
PRELUDE = "".join(f"from {m} import *\n" for m in _PRELUDE_MODULES) + "".join(
    f"import {m}\n" for m in _PRELUDE_MODULES if m not in ("builtins", "typing")
) + "sys.setrecursionlimit(50000)\n"


class _Alarm(Exception):
  pass


def _on_alarm(signum, frame):
  raise _Alarm()


class _FakeBuffer:
  def __init__(self, text):
    self._data = text.encode()

  def read(self, *unused):
    return self._data

  def readline(self, *unused):
    return self._data.split(b"\n")[0] + b"\n"


class _FakeStdin:
  """Stdin as LCB mocks it: no __iter__, read() replays the whole input."""

  def __init__(self, text):
    self._text, self._io = text, io.StringIO(text)
    self.buffer = _FakeBuffer(text)

  def read(self, *unused):
    return self._text

  def readline(self, *args):
    return self._io.readline(*args)

  def readlines(self, *unused):
    return self._text.split("\n")

  def __getattr__(self, name):
    return getattr(self._io, name)


def _rewrite_stdin_program(code):
  try:
    tree = ast.parse(code)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.If) and ast.unparse(last.test).strip() in (
        "__name__ == '__main__'",):
      tree.body = tree.body[:-1] + last.body
    imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    rest = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    fn = ast.FunctionDef(name="wrapped_function", args=ast.arguments(
        posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
                         body=rest or [ast.Pass()], decorator_list=[], lineno=1)
    return PRELUDE + "\n" + ast.unparse(imports) + "\n" + ast.unparse(
        ast.fix_missing_locations(fn))
  except Exception:  # pylint: disable=broad-except
    return code


def _lines(text):
  return [l.strip() for l in text.strip().split("\n")]


def _decimals(line):
  import decimal  # pylint: disable=g-import-not-at-top
  try:
    return [decimal.Decimal(t) for t in line.split()]
  except Exception:  # pylint: disable=broad-except
    return None


def _same_stdout(pred, gt):
  p, g = _lines(pred), _lines(gt)
  if len(p) != len(g):
    return False
  for a, b in zip(p, g):
    if a != b:
      da, db = _decimals(a), _decimals(b)
      if da is None or db is None or da != db:
        return False
  return True


def _guard():
  import builtins, os, shutil, subprocess  # pylint: disable=g-import-not-at-top,multiple-imports
  builtins.quit = None
  os.environ["OMP_NUM_THREADS"] = "1"
  for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir",
               "fchdir", "setuid", "fork", "forkpty", "killpg", "rename",
               "renames", "truncate", "replace", "unlink", "fchmod", "fchown",
               "chmod", "chown", "chroot", "lchown", "getcwd", "chdir"):
    setattr(os, name, None)
  shutil.rmtree = shutil.move = shutil.chown = None
  subprocess.Popen = None
  for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
    sys.modules[name] = None


def _load(code, timeout):
  signal.alarm(timeout)
  try:
    module = {"__name__": "tmp_sol"}
    exec(code, module)  # pylint: disable=exec-used
    return module["Solution"]() if "class Solution" in code else module
  finally:
    signal.alarm(0)


def _member(obj, name):
  return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def run_program(problem, code, timeout):
  """In the child: returns the per-test list (True, -2 WA, -3 TLE, -4 RE)."""
  signal.signal(signal.SIGALRM, _on_alarm)
  _guard()
  results = []
  call_based = problem["fn_name"] is not None
  source = PRELUDE + "\n" + code if call_based else _rewrite_stdin_program(code)
  try:
    method = _member(_load(source, timeout),
                     problem["fn_name"] if call_based else "wrapped_function")
  except BaseException:  # pylint: disable=broad-except
    return [-4]
  if method is None:
    return [-4]
  for inp, out in zip(problem["inputs"], problem["outputs"]):
    signal.alarm(timeout)
    try:
      if call_based:
        pred = method(*[json.loads(l) for l in inp.split("\n")])
        pred = list(pred) if isinstance(pred, tuple) else pred
        ok = bool(pred == json.loads(out))  # Raises for arrays, as in LCB.
      else:
        captured = io.StringIO()
        stdin = _FakeStdin(inp)
        with mock.patch("builtins.open", mock.mock_open(read_data=inp)), \
            mock.patch("sys.stdin", stdin), mock.patch("sys.stdout", captured):
          try:
            method()
          except SystemExit:
            pass
        ok = _same_stdout(captured.getvalue(), out)
      signal.alarm(0)
    except _Alarm:
      results.append(-3)
      return results
    except BaseException:  # pylint: disable=broad-except
      signal.alarm(0)
      results.append(-4)
      return results
    results.append(True if ok else -2)
    if not ok:
      return results
  return results


def _child(problem, code, timeout, shared):
  shared.append(run_program(problem, code, timeout))


def check_correctness(problem, code, timeout):
  """One program: Manager + Process, global join timeout, as LCB does."""
  manager = multiprocessing.Manager()
  shared = manager.list()
  proc = multiprocessing.Process(target=_child,
                                 args=(problem, code, timeout, shared))
  proc.start()
  proc.join(timeout=(timeout + 1) * len(problem["inputs"]) + 5)
  if proc.is_alive():
    proc.kill()
  res = list(shared[0]) if shared else [-1] * len(problem["inputs"])
  manager.shutdown()
  return res


def _task(args):
  return check_correctness(*args)


def evaluate(problems, programs, workers=2, timeout=6):
  """programs: [(problem dict, code)]; returns per-program pass booleans.

  Problem dicts are {"inputs", "outputs", "fn_name"} like LCB's input_output.
  """
  with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as ex:
    futures = [ex.submit(_task, (problems[pid], code, timeout))
               for pid, code in programs]
    per_test = [f.result() for f in futures]
  passed = [bool(np.all(np.array(r) == True)) for r in per_test]  # pylint: disable=singleton-comparison
  return passed, per_test
