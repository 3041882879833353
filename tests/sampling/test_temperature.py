"""Temperature schedules, the diversity metric (vs a brute-force reference),
the selection rule and the checkpointable controller."""

import json
import logging

import numpy as np
import pytest

from microcoder_jax.rl.diversity import group_diversity, response_diversity
from microcoder_jax.rl.schedule import StagedSchedule
from microcoder_jax.sampling.temperature import Choice, TemperatureController, measure


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


def test_measure_reports_diversity_entropy_length_and_pass_rate():
  tokens = np.array([[1, 2, 3, 4, 5, 0], [1, 2, 3, 4, 9, 9]])
  logp = np.array([[-1.0] * 5 + [0.0], [-2.0] * 6])
  m = measure(0.8, tokens_NxT=tokens, lengths_N=np.array([5, 6]), logprobs_NxT=logp,
              truncated_N=np.array([False, True]), group_size=2, ngram=2,
              passed_N=np.array([True, False]))
  # Bigrams: (1,2)(2,3)(3,4)(4,5) + (1,2)(2,3)(3,4)(4,9)(9,9): 6 distinct of 9.
  assert m.diversity == pytest.approx(6 / 9)
  assert m.entropy == pytest.approx((5 * 1.0 + 6 * 2.0) / 11)
  assert (m.length_mean, m.truncated_frac, m.pass_at_1) == (5.5, 0.5, 0.5)


def test_controller_resolves_auto_stages_once_and_keeps_them(caplog):
  ctl = TemperatureController(StagedSchedule.parse("0.6,auto@3", allow_auto=True))
  assert ctl.pending_stage(0) is None and ctl.temperature(2) == 0.6
  assert ctl.pending_stage(3) == 1 and ctl.temperature(3) is None
  with caplog.at_level(logging.INFO):
    ctl.resolve(1, Choice(1.2, "target D >= 0.65", "lowest T"), [measure(
        1.2, tokens_NxT=np.ones((2, 4), int), lengths_N=np.array([4, 4]),
        logprobs_NxT=np.zeros((2, 4)), truncated_N=np.zeros(2, bool), group_size=2,
        ngram=2)])
  assert ctl.pending_stage(3) is None and ctl.temperature(10) == 1.2
  assert "stage 1 set to T = 1.2" in caplog.text
  state = json.loads(json.dumps(ctl.state_dict(), default=lambda x: None))
  restored = TemperatureController(StagedSchedule.parse("0.6,auto@3", allow_auto=True))
  restored.load_state_dict(state)  # after a restart: no new selection
  assert restored.pending_stage(5) is None and restored.temperature(5) == 1.2
  assert restored.choices[1]["temperature"] == 1.2


def test_controller_logs_and_round_trips(caplog):
  ctl = TemperatureController(StagedSchedule.parse("0.6,1.2@3"), alert_floor=0.5,
                              alert_patience=2)
  with caplog.at_level(logging.WARNING):
    for step, d in enumerate([0.7, 0.4, 0.3, 0.6]):
      metrics = ctl.update(step, d)
  assert "diversity below 0.50 for 2 steps" in caplog.text and "Recommended: raise T" in caplog.text
  assert metrics["sampling/temperature"] == 1.2 and metrics["sampling/low_diversity_steps"] == 0
  restored = TemperatureController(StagedSchedule.parse("0.6,1.2@3"))
  restored.load_state_dict(ctl.state_dict())
  assert restored.history == ctl.history and restored.temperature(5) == 1.2
