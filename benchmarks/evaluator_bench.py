"""Evaluator benchmark: accuracy and throughput against LiveCodeBench's harness.

  python benchmarks/evaluator_bench.py [--reps 3] [--programs 200] \
      [--tests 10] [--workers 2] [--lcb-path DIR] [--layers] [--json out.json]

`--lcb-path` is a LiveCodeBench checkout (github.com/LiveCodeBench/
LiveCodeBench, the directory holding `lcb_runner/`): its own
`evaluate_generations` then runs beside ours, with the same number of worker
processes and its default 6 s timeout. Without it, lcb_harness.py (a
re-implementation of its semantics) stands in. Nothing of LiveCodeBench is
copied here; it needs numpy and tqdm.

Accuracy: the labelled corpus (tests/data/evaluator). microcoder_jax judges
every sample; LiveCodeBench judges only the non-hostile categories plus the
hacks that merely read the harness's own memory, since it is not a sandbox.
Throughput: (a) distinct all-correct programs x tests, (b) distinct programs
that fail their first test (most RL samples fail), (c) the non-hostile
corpus; both sides on the same cores in the same run, alternating, every
isolation layer on. `--layers` adds the cost of each layer: the synthetic
load with one layer disabled at a time, and with all disabled.
"""
import argparse
import collections
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lcb_harness  # pylint: disable=g-import-not-at-top
from microcoder_jax import cli  # pylint: disable=g-import-not-at-top
from microcoder_jax.evaluator import Evaluator  # pylint: disable=g-import-not-at-top
from microcoder_jax.evaluator import extract_code  # pylint: disable=g-import-not-at-top
from microcoder_jax.evaluator import load_problems  # pylint: disable=g-import-not-at-top
from microcoder_jax.evaluator import parse_problem  # pylint: disable=g-import-not-at-top

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "tests", "data", "evaluator")
CATEGORIES = ("canonical", "lcb_rejects_correct", "lenient_accepts_wrong",
              "hack", "abuse")
NON_HOSTILE = CATEGORIES[:3]
# Hacks that only read the harness's own memory: safe to run unsandboxed.
HARMLESS_HACKS = ("__eq__ always True", "list subclass with lying __eq__",
                  "frame/gc peeking for the expected output",
                  "scans its heap and frames for the expected output")


def _lcb_runs(sample):
  return sample["category"] in NON_HOSTILE or sample["note"] in HARMLESS_HACKS


def _lcb_problem(p):
  return {"inputs": [t.input for t in p.tests],
          "outputs": [t.output for t in p.tests],
          "fn_name": p.fn_name if p.mode == "functional" else None}


def _synthetic(n_programs, n_tests, wrong=False):
  prob = parse_problem({"id": "synth", "question": "", "tests": [
      {"input": f"{i} {3 * i}\n", "output": f"{4 * i}\n", "testtype": "stdin"}
      for i in range(n_tests)]})
  answer = "a + b + 1" if wrong else "a + b"
  codes = [f"# program {k}\na, b = map(int, input().split())\nprint({answer})\n"
           for k in range(n_programs)]
  return prob, codes


def _time_ours(problems, programs, workers, timeout_s, disable=()):
  with Evaluator(workers=workers, timeout_s=timeout_s, cache=False,
                 sandbox_disable=disable, allow_weak_isolation=bool(disable)) as ev:
    ev.evaluate(problems, [{"id": pid, "code": c} for pid, c in programs[:2]])
    t0 = time.perf_counter()
    res = ev.evaluate(problems, [{"id": pid, "code": c} for pid, c in programs])
    return time.perf_counter() - t0, res, ev.isolation


_LCB = {"evaluate": lcb_harness.evaluate, "name": "LCB semantics (lcb_harness.py)"}


def use_real_lcb(path: str) -> None:
  """Judges the LiveCodeBench side with its own code from a checkout."""
  sys.path.insert(0, os.path.abspath(path))
  os.environ.setdefault("TQDM_DISABLE", "1")  # Its progress bars, not ours.
  from lcb_runner.evaluation import compute_code_generation_metrics as lcb  # pylint: disable=g-import-not-at-top

  def evaluate(problems, programs, workers=2, timeout=6):
    samples = [{"input_output": json.dumps(problems[pid])} for pid, _ in programs]
    results, _ = lcb.evaluate_generations(samples, [[code] for _, code in programs],
                                          num_process_evaluate=workers, timeout=timeout)
    per_test = [results[i][0] for i in range(len(programs))]
    return [bool(r) and all(x is True or x == 1 for x in r) for r in per_test], per_test

  _LCB.update(evaluate=evaluate, name=f"LiveCodeBench {path} (its evaluate_generations)")


def _time_lcb(problems, programs, workers):
  lcb_probs = {pid: _lcb_problem(p) for pid, p in problems.items()}
  t0 = time.perf_counter()
  passed, _ = _LCB["evaluate"](lcb_probs, programs, workers=workers)
  return time.perf_counter() - t0, passed


def accuracy(workers):
  problems = load_problems(os.path.join(DATA, "problems.jsonl"))
  with open(os.path.join(DATA, "samples.jsonl"), encoding="utf-8") as f:
    samples = [json.loads(l) for l in f]
  with Evaluator(workers=workers, timeout_s=2.0) as ev:
    ours = [r.passed for r in ev.evaluate(problems, samples)]
  benign = [i for i, s in enumerate(samples) if _lcb_runs(s)]
  programs = [(samples[i]["id"], extract_code(samples[i]["completion"]) or "")
              for i in benign]
  _, lcb_passed = _time_lcb(problems, programs, workers)
  lcb = dict(zip(benign, lcb_passed))
  table = collections.OrderedDict()
  for c in CATEGORIES:
    idx = [i for i, s in enumerate(samples) if s["category"] == c]
    row = {"n": len(idx), "true_pass": sum(samples[i]["label"] == "pass" for i in idx)}
    for name, got in (("ours", dict(enumerate(ours))), ("lcb", lcb)):
      sub = [i for i in idx if i in got]
      row[name] = {
          "n": len(sub),
          "FN": sum(samples[i]["label"] == "pass" and not got[i] for i in sub),
          "FP": sum(samples[i]["label"] != "pass" and got[i] for i in sub)
      } if sub else None
    table[c] = row
  return table


def throughput(reps, n_programs, n_tests, workers):
  prob, codes = _synthetic(n_programs, n_tests)
  corpus = load_problems(os.path.join(DATA, "problems.jsonl"))
  with open(os.path.join(DATA, "samples.jsonl"), encoding="utf-8") as f:
    benign = [json.loads(l) for l in f]
  benign = [(s["id"], extract_code(s["completion"])) for s in benign
            if s["category"] in NON_HOSTILE and s["label"] == "pass"]
  wprob, wcodes = _synthetic(n_programs, n_tests, wrong=True)
  loads = {"synthetic": ({"synth": prob}, [("synth", c) for c in codes]),
           "synthetic_wrong": ({"synth": wprob}, [("synth", c) for c in wcodes]),
           "corpus_correct": (corpus, benign)}
  out = {}
  for name, (problems, programs) in loads.items():
    times = collections.defaultdict(list)
    for _ in range(reps):
      dt, passed = _time_lcb(problems, programs, workers)
      times["lcb"].append(dt)
      dt, res, isolation = _time_ours(problems, programs, workers, 4.0)
      times["ours"].append(dt)
    n_tests_total = sum(len(problems[pid].tests) for pid, _ in programs)
    row = {"programs": len(programs), "tests": n_tests_total,
           "isolation": isolation,
           "ours_pass_count": sum(r.passed for r in res),
           "lcb_pass_count": sum(passed)}
    for side, ts in times.items():
      mean = statistics.mean(ts)
      row[side] = {"seconds_mean": mean,
                   "seconds_sd": statistics.stdev(ts) if len(ts) > 1 else 0.0,
                   "programs_per_s": len(programs) / mean,
                   "tests_per_s": n_tests_total / mean}
    row["ratio"] = row["ours"]["programs_per_s"] / row["lcb"]["programs_per_s"]
    out[name] = row
  return out


LAYERS = ("seccomp", "landlock", "mntns", "ipcns", "netns", "uid")


def layer_costs(reps, n_programs, n_tests, workers):
  """Synthetic load with one layer off at a time (and all off): the cost of
  each layer is the difference in seconds per test."""
  prob, codes = _synthetic(n_programs, n_tests)
  programs = [("synth", c) for c in codes]
  variants = [("all layers", ())] + [(f"without {l}", (l,)) for l in LAYERS] + [
      ("none (rlimits only)", LAYERS + ("pidns",))]
  out = {}
  for name, disable in variants:
    ts = []
    for _ in range(reps):
      dt, res, isolation = _time_ours({"synth": prob}, programs, workers, 4.0, disable)
      assert all(r.passed for r in res), name
      ts.append(dt)
    mean = statistics.median(ts)
    out[name] = {"isolation": isolation, "seconds_median": mean,
                 "ms_per_test": 1e3 * mean * workers / (n_programs * n_tests),
                 "programs_per_s": n_programs / mean}
  return out


def _cpu_model():
  with open("/proc/cpuinfo") as f:
    for line in f:
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  return "unknown"


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   formatter_class=cli.HelpFormatter)
  parser.add_argument("--reps", type=int, default=3, help="timed runs per workload and side")
  parser.add_argument("--programs", type=int, default=200,
                      help="distinct programs per synthetic workload")
  parser.add_argument("--tests", type=int, default=10, help="tests per synthetic program")
  parser.add_argument("--workers", type=int, default=2, help="worker processes on each side")
  parser.add_argument("--lcb-path", default="",
                      help="a LiveCodeBench checkout: run its harness, not lcb_harness.py")
  parser.add_argument("--layers", action="store_true", help="also time each isolation layer")
  parser.add_argument("--json", default="", help="also write the report to this JSON file")
  return parser


def main(argv=None):
  args = build_parser().parse_args(argv)
  if args.lcb_path:
    use_real_lcb(args.lcb_path)
  report = {"cpu": _cpu_model(), "cores": len(os.sched_getaffinity(0)),
            "loadavg_start": os.getloadavg()}
  report["accuracy"] = accuracy(args.workers)
  report["throughput"] = throughput(args.reps, args.programs, args.tests,
                                    args.workers)
  if args.layers:
    report["layers"] = layer_costs(args.reps, args.programs, args.tests, args.workers)
  report["lcb"] = _LCB["name"]
  report["loadavg_end"] = os.getloadavg()

  print(f"CPU: {report['cpu']} ({report['cores']} cores); load average "
        f"{report['loadavg_start'][0]:.2f} -> {report['loadavg_end'][0]:.2f}")
  print("\n| category | n | true pass | ours FN | ours FP | LCB n | LCB FN |"
        " LCB FP |")
  print("|---|---|---|---|---|---|---|---|")
  for c, row in report["accuracy"].items():
    lcb = row["lcb"] or {"n": 0, "FN": "n/a", "FP": "n/a"}
    print(f"| {c} | {row['n']} | {row['true_pass']} | {row['ours']['FN']} | "
          f"{row['ours']['FP']} | {lcb['n']} | {lcb['FN']} | {lcb['FP']} |")
  print("\n| workload | programs | tests | LCB s | ours s | LCB prog/s | "
        "ours prog/s | LCB tests/s | ours tests/s | ratio |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for name, r in report["throughput"].items():
    lcb, ours = r["lcb"], r["ours"]
    print(f"| {name} | {r['programs']} | {r['tests']} | "
          f"{lcb['seconds_mean']:.2f}±{lcb['seconds_sd']:.2f} | "
          f"{ours['seconds_mean']:.2f}±{ours['seconds_sd']:.2f} | "
          f"{lcb['programs_per_s']:.1f} | {ours['programs_per_s']:.1f} | "
          f"{lcb['tests_per_s']:.0f} | {ours['tests_per_s']:.0f} | "
          f"{r['ratio']:.2f}x |")
  print(f"\nLiveCodeBench side: {report['lcb']}")
  print(f"isolation: {report['throughput']['synthetic']['isolation']}")
  if args.layers:
    print("\n| sandbox | isolation | s (median) | ms per test per worker | programs/s |")
    print("|---|---|---|---|---|")
    for name, r in report["layers"].items():
      print(f"| {name} | {r['isolation']} | {r['seconds_median']:.2f} | "
            f"{r['ms_per_test']:.2f} | {r['programs_per_s']:.1f} |")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(report, f, indent=2)


if __name__ == "__main__":
  main()
