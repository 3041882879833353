"""Judge model samples against problems.

  python -m microcoder_jax.evaluate --problems P.jsonl --samples S.jsonl \\
      --out R.jsonl [--comparator microcoder|lcb] [--workers N] \\
      [--timeout SECONDS] [--memory-mb MB] [--disk-mb MB] [--no-early-exit] \\
      [--allow-weak-isolation]

Problems may be native or LiveCodeBench rows (detected per line). Samples
are {"id", "completion"} lines (or "code" to skip extraction; optional
"prompt_opens_think": true when the prompt left a <think> block open); the
k-th line of an id is sample k. Every bad row (invalid UTF-8, bad JSON, a
wrongly typed field, an unknown problem id) is reported as `file:line: why`
and skipped; the rest is judged. One result line per judged sample, in sample
order, written as results arrive. Exit status 0, or 1 if any row was
rejected, 2 on a usage error (bad limits, unwritable --out, a sandbox weaker
than required).
"""
import argparse
import collections
import json
import os
import sys
import time

from microcoder_jax import cli
from microcoder_jax import evaluator
from microcoder_jax.evaluator.orchestrator import IsolationError
from microcoder_jax.evaluator.problems import read_jsonl

RESULT_KEYS = ("id", "sample", "verdict", "passed", "tests_passed", "tests_total",
               "seconds", "has_code", "isolation", "detail")


def read_samples(path: str, problems: dict, errors: list) -> list:
  """Valid sample rows; everything else is described in `errors`."""
  samples = []
  for n, row in read_jsonl(path, errors):
    where = f"{path}:{n}"
    if not isinstance(row, dict):
      errors.append(f"{where}: not a JSON object")
      continue
    if not isinstance(row.get("id"), str):
      errors.append(f"{where}: field 'id' must be a string")
      continue
    fields = [k for k in ("completion", "code") if k in row]
    if len(fields) != 1 or not isinstance(row[fields[0]], str):
      errors.append(f"{where}: needs exactly one string field 'completion' or 'code'")
      continue
    if not isinstance(row.get("prompt_opens_think", False), bool):
      errors.append(f"{where}: field 'prompt_opens_think' must be true or false")
      continue
    if row["id"] not in problems:
      errors.append(f"{where}: unknown problem id {row['id']!r}")
      continue
    samples.append(row)
  return samples


def _open_out(path: str):
  """Opens --out for writing before any work, with a clear error."""
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    raise SystemExit(f"--out {path}: directory {parent} does not exist")
  try:
    return open(path, "w", encoding="utf-8")
  except OSError as e:
    raise SystemExit(f"--out {path}: {e.strerror}") from e


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__.split("\n")[0],
      formatter_class=cli.HelpFormatter)
  parser.add_argument("--problems", required=True, help="problems JSONL")
  parser.add_argument("--samples", required=True, help="samples JSONL")
  parser.add_argument("--out", required=True, help="results JSONL (written as judged)")
  parser.add_argument("--comparator", default="microcoder", choices=("microcoder", "lcb"),
                      help="output comparison")
  parser.add_argument("--workers", type=int, default=None, help="default: usable cores")
  parser.add_argument("--timeout", type=float, default=4.0, help="CPU seconds per test")
  parser.add_argument("--memory-mb", type=int, default=1024, help="address space per program")
  parser.add_argument("--disk-mb", type=int, default=64, help="tmpfs size per test")
  parser.add_argument("--no-early-exit", action="store_true",
                      help="run every test (partial-credit rewards)")
  parser.add_argument("--allow-weak-isolation", action="store_true",
                      help="run even if the kernel lacks a required sandbox layer")
  args = parser.parse_args(argv)

  out = _open_out(args.out)
  errors = []
  problems = evaluator.load_problems(args.problems, errors)
  samples = read_samples(args.samples, problems, errors)
  for e in errors:
    print(f"rejected: {e}", file=sys.stderr)
  print(f"{len(problems)} problems, {len(samples)} samples", file=sys.stderr)

  t0 = time.monotonic()
  try:
    ev = evaluator.Evaluator(
        workers=args.workers, timeout_s=args.timeout, memory_mb=args.memory_mb,
        disk_mb=args.disk_mb, comparator=args.comparator,
        early_exit=not args.no_early_exit,
        allow_weak_isolation=args.allow_weak_isolation)
  except (ValueError, IsolationError) as e:
    out.close()
    print(f"error: {e}", file=sys.stderr)
    return 2
  with ev, out:
    ticket = ev.submit(problems, samples)
    written = 0
    while written < len(samples):
      try:
        ev.collect(ticket, timeout=1.0)
      except TimeoutError:
        print(f"\r{ticket.done}/{len(samples)} judged", end="", file=sys.stderr,
              flush=True)
      while written < len(samples) and ticket.results[written] is not None:
        r = ticket.results[written]
        out.write(json.dumps({k: getattr(r, k) for k in RESULT_KEYS}) + "\n")
        written += 1
      out.flush()
    isolation, stats = ev.isolation, dict(ev.stats)
  results = ticket.results
  elapsed = time.monotonic() - t0
  counts = collections.Counter(r.verdict for r in results)
  n = max(len(results), 1)
  dedup = stats.get("cache_hits", 0) + stats.get("dedup_hits", 0)
  print(f"\rjudged {len(results)} samples in {elapsed:.2f}s "
        f"({len(results) / max(elapsed, 1e-9):.1f} programs/s; "
        f"{stats.get('programs', 0)} programs run, {dedup} deduplicated)",
        file=sys.stderr)
  print(f"pass rate {counts['pass'] / n:.4f}  verdicts "
        + " ".join(f"{v}={counts[v]}" for v in evaluator.VERDICTS if counts[v])
        + f"  isolation={isolation}", file=sys.stderr)
  if errors:
    print(f"{len(errors)} rows rejected (see above)", file=sys.stderr)
  return 1 if errors else 0


if __name__ == "__main__":
  sys.exit(main())
