"""Kernel isolation primitives for the program sandbox (standard library only).

Everything here runs inside runner processes, never in the orchestrator.
Each layer is probed once per worker; the isolation level reported with
every result lists what was applied (see `runner.isolation_names`):

  mntns    the worker pivots into a minimal root: read-only binds of the
           Python standard library, the preloaded packages, the system
           libraries and five device files; a read-only /tmp and /proc. Each
           test gets an empty, size-limited tmpfs on /tmp/w (its only
           writable place) and each program its own /proc. No other host
           file, directory or socket exists in this view.
  pidns    one PID namespace per program; the supervisor is its init, so
           nothing the program starts outlives it or sees outsiders.
  netns    a private network namespace per worker (loopback down, abstract
           unix sockets private).
  ipcns    a private IPC namespace per worker, renewed with the work tmpfs.
  uid      root drops to a per-worker unprivileged uid with no capabilities.
  userns   non-root fallback: an unprivileged user namespace provides the
           namespaces above; capabilities are dropped before user code.
  landlock file-system access limited to the library paths and /tmp, TCP
           denied, signals and abstract sockets scoped (defence in depth).
  seccomp  (syscall_filter.py) no new processes or programs, no ptrace, no
           mounts or namespaces, no SysV/POSIX IPC, no memfd, no O_TMPFILE,
           no non-unix sockets, no keyrings.
  rlimits  CPU, address space, file size, descriptors, processes, core.
"""
import ctypes
import os
import resource
import stat
import struct
import sys

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_BIND, MS_REC = 32, 1024, 4096, 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38

_NR = {  # x86_64 syscall numbers.
    "landlock_create_ruleset": 444, "landlock_add_rule": 445,
    "landlock_restrict_self": 446, "setns": 308, "pivot_root": 155,
    "close_range": 436,
}


def _check(ret: int, what: str) -> int:
  if ret < 0:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")
  return ret


def prctl(option: int, arg: int = 0) -> None:
  _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), "prctl")


def unshare(flags: int) -> None:
  _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
  _check(_libc.setns(fd, nstype), "setns")


def set_pdeathsig(sig: int = 9) -> None:
  prctl(_PR_SET_PDEATHSIG, sig)


def set_subreaper() -> None:
  prctl(_PR_SET_CHILD_SUBREAPER, 1)


def set_dumpable(flag: bool) -> None:
  """Undumpable: /proc entries root-owned, no ptrace. A uid change makes a
  process undumpable; the test process turns it back on so that a program
  can read its own /proc/self (nobody else in its namespace shares its uid)."""
  prctl(_PR_SET_DUMPABLE, int(flag))


def set_no_new_privs() -> None:
  prctl(_PR_SET_NO_NEW_PRIVS, 1)


def close_fds_from(lowest: int) -> None:
  """Closes every descriptor >= `lowest`."""
  if _libc.syscall(_NR["close_range"], lowest, 0xFFFFFFFF, 0) == 0:
    return
  os.closerange(lowest, 1 << 16)


_PY_FORK = ctypes.PyDLL(None, use_errno=True).fork  # Called holding the GIL.


def fork_bare() -> int:
  """fork(2) (glibc's, with its own at-fork handlers) without CPython's:
  no import-lock or thread-state re-initialisation, no `os.register_at_fork`
  callbacks (such as `random` reseeding). They exist for parents with other
  threads and cost ~0.6 ms per fork here (the pages they touch are copied);
  only a single-threaded caller may use this."""
  pid = _PY_FORK()
  if pid < 0:
    raise OSError(ctypes.get_errno(), "fork")
  return pid


def reap_zombies() -> None:
  """Collects every exited child without blocking."""
  while True:
    try:
      if os.waitpid(-1, os.WNOHANG)[0] == 0:
        break
    except ChildProcessError:
      break


# ------------------------------------------------------------------ mounts --
def mount(source, target: str, fstype, flags: int, data=None) -> None:
  enc = lambda s: None if s is None else s.encode()
  _check(_libc.mount(enc(source), target.encode(), enc(fstype),
                     ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def umount(target: str) -> None:
  _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def _bind_ro(source: str, target: str, device: bool = False) -> None:
  mount(source, target, None, MS_BIND | MS_REC)
  flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOATIME
  mount(None, target, None, flags | (0 if device else MS_NODEV))


def _mkdirs(path: str) -> None:
  os.makedirs(path, mode=0o755, exist_ok=True)


def _staging_dir(paths) -> str:
  """A host directory to build the new root on: one no bound path lies in."""
  for cand in ("/tmp", "/mnt", "/media", "/srv", "/var/tmp", "/opt", "/run", "/boot"):
    if (os.path.isdir(cand) and not os.path.islink(cand)
        and not any(p == cand or p.startswith(cand + os.sep) for p in paths)):
      return cand
  raise OSError("no directory to build the minimal root on: every candidate "
                "holds a path the sandbox must bind")


def build_minimal_root(binds, hidden, devices) -> None:
  """Replaces this process's (new, private) mount tree by a minimal root.

  `binds`: host paths (directories, files or symlinks) made visible read-only
  at the same place; `hidden`: directories inside a bound one that become
  empty (then selected `binds` below them are re-added); `devices`: device
  files bound as they are. The new root is a read-only tmpfs holding only
  their mount points, /proc and /tmp (both empty). Host paths are reached
  through a descriptor of the old root, so nothing is created on the host.
  """
  mount(None, "/", None, MS_REC | MS_PRIVATE)
  host = os.open("/", os.O_PATH | os.O_DIRECTORY)
  src = lambda p: f"/proc/self/fd/{host}{p}"
  # Covered in this mount namespace only; never above a path to bind (a
  # virtual environment in /tmp would be hidden by the new root's tmpfs).
  new = _staging_dir(set(binds) | set(hidden) | set(devices))
  mount("mcj-root", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
  for path in sorted(set(binds) | set(hidden) | set(devices), key=len):
    target = new + path
    if path in hidden:
      _mkdirs(target)
      mount("mcj-hide", target, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
      continue
    st = os.lstat(src(path))
    if stat.S_ISLNK(st.st_mode):
      _mkdirs(os.path.dirname(target))
      os.symlink(os.readlink(src(path)), target)
      continue
    if stat.S_ISDIR(st.st_mode):
      _mkdirs(target)
    else:
      _mkdirs(os.path.dirname(target))
      with open(target, "w"):
        pass
    _bind_ro(src(path), target, device=path in devices)
  for d in ("proc", "tmp", "dev"):
    _mkdirs(f"{new}/{d}")
  for name, fd in (("fd", ""), ("stdin", "/0"), ("stdout", "/1"), ("stderr", "/2")):
    if not os.path.lexists(f"{new}/dev/{name}"):
      os.symlink(f"/proc/self/fd{fd}", f"{new}/dev/{name}")
  for path in hidden:  # Read-only from now on, like everything else.
    mount(None, new + path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
  os.close(host)
  os.mkdir(f"{new}/.old")
  _check(_libc.syscall(_NR["pivot_root"], new.encode(), f"{new}/.old".encode()),
         "pivot_root")
  os.chdir("/")
  umount("/.old")
  os.rmdir("/.old")
  mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def mount_proc() -> None:
  """A procfs of the current PID namespace on /proc: process entries only
  where the kernel supports `subset=pid` (no /proc/sys, no kernel files)."""
  flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
  try:
    mount("proc", "/proc", "proc", flags, "hidepid=invisible,subset=pid")
  except OSError:
    mount("proc", "/proc", "proc", flags)


def mount_work_tmpfs(path: str, size_bytes: int, uid: int) -> None:
  """The test's only writable place: an empty tmpfs owned by `uid` (noatime:
  reading it leaves no trace)."""
  mount("mcj-work", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOATIME,
        f"size={max(size_bytes, 4096)},nr_inodes=4096,mode=0700,uid={uid},gid={uid}")


# inotify: every change to a directory's entries or attributes.
_IN_CHANGES = (0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800
               | 0x4000)  # ... | IN_Q_OVERFLOW


def watch_changes(path: str) -> int:
  """An inotify descriptor that turns readable on any change to directory
  `path` itself or its entries (files created, written, removed, renamed;
  attributes, xattrs and times set). Timestamps can be too coarse to tell."""
  fd = _check(_libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC), "inotify_init1")
  try:
    _check(_libc.inotify_add_watch(fd, path.encode(), _IN_CHANGES),
           f"inotify_add_watch {path}")
  except OSError:
    os.close(fd)
    raise
  return fd


def changed(watch_fd: int) -> bool:
  """Whether `watch_changes` saw anything (the events are consumed)."""
  try:
    return bool(os.read(watch_fd, 1 << 16))
  except BlockingIOError:
    return False


def sandbox_paths() -> tuple:
  """(binds, hidden, devices): what a Python program needs to read.

  The standard library (with lib-dynload), the preloaded packages (numpy and
  its vendored libraries), libpython, the system library directories and the
  dynamic loader's cache. Site-packages directories are hidden except for
  the preloaded packages.
  """
  import sysconfig  # pylint: disable=g-import-not-at-top
  ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
  stdlib = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
  stdlib |= {os.path.join(p, "lib", ver) for p in (sys.base_prefix, sys.base_exec_prefix)}
  binds = {p for p in stdlib if os.path.isdir(p)}
  for d in ("/lib", "/lib32", "/lib64", "/usr/lib", "/usr/lib32", "/usr/lib64",
            "/usr/local/lib", "/etc/ld.so.cache", "/etc/localtime"):
    if os.path.lexists(d):
      binds.add(d)
  libdir = sysconfig.get_config_var("LIBDIR") or ""
  for name in os.listdir(libdir) if os.path.isdir(libdir) else ():
    if name.startswith("libpython"):
      binds.add(os.path.join(libdir, name))
  hidden = set()
  for site in {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}:
    if any(site.startswith(b + os.sep) for b in binds):
      hidden.add(site)
  for name in ("numpy",):
    mod = sys.modules.get(name)
    if mod is not None and getattr(mod, "__file__", None):
      pkg = os.path.dirname(mod.__file__)
      binds.add(pkg)
      if os.path.isdir(pkg + ".libs"):
        binds.add(pkg + ".libs")
  devices = {d for d in ("/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                         "/dev/urandom") if os.path.exists(d)}
  # A bind nested in another bind is already visible (unless hidden).
  binds = {b for b in binds if not any(
      b.startswith(o + os.sep) and not any(b.startswith(h + os.sep) for h in hidden)
      for o in binds if o != b)}
  return sorted(binds), sorted(hidden), sorted(devices)


# ----------------------------------------------------------------- user ns --
def enter_user_namespace() -> None:
  """Non-root path: map our uid/gid to themselves inside a new user ns."""
  uid, gid = os.getuid(), os.getgid()
  unshare(CLONE_NEWUSER)
  with open("/proc/self/setgroups", "w") as f:
    f.write("deny")
  with open("/proc/self/uid_map", "w") as f:
    f.write(f"{uid} {uid} 1")
  with open("/proc/self/gid_map", "w") as f:
    f.write(f"{gid} {gid} 1")


# Resolved and built at import: a test process (a fresh fork) would pay for
# the symbol lookup in every loaded library, ~0.3 ms, on each test.
for _name in ("prctl", "syscall", "setfsuid", "setfsgid"):
  getattr(_libc, _name)  # ctypes caches the function on first access.
_CAPSET = _libc.capset
_CAP_HEADER = ctypes.create_string_buffer(struct.pack("<Ii", 0x20080522, 0), 8)
_NO_CAPS = ctypes.create_string_buffer(24)


def _capset(mask: int) -> None:
  data = _NO_CAPS if mask == 0 else ctypes.create_string_buffer(
      struct.pack("<6I", mask, mask, 0, 0, 0, 0), 24)
  _check(_CAPSET(_CAP_HEADER, data), "capset")


def drop_privileges(uid) -> None:
  """Becomes `uid` (when given: the root path) with no capabilities at all."""
  if uid is not None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
  _capset(0)


def drop_bounding_set() -> None:
  """Empties the capability bounding set (what any later execve could regain);
  the caller keeps its current capabilities."""
  for cap in range(64):
    if _libc.prctl(24, cap, 0, 0, 0) < 0 and ctypes.get_errno() == 22:
      break


def drop_privileges_keep_fs_root(uid: int) -> None:
  """Fallback without a minimal root: file-system ids stay 0 so that an
  interpreter under a root-only directory stays importable (Landlock fences
  the file system); every other credential is `uid`'s."""
  prctl(8, 1)  # PR_SET_KEEPCAPS
  os.setgroups([])
  os.setresgid(uid, uid, uid)
  os.setresuid(uid, uid, uid)
  _capset((1 << 6) | (1 << 7))  # CAP_SETGID | CAP_SETUID
  _libc.setfsgid(0)
  _libc.setfsuid(0)
  _capset(0)
  prctl(8, 0)
  if _libc.setfsuid(-1) != 0:
    raise OSError("setfsuid failed")


# ---------------------------------------------------------------- landlock --
_LL_FS_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1,
              5: (1 << 16) - 1}
_LL_EXEC, _LL_WRITE, _LL_READ, _LL_READ_DIR = 1, 2, 4, 8
_LL_TRUNCATE = 1 << 14
_LL_FILE_ONLY = _LL_EXEC | _LL_WRITE | _LL_READ | _LL_TRUNCATE


def landlock_abi() -> int:
  if os.uname().machine != "x86_64":
    return 0
  ret = _libc.syscall(_NR["landlock_create_ruleset"], None, 0, 1)
  return ret if ret > 0 else 0


def _fs_mask(abi: int) -> int:
  return _LL_FS_ABI[max(k for k in _LL_FS_ABI if k <= abi)]


def apply_landlock(abi: int, read_paths, write_paths) -> None:
  """Restricts the calling process (and its future children) for good."""
  rfd = landlock_ruleset(abi, read_paths, write_paths)
  try:
    landlock_restrict(rfd)
  finally:
    os.close(rfd)


def landlock_restrict(ruleset_fd: int) -> None:
  """Enforces a ruleset on the calling process (needs no_new_privs)."""
  _check(_libc.syscall(_NR["landlock_restrict_self"], ruleset_fd, 0),
         "landlock_restrict_self")


def landlock_ruleset(abi: int, read_paths, write_paths) -> int:
  """A ruleset descriptor: read/execute below `read_paths`, everything below
  `write_paths`, no TCP, scoped signals and abstract sockets. Built once and
  enforced by each test process with `landlock_restrict`."""
  handled = _fs_mask(abi)
  attr = struct.pack("<Q", handled)
  if abi >= 4:
    attr += struct.pack("<Q", 3)  # TCP bind + connect: no rule grants them.
  if abi >= 6:
    attr += struct.pack("<Q", 3)  # Scope abstract unix sockets and signals.
  buf = ctypes.create_string_buffer(attr, len(attr))
  rfd = _check(_libc.syscall(_NR["landlock_create_ruleset"], buf,
                             len(attr), 0), "landlock_create_ruleset")
  try:
    rules = [(p, _LL_EXEC | _LL_READ | _LL_READ_DIR) for p in read_paths]
    rules += [(p, handled) for p in write_paths]
    for path, access in rules:
      try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
      except OSError:
        continue
      try:
        if not os.path.isdir(path):
          access &= _LL_FILE_ONLY
        rule = ctypes.create_string_buffer(
            struct.pack("<Qi", access & handled, pfd), 12)
        _check(_libc.syscall(_NR["landlock_add_rule"], rfd, 1, rule, 0),
               "landlock_add_rule")
      finally:
        os.close(pfd)
  except BaseException:
    os.close(rfd)
    raise
  return rfd


# ----------------------------------------------------------------- rlimits --
def set_limit(res: int, soft: int, hard: int = None) -> None:
  hard = soft if hard is None else hard
  cur_hard = resource.getrlimit(res)[1]
  if cur_hard != resource.RLIM_INFINITY and os.geteuid() != 0:
    hard = min(hard, cur_hard)
    soft = min(soft, hard)
  resource.setrlimit(res, (soft, hard))


def vm_size_bytes() -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmSize:"):
        return int(line.split()[1]) * 1024
  return 0


# --------------------------------------------------- fallbacks (no pidns) --
def _stat(name: str) -> list:
  with open(f"/proc/{name}/stat", "rb") as f:
    data = f.read()
  return data[data.rindex(b")") + 2:].split()  # [state, ppid, pgid, ...]


def _kill_matching(match, sig: int) -> int:
  """Signals live (non-zombie) processes matching; returns how many."""
  n = 0
  try:
    names = os.listdir("/proc")
  except OSError:
    return 0
  for name in names:
    if not name.isdigit():
      continue
    try:
      if _stat(name)[0] not in (b"Z", b"X") and match(name):
        os.kill(int(name), sig)
        n += 1
    except (OSError, ValueError, IndexError):
      continue
  return n


def kill_children_of(ppid: int, sig: int = 9) -> int:
  """Fallback sweep: signals every process whose parent is `ppid`."""
  return _kill_matching(lambda name: int(_stat(name)[1]) == ppid, sig)


def kill_uid(uid, sig: int = 9) -> int:
  """Fallback sweep: signals every process whose real uid is `uid`."""
  if uid is None:
    return 0
  def match(name):
    with open(f"/proc/{name}/status") as f:
      for line in f:
        if line.startswith("Uid:"):
          return int(line.split()[1]) == uid
    return False
  return _kill_matching(match, sig)


def clear_tree(path: str) -> None:
  """Deletes everything below directory `path`, at any depth, holding one
  directory descriptor at a time (a program can leave a chain of directories
  far deeper than PATH_MAX); symlinks are never followed. Nothing may still
  be writing below `path`."""
  flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
  try:
    fd = os.open(path, flags)
  except OSError:
    return
  names, skip = [], [set()]  # the path from `path` down; what cannot go, per level
  try:
    while True:
      child = None
      with os.scandir(fd) as entries:
        for e in entries:
          if e.is_dir(follow_symlinks=False):
            if e.name not in skip[-1]:
              child = e.name
          else:
            try:
              os.unlink(e.name, dir_fd=fd)
            except OSError:
              pass
      if child is not None:
        try:
          nxt = os.open(child, flags, dir_fd=fd)
        except OSError:
          skip[-1].add(child)
          continue
        os.close(fd)
        fd = nxt
        names.append(child)
        skip.append(set())
        continue
      if not names:
        return
      up = os.open("..", flags, dir_fd=fd)
      os.close(fd)
      fd, name = up, names.pop()
      skip.pop()
      try:
        os.rmdir(name, dir_fd=fd)
      except OSError:
        skip[-1].add(name)
  finally:
    os.close(fd)


def remove_tree(path: str) -> None:
  """Deletes directory `path` and everything below it (see clear_tree)."""
  clear_tree(path)
  try:
    os.rmdir(path)
  except OSError:
    pass
