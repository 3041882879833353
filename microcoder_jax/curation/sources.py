"""Curation stage 1: collect rows from common layouts, normalise to native.

Layouts, detected per row:
  native         `id` + `tests` list of {input, output, testtype}
  livecodebench  `question_id` + `public_test_cases` (code_generation_lite)
  taco           `input_output` or `tests` holding {inputs, outputs, fn_name}
                 (APPS / TACO / DeepCoder), `solutions` a list or JSON string
  codecontests   `public_tests` / `private_tests` / `generated_tests`, each
                 {input: [...], output: [...]}; `solutions` {language, solution}

Every row becomes a `Candidate`; a row that cannot be normalised keeps its
`error` (a drop reason plus a detail) so the report can count it.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re

from microcoder_jax.evaluator import ProblemError, parse_problem

PY3 = 3  # CodeContests language enum: 1 = Python 2, 3 = Python 3.
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TACO_DIFFICULTY = {"easy": "easy", "introductory": "easy", "interview": "medium",
                    "medium": "medium", "medium_hard": "hard", "hard": "hard",
                    "very_hard": "hard", "competition": "hard"}


@dataclasses.dataclass
class Candidate:
  """One collected problem: its native row (or why it has none)."""
  row: dict
  origin: str                      # "file:line"
  layout: str
  refs: list = dataclasses.field(default_factory=list)   # reference programs
  wrong: list = dataclasses.field(default_factory=list)  # known-wrong programs
  error: tuple = ()                # (reason, detail) when unusable

  @property
  def id(self) -> str:
    return str(self.row.get("id", self.origin))


class NormaliseError(ValueError):
  def __init__(self, reason: str, detail: str):
    super().__init__(f"{reason}: {detail}")
    self.reason, self.detail = reason, detail


def read_rows(path: str):
  """Yields (line number, row or None, error) from a JSONL or JSON-list file."""
  with open(path, encoding="utf-8") as f:
    text = f.read()
  if text.lstrip().startswith("["):
    for n, row in enumerate(json.loads(text), 1):
      yield n, row, ""
    return
  for n, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    try:
      yield n, json.loads(line), ""
    except ValueError as e:
      yield n, None, f"bad JSON ({e})"


def collect(paths) -> list[Candidate]:
  """All rows of all files, in order, normalised where possible."""
  out = []
  for path in paths:
    name = os.path.basename(path)
    for n, row, err in read_rows(path):
      origin = f"{name}:{n}"
      if row is None:
        out.append(Candidate({"id": origin}, origin, "unknown",
                             error=("unreadable", err)))
        continue
      out.append(normalise(row, origin, name))
  return out


def normalise(row, origin: str, source: str) -> Candidate:
  """One raw row -> Candidate (never raises)."""
  layout = detect_layout(row)
  try:
    if layout == "unknown":
      raise NormaliseError("unreadable", "no known problem layout")
    cand = _NORMALISERS[layout](row, origin)
  except NormaliseError as e:
    rid = next((row[k] for k in ("id", "question_id", "problem_id", "name") if row.get(k)),
               origin)
    return Candidate({"id": str(rid)}, origin, layout, error=(e.reason, e.detail))
  cand.row.setdefault("source", source)
  cand.row["layout"] = layout
  if cand.refs:
    cand.row["reference_solution"] = cand.refs[0]
  return cand


def detect_layout(row) -> str:
  if not isinstance(row, dict):
    return "unknown"
  if "question_id" in row and "public_test_cases" in row:
    return "livecodebench"
  if any(k in row for k in ("public_tests", "private_tests", "generated_tests")):
    return "codecontests"
  tests = row.get("input_output", row.get("tests"))
  if isinstance(tests, str):
    try:
      tests = json.loads(tests)
    except ValueError:
      tests = None
  if isinstance(tests, dict) or "input_output" in row:
    return "taco"
  if "id" in row or "tests" in row:
    return "native"
  return "unknown"


# ----------------------------------------------------------------- layouts
def _native(row, origin):
  """Native rows; also DeepCoder-style rows (`problem`, `metadata.func_name`)."""
  tests = row.get("tests")
  if isinstance(tests, str):
    try:
      tests = json.loads(tests)
    except ValueError as e:
      raise NormaliseError("bad_tests", f"tests are not JSON ({e})") from e
  if not tests:
    raise NormaliseError("missing_tests", "no tests")
  pid = next((row[k] for k in ("id", "problem_id", "task_id") if row.get(k)), origin)
  out = dict(row, id=str(pid), tests=tests)
  out.setdefault("question", row.get("problem") or row.get("description") or "")
  meta = row.get("metadata")
  if isinstance(meta, str):
    try:
      meta = json.loads(meta)
    except ValueError:
      meta = {}
  if isinstance(meta, dict) and meta.get("func_name") and not out.get("fn_name"):
    out["fn_name"] = meta["func_name"]
  for k in ("metadata", "solutions", "incorrect_solutions"):
    out.pop(k, None)  # References travel in the Candidate; one is written back.
  _check(out)
  refs = _as_list(row.get("reference_solution")) + _as_list(row.get("solutions"))
  return Candidate(out, origin, "native", refs=refs,
                   wrong=_as_list(row.get("incorrect_solutions")))


def _livecodebench(row, origin):
  try:
    prob = parse_problem(row, origin)
  except ProblemError as e:
    reason = "missing_tests" if "has no tests" in str(e) else "bad_tests"
    raise NormaliseError(reason, str(e)) from e
  out = {"id": prob.id, "question": prob.question,
         "tests": [{"input": t.input, "output": t.output, "testtype": prob.mode}
                   for t in prob.tests]}
  if prob.fn_name:
    out["fn_name"] = prob.fn_name
  for k in ("platform", "difficulty", "contest_date", "starter_code"):
    if row.get(k):
      out[k] = row[k]
  if row.get("question_title"):
    out["title"] = row["question_title"]
  return Candidate(out, origin, "livecodebench",
                   refs=_as_list(row.get("reference_solution")))


def _taco(row, origin):
  raw = row.get("input_output", row.get("tests"))
  try:
    spec = json.loads(raw) if isinstance(raw, str) else raw
  except ValueError as e:
    raise NormaliseError("bad_tests", f"input_output is not JSON ({e})") from e
  if not spec:
    raise NormaliseError("missing_tests", "empty input_output")
  if not isinstance(spec, dict):
    raise NormaliseError("bad_tests", "input_output is not an object")
  inputs, outputs = spec.get("inputs"), spec.get("outputs")
  fn_name = spec.get("fn_name") or ""
  if not isinstance(inputs, list) or not isinstance(outputs, list):
    raise NormaliseError("bad_tests", "inputs/outputs are not lists")
  if len(inputs) != len(outputs):
    raise NormaliseError("bad_tests", f"{len(inputs)} inputs, {len(outputs)} outputs")
  if not inputs:
    raise NormaliseError("missing_tests", "no tests")
  tests = (_functional_tests(inputs, outputs) if fn_name
           else [{"input": _text(i), "output": _text(o), "testtype": "stdin"}
                 for i, o in zip(inputs, outputs)])
  pid = row.get("id") or row.get("problem_id") or row.get("task_id") or origin
  out = {"id": str(pid), "tests": tests,
         "question": row.get("question") or row.get("problem") or row.get("description") or ""}
  if fn_name:
    out["fn_name"] = fn_name
  _copy_meta(row, out)
  refs = _as_list(row.get("solutions")) + _as_list(row.get("reference_solution"))
  _check(out)
  return Candidate(out, origin, "taco", refs=refs)


def _functional_tests(inputs, outputs):
  # APPS/TACO wrap each call-based output in a one-element list.
  wrapped = all(isinstance(o, list) and len(o) == 1 for o in outputs)
  tests = []
  for args, want in zip(inputs, outputs):
    args = args if isinstance(args, list) else [args]
    tests.append({"input": "\n".join(json.dumps(a) for a in args),
                  "output": json.dumps(want[0] if wrapped else want),
                  "testtype": "functional"})
  return tests


def _codecontests(row, origin):
  tests = []
  for group in ("public_tests", "private_tests", "generated_tests"):
    g = row.get(group) or {}
    ins, outs = g.get("input") or [], g.get("output") or []
    if len(ins) != len(outs):
      raise NormaliseError("bad_tests", f"{group}: {len(ins)} inputs, {len(outs)} outputs")
    tests += [{"input": _text(i), "output": _text(o), "testtype": "stdin"}
              for i, o in zip(ins, outs)]
  if not tests:
    raise NormaliseError("missing_tests", "no public/private/generated tests")
  out = {"id": str(row.get("name") or origin), "question": row.get("description", ""),
         "tests": tests,
         "public_test_count": len((row.get("public_tests") or {}).get("input") or [])}
  _copy_meta(row, out)
  tl = row.get("time_limit")
  if isinstance(tl, dict) and tl.get("seconds") is not None:
    out["time_limit_s"] = float(tl.get("seconds") or 0) + float(tl.get("nanos") or 0) / 1e9
  if row.get("memory_limit_bytes"):
    out["memory_mb"] = int(row["memory_limit_bytes"]) // (1 << 20)
  _check(out)
  return Candidate(out, origin, "codecontests", refs=_cc_solutions(row.get("solutions")),
                   wrong=_cc_solutions(row.get("incorrect_solutions")))


def _cc_solutions(sols) -> list:
  if not isinstance(sols, dict):
    return _as_list(sols)
  return [s for lang, s in zip(sols.get("language") or [], sols.get("solution") or [])
          if lang == PY3]


_NORMALISERS = {"native": _native, "livecodebench": _livecodebench, "taco": _taco,
                "codecontests": _codecontests}


# ----------------------------------------------------------------- helpers
def _check(row) -> None:
  """The native row must parse; strings only, one test type."""
  try:
    parse_problem(row, row["id"])
  except ProblemError as e:
    raise NormaliseError("bad_tests", str(e)) from e


def _text(value) -> str:
  if isinstance(value, list):
    value = "\n".join(str(v) for v in value)
  if not isinstance(value, str):
    raise NormaliseError("bad_tests", f"test text is {type(value).__name__}")
  return value


def _as_list(value) -> list:
  if not value:
    return []
  if isinstance(value, str):
    try:
      parsed = json.loads(value)
    except ValueError:
      return [value]
    return [s for s in parsed if isinstance(s, str)] if isinstance(parsed, list) else [value]
  return [s for s in value if isinstance(s, str)]


def _copy_meta(row, out) -> None:
  for k in ("platform", "starter_code", "source"):
    if row.get(k) and isinstance(row[k], str):
      out[k] = row[k]
  date = next((row[k] for k in ("contest_date", "date", "release_date") if row.get(k)), "")
  if date:
    out["contest_date"] = str(date)
  rating = row.get("cf_rating") or row.get("rating")
  if isinstance(rating, (int, float)) and rating > 0:
    out["rating"] = rating
  label = row.get("difficulty")
  if isinstance(label, str) and label.strip():
    out["difficulty"] = _TACO_DIFFICULTY.get(label.strip().lower(), label.strip().lower())
  elif "rating" in out:
    out["difficulty"] = rating_label(out["rating"])


def rating_label(rating: float) -> str:
  """Codeforces-style rating -> easy / medium / hard."""
  return "easy" if rating <= 1300 else "medium" if rating <= 2000 else "hard"


def normalise_date(value) -> str:
  """"2025-01-04T00:00:00" -> "2025-01-04"; "" when there is no date."""
  m = _DATE.search(str(value or ""))
  return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else ""


def starter_from_reference(code: str, fn_name: str) -> str:
  """Starter code with the reference's signature (a method or a function)."""
  try:
    tree = ast.parse(code)
  except SyntaxError:
    return ""
  for node in tree.body:
    body = node.body if isinstance(node, ast.ClassDef) else [node]
    for fn in body:
      if isinstance(fn, ast.FunctionDef) and fn.name == fn_name:
        args = ast.unparse(fn.args)
        if isinstance(node, ast.ClassDef):
          return f"class {node.name}:\n    def {fn_name}({args}):\n        "
        return f"def {fn_name}({args}):\n    "
  return ""
