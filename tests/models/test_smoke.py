"""The README's current main command runs end to end on 8 fake devices."""

import os
import subprocess
import sys


def test_smoke_command_runs_sharded():
  env = dict(os.environ)  # conftest set 8 fake CPU devices
  out = subprocess.run([sys.executable, "-m", "microcoder_jax.models.smoke",
                        "--new_tokens", "8"], env=env, capture_output=True,
                       text=True, timeout=300, check=True).stdout
  assert "devices: 8 x cpu" in out
  assert "OK: cached decoding matches full forward" in out
