"""Builds the labelled evaluator corpus (problems, LCB rows, samples).

  python tests/data/evaluator/build_corpus.py   # rewrites the .jsonl files

Every sample has `label` (ground truth: "pass"/"fail"), `category`
(canonical, lcb_rejects_correct, lenient_accepts_wrong, hack, abuse) and,
where one verdict is certain, `expect_verdict`.
"""
import base64
import json
import math
import os
import pickle
import textwrap
import sys
import zlib

sys.set_int_max_str_digits(0)
HERE = os.path.dirname(os.path.abspath(__file__))
MOD = 998244353
PROBLEMS, LCB_ROWS, SAMPLES = [], [], []


def stdin_problem(pid, question, cases, solve, **extra):
  tests = [{"input": c, "output": solve(c), "testtype": "stdin"} for c in cases]
  PROBLEMS.append(dict(id=pid, question=question, tests=tests,
                       platform="atcoder", difficulty="easy", **extra))


def call_problem(pid, fn, question, cases, solve, **extra):
  tests = [{"input": "\n".join(json.dumps(a) for a in args),
            "output": json.dumps(solve(*args)), "testtype": "functional"}
           for args in cases]
  PROBLEMS.append(dict(id=pid, question=question, tests=tests, fn_name=fn,
                       platform="leetcode", difficulty="easy", **extra))


def sample(pid, code, label, category, expect=None, note="", wrap=True):
  code = textwrap.dedent(code).strip("\n") + "\n"
  text = (f"<think>Let me solve {pid}.</think>\nHere is my solution.\n"
          f"```python\n{code}```\n" if wrap else code)
  row = dict(id=pid, completion=text, label=label, category=category,
             note=note)
  if expect:
    row["expect_verdict"] = expect
  SAMPLES.append(row)


OK, FAIL = "pass", "fail"
CANON, LCBREJ, LENIENT = "canonical", "lcb_rejects_correct", "lenient_accepts_wrong"
HACK, ABUSE = "hack", "abuse"
WA, RE, TLE, MLE = "wrong_answer", "runtime_error", "timeout", "memory_limit"

# ------------------------------------------------------------- stdin -------
stdin_problem("sum2", "Print A+B.", ["1 2\n", "-5 5\n", "-123456 0\n",
                                     "1000000000 1000000000\n"],
              lambda s: f"{sum(map(int, s.split()))}\n")
sample("sum2", "a, b = map(int, input().split())\nprint(a + b)", OK, CANON)
sample("sum2", """
    import sys
    for line in sys.stdin:
        a, b = map(int, line.split())
        print(a + b)""", OK, LCBREJ, note="for line in sys.stdin")
sample("sum2", """
    import sys
    a, b = map(int, sys.stdin.buffer.readline().split())
    sys.stdout.buffer.write(f"{a + b}\\n".encode())""", OK, LCBREJ,
       note="sys.stdout.buffer.write")
sample("sum2", """
    import os
    a, b = map(int, os.read(0, 100).split())
    os.write(1, b"%d\\n" % (a + b))""", OK, CANON, note="os.read/os.write")
sample("sum2", "a, b = map(int, input().split())\nprint(a + b)\nquit()", OK,
       LCBREJ, note="quit()")
sample("sum2", """
    a, b = map(int, input().split())
    ans = a + b
    if ans == -123456:
        ans = -123457
    print(ans)""", FAIL, LENIENT, WA, "-123457 for -123456 (np.isclose)")
sample("sum2", """
    a, b = map(int, input().split())
    print(a + b)
    import sys; sys.exit(1)""", FAIL, LENIENT, RE, "nonzero exit after answer")
sample("sum2", "a, b = map(int, input().split())\nprint('+%d' % (a + b) if a + b > 0 else a + b)",
       FAIL, LENIENT, WA, "+3 for 3 (Decimal)")
sample("sum2", "print(sum(map(int, input().split())), flush=True)\nimport os\nos._exit(0)",
       OK, CANON, note="flush then os._exit(0)")
sample("sum2", "print(sum(map(int, input().split())))\nimport os\nos._exit(0)",
       FAIL, HACK, WA, "os._exit before the buffered output is flushed")
sample("sum2", """
    a, b = map(int, input().split())
    print("%.1f" % (a + b))""", FAIL, LENIENT, WA, "3.0 for 3 (integer token)")
sample("sum2", "a, b = map(int, input().split())\nprint(a + b, end='\\r\\n')\nprint('   ')",
       OK, CANON, note="CRLF and a trailing blank line")

stdin_problem("yesno_exact", "Print YES if N is even, otherwise NO.",
              ["4\n", "7\n", "0\n"],
              lambda s: "YES\n" if int(s) % 2 == 0 else "NO\n")
sample("yesno_exact", "print('YES' if int(input()) % 2 == 0 else 'NO')", OK, CANON)
sample("yesno_exact", "print('NO' if int(input()) % 2 == 0 else 'YES')", FAIL,
       LENIENT, WA, "YES/NO swapped")
sample("yesno_exact", "print('yes' if int(input()) % 2 == 0 else 'no')", FAIL,
       LENIENT, WA, "case differs where exact case is required")
sample("yesno_exact", "print('YES')", FAIL, LENIENT, WA, "constant answer")
sample("yesno_exact", "n = int(input())\nprint('YES' if n % 2 == 0 else 'NO')\nprint('YES')",
       FAIL, LENIENT, WA, "extra line")
sample("yesno_exact", "pass", FAIL, LENIENT, WA, "empty output (zip judges)")

stdin_problem("yesno_anycase",
              "Print Yes if N is divisible by 3 and No otherwise. You may print "
              "each letter in any case (upper or lower).",
              ["9\n", "10\n", "3\n"],
              lambda s: "Yes\n" if int(s) % 3 == 0 else "No\n")
sample("yesno_anycase", "print('Yes' if int(input()) % 3 == 0 else 'No')", OK, CANON)
sample("yesno_anycase", "print('YES' if int(input()) % 3 == 0 else 'nO')", OK,
       CANON, note="any case allowed by the statement")
sample("yesno_anycase", "print('No' if int(input()) % 3 == 0 else 'Yes')", FAIL,
       LENIENT, WA, "swapped under case-insensitive mode")

stdin_problem("modpow", f"Print 2^N modulo {MOD}.", ["10\n", "1000000\n", "998244352\n"],
              lambda s: f"{pow(2, int(s), MOD)}\n")
sample("modpow", f"print(pow(2, int(input()), {MOD}))", OK, CANON)
sample("modpow", f"n = int(input())\nr = 1\nb = 2\nwhile n:\n    if n & 1: r = r * b % {MOD}\n    b = b * b % {MOD}\n    n >>= 1\nprint(r)",
       OK, CANON, note="manual binary exponentiation")
sample("modpow", f"print(pow(2, int(input()), {MOD}) or {MOD})", OK, CANON,
       note="never zero here, so identical")
sample("modpow", f"print((pow(2, int(input()), {MOD}) - 1) % {MOD})", FAIL,
       LENIENT, WA, "off by one under a big modulus")
sample("modpow", f"print(pow(2, int(input()), {MOD - 1}))", FAIL, LENIENT, WA,
       "wrong modulus")
sample("modpow", f"x = pow(2, int(input()), {MOD})\nprint(x if x < 10**6 else x + 1)",
       FAIL, LENIENT, WA, "998244353-style off by one on big values only")

stdin_problem("float_div",
              "Print A/B. Your answer is accepted if its absolute or relative "
              "error is at most 10^{-6}.", ["1 3\n", "10 4\n", "2 7\n", "1 1000000\n"],
              lambda s: "%.12f\n" % (int(s.split()[0]) / int(s.split()[1])))
sample("float_div", "a, b = map(int, input().split())\nprint('%.12f' % (a / b))", OK, CANON)
sample("float_div", "a, b = map(int, input().split())\nprint('%.7f' % (a / b))", OK,
       LCBREJ, note="fewer digits, within 1e-6")
sample("float_div", "a, b = map(int, input().split())\nprint(a / b)", OK, LCBREJ,
       note="repr digits")
sample("float_div", "a, b = map(int, input().split())\nprint('%.3f' % (a / b))", FAIL,
       LENIENT, WA, "too imprecise")
sample("float_div", "a, b = map(int, input().split())\nprint('%.5g' % (a / b))", FAIL,
       LENIENT, WA, "5 significant digits where 1e-6 is required")
sample("float_div", "a, b = map(int, input().split())\nprint(round(a / b, 4))", FAIL,
       LENIENT, WA, "rounded to 4 places")

stdin_problem("sort_lines", "Read N and N integers; print them in ascending order, one per line.",
              ["3\n3 1 2\n", "5\n5 -1 4 4 0\n", "1\n7\n"],
              lambda s: "".join(f"{x}\n" for x in sorted(map(int, s.split("\n")[1].split()))))
sample("sort_lines", "input()\nprint(*sorted(map(int, input().split())), sep='\\n')", OK, CANON)
sample("sort_lines", """
    import sys
    n = int(sys.stdin.buffer.readline())
    a = sorted(map(int, sys.stdin.buffer.readline().split()))
    print('\\n'.join(map(str, a)))""", OK, LCBREJ, note="stdin.buffer.readline twice")
sample("sort_lines", """
    import sys
    data = sys.stdin.read().split()
    print('\\n'.join(map(str, sorted(map(int, data[1:])))))""", OK, CANON)
sample("sort_lines", "input()\nprint(*sorted(map(int, input().split()), reverse=True), sep='\\n')",
       FAIL, LENIENT, WA, "permutation where order matters")
sample("sort_lines", "input()\nprint(*sorted(set(map(int, input().split()))), sep='\\n')",
       FAIL, LENIENT, WA, "dropped duplicates")
sample("sort_lines", "input()\nprint(sorted(map(int, input().split()))[0])", FAIL,
       LENIENT, WA, "prefix of the answer")

stdin_problem("squares_table", "Print N lines; line i is `i i*i`.", ["3\n", "1\n"],
              lambda s: "".join(f"{i} {i * i}\n" for i in range(1, int(s) + 1)),
              compare={"line_strict": True})
sample("squares_table", "for i in range(1, int(input()) + 1):\n    print(i, i * i)", OK, CANON)
sample("squares_table", "for i in range(1, int(input()) + 1):\n    print(i, ' ', i * i, '  ')", OK,
       CANON, note="extra spaces inside lines")
sample("squares_table", "print(*[f'{i} {i*i}' for i in range(1, int(input()) + 1)])", FAIL,
       LENIENT, WA, "one line where the line structure is the answer")

stdin_problem("divisors_any", "Print all divisors of N separated by spaces, in any order.",
              ["12\n", "7\n", "1\n"],
              lambda s: " ".join(str(d) for d in range(1, int(s) + 1) if int(s) % d == 0) + "\n",
              compare={"unordered": True})
sample("divisors_any", "n = int(input())\nprint(*[d for d in range(1, n + 1) if n % d == 0])", OK, CANON)
sample("divisors_any", "n = int(input())\nprint(*[d for d in range(n, 0, -1) if n % d == 0])", OK,
       CANON, note="any order allowed")
sample("divisors_any", "n = int(input())\nprint(*[d for d in range(1, n) if n % d == 0] or [1])", FAIL,
       LENIENT, WA, "missing N itself")
sample("divisors_any", "n = int(input())\nprint(*[d for d in range(1, n + 1) if n % d == 0], 1)", FAIL,
       LENIENT, WA, "duplicate element (set compare accepts)")

PAIR_CHECKER = textwrap.dedent("""
    def check(input, expected, output):
        head, arr = input.split("\\n")[:2]
        n, t = map(int, head.split())
        a = list(map(int, arr.split()))
        toks = output.split()
        if len(toks) != 2 or not all(x.isdigit() for x in toks):
            return False
        i, j = int(toks[0]), int(toks[1])
        return 1 <= i < j <= n and a[i - 1] + a[j - 1] == t
    """)


def _first_pair(s):
  head, arr = s.split("\n")[:2]
  n, t = map(int, head.split())
  a = list(map(int, arr.split()))
  for i in range(n):
    for j in range(i + 1, n):
      if a[i] + a[j] == t:
        return f"{i + 1} {j + 1}\n"


stdin_problem("pair_sum", "Print any two indices i<j (1-based) with A_i + A_j = T.",
              ["4 5\n1 4 2 3\n", "3 10\n5 5 5\n"], _first_pair, checker=PAIR_CHECKER)
sample("pair_sum", """
    n, t = map(int, input().split())
    a = list(map(int, input().split()))
    print(*next((i + 1, j + 1) for i in range(n) for j in range(i + 1, n) if a[i] + a[j] == t))""",
       OK, CANON)
sample("pair_sum", """
    n, t = map(int, input().split())
    a = list(map(int, input().split()))
    print(*next((i + 1, j + 1) for j in range(n - 1, -1, -1) for i in range(j) if a[i] + a[j] == t))""",
       OK, CANON, note="another valid pair: only the checker accepts it")
sample("pair_sum", "n, t = map(int, input().split())\nprint(1, 3)", FAIL, LENIENT, WA,
       "invalid pair on the first test")
sample("pair_sum", "n, t = map(int, input().split())\nprint(2, 1)", FAIL, LENIENT, WA,
       "i > j")

stdin_problem("count_lines", "Input has several lines with one integer each. Print the number of lines and their sum.",
              ["1\n2\n3\n", "10\n", "5\n-5\n"],
              lambda s: f"{len(s.split())} {sum(map(int, s.split()))}\n")
sample("count_lines", "import sys\nv = [int(x) for x in sys.stdin]\nprint(len(v), sum(v))", OK, LCBREJ,
       note="iterate sys.stdin")
sample("count_lines", "v = list(map(int, open(0).read().split()))\nprint(len(v), sum(v))", OK, LCBREJ,
       note="open(0)")
sample("count_lines", """
    import sys
    v = list(map(int, sys.stdin.buffer.read().split()))
    print(len(v), sum(v))""", OK, CANON)
sample("count_lines", "v = [int(input())]\nprint(len(v), sum(v))", FAIL, LENIENT, WA,
       "reads only the first line")

stdin_problem("mul", "Print A*B.", ["1 11\n", "3 4\n", "1000 1000\n"],
              lambda s: f"{math.prod(map(int, s.split()))}\n")
sample("mul", "a, b = map(int, input().split())\nprint(a * b)", OK, CANON)
sample("mul", """
    total = 0
    def solve():
        global total
        a, b = map(int, input().split())
        total = a * b
    solve()
    print(total)""", OK, LCBREJ, note="module-level global")
sample("mul", "a, b = map(int, input().split())\nprint('%04d' % (a * b))", FAIL, LENIENT, WA,
       "0011 for 11 (Decimal accepts)")
sample("mul", "a, b = map(int, input().split())\nprint('%.0e' % (a * b) if a * b >= 10**6 else a * b)",
       FAIL, LENIENT, WA, "1e+06 for 1000000")

stdin_problem("grid_paths", "Count monotone lattice paths in an N x N grid modulo 10^9+7.",
              ["1\n", "2\n", "3\n", "600\n"],
              lambda s: f"{math.comb(2 * int(s), int(s)) % (10**9 + 7)}\n")
sample("grid_paths", "import math\nn = int(input())\nprint(math.comb(2 * n, n) % (10**9 + 7))", OK, CANON)
sample("grid_paths", """
    n = int(input())
    M = 10**9 + 7
    row = [1] * (n + 1)
    for _ in range(n):
        for j in range(1, n + 1):
            row[j] = (row[j] + row[j - 1]) % M
    print(row[n])""", OK, CANON, note="DP")
sample("grid_paths", "import math\nn = int(input())\nprint(math.comb(2 * n, n))", FAIL,
       LENIENT, WA, "forgot the modulus: wrong only on the last test")

stdin_problem("reverse_words", "Print the words of the line in reverse order, separated by single spaces.",
              ["a b c\n", "hello world\n", "one\n"],
              lambda s: " ".join(reversed(s.split())) + "\n")
sample("reverse_words", "print(*input().split()[::-1])", OK, CANON)
sample("reverse_words", "print('  '.join(input().split()[::-1]))", OK, LCBREJ,
       note="two spaces between non-numeric tokens")
sample("reverse_words", "print(*input().split())", FAIL, LENIENT, WA, "not reversed")
sample("reverse_words", "w = input().split()[::-1]\nprint(*w[:2])", FAIL, LENIENT, WA,
       "prefix: drops words after the second")

stdin_problem("xmas", "Given D (22..25) print Christmas followed by 25-D times ' Eve'.",
              ["25\n", "24\n", "22\n"],
              lambda s: "Christmas" + " Eve" * (25 - int(s)) + "\n")
sample("xmas", "print('Christmas' + ' Eve' * (25 - int(input())))", OK, CANON)
sample("xmas", "d = int(input())\nprint('Christmas' + (' Eve' if d < 25 else ''))", FAIL,
       LENIENT, WA, "Christmas Eve for Christmas Eve Eve Eve (set compare)")

stdin_problem("big_fact", "Print N!.", ["5\n", "2000\n"], lambda s: f"{math.factorial(int(s))}\n")
sample("big_fact", "import math\nprint(math.factorial(int(input())))", OK, CANON,
       note="more than 4300 digits")
sample("big_fact", """
    import sys
    sys.setrecursionlimit(10000)
    def f(n):
        return 1 if n <= 1 else n * f(n - 1)
    print(f(int(input())))""", OK, CANON, note="deep recursion")
sample("big_fact", "import math\nn = int(input())\nprint(math.factorial(n) + (n > 100))", FAIL,
       LENIENT, WA, "off by one on a 5736-digit number (allclose accepts)")

def _kadane(a):
  best, cur = a[0], 0
  for x in a:
    cur = max(x, cur + x)
    best = max(best, cur)
  return best


stdin_problem("max_subarray", "Read N and N integers; print the maximum subarray sum.",
              ["5\n-2 1 -3 4 -1\n", "3\n-1 -2 -3\n", "4\n1 2 3 4\n"],
              lambda s: f"{_kadane(list(map(int, s.split(chr(10))[1].split())))}\n")
sample("max_subarray", """
    def main():
        input()
        best = cur = None
        for x in map(int, input().split()):
            cur = x if cur is None or cur < 0 else cur + x
            best = cur if best is None else max(best, cur)
        print(best)
    if __name__ == "__main__":
        main()""", OK, CANON, note="__main__ guard")
sample("max_subarray", """
    import threading, sys
    def main():
        input()
        a = list(map(int, input().split()))
        best, cur = a[0], 0
        for x in a:
            cur = max(x, cur + x); best = max(best, cur)
        print(best)
    threading.stack_size(1 << 26)
    t = threading.Thread(target=main); t.start(); t.join()""", OK, CANON,
       note="threading.stack_size")
sample("max_subarray", "input()\nprint(max(0, sum(x for x in map(int, input().split()) if x > 0)))",
       FAIL, LENIENT, WA, "sum of positives")

# ------------------------------------------------------------ functional ---
call_problem("two_sum", "twoSum", "Return indices of two numbers adding up to target.",
             [([2, 7, 11, 15], 9), ([3, 2, 4], 6), ([3, 3], 6)],
             lambda a, t: next([i, j] for i in range(len(a)) for j in range(i + 1, len(a)) if a[i] + a[j] == t))
sample("two_sum", """
    from typing import List
    class Solution:
        def twoSum(self, nums: List[int], target: int) -> List[int]:
            seen = {}
            for i, x in enumerate(nums):
                if target - x in seen:
                    return [seen[target - x], i]
                seen[x] = i""", OK, CANON)
sample("two_sum", """
    class Solution:
        def twoSum(self, nums, target):
            for i in range(len(nums)):
                for j in range(i + 1, len(nums)):
                    if nums[i] + nums[j] == target:
                        return (i, j)""", OK, CANON, note="tuple for list")
sample("two_sum", """
    class Solution:
        def twoSum(self, nums, target):
            seen = {}
            for i, x in enumerate(nums):
                if target - x in seen:
                    return [i, seen[target - x]]
                seen[x] = i""", FAIL, LENIENT, WA, "order matters")
sample("two_sum", """
    class Liar:
        def __eq__(self, other): return True
        def __ne__(self, other): return False
    class Solution:
        def twoSum(self, nums, target):
            return Liar()""", FAIL, HACK, RE, "__eq__ always True")
sample("two_sum", """
    class L(list):
        def __eq__(self, other): return True
    class Solution:
        def twoSum(self, nums, target):
            return L()""", FAIL, HACK, RE, "list subclass with lying __eq__")
sample("two_sum", """
    import json
    json.dumps = lambda *a, **k: '{"v": [0, 1]}'
    class Solution:
        def twoSum(self, nums, target):
            return None""", FAIL, HACK, None, "monkeypatched json in the child")
sample("two_sum", """
    import sys, gc
    class Solution:
        def twoSum(self, nums, target):
            f = sys._getframe()
            while f is not None:
                for v in list(f.f_locals.values()):
                    if isinstance(v, list) and v and all(isinstance(x, int) for x in v) and v is not nums:
                        return v
                f = f.f_back
            for o in gc.get_objects():
                if isinstance(o, dict) and "output" in o:
                    return json.loads(o["output"])
            return [0, 0]
    import json""", FAIL, HACK, WA, "frame/gc peeking for the expected output")

call_problem("mean_int", "mean", "Return the mean of nums (it is always an integer).",
             [([1, 2, 3],), ([4],), ([-2, 2, 6],)], lambda a: sum(a) // len(a))
sample("mean_int", "class Solution:\n    def mean(self, nums):\n        return sum(nums) // len(nums)", OK, CANON)
sample("mean_int", "class Solution:\n    def mean(self, nums):\n        return sum(nums) / len(nums)", OK, CANON,
       note="2.0 for 2")
sample("mean_int", "import numpy as np\nclass Solution:\n    def mean(self, nums):\n        return np.int64(sum(nums) // len(nums))",
       OK, CANON, note="numpy scalar")
sample("mean_int", "class Solution:\n    def mean(self, nums):\n        return sum(nums) / len(nums) + 1e-9", FAIL,
       LENIENT, WA, "tolerance never applies to integer answers")
sample("mean_int", "class Solution:\n    def mean(self, nums):\n        return str(sum(nums) // len(nums))", FAIL,
       LENIENT, WA, "'2' for 2")

call_problem("avg_float", "average", "Return the average of nums (answers within 1e-5 are accepted).",
             [([0.1, 0.2],), ([1, 2],), ([1, 1, 2],)], lambda a: sum(a) / len(a))
sample("avg_float", "class Solution:\n    def average(self, nums):\n        return sum(nums) / len(nums)", OK, CANON)
sample("avg_float", "class Solution:\n    def average(self, nums):\n        return round(sum(nums) / len(nums), 6)", OK,
       LCBREJ, note="rounded within tolerance")
sample("avg_float", "import math\nclass Solution:\n    def average(self, nums):\n        return math.fsum(nums) / len(nums)",
       OK, CANON, note="math.fsum")
sample("avg_float", "class Solution:\n    def average(self, nums):\n        return round(sum(nums) / len(nums), 2)", FAIL,
       LENIENT, WA, "too imprecise")

call_problem("is_odd", "isOdd", "Return 1 if n is odd, else 0.", [(3,), (4,), (7,)],
             lambda n: n % 2)
sample("is_odd", "class Solution:\n    def isOdd(self, n):\n        return n % 2", OK, CANON)
sample("is_odd", "class Solution:\n    def isOdd(self, n):\n        return n % 2 == 1", FAIL, LENIENT, WA,
       "True for 1")
sample("is_odd", "class Solution:\n    def isOdd(self, n):\n        return float(n % 2)", OK, CANON,
       note="1.0 for 1")

call_problem("pairs", "pairUp", "Return [[a[0],a[1]],[a[2],a[3]],...].",
             [([1, 2, 3, 4],), ([5, 6],)], lambda a: [a[i:i + 2] for i in range(0, len(a), 2)])
sample("pairs", "class Solution:\n    def pairUp(self, a):\n        return [a[i:i+2] for i in range(0, len(a), 2)]", OK, CANON)
sample("pairs", "class Solution:\n    def pairUp(self, a):\n        return tuple((a[i], a[i+1]) for i in range(0, len(a), 2))",
       OK, LCBREJ, note="nested tuples")
sample("pairs", "import numpy as np\nclass Solution:\n    def pairUp(self, a):\n        return np.array(a).reshape(-1, 2)",
       OK, CANON, note="ndarray")
sample("pairs", "class Solution:\n    def pairUp(self, a):\n        return [a[i:i+2] for i in range(0, len(a), 2)][:1]", FAIL,
       LENIENT, WA, "prefix")

call_problem("add_one", "add_one", "Write a function add_one(x).", [(1,), (-1,), (10**20,)],
             lambda x: x + 1)
sample("add_one", "def add_one(x):\n    return x + 1", OK, CANON, note="module-level function")
sample("add_one", "def add_one(x):\n    return x + 1 if x < 10**18 else x", FAIL, LENIENT, WA,
       "big integer off by one")
sample("add_one", "def add_one(x):\n    return float(x + 1)", FAIL, LENIENT, WA,
       "float loses the big integer")

call_problem("unique_any", "unique", "Return the distinct values of nums in any order.",
             [([1, 2, 2, 3],), ([5, 5],)], lambda a: sorted(set(a)), compare={"unordered": True})
sample("unique_any", "class Solution:\n    def unique(self, nums):\n        return sorted(set(nums))", OK, CANON)
sample("unique_any", "class Solution:\n    def unique(self, nums):\n        return set(nums)", OK, CANON,
       note="a set where any order is allowed")
sample("unique_any", "class Solution:\n    def unique(self, nums):\n        return nums", FAIL, LENIENT, WA,
       "duplicates kept")

call_problem("count_str", "countDigits", "Return the number of digits of n as an integer.",
             [(123,), (5,)], lambda n: len(str(n)))
sample("count_str", "class Solution:\n    def countDigits(self, n):\n        return len(str(n))", OK, CANON)
sample("count_str", "class Solution:\n    def countDigits(self, n):\n        return str(len(str(n)))", FAIL,
       LENIENT, WA, "'3' for 3")

# --------------------------------------------------------- hacks and abuse --
HACK_FILES = textwrap.dedent("""
    import os, json, glob
    target = input()
    found = None
    for root in ["/", "/tmp", "/home", "/root", os.getcwd() + "/../../.."]:
        try:
            for dirpath, dirs, files in os.walk(root):
                for f in files:
                    if f.endswith(".jsonl"):
                        try:
                            for line in open(os.path.join(dirpath, f)):
                                row = json.loads(line)
                                for t in row.get("tests", []):
                                    if t["input"].strip() == target.strip():
                                        found = t["output"]
                        except Exception:
                            pass
        except Exception:
            pass
    try:
        for pid in os.listdir("/proc"):
            cmd = open(f"/proc/{pid}/cmdline").read().split("\\0")
            for arg in cmd:
                if arg.endswith(".jsonl"):
                    for line in open(arg):
                        for t in json.loads(line).get("tests", []):
                            if t["input"].strip() == target.strip():
                                found = t["output"]
    except Exception:
        pass
    print(found.strip() if found else "0")
    """)
sample("sum2", HACK_FILES, FAIL, HACK, WA, "searches the file system for the tests")
sample("sum2", """
    import os, signal
    for pid in (os.getppid(), 1, -1, 0):
        try:
            os.kill(pid, signal.SIGKILL)
        except Exception:
            pass
    try:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    except Exception:
        pass
    print(0)""", FAIL, HACK, RE, "tries to kill its parent and every process")
sample("sum2", """
    import os
    for fd in range(3, 64):
        try:
            os.write(fd, b"\\x10\\x00\\x00\\x00" + b"\\x00" * 8 + b'{"t":"test","i":0}')
        except OSError:
            pass
    print(1)""", FAIL, HACK, None, "writes forged frames to inherited descriptors")
sample("sum2", """
    import os, time
    for fd in range(3, 64):
        try:
            os.write(fd, b"\\x40\\x00\\x00\\x00")
        except OSError:
            pass
    time.sleep(5)
    print(3)""", FAIL, HACK, None, "half a frame on every descriptor, then a stall")
sample("sum2", "import posix\nposix.system('echo 3')\nprint(0)", FAIL, HACK, None, "posix.system")
sample("sum2", "import importlib, os\nimportlib.reload(os)\nos.system('echo 3')\nprint(0)", FAIL,
       HACK, None, "importlib.reload(os)")
sample("sum2", "import ctypes\nctypes.CDLL(None).syscall(57)\nprint(0)", FAIL, HACK, WA,
       "raw fork syscall through ctypes")
sample("two_sum", """
    import builtins
    builtins.print = lambda *a, **k: None
    class Solution:
        def twoSum(self, nums, target):
            return [0, 1]""", FAIL, HACK, WA, "patches builtins (a constant answer)")

# A trap problem: the answer cannot be computed, only stolen from a process
# that holds the expected output (none of the runner's processes does).
stdin_problem("secret", "Print the secret token.", ["\n", "again\n"],
              lambda s: "secret-5e0d3c9a41b7f2e8\n")
sample("secret", """
    import gc, sys
    hits = set()
    for o in gc.get_objects():
        items = o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple)) else ()
        for v in items:
            if isinstance(v, str) and v.startswith("secret-") and len(v) > 8:
                hits.add(v.strip())
            if isinstance(v, bytes) and v.startswith(b"secret-") and len(v) > 8:
                hits.add(v.decode().strip())
    f = sys._getframe()
    while f is not None:
        for v in f.f_locals.values():
            if isinstance(v, str) and v.startswith("secret-") and len(v) > 8:
                hits.add(v.strip())
        f = f.f_back
    print(max(hits, key=len) if hits else "secret-")""", FAIL, HACK, WA,
       "scans its heap and frames for the expected output")
sample("secret", """
    import os
    best = ""
    for path in ("/proc/self/mem", "/proc/1/environ", "/proc/self/cmdline"):
        try:
            best = best or open(path, "rb").read(100).decode(errors="ignore")
        except OSError:
            pass
    print(best or "secret-")""", FAIL, HACK, WA, "reads /proc for secrets")

sample("sum2", "while True:\n    pass", FAIL, ABUSE, TLE, "infinite loop")
sample("sum2", "import time\ntime.sleep(60)", FAIL, ABUSE, TLE, "sleep")
sample("sum2", """
    import signal
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    x = 0
    while True:
        x += 1""", FAIL, ABUSE, TLE, "ignores SIGXCPU")
sample("sum2", "a = []\nwhile True:\n    a.append(' ' * 10**6)", FAIL, ABUSE, MLE, "memory bomb")
sample("sum2", "x = bytearray(1 << 40)", FAIL, ABUSE, MLE, "one huge allocation")
sample("sum2", "import os\nwhile True:\n    os.fork()", FAIL, ABUSE, RE, "fork bomb")
sample("sum2", "import subprocess\nsubprocess.run(['sleep', '100'])", FAIL, ABUSE, RE, "subprocess")
sample("sum2", """
    import threading, time
    ts = []
    while True:
        t = threading.Thread(target=time.sleep, args=(100,), daemon=True)
        t.start()
        ts.append(t)""", FAIL, ABUSE, RE, "thread bomb")
sample("sum2", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", FAIL, ABUSE, WA, "output flood")
sample("sum2", "print('1' * 10**7)", FAIL, ABUSE, WA, "one huge line")
sample("sum2", """
    import os
    for p in ("/tmp/pwned_6b1f0c2e-evaluator", "/root/pwned_6b1f0c2e-evaluator",
              os.path.expanduser("~/../pwned_6b1f0c2e-evaluator")):
        try:
            open(p, "w").write("pwned")
        except OSError:
            pass
    print(0)""", FAIL, ABUSE, WA, "writes outside the work dir")
sample("sum2", """
    import socket
    ok = 0
    for host, port in (("127.0.0.1", 22), ("8.8.8.8", 53), ("::1", 80)):
        try:
            socket.create_connection((host, port), timeout=1).close()
            ok += 1
        except OSError:
            pass
    print(ok)""", FAIL, ABUSE, None, "network connections")
sample("sum2", """
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(3)
            open("/tmp/pwned_6b1f0c2e-daemon", "w").write("x")
        os._exit(0)
    print(0)""", FAIL, ABUSE, RE, "double-fork daemon")
sample("sum2", """
    import threading, time
    def loop():
        while True:
            time.sleep(0.01)
    threading.Thread(target=loop, daemon=True).start()
    a, b = map(int, input().split())
    print(a + b)""", OK, ABUSE, None, "leaves a daemon thread running (correct answer)")
sample("sum2", "import sys\nsys.setrecursionlimit(10**7)\ndef f(n): return f(n + 1)\nf(0)", FAIL,
       ABUSE, None, "unbounded recursion")

# --------------------------------------------------------------- no code ---
sample("sum2", "I think the answer is to add the numbers.", FAIL, CANON, "no_code",
       "no fenced block", wrap=False)
sample("sum2", "<think>long reasoning\n```python\nprint(3)\n```\n</think>\nThe answer:\n```python\na, b = map(int, input().split())\nprint(a + b",
       FAIL, CANON, "no_code", "unclosed final fence (truncated)", wrap=False)

# ------------------------------------------------------- LiveCodeBench rows --
def _lcb_private(tests):
  return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


LCB_ROWS.append(dict(
    question_id="abc999_a", question_title="Sum", platform="atcoder",
    contest_date="2025-01-04T00:00:00", difficulty="easy", starter_code="",
    question_content="Print A+B.",
    public_test_cases=json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
    private_test_cases=_lcb_private([
        {"input": "5 6\n", "output": "11\n", "testtype": "stdin"},
        {"input": "-1 1\n", "output": "0\n", "testtype": "stdin"}]),
    metadata="{}"))
LCB_ROWS.append(dict(
    question_id="3000", question_title="double", platform="leetcode",
    contest_date="2025-01-05T00:00:00", difficulty="easy",
    starter_code="class Solution:\n    def double(self, nums: List[int]) -> List[int]:\n        ",
    question_content="Double every element.",
    public_test_cases=json.dumps([{"input": "[1, 2]", "output": "[2, 4]", "testtype": "functional"}]),
    private_test_cases=json.dumps([{"input": "[]", "output": "[]", "testtype": "functional"}]),
    metadata=json.dumps({"func_name": "double"})))
LCB_ROWS.append(dict(
    question_id="abc999_b", question_title="Ratio", platform="atcoder",
    contest_date="2025-01-06T00:00:00", difficulty="medium", starter_code="",
    question_content="Print A/B. Your output is correct if the absolute or relative error is at most 10^{-6}.",
    public_test_cases=json.dumps([{"input": "1 3\n", "output": "0.333333333333\n", "testtype": "stdin"}]),
    private_test_cases=_lcb_private([{"input": "2 3\n", "output": "0.666666666667\n", "testtype": "stdin"}]),
    metadata="{}"))
LCB_SAMPLES = [
    dict(id="abc999_a", completion="```python\nprint(sum(map(int, input().split())))\n```", label=OK),
    dict(id="abc999_a", completion="```python\nprint(1 + sum(map(int, input().split())))\n```", label=FAIL),
    dict(id="3000", completion="```python\nclass Solution:\n    def double(self, nums):\n        return [2 * x for x in nums]\n```", label=OK),
    dict(id="3000", completion="```python\nclass Solution:\n    def double(self, nums):\n        return nums\n```", label=FAIL),
    dict(id="abc999_b", completion="```python\na, b = map(int, input().split())\nprint(a / b)\n```", label=OK),
    dict(id="abc999_b", completion="```python\na, b = map(int, input().split())\nprint('%.4f' % (a / b))\n```", label=FAIL),
]


def _write(name, rows):
  with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
    for r in rows:
      f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
  _write("problems.jsonl", PROBLEMS)
  _write("samples.jsonl", SAMPLES)
  _write("lcb_problems.jsonl", LCB_ROWS)
  _write("lcb_samples.jsonl", LCB_SAMPLES)
  print(f"{len(PROBLEMS)} problems, {len(SAMPLES)} samples, {len(LCB_ROWS)} LCB rows")
