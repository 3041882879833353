"""Unit tests for every comparison rule (stdin S1-S5, call-based C1-C3, LCB)."""
import json

import pytest

from microcoder_jax.evaluator import compare


def J(out, exp, **opts):  # pylint: disable=invalid-name
  return compare.judge_stdout(out.encode() if isinstance(out, str) else out,
                              exp, opts)


def test_s1_exact_and_s2_line_normalisation():
  assert J("3\n", "3\n")
  assert J("3", "3\n")
  assert J("3\r\n", "3\n")
  assert J("1 2   \r\n3\n\n\n", "1 2\n3\n")
  assert not J(b"\xff\n", "3\n")  # Invalid UTF-8.
  assert not J("", "3\n")
  assert not J("\n", "0\n")


def test_s3_tokens_cover_space_runs_and_layout():
  assert J("a  b\tc\n", "a b c\n")
  assert J("1\n2\n", "1 2\n")
  assert not J("1 2 3\n", "1 2\n")  # Extra token.
  assert not J("1\n", "1\n2\n")  # Prefix.
  assert not J("2\n1\n", "1\n2\n")  # Order matters.
  assert not J("Christmas Eve\n", "Christmas Eve Eve Eve\n")


def test_line_strict():
  assert J("1  1\n2 4\n", "1 1\n2 4\n", line_strict=True)
  assert not J("1 1 2 4\n", "1 1\n2 4\n", line_strict=True)


def test_integer_tokens_are_exact_even_in_float_mode():
  for got, exp in (("0011", "11"), ("+5", "5"), ("1e3", "1000"),
                   ("998244352", "998244353"), ("-123457", "-123456"),
                   ("2.0", "2"), ("50000000000000001", "50000000000000000")):
    assert not J(got, exp, float_tol=1e-3), (got, exp)


def test_s4_float_tolerance_only_in_float_mode():
  # Tolerance only from an explicit precision (float_tol, or the statement's
  # error clause): decimal-looking expected tokens alone do not turn it on.
  assert not J("0.3333333", "0.333333333333\n")
  assert J("0.3333333", "0.333333333333\n", float_tol=1e-6)
  assert not J("0.33333", "0.333333333\n", float_tol=1e-6)  # 3.3e-6 > 1e-6.
  assert not J("0.3334", "0.3331\n", float_tol=1e-3 / 4)  # Never round().
  assert J("1000000.5", "1000000.4\n", float_tol=1e-6)  # Relative.
  assert J("0.5", "0.50000\n", float_tol=1e-6)
  assert J("2", "2.000000\n", float_tol=1e-6)  # Integer output of a float answer.
  assert not J("nan", "0.5\n")
  assert not J("inf", "1e308\n", float_tol=1e-6)
  assert not J("0.1 x", "0.1 y\n", float_tol=1e-6)
  assert J("0.1001", "0.1\n", float_tol=1e-3)


def test_s5_case_insensitive_only_yes_no():
  assert J("yes\n", "YES\n", case_insensitive=True)
  assert J("nO\n", "No\n", case_insensitive=True)
  assert not J("yes\n", "YES\n")
  assert not J("NO\n", "YES\n", case_insensitive=True)
  assert not J("alice\n", "Alice\n", case_insensitive=True)


def test_s5_unordered():
  assert J("3 1 2\n", "1 2 3\n", unordered=True)
  assert not J("1 2\n", "1 2 2\n", unordered=True)
  assert not J("1 2 2\n", "1 2\n", unordered=True)
  assert J("b c\na\n", "a\nb c\n", unordered=True, line_strict=True)
  assert not J("b\nc a\n", "a\nb c\n", unordered=True, line_strict=True)


def F(got, exp, **opts):  # pylint: disable=invalid-name
  return compare.judge_functional(got, json.dumps(exp), opts)


def test_c1_strict_structure():
  assert F([0, 1], [0, 1])
  assert F(2.0, 2)
  assert not F(True, 1)
  assert not F(1, True)
  assert not F("3", 3)
  assert not F(3, "3")
  assert F(None, None)
  assert not F(None, [])
  assert not F([1, 2], [1, 2, 3])
  assert F({"a": [1]}, {"a": [1]})
  assert not F({"a": 1}, {"a": 1, "b": 2})
  assert not F(2.5, 2)


def test_c2_float_tolerance_on_float_leaves():
  assert F(0.30000000000000004, 0.3)
  assert F([0.1 + 0.2, 2], [0.3, 2])
  assert not F(0.30002, 0.3)
  assert F(0.30002, 0.3, float_tol=1e-3)
  assert not F(float("nan"), 0.3)


def test_c3_sets_and_unordered():
  tagged = [compare.SET_TAG, [3, 1]]
  assert not F(tagged, [1, 3])
  assert F(tagged, [1, 3], unordered=True)
  assert F([[2, 1], [3]], [[3], [1, 2]], unordered_nested=True)
  assert not F([[2, 1], [3]], [[3], [1, 2]], unordered=True)


def test_big_integers_beyond_the_digit_limit():
  big = "1" * 5000
  assert compare.values_equal(compare.loads(big), compare.loads(big), 1e-5)
  assert not compare.values_equal(compare.loads(big), compare.loads(big[:-1] + "2"),
                                  1e-5)


def test_parse_result_rejects_missing_values():
  with pytest.raises(ValueError):
    compare.parse_result(b"", {})
  with pytest.raises(ValueError):
    compare.parse_result(b'{"x": 1}', {})
  assert compare.parse_result(b'{"v": null, "a0": [1]}', {"inplace": True}) == [1]


def test_lcb_comparison_semantics():
  assert compare.lcb_judge_stdout(b"  3  \n\n", "3\n")
  assert compare.lcb_judge_stdout(b"0011\n", "11\n")  # Decimal: LCB's hole.
  assert not compare.lcb_judge_stdout(b"0.3333333\n", "0.333333333333\n")
  assert not compare.lcb_judge_stdout(b"a  b\n", "a b\n")
  assert not compare.lcb_judge_stdout(b"1\n2\n", "1 2\n")
  assert compare.lcb_judge_functional(True, "1")  # `==` conflates bool/int.
  assert compare.lcb_judge_functional(2.0, "2")
  assert not compare.lcb_judge_functional([compare.SET_TAG, [1]], "[1]")
