"""Builds a verified, difficulty-filtered training set from problem collections.

    python -m microcoder_jax.curation --inputs lcb.jsonl taco.jsonl --out_dir out/ \
        --min_tests 1 --dedup_threshold 0.8 --max_tests 20 --after 2024-08-01 \
        --policy microcoder_jax/data/bundled/tiny_policy --samples 4 --band 0.0,0.9

Writes out/problems.jsonl, out/tfds/, out/report.json and out/report.md and
prints the Markdown report's summary. Without --policy the difficulty stage
is skipped. `python -m microcoder_jax.curate` is an alias. See docs/curation.md.
"""

from __future__ import annotations

import argparse

from microcoder_jax.curation import pipeline


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--inputs", nargs="+", required=True, help="JSONL or JSON files")
  p.add_argument("--out_dir", required=True)
  p.add_argument("--min_tests", type=int, default=1)
  p.add_argument("--dedup_threshold", type=float, default=0.8)
  p.add_argument("--after", default="", help="keep contest_date >= YYYY-MM-DD")
  p.add_argument("--before", default="", help="keep contest_date < YYYY-MM-DD")
  p.add_argument("--max_refs", type=int, default=3)
  p.add_argument("--require_verified", action="store_true")
  p.add_argument("--max_tests", type=int, default=0, help="0: no cap")
  p.add_argument("--policy", default="", help="HF checkpoint dir; '' skips the filter")
  p.add_argument("--samples", type=int, default=4)
  p.add_argument("--band", default="0.0,0.9", help="lo,hi: keep lo <= pass rate <= hi")
  p.add_argument("--temperature", type=float, default=1.0)
  p.add_argument("--max_new_tokens", type=int, default=1024)
  p.add_argument("--measure_max", type=int, default=0, help="0: measure every problem")
  p.add_argument("--ratings", default="", help='JSONL {"id", "rating"}, higher = harder')
  p.add_argument("--exclude", nargs="*", default=[],
                 help="held-out problem files: drop their exact/near duplicates")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--workers", type=int, default=None)
  p.add_argument("--timeout_s", type=float, default=4.0)
  p.add_argument("--memory_mb", type=int, default=1024)
  return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> pipeline.CurateConfig:
  lo, hi = (float(x) for x in args.band.split(","))
  fields = {k: v for k, v in vars(args).items()
            if k not in ("inputs", "out_dir", "band", "exclude")}
  return pipeline.CurateConfig(band=(lo, hi), exclude=tuple(args.exclude), **fields)


def main(argv=None) -> dict:
  args = parse_args(argv)
  report = pipeline.curate(args.inputs, args.out_dir, config_from(args))
  print(f"collected {report['collected']}, kept {report['kept']}, "
        f"dropped {report['dropped']}: {report['dropped_by_reason']}")
  print(f"wrote {args.out_dir}/problems.jsonl, tfds/, report.json, report.md")
  return report


if __name__ == "__main__":
  main()
