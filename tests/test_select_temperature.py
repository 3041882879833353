"""Choosing T from diversity: the rules on arrays, measurements on a tiny
model (one compiled program for every T), the CLI on the bundled policy."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from microcoder_jax import select_temperature
from microcoder_jax.data import tiny_tokenizer
from microcoder_jax.data.datasets import BUNDLED_DIR
from microcoder_jax.evaluator import Evaluator, parse_problem
from microcoder_jax.models import get_preset, init_model
from microcoder_jax.sampling import Sampler
from microcoder_jax.sampling.temperature import Measurement, choose_by_probe, choose_by_target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _m(t, d):
  return Measurement(t, d, 1.0, 10.0, 0.0, 0.5)


def test_target_rule_takes_the_lowest_t_reaching_the_target():
  ms = [_m(0.6, 0.50), _m(1.0, 0.66), _m(1.4, 0.80), _m(1.8, 0.97)]
  assert choose_by_target(ms, 0.65).temperature == 1.0
  assert choose_by_target(ms[::-1], 0.65).temperature == 1.0  # order does not matter
  assert choose_by_target(ms, 0.4).temperature == 0.6
  fallback = choose_by_target(ms[:2], 0.9)
  assert fallback.temperature == 1.0 and "no T reached D >= 0.9" in fallback.reason
  assert "fell back" in fallback.reason
  with pytest.raises(ValueError, match="no temperature"):
    choose_by_target([_m(1.0, float("nan"))], 0.5)


def test_probe_rule_follows_the_paper():
  # The paper's shapes: T = 0.6 starts below the plateau and keeps falling;
  # T = 1.8 starts far above and crashes; T = 1.2 starts near it and holds.
  trajectories = {
      0.6: [0.57, 0.55, 0.52, 0.50, 0.49, 0.48],
      1.2: [0.71, 0.69, 0.67, 0.66, 0.66, 0.65],
      1.8: [0.97, 0.85, 0.70, 0.62, 0.66, 0.60],
  }
  choice = choose_by_probe(trajectories, tail=3, max_drop=0.15)
  assert choice.temperature == 1.2
  # D*: the median of the probes' tail means (0.49, 0.657, 0.627).
  assert choice.plateau == pytest.approx(np.mean([0.62, 0.66, 0.60]))
  # Nobody qualifies when every run drops a lot: the start closest above D*.
  steep = {t: [d[0], d[0] * 0.5, d[0] * 0.5] for t, d in trajectories.items()}
  fallback = choose_by_probe(steep, tail=1, max_drop=0.15)
  # D* = median(0.285, 0.355, 0.485) = 0.355: T = 0.6 starts closest above it.
  assert "no T qualified" in fallback.reason and fallback.temperature == 0.6
  with pytest.raises(ValueError, match="need >= 2"):
    choose_by_probe({1.0: [0.5]})


def test_measurements_on_a_tiny_model_share_one_program():
  tok = tiny_tokenizer.load()
  model = init_model(get_preset("tiny", vocab_size=len(tok)), seed=0)
  sampler = Sampler(model, stop_ids=(tok.eos_token_id,), pad_id=tok.pad_token_id or 0)
  problems = [parse_problem({"id": f"p{i}", "question": "q", "tests": [
      {"input": "1\n", "output": "1\n", "testtype": "stdin"}]}) for i in range(4)]
  ids = [tok.encode(f"problem {i}") for i in range(4)]
  with Evaluator(workers=1, timeout_s=2.0, memory_mb=256) as ev:
    ms = select_temperature.measure_temperatures(
        sampler, nnx.state(model), ev, tok, problems, ids, temperatures=(1.5, 0.2, 0.8),
        group_size=4, max_new_tokens=12, rng=jax.random.key(0), ngram=2)
  assert [m.temperature for m in ms] == [0.2, 0.8, 1.5]
  assert sampler.num_traces == 1  # T is traced: no recompilation across temperatures
  assert all(0 <= m.diversity <= 1 and m.entropy > 0 and m.pass_at_1 == 0 for m in ms)
  # A random policy is nearly uniform at T = 1.5 and peaked at T = 0.2.
  assert ms[0].entropy < ms[2].entropy and ms[0].diversity < ms[2].diversity
  target = ms[1].diversity
  assert choose_by_target(ms, target).temperature == (0.2 if ms[0].diversity >= target else 0.8)


def test_cli_on_the_bundled_policy(tmp_path):
  out = tmp_path / "t"
  proc = subprocess.run(
      [sys.executable, "-m", "microcoder_jax.select_temperature",
       "--model", os.path.join(BUNDLED_DIR, "tiny_policy"), "--problems",
       "bundled:synthetic_train", "--prompts", "6", "--group-size", "4",
       "--max-new-tokens", "32", "--temperatures", "0.4,1.0,1.6", "--target", "0.3",
       "--out", str(out)], cwd=ROOT, env=dict(os.environ, XLA_FLAGS=""),
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  record = json.loads((out / "temperature.json").read_text())
  assert [m["temperature"] for m in record["measurements"]] == [0.4, 1.0, 1.6]
  assert record["rule"] == "target D >= 0.3" and record["compiled_programs"] == 1
  assert record["temperature"] in (0.4, 1.0, 1.6) and (out / "diversity_vs_T.png").exists()
  assert "chosen T =" in proc.stdout and "| 1.00 |" in proc.stdout


@pytest.mark.parametrize("args,message", [
    (["--temperatures", "0.6,-1"], "--temperatures"),
    (["--group-size", "1"], "--group-size"),
    (["--target", "1.5"], "--target"),
])
def test_cli_rejects_bad_arguments(args, message, tmp_path):
  proc = subprocess.run([sys.executable, "-m", "microcoder_jax.select_temperature", "--model",
                         "x", "--problems", "y", "--out", str(tmp_path), *args],
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and message in proc.stderr
