"""Judge model samples against problems.

  python -m microcoder_jax.evaluate --problems P.jsonl --samples S.jsonl \
      --out R.jsonl [--comparator microcoder|lcb] [--workers N] \
      [--timeout SECONDS] [--memory-mb MB] [--no-early-exit]

Problems may be native or LiveCodeBench rows (detected per line); bad rows
are reported with their line number and skipped. Samples are
{"id", "completion"} lines; the k-th line of an id is sample k. One result
line per sample, in sample order. Exit status 1 if any row was bad.
"""
import argparse
import collections
import json
import sys
import time

from microcoder_jax import evaluator


def _read_samples(path: str, errors: list) -> list:
  samples = []
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
        if not isinstance(row.get("id"), str) or not isinstance(
            row.get("completion"), str):
          raise ValueError("needs string 'id' and 'completion'")
      except (ValueError, AttributeError) as e:
        errors.append(f"samples line {n}: {e}")
        continue
      samples.append(row)
  return samples


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--problems", required=True)
  parser.add_argument("--samples", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--comparator", default="microcoder",
                      choices=("microcoder", "lcb"))
  parser.add_argument("--workers", type=int, default=None)
  parser.add_argument("--timeout", type=float, default=4.0,
                      help="CPU seconds per test")
  parser.add_argument("--memory-mb", type=int, default=1024)
  parser.add_argument("--no-early-exit", action="store_true",
                      help="run every test (partial-credit rewards)")
  args = parser.parse_args(argv)

  errors = []
  problems = evaluator.load_problems(args.problems, errors)
  for e in errors:
    print(f"problems: {e} (skipped)", file=sys.stderr)
  n_bad_problems = len(errors)
  samples = _read_samples(args.samples, errors)
  for e in errors[n_bad_problems:]:
    print(f"{e} (skipped)", file=sys.stderr)
  print(f"{len(problems)} problems, {len(samples)} samples", file=sys.stderr)

  t0 = time.monotonic()
  with evaluator.Evaluator(workers=args.workers, timeout_s=args.timeout,
                           memory_mb=args.memory_mb,
                           comparator=args.comparator,
                           early_exit=not args.no_early_exit) as ev:
    ticket = ev.submit(problems, samples)
    while True:
      try:
        results = ev.collect(ticket, timeout=1.0)
        break
      except TimeoutError:
        print(f"\r{ticket.done}/{len(samples)} judged", end="",
              file=sys.stderr, flush=True)
    isolation, stats = ev.isolation, dict(ev.stats)
  elapsed = time.monotonic() - t0

  keys = ("id", "sample", "verdict", "passed", "tests_passed", "tests_total",
          "seconds", "has_code", "isolation")
  with open(args.out, "w", encoding="utf-8") as f:
    for r in results:
      f.write(json.dumps({k: getattr(r, k) for k in keys}) + "\n")
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
  return 1 if errors else 0


if __name__ == "__main__":
  sys.exit(main())
