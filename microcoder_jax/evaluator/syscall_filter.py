"""Two stacked seccomp-BPF filters (x86_64) for the sandbox.

The base filter is installed by each worker once it is set up and binds
everything that runs in it (supervisors, test processes); the program filter
is added by each test process. Splitting them keeps the per-test filter
short (it is compiled on every install). Both return errors, never kill,
except on a foreign architecture. Needs `no_new_privs`.
"""
import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_SECCOMP = 22
CLONE_THREAD = 0x00010000


def _check(ret: int, what: str) -> int:
  if ret < 0:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")
  return ret


_AUDIT_ARCH_X86_64 = 0xC000003E
_RET_ALLOW = 0x7FFF0000
_RET_KILL = 0x80000000
_EPERM, _EACCES, _ENOSYS, _EOPNOTSUPP = 1, 13, 38, 95
_O_TMPFILE_BIT = 0o20000000  # __O_TMPFILE
_BASE_DENY = (
    59, 322,                    # execve execveat
    101, 310, 311, 312,         # ptrace process_vm_{readv,writev} kcmp
    155, 161,                   # pivot_root chroot
    428, 429, 430, 431, 432, 433, 442,  # the new mount API, mount_setattr
    321, 298, 323,              # bpf perf_event_open userfaultfd
    250, 248, 249,              # keyctl add_key request_key
    246, 320, 175, 313, 176,    # kexec_*, {init,finit,delete}_module
    425, 426, 427,              # io_uring_*
    424, 438, 440, 448,         # pidfd_send_signal pidfd_getfd process_m*
    135, 163, 169, 167, 168, 170, 171,  # personality acct reboot swap* *name
    29, 30, 31, 67, 64, 65, 66, 220, 68, 69, 70, 71,  # SysV shm, sem, msg
    240, 241, 242, 243, 244, 245,  # POSIX message queues
    447,                        # memfd_secret
    300, 303, 304,              # fanotify_init name_to_handle_at open_by_handle_at
    103, 153, 179, 443, 134, 212, 172, 173,  # syslog vhangup quotactl* uselib
                                # lookup_dcookie iopl ioperm
)
_PROGRAM_DENY = (
    57, 58,                     # fork vfork (clone: threads only, clone3: ENOSYS)
    272, 308, 165, 166,         # unshare setns mount umount2
    319, 434,                   # memfd_create pidfd_open
)


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
  return struct.pack("<HBBI", code, jt, jf, k)


def _seccomp_program(deny, program: bool) -> bytes:
  ld, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
  errno = lambda e: 0x00050000 | e
  prog = [_bpf(ld, 0, 0, 4), _bpf(jeq, 1, 0, _AUDIT_ARCH_X86_64),
          _bpf(ret, 0, 0, _RET_KILL), _bpf(ld, 0, 0, 0),
          _bpf(jge, 0, 1, 0x40000000), _bpf(ret, 0, 0, errno(_EPERM))]
  for nr in deny:
    prog += [_bpf(jeq, 0, 1, nr), _bpf(ret, 0, 0, errno(_EPERM))]
  if program:
    prog += [_bpf(jeq, 0, 1, 435), _bpf(ret, 0, 0, errno(_ENOSYS))]  # clone3
    # clone: allowed only for threads (CLONE_THREAD in the low word of arg 0).
    prog += [_bpf(jeq, 0, 4, 56), _bpf(ld, 0, 0, 16),
             _bpf(jset, 0, 1, CLONE_THREAD), _bpf(ret, 0, 0, _RET_ALLOW),
             _bpf(ret, 0, 0, errno(_EPERM))]
  else:
    # open / openat with O_TMPFILE: EOPNOTSUPP (Python falls back to a named
    # file). An unnamed inode would advance the work tmpfs's inode counter
    # and leave no other trace; openat2 (flags out of reach) is ENOSYS.
    prog += [_bpf(jeq, 0, 1, 437), _bpf(ret, 0, 0, errno(_ENOSYS))]
    for nr, arg in ((2, 1), (257, 2)):
      prog += [_bpf(ld, 0, 0, 0), _bpf(jeq, 0, 3, nr), _bpf(ld, 0, 0, 16 + 8 * arg),
               _bpf(jset, 0, 1, _O_TMPFILE_BIT), _bpf(ret, 0, 0, errno(_EOPNOTSUPP))]
    # socket / socketpair: only AF_UNIX.
    for nr in (41, 53):
      prog += [_bpf(ld, 0, 0, 0), _bpf(jeq, 0, 4, nr), _bpf(ld, 0, 0, 16),
               _bpf(jeq, 0, 1, 1), _bpf(ret, 0, 0, _RET_ALLOW),
               _bpf(ret, 0, 0, errno(_EACCES))]
  prog.append(_bpf(ret, 0, 0, _RET_ALLOW))
  return b"".join(prog)


def _fprog(code: bytes):
  """(filter buffer, sock_fprog buffer), built once: installing is one prctl."""
  filt = ctypes.create_string_buffer(code, len(code))
  return filt, ctypes.create_string_buffer(
      struct.pack("<HxxxxxxQ", len(code) // 8, ctypes.addressof(filt)), 16)


_BASE_FILTER = _fprog(_seccomp_program(_BASE_DENY, program=False))
_PROGRAM_FILTER = _fprog(_seccomp_program(_PROGRAM_DENY, program=True))


def supported() -> bool:
  return os.uname().machine == "x86_64"


def apply_base() -> None:
  """The worker's filter (needs no_new_privs): see `_BASE_DENY`."""
  _check(_libc.prctl(_PR_SET_SECCOMP, 2, _BASE_FILTER[1], 0, 0), "seccomp")


def apply_program() -> None:
  """A test process's filter, on top of the base one: no new processes, no
  mounts or namespaces, no memfds (needs no_new_privs)."""
  _check(_libc.prctl(_PR_SET_SECCOMP, 2, _PROGRAM_FILTER[1], 0, 0), "seccomp")


