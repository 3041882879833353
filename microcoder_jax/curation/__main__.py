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

from microcoder_jax import cli
from microcoder_jax.curation import pipeline


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=cli.HelpFormatter)
  p.add_argument("--inputs", nargs="+", required=True, help="JSONL or JSON files")
  p.add_argument("--out-dir", "--out_dir", required=True,
                 help="where problems.jsonl, tfds/ and report.{json,md} go")
  p.add_argument("--min-tests", "--min_tests", type=int, default=1,
                 help="drop problems with fewer tests")
  p.add_argument("--dedup-threshold", "--dedup_threshold", type=float, default=0.8,
                 help="statement similarity (word-3-shingle Jaccard) at or above which "
                      "two problems are near duplicates")
  p.add_argument("--after", default="", help="keep contest_date >= YYYY-MM-DD")
  p.add_argument("--before", default="", help="keep contest_date < YYYY-MM-DD")
  p.add_argument("--max-refs", "--max_refs", type=int, default=3,
                 help="reference programs tried per problem")
  p.add_argument("--require-verified", "--require_verified", action="store_true",
                 help="drop problems without a verified reference program")
  p.add_argument("--max-tests", "--max_tests", type=int, default=0,
                 help="cap on tests per problem (0: no cap)")
  p.add_argument("--policy", default="", help="HF checkpoint dir; '' skips the filter")
  p.add_argument("--samples", type=int, default=4,
                 help="k: responses sampled per problem by the policy")
  p.add_argument("--band", default="0.0,0.9", help="lo,hi: keep lo <= pass rate <= hi")
  p.add_argument("--temperature", type=float, default=1.0, help="policy sampling temperature")
  p.add_argument("--max-new-tokens", "--max_new_tokens", type=int, default=1024,
                 help="response budget of the policy")
  p.add_argument("--measure-max", "--measure_max", type=int, default=0,
                 help="problems measured with the policy, the rest predicted "
                      "(0: measure every problem)")
  p.add_argument("--ratings", default="", help='JSONL {"id", "rating"}, higher = harder')
  p.add_argument("--exclude", nargs="*", default=[],
                 help="held-out problem files: drop their exact/near duplicates")
  p.add_argument("--seed", type=int, default=0, help="policy sampling seed")
  p.add_argument("--workers", type=int, default=None,
                 help="judge worker processes (default: usable cores)")
  p.add_argument("--timeout-s", "--timeout_s", type=float, default=4.0,
                 help="judge CPU seconds per test")
  p.add_argument("--memory-mb", "--memory_mb", type=int, default=1024,
                 help="judge memory per program, MB")
  return p


def parse_args(argv=None) -> argparse.Namespace:
  return build_parser().parse_args(argv)


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
