"""Per-test verdicts from what the supervisor observed, and the sandboxed checker."""
import itertools
import json

from microcoder_jax.evaluator import compare
from microcoder_jax.evaluator import wire
from microcoder_jax.evaluator.results import compare_cap

EXIT_MEMORY = 101  # program.EXIT_MEMORY
# Anything program output can make a comparison raise is a wrong answer.
_BAD_OUTPUT = (ValueError, TypeError, RecursionError, OverflowError,
               UnicodeError, MemoryError)


class InfraError(Exception):
  """The evaluator itself failed while judging (never the program)."""


def judge_test(prob, test, head, blobs, tl, comparator, nonzero_exit_is_re,
               checker):
  """(verdict, reason) of one test from the worker's frame; verdict None = passed.

  Every field used here was observed by the supervisor (exit status or
  signal and CPU time from wait4, its own kill decisions) or read from the
  program's stdout/result memfds after it exited.
  """
  out, res = blobs[0], blobs[1]
  rc, sig = head.get("rc"), head.get("sig")
  cpu = head.get("cpu") or 0.0
  if head.get("wall_kill") or head.get("cpu_kill") or cpu > tl:
    return "timeout", f"cpu {cpu:.2f}s, wall {head.get('wall') or 0.0:.2f}s"
  if rc == EXIT_MEMORY:
    return "memory_limit", ""
  if prob.mode == "stdin" and len(out) > compare_cap(test.output):
    return "wrong_answer", "output limit exceeded"
  if sig is not None or rc is None or (rc != 0 and nonzero_exit_is_re):
    return "runtime_error", (f"signal {sig}" if sig is not None else f"exit {rc}")
  lcb = comparator == "lcb"
  if prob.mode == "stdin":
    ok = _compare(lambda: compare.lcb_judge_stdout(out, test.output) if lcb
                  else compare.judge_stdout(out, test.output, prob.compare))
    use_checker = prob.checker and not lcb
    if not ok and use_checker:
      ok = checker(prob, test, out)
    if ok:
      return None, ""
    diff = compare.first_difference(out, test.output)
    return "wrong_answer", diff + (" (vs the reference; the checker accepts others)"
                                   if use_checker else "")
  try:
    got = compare.parse_result(res, prob.compare)
  except _BAD_OUTPUT:
    return "runtime_error", "no valid return value"
  ok = _compare(lambda: compare.lcb_judge_functional(got, test.output) if lcb
                else compare.judge_functional(got, test.output, prob.compare))
  return (None, "") if ok else ("wrong_answer", "")


def _compare(judge) -> bool:
  """`judge()`; program output that makes the comparison fail is wrong."""
  try:
    return bool(judge())
  except _BAD_OUTPUT:
    return False


class Checker:
  """Runs a problem's `check(input, expected, output)` in its own worker,
  separate from every solution worker (it sees expected outputs)."""

  def __init__(self, new_proc):
    self._new_proc, self._proc, self._ids = new_proc, None, itertools.count(1)

  def __call__(self, prob, test, out: bytes) -> bool:
    if self._proc is None:
      self._proc = self._new_proc()
    args = "\n".join(json.dumps(x) for x in (
        test.input, test.output, out.decode("utf-8", "replace")))
    self._proc.send({"t": "run", "job": next(self._ids), "mode": "functional",
                     "fn": "check", "tl": 10.0, "mem_mb": 1024, "disk_mb": 16,
                     "cap": 1 << 20},
                    [prob.checker.encode("utf-8", "surrogatepass"),
                     args.encode("utf-8", "surrogatepass")])
    ok = False
    while True:
      try:
        head, blobs = self._proc.recv()
      except (wire.WireError, OSError) as e:
        self.close()
        raise InfraError(f"checker worker died: {e}") from e
      if head.get("t") == "test":
        try:
          ok = compare.parse_result(blobs[1], {}) is True and head["rc"] == 0
        except _BAD_OUTPUT:
          ok = False
      elif head.get("t") == "done":
        return ok

  def close(self) -> None:
    if self._proc is not None:
      self._proc.close()
      self._proc = None
