"""Runner worker processes, as seen from the orchestrator."""
import collections
import os
import select
import signal
import subprocess
import sys

from microcoder_jax.evaluator import sandbox
from microcoder_jax.evaluator import wire

_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")
# Layers without which untrusted code does not run unless the user accepts a
# weaker sandbox (`Evaluator(allow_weak_isolation=True)`); "uid" is met by
# either a uid drop (root) or a user namespace (non-root).
REQUIRED_LAYERS = ("mntns", "pidns", "netns", "ipcns", "uid", "seccomp")
# Test inputs a worker keeps between programs (runner.py mirrors this LRU).
INPUT_CACHE_PROBLEMS = 8
INPUT_CACHE_MAX_BYTES = 64 << 20


def missing_layers(isolation: str) -> list:
  """Required layers absent from an isolation string (empty: full strength)."""
  names = set(isolation.split(","))
  if "userns" in names:
    names.add("uid")
  return [layer for layer in REQUIRED_LAYERS if layer not in names]


def worker_env(preload_numpy: bool, disable=()) -> dict:
  """A scrubbed environment: no credentials, accelerators hidden."""
  return {
      "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
      "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
      "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
      "MKL_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu",
      "CUDA_VISIBLE_DEVICES": "-1", "TPU_VISIBLE_DEVICES": "",
      "MCJ_PRELOAD_NUMPY": "1" if preload_numpy else "0",
      "MCJ_SANDBOX_DISABLE": ",".join(disable),
  }


class WorkerProc:
  """One warm runner process speaking `wire` frames over two pipes."""

  def __init__(self, preload_numpy: bool = True, disable=()):
    self.proc = subprocess.Popen(
        [sys.executable, "-s", _RUNNER], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
        env=worker_env(preload_numpy, disable), start_new_session=True,
        close_fds=True)
    self.rfd = self.proc.stdout.fileno()
    self.wfd = self.proc.stdin.fileno()
    self.isolation, self.base = "", None
    self._inputs_lru = collections.OrderedDict()

  def plan_inputs(self, fingerprint: str, size: int):
    """Returns (send the inputs?, should the worker keep them?).

    GRPO groups repeat problems, so workers keep the inputs of recent
    problems; this LRU is a mirror of the worker's, updated identically.
    """
    if fingerprint in self._inputs_lru:
      self._inputs_lru.move_to_end(fingerprint)
      return False, True
    keep = size <= INPUT_CACHE_MAX_BYTES
    if keep:
      self._inputs_lru[fingerprint] = None
      while len(self._inputs_lru) > INPUT_CACHE_PROBLEMS:
        self._inputs_lru.popitem(last=False)
    return True, keep

  def wait_hello(self, timeout_s: float = 60.0) -> None:
    if not select.select([self.rfd], [], [], timeout_s)[0]:
      self.kill()
      raise RuntimeError("evaluator worker did not start")
    head, _ = wire.recv(self.rfd)
    if head.get("t") != "hello":
      self.kill()
      raise RuntimeError(f"unexpected worker greeting {head}")
    self.isolation = ",".join(head["isolation"])
    self.base = head["base"]

  def send(self, header: dict, blobs=()) -> None:
    wire.send(self.wfd, header, blobs)

  def recv(self):
    return wire.recv(self.rfd)

  def kill(self) -> None:
    """SIGKILLs the worker's whole process group and removes its files."""
    try:
      os.killpg(self.proc.pid, signal.SIGKILL)
    except OSError:
      pass
    self.proc.wait()
    for f in (self.proc.stdin, self.proc.stdout):
      try:
        f.close()
      except OSError:
        pass
    if self.base:  # Only without a minimal root: work dirs on the host.
      sandbox.remove_tree(self.base)

  def close(self, timeout_s: float = 2.0) -> None:
    try:
      self.send({"t": "exit"})
      self.proc.wait(timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
      pass
    self.kill()
