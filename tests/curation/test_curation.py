"""Dataset curation: every stage's decisions on the bundled collection."""
import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from microcoder_jax.curation import __main__ as cli
from microcoder_jax.curation import difficulty as difficulty_lib
from microcoder_jax.curation import filters
from microcoder_jax.curation import pipeline
from microcoder_jax.curation import sources
from microcoder_jax.curation import verify as verify_lib
from microcoder_jax.data import datasets
from microcoder_jax.evaluator import Evaluator, load_problems, parse_problem

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(REPO, "tests", "data", "curation")
INPUTS = [os.path.join(DATA, f) for f in ("native.jsonl", "taco.jsonl", "codecontests.jsonl")]
LCB = os.path.join(REPO, "tests", "data", "evaluator", "lcb_problems.jsonl")
POLICY = os.path.join(REPO, "microcoder_jax", "data", "bundled", "tiny_policy")
sys.path.insert(0, DATA)
import build_collection  # pylint: disable=g-import-not-at-top,wrong-import-position

# id -> (stage, reason); "" stage = kept.
EXPECTED = {
    "linear-9-0": ("difficulty", "too_easy"), "linear-8-3": ("difficulty", "too_easy"),
    "linear-7-7": ("difficulty", "too_easy"), "primes-count": ("", ""),
    "primes-count-copy": ("process", "duplicate_exact"), "lis-length": ("", ""),
    "lis-length-reworded": ("process", "duplicate_near"),
    "factorial-mod": ("verify", "reference_failed"), "divisors-any-order": ("", ""),
    "ratio-float": ("", ""), "split-sum-checker": ("", ""),
    "nontrivial-divisor": ("process", "needs_checker"),
    "guess-number": ("process", "interactive"), "one-test-only": ("process", "too_few_tests"),
    "old-sum-digits": ("process", "before_split"),
    "broken-output-type": ("collect", "bad_tests"), "no-tests": ("collect", "missing_tests"),
    "native.jsonl:18": ("collect", "unreadable"), "taco-sum-list": ("", ""),
    "taco-sum-even": ("", ""), "taco-undated": ("process", "no_date"),
    "taco-mismatched": ("collect", "bad_tests"), "cc-max-pair-product": ("", ""),
}
KEPT = [i for i, (stage, _) in EXPECTED.items() if not stage]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("curated"))
  report = cli.main(["--inputs", *INPUTS, "--out-dir", out, "--workers", "2",
                     "--min-tests", "2", "--after", "2024-08-01", "--max-tests", "5",
                     "--policy", POLICY, "--samples", "2", "--temperature", "0",
                     "--max-new-tokens", "64", "--band", "0.0,0.9",
                     "--ratings", os.path.join(DATA, "ratings.jsonl")])
  with open(os.path.join(out, "problems.jsonl"), encoding="utf-8") as f:
    rows = {r["id"]: r for r in map(json.loads, f)}
  return out, report, rows


def test_each_decision_by_id(run):
  _, report, _ = run
  got = {d["id"]: (d["stage"], d["reason"]) for d in report["decisions"]}
  assert got == EXPECTED
  details = {d["id"]: d["detail"] for d in report["decisions"]}
  assert details["primes-count-copy"] == "exact of primes-count (jaccard 1.0)"
  assert details["lis-length-reworded"].startswith("near of lis-length (jaccard 0.9")
  assert details["factorial-mod"] == "wrong_answer (2/3 tests)"


def test_report_counts_are_exact(run):
  out, report, rows = run
  reasons = collections.Counter(r for s, r in EXPECTED.values() if s)
  assert report["collected"] == len(EXPECTED) == 23
  assert report["kept"] == len(KEPT) == len(rows) == 8
  assert report["dropped"] == sum(reasons.values()) == 15
  assert report["dropped_by_reason"] == dict(reasons)
  for stage in pipeline.STAGES:
    assert report["dropped_by_stage"][stage] == dict(collections.Counter(
        r for s, r in EXPECTED.values() if s == stage))
  # Labels: native rows as written, TACO mapped, CodeContests from cf_rating 1400.
  assert report["difficulty_before"] == {"easy": 5, "medium": 2, "hard": 12, "unknown": 4}
  assert report["difficulty_after"] == {"easy": 1, "medium": 1, "hard": 6, "unknown": 0}
  assert report["verification"] == {"verified": 11, "failed": 1}
  assert report["io_format"] == {"stdin": 11, "functional": 1}
  assert report["judging"] == {"unordered": 1, "float_tol": 1}
  with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
    assert json.load(f)["dropped_by_reason"] == dict(reasons)
  with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
    md = f.read()
  assert "Collected **23**, kept **8**, dropped **15**" in md
  assert "| verify | reference_failed | 1 |" in md


def test_policy_pass_rates_and_calibration(run):
  _, report, rows = run
  rates = report["pass_rates"]["per_problem"]
  assert {i for i, r in rates.items() if r == 1.0} == {"linear-9-0", "linear-8-3", "linear-7-7"}
  assert {i for i, r in rates.items() if r == 0.0} == set(KEPT)
  assert report["pass_rates"]["histogram_before"]["1"] == 3
  assert report["pass_rates"]["histogram_after"]["1"] == 0
  assert all(rows[i]["pass_rate"] == 0.0 and rows[i]["pass_rate_source"] == "measured"
             for i in KEPT)
  cal = report["calibration"]
  assert cal["fitted"] and cal["n"] == 11 and cal["score_source"] == "ratings"
  assert cal["b"] < 0 and cal["spearman"] < 0  # Harder rating, lower pass rate.
  assert cal["brier"] < cal["brier_constant"]


def test_outputs_are_native_verified_and_explicit(run):
  out, _, rows = run
  assert list(rows) == KEPT
  loaded = load_problems(os.path.join(out, "problems.jsonl"))
  assert list(loaded) == KEPT
  stored = datasets.ArrayRecordProblems(os.path.join(out, "tfds"))
  assert sorted(stored[i].id for i in range(len(stored))) == sorted(KEPT)
  assert all(r["verified"] and "compare" in r for r in rows.values())
  assert rows["divisors-any-order"]["compare"] == {"unordered": True}
  assert rows["ratio-float"]["compare"] == {"float_tol": 1e-6}
  assert rows["split-sum-checker"]["checker"].startswith("def check(")
  even = rows["taco-sum-even"]
  assert even["io_format"] == "functional" and even["fn_name"] == "sum_even"
  assert even["starter_code"].startswith("def sum_even(nums):")
  assert [t["output"] for t in even["tests"]] == ["6", "0", "0"]  # APPS unwrapped.
  assert rows["taco-sum-list"]["reference_solution"].startswith("input()\n")  # 2nd solution.
  assert rows["taco-sum-list"]["difficulty"] == "hard"  # MEDIUM_HARD.
  cc = rows["cc-max-pair-product"]
  assert (cc["time_limit_s"], cc["memory_mb"], cc["difficulty"]) == (2.0, 256, "medium")
  assert all(t["testtype"] == "stdin" for r in rows.values() if r["io_format"] == "stdin"
             for t in r["tests"])


def test_test_caps_keep_discriminating_tests(run):
  _, report, rows = run
  caps = {c["id"]: c for c in report["test_caps"]}
  assert set(caps) == {"linear-9-0", "linear-8-3", "linear-7-7", "primes-count",
                       "lis-length", "cc-max-pair-product"}
  for c in caps.values():
    assert c["tests_after"] == 5 and len(c["cut"]) == c["tests_before"] - 5
    assert c["rejected_by_kept_tests"] == c["rejected_by_all_tests"] > 0
  assert caps["lis-length"]["tests_before"] == 30
  # Independent check: the kept tests still reject every known wrong program.
  kept = {i: parse_problem(rows[i], i) for i in ("lis-length", "cc-max-pair-product")}
  wrong = [{"id": "cc-max-pair-product", "code": c} for c in build_collection.MAX_PAIR_WRONG]
  non_strict = build_collection.LIS.replace("bisect_left", "bisect_right")
  wrong.append({"id": "lis-length", "code": non_strict})
  with Evaluator(workers=1, timeout_s=2.0) as ev:
    assert [r.verdict for r in ev.evaluate(kept, wrong)] == ["wrong_answer"] * 3


def test_livecodebench_file_round_trip(tmp_path):
  out = tmp_path / "lcb"
  proc = subprocess.run([sys.executable, "-m", "microcoder_jax.curation", "--inputs", LCB,
                         "--out-dir", str(out), "--workers", "1"],
                        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  # Nothing is downloaded: TFDS's "Downloading and preparing" lines are replaced.
  assert "Downloading" not in proc.stdout + proc.stderr
  assert "downloaded" not in proc.stdout + proc.stderr
  assert (f"Building TFDS dataset microcoder_problems (array_record) at {out / 'tfds'} "
          "from 3 local problems\n") in proc.stdout
  report = json.loads((out / "report.json").read_text())
  assert (report["collected"], report["kept"], report["dropped"]) == (3, 3, 0)
  original = load_problems(LCB)
  curated = load_problems(str(out / "problems.jsonl"))
  assert list(curated) == list(original)
  for pid, prob in original.items():
    again = curated[pid]
    assert (again.tests, again.mode, again.fn_name, again.compare) == (
        prob.tests, prob.mode, prob.fn_name, prob.compare)
    assert again.meta["contest_date"] == prob.meta["contest_date"][:10]
  assert curated["abc999_b"].compare == {"float_tol": 1e-6}
  stored = datasets.ArrayRecordProblems(str(out / "tfds"))
  assert sorted(stored[i].id for i in range(len(stored))) == sorted(original)


def test_a_failing_tfds_build_shows_its_output_and_error(tmp_path, monkeypatch, capsys):
  def broken(source_jsonl, data_dir):
    print("Downloading and preparing dataset ... to", data_dir)
    raise OSError("disk full")

  monkeypatch.setattr(datasets, "build_array_record", broken)
  with pytest.raises(OSError, match="disk full"):
    pipeline.write_outputs(str(tmp_path), [{"id": "x"}], {})
  out, err = capsys.readouterr()
  assert out.startswith("Building TFDS dataset microcoder_problems") and "Downloading" not in out
  assert "Downloading and preparing dataset ... to" in err


def test_curate_module_is_an_alias_of_the_curation_cli():
  helps = [subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True).stdout
           for module in ("microcoder_jax.curation", "microcoder_jax.curate")]
  assert "--inputs" in helps[0] and "--out-dir" in helps[0]
  # The usage line names the file run (__main__.py, curate.py); the options agree.
  assert helps[1].split("options:")[1] == helps[0].split("options:")[1]


# ------------------------------------------------------------- unit tests
def test_layout_detection_and_normalisation():
  cc = sources.normalise({"name": "x", "description": "d", "public_tests": {
      "input": ["1\n"], "output": ["2\n"]}, "generated_tests": {"input": ["3\n"], "output": [
          "4\n"]}, "solutions": {"language": [1, 3], "solution": ["py2", "py3"]},
                          "cf_rating": 2400}, "f:1", "f")
  assert cc.layout == "codecontests" and not cc.error and cc.refs == ["py3"]
  assert len(cc.row["tests"]) == 2 and cc.row["difficulty"] == "hard"
  lcb = sources.normalise(json.loads(open(LCB, encoding="utf-8").readline()), "l:1", "l")
  assert lcb.layout == "livecodebench" and len(lcb.row["tests"]) > 1
  unwrapped = sources.normalise({"input_output": {"fn_name": "f", "inputs": [[1, 2]],
                                                  "outputs": [[[3, 4]]]}}, "t:1", "t")
  assert unwrapped.row["tests"] == [{"input": "1\n2", "output": "[3, 4]",
                                     "testtype": "functional"}]
  deepcoder = sources.normalise({"problem": "Double it.", "tests": json.dumps([
      {"input": "[1]", "output": "[2]", "testtype": "functional"}]),
                                 "metadata": json.dumps({"func_name": "double"})}, "d:4", "d")
  assert (deepcoder.id, deepcoder.row["fn_name"], deepcoder.row["question"]) == (
      "d:4", "double", "Double it.")
  assert sources.normalise({"foo": 1}, "u:1", "u").error[0] == "unreadable"
  assert sources.normalise({"id": "a", "tests": "[{"}, "n:1", "n").error[0] == "bad_tests"
  assert sources.normalise_date("2025-01-04T00:00:00") == "2025-01-04"
  assert sources.starter_from_reference("class Solution:\n  def f(self, a, b=1):\n    pass",
                                        "f") == (
      "class Solution:\n    def f(self, a, b=1):\n        ")


@pytest.mark.parametrize("question,expected", [
    ("Print any order of the list? This is an interactive problem.", ({}, "interactive")),
    ("Read x; after printing, flush the output.", ({}, "interactive")),
    ("If there are multiple solutions, print any of them.", ({}, "needs_checker")),
    ("Print any valid answer.", ({}, "needs_checker")),
    ("Print the numbers in any order.", ({"unordered": True}, "")),
    ("The answer is correct if the absolute or relative error is at most 1e-9.",
     ({"float_tol": 1e-9}, "")),
    ("You can print Yes and No in any case (upper or lower).", ({"case_insensitive": True}, "")),
    ("Print the sum of a and b.", ({}, "")),
])
def test_judging_from_statement(question, expected):
  assert filters.judging(question, {"tests": []}) == expected


def test_judging_explicit_compare_and_checker():
  row = {"tests": [], "compare": {"line_strict": True}, "checker": "def check(i, e, o): ..."}
  assert filters.judging("Print any valid answer in any order.", row) == (
      {"line_strict": True}, "")


def test_duplicates_exact_near_and_distinct():
  base = ("You are given an array of n integers. Find the maximum sum of a contiguous "
          "subarray and print it on a single line.")
  texts = [base, base.upper().replace(" ", "  "), base.replace("single line", "single row"),
           "Print A+B.", "Print A*B.", "Read a tree and print its diameter."]
  dups = filters.duplicates(texts, 0.8)
  assert dups[1] == ("exact", 0, 1.0)
  assert dups[2][:2] == ("near", 0) and dups[2][2] >= 0.8
  assert set(dups) == {1, 2}
  assert 2 not in filters.duplicates(texts, 0.99)


def test_choose_tests_greedy_cover():
  killed_PxT = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0], [1, 0, 0, 0]]
  # Longest input (test 0) first; then test 2 (kills 2; ties -> longer); then test 1.
  assert verify_lib.choose_tests(killed_PxT, [5, 1, 2, 3], 3) == [0, 1, 2]
  # Nothing left to reject: the longest remaining inputs fill the slots.
  assert verify_lib.choose_tests([], [1, 9, 3, 7], 2) == [1, 3]


def test_mutants_are_single_edits():
  ms = verify_lib.mutants("n = int(input())\nprint(min(n, 3) + 1)", 10)
  assert "n = int(input())\nprint(max(n, 3) + 1)" in ms
  assert "n = int(input())\nprint(min(n, 4) + 1)" in ms
  assert "n = int(input())\nprint(min(n, 3) - 1)" in ms
  assert len(ms) == len(set(ms)) and verify_lib.mutants("def (", 5) == []


def test_logistic_fit_recovers_parameters():
  rng = np.random.default_rng(0)
  score_N = rng.uniform(0, 10, 4000)
  p_N = 1 / (1 + np.exp(-(3.0 - 0.6 * score_N)))
  passed_N = rng.binomial(8, p_N)
  a, b = difficulty_lib.fit_logistic(score_N, passed_N, np.full(4000, 8))
  assert abs(a - 3.0) < 0.2 and abs(b + 0.6) < 0.04
  assert not difficulty_lib.calibrate({"x": 1.0, "y": 2.0}, {"x": 0.0, "y": 0.0}, 4)["fitted"]


def test_band_histogram_and_dates():
  assert [difficulty_lib.band_reason(r, (0.1, 0.9)) for r in (0.0, 0.1, 0.9, 1.0)] == [
      "too_hard", "", "", "too_easy"]
  assert difficulty_lib.rate_histogram([0, 0.25, 0.3, 0.99, 1, 1]) == {
      "0": 1, "(0,0.25]": 1, "(0.25,0.5]": 1, "(0.5,0.75]": 0, "(0.75,1)": 1, "1": 2}
  assert [filters.date_reason(d, "2024-08-01", "2025-01-01")
          for d in ("", "2024-07-31", "2024-08-01", "2025-01-01")] == [
              "no_date", "before_split", "", "after_split"]
  assert filters.date_reason("", "", "") == ""
  with pytest.raises(ValueError):
    pipeline.CurateConfig(band=(0.5, 0.2))
  with pytest.raises(ValueError):
    pipeline.CurateConfig(after="Aug 2024")


def test_select_predicts_unmeasured_problems(monkeypatch):
  rows = [{"id": f"p{i}", "difficulty": d} for i, d in enumerate(
      ["easy", "easy", "hard", "hard", "medium", "easy", "hard", "medium"])]
  cands = [sources.Candidate(r, r["id"], "native") for r in rows]
  measured = {"p0": 1.0, "p1": 1.0, "p2": 0.0, "p3": 0.0, "p4": 0.5}
  monkeypatch.setattr(difficulty_lib, "measure_pass_rates",
                      lambda *a, **k: {r["id"]: measured[r["id"]] for r in a[2]})
  cfg = pipeline.CurateConfig(policy="unused", measure_max=5, band=(0.1, 0.9), samples=4)
  ledger = pipeline.Ledger(cands)
  kept, info, calib = pipeline.select(cands, cfg, ledger, ev=None)
  assert calib["fitted"] and calib["score_source"] == "metadata" and calib["b"] < 0
  assert [c.id for c in kept] == ["p4", "p7"]
  reasons = {d["id"]: d["reason"] for d in ledger.decisions()}
  assert [reasons[f"p{i}"] for i in (0, 1, 2, 3, 5, 6)] == [
      "too_easy", "too_easy", "too_hard", "too_hard", "too_easy", "too_hard"]
  assert [rows[i]["pass_rate_source"] for i in (4, 5, 7)] == ["measured", "predicted",
                                                             "predicted"]
  assert abs(rows[7]["pass_rate"] - 0.5) < 0.05 and info["measured"] == 5


def test_exclude_drops_held_out_duplicates(tmp_path):
  held_out = tmp_path / "eval.jsonl"
  held_out.write_text(json.dumps({
      "question_id": "e1", "question_content": "Read an integer n (1 <= n <= 10^5). Print "
      "how many prime numbers p satisfy p <= n.", "public_test_cases": json.dumps(
          [{"input": "2\n", "output": "1\n", "testtype": "stdin"}])}) + "\n")
  cands = [c for c in sources.collect(INPUTS) if not c.error]
  ledger = pipeline.Ledger(cands)
  cfg = pipeline.CurateConfig(exclude=(str(held_out),))
  kept, _ = pipeline.process(cands, cfg, ledger)
  drops = {d["id"]: (d["reason"], d["detail"]) for d in ledger.decisions() if d["reason"]}
  assert drops["primes-count"] == ("contaminated", "exact of e1 (jaccard 1.0)")
  assert drops["primes-count-copy"][0] == "contaminated"
  assert "primes-count" not in {c.id for c in kept} and "lis-length" in {c.id for c in kept}
