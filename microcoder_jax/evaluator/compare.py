"""Output comparison on plain data: the microcoder cascade and LCB parity.

Everything here runs in the orchestrator on bytes and JSON values produced
by the sandbox; no user code or user objects ever reach these functions.
"""
import collections
import decimal
import json
import math
import re

# testlib semantics: blanks are ASCII space, tab, CR and LF only (no Unicode
# spaces, no VT/FF, no file separators) and numbers use ASCII digits only.
_BLANKS = re.compile(r"[ \t\r\n]+")
_INT = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)
_NUM = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z", re.ASCII)
_YES_NO = ("yes", "no")
SET_TAG = "\u0000set"
DEFAULT_STDIN_TOL = 1e-6
DEFAULT_CALL_TOL = 1e-5


def _tokens(text: str) -> list:
  """Whitespace-separated tokens, ASCII blanks only (str.split would also
  split on U+2003, U+3000, VT, 0x1c ...)."""
  return [t for t in _BLANKS.split(text) if t]


def _lines(text: str) -> list:
  """S2: CRLF/CR -> LF, strip trailing ASCII blanks, drop trailing blank lines."""
  lines = [l.rstrip(" \t") for l in
           text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
  while lines and not lines[-1]:
    lines.pop()
  return lines


def _token_eq(got: str, exp: str, tol, case_insensitive: bool) -> bool:
  """S4/S5 on one token pair; integer-looking expected tokens stay exact."""
  if got == exp:
    return True
  if case_insensitive and exp.lower() in _YES_NO:
    return got.isascii() and got.lower() == exp.lower()
  if tol is None or _INT.match(exp) or not _NUM.match(exp) or (
      not _NUM.match(got)):
    return False
  a, b = float(got), float(exp)
  if not (math.isfinite(a) and math.isfinite(b)):
    return False
  return abs(a - b) <= tol or abs(a - b) <= tol * abs(b)


def _fold(tok: str, case_insensitive: bool) -> str:
  if case_insensitive and tok.isascii() and tok.lower() in _YES_NO:
    return tok.lower()
  return tok


def stdin_tolerance(expected: str, opts: dict):
  """Float mode only from an explicit precision: `float_tol` (given, or read
  from the statement's error clause by `problems.infer_compare`)."""
  del expected
  if opts.get("float_tol") is not None:
    return float(opts["float_tol"])
  return None


def first_difference(out: bytes, expected: str, cap: int = 24) -> str:
  """A short, user-facing excerpt of the first token where `out` differs from
  `expected` (for `Result.detail`; never shown to the program)."""
  got = _tokens(out.decode("utf-8", "replace"))
  want = _tokens(expected)
  clip = lambda t: repr(t if len(t) <= cap else t[:cap] + "...")
  for k, (g, w) in enumerate(zip(got, want)):
    if g != w:
      return f"token {k + 1}: expected {clip(w)}, got {clip(g)}"
  if len(got) != len(want):
    return (f"expected {len(want)} tokens, got {len(got)}"
            + (f"; first extra {clip(got[len(want)])}" if len(got) > len(want) else ""))
  return "tokens equal; layout differs (lines or spacing)"


def judge_stdout(out: bytes, expected: str, opts: dict) -> bool:
  """The stdin cascade S1-S5 (the checker is run by the orchestrator)."""
  if out == expected.encode("utf-8", "surrogatepass"):  # S1
    return True
  try:
    got = out.decode("utf-8")
  except UnicodeDecodeError:
    return False
  got_lines, exp_lines = _lines(got), _lines(expected)
  if got_lines == exp_lines:  # S2
    return True
  ci = bool(opts.get("case_insensitive"))
  tol = stdin_tolerance(expected, opts)
  if opts.get("line_strict"):  # testlib lcmp: the line structure counts.
    if opts.get("unordered"):
      key = lambda ls: collections.Counter(
          " ".join(_fold(t, ci) for t in _tokens(l)) for l in ls)
      return key(got_lines) == key(exp_lines)
    if len(got_lines) != len(exp_lines):
      return False
    for gl, el in zip(got_lines, exp_lines):
      gt, et = _tokens(gl), _tokens(el)
      if len(gt) != len(et) or not all(
          _token_eq(g, e, tol, ci) for g, e in zip(gt, et)):
        return False
    return True
  got_toks, exp_toks = _tokens(got), _tokens(expected)
  if got_toks == exp_toks:  # S3 (testlib wcmp)
    return True
  if opts.get("unordered"):  # testlib uncmp: multiset of tokens.
    return (collections.Counter(_fold(t, ci) for t in got_toks) ==
            collections.Counter(_fold(t, ci) for t in exp_toks))
  if len(got_toks) != len(exp_toks):
    return False
  return all(_token_eq(g, e, tol, ci) for g, e in zip(got_toks, exp_toks))


# ------------------------------------------------------------ functional --
class BigInt(str):
  """An integer literal too long for int() under the digit limit."""


def _parse_int(s: str):
  return int(s) if len(s) < 4000 else BigInt(s.lstrip("+"))


def loads(text):
  return json.loads(text, parse_int=_parse_int)


def values_equal(got, exp, tol: float) -> bool:
  """C1/C2: strict structure, bool != int, str != number, float tolerance."""
  if isinstance(exp, bool) or isinstance(got, bool):
    return type(got) is bool and type(exp) is bool and got == exp
  if isinstance(exp, BigInt) or isinstance(got, BigInt):
    return type(got) is BigInt and type(exp) is BigInt and got == exp
  if isinstance(exp, str) or isinstance(got, str):
    return type(got) is str and type(exp) is str and got == exp
  if isinstance(exp, (int, float)):
    if not isinstance(got, (int, float)):
      return False
    if isinstance(exp, int):
      return got == exp  # 2.0 == 2, but 2.5 != 2 and no tolerance.
    try:
      a = float(got)
    except OverflowError:
      return False
    if math.isnan(exp) or math.isnan(a):
      return math.isnan(exp) and math.isnan(a)
    if math.isinf(exp) or math.isinf(a):
      return a == exp
    return abs(a - exp) <= tol or abs(a - exp) <= tol * abs(exp)
  if exp is None or got is None:
    return exp is None and got is None
  if isinstance(exp, list):
    return (isinstance(got, list) and len(got) == len(exp) and
            all(values_equal(g, e, tol) for g, e in zip(got, exp)))
  if isinstance(exp, dict):
    return (isinstance(got, dict) and got.keys() == exp.keys() and
            all(values_equal(got[k], exp[k], tol) for k in exp))
  return False


def _untag(x):
  if isinstance(x, list) and len(x) == 2 and x[0] == SET_TAG:
    return [_untag(v) for v in x[1]]
  if isinstance(x, list):
    return [_untag(v) for v in x]
  if isinstance(x, dict):
    return {k: _untag(v) for k, v in x.items()}
  return x


def _canon_key(x, nested: bool) -> str:
  if nested and isinstance(x, list):
    x = sorted((_canon_key(v, True) for v in x))
  return json.dumps(x, sort_keys=True)


def parse_result(result: bytes, opts: dict):
  """Returns the program's return value (C0 JSON) or raises ValueError."""
  payload = loads(result.decode("utf-8"))
  if not isinstance(payload, dict) or "v" not in payload:
    raise ValueError("no return value")
  got = payload["v"]
  if opts.get("inplace") and got is None and "a0" in payload:
    got = payload["a0"]
  return got


def judge_functional(got, expected: str, opts: dict) -> bool:
  exp = loads(expected)
  tol = float(opts.get("float_tol") or DEFAULT_CALL_TOL)
  if opts.get("unordered") or opts.get("unordered_nested"):
    got = _untag(got)
    if isinstance(got, list) and isinstance(exp, list):
      nested = bool(opts.get("unordered_nested"))
      return (collections.Counter(_canon_key(g, nested) for g in got) ==
              collections.Counter(_canon_key(e, nested) for e in exp))
  return values_equal(got, exp, tol)


# ------------------------------------------------------- LiveCodeBench parity
def _lcb_lines(text: str) -> list:
  return [l.strip() for l in text.strip().split("\n")]


def _lcb_decimals(line: str):
  try:
    return [decimal.Decimal(t) for t in line.split()]
  except (decimal.InvalidOperation, ValueError):
    return None


def lcb_judge_stdout(out: bytes, expected: str) -> bool:
  """LCB: stripped lines, equal count, exact or Decimal-equal per line."""
  got_lines = _lcb_lines(out.decode("utf-8", "replace"))
  exp_lines = _lcb_lines(expected)
  if len(got_lines) != len(exp_lines):
    return False
  for g, e in zip(got_lines, exp_lines):
    if g == e:
      continue
    gd, ed = _lcb_decimals(g), _lcb_decimals(e)
    if gd is None or ed is None or gd != ed:
      return False
  return True


def lcb_judge_functional(got, expected: str) -> bool:
  """LCB: Python `==` against the JSON-decoded expected value."""
  return got == json.loads(expected)
