"""Problem loading: the native schema and LiveCodeBench rows, per line.

Every field of every row is type- and range-checked; a bad row is reported
(`path:line: field ...: why`) and skipped while the rest load. Decompression
of LiveCodeBench's private tests is bounded before anything is allocated.
"""
import base64
import binascii
import dataclasses
import functools
import hashlib
import io
import json
import math
import pickle
import re
import zlib

MAX_TESTS_BYTES = 256 << 20  # decompressed private tests of one row
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FLOAT_HINT = re.compile(
    r"(absolute|relative)\s+(or\s+(absolute|relative)\s+)?error|"
    r"error\s+(of\s+)?(at\s+most|does\s+not\s+exceed|not\s+exceed|less\s+than|within)",
    re.IGNORECASE)
_TOL_HINT = re.compile(
    r"10\s*\^\s*[{(]?\s*[-\u2212]\s*(\d+)\s*[})]?|1\s*[eE]\s*[-\u2212]\s*(\d+)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])|\n\s*\n")
_CASE_HINT = re.compile(
    r"case[- ]insensitive|"
    r"(any|either)\s+(letter\s+)?case\s*\(|"
    r"(each|every|any)\s+letter[s]?\s+(of\s+\w+\s+)?(can|may|could)?\s*(be\s+)?"
    r"(printed|output|written|in)\s*(in\s+)?(any|either)\s+case|"
    r"(print|output|write)\w*\s+(the\s+)?(answer|string|each\s+letter|it|yes\s+and\s+no|"
    r"\W*yes\W*\s+and\s+\W*no\W*)\s+in\s+any\s+(letter\s+)?case|"
    r"(upper|lower)\s*case\s+(or|and)\s+(upper|lower)\s*case\s+(letters\s+)?"
    r"(are|is|will\s+be)\s+(accepted|allowed|recogni[sz]ed)", re.IGNORECASE)
# Codeforces lists mixed-case spellings ("yEs", "YeS") as accepted answers.
_CASE_EXAMPLE = re.compile(r"\b(yEs|yES|YeS|YEs|yeS)\b")
_YES_WORD = re.compile(r"\byes\b", re.IGNORECASE)
_NO_WORD = re.compile(r"\bno\b", re.IGNORECASE)
COMPARE_KEYS = ("float_tol", "case_insensitive", "unordered",
                "unordered_nested", "line_strict", "inplace")
TEXT_FIELDS = ("question", "starter_code", "platform", "difficulty", "contest_date")


class ProblemError(ValueError):
  """A problem row that cannot be judged; the message names the field."""


class _StringUnpickler(pickle.Unpickler):
  """LCB's private tests pickle a plain str: refuse every global."""

  def find_class(self, module, name):
    raise pickle.UnpicklingError(f"refusing {module}.{name}")


@dataclasses.dataclass(frozen=True)
class Test:
  input: str
  output: str


@dataclasses.dataclass(frozen=True)
class Problem:
  """One judged problem. `mode` is "stdin" or "functional"."""
  id: str
  mode: str
  tests: tuple
  fn_name: str = ""
  compare: dict = dataclasses.field(default_factory=dict)
  checker: str = ""
  time_limit_s: float = 0.0
  memory_mb: int = 0
  question: str = ""
  meta: dict = dataclasses.field(default_factory=dict)

  @functools.cached_property
  def fingerprint(self) -> str:
    h = hashlib.sha256()
    for part in (self.id, self.mode, self.fn_name, self.checker,
                 json.dumps(self.compare, sort_keys=True),
                 repr((self.time_limit_s, self.memory_mb))):
      h.update(part.encode("utf-8", "surrogatepass") + b"\0")
    for t in self.tests:
      h.update(t.input.encode("utf-8", "surrogatepass") + b"\1")
      h.update(t.output.encode("utf-8", "surrogatepass") + b"\2")
    return h.hexdigest()


# ------------------------------------------------------------- inference --
def _tolerance(question: str):
  """The precision stated next to an error clause, else None.

  Only a 10^{-k} / 1e-k in a sentence that also states the error bound
  counts: one in the constraints is not a tolerance.
  """
  found = False
  for sentence in _SENTENCE.split(question):
    if _FLOAT_HINT.search(sentence):
      found = True
      m = _TOL_HINT.search(sentence)
      if m:
        return 10.0 ** -int(m.group(1) or m.group(2))
  return 1e-6 if found else None


def infer_compare(question: str, tests) -> dict:
  """Judging options implied by the statement (never more lenient).

  Float mode only when the statement bounds the error; case-insensitive
  yes/no only when it explicitly allows any letter case and the answers are
  yes/no words.
  """
  del tests
  opts, question = {}, question or ""
  tol = _tolerance(question)
  if tol is not None:
    opts["float_tol"] = tol
  if ((_CASE_HINT.search(question) or _CASE_EXAMPLE.search(question))
      and _YES_WORD.search(question) and _NO_WORD.search(question)):
    opts["case_insensitive"] = True
  return opts


# ------------------------------------------------------------ validation --
def _text(row, key: str, where: str, *, required=False, default="") -> str:
  if key not in row or row[key] is None:
    if required:
      raise ProblemError(f"{where}: field {key!r} is missing")
    return default
  if not isinstance(row[key], str):
    raise ProblemError(f"{where}: field {key!r} must be a string, got "
                       f"{type(row[key]).__name__}")
  return row[key]


def _number(row, key: str, where: str, lo: float, hi: float, integer=False):
  value = row.get(key)
  if value is None:
    return 0
  bad = isinstance(value, bool) or not isinstance(value, (int, float)) or (
      integer and not float(value).is_integer())
  if bad or not (math.isfinite(value) and lo < value <= hi):
    kind = "an integer" if integer else "a number"
    raise ProblemError(f"{where}: field {key!r} must be {kind} in ({lo:g}, {hi:g}], "
                       f"got {value!r}")
  return int(value) if integer else float(value)


def _compare(value, where: str) -> dict:
  if not isinstance(value, dict):
    raise ProblemError(f"{where}: field 'compare' must be an object")
  unknown = set(value) - set(COMPARE_KEYS)
  if unknown:
    raise ProblemError(f"{where}: field 'compare' has unknown keys {sorted(unknown)}")
  for key, v in value.items():
    if key == "float_tol":
      if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                            or not math.isfinite(v) or not 0 < v <= 1):
        raise ProblemError(f"{where}: field 'compare.float_tol' must be a number "
                           f"in (0, 1], got {v!r}")
    elif not isinstance(v, bool):
      raise ProblemError(f"{where}: field 'compare.{key}' must be true or false")
  return dict(value)


def _decompress(raw: str, where: str) -> str:
  """LCB private tests: base64(zlib(pickle(json string))), bounded."""
  chunks, total = [], 0
  try:
    d = zlib.decompressobj()
    tail = base64.b64decode(raw, validate=True)
    while tail and not d.eof:  # In 16 MiB steps: a bomb stops at the bound.
      chunks.append(d.decompress(tail, 16 << 20))
      tail = d.unconsumed_tail
      total += len(chunks[-1])
      if total > MAX_TESTS_BYTES:
        raise ProblemError(f"{where}: field 'private_test_cases' decompresses to "
                           f"more than {MAX_TESTS_BYTES >> 20} MiB")
  except (binascii.Error, zlib.error) as e:
    raise ProblemError(f"{where}: field 'private_test_cases': undecodable ({e})") from e
  data = b"".join(chunks)
  del chunks
  try:
    value = _StringUnpickler(io.BytesIO(data)).load()
  except Exception as e:  # pylint: disable=broad-except
    raise ProblemError(f"{where}: field 'private_test_cases': undecodable pickle ({e})") from e
  if not isinstance(value, str):
    raise ProblemError(f"{where}: field 'private_test_cases' is not a pickled string")
  return value


def _tests_from(raw, where: str, field: str):
  if isinstance(raw, str):
    try:
      raw = json.loads(raw)
    except ValueError:
      text = _decompress(raw, where)  # Raises ProblemError itself.
      try:
        raw = json.loads(text)
      except (ValueError, RecursionError) as e:
        raise ProblemError(f"{where}: field {field!r}: undecodable test cases ({e})") from e
  if not isinstance(raw, list):
    raise ProblemError(f"{where}: field {field!r} must be a list of tests")
  tests, types = [], set()
  for k, t in enumerate(raw):
    if not isinstance(t, dict):
      raise ProblemError(f"{where}: field {field!r}[{k}] must be an object")
    for key in ("input", "output"):
      if not isinstance(t.get(key), str):
        raise ProblemError(f"{where}: field {field!r}[{k}].{key} must be a string")
    kind = t.get("testtype", "stdin")
    if kind not in ("stdin", "functional"):
      raise ProblemError(f"{where}: field {field!r}[{k}].testtype={kind!r}: "
                         "expected 'stdin' or 'functional'")
    tests.append(Test(t["input"], t["output"]))
    types.add(kind)
  return tests, types


def _check_functional(tests, where: str) -> None:
  """Functional test data must be JSON: one argument per input line, the
  expected value as output (bad data is the problem's, never the program's)."""
  for k, t in enumerate(tests):
    try:
      for line in t.input.split("\n"):
        if line.strip():
          json.loads(line)
      json.loads(t.output)
    except (ValueError, RecursionError) as e:
      raise ProblemError(f"{where}: test {k}: functional input/output is not "
                         f"JSON ({e})") from e


def _mode(types, fn_name: str, where: str) -> str:
  if len(types) > 1:
    raise ProblemError(f"{where}: mixed test types {sorted(types)}")
  mode = types.pop() if types else "stdin"
  if mode == "functional" and not _IDENT.match(fn_name or ""):
    raise ProblemError(f"{where}: functional tests need an identifier 'fn_name' "
                       f"(got {fn_name!r})")
  return mode


def parse_problem(row: dict, where: str = "row") -> Problem:
  """Parses one row of either schema; raises ProblemError naming the field."""
  if not isinstance(row, dict):
    raise ProblemError(f"{where}: not a JSON object")
  if "question_id" in row:  # LiveCodeBench code_generation_lite.
    pid = _text(row, "question_id", where, required=True)
    tests, types = _tests_from(row.get("public_test_cases") or "[]", where,
                               "public_test_cases")
    private, ptypes = _tests_from(row.get("private_test_cases") or "[]", where,
                                  "private_test_cases")
    tests += private
    types |= ptypes
    meta = row.get("metadata") or "{}"
    try:
      meta = json.loads(meta) if isinstance(meta, str) else meta
    except ValueError as e:
      raise ProblemError(f"{where}: field 'metadata' is not JSON ({e})") from e
    if not isinstance(meta, dict):
      raise ProblemError(f"{where}: field 'metadata' must be an object")
    fn_name = _text(meta, "func_name", where + " metadata")
    question = _text(row, "question_content", where)
    compare, checker, tl, mem = None, "", 0.0, 0
  else:
    pid = _text(row, "id", where, required=True)
    if "tests" not in row:
      raise ProblemError(f"{where}: field 'tests' is missing")
    tests, types = _tests_from(row["tests"], where, "tests")
    fn_name = _text(row, "fn_name", where)
    question = _text(row, "question", where)
    compare = _compare(row["compare"], where) if row.get("compare") is not None else None
    checker = _text(row, "checker", where)
    tl = _number(row, "time_limit_s", where, 0.0, 600.0)
    mem = _number(row, "memory_mb", where, 15, 1 << 20, integer=True)
  if not pid or len(pid) > 512:
    raise ProblemError(f"{where}: problem id must be 1..512 characters")
  info = {k: _text(row, k, where) for k in TEXT_FIELDS[1:]}
  if not tests:
    raise ProblemError(f"{where}: problem {pid!r} has no tests")
  mode = _mode(types, fn_name, where)
  if mode == "functional":
    _check_functional(tests, where)
  if compare is None:
    compare = infer_compare(question, tests)
  return Problem(id=pid, mode=mode, tests=tuple(tests), fn_name=fn_name,
                 compare=compare, checker=checker, time_limit_s=tl,
                 memory_mb=mem, question=question, meta=info)


def read_jsonl(path: str, errors: list):
  """Yields (line number, row) of a JSONL file; lines with invalid UTF-8 or
  JSON are reported in `errors` as "path:N: why" and skipped."""
  with open(path, "rb") as f:
    for n, raw in enumerate(f, 1):
      try:
        text = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        errors.append(f"{path}:{n}: invalid UTF-8 at byte {e.start}")
        continue
      if not text.strip():
        continue
      try:
        yield n, json.loads(text)
      except (ValueError, RecursionError) as e:
        errors.append(f"{path}:{n}: bad JSON ({e})")


def load_problems(path: str, errors: list = None) -> dict:
  """Reads a JSONL file of problems (either schema, detected per row).

  Bad rows are skipped and described in `errors` (a list you pass in) as
  "path:N: field ...: why"; duplicate ids are errors too. Returns {id: Problem}.
  """
  problems = {}
  errors = [] if errors is None else errors
  for n, row in read_jsonl(path, errors):
    try:
      prob = parse_problem(row, f"{path}:{n}")
    except ProblemError as e:
      errors.append(str(e))
      continue
    if prob.id in problems:
      errors.append(f"{path}:{n}: duplicate problem id {prob.id!r}")
      continue
    problems[prob.id] = prob
  return problems
