"""Problem loading (native and LiveCodeBench rows) and code extraction."""
import base64
import json
import pickle
import zlib

import pytest

from microcoder_jax.evaluator import extract_code
from microcoder_jax.evaluator import load_problems
from microcoder_jax.evaluator import parse_problem
from microcoder_jax.evaluator import ProblemError
from microcoder_jax.evaluator import problems as problems_lib

_STDIN = {"input": "1\n", "output": "1\n", "testtype": "stdin"}


def _lcb_row(**kw):
  row = dict(question_id="abc1_a", question_title="t", question_content="q",
             platform="atcoder", contest_date="2025-01-01", starter_code="",
             difficulty="easy", public_test_cases=json.dumps([_STDIN]),
             private_test_cases="", metadata="{}")
  row.update(kw)
  return row


def test_lcb_private_tests_are_decoded():
  private = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(
      [{"input": "2\n", "output": "4\n", "testtype": "stdin"}])))).decode()
  prob = parse_problem(_lcb_row(private_test_cases=private))
  assert prob.mode == "stdin"
  assert [t.input for t in prob.tests] == ["1\n", "2\n"]  # Public first.


def test_lcb_private_tests_refuse_pickled_objects():
  evil = base64.b64encode(zlib.compress(pickle.dumps(print))).decode()
  with pytest.raises(ProblemError, match="undecodable"):
    parse_problem(_lcb_row(private_test_cases=evil))


def test_lcb_functional_uses_metadata_func_name():
  tests = json.dumps([{"input": "[1]", "output": "[2]", "testtype": "functional"}])
  prob = parse_problem(_lcb_row(public_test_cases=tests,
                                metadata=json.dumps({"func_name": "f"})))
  assert (prob.mode, prob.fn_name) == ("functional", "f")
  with pytest.raises(ProblemError, match="fn_name"):
    parse_problem(_lcb_row(public_test_cases=tests))


def test_lcb_shipped_rows_load():
  probs = load_problems("tests/data/evaluator/lcb_problems.jsonl")
  assert {p: len(v.tests) for p, v in probs.items()} == {
      "abc999_a": 3, "3000": 2, "abc999_b": 2}
  assert probs["abc999_b"].compare == {"float_tol": 1e-6}


def test_bad_rows_are_reported_with_line_numbers(tmp_path):
  rows = ['{"id": "ok", "question": "", "tests": [%s]}' % json.dumps(_STDIN),
          "{not json",
          '{"id": "empty", "question": "", "tests": []}',
          '{"id": "fn", "tests": [{"input": "1", "output": "1", "testtype": "functional"}]}',
          "",
          '{"id": "ok", "question": "", "tests": [%s]}' % json.dumps(_STDIN),
          json.dumps(_lcb_row(private_test_cases="!!notbase64"))]
  path = tmp_path / "p.jsonl"
  path.write_text("\n".join(rows) + "\n")
  errors = []
  probs = load_problems(str(path), errors)
  assert list(probs) == ["ok"]
  assert [e.split(": ")[0] for e in errors] == [f"{path}:{n}" for n in (2, 3, 4, 6, 7)]
  assert "no tests" in errors[1] and "fn_name" in errors[2]
  assert "duplicate" in errors[3]


def test_statement_inference_is_never_more_lenient():
  assert problems_lib.infer_compare(
      "absolute or relative error at most 10^{-9}", []) == {"float_tol": 1e-9}
  assert problems_lib.infer_compare("relative error 1e-4 is fine", []) == {
      "float_tol": 1e-4}
  assert problems_lib.infer_compare(
      "Print Yes or No. You can output the answer in any case.", []) == {
          "case_insensitive": True}
  assert problems_lib.infer_compare(
      'Print "YES" or "NO". For example, the strings "yEs", "yes", "Yes" and '
      '"YES" will be recognized as positive responses.', []) == {"case_insensitive": True}
  assert problems_lib.infer_compare("Print YES or NO.", []) == {}
  # "in any case" as an English phrase, and a case rule without yes/no answers.
  assert problems_lib.infer_compare(
      "In any case, print Yes if it is possible and No otherwise.", []) == {}
  assert problems_lib.infer_compare("Print the name. You can output it in any case.", []) == {}
  # A 10^{-k} in the constraints is not the tolerance; the error clause's is.
  assert problems_lib.infer_compare(
      "Constraints: 10^{-3} <= a_i <= 1. Print the mean. Your answer is accepted "
      "if its absolute or relative error does not exceed 10^{-9}.", []) == {"float_tol": 1e-9}
  assert problems_lib.infer_compare(
      "Constraints: 10^{-3} <= a_i <= 1. Print the sum of a_i.", []) == {}


def test_extract_code():
  assert extract_code("```python\nprint(1)\n```") == "print(1)\n"
  assert extract_code("```py\na\n```\ntext\n```python\nb\n```") == "b\n"
  assert extract_code("```python\na\n```\n```cpp\nint x;\n```") == "a\n"
  assert extract_code("```cpp\nint x;\n```") == "int x;\n"
  assert extract_code("```\nprint(2)\n```") == "print(2)\n"
  assert extract_code("<think>```python\nprint(1)\n```</think>no code") is None
  assert extract_code("<think>never closed ```python\nx\n```") is None
  assert extract_code("```python\nprint(1)\n```\n```python\nprint(2") is None
  assert extract_code("no code at all") is None
  assert extract_code("x = '```python'\n") is None
