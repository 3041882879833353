"""The curation report as Markdown (the JSON report is the source of truth)."""

from __future__ import annotations


def _table(header, rows) -> list[str]:
  lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
  return lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def markdown(report: dict) -> str:
  """Counts, drops per stage and reason, histograms, caps and calibration."""
  out = ["# Curation report", "",
         f"Inputs: {', '.join(report['inputs'])}. "
         f"Collected **{report['collected']}**, kept **{report['kept']}**, "
         f"dropped **{report['dropped']}** ({report['seconds']} s).", "",
         "## Dropped, by stage and reason", ""]
  rows = [(s, r, n) for s, reasons in report["dropped_by_stage"].items()
          for r, n in sorted(reasons.items())]
  out += _table(("stage", "reason", "problems"), rows or [("-", "-", 0)]) + [""]
  out += ["## Difficulty label, before and after", ""]
  out += _table(("", *report["difficulty_before"]),
                [("before", *report["difficulty_before"].values()),
                 ("after", *report["difficulty_after"].values())]) + [""]
  if report.get("io_format"):
    out += ["I/O format (kept after processing): " + ", ".join(
        f"{k} {v}" for k, v in sorted(report["io_format"].items())) + ".",
            "Judging options set: " + (", ".join(
                f"{k} {v}" for k, v in sorted(report["judging"].items())) or "none") + ".", ""]
  ver = report.get("verification") or {}
  out += ["## Verification", "",
          "References passed: {}; failed: {}; no reference: {}.".format(
              ver.get("verified", 0), ver.get("failed", 0), ver.get("no_reference", 0)), ""]
  if report.get("test_caps"):
    out += _table(("problem", "tests before", "after", "cut (indices)", "wrong programs",
                   "rejected by all / by kept", "method"),
                  [(c["id"], c["tests_before"], c["tests_after"], c["cut"],
                    c["wrong_programs"],
                    f"{c['rejected_by_all_tests']} / {c['rejected_by_kept_tests']}",
                    c["method"]) for c in report["test_caps"]]) + [""]
  rates = report.get("pass_rates") or {}
  if rates:
    out += [f"## Pass rate (k = {rates['k']}, band {rates['band']})", ""]
    hb, ha = rates["histogram_before"], rates["histogram_after"]
    out += _table(("", *hb), [("before", *hb.values()), ("after", *ha.values())]) + [""]
    cal = report.get("calibration") or {}
    if cal.get("fitted"):
      out += [f"Predictor ({cal['score_source']}): p = sigmoid({cal['a']} + {cal['b']} * score) "
              f"on {cal['n']} problems; log loss {cal['log_loss']}, Brier {cal['brier']} "
              f"(constant: {cal['brier_constant']}), Spearman {cal['spearman']}.", ""]
      out += _table(("score", "problems", "measured", "predicted"),
                    [(r["score"], r["n"], r["measured"], r["predicted"])
                     for r in cal["by_score"]]) + [""]
    elif cal:
      out += [f"Predictor not fitted: {cal.get('why', '')}.", ""]
  out += ["## Decisions", ""]
  out += _table(("id", "origin", "decision", "stage", "reason", "detail"),
                [(d["id"], d["origin"], d["decision"], d["stage"], d["reason"],
                  d["detail"].replace("|", "/")[:80]) for d in report["decisions"]])
  return "\n".join(out) + "\n"
