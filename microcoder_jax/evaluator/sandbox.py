"""Kernel isolation primitives for the program sandbox (standard library only).

Everything here is called inside runner processes, never in the orchestrator.
Each primitive is probed once per worker; unavailable ones are skipped and the
isolation level reported with every result lists what was actually applied:

  pidns     one PID namespace per program: the program process is its init, so
            nothing it starts can outlive it and it cannot address outsiders.
  netns     a private network namespace per worker (loopback down).
  uid       root drops to a per-worker unprivileged uid (so RLIMIT_NPROC binds).
  userns    non-root fallback for pidns/netns (unprivileged user namespace).
  landlock  filesystem reads only under the interpreter's library directories,
            writes only in the private work dir, TCP bind/connect denied and
            signals scoped to the program's own domain (ABI 6+).
  seccomp   no new processes (fork/vfork/clone without CLONE_THREAD), no exec,
            no ptrace or cross-process memory access, no non-unix sockets.
"""
import ctypes
import os
import resource
import struct
import sys

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_SECCOMP = 22
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38

_NR = {  # x86_64 syscall numbers.
    "landlock_create_ruleset": 444, "landlock_add_rule": 445,
    "landlock_restrict_self": 446, "setns": 308,
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


def reap_zombies() -> None:
  """Collects every exited child without blocking."""
  while True:
    try:
      if os.waitpid(-1, os.WNOHANG)[0] == 0:
        break
    except ChildProcessError:
      break


def set_subreaper() -> None:
  prctl(_PR_SET_CHILD_SUBREAPER, 1)


def set_undumpable() -> None:
  prctl(_PR_SET_DUMPABLE, 0)


def set_no_new_privs() -> None:
  prctl(_PR_SET_NO_NEW_PRIVS, 1)


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


def _capset(mask: int) -> None:
  hdr = ctypes.create_string_buffer(struct.pack("<Ii", 0x20080522, 0), 8)
  data = ctypes.create_string_buffer(struct.pack("<6I", mask, mask, 0, 0, 0, 0),
                                     24)
  _check(_libc.capset(hdr, data), "capset")


def drop_privileges(uid: int, keep_fs_root: bool) -> None:
  """Root path: become uid/gid `uid` with no capabilities.

  With `keep_fs_root` (only used under Landlock, which fences the file
  system on its own) the file-system ids stay 0 so that an interpreter
  installed under a root-only directory stays importable; signals, process
  counts and every other credential check use the unprivileged uid.
  """
  prctl(8, 1)  # PR_SET_KEEPCAPS
  os.setgroups([])
  os.setresgid(uid, uid, uid)
  os.setresuid(uid, uid, uid)
  if keep_fs_root:
    _capset((1 << 6) | (1 << 7))  # CAP_SETGID | CAP_SETUID
    _libc.setfsgid(0)
    _libc.setfsuid(0)
  _capset(0)
  prctl(8, 0)
  if keep_fs_root and _libc.setfsuid(-1) != 0:
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
    _check(_libc.syscall(_NR["landlock_restrict_self"], rfd, 0),
           "landlock_restrict_self")
  finally:
    os.close(rfd)


def library_read_paths() -> list:
  """Directories a Python program needs to read: stdlib, site-packages, libs."""
  paths = {"/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo",
           "/etc/localtime", "/etc/ld.so.cache", "/dev/urandom", "/dev/zero"}
  for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
    ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    paths.add(os.path.join(prefix, "lib", ver))
    paths.add(os.path.join(prefix, "lib64", ver))
  for entry in sys.path:  # Only site-packages style dirs, never source trees.
    if entry.endswith(("site-packages", "dist-packages", "lib-dynload")):
      paths.add(entry)
  return sorted(p for p in paths if os.path.exists(p))


# ----------------------------------------------------------------- seccomp --
_AUDIT_ARCH_X86_64 = 0xC000003E
_RET_ALLOW = 0x7FFF0000
_RET_KILL = 0x80000000
_EPERM, _EACCES, _ENOSYS = 1, 13, 38
_DENY = (57, 58, 59, 322, 101, 310, 311, 272, 308, 165, 166, 155, 161, 321,
         298, 250, 248, 249, 246, 320, 175, 313, 176, 323, 425, 426, 427,
         424, 434, 135, 163, 169, 167, 168, 170, 171, 312)
# fork vfork execve execveat ptrace process_vm_{readv,writev} unshare setns
# mount umount2 pivot_root chroot bpf perf_event_open keyctl add_key
# request_key kexec_{load,file_load} {init,finit,delete}_module userfaultfd
# io_uring_* pidfd_send_signal pidfd_open personality acct reboot swap* set
# {host,domain}name kcmp


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
  return struct.pack("<HBBI", code, jt, jf, k)


def _seccomp_program() -> bytes:
  ld, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
  errno = lambda e: 0x00050000 | e
  prog = [_bpf(ld, 0, 0, 4), _bpf(jeq, 1, 0, _AUDIT_ARCH_X86_64),
          _bpf(ret, 0, 0, _RET_KILL), _bpf(ld, 0, 0, 0),
          _bpf(jge, 0, 1, 0x40000000), _bpf(ret, 0, 0, errno(_EPERM))]
  for nr in _DENY:
    prog += [_bpf(jeq, 0, 1, nr), _bpf(ret, 0, 0, errno(_EPERM))]
  prog += [_bpf(jeq, 0, 1, 435), _bpf(ret, 0, 0, errno(_ENOSYS))]  # clone3
  # clone: allowed only for threads (CLONE_THREAD in the low word of arg 0).
  prog += [_bpf(jeq, 0, 4, 56), _bpf(ld, 0, 0, 16),
           _bpf(jset, 0, 1, CLONE_THREAD), _bpf(ret, 0, 0, _RET_ALLOW),
           _bpf(ret, 0, 0, errno(_EPERM))]
  # socket / socketpair: only AF_UNIX.
  for nr in (41, 53):
    prog += [_bpf(ld, 0, 0, 0), _bpf(jeq, 0, 4, nr), _bpf(ld, 0, 0, 16),
             _bpf(jeq, 0, 1, 1), _bpf(ret, 0, 0, _RET_ALLOW),
             _bpf(ret, 0, 0, errno(_EACCES))]
  prog.append(_bpf(ret, 0, 0, _RET_ALLOW))
  return b"".join(prog)


_SECCOMP_PROG = _seccomp_program()


def seccomp_supported() -> bool:
  return os.uname().machine == "x86_64"


def apply_seccomp() -> None:
  """Installs the filter; needs no_new_privs (set by the caller)."""
  n = len(_SECCOMP_PROG) // 8
  filt = ctypes.create_string_buffer(_SECCOMP_PROG, len(_SECCOMP_PROG))
  fprog = struct.pack("<HxxxxxxQ", n, ctypes.addressof(filt))
  fbuf = ctypes.create_string_buffer(fprog, len(fprog))
  _check(_libc.prctl(_PR_SET_SECCOMP, 2, fbuf, 0, 0), "seccomp")


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


def _stat(name: str) -> list:
  with open(f"/proc/{name}/stat", "rb") as f:
    stat = f.read()
  return stat[stat.rindex(b")") + 2:].split()  # [state, ppid, pgid, ...]


def _kill_matching(match, sig: int) -> int:
  """Signals live (non-zombie) processes matching; returns how many."""
  n = 0
  try:
    names = os.listdir("/proc")
  except OSError:  # E.g. under Landlock.
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
