"""Framing for the orchestrator <-> runner pipes: JSON header plus raw blobs.

A frame is `<u32 header length><u64 payload length>`, a JSON header with a
`blobs` list of byte lengths, then the concatenated blobs. No pickle: frames
coming back from runners carry program output and are parsed as plain data.
"""
import json
import os
import select
import struct
import time

_PREFIX = struct.Struct("<IQ")
MAX_HEADER = 1 << 20


class WireError(Exception):
  """The peer closed the pipe or sent a malformed frame."""


def _read_exact(fd: int, n: int, deadline=None) -> bytes:
  chunks, left = [], n
  while left:
    if deadline is not None and not select.select(
        [fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
      raise WireError("timed out inside a frame")
    chunk = os.read(fd, min(left, 1 << 20))
    if not chunk:
      raise WireError("pipe closed")
    chunks.append(chunk)
    left -= len(chunk)
  return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
  view = memoryview(data)
  while view:
    n = os.write(fd, view)
    view = view[n:]


def send(fd: int, header: dict, blobs=()) -> None:
  header = dict(header, blobs=[len(b) for b in blobs])
  head = json.dumps(header, separators=(",", ":")).encode()
  payload = b"".join(blobs)
  _write_all(fd, _PREFIX.pack(len(head), len(payload)) + head + payload)


def _recv_header(fd: int, max_payload: int, deadline):
  """(header, blob sizes) of the next frame."""
  head_len, payload_len = _PREFIX.unpack(_read_exact(fd, _PREFIX.size,
                                                     deadline))
  if head_len > MAX_HEADER or payload_len > max_payload:
    raise WireError("frame too large")
  try:
    header = json.loads(_read_exact(fd, head_len, deadline))
    sizes = [int(s) for s in header.pop("blobs")]
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise WireError(f"bad header: {e}") from e
  if sum(sizes) != payload_len or any(s < 0 for s in sizes):
    raise WireError("blob sizes do not match payload")
  return header, sizes


def recv(fd: int, max_payload: int = 1 << 34, deadline=None):
  """Returns (header, blobs); raises WireError on EOF, garbage or deadline.

  Pass a `deadline` (time.monotonic()) when the peer is not trusted to send
  whole frames promptly.
  """
  header, sizes = _recv_header(fd, max_payload, deadline)
  payload = _read_exact(fd, sum(sizes), deadline)
  blobs, pos = [], 0
  for s in sizes:
    blobs.append(payload[pos:pos + s])
    pos += s
  return header, blobs


# ------------------------------------------- blobs that bypass the heap ---
# A runner worker is the parent of every sandboxed process, which inherit a
# snapshot of its memory. So that no program can find another program's code,
# inputs or outputs in stale memory, the worker moves blobs between its pipe
# and memfds with splice(2): their bytes never enter its address space.
def _seal(fd: int) -> None:
  import fcntl  # pylint: disable=g-import-not-at-top
  fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
              | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)


def recv_to_memfds(fd: int, max_payload: int = 1 << 34, deadline=None):
  """Like `recv`, but every blob lands in its own sealed (immutable) memfd.

  Returns (header, [memfd, ...]); the caller owns the descriptors.
  """
  header, sizes = _recv_header(fd, max_payload, deadline)
  fds = []
  try:
    for i, size in enumerate(sizes):
      mfd = os.memfd_create(f"blob{i}", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
      fds.append(mfd)
      done = 0
      while done < size:
        if deadline is not None and not select.select(
            [fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
          raise WireError("timed out inside a frame")
        n = os.splice(fd, mfd, size - done, offset_dst=done)
        if n == 0:
          raise WireError("pipe closed")
        done += n
      _seal(mfd)
  except BaseException:
    for mfd in fds:
      os.close(mfd)
    raise
  return header, fds


def send_from_fds(fd: int, header: dict, sources=()) -> None:
  """Like `send`, with blobs given as (file descriptor, length): each blob is
  the first `length` bytes of its file, spliced into the pipe."""
  header = dict(header, blobs=[n for _, n in sources])
  head = json.dumps(header, separators=(",", ":")).encode()
  _write_all(fd, _PREFIX.pack(len(head), sum(n for _, n in sources)) + head)
  for src, n in sources:
    done = 0
    while done < n:
      moved = os.splice(src, fd, n - done, offset_src=done)
      if moved == 0:  # The file is shorter than announced: pad, never hang.
        _write_all(fd, b"\0" * (n - done))
        break
      done += moved
