"""Evaluator benchmark: accuracy and throughput against LCB's harness design.

  python benchmarks/evaluator_bench.py [--reps 3] [--programs 200] \
      [--tests 10] [--workers 2] [--json out.json]

Accuracy: the labelled corpus (tests/data/evaluator). microcoder_jax judges
every sample; the LiveCodeBench re-implementation (lcb_harness.py) judges only
the non-hostile categories plus the hacks that merely read the harness's own
memory, since it is not a sandbox. Throughput: (a) a
synthetic load of distinct all-correct programs x tests, (b) the non-hostile
corpus; both sides on the same cores in the same run, alternating.
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


def _synthetic(n_programs, n_tests):
  prob = parse_problem({"id": "synth", "question": "", "tests": [
      {"input": f"{i} {3 * i}\n", "output": f"{4 * i}\n", "testtype": "stdin"}
      for i in range(n_tests)]})
  codes = [f"# program {k}\na, b = map(int, input().split())\nprint(a + b)\n"
           for k in range(n_programs)]
  return prob, codes


def _time_ours(problems, programs, workers, timeout_s):
  with Evaluator(workers=workers, timeout_s=timeout_s, cache=False) as ev:
    ev.evaluate(problems, [{"id": pid, "code": c} for pid, c in programs[:2]])
    t0 = time.perf_counter()
    res = ev.evaluate(problems, [{"id": pid, "code": c} for pid, c in programs])
    return time.perf_counter() - t0, res, ev.isolation


def _time_lcb(problems, programs, workers):
  lcb_probs = {pid: _lcb_problem(p) for pid, p in problems.items()}
  t0 = time.perf_counter()
  passed, _ = lcb_harness.evaluate(lcb_probs, programs, workers=workers)
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
  loads = {"synthetic": ({"synth": prob}, [("synth", c) for c in codes]),
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
           "ours_all_pass": all(r.passed for r in res),
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


def _cpu_model():
  with open("/proc/cpuinfo") as f:
    for line in f:
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  return "unknown"


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--programs", type=int, default=200)
  parser.add_argument("--tests", type=int, default=10)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--json", default="")
  args = parser.parse_args()
  report = {"cpu": _cpu_model(), "cores": len(os.sched_getaffinity(0)),
            "loadavg_start": os.getloadavg()}
  report["accuracy"] = accuracy(args.workers)
  report["throughput"] = throughput(args.reps, args.programs, args.tests,
                                    args.workers)
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
  print(f"\nisolation: {report['throughput']['synthetic']['isolation']}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(report, f, indent=2)


if __name__ == "__main__":
  main()
