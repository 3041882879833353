"""The paper's temperature study at CPU scale: diversity against T, then training
at a low T, at the automatically selected T and at a high T.

    python benchmarks/temperature_study.py --steps 40 --seeds 0 1 2 --out-dir runs/temperature

1. The diversity-vs-T curve of the bundled demo policy on training prompts
   (`python -m microcoder_jax.select_temperature`, 64 prompts x G = 8, L_max 64).
2. `configs/demo.py` runs (same budget, same seeds) at `--low` (0.6), at
   `rl.temperature=auto` (the demo's `diversity.target`) and at `--high`
   (1.8). Finished runs in `--out-dir` are reused.
3. `temperature_study.md` (tables and, for each of the paper's temperature
   claims, holds / does not hold / inconclusive with the seed spread as the
   noise bar) and `temperature_study.png` (held-out pass@1, diversity and
   length against step).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from learning_curves import load, plot, series  # pylint: disable=g-import-not-at-top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CURVE_T = "0.4,0.6,0.8,1.0,1.2,1.4,1.6,1.8,2.0"


def curve(out_dir: str) -> dict:
  out = os.path.join(out_dir, "curve")
  if not os.path.exists(os.path.join(out, "temperature.json")):
    subprocess.run([sys.executable, "-m", "microcoder_jax.select_temperature", "--model",
                    os.path.join(ROOT, "microcoder_jax/data/bundled/tiny_policy"),
                    "--problems", "bundled:synthetic_train", "--prompts", "64",
                    "--group-size", "8", "--max-new-tokens", "64", "--temperatures", CURVE_T,
                    "--out", out], cwd=ROOT, check=True)
  with open(os.path.join(out, "temperature.json")) as f:
    return json.load(f)


def run(name: str, temperature: str, seed: int, steps: int, out_dir: str) -> str:
  workdir = os.path.join(out_dir, f"{name}_seed{seed}")
  if not os.path.exists(os.path.join(workdir, "report.md")):
    cmd = [sys.executable, "-m", "microcoder_jax.train",
           f"--config={ROOT}/configs/demo.py:seed={seed},steps={steps}",
           f"--workdir={workdir}", "--config.export=False",
           f"--config.rl.temperature={temperature}"]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
  return workdir


def summarise(runs: list[list[dict]]) -> dict:
  held = [series(r, "heldout/pass@1")[1] for r in runs]
  div = [series(r, "rollout/diversity")[1] for r in runs]
  length = [series(r, "rollout/length_mean")[1] for r in runs]
  temps = [series(r, "sampling/temperature")[1][0] for r in runs]
  start, end = np.array([h[0] for h in held]), np.array([h[-1] for h in held])
  d0 = np.array([d[:3].mean() for d in div])
  d1 = np.array([d[-5:].mean() for d in div])
  late = np.array([np.std(np.diff(d[len(d) // 2:])) for d in div])
  return dict(T=temps, start=start, end=end, delta=end - start, d_start=d0, d_end=d1,
              d_fall=d0 - d1, d_jitter=late,
              length_end=np.array([x[-5:].mean() for x in length]), n=len(runs))


def fmt(x, scale=1.0, digits=1):
  x = np.asarray(x, np.float64) * scale
  return f"{x.mean():.{digits}f} ± {x.std(ddof=1) if x.size > 1 else 0.0:.{digits}f}"


def claims(c: dict, s: dict[str, dict], low: str, high: str) -> list[str]:
  out = []
  ms = sorted(c["measurements"], key=lambda m: m["temperature"])
  d = [m["diversity"] for m in ms]
  a, lo, hi = s["auto"], s[low], s[high]

  def say(holds, text, margin=None, noise=None):
    if margin is not None and abs(margin) <= noise:
      out.append(f"- **inconclusive** (difference {margin:+.3g} within the seed noise "
                 f"±{noise:.3g}): {text}")
    else:
      out.append(f"- **{'holds' if holds else 'does not hold'}**: {text}")

  say(all(x < y for x, y in zip(d, d[1:])), "higher T raises diversity (D at T = "
      + ", ".join(f"{m['temperature']:g}: {m['diversity']:.3f}" for m in ms) + ")")
  falls = [v["d_fall"] for v in s.values()]
  say(all((f > 0).all() for f in falls), "at a fixed T, diversity falls as training goes on "
      "(D over the first 3 steps minus the last 5, per arm: "
      + ", ".join(f"{k} {fmt(v['d_fall'], digits=3)}" for k, v in s.items()) + ")")
  def noise(*arms):  # the larger seed sd of the final pass@1 of the arms compared
    return 100 * max(np.std(v["end"], ddof=1) for v in arms)

  margin = 100 * (a["end"].mean() - lo["end"].mean())
  say(margin > 0, f"starting below the plateau (T = {low}, start D {fmt(lo['d_start'], digits=3)} "
      f"vs the auto arm's end D {fmt(a['d_end'], digits=3)}) trains worse than the selected "
      f"T: held-out pass@1 {fmt(lo['end'], 100)} vs {fmt(a['end'], 100)}", margin, noise(a, lo))
  margin = 100 * (a["end"].mean() - hi["end"].mean())
  say(margin > 0, f"starting far above the plateau (T = {high}) trains worse than the selected "
      f"T: held-out pass@1 {fmt(hi['end'], 100)} vs {fmt(a['end'], 100)}", margin, noise(a, hi))
  say(hi["d_fall"].mean() > max(a["d_fall"].mean(), lo["d_fall"].mean()),
      f"starting far above (T = {high}, start D {fmt(hi['d_start'], digits=3)}) makes "
      f"diversity crash down: fall {fmt(hi['d_fall'], digits=3)} vs {fmt(a['d_fall'], digits=3)} "
      f"(auto) and {fmt(lo['d_fall'], digits=3)} (T = {low})")
  say(hi["d_jitter"].mean() > a["d_jitter"].mean(), f"... and then fluctuates: step-to-step "
      f"sd of D over the second half {fmt(hi['d_jitter'], digits=4)} (T = {high}) vs "
      f"{fmt(a['d_jitter'], digits=4)} (auto)")
  best = lo if lo["end"].mean() >= hi["end"].mean() else hi
  margin = 100 * (a["end"].mean() - best["end"].mean())
  say(margin > 0, "the T chosen to start near the plateau trains best: held-out pass@1 "
      f"{fmt(a['end'], 100)} (auto) vs {fmt(lo['end'], 100)} (T = {low}) and "
      f"{fmt(hi['end'], 100)} (T = {high})", margin, noise(a, best))
  return out


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()),
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--steps", type=int, default=40, help="RL steps per run")
  p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                 help="one run per arm and seed")
  p.add_argument("--low", default="0.6", help="temperature of the low fixed-T arm")
  p.add_argument("--high", default="1.8", help="temperature of the high fixed-T arm")
  p.add_argument("--out-dir", "--out_dir", default="runs/temperature",
                 help="the diversity curve, run workdirs (finished ones are reused), "
                      "temperature_study.md and .png")
  return p


def main(argv=None):
  a = build_parser().parse_args(argv)
  os.makedirs(a.out_dir, exist_ok=True)
  c = curve(a.out_dir)
  arms = {a.low: a.low, "auto": "auto", a.high: a.high}
  results = {name: [load(os.path.join(run(name.replace(".", "p"), t, s, a.steps, a.out_dir),
                                      "metrics.jsonl")) for s in a.seeds]
             for name, t in arms.items()}
  s = {name: summarise(runs) for name, runs in results.items()}
  png = os.path.join(a.out_dir, "temperature_study.png")
  plot({(f"T = {k}" if k != "auto" else "auto"): v for k, v in results.items()}, png)
  lines = [f"# Temperature study ({a.steps} steps, seeds {a.seeds})", "",
           "Diversity of the bundled policy against T (64 training prompts x 8, L_max 64):", "",
           "| T | diversity | entropy | length | truncated | pass@1 |", "|---|---|---|---|---|---|"]
  for m in sorted(c["measurements"], key=lambda m: m["temperature"]):
    lines.append(f"| {m['temperature']:g} | {m['diversity']:.3f} | {m['entropy']:.3f} | "
                 f"{m['length_mean']:.1f} | {m['truncated_frac']:.3f} | "
                 f"{100 * m['pass_at_1']:.1f}% |")
  lines += ["", "| arm | T used | held-out pass@1 start | end | change | D first 3 steps | "
            "D last 5 | length last 5 |", "|---|---|---|---|---|---|---|---|"]
  for name, v in s.items():
    lines.append(f"| {name} | {', '.join(f'{t:g}' for t in v['T'])} | {fmt(v['start'], 100)} | "
                 f"{fmt(v['end'], 100)} | {fmt(v['delta'], 100)} | "
                 f"{fmt(v['d_start'], digits=3)} | {fmt(v['d_end'], digits=3)} | "
                 f"{fmt(v['length_end'])} |")
  lines += ["", "The paper's temperature claims at this scale (noise bar of a comparison: "
            "the larger seed sd of the final pass@1 of the arms compared):", ""] + claims(c, s, a.low, a.high)
  lines += ["", "![study](temperature_study.png)"]
  with open(os.path.join(a.out_dir, "temperature_study.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
