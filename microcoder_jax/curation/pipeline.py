"""MicroCoder-Dataset-style curation: collect -> process -> verify -> select.

    report = curate(["lcb.jsonl", "taco.jsonl"], "out/", CurateConfig(
        max_tests=20, policy="microcoder_jax/data/bundled/tiny_policy"))

Writes out/problems.jsonl (native rows), out/tfds/ (array_record shards),
out/report.json and out/report.md. Every collected row ends with exactly one
decision (kept, or dropped at one stage for one reason); the report counts
them. See docs/curation.md for the stages and the drop reasons.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import json
import os
import shutil
import sys
import time

from microcoder_jax.curation import difficulty as difficulty_lib
from microcoder_jax.curation import filters
from microcoder_jax.curation import sources
from microcoder_jax.curation import verify as verify_lib
from microcoder_jax.evaluator import Evaluator

STAGES = ("collect", "process", "verify", "difficulty")
_DIFFICULTIES = ("easy", "medium", "hard", "unknown")


@dataclasses.dataclass
class CurateConfig:
  """Curation options (the CLI flags of `python -m microcoder_jax.curation`).

  Attributes:
    min_tests: drop problems with fewer tests.
    dedup_threshold: word-3-shingle Jaccard at or above which two statements
      are near duplicates (the earlier one in input order is kept).
    after, before: time split on contest_date (YYYY-MM-DD): keep dates on or
      after `after` and before `before`; undated problems are then dropped.
    max_refs: reference programs tried per problem.
    require_verified: drop problems without a reference program.
    max_tests: cap on tests per problem (0: no cap).
    policy: Hugging Face checkpoint directory; "" skips the difficulty stage.
    samples: k, responses sampled per problem.
    band: keep pass rates in [lo, hi] (lo > 0 drops never-solved problems).
    measure_max: problems measured with the policy (0: all); the rest are
      selected by the calibrated predictor.
    ratings: JSONL {"id", "rating"} of predicted difficulty (higher = harder);
      without it the predictor uses metadata (rating or easy/medium/hard).
    exclude: problem files (e.g. the evaluation set) whose statements, and
      their exact or near duplicates, must not be in the output.
  """
  min_tests: int = 1
  dedup_threshold: float = 0.8
  after: str = ""
  before: str = ""
  max_refs: int = 3
  require_verified: bool = False
  max_tests: int = 0
  policy: str = ""
  samples: int = 4
  band: tuple = (0.0, 0.9)
  temperature: float = 1.0
  max_new_tokens: int = 1024
  measure_max: int = 0
  ratings: str = ""
  exclude: tuple = ()
  seed: int = 0
  workers: int | None = None
  timeout_s: float = 4.0
  memory_mb: int = 1024

  def __post_init__(self):
    lo, hi = self.band
    if not 0.0 <= lo <= hi <= 1.0:
      raise ValueError(f"band must satisfy 0 <= lo <= hi <= 1, got {self.band}")
    if not 0.0 < self.dedup_threshold <= 1.0:
      raise ValueError("dedup_threshold must be in (0, 1]")
    for name in ("after", "before"):
      value = getattr(self, name)
      if value and sources.normalise_date(value) != value:
        raise ValueError(f"{name} must be YYYY-MM-DD, got {value!r}")


class Ledger:
  """One decision per collected row, in collection order."""

  def __init__(self, cands):
    self.rows = {id(c): {"id": c.id, "origin": c.origin, "layout": c.layout,
                         "difficulty": _label(c.row), "stage": "", "reason": "",
                         "detail": ""} for c in cands}
    self.order = [id(c) for c in cands]

  def drop(self, cand, stage: str, reason: str, detail: str = "") -> None:
    self.rows[id(cand)].update(stage=stage, reason=reason, detail=detail)

  def decisions(self) -> list[dict]:
    out = []
    for key in self.order:
      d = dict(self.rows[key])
      d["decision"] = "drop" if d["reason"] else "keep"
      out.append(d)
    return out


def curate(inputs, out_dir: str, cfg: CurateConfig) -> dict:
  """Runs every stage; writes the outputs; returns the report."""
  t0 = time.perf_counter()
  cands = sources.collect(inputs)
  ledger = Ledger(cands)
  alive = []
  for c in cands:
    if c.error:
      ledger.drop(c, "collect", *c.error)
    else:
      alive.append(c)
  alive, info = process(alive, cfg, ledger)
  with Evaluator(workers=cfg.workers, timeout_s=cfg.timeout_s,
                 memory_mb=cfg.memory_mb) as ev:
    alive, info["verification"], info["test_caps"] = verify(alive, cfg, ledger, ev)
    alive, info["pass_rates"], info["calibration"] = select(alive, cfg, ledger, ev)
  report = _report(inputs, cfg, ledger, alive, info, time.perf_counter() - t0)
  write_outputs(out_dir, [c.row for c in alive], report)
  return report


# ---------------------------------------------------------------- process
def process(cands, cfg: CurateConfig, ledger: Ledger):
  """Judging options, test counts, I/O format, dedup, ids and the time split."""
  ok, io_format, judging = [], collections.Counter(), collections.Counter()
  for c in cands:
    row = c.row
    row["contest_date"] = sources.normalise_date(row.get("contest_date"))
    compare, reason = filters.judging(row.get("question", ""), row)
    if reason:
      ledger.drop(c, "process", reason)
      continue
    if len(row["tests"]) < cfg.min_tests:
      ledger.drop(c, "process", "too_few_tests", f"{len(row['tests'])} < {cfg.min_tests}")
      continue
    row["compare"] = compare
    _explicit_io(c)
    ok.append(c)
  held_out = [c for c in sources.collect(cfg.exclude) if not c.error]
  texts = [c.row.get("question", "") for c in held_out + ok]
  dups = filters.duplicates(texts, cfg.dedup_threshold)
  kept, seen = [], set()
  for i, c in enumerate(ok):
    if i + len(held_out) in dups:
      kind, j, sim = dups[i + len(held_out)]
      first = (held_out + ok)[j]
      reason = "contaminated" if j < len(held_out) else f"duplicate_{kind}"
      ledger.drop(c, "process", reason, f"{kind} of {first.id} (jaccard {sim})")
    elif c.id in seen:
      ledger.drop(c, "process", "duplicate_id", "another problem has this id")
    elif reason := filters.date_reason(c.row["contest_date"], cfg.after, cfg.before):
      ledger.drop(c, "process", reason, c.row["contest_date"])
    else:
      seen.add(c.id)
      kept.append(c)
      io_format[c.row["io_format"]] += 1
      judging.update(k for k, v in c.row["compare"].items() if v)
  return kept, {"io_format": dict(io_format), "judging": dict(judging)}


def _explicit_io(cand) -> None:
  """Every test carries its type; functional problems get starter code."""
  row = cand.row
  mode = row["tests"][0].get("testtype", "stdin")
  for t in row["tests"]:
    t["testtype"] = mode
  row["io_format"] = mode
  if mode == "functional" and not row.get("starter_code"):
    starter = next((s for s in (sources.starter_from_reference(r, row["fn_name"])
                             for r in cand.refs) if s), "")
    row["starter_code"] = starter or f"def {row['fn_name']}(*args):\n    "


# ----------------------------------------------------------------- verify
def verify(cands, cfg: CurateConfig, ledger: Ledger, ev: Evaluator):
  """Reference programs must pass their own tests; large suites are capped."""
  refs = verify_lib.verify_references(ev, cands, cfg.max_refs)
  kept, caps = [], []
  counts = collections.Counter()
  for c in cands:
    good, detail = refs.get(c.id, ("", "no reference"))
    if c.refs and not good:
      counts["failed"] += 1
      ledger.drop(c, "verify", "reference_failed", detail)
      continue
    c.row["verified"] = bool(good)
    if good:
      c.row["reference_solution"] = good
    counts["verified" if good else "no_reference"] += 1
    if not good and cfg.require_verified:
      ledger.drop(c, "verify", "unverified")
      continue
    if cfg.max_tests and len(c.row["tests"]) > cfg.max_tests:
      caps.append(verify_lib.cap_tests(ev, c, good, cfg.max_tests))
    kept.append(c)
  return kept, dict(counts), caps


# ------------------------------------------------------------- difficulty
def select(cands, cfg: CurateConfig, ledger: Ledger, ev: Evaluator):
  """Pass rates (measured or predicted) and the band filter."""
  if not cfg.policy:
    return cands, {}, {}
  rows = [c.row for c in cands]
  measured = rows[:cfg.measure_max] if cfg.measure_max else rows
  rates = difficulty_lib.measure_pass_rates(
      cfg.policy, ev, measured, k=cfg.samples, max_new_tokens=cfg.max_new_tokens,
      temperature=cfg.temperature, seed=cfg.seed)
  ratings = difficulty_lib.load_ratings(cfg.ratings) if cfg.ratings else {}
  scores = ({r["id"]: ratings[r["id"]] for r in rows if r["id"] in ratings} if cfg.ratings
            else {r["id"]: s for r in rows
                  if (s := difficulty_lib.metadata_score(r)) is not None})
  calib = difficulty_lib.calibrate(scores, rates, cfg.samples)
  calib["score_source"] = "ratings" if cfg.ratings else "metadata"
  kept, effective = [], {}
  for c in cands:
    rate, src = rates.get(c.id), "measured"
    if rate is None and calib["fitted"] and c.id in scores:
      rate, src = difficulty_lib.predict(calib["a"], calib["b"], scores[c.id]), "predicted"
    if rate is None:
      c.row["pass_rate_source"] = "none"
      kept.append(c)
      continue
    c.row["pass_rate"], c.row["pass_rate_source"] = round(rate, 4), src
    effective[c.id] = rate
    if reason := difficulty_lib.band_reason(rate, cfg.band):
      ledger.drop(c, "difficulty", reason, f"pass rate {rate:.3g} ({src})")
    else:
      kept.append(c)
  info = {"k": cfg.samples, "measured": len(rates), "band": list(cfg.band),
          "histogram_before": difficulty_lib.rate_histogram(effective.values()),
          "histogram_after": difficulty_lib.rate_histogram(
              [effective[c.id] for c in kept if c.id in effective]),
          "per_problem": {i: round(r, 4) for i, r in effective.items()}}
  return kept, info, calib


# ---------------------------------------------------------------- outputs
def _label(row) -> str:
  d = str(row.get("difficulty") or "").lower()
  return d if d in _DIFFICULTIES else "unknown"


def _histogram(labels) -> dict:
  counts = collections.Counter(labels)
  return {d: counts.get(d, 0) for d in _DIFFICULTIES}


def _report(inputs, cfg, ledger, kept, info, seconds) -> dict:
  decisions = ledger.decisions()
  dropped = [d for d in decisions if d["decision"] == "drop"]
  by_stage = {s: dict(collections.Counter(d["reason"] for d in dropped if d["stage"] == s))
              for s in STAGES}
  return {
      "inputs": [os.path.basename(p) for p in inputs],
      "config": {k: list(v) if isinstance(v, tuple) else v
                 for k, v in dataclasses.asdict(cfg).items()},
      "collected": len(decisions), "kept": len(kept), "dropped": len(dropped),
      "dropped_by_reason": dict(collections.Counter(d["reason"] for d in dropped)),
      "dropped_by_stage": by_stage,
      "difficulty_before": _histogram(d["difficulty"] for d in decisions),
      "difficulty_after": _histogram(_label(c.row) for c in kept),
      **info, "seconds": round(seconds, 1), "decisions": decisions}


def _build_array_record(datasets, jsonl: str, tfds_dir: str, n: int) -> None:
  """The TFDS build, announced accurately.

  TFDS's builder prints "Downloading and preparing dataset ..." and "...
  downloaded and prepared to ..." to stdout although nothing is downloaded
  here; its stdout is held back and replaced by one line. If the build fails,
  what it printed goes to stderr and the error propagates.
  """
  name = datasets.MicrocoderProblems.name
  print(f"Building TFDS dataset {name} (array_record) at {tfds_dir} from {n} local "
        f"problem{'s' if n != 1 else ''}", flush=True)
  held = io.StringIO()
  try:
    with contextlib.redirect_stdout(held):
      datasets.build_array_record(jsonl, tfds_dir)
  except BaseException:
    sys.stderr.write(held.getvalue())
    raise


def write_outputs(out_dir: str, rows: list[dict], report: dict) -> None:
  """problems.jsonl, the array_record build, report.json and report.md."""
  from microcoder_jax.data import datasets  # pylint: disable=g-import-not-at-top
  from microcoder_jax.curation import report as report_lib  # pylint: disable=g-import-not-at-top

  os.makedirs(out_dir, exist_ok=True)
  jsonl = os.path.join(out_dir, "problems.jsonl")
  with open(jsonl, "w", encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
  tfds_dir = os.path.join(out_dir, "tfds")
  if os.path.isdir(tfds_dir):  # The builder would otherwise reuse old shards.
    shutil.rmtree(tfds_dir)
  if rows:
    _build_array_record(datasets, jsonl, tfds_dir, len(rows))
  report["outputs"] = {"jsonl": "problems.jsonl", "tfds": "tfds" if rows else ""}
  with open(os.path.join(out_dir, "report.json"), "w", encoding="utf-8") as f:
    json.dump(report, f, indent=1)
  with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
    f.write(report_lib.markdown(report))
