"""The orchestrator: queue, verdicts, cache, retries and the watchdog.

It holds the expected outputs and decides every verdict; runner workers only
ever receive code and test inputs. One dispatcher thread multiplexes all
workers, so `submit` returns at once and rollouts can overlap with judging.
"""
import collections
import dataclasses
import hashlib
import itertools
import os
import selectors
import threading
import time

from microcoder_jax.evaluator import extract
from microcoder_jax.evaluator import pool
from microcoder_jax.evaluator import verdict as verdict_lib
from microcoder_jax.evaluator import wire
from microcoder_jax.evaluator.results import compare_cap
from microcoder_jax.evaluator.results import code_key
from microcoder_jax.evaluator.results import Result
from microcoder_jax.evaluator.results import Ticket

EVALUATOR_VERSION = "2"
# Bounds on the evaluator's limits: finite, positive, and within reason.
_LIMITS = {"timeout_s": (0.01, 600.0), "memory_mb": (16, 1 << 20),
           "disk_mb": (1, 1 << 16), "program_time_limit_s": (0.01, 86400.0),
           "max_code_bytes": (1, 1 << 30)}


class IsolationError(RuntimeError):
  """The kernel does not allow every required sandbox layer."""


def _check_limit(name: str, value) -> float:
  lo, hi = _LIMITS[name]
  try:
    ok = lo <= float(value) <= hi and not isinstance(value, bool)
  except (TypeError, ValueError):
    ok = False
  if not ok:
    raise ValueError(f"{name}={value!r}: must be a number in [{lo:g}, {hi:g}]")
  return float(value)


class _Job:
  """One distinct (code, problem) program, shared by identical samples."""

  def __init__(self, key, problem, code, limits):
    self.key, self.problem, self.code = key, problem, code
    self.tl, self.mem_mb = limits
    self.waiters, self.attempts, self.program_blamed = [], 0, False
    self.reset()

  def reset(self):
    self.next_i, self.passed, self.fail, self.detail = 0, 0, None, ""
    self.cpu, self.stop_sent, self.started = 0.0, False, time.monotonic()


class Evaluator:
  """Sandboxed judge with warm workers. Use as a context manager.

  Attributes:
    workers: runner processes (default: usable CPU cores).
    timeout_s: CPU-time limit per test (a problem's `time_limit_s` wins).
    memory_mb: address space per program on top of the warm interpreter.
    comparator: "microcoder" (the cascade) or "lcb" (LiveCodeBench parity).
    early_exit: stop a program at its first failing test; turn off for
      partial-credit rewards (then `tests_passed` counts every test).
    nonzero_exit_is_re: a nonzero exit fails a test even if output matches.
    program_time_limit_s: CPU cap summed over all tests of one program.
    disk_mb: size of the private tmpfs each test may write (its only
      writable place) and the largest file it may write.
    max_code_bytes: longer programs are a `compile_error`, never compiled.
    allow_weak_isolation: run even where the kernel lacks a required layer
      (`pool.REQUIRED_LAYERS`); otherwise construction raises IsolationError.
    sandbox_disable: isolation layers to skip ("mntns", "pidns", "netns",
      "ipcns", "uid", "landlock", "seccomp", "userns"); only for testing the
      fallbacks (needs `allow_weak_isolation`).
  """

  def __init__(self, workers=None, timeout_s=4.0, memory_mb=1024,
               comparator="microcoder", early_exit=True,
               nonzero_exit_is_re=True, cache=True, preload_numpy=True,
               max_attempts=3, program_time_limit_s=120.0, disk_mb=64,
               max_code_bytes=1 << 20, allow_weak_isolation=False,
               sandbox_disable=()):
    if comparator not in ("microcoder", "lcb"):
      raise ValueError(f"unknown comparator {comparator!r}")
    timeout_s = _check_limit("timeout_s", timeout_s)
    memory_mb = int(_check_limit("memory_mb", memory_mb))
    self.disk_mb = int(_check_limit("disk_mb", disk_mb))
    program_time_limit_s = _check_limit("program_time_limit_s", program_time_limit_s)
    self.max_code_bytes = int(_check_limit("max_code_bytes", max_code_bytes))
    self.allow_weak_isolation = bool(allow_weak_isolation)
    self.timeout_s, self.memory_mb = timeout_s, memory_mb
    self.comparator, self.early_exit = comparator, early_exit
    self.nonzero_exit_is_re, self.use_cache = nonzero_exit_is_re, cache
    self.preload_numpy, self.max_attempts = preload_numpy, max_attempts
    self.program_time_limit_s = program_time_limit_s
    self._disable = tuple(sandbox_disable)
    self._n_workers = workers or len(os.sched_getaffinity(0))
    self._procs, self.isolation = [], ""
    self._checker = verdict_lib.Checker(self._new_proc)
    self._cache, self._inflight = {}, {}
    self._queue = collections.deque()
    self._lock = threading.Lock()
    self._ids = itertools.count(1)
    self._busy = {}  # WorkerProc -> [job, job id, deadline]
    self._sel = selectors.DefaultSelector()
    self._wake_r, self._wake_w = os.pipe()
    self._sel.register(self._wake_r, selectors.EVENT_READ, None)
    self._closed = self._shut = False
    self.stats = collections.Counter()
    # Workers are started by the long-lived dispatcher thread: their parent
    # death signal follows the thread that forked them.
    self._started, self._start_error = threading.Event(), None
    self._thread = threading.Thread(target=self._loop, daemon=True,
                                    name="microcoder-evaluator")
    self._thread.start()
    self._started.wait()
    if self._start_error is not None:
      self.close()
      if isinstance(self._start_error, IsolationError):
        raise self._start_error
      raise RuntimeError("evaluator workers failed to start") from (
          self._start_error)

  def _start_workers(self) -> None:
    try:
      self._procs = [self._new_proc(wait=False)
                     for _ in range(self._n_workers)]
      for p in self._procs:
        p.wait_hello()
        self._sel.register(p.rfd, selectors.EVENT_READ, p)
      self.isolation = self._procs[0].isolation
      missing = pool.missing_layers(self.isolation)
      if missing and not self.allow_weak_isolation:
        raise IsolationError(
            f"sandbox layers {missing} are unavailable here (isolation: "
            f"{self.isolation}); refusing to run untrusted code. Pass "
            "allow_weak_isolation=True (CLI: --allow-weak-isolation) to accept "
            "the weaker sandbox.")
    except Exception as e:  # pylint: disable=broad-except
      self._start_error = e
      self._closed = True
      for p in self._procs:
        p.kill()
      self._procs = []
    self._started.set()

  def _new_proc(self, wait=True):
    proc = pool.WorkerProc(self.preload_numpy, self._disable)
    if wait:
      proc.wait_hello()
    return proc

  # --------------------------------------------------------------- public --
  def submit(self, problems, samples, *, timeout_s: float | None = None,
             memory_mb: int | None = None) -> Ticket:
    """Queues samples; returns at once. Samples are {"id", "completion"}
    dicts (or "code" to skip extraction) or (id, completion) pairs.
    `timeout_s` / `memory_mb` replace the evaluator's defaults for these
    samples (a problem's own limits still win)."""
    limits = (_check_limit("timeout_s", timeout_s or self.timeout_s),
              int(_check_limit("memory_mb", memory_mb or self.memory_mb)))
    if not isinstance(problems, dict):
      problems = {p.id: p for p in problems}
    samples = list(samples)
    ticket, counts = Ticket(len(samples)), collections.Counter()
    for index, s in enumerate(samples):
      pid, text, code = ((s["id"], s.get("completion", ""), s.get("code"))
                         if isinstance(s, dict) else (s[0], s[1], None))
      k, counts[pid] = counts[pid], counts[pid] + 1
      opens_think = bool(s.get("prompt_opens_think")) if isinstance(s, dict) else False
      code = (extract.extract_code(text, prompt_opens_think=opens_think)
              if code is None else code)
      prob = problems.get(pid)
      base = Result(str(pid), k, "no_code", False, 0,
                    len(prob.tests) if prob else 0, code is not None, 0.0,
                    self.isolation)
      if code is None or prob is None or not prob.tests:
        if prob is None or not prob.tests:  # An empty test list never passes.
          base.verdict = "eval_error"
          base.detail = "unknown, invalid or empty problem"
        ticket._fill(index, base)  # pylint: disable=protected-access
        continue
      size = len(code.encode("utf-8", "surrogatepass"))
      if size > self.max_code_bytes:
        base.verdict = "compile_error"
        base.detail = f"source of {size} bytes exceeds max_code_bytes={self.max_code_bytes}"
        ticket._fill(index, base)  # pylint: disable=protected-access
        continue
      self._enqueue(prob, code, ticket, index, base, limits)
    os.write(self._wake_w, b"x")
    return ticket

  def collect(self, ticket: Ticket, timeout=None) -> list:
    with ticket.cond:
      if not ticket.cond.wait_for(lambda: ticket.remaining == 0, timeout):
        raise TimeoutError("evaluation not finished")
    return list(ticket.results)

  def evaluate(self, problems, samples) -> list:
    return self.collect(self.submit(problems, samples))

  def close(self) -> None:
    if self._shut:
      return
    self._shut = self._closed = True
    os.write(self._wake_w, b"x")
    self._thread.join(timeout=10)
    for p in self._procs:
      p.close()
    self._checker.close()
    os.close(self._wake_r)
    os.close(self._wake_w)
    self._sel.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  # ------------------------------------------------------------- queueing --
  def _enqueue(self, prob, code, ticket, index, base, defaults) -> None:
    limits = (prob.time_limit_s or defaults[0], prob.memory_mb or defaults[1])
    key = hashlib.sha256("\0".join(
        (EVALUATOR_VERSION, self.comparator, repr(self.early_exit),
         repr(self.nonzero_exit_is_re), repr(limits), repr(self.disk_mb),
         prob.fingerprint, code_key(code))).encode("utf-8", "surrogatepass")).hexdigest()
    with self._lock:
      if self.use_cache and key in self._cache:
        self.stats["cache_hits"] += 1
        cached = self._cache[key]
        ticket._fill(index, dataclasses.replace(  # pylint: disable=protected-access
            cached, id=base.id, sample=base.sample))
        return
      job = self._inflight.get(key)
      if job is None:
        job = self._inflight[key] = _Job(key, prob, code, limits)
        self._queue.append(job)
      else:
        self.stats["dedup_hits"] += 1
      job.waiters.append((ticket, index, base))

  def _finish(self, job, verdict: str, detail: str = "") -> None:
    n = len(job.problem.tests)
    seconds = time.monotonic() - job.started
    result = Result(job.problem.id, 0, verdict, verdict == "pass",
                    job.passed, n, True, round(seconds, 4), self.isolation,
                    detail[:300])
    with self._lock:
      self._inflight.pop(job.key, None)
      if verdict != "eval_error" and self.use_cache:
        self._cache[job.key] = result
      self.stats[verdict] += 1
      self.stats["programs"] += 1
    for ticket, index, base in job.waiters:
      ticket._fill(index, dataclasses.replace(  # pylint: disable=protected-access
          result, id=base.id, sample=base.sample))

  # ----------------------------------------------------------- dispatcher --
  def _loop(self) -> None:
    self._start_workers()
    while not self._closed:
      try:
        self._step()
      except Exception as e:  # pylint: disable=broad-except
        self._fail_all(f"dispatcher error: {e!r}")
        time.sleep(0.1)
    self._fail_all("evaluator closed")

  def _fail_all(self, why: str) -> None:
    """Never leaves a ticket waiting: unfinished programs get eval_error."""
    for proc in list(self._busy):
      self._busy.pop(proc)
      if not self._closed:
        try:
          self._sel.unregister(proc.rfd)
          proc.kill()
          fresh = self._new_proc()
          self._procs[self._procs.index(proc)] = fresh
          self._sel.register(fresh.rfd, selectors.EVENT_READ, fresh)
        except Exception:  # pylint: disable=broad-except
          pass
    with self._lock:
      jobs = list(self._inflight.values())
      self._queue.clear()
    for job in jobs:
      self._finish(job, "eval_error", why)

  def _step(self) -> None:
    self._assign()
    now = time.monotonic()
    wait = min([0.5] + [d - now for _, _, d in self._busy.values()])
    for key, _ in self._sel.select(max(wait, 0.0)):
      if key.data is None:
        os.read(self._wake_r, 4096)
      elif key.data in self._busy:
        try:
          self._on_frame(key.data)
        except verdict_lib.InfraError as e:
          job = self._busy[key.data][0]
          job.fail, job.detail = "eval_error", str(e)
        except Exception as e:  # pylint: disable=broad-except
          if key.data in self._busy:
            self._worker_lost(key.data, self._busy[key.data][0], repr(e))
    now = time.monotonic()
    for proc, (job, _, deadline) in list(self._busy.items()):
      if now > deadline:
        self._worker_lost(proc, job, "worker unresponsive")

  def _assign(self) -> None:
    for proc in self._procs:
      if proc in self._busy:
        continue
      with self._lock:
        if not self._queue:
          return
        job = self._queue.popleft()
      job.reset()
      jid = next(self._ids)
      cap = max(max(compare_cap(t.output) for t in job.problem.tests), 1 << 16)
      fp = job.problem.fingerprint
      send, keep = proc.plan_inputs(fp, sum(len(t.input)
                                            for t in job.problem.tests))
      header = {"t": "run", "job": jid, "mode": job.problem.mode,
                "fn": job.problem.fn_name, "tl": job.tl, "mem_mb": job.mem_mb,
                "disk_mb": self.disk_mb, "cap": cap, "fp": fp,
                "inputs": "sent" if send else "kept", "keep": keep,
                "keep_n": pool.INPUT_CACHE_PROBLEMS}
      # Lone surrogates (from JSON escapes) travel as they are.
      blobs = [job.code.encode("utf-8", "surrogatepass")]
      if send:
        blobs += [t.input.encode("utf-8", "surrogatepass")
                  for t in job.problem.tests]
      self._busy[proc] = [job, jid, self._deadline(job)]
      try:
        proc.send(header, blobs)
      except OSError:
        self._worker_lost(proc, job, "worker pipe broken")

  def _deadline(self, job) -> float:
    """Silence after which a worker counts as lost: beyond the supervisor's
    own hard wall limit per test (10·TL + 5 s) and the worker's (+10 s)."""
    return time.monotonic() + 10 * job.tl + 45.0

  def _on_frame(self, proc) -> None:
    job, jid, _ = self._busy[proc]
    try:
      head, blobs = proc.recv()
    except (wire.WireError, OSError) as e:
      self._worker_lost(proc, job, f"worker died: {e}")
      return
    if head.get("job") != jid:
      return
    self._busy[proc][2] = self._deadline(job)
    kind = head.get("t")
    if kind == "test" and head.get("i") == job.next_i:
      job.next_i += 1
      if job.fail is not None and self.early_exit:
        return  # Already stopping: ignore speculative extra tests.
      test = job.problem.tests[head["i"]]
      outcome, why = verdict_lib.judge_test(job.problem, test, head, blobs, job.tl,
                                            self.comparator,
                                            self.nonzero_exit_is_re, self._checker)
      job.cpu += max(head.get("cpu") or 0.0, 0.0)
      if outcome is None and job.cpu > self.program_time_limit_s:
        outcome = "timeout"
      if outcome is None:
        job.passed += 1
      elif job.fail is None:
        job.fail = outcome
        err = (blobs[2] if len(blobs) > 2 else b"").decode("utf-8", "replace")[-200:]
        job.detail = f"test {head['i']}: {why}" + (f" | stderr: {err}" if err else "")
      if outcome is not None and self.early_exit and not job.stop_sent:
        job.stop_sent = True
        proc.send({"t": "stop", "job": jid})
    elif kind == "compile_error":
      job.fail, job.detail = "compile_error", head.get("msg", "")
    elif kind == "done":
      del self._busy[proc]
      if head.get("blame") == "program":
        job.program_blamed = True
      if not head.get("ok") or job.fail == "eval_error":
        self._retry(job, head.get("why") or job.detail or "runner failure")
      elif job.fail is not None:
        self._finish(job, job.fail, job.detail)
      elif job.passed == len(job.problem.tests) and job.next_i == job.passed:
        self._finish(job, "pass")
      else:  # Missing results are never a pass.
        self._finish(job, "eval_error", "incomplete results")

  def _retry(self, job, why: str) -> None:
    """Runs a program again after a lost worker or supervisor. When attempts
    run out it is the program's `runtime_error` if its code was running when
    the sandbox died, else the judge's `eval_error`."""
    job.attempts += 1
    self.stats["retries"] += 1
    if job.attempts >= self.max_attempts:
      self._finish(job, "runtime_error" if job.program_blamed else "eval_error", why)
    else:
      with self._lock:
        self._queue.appendleft(job)

  def _worker_lost(self, proc, job, why: str) -> None:
    """Replaces a dead or hung worker and retries its program."""
    self._busy.pop(proc, None)
    self._sel.unregister(proc.rfd)
    proc.kill()
    fresh = self._new_proc()
    self._procs[self._procs.index(proc)] = fresh
    self._sel.register(fresh.rfd, selectors.EVENT_READ, fresh)
    self.stats["worker_restarts"] += 1
    self._retry(job, why)
