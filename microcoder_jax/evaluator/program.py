"""The program supervisor and the per-test program process.

  worker ──fork──> supervisor  (one per program: init of a fresh PID namespace,
                    │           own /proc; trusted code only)
                    └──fork──> test process  (one per test: runs the program once)

The supervisor compiles the program (under the program's memory and CPU
limits) but never runs it. It receives the tests one at a time from the
worker over a unix socket (each input as a memfd, so it never holds another
test's input), forks a test process per test, and reports what it observed
itself: the exit status or signal and the CPU time from `wait4`, the peak RSS,
whether it killed the process for CPU or wall time, the tail of stderr (a
pipe it drains, so stderr is truncated, never fatal) and the stdout memfd.
The test process holds no judge descriptor: its only files are its input,
stdout, stderr and (functional problems) a result memfd.

Before each test the supervisor provides an empty size-limited tmpfs on
/tmp/w (the only writable place: new, or the last one if provably untouched,
see `_fresh_workspace`). A test process moves its descriptors into place,
sets its CPU and memory limits, drops to the unprivileged uid, applies
Landlock and the program's seccomp filter, signals "started" on a one-shot
pipe, and only then runs the program with fresh globals. Whatever
happens after "started" is the program's doing; a failure before it is the
judge's. Nothing here ever sees an expected output.
"""
import builtins
import fcntl
import json
import math
import os
import resource
import select
import signal
import socket
import sys
import time
import traceback

import sandbox  # pylint: disable=g-bad-import-order
import syscall_filter  # pylint: disable=g-bad-import-order

EXIT_MEMORY = 101  # the program raised MemoryError (its own report: a failure either way)
SET_TAG = "\u0000set"
MAX_FD = 64
ERR_TAIL = 1500  # bytes of stderr kept (the end)
COMPILE_CPU_S = 10
_GO_FD = 4  # the test process's end of its one-shot "started" pipe
# Names LeetCode's Python 3 environment defines before the solution runs.
_LEETCODE_MODULES = ("typing", "collections", "heapq", "bisect", "itertools",
                     "functools", "math", "string", "re", "operator")


# --------------------------------------------------------- wire (socket) ---
def send_msg(sock: socket.socket, msg: dict, fds=()) -> None:
  socket.send_fds(sock, [json.dumps(msg).encode()], list(fds))


def recv_msg(sock: socket.socket, maxfds: int = 2):
  data, fds, _, _ = socket.recv_fds(sock, 1 << 16, maxfds)
  if not data:
    for fd in fds:
      os.close(fd)
    raise EOFError("peer closed")
  return json.loads(data), fds


def memfd(name: str, data: bytes = b"") -> int:
  fd = os.memfd_create(name, 0)
  if data:
    view = memoryview(data)
    while view:
      view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
  return fd


def _cpu_clock(pid: int) -> int:
  return ((~pid) << 3) | 2  # CPUCLOCK_SCHED of a whole process.


# ------------------------------------------------------------- supervisor --
def place_fds(targets: dict) -> None:
  """dup2 {source fd: target fd} safely (sources may sit on targets), then
  closes every other descriptor above the targets."""
  above = max(targets.values()) + 1  # Copies never land on a target.
  high = {target: fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, above)
          for src, target in targets.items()}
  for target, fd in high.items():
    os.dup2(fd, target)  # dup2 clears close-on-exec on the target.
  kept = sorted(targets.values())
  for lo, hi in zip(kept, kept[1:]):
    os.closerange(lo + 1, hi)
  sandbox.close_fds_from(kept[-1] + 1)


def supervise(sock_fd: int, code_fd: int, job: dict, caps: dict) -> None:
  """The supervisor's life: set up, compile, then run tests until told to stop.

  It tells the worker when its own set-up is done ("compiling"): a death
  after that (compilation exhausting its limits) is the program's, before
  it the judge's.
  """
  null = os.open("/dev/null", os.O_RDWR)
  targets = {null: 0, os.dup(null): 1, os.dup(null): 2, sock_fd: 3, code_fd: 4}
  place_fds(targets)
  if len(os.listdir("/proc/self/task")) != 1:  # sandbox.fork_bare needs one.
    raise RuntimeError("the supervisor must be single-threaded")
  sock = socket.socket(fileno=3)
  code = _read_all_bytes(4)
  os.close(4)
  os.setsid()
  sandbox.set_pdeathsig()
  sandbox.set_dumpable(False)
  if caps["mntns"]:
    sandbox.unshare(sandbox.CLONE_NEWNS)
    if caps["pidns"]:
      sandbox.mount_proc()
  os.chdir("/")
  resource.setrlimit(resource.RLIMIT_CPU, (COMPILE_CPU_S, resource.RLIM_INFINITY))
  resource.setrlimit(resource.RLIMIT_AS, (job["as_bytes"], resource.RLIM_INFINITY))
  send_msg(sock, {"t": "compiling"})
  try:
    code_obj = compile(code.decode("utf-8", "surrogatepass"), "main.py", "exec")
  except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError,
          UnicodeDecodeError) as e:
    send_msg(sock, {"t": "compile_error", "msg": repr(e)[:500]})
    os._exit(0)
  resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY,) * 2)
  resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
  _prepare_test_processes(job, caps)
  send_msg(sock, {"t": "ready"})
  while True:
    _fresh_workspace(job, caps)  # Ahead of the next test, off its critical path.
    try:
      msg, fds = recv_msg(sock, 1)
    except (EOFError, OSError, ValueError):
      os._exit(0)
    if msg.get("t") != "test" or len(fds) != 1:
      os._exit(0)
    # A private, read-only description of the (sealed) input: the test's
    # reads move only its own offset.
    stdin_fd = os.open(f"/proc/self/fd/{fds[0]}", os.O_RDONLY | os.O_CLOEXEC)
    os.close(fds[0])
    report, keep = run_test(job, code_obj, stdin_fd, caps)
    report["i"] = msg["i"]
    send_msg(sock, report, keep)
    for fd in keep:
      os.close(fd)


# What every test process shares, prepared once (test processes are forked
# from the supervisor, which is forked from the worker, and inherit it): the
# environment, an empty capability bounding set, fresh stdio objects, the
# Landlock ruleset (per program), and (with a minimal root) a read-only /tmp whose `w`
# sub-directory receives a fresh tmpfs before every test.
_SHARED = {}
WORK = "/tmp/w"
# Fixed descriptor slots, far above anything the supervisor allocates (it
# holds about a dozen descriptors), below the RLIMIT_NOFILE of MAX_FD.
_SLOTS = 48  # the supervisor parks a test's descriptors at 48..52 before forking
_LANDLOCK_SLOT = 56


def prepare_shared(caps: dict, workdir: str = WORK) -> None:
  """Worker- (or, without a minimal root, program-) level preparation."""
  if caps["mntns"] and workdir == WORK and not os.path.isdir(WORK):
    sandbox.mount("mcj-tmp", "/tmp", "tmpfs", sandbox.MS_NOSUID | sandbox.MS_NODEV,
                  "size=64k,mode=0755")
    os.mkdir(WORK, 0o755)
    sandbox.mount(None, "/tmp", None, sandbox.MS_REMOUNT | sandbox.MS_RDONLY
                  | sandbox.MS_NOSUID | sandbox.MS_NODEV)
  os.environ.clear()
  os.environ.update(PATH="/usr/bin:/bin", HOME=workdir, TMPDIR=workdir,
                    LANG="C.UTF-8", OMP_NUM_THREADS="1")
  if caps["uid"] is not None or caps["mntns"]:
    sandbox.drop_bounding_set()
  _SHARED["workdir"] = workdir
  _SHARED["stdio"] = (
      open(0, "r", encoding="utf-8", newline="\n", errors="surrogateescape", closefd=False),
      open(1, "w", encoding="utf-8", newline="\n", errors="surrogateescape", closefd=False),
      open(2, "w", encoding="utf-8", buffering=1, errors="backslashreplace", closefd=False))


def _prepare_test_processes(job, caps) -> None:
  """Per program, in the supervisor: the limits that never change per test."""
  if not caps["mntns"]:  # Work dirs differ per program: re-prepare.
    prepare_shared(caps, job["workdir"])
  if caps["landlock"]:
    # Built per program (0.07 ms): Landlock rules bind inodes, and this
    # supervisor's /proc is a fresh mount. With a minimal root, /tmp's rule
    # covers the tmpfs mounted on /tmp/w before each test.
    workdir = _SHARED["workdir"]
    fd = sandbox.landlock_ruleset(caps["landlock"], caps["read_paths"] + ["/proc"],
                                  ["/tmp" if workdir == WORK else workdir, "/dev/null"])
    os.dup2(fd, _LANDLOCK_SLOT, inheritable=False)
    os.close(fd)
    _SHARED["landlock"] = _LANDLOCK_SLOT
  sandbox.set_limit(resource.RLIMIT_NOFILE, MAX_FD)
  sandbox.set_limit(resource.RLIMIT_CORE, 0)
  sandbox.set_limit(resource.RLIMIT_FSIZE, job["disk_bytes"])
  sandbox.set_limit(resource.RLIMIT_MEMLOCK, 0)
  if caps["uid"] is not None:
    sandbox.set_limit(resource.RLIMIT_NPROC, 64)


def _fresh_workspace(job, caps) -> None:
  """A new, empty tmpfs on /tmp/w and a new IPC namespace for the next test
  (without a minimal root: the program's work dir, emptied).

  Under seccomp, the last tmpfs is kept (a remount costs ~0.4 ms) when an
  inotify watch saw no change to it: nothing created, written, removed or
  renamed, no attribute set. Access times are off, and seccomp refuses
  O_TMPFILE (an unnamed inode would advance the tmpfs's inode counter
  unseen), so a kept tmpfs is indistinguishable from a fresh one.
  """
  if not caps["mntns"]:  # Fallback: the program's own host directory, emptied.
    workdir = _SHARED["workdir"]
    os.chmod(workdir, 0o700, follow_symlinks=False)
    if os.listdir(workdir):
      sandbox.clear_tree(workdir)
  elif "watch" in _SHARED and not sandbox.changed(_SHARED["watch"]):
    return  # SysV IPC and message queues are refused too.
  else:
    if "mounted" in _SHARED:
      if "watch" in _SHARED:
        os.close(_SHARED.pop("watch"))
      sandbox.umount(WORK)
    sandbox.mount_work_tmpfs(WORK, job["disk_bytes"],
                             os.getuid() if caps["uid"] is None else caps["uid"])
    _SHARED["mounted"] = True
    if caps["seccomp"]:  # Without it O_TMPFILE is open: never keep a tmpfs.
      _SHARED["watch"] = sandbox.watch_changes(WORK)
  if caps["ipcns"]:
    sandbox.unshare(sandbox.CLONE_NEWIPC)


def run_test(job: dict, code_obj, stdin_fd: int, caps: dict):
  """Forks one test process and watches it.

  Returns (report, [stdout, result, stderr-tail] memfds): the worker moves
  their bytes without reading them into its own memory.
  """
  out_fd, res_fd = memfd("stdout"), memfd("result")
  err_r, err_w = os.pipe()
  go_r, go_w = os.pipe()
  # The test process's descriptors, parked at fixed slots (fd i goes to
  # `_SLOTS + i`), so that it only needs dup2s: 0 stdin, 1 stdout, 2 stderr,
  # 3 result, 4 the "started" pipe.
  sources = (stdin_fd, out_fd, err_w, res_fd, go_w)
  if max(sources + (err_r, go_r)) >= _SLOTS:
    raise OSError(f"supervisor descriptors reached the test slots: {sources}")
  for i, fd in enumerate(sources):
    os.dup2(fd, _SLOTS + i, inheritable=False)
  for fd in (stdin_fd, err_w, go_w):
    os.close(fd)
  pid = sandbox.fork_bare()  # The supervisor is single-threaded (checked).
  if pid == 0:
    _test_process(job, code_obj, caps)
  os.closerange(_SLOTS, _SLOTS + 5)
  report, tail = _watch(pid, job["tl"], err_r, go_r)
  os.close(err_r)
  os.close(go_r)
  if not caps["seccomp"]:  # Nothing can be left behind under seccomp.
    _kill_strays(caps["pidns"])
  return report, [out_fd, res_fd, memfd("stderr", tail)]


def _watch(pid: int, tl: float, err_r: int, go_r: int) -> dict:
  """Waits for the test process, enforcing CPU and wall limits, draining stderr.

  Wall time is a backstop for programs that block or sleep: past 2·TL + 1 s
  the process is killed unless it is still burning CPU (then it is only
  starved by other load, and it may go on up to 10·TL + 5 s), so verdicts do
  not depend on how loaded the machine is.
  """
  pidfd = os.pidfd_open(pid)
  clock, start = _cpu_clock(pid), time.monotonic()
  soft_wall, hard_wall = 2 * tl + 1.0, 10 * tl + 5.0
  window = None  # (wall, cpu) at the start of the current starvation check
  tail, killed = b"", None
  watch = [pidfd, err_r]
  os.set_blocking(err_r, False)
  while True:
    wall = time.monotonic() - start
    try:
      cpu = time.clock_gettime(clock)
    except OSError:
      cpu = 0.0
    if killed is None and cpu > tl:
      killed = "cpu"
    elif killed is None and wall > hard_wall:
      killed = "wall"
    elif killed is None and wall > soft_wall:
      if window is None:
        window = (wall, cpu)
      elif wall - window[0] >= 0.5:
        if cpu - window[1] < 0.05:
          killed = "wall"
        window = (wall, cpu)
    if killed is not None:
      try:
        os.kill(pid, signal.SIGKILL)
      except OSError:
        pass
    timeout = 0.25 if killed else max(0.005, min(tl - cpu, soft_wall - wall, 0.5))
    ready = select.select(watch, [], [], timeout)[0]
    if err_r in ready:
      try:
        chunk = os.read(err_r, 1 << 16)
      except BlockingIOError:
        chunk = None
      if chunk:
        tail = (tail + chunk)[-ERR_TAIL:]
      elif chunk is not None:
        watch.remove(err_r)
    if pidfd in ready:
      break
  os.close(pidfd)
  _, status, ru = os.wait4(pid, 0)
  os.set_blocking(go_r, False)  # Its byte waits in the pipe; else EOF.
  try:
    started = bool(os.read(go_r, 1))
  except BlockingIOError:
    started = False
  if err_r in watch:
    try:
      while chunk := os.read(err_r, 1 << 16):
        tail = (tail + chunk)[-ERR_TAIL:]
    except OSError:
      pass
  rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
  sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
  return {"t": "test", "started": started, "rc": rc, "sig": sig,
          "cpu": ru.ru_utime + ru.ru_stime, "wall": time.monotonic() - start,
          "killed": killed, "maxrss_kb": ru.ru_maxrss}, tail


def _kill_strays(pidns: bool) -> None:
  """Kills anything the test left behind (only possible without seccomp)."""
  try:
    if pidns:
      os.kill(-1, signal.SIGKILL)  # As namespace init: everyone but ourselves.
    else:
      sandbox.kill_children_of(os.getpid())
  except OSError:
    pass
  sandbox.reap_zombies()


# ----------------------------------------------------------- test process --
def _test_process(job, code_obj, caps) -> None:
  """Sets up the sandbox, signals "started", runs the program once, exits."""
  try:
    _enter_sandbox(job, caps)
    stdin_text = _read_all(0) if job["mode"] == "functional" else None
  except BaseException as e:  # pylint: disable=broad-except
    try:  # Before "started": the judge's failure, reported on stderr.
      where = traceback.extract_tb(e.__traceback__)[-1]
      os.write(2, f"sandbox set-up failed: {e!r} at {where.name}:{where.lineno}".encode()[:1000])
    finally:
      os._exit(125)
  os.write(_GO_FD, b"1")  # "started": from here on, it is the program's doing.
  os.close(_GO_FD)
  _run(job, code_obj, stdin_text)


def _enter_sandbox(job, caps) -> None:
  """The per-test part of the sandbox (the rest is prepared once, above)."""
  for i in (2, 0, 1, 3, 4):  # stderr first: it carries any set-up failure.
    os.dup2(_SLOTS + i, i, inheritable=i < 4)
  landlock = _LANDLOCK_SLOT if "landlock" in _SHARED else -1
  if landlock >= 0:
    os.dup2(_LANDLOCK_SLOT, _GO_FD + 1, inheritable=False)
  sandbox.close_fds_from(_GO_FD + 1 + (landlock >= 0))
  os.chdir(_SHARED["workdir"])
  ceil_tl = math.ceil(job["tl"])
  sandbox.set_limit(resource.RLIMIT_CPU, ceil_tl + 1, ceil_tl + 2)
  uid = caps["uid"]
  fs_root = not caps["mntns"] and uid is not None
  if fs_root:
    sandbox.drop_privileges_keep_fs_root(uid)
  else:
    sandbox.drop_privileges(uid)
  # Its /proc/self files belong to its file-system uid: uid when dumpable,
  # else 0.
  sandbox.set_dumpable(not fs_root)
  sandbox.set_no_new_privs()
  if landlock >= 0:
    sandbox.landlock_restrict(_GO_FD + 1)
    os.close(_GO_FD + 1)
  sandbox.set_limit(resource.RLIMIT_AS, job["as_bytes"])
  if caps["seccomp"]:
    syscall_filter.apply_program()


def _read_all_bytes(fd: int) -> bytes:
  chunks, pos = [], 0
  while chunk := os.pread(fd, 1 << 20, pos):
    chunks.append(chunk)
    pos += len(chunk)
  return b"".join(chunks)


def _read_all(fd: int) -> str:
  return _read_all_bytes(fd).decode("utf-8", "surrogatepass")


def _leetcode_prelude() -> dict:
  """What LeetCode's Python 3 judge has imported before the solution runs
  (`from typing import *`, `collections`, `heapq`, ... and the modules
  themselves), never shadowing a builtin such as `pow`."""
  g = {}
  for name in _LEETCODE_MODULES:
    mod = __import__(name)
    g[name] = mod
    names = getattr(mod, "__all__", None) or [a for a in dir(mod) if not a.startswith("_")]
    for attr in names:
      if not hasattr(builtins, attr) and hasattr(mod, attr):
        g.setdefault(attr, getattr(mod, attr))
  return g


_PRELUDE = _leetcode_prelude()


def _globals(job) -> dict:
  if job["mode"] != "functional":
    return {"__builtins__": builtins, "__name__": "__main__"}
  return dict(_PRELUDE, __builtins__=builtins, __name__="solution")


def _run(job, code_obj, stdin_text) -> None:
  """Runs the program once; exits with its status (never returns)."""
  exit_, write, dumps = os._exit, os.write, json.dumps  # Before user code.
  sys.stdin, sys.stdout, sys.stderr = _SHARED["stdio"]
  sys.__stdin__, sys.__stdout__, sys.__stderr__ = _SHARED["stdio"]
  sys.argv = ["main.py"]
  sys.setrecursionlimit(100000)
  sys.set_int_max_str_digits(0)
  code, g = 0, _globals(job)
  try:
    if job["mode"] == "functional":
      args = [json.loads(a) for a in stdin_text.split("\n") if a.strip()]
      exec(code_obj, g)  # pylint: disable=exec-used
      value = _resolve(g, job["fn"])(*args)
      payload = {"v": _canon(value)}
      if value is None and args:
        payload["a0"] = _canon(args[0])
      data = dumps(payload).encode()
      while data:
        data = data[write(3, data):]
    else:
      exec(code_obj, g)  # pylint: disable=exec-used
  except SystemExit as e:
    if e.code is not None and e.code is not False and e.code != 0:
      code = (e.code & 0xFF or 1) if isinstance(e.code, int) else 1
  except MemoryError:
    code = EXIT_MEMORY
  except BaseException as e:  # pylint: disable=broad-except
    code = 1
    try:  # The program's frames only.
      traceback.print_exception(type(e), e, e.__traceback__.tb_next)
    except BaseException:  # pylint: disable=broad-except
      pass
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except BaseException:  # pylint: disable=broad-except
      pass
  exit_(code)


def _canon(x):
  """C0: return value -> JSON-ready plain data, or TypeError."""
  t = type(x)
  if x is None or t in (bool, int, float, str):
    return x
  if t in (list, tuple):
    return [_canon(v) for v in x]
  if t is dict:
    out = {}
    for k, v in x.items():
      if type(k) not in (str, int, float, bool) and k is not None:
        raise TypeError(f"unsupported dict key type {type(k).__name__}")
      out[k if type(k) is str else json.dumps(k)] = _canon(v)
    return out
  if t in (set, frozenset):
    return [SET_TAG, [_canon(v) for v in x]]
  np = sys.modules.get("numpy")
  if np is not None:
    if isinstance(x, np.generic):
      return _canon(x.item())
    if isinstance(x, np.ndarray):
      return _canon(x.tolist())
  raise TypeError(f"unsupported return type {t.__name__}")


def _resolve(g: dict, fn: str):
  sol = g.get("Solution")
  if isinstance(sol, type) and hasattr(sol, fn):
    return getattr(sol(), fn)
  if callable(g.get(fn)):
    return g[fn]
  raise NameError(f"function {fn!r} not found")
