"""Procedurally generated stdin/stdout problems for CPU-scale RL.

Small programming tasks over integers, lists and strings, in three difficulty
levels, each with a reference solution and tests computed by a Python
reference function. Train and held-out problems come from disjoint parameter
settings of the same families (e.g. `print(3*x+1)` in train, `print(5*x+2)`
held out), so the split is by construction and a policy must read the
statement to pass.

    python -m microcoder_jax.data.synthetic --out-dir microcoder_jax/data/bundled
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import random
import string
from typing import Callable, Iterator

from microcoder_jax import cli


@dataclasses.dataclass(frozen=True)
class Spec:
  """One problem: statement, reference solution and an input generator."""
  id: str
  family: str
  difficulty: str
  question: str
  solution: str
  make_input: Callable[[random.Random], str]
  answer: Callable[[str], str]


def _ints(line: str) -> list[int]:
  return [int(t) for t in line.split()]


def _list_input(rng: random.Random, lo=-20, hi=20, max_n=8) -> str:
  n = rng.randint(1, max_n)
  return f"{n}\n{' '.join(str(rng.randint(lo, hi)) for _ in range(n))}\n"


def _word(rng: random.Random, letters: str = "abcdexyz") -> str:
  return "".join(rng.choice(letters) for _ in range(rng.randint(1, 9))) + "\n"


# ----------------------------------------------------------------- families
def _linear() -> Iterator[Spec]:
  for a, b in itertools.product(range(2, 14), range(0, 13)):
    yield Spec(
        f"linear-{a}-{b}", "linear", "easy",
        f"Read an integer x. Print {a}*x+{b}.",
        f"x=int(input())\nprint({a}*x+{b})",
        lambda r: f"{r.randint(-50, 50)}\n",
        lambda s, a=a, b=b: f"{a * int(s) + b}\n")


def _modulo() -> Iterator[Spec]:
  for k in range(2, 41):
    yield Spec(
        f"mod-{k}", "modulo", "easy", f"Read an integer x. Print x modulo {k}.",
        f"x=int(input())\nprint(x%{k})", lambda r: f"{r.randint(0, 999)}\n",
        lambda s, k=k: f"{int(s) % k}\n")


_STRING_OPS = {
    "reversed": ("the string reversed", "print(s[::-1])", lambda s: s[::-1]),
    "upper": ("the string in upper case", "print(s.upper())", lambda s: s.upper()),
    "length": ("the length of the string", "print(len(s))", lambda s: str(len(s))),
    "first": ("the first character of the string", "print(s[0])", lambda s: s[0]),
    "last": ("the last character of the string", "print(s[-1])", lambda s: s[-1]),
}


def _string_ops() -> Iterator[Spec]:
  for name, (text, code, fn) in _STRING_OPS.items():
    yield Spec(f"string-{name}", "string", "easy",
               f"Read a string s. Print {text}.", f"s=input()\n{code}",
               _word, lambda s, fn=fn: fn(s.strip()) + "\n")
  for k in range(2, 21):
    yield Spec(f"string-repeat-{k}", "string", "easy",
               f"Read a string s. Print s repeated {k} times.",
               f"s=input()\nprint(s*{k})", _word,
               lambda s, k=k: s.strip() * k + "\n")


def _count_char() -> Iterator[Spec]:
  for c in string.ascii_lowercase:
    yield Spec(f"count-{c}", "count", "easy",
               f"Read a string s. Print how many times the letter {c} occurs in s.",
               f"s=input()\nprint(s.count('{c}'))",
               lambda r, c=c: _word(r, "abcdexyz" + c * 3),
               lambda s, c=c: f"{s.strip().count(c)}\n")


_LIST_OPS = {
    "sum": ("the sum of the numbers", "print(sum(a))", sum),
    "max": ("the largest number", "print(max(a))", max),
    "min": ("the smallest number", "print(min(a))", min),
    "range": ("the largest number minus the smallest number",
              "print(max(a)-min(a))", lambda a: max(a) - min(a)),
}


def _list_ops() -> Iterator[Spec]:
  head = "The first line has n. The second line has n integers. Print "
  read = "n=int(input())\na=list(map(int,input().split()))\n"
  for name, (text, code, fn) in _LIST_OPS.items():
    yield Spec(f"list-{name}", "list", "medium", f"{head}{text}.", read + code,
               _list_input, lambda s, fn=fn: f"{fn(_ints(s.split(chr(10))[1]))}\n")
  for k in range(-20, 21):
    yield Spec(f"list-sumgt-{k}", "list", "medium",
               f"{head}the sum of the numbers greater than {k}.",
               read + f"print(sum(v for v in a if v>{k}))", _list_input,
               lambda s, k=k: f"{sum(v for v in _ints(s.split(chr(10))[1]) if v > k)}\n")
  for k in range(2, 21):
    yield Spec(f"list-countdiv-{k}", "list", "medium",
               f"{head}how many of the numbers are divisible by {k}.",
               read + f"print(sum(1 for v in a if v%{k}==0))", _list_input,
               lambda s, k=k: f"{sum(1 for v in _ints(s.split(chr(10))[1]) if v % k == 0)}\n")
  for order, rev in (("increasing", ""), ("decreasing", ",reverse=True")):
    yield Spec(f"list-sort-{order}", "list", "medium",
               f"{head}the numbers in {order} order, separated by spaces.",
               read + f"print(*sorted(a{rev}))", _list_input,
               lambda s, d=bool(rev): " ".join(
                   map(str, sorted(_ints(s.split(chr(10))[1]), reverse=d))) + "\n")


def _loops() -> Iterator[Spec]:
  for k in range(2, 51):
    yield Spec(f"divcount-{k}", "loops", "hard",
               f"Read an integer n. Print how many integers from 1 to n are "
               f"divisible by {k}.",
               f"n=int(input())\nprint(n//{k})",
               lambda r: f"{r.randint(1, 500)}\n",
               lambda s, k=k: f"{int(s) // k}\n")
  for a, b in itertools.permutations(range(2, 10), 2):
    yield Spec(
        f"fizz-{a}-{b}", "loops", "hard",
        f"Read an integer n. For each i from 1 to n print Fizz if i is divisible "
        f"by {a}, Buzz if i is divisible by {b} but not by {a}, otherwise i.",
        f"n=int(input())\nfor i in range(1,n+1):\n    if i%{a}==0:\n        print('Fizz')\n"
        f"    elif i%{b}==0:\n        print('Buzz')\n    else:\n        print(i)",
        lambda r: f"{r.randint(1, 20)}\n",
        lambda s, a=a, b=b: "".join(
            "Fizz\n" if i % a == 0 else "Buzz\n" if i % b == 0 else f"{i}\n"
            for i in range(1, int(s) + 1)))
  for k in range(1, 41):
    yield Spec(f"triangle-{k}", "loops", "hard",
               f"Read an integer n. Print the sum of i*{k} for i from 1 to n.",
               f"n=int(input())\nprint(sum(i*{k} for i in range(1,n+1)))",
               lambda r: f"{r.randint(1, 100)}\n",
               lambda s, k=k: f"{sum(i * k for i in range(1, int(s) + 1))}\n")


FAMILIES = (_linear, _modulo, _string_ops, _count_char, _list_ops, _loops)


def all_specs() -> list[Spec]:
  return [s for family in FAMILIES for s in family()]


def split(specs: list[Spec], held_out_frac: float = 0.25, seed: int = 0):
  """Per family, a fixed random `held_out_frac` of parameter settings is held out."""
  rng = random.Random(seed)
  train, held = [], []
  by_family: dict[str, list[Spec]] = {}
  for s in specs:
    by_family.setdefault(s.family, []).append(s)
  for fam in sorted(by_family):
    items = sorted(by_family[fam], key=lambda s: s.id)
    rng.shuffle(items)
    k = max(1, round(held_out_frac * len(items)))
    held += items[:k]
    train += items[k:]
  return train, held


def to_row(spec: Spec, num_tests: int = 6, seed: int = 0) -> dict:
  """A native-schema problem row with tests from the reference function."""
  rng = random.Random(f"{seed}-{spec.id}")
  inputs = []
  while len(inputs) < num_tests:
    x = spec.make_input(rng)
    if x not in inputs or len(inputs) > 50:
      inputs.append(x)
  return {
      "id": spec.id, "question": spec.question, "platform": "synthetic",
      "difficulty": spec.difficulty, "contest_date": "2026-01-01",
      "tests": [{"input": x, "output": spec.answer(x), "testtype": "stdin"}
                for x in inputs],
      "reference_solution": spec.solution, "family": spec.family,
  }


def write_split(out_dir: str, num_tests: int = 6, seed: int = 0) -> dict[str, int]:
  os.makedirs(out_dir, exist_ok=True)
  train, held = split(all_specs(), seed=seed)
  counts = {}
  for name, specs in (("train", train), ("heldout", held)):
    path = os.path.join(out_dir, f"synthetic_{name}.jsonl")
    with open(path, "w") as f:
      for s in specs:
        f.write(json.dumps(to_row(s, num_tests, seed)) + "\n")
    counts[name] = len(specs)
  return counts


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   formatter_class=cli.HelpFormatter)
  parser.add_argument("--out-dir", "--out_dir",
                      default=os.path.join(os.path.dirname(__file__), "bundled"),
                      help="where synthetic_train.jsonl and synthetic_heldout.jsonl go "
                           "(default: microcoder_jax/data/bundled, the files the package ships)")
  parser.add_argument("--num-tests", "--num_tests", type=int, default=6,
                      help="tests per problem")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the train/held-out split and of the tests")
  return parser


def main(argv=None):
  args = build_parser().parse_args(argv)
  print(write_split(args.out_dir, args.num_tests, args.seed))


if __name__ == "__main__":
  main()
