"""Temperature schedules, the diversity metric (vs a brute-force reference),
the selection rule and the checkpointable controller."""

import logging

import numpy as np
import pytest

from microcoder_jax.rl.diversity import group_diversity, response_diversity
from microcoder_jax.rl.schedule import StagedSchedule
from microcoder_jax.sampling.temperature import TemperatureController, select_temperature


def test_constant_and_staged_schedules():
  assert StagedSchedule.parse("1.2")(0) == 1.2
  assert StagedSchedule.parse(0.6)(10_000) == 0.6
  staged = StagedSchedule.parse("0.6,1.2@140")
  assert [staged(s) for s in (0, 139, 140, 500)] == [0.6, 0.6, 1.2, 1.2]
  three = StagedSchedule.parse("0.6, 1.0@10, 1.4@20")
  assert [three(s) for s in (9, 10, 19, 20)] == [0.6, 1.0, 1.0, 1.4]


def test_ramps_need_opt_in():
  with pytest.raises(ValueError, match="allow_ramp"):
    StagedSchedule.parse("ramp:0.6,1.2@100")
  ramp = StagedSchedule.parse("ramp:0.6,1.2@100", allow_ramp=True)
  assert ramp(0) == 0.6 and ramp(100) == 1.2 and ramp(50) == pytest.approx(0.9)


@pytest.mark.parametrize("bad", ["1.2@5", "0.6,1.2", "0.6,x@3", "1.0,0.5@10,0.7@5", "nan"])
def test_bad_schedules_name_the_item(bad):
  with pytest.raises(ValueError):
    StagedSchedule.parse(bad)


def _reference_diversity(tokens, lengths, g, n=4):
  """Brute force: explicit python n-gram lists per group."""
  values = []
  for start in range(0, len(tokens), g):
    grams = []
    for r in range(start, start + g):
      seq = list(tokens[r][: lengths[r]])
      grams += [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
    if grams:
      values.append(len(set(grams)) / len(grams))
  return float(np.mean(values)) if values else float("nan")


def test_diversity_matches_reference_on_random_inputs():
  rng = np.random.default_rng(0)
  for vocab in (2, 5, 50):
    tokens = rng.integers(0, vocab, (24, 40))
    lengths = rng.integers(0, 41, 24)
    got = response_diversity(tokens, lengths, group_size=4)
    assert got == pytest.approx(_reference_diversity(tokens, lengths, 4), abs=1e-12)
    assert 0.0 <= got <= 1.0


def test_diversity_edge_cases():
  same = np.tile(np.arange(10), (4, 1))
  assert response_diversity(same, np.full(4, 10), 4) == pytest.approx(7 / 28)
  assert response_diversity(np.arange(40).reshape(4, 10), np.full(4, 10), 4) == 1.0
  loop = np.tile([1, 2], (2, 20))
  assert response_diversity(loop, np.full(2, 40), 2) == pytest.approx(2 / 74)
  assert np.isnan(response_diversity(same, np.full(4, 3), 4))  # no 4-grams
  per_group = group_diversity(same, np.array([10, 10, 2, 2]), 2)
  assert per_group[0] == pytest.approx(7 / 14) and per_group[1] != per_group[1]
  with pytest.raises(ValueError, match="groups of 3"):
    response_diversity(same, np.full(4, 10), 3)


def test_select_lowest_temperature_reaching_target():
  fake_d = {0.6: 0.45, 0.8: 0.55, 1.0: 0.62, 1.2: 0.68, 1.4: 0.8, 1.6: 0.9, 1.8: 0.97}
  calls = []

  def sample_fn(t):
    calls.append(t)
    # One 103-token response with k + 1 distinct 4-grams out of 100, so
    # D = fake_d[t] + 0.01.
    k = round(fake_d[t] * 100)
    seq = np.concatenate([np.arange(k), [1000] * (103 - k)])
    return seq[None], np.array([103])

  result = select_temperature(sample_fn, group_size=1, target=0.65)
  assert result.temperature == 1.2
  assert calls == [0.6, 0.8, 1.0, 1.2]  # stops probing once found
  assert result.diversity[1.2] >= 0.65


def test_select_rejects_too_diverse_and_falls_back():
  table = {0.6: 0.30, 1.0: 0.40, 1.8: 0.97}

  def sample_fn(t):
    k = round(table[t] * 100)
    return np.concatenate([np.arange(k), [1000] * (103 - k)])[None], np.array([103])

  result = select_temperature(sample_fn, 1, candidates=(0.6, 1.0, 1.8), target=0.65)
  assert result.temperature == 1.0 and "no T reached" in result.reason


def test_controller_logs_and_round_trips(caplog):
  ctl = TemperatureController(StagedSchedule.parse("0.6,1.2@3"), alert_floor=0.5,
                              alert_patience=2)
  with caplog.at_level(logging.WARNING):
    for step, d in enumerate([0.7, 0.4, 0.3, 0.6]):
      metrics = ctl.update(step, d)
  assert "diversity below 0.50 for 2 steps" in caplog.text
  assert metrics["sampling/temperature"] == 1.2 and metrics["sampling/low_diversity_steps"] == 0
  restored = TemperatureController(StagedSchedule.parse("0.6,1.2@3"))
  restored.load_state_dict(ctl.state_dict())
  assert restored.history == ctl.history and restored.temperature(5) == 1.2
