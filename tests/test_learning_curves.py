"""benchmarks/learning_curves.py: summary statistics and claim verdicts."""
import importlib.util
import os

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
_spec = importlib.util.spec_from_file_location(
    "learning_curves", os.path.join(REPO, "benchmarks", "learning_curves.py"))
lc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lc)


def _run(pass_rates, length=30.0, diversity=0.2, masked=0.0):
  rows = []
  for i, p in enumerate(pass_rates):
    rows.append({"step": 10 * i, "heldout/pass@1": p})
    rows.append({"step": 10 * i + 1, "rollout/length_mean": length,
                 "rollout/diversity": diversity, "ctm/masked_frac": masked,
                 "actor/clipfrac": 0.01})
  return rows


def test_summary_statistics_over_seeds():
  s = lc.summarise({"microcoder_grpo": [_run([0.5, 0.4, 0.7]), _run([0.6, 0.65, 0.6])]})
  v = s["microcoder_grpo"]
  assert abs(v["start"] - 0.55) < 1e-9 and abs(v["start_std"] - 0.05) < 1e-9
  assert abs(v["end"] - 0.65) < 1e-9 and abs(v["end_range"] - 0.1) < 1e-9
  assert abs(v["delta_min"] - 0.0) < 1e-9 and abs(v["delta_max"] - 0.2) < 1e-9
  assert abs(v["dip"] - (-0.1)) < 1e-9 and v["n"] == 2


def test_claims_hold_only_when_the_numbers_say_so():
  good = lc.summarise({
      "microcoder_grpo": [_run([0.5, 0.7], diversity=0.25, masked=0.02),
                          _run([0.52, 0.71], diversity=0.25, masked=0.02)],
      "grpo": [_run([0.5, 0.6], diversity=0.1)], "dapo": [_run([0.5, 0.65])],
      "rho=0": [_run([0.5, 0.6], length=20.0, diversity=0.3, masked=0.0)],
      "rho=1": [_run([0.5, 0.6], length=40.0, diversity=0.1, masked=0.05)]})
  text = "\n".join(lc.claims(good))
  assert "does not hold" not in text and "inconclusive" not in text, text
  noisy = lc.summarise({"microcoder_grpo": [_run([0.5, 0.55]), _run([0.5, 0.75]),
                                            _run([0.5, 0.3])]})
  verdicts = lc.claims(noisy)
  close = lc.summarise({"microcoder_grpo": [_run([0.5, 0.6]), _run([0.5, 0.7])],
                        "grpo": [_run([0.5, 0.66])], "dapo": [_run([0.5, 0.6])]})
  assert any(v.startswith("- inconclusive") and "final ordering" in v
             for v in lc.claims(close)), lc.claims(close)
  assert verdicts[0].startswith("- does not hold: MicroCoder-GRPO improves"), verdicts
  assert verdicts[1].startswith("- does not hold: the mean improvement"), verdicts
  assert verdicts[2].startswith("- does not hold: training is stable"), verdicts
