"""Warm runner worker: one supervised, sandboxed process per program and test.

Run as a script by the pool (`python runner.py`); the orchestrator speaks
`wire` frames on fds 0/1. The worker never receives expected outputs, only
code and test inputs. Process tree (where the kernel allows namespaces):

  worker      warm: contest imports preloaded, gc frozen; init of its own PID
              namespace, own network and IPC namespaces, pivoted into a
              minimal read-only root (see sandbox.build_minimal_root)
    supervisor  one per program: init of a fresh PID namespace with its own
                /proc; compiles the program, forks a process per test and
                reports what it observed (program.py)
      test      one per test: an empty tmpfs (new, or provably untouched),
                limits, uid drop, Landlock, seccomp; runs the program once

The worker hands the supervisor one test input at a time, relays each
report to the orchestrator with the program's stdout (read from the memfd
the supervisor hands back), and stops early when the orchestrator says so.
When a supervisor exits the kernel kills everything left in its namespace.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import program  # pylint: disable=g-import-not-at-top
import sandbox  # pylint: disable=g-import-not-at-top
import syscall_filter  # pylint: disable=g-import-not-at-top
import wire  # pylint: disable=g-import-not-at-top
del sys.path[0]

# pylint: disable=g-import-not-at-top,g-multiple-import,unused-import
import gc, select, signal, socket, tempfile, time
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

SETUP_TIMEOUT_S = 30.0
COMPILE_WALL_S = 3 * program.COMPILE_CPU_S + 10.0


class _Abort(Exception):
  """The orchestrator asked to stop this program."""


class Worker:
  """The warm worker loop: receive a program, supervise it, relay reports."""

  def __init__(self, rfd: int, wfd: int, caps: dict):
    self.rfd, self.wfd, self.caps = rfd, wfd, caps
    self.base = None
    if not caps["mntns"]:  # Fallback: per-program work dirs on the host.
      self.base = tempfile.mkdtemp(prefix="mcj-eval-")
      os.chmod(self.base, 0o711)
    self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    self.vm_base = sandbox.vm_size_bytes()
    self.kept = collections.OrderedDict()  # fingerprint -> input blobs
    self.dying = []  # killed supervisors not yet collected

  def serve(self) -> None:
    wire.send(self.wfd, {"t": "hello", "pid": os.getpid(), "base": self.base,
                         "isolation": isolation_names(self.caps)})
    while True:
      try:  # Code and inputs go straight into sealed memfds (wire.py).
        job, fds = wire.recv_to_memfds(self.rfd)
      except wire.WireError:
        break
      if job.get("t") == "exit":
        break
      if job.get("t") != "run":
        for fd in fds:
          os.close(fd)
        continue  # A stale `stop` for a program that already finished.
      code_fd, inputs, owned = self._inputs(job, fds)
      job["as_bytes"] = self.vm_base + job["mem_mb"] * (1 << 20)
      job["disk_bytes"] = job["disk_mb"] * (1 << 20)
      try:
        ok, why, blame = self._program(job, code_fd, inputs)
      finally:
        for fd in [code_fd] + owned:
          os.close(fd)
      wire.send(self.wfd, {"t": "done", "job": job["job"], "ok": ok,
                           "why": why, "blame": blame})
    for pid in self.dying:
      _reaped(pid, True)
    if self.base:
      sandbox.remove_tree(self.base)

  def _inputs(self, job, fds):
    """(code memfd, input memfds, input memfds to close after the program).

    Inputs of recent problems are kept (as sealed memfds) in an LRU mirrored
    by pool.WorkerProc.plan_inputs.
    """
    code_fd, inputs, fp = fds[0], fds[1:], job.get("fp")
    if fp is None:
      return code_fd, inputs, inputs
    if job["inputs"] == "kept":
      self.kept.move_to_end(fp)
      return code_fd, self.kept[fp], []
    if not job["keep"]:
      return code_fd, inputs, inputs
    self.kept[fp] = inputs
    while len(self.kept) > job["keep_n"]:
      for fd in self.kept.popitem(last=False)[1]:
        os.close(fd)
    return code_fd, inputs, []

  # ---------------------------------------------------------- one program --
  def _program(self, job, code_fd, inputs):
    """Runs every test (until stopped); returns (ok, why, blame)."""
    if self.base:  # Root-owned, like the program's file-system ids here.
      job["workdir"] = tempfile.mkdtemp(dir=self.base)
    sock, pid = self._spawn(job, code_fd)
    started = False  # Did the program's code run yet (in any test)?
    try:
      self._handshake(job, sock)
      for i, fd in enumerate(inputs):
        program.send_msg(sock, {"t": "test", "i": i}, [fd])
        report, fds = self._await(job, sock, 10 * job["tl"] + 15.0)
        started = started or report.get("started", False)
        if not report.get("started"):
          err = os.pread(fds[2], 300, 0).decode("utf-8", "replace") if len(fds) > 2 else ""
          for fd in fds:
            os.close(fd)
          return False, ("test process failed before the program started "
                         f"(rc={report.get('rc')}, signal={report.get('sig')}): {err}"), "judge"
        self._relay(job, report, fds)
      return True, "", ""
    except (_Abort, _CompileFailed):
      return True, "", ""
    except (EOFError, OSError, ValueError, KeyError, TimeoutError) as e:
      return False, f"supervisor failed: {e!r}"[:300], (
          "program" if started else "judge")
    finally:
      sock.close()
      self._reap(pid)
      if job.get("workdir"):
        sandbox.remove_tree(job["workdir"])

  def _spawn(self, job, code_fd: int):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if self.caps["pidns"]:
      sandbox.unshare(sandbox.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
      try:
        ours.close()
        program.supervise(theirs.detach(), code_fd, job, self.caps)
      finally:
        os._exit(0)
    if self.caps["pidns"]:
      sandbox.setns(self.own_pidns, sandbox.CLONE_NEWPID)
    theirs.close()
    return ours, pid

  def _handshake(self, job, sock) -> None:
    """Waits for "compiling" (set-up done), then "ready" or a compile error."""
    msg, _ = self._await(job, sock, SETUP_TIMEOUT_S)
    if msg.get("t") != "compiling":
      raise ValueError(f"unexpected supervisor message {msg}")
    try:
      msg, _ = self._await(job, sock, COMPILE_WALL_S)
    except (EOFError, TimeoutError) as e:  # Compilation exhausted its limits.
      self._compile_error(job, f"compilation exceeded its limits ({e})")
      raise _CompileFailed() from e
    if msg.get("t") == "compile_error":
      self._compile_error(job, msg.get("msg", ""))
      raise _CompileFailed()
    if msg.get("t") != "ready":
      raise ValueError(f"unexpected supervisor message {msg}")

  def _compile_error(self, job, msg: str) -> None:
    wire.send(self.wfd, {"t": "compile_error", "job": job["job"], "msg": msg[:500]})

  def _await(self, job, sock, timeout_s: float):
    """The supervisor's next message; honours the orchestrator's `stop`."""
    deadline = time.monotonic() + timeout_s
    while True:
      left = deadline - time.monotonic()
      if left <= 0:
        raise TimeoutError("supervisor unresponsive")
      ready = select.select([sock, self.rfd], [], [], left)[0]
      if self.rfd in ready:
        ctl, _ = wire.recv(self.rfd)
        if ctl.get("t") == "stop" and ctl.get("job") == job["job"]:
          raise _Abort()
      if sock in ready:
        return program.recv_msg(sock, 3)  # stdout, result, stderr tail

  def _relay(self, job, report, fds) -> None:
    """Forwards a test report; stdout (up to the cap + 1 byte), the result
    and the stderr tail are spliced from the supervisor's memfds."""
    limits = (job["cap"] + 1, 1 << 24, program.ERR_TAIL)
    try:
      sources = [(fd, min(os.fstat(fd).st_size, limit)) for fd, limit in zip(fds, limits)]
      wire.send_from_fds(self.wfd, {
          "t": "test", "job": job["job"], "i": report["i"], "rc": report["rc"],
          "sig": report["sig"], "cpu": report["cpu"], "wall": report["wall"],
          "wall_kill": report["killed"] == "wall",
          "cpu_kill": report["killed"] == "cpu",
          "maxrss_kb": report["maxrss_kb"]}, sources)
    finally:
      for fd in fds:
        os.close(fd)

  def _reap(self, pid: int) -> None:
    """Kills the supervisor. In a PID namespace and under seccomp that ends
    the program for good (a test process cannot fork, and dies with the
    namespace's init), so the supervisor's own exit (which can wait for the kernel to
    retire the work tmpfs's inotify watch) is collected later, off the
    critical path; at most `_MAX_DYING` at a time."""
    try:
      os.kill(pid, signal.SIGKILL)
    except OSError:
      pass
    if self.caps["pidns"] and self.caps["seccomp"]:  # No strays possible.
      self.dying.append(pid)
      while self.dying and (len(self.dying) > _MAX_DYING or _reaped(self.dying[0], False)):
        _reaped(self.dying.pop(0), True)
      return
    try:
      os.waitpid(pid, 0)
    except ChildProcessError:
      pass
    if not self.caps["pidns"]:  # Group, orphans (we are a subreaper), uid.
      deadline = time.monotonic() + 5.0
      while (sandbox.kill_children_of(os.getpid()) +
             sandbox.kill_uid(self.caps["uid"])) and (
                 time.monotonic() < deadline):
        sandbox.reap_zombies()
        time.sleep(0.002)
    sandbox.reap_zombies()


_MAX_DYING = 4


def _reaped(pid: int, block: bool) -> bool:
  try:
    return os.waitpid(pid, 0 if block else os.WNOHANG)[0] != 0
  except ChildProcessError:
    return True


class _CompileFailed(Exception):
  """Compilation failed or exhausted its limits (already reported)."""


# ------------------------------------------------------------------ set-up --
def isolation_names(caps: dict) -> list:
  names = [k for k in ("userns", "mntns", "pidns", "netns", "ipcns") if caps.get(k)]
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


def _try(caps: dict, layer: str, disable, fn) -> None:
  if layer in disable:
    return
  try:
    fn()
    caps[layer] = True
  except OSError:
    pass


def _enter_own_pidns() -> None:
  """Makes this process the init of a new PID namespace (fork, parent waits)."""
  sandbox.unshare(sandbox.CLONE_NEWPID)
  pid = os.fork()
  if pid:
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
  sandbox.set_pdeathsig()
  own = os.open("/proc/self/ns/pid", os.O_RDONLY)
  try:
    ok = _probe(lambda: (
        sandbox.unshare(sandbox.CLONE_NEWPID), _probe(lambda: None),
        sandbox.setns(own, sandbox.CLONE_NEWPID), _probe(lambda: None)))
  finally:
    os.close(own)
  if not ok:
    raise OSError("nested PID namespaces unavailable")


def setup_worker(disable=()) -> dict:
  """Enters the worker namespaces and probes what the kernel allows.

  `disable` names layers to skip (to exercise the fallbacks in tests).
  """
  caps = {"userns": False, "mntns": False, "pidns": False, "netns": False,
          "ipcns": False, "uid": None, "landlock": 0, "seccomp": False}
  binds, hidden, devices = sandbox.sandbox_paths()
  root = os.geteuid() == 0
  outer_pid = os.getpid()
  if not root:
    _try(caps, "userns", disable, sandbox.enter_user_namespace)
  if root or caps["userns"]:
    _try(caps, "netns", disable, lambda: sandbox.unshare(sandbox.CLONE_NEWNET))
    _try(caps, "ipcns", disable, lambda: sandbox.unshare(sandbox.CLONE_NEWIPC))
    _try(caps, "pidns", disable, _enter_own_pidns)
  if caps["pidns"]:  # The minimal root needs a /proc of our own PID ns.
    _try(caps, "mntns", disable, lambda: (
        sandbox.unshare(sandbox.CLONE_NEWNS),
        sandbox.build_minimal_root(binds, hidden, devices),
        sandbox.mount_proc()))
  if not caps["pidns"]:  # Orphans come back to us, to be swept.
    sandbox.set_subreaper()
  if root and "uid" not in disable:
    caps["uid"] = 1_800_000_000 + outer_pid  # Unique per live worker.
  caps["read_paths"] = sorted(set(binds) | set(devices))
  abi = sandbox.landlock_abi()
  if abi and "landlock" not in disable and _probe(lambda: (
      sandbox.set_no_new_privs(),
      sandbox.apply_landlock(abi, caps["read_paths"], ["/dev/null"]))):
    caps["landlock"] = abi
  if syscall_filter.supported() and "seccomp" not in disable and _probe(
      lambda: (sandbox.set_no_new_privs(), syscall_filter.apply_base(),
               syscall_filter.apply_program())):
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
  if caps["mntns"]:  # Otherwise each program prepares its own work dir.
    program.prepare_shared(caps)
  if caps["seccomp"]:
    sandbox.set_no_new_privs()
    syscall_filter.apply_base()
  gc.freeze()  # Forked children never rescan the preloaded heap.
  worker.serve()


if __name__ == "__main__":
  main()
