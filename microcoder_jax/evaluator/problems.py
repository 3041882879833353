"""Problem loading: the native schema and LiveCodeBench rows, per line."""
import base64
import dataclasses
import functools
import hashlib
import io
import json
import pickle
import re
import zlib

_FLOAT_HINT = re.compile(
    r"(absolute|relative)\s+(or\s+(absolute|relative)\s+)?error|"
    r"error\s+(of\s+)?(at\s+most|not\s+exceed|less\s+than)", re.IGNORECASE)
_TOL_HINT = re.compile(r"10\s*\^\s*\{?\s*-\s*(\d+)\s*\}?|1e-(\d+)",
                       re.IGNORECASE)
_CASE_HINT = re.compile(
    r"in\s+any\s+(letter\s+)?case|any\s+case\s*\(|case[- ]insensitive|"
    r"(upper|lower)\s*case\s+or\s+(upper|lower)\s*case\s+letters?\s+"
    r"(are|is)\s+(accepted|allowed)", re.IGNORECASE)
COMPARE_KEYS = ("float_tol", "case_insensitive", "unordered",
                "unordered_nested", "line_strict", "inplace")


class ProblemError(ValueError):
  """A problem row that cannot be judged."""


class _StringUnpickler(pickle.Unpickler):
  """LCB's private tests pickle a plain str: refuse every global."""

  def find_class(self, module, name):
    raise pickle.UnpicklingError(f"refusing {module}.{name}")


def _unpickle_str(data: bytes) -> str:
  value = _StringUnpickler(io.BytesIO(data)).load()
  if not isinstance(value, str):
    raise ValueError("private tests are not a pickled string")
  return value


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


def infer_compare(question: str, tests) -> dict:
  """Judging options implied by the statement (never more lenient)."""
  opts = {}
  if _FLOAT_HINT.search(question or ""):
    m = _TOL_HINT.search(question)
    opts["float_tol"] = 10.0 ** -int(m.group(1) or m.group(2)) if m else 1e-6
  if _CASE_HINT.search(question or ""):
    opts["case_insensitive"] = True
  return opts


def _tests_from(raw, where: str):
  if isinstance(raw, str):
    try:
      raw = json.loads(raw)
    except ValueError:
      try:  # LiveCodeBench private tests: base64(zlib(pickle(json string))).
        raw = json.loads(_unpickle_str(zlib.decompress(base64.b64decode(raw))))
      except Exception as e:  # pylint: disable=broad-except
        raise ProblemError(f"{where}: undecodable test cases ({e})") from e
  if not isinstance(raw, list):
    raise ProblemError(f"{where}: test cases are not a list")
  tests, types = [], set()
  for t in raw:
    if not isinstance(t, dict) or not isinstance(t.get("input"), str) or (
        not isinstance(t.get("output"), str)):
      raise ProblemError(f"{where}: a test lacks string input/output")
    tests.append(Test(t["input"], t["output"]))
    types.add(t.get("testtype", "stdin"))
  return tests, types


def _mode(types, fn_name: str, where: str) -> str:
  if len(types) > 1:
    raise ProblemError(f"{where}: mixed test types {sorted(types)}")
  mode = types.pop() if types else "stdin"
  if mode not in ("stdin", "functional"):
    raise ProblemError(f"{where}: unknown testtype {mode!r}")
  if mode == "functional" and not fn_name:
    raise ProblemError(f"{where}: functional tests without fn_name")
  return mode


def parse_problem(row: dict, where: str = "row") -> Problem:
  """Parses one row of either schema; raises ProblemError."""
  if not isinstance(row, dict):
    raise ProblemError(f"{where}: not a JSON object")
  if "question_id" in row:  # LiveCodeBench code_generation_lite.
    pid = str(row["question_id"])
    tests, types = _tests_from(row.get("public_test_cases", "[]"), where)
    private, ptypes = _tests_from(row.get("private_test_cases") or "[]", where)
    tests += private
    types |= ptypes
    meta = row.get("metadata") or "{}"
    try:
      meta = json.loads(meta) if isinstance(meta, str) else dict(meta)
    except (ValueError, TypeError) as e:
      raise ProblemError(f"{where}: bad metadata ({e})") from e
    fn_name = meta.get("func_name") or ""
    question = row.get("question_content", "")
    compare, checker, tl, mem = {}, "", 0.0, 0
    info = {k: row.get(k, "") for k in ("platform", "difficulty", "starter_code",
                                        "contest_date")}
  else:
    if "id" not in row or "tests" not in row:
      raise ProblemError(f"{where}: needs 'id' and 'tests'")
    pid = str(row["id"])
    tests, types = _tests_from(row["tests"], where)
    fn_name = row.get("fn_name") or ""
    question = row.get("question", "")
    compare = row.get("compare") or {}
    if not isinstance(compare, dict) or set(compare) - set(COMPARE_KEYS):
      raise ProblemError(f"{where}: bad compare options {compare!r}")
    checker = row.get("checker") or ""
    tl = float(row.get("time_limit_s") or 0.0)
    mem = int(row.get("memory_mb") or 0)
    info = {k: row.get(k, "") for k in ("platform", "difficulty", "starter_code",
                                        "contest_date")}
  if not tests:
    raise ProblemError(f"{where}: problem {pid!r} has no tests")
  mode = _mode(types, fn_name, where)
  if "compare" not in row:
    compare = infer_compare(question, tests)
  return Problem(id=pid, mode=mode, tests=tuple(tests), fn_name=fn_name,
                 compare=dict(compare), checker=checker, time_limit_s=tl,
                 memory_mb=mem, question=question, meta=info)


def load_problems(path: str, errors: list = None) -> dict:
  """Reads a JSONL file of problems (either schema, detected per row).

  Bad rows are skipped and described in `errors` as "line N: reason" (a list
  you pass in); duplicate ids are errors too. Returns {id: Problem}.
  """
  problems = {}
  errors = [] if errors is None else errors
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        prob = parse_problem(json.loads(line), f"line {n}")
      except ValueError as e:  # ProblemError and JSONDecodeError.
        errors.append(str(e) if isinstance(e, ProblemError)
                      else f"line {n}: bad JSON ({e})")
        continue
      if prob.id in problems:
        errors.append(f"line {n}: duplicate problem id {prob.id!r}")
        continue
      problems[prob.id] = prob
  return problems
