"""Warm runner worker: one sandboxed program process per program.

Run as a script by the pool (`python runner.py`); the orchestrator speaks
`wire` frames on fds 0/1. The worker never receives expected outputs, only
code and test inputs. Process tree (where the kernel allows namespaces):

  worker   (warm: contest imports preloaded, gc frozen; init of its own PID
            namespace, own network namespace)
    program (fork per program; init of a fresh PID namespace; setsid,
            rlimits, uid drop, Landlock, seccomp; runs the tests in turn,
            see program.py)

The worker relays each test result, measures the program's CPU time on its
process CPU clock, enforces the per-test CPU and wall limits, and forks a new
program process after one dies or turns dirty. When a program process exits
the kernel kills everything left in its namespace, so nothing outlives it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import program  # pylint: disable=g-import-not-at-top
import sandbox  # pylint: disable=g-import-not-at-top
import wire  # pylint: disable=g-import-not-at-top
del sys.path[0]

# pylint: disable=g-import-not-at-top,g-multiple-import,unused-import
import gc, select, shutil, signal, struct, tempfile, time
# Contest imports, preloaded once so that forks pay nothing for them.
import bisect, builtins, collections, copy, decimal, fractions, functools
import heapq, io, itertools, json, math, operator, random, re, statistics
import string, threading, typing
if os.environ.get("MCJ_PRELOAD_NUMPY", "1") == "1":
  try:
    import numpy
  except ImportError:
    pass
# pylint: enable=g-import-not-at-top,g-multiple-import,unused-import


def _cpu_clock(pid: int) -> int:
  return ((~pid) << 3) | 2  # CPUCLOCK_SCHED of a whole process.


# ------------------------------------------------------------------ worker --
class Worker:
  """The warm worker loop: receive a program, run it, relay its frames."""

  def __init__(self, rfd: int, wfd: int, caps: dict):
    self.rfd, self.wfd, self.caps = rfd, wfd, caps
    self.base = tempfile.mkdtemp(prefix="mcj-eval-")
    os.chmod(self.base, 0o711)
    self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    self.vm_base = sandbox.vm_size_bytes()
    self.kept = collections.OrderedDict()  # fingerprint -> input blobs

  def serve(self) -> None:
    wire.send(self.wfd, {"t": "hello", "pid": os.getpid(), "base": self.base,
                         "isolation": isolation_names(self.caps)})
    while True:
      try:
        job, blobs = wire.recv(self.rfd)
      except wire.WireError:
        break
      if job.get("t") == "exit":
        break
      if job.get("t") != "run":
        continue  # A stale `stop` for a program that already finished.
      blobs = self._inputs(job, blobs)
      job["as_bytes"] = self.vm_base + job["mem_mb"] * (1 << 20)
      workdir = tempfile.mkdtemp(dir=self.base)
      try:
        ok, why, i, n = True, "", 0, len(blobs) - 1
        while ok and i < n:
          ok, why, i = self._incarnation(job, blobs, i, workdir)
      finally:
        shutil.rmtree(workdir, ignore_errors=True)
      wire.send(self.wfd, {"t": "done", "job": job["job"], "ok": ok,
                           "why": why})
    shutil.rmtree(self.base, ignore_errors=True)

  def _inputs(self, job, blobs):
    """Test inputs kept from an earlier program of the same problem (an LRU
    mirrored by pool.WorkerProc.plan_inputs)."""
    fp = job.get("fp")
    if fp is None:
      return blobs
    if job["inputs"] == "kept":
      self.kept.move_to_end(fp)
      return blobs[:1] + self.kept[fp]
    if job["keep"]:
      self.kept[fp] = blobs[1:]
      while len(self.kept) > job["keep_n"]:
        self.kept.popitem(last=False)
    return blobs

  def _spawn(self, job, blobs, start, workdir):
    fds = os.pipe()[::-1] + (program.memfd("stdout"), program.memfd("stderr"))
    if self.caps["pidns"]:
      sandbox.unshare(sandbox.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
      try:
        program.program_main(job, blobs, start, workdir, fds[0:1] + fds[2:],
                      self.caps)
      finally:
        os._exit(0)
    if self.caps["pidns"]:
      sandbox.setns(self.own_pidns, sandbox.CLONE_NEWPID)
    os.close(fds[0])
    return pid, fds[1], fds[2], fds[3]

  def _incarnation(self, job, blobs, start, workdir):
    """Runs tests from `start` in one program process; returns (ok, why, i)."""
    pid, rfd, out_fd, err_fd = self._spawn(job, blobs, start, workdir)
    clock, tl, n = _cpu_clock(pid), job["tl"], len(blobs) - 1
    ready, i, fail, stop = False, start, None, False
    mark_cpu, mark_wall = 0.0, time.monotonic()
    while i < n and fail is None and not stop:
      now = time.monotonic()
      try:
        used = time.clock_gettime(clock) - mark_cpu
      except OSError:
        used = 0.0
      limit = (2 * tl + 0.5) if ready else 10.0 + 2 * tl
      if ready and (used > tl or now - mark_wall > limit):
        fail = "timeout"
        break
      if not ready and now - mark_wall > limit:
        fail = "setup timeout"
        break
      wait = min(max(tl - used, 0.005), limit - (now - mark_wall)) + 0.001
      r, _, _ = select.select([rfd, self.rfd], [], [], wait)
      if self.rfd in r:
        ctl, _ = wire.recv(self.rfd)
        stop = ctl.get("t") == "stop" and ctl.get("job") == job["job"]
      if rfd not in r or stop:
        continue
      try:
        head, out = wire.recv(rfd, max_payload=2 * job["cap"] + (1 << 26),
                              deadline=time.monotonic() + 2 * tl + 1.0)
        kind = head.get("t")
      except (wire.WireError, AttributeError, ValueError, struct.error):
        head, kind = None, "died"
      if kind == "ready" and not ready:
        ready, mark_cpu, mark_wall = True, time.clock_gettime(clock), now
      elif kind == "compile_error" and not ready:
        wire.send(self.wfd, {"t": "compile_error", "job": job["job"],
                             "msg": str(head.get("msg"))[:500]})
        stop = True
      elif kind == "test" and ready and head.get("i") == i:
        cpu_now = time.clock_gettime(clock)
        self._send_test(job, i, head.get("rc"), None, cpu_now - mark_cpu,
                        time.monotonic() - mark_wall, False, out, err_fd)
        i, mark_cpu, mark_wall = i + 1, cpu_now, time.monotonic()
        if head.get("dirty"):
          fail = "dirty"
      elif kind == "end" and i == n:
        break
      else:
        fail = "died"
    os.kill(pid, signal.SIGKILL)
    _, status, ru = os.wait4(pid, 0)
    self._reap(pid)
    if fail in ("died", "timeout") and ready:  # The program's fault: report.
      cpu = ru.ru_utime + ru.ru_stime - mark_cpu
      wall = time.monotonic() - mark_wall
      rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
      sig = None if fail == "timeout" or rc is not None else os.WTERMSIG(status)
      out = [os.pread(out_fd, job["cap"] + 1, 0), b""]
      self._send_test(job, i, rc, sig, cpu, wall, fail == "timeout", out,
                      err_fd)
      i += 1
    for fd in (rfd, out_fd, err_fd):
      os.close(fd)
    if fail is not None and not ready:
      return False, f"program process {fail} before start", i
    return True, "", (n if stop else i)

  def _send_test(self, job, i, rc, sig, cpu, wall, wall_kill, out, err_fd):
    size = os.fstat(err_fd).st_size
    err = os.pread(err_fd, 1500, max(0, size - 1500)).decode("utf-8", "replace")
    wire.send(self.wfd, {"t": "test", "job": job["job"], "i": i, "rc": rc,
                         "sig": sig, "cpu": cpu, "wall": wall,
                         "wall_kill": wall_kill, "err": err}, out[:2])

  def _reap(self, pid: int) -> None:
    if not self.caps["pidns"]:  # Group, orphans (we are a subreaper), uid.
      try:
        os.killpg(pid, signal.SIGKILL)
      except OSError:
        pass
      deadline = time.monotonic() + 5.0
      while (sandbox.kill_children_of(os.getpid()) +
             sandbox.kill_uid(self.caps["uid"])) and (
                 time.monotonic() < deadline):
        sandbox.reap_zombies()
        time.sleep(0.002)
    sandbox.reap_zombies()



def isolation_names(caps: dict) -> list:
  names = [k for k in ("userns", "pidns", "netns") if caps.get(k)]
  if caps.get("uid") is not None:
    names.append("uid")
  if caps.get("landlock"):
    names.append(f"landlock{caps['landlock']}")
  if caps.get("seccomp"):
    names.append("seccomp")
  return names + ["rlimits"]


def _probe(fn) -> bool:
  pid = os.fork()
  if pid == 0:
    try:
      fn()
      os._exit(0)
    except BaseException:  # pylint: disable=broad-except
      os._exit(1)
  return os.waitpid(pid, 0)[1] == 0


def setup_worker(disable=()) -> dict:
  """Enters the worker namespaces and probes what the kernel allows.

  `disable` names layers to skip (to exercise the fallbacks in tests).
  """
  caps = {"userns": False, "pidns": False, "netns": False, "uid": None,
          "landlock": 0, "seccomp": False}
  root = os.geteuid() == 0
  outer_pid = os.getpid()
  if not root and "userns" not in disable:
    try:
      sandbox.enter_user_namespace()
      caps["userns"] = True
    except OSError:
      pass
  try:
    if "netns" not in disable:
      sandbox.unshare(sandbox.CLONE_NEWNET | sandbox.CLONE_NEWIPC)
      caps["netns"] = True
  except OSError:
    pass
  if (root or caps["userns"]) and "pidns" not in disable:
    try:  # Become init of our own PID ns so setns() back is always allowed.
      sandbox.unshare(sandbox.CLONE_NEWPID)
      pid = os.fork()
      if pid:
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
      sandbox.set_pdeathsig()
      own = os.open("/proc/self/ns/pid", os.O_RDONLY)
      caps["pidns"] = _probe(lambda: (
          sandbox.unshare(sandbox.CLONE_NEWPID), _probe(lambda: None),
          sandbox.setns(own, sandbox.CLONE_NEWPID), _probe(lambda: None)))
      os.close(own)
    except OSError:
      pass
  if not caps["pidns"]:  # Orphans come back to us, to be swept.
    sandbox.set_subreaper()
  if root and "uid" not in disable:
    caps["uid"] = 1_800_000_000 + outer_pid  # Unique per live worker.
  abi = sandbox.landlock_abi()
  caps["read_paths"] = sandbox.library_read_paths()
  if abi and "landlock" not in disable and _probe(lambda: (
      sandbox.set_no_new_privs(),
      sandbox.apply_landlock(abi, caps["read_paths"], ["/dev/null"]))):
    caps["landlock"] = abi
  if sandbox.seccomp_supported() and "seccomp" not in disable and _probe(
      lambda: (sandbox.set_no_new_privs(), sandbox.apply_seccomp())):
    caps["seccomp"] = True
  return caps


def main() -> None:
  rfd, wfd = os.dup(0), os.dup(1)
  null = os.open(os.devnull, os.O_RDWR)
  os.dup2(null, 0)
  os.dup2(null, 1)
  os.close(null)
  sandbox.set_pdeathsig()
  sys.set_int_max_str_digits(0)
  caps = setup_worker(os.environ.get("MCJ_SANDBOX_DISABLE", "").split(","))
  worker = Worker(rfd, wfd, caps)
  gc.freeze()  # Forked children never rescan the preloaded heap.
  worker.serve()


if __name__ == "__main__":
  main()
