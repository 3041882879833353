"""The sandboxed program process: set up once, then run every test in turn.

Runs inside the runner worker's fork (see runner.py); it is the init of a
fresh PID namespace where the kernel allows it. Each test gets a memfd stdin,
the worker's stdout/stderr memfds (truncated), fresh globals, reset `sys`
state and restored builtins. A test that leaves threads running or hits the
memory limit marks the process dirty; the worker then forks a new one for the
remaining tests. Nothing here ever sees an expected output.
"""
import builtins
import json
import math
import os
import resource
import sys
import threading
import traceback

import sandbox  # pylint: disable=g-bad-import-order
import wire

EXIT_MEMORY = 101
SET_TAG = "\u0000set"
MAX_FD = 64


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


def _exec_test(job, code_obj, text: str):
  """Runs the program once in fresh globals; returns (exit code, result)."""
  code, result = 0, b""
  g = {"__builtins__": builtins}
  try:
    if job["mode"] == "stdin":
      g["__name__"] = "__main__"
      exec(code_obj, g)  # pylint: disable=exec-used
    else:
      g["__name__"] = "solution"
      exec(code_obj, g)  # pylint: disable=exec-used
      args = [json.loads(a) for a in text.split("\n") if a.strip()]
      value = _resolve(g, job["fn"])(*args)
      payload = {"v": _canon(value)}
      if value is None and args:
        payload["a0"] = _canon(args[0])
      result = json.dumps(payload).encode()
  except SystemExit as e:
    if e.code is not None and e.code is not False and e.code != 0:
      code = (e.code & 0xFF or 1) if isinstance(e.code, int) else 1
  except MemoryError:
    code = EXIT_MEMORY
  except BaseException:  # pylint: disable=broad-except
    code = 1
    try:
      traceback.print_exc()
    except BaseException:  # pylint: disable=broad-except
      pass
  return code, result, g


def _finish_test(g, streams):
  """Joins threads, runs shutdown-like cleanup; True if the process is dirty."""
  for t in threading.enumerate():
    if t is not threading.main_thread() and not t.daemon:
      t.join()
  g.clear()  # Like interpreter shutdown: user file objects flush on dealloc.
  for stream in (sys.stdout, sys.stderr) + streams:
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  return threading.active_count() > 1


def _set_stdio(in_fd: int, out_fd: int, err_fd: int):
  if in_fd != 0:  # fd 0 is free (and reused) if the last test closed it.
    os.dup2(in_fd, 0)
    os.close(in_fd)
  for fd, target in ((out_fd, 1), (err_fd, 2)):
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.dup2(fd, target)
  sys.stdin = sys.__stdin__ = open(0, "r", encoding="utf-8", newline="\n",
                                   errors="surrogateescape", closefd=False)
  sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", newline="\n",
                                     errors="surrogateescape", closefd=False)
  sys.stderr = sys.__stderr__ = open(2, "w", encoding="utf-8", buffering=1,
                                     errors="backslashreplace", closefd=False)
  sys.argv = ["main.py"]
  sys.setrecursionlimit(100000)
  sys.set_int_max_str_digits(0)
  return (sys.stdout, sys.stderr)


def program_main(job, blobs, start, workdir, fds, caps) -> None:
  """Sandboxed program process: set up once, run tests `start`.. in turn."""
  wfd, out_fd, err_fd = fds
  os.setsid()
  for fd in range(3, MAX_FD * 4):
    if fd not in fds:
      try:
        os.close(fd)
      except OSError:
        pass
  os.chdir(workdir)
  tl, n = job["tl"], len(blobs) - 1
  sandbox.set_limit(resource.RLIMIT_NOFILE, MAX_FD)
  sandbox.set_limit(resource.RLIMIT_CORE, 0)
  sandbox.set_limit(resource.RLIMIT_CPU, math.ceil(2 * tl * (n - start)) + 10)
  fsize = (job["cap"] + 1, max([job["cap"]] + [len(b) for b in blobs]) + 1)
  sandbox.set_limit(resource.RLIMIT_FSIZE, *fsize)
  if caps["uid"] is not None:
    sandbox.set_limit(resource.RLIMIT_NPROC, 64)
    sandbox.drop_privileges(caps["uid"], keep_fs_root=bool(caps["landlock"]))
  sandbox.set_pdeathsig()
  sandbox.set_undumpable()
  sandbox.set_no_new_privs()
  if not caps["pidns"]:
    sandbox.set_subreaper()
  if caps["landlock"]:
    sandbox.apply_landlock(caps["landlock"], caps["read_paths"],
                           [workdir, "/dev/null"])
  os.environ.clear()
  os.environ.update(PATH="/usr/bin:/bin", HOME=workdir, TMPDIR=workdir,
                    LANG="C.UTF-8", OMP_NUM_THREADS="1")
  try:
    code_obj = compile(blobs[0].decode("utf-8", "surrogateescape"),
                       "main.py", "exec")
  except (SyntaxError, ValueError, OverflowError, RecursionError,
          MemoryError) as e:
    wire.send(wfd, {"t": "compile_error", "msg": repr(e)[:500]})
    return
  sandbox.set_limit(resource.RLIMIT_AS, job["as_bytes"])
  if caps["seccomp"]:
    sandbox.apply_seccomp()
  wire.send(wfd, {"t": "ready"})
  saved_builtins = dict(builtins.__dict__)
  for i in range(start, n):
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize[1], fsize[1]))
    in_fd = memfd("stdin", blobs[i + 1])
    resource.setrlimit(resource.RLIMIT_FSIZE, fsize)
    streams = _set_stdio(in_fd, out_fd, err_fd)
    text = blobs[i + 1].decode("utf-8", "surrogateescape")
    code, result, g = _exec_test(job, code_obj, text)
    try:
      dirty = _finish_test(g, streams) or code == EXIT_MEMORY
    except BaseException:  # pylint: disable=broad-except
      dirty = True
    _kill_strays(caps["pidns"])
    out = os.pread(out_fd, job["cap"] + 1, 0)
    builtins.__dict__.clear()
    builtins.__dict__.update(saved_builtins)
    wire.send(wfd, {"t": "test", "i": i, "rc": code, "dirty": dirty},
              [out, result])
    if dirty:
      return
  wire.send(wfd, {"t": "end"})


def _kill_strays(pidns: bool) -> None:
  """Kills any process the test started (only possible without seccomp)."""
  try:
    if pidns:
      os.kill(-1, 9)  # As namespace init: every process but ourselves.
    else:
      sandbox.kill_children_of(os.getpid())
  except OSError:
    pass
  sandbox.reap_zombies()


def memfd(name: str, data: bytes = b"") -> int:
  fd = os.memfd_create(name, 0)
  if data:
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
  return fd
