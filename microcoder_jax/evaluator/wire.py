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


def recv(fd: int, max_payload: int = 1 << 34, deadline=None):
  """Returns (header, blobs); raises WireError on EOF, garbage or deadline.

  Pass a `deadline` (time.monotonic()) when the peer is not trusted to send
  whole frames promptly.
  """
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
  payload = _read_exact(fd, payload_len, deadline)
  blobs, pos = [], 0
  for s in sizes:
    blobs.append(payload[pos:pos + s])
    pos += s
  return header, blobs
