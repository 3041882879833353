"""Writes the small mixed-quality collection that tests/curation/test_curation.py curates.

    python tests/data/curation/build_collection.py

Three layouts (native, TACO-style, CodeContests-style) with planted defects;
EXPECTED below is each row's intended fate under the test's options
(--min-tests 2 --after 2024-08-01 --max-tests 5 --band 0.0,0.9).
"""
import json
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
SYNTHETIC = os.path.join(HERE, "..", "..", "..", "microcoder_jax", "data", "bundled",
                         "synthetic_train.jsonl")
EASY_IDS = ("linear-9-0", "linear-7-7", "linear-8-3")
DATE, OLD = "2025-02-01", "2023-05-01"

PRIMES = """n = int(input())
sieve = [True] * (n + 1)
count = 0
for i in range(2, n + 1):
    if sieve[i]:
        count += 1
        for j in range(i * i, n + 1, i):
            sieve[j] = False
print(count)"""
LIS = """import bisect
n = int(input())
a = list(map(int, input().split()))
tails = []
for v in a:
    i = bisect.bisect_left(tails, v)
    if i == len(tails):
        tails.append(v)
    else:
        tails[i] = v
print(len(tails))"""
FACT_WRONG = "import math\nn = int(input())\nprint(math.factorial(n))"
DIVISORS = "n = int(input())\nprint(*[d for d in range(1, n + 1) if n % d == 0])"
SPLIT_SUM = "n = int(input())\nprint(1, n - 1)"
SPLIT_CHECK = """def check(inp, expected, output):
    n = int(inp)
    a, b = map(int, output.split())
    return a >= 1 and b >= 1 and a + b == n"""
MAX_PAIR = """n = int(input())
a = sorted(map(int, input().split()))
print(max(a[0] * a[1], a[-1] * a[-2]))"""
MAX_PAIR_WRONG = ["n = int(input())\na = sorted(map(int, input().split()))\nprint(a[-1] * a[-2])",
                  "n = int(input())\na = list(map(int, input().split()))\nprint(max(a) * max(a))"]


def stdin_tests(pairs):
  return [{"input": i, "output": o, "testtype": "stdin"} for i, o in pairs]


def primes(n):
  return sum(all(p % q for q in range(2, int(p ** 0.5) + 1)) for p in range(2, n + 1))


def lis(a):
  import bisect  # pylint: disable=g-import-not-at-top
  t = []
  for v in a:
    i = bisect.bisect_left(t, v)
    t[i:i + 1] = [v]
  return len(t)


def native_rows(rng):
  with open(SYNTHETIC, encoding="utf-8") as f:
    easy = [r for r in map(json.loads, f) if r["id"] in EASY_IDS]
  for r in easy:
    r.pop("family", None)
    r["contest_date"] = DATE
  primes_q = ("Read an integer n (1 <= n <= 10^5). Print how many prime numbers p "
              "satisfy p <= n.")
  lis_q = ("The first line has n. The second line has n integers. Print the length of "
           "the longest strictly increasing subsequence of the sequence.")
  arrays = [[rng.randint(-9, 9) for _ in range(rng.randint(1, 12))] for _ in range(30)]
  lis_tests = stdin_tests((f"{len(a)}\n{' '.join(map(str, a))}\n", f"{lis(a)}\n")
                          for a in arrays)
  hard = dict(platform="bundled", difficulty="hard", contest_date=DATE)
  return easy + [
      dict(id="primes-count", question=primes_q, reference_solution=PRIMES, **hard,
           tests=stdin_tests((f"{n}\n", f"{primes(n)}\n") for n in (1, 2, 10, 30, 97, 1000))),
      dict(id="primes-count-copy", question="  READ an integer n (1 <= n <= 10^5).\n"
           "Print how many prime numbers p satisfy p <= n. ", **hard,
           tests=stdin_tests([("5\n", "3\n"), ("11\n", "5\n")])),
      dict(id="lis-length", question=lis_q, reference_solution=LIS, **hard, tests=lis_tests),
      dict(id="lis-length-reworded", question=lis_q.replace("the sequence.", "the array."),
           **hard,
           tests=lis_tests[:3]),
      dict(id="factorial-mod", question="Read n (0 <= n <= 1000). Print n! modulo 1000000007.",
           reference_solution=FACT_WRONG, **hard,
           tests=stdin_tests((f"{n}\n", f"{math.factorial(n) % 1000000007}\n")
                            for n in (3, 0, 20))),
      dict(id="divisors-any-order", question="Read n. Print all divisors of n separated by "
           "spaces; you may print them in any order.", reference_solution=DIVISORS, **hard,
           tests=stdin_tests([("6\n", "6 3 2 1\n"), ("7\n", "7 1\n"), ("12\n", "12 6 4 3 2 1\n")])),
      dict(id="ratio-float", question="Read integers a and b. Print a / b. The answer is "
           "accepted if its absolute or relative error is at most 10^{-6}.",
           reference_solution="a, b = map(int, input().split())\nprint(a / b)", **hard,
           tests=stdin_tests([("1 3\n", "0.3333333333\n"), ("2 7\n", "0.285714285714\n")])),
      dict(id="split-sum-checker", question="Read n (n >= 2). Print two positive integers whose "
           "sum is n. If there are multiple answers, print any of them.", checker=SPLIT_CHECK,
           reference_solution=SPLIT_SUM, **hard,
           tests=stdin_tests([("5\n", "2 3\n"), ("2\n", "1 1\n")])),
      dict(id="nontrivial-divisor", question="Read a composite n. Print a divisor d of n with "
           "1 < d < n. If there are several possible answers, output any.", **hard,
           tests=stdin_tests([("4\n", "2\n"), ("15\n", "3\n")])),
      dict(id="guess-number", question="This is an interactive problem. Guess the hidden "
           "x (1 <= x <= 100) with at most 7 queries; flush the output after each query.",
           **hard, tests=stdin_tests([("50\n", "50\n"), ("1\n", "1\n")])),
      dict(id="one-test-only", question="Read a string s. Print s reversed.", **hard,
           tests=stdin_tests([("abc\n", "cba\n")])),
      dict(id="old-sum-digits", question="Read n. Print the sum of the decimal digits of n.",
           platform="bundled", difficulty="medium", contest_date=OLD,
           tests=stdin_tests([("123\n", "6\n"), ("9\n", "9\n")])),
      dict(id="broken-output-type", question="Read n. Print n squared.", **hard,
           tests=[{"input": "3\n", "output": 9, "testtype": "stdin"}]),
      dict(id="no-tests", question="Read n. Print 2 to the power n.", **hard, tests=[]),
  ]


def taco_rows():
  stdin = {"inputs": ["3\n1 2 3\n", "1\n-5\n", "4\n0 0 0 7\n"], "outputs": ["6\n", "-5\n", "7\n"]}
  fn = {"fn_name": "sum_even", "inputs": [[[1, 2, 3, 4]], [[]], [[5, 7]]],
        "outputs": [[6], [0], [0]]}
  return [
      {"problem_id": "taco-sum-list", "question": "The first line has n, the second n integers. "
       "Print their sum.", "input_output": json.dumps(stdin), "difficulty": "MEDIUM_HARD",
       "date": DATE, "solutions": json.dumps(["print(0)", "input()\nprint(sum(map(int, "
                                              "input().split())))"])},
      {"problem_id": "taco-sum-even", "question": "Return the sum of the even numbers in the "
       "list nums.", "input_output": json.dumps(fn), "difficulty": "EASY", "date": DATE,
       "solutions": ["def sum_even(nums):\n    return sum(x for x in nums if x % 2 == 0)"]},
      {"problem_id": "taco-undated", "question": "Read a word and print it in upper case letters.",
       "input_output": json.dumps({"inputs": ["ab\n", "q\n"], "outputs": ["AB\n", "Q\n"]}),
       "difficulty": "EASY", "solutions": ["print(input().upper())"]},
      {"problem_id": "taco-mismatched", "question": "Read n and print n + 1.", "date": DATE,
       "input_output": json.dumps({"inputs": ["1\n", "2\n"], "outputs": ["2\n"]})},
  ]


def codecontests_rows(rng):
  arrays = [[rng.randint(-20, 20) for _ in range(rng.randint(2, 8))] for _ in range(16)]

  def io(arrs):
    outs = []
    for a in arrs:
      s = sorted(a)
      outs.append(f"{max(s[0] * s[1], s[-1] * s[-2])}\n")
    return {"input": [f"{len(a)}\n{' '.join(map(str, a))}\n" for a in arrs], "output": outs}

  return [{"name": "cc-max-pair-product", "description": "Given n integers, print the largest "
           "product of two of them taken at different positions.",
           "public_tests": io(arrays[:2]), "private_tests": io(arrays[2:6]),
           "generated_tests": io(arrays[6:]),
           "solutions": {"language": [1, 3], "solution": ["print 0", MAX_PAIR]},
           "incorrect_solutions": {"language": [3, 3], "solution": MAX_PAIR_WRONG},
           "cf_rating": 1400, "time_limit": {"seconds": 2, "nanos": 0},
           "memory_limit_bytes": 268435456, "date": DATE}]


def main():
  rng = random.Random(7)
  files = {"native.jsonl": native_rows(rng), "taco.jsonl": taco_rows(),
           "codecontests.jsonl": codecontests_rows(rng)}
  for name, rows in files.items():
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
      for r in rows:
        f.write(json.dumps(r) + "\n")
      if name == "native.jsonl":
        f.write('{"id": "truncated-row", "question": "Print 1.", "tests": [\n')
  ratings = {"linear-9-0": 1.0, "linear-7-7": 1.5, "linear-8-3": 1.0, "primes-count": 6.0,
             "lis-length": 7.5, "divisors-any-order": 5.0, "ratio-float": 4.0,
             "split-sum-checker": 3.5, "taco-sum-list": 3.0, "taco-sum-even": 2.5,
             "cc-max-pair-product": 6.5}
  with open(os.path.join(HERE, "ratings.jsonl"), "w", encoding="utf-8") as f:
    for pid, score in ratings.items():
      f.write(json.dumps({"id": pid, "rating": score}) + "\n")


if __name__ == "__main__":
  main()
