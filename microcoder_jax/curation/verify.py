"""Curation stage 3: run references through the evaluator; cap test suites.

A problem is verified when one of its first `max_refs` reference programs
passes every test. Large suites are cut to `max_tests` by greedy set cover
over wrong programs (known incorrect solutions plus AST mutants of the
verified reference): the longest input first, then the test that rejects
the most still-surviving wrong programs, then the longest remaining inputs.
"""

from __future__ import annotations

import ast
import copy
import dataclasses

from microcoder_jax.evaluator import Evaluator, parse_problem

_FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
         ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
_BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add,
          ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv}
_NAMES = {"min": "max", "max": "min", "bisect_left": "bisect_right",
          "bisect_right": "bisect_left", "any": "all", "all": "any"}


def problem_of(row: dict):
  """The evaluator `Problem` of a native row."""
  return parse_problem(row, row["id"])


def verify_references(ev: Evaluator, cands, max_refs: int) -> dict:
  """{id: (passing reference or "", detail)} for candidates with references."""
  problems, samples = {}, []
  for c in cands:
    if c.refs:
      problems[c.id] = problem_of(c.row)
      samples += [{"id": c.id, "code": r} for r in c.refs[:max_refs]]
  results = ev.evaluate(problems, samples)
  out = {}
  for s, r in zip(samples, results):
    if out.get(s["id"], ("",))[0]:
      continue  # An earlier reference already passed.
    out[s["id"]] = ((s["code"], "") if r.verdict == "pass" else
                    ("", f"{r.verdict} ({r.tests_passed}/{r.tests_total} tests)"))
  return out


# --------------------------------------------------------------- mutants
class _Mutator(ast.NodeTransformer):
  """Applies exactly one change: the `target`-th mutable site."""

  def __init__(self, target: int):
    self.target, self.seen = target, 0

  def _hit(self) -> bool:
    self.seen += 1
    return self.seen - 1 == self.target

  def visit_Constant(self, node):
    if isinstance(node.value, int) and not isinstance(node.value, bool) and self._hit():
      return ast.copy_location(ast.Constant(node.value + 1), node)
    return node

  def visit_Compare(self, node):
    self.generic_visit(node)
    if type(node.ops[0]) in _FLIP and self._hit():
      node.ops = [_FLIP[type(node.ops[0])]()] + node.ops[1:]
    return node

  def visit_Name(self, node):
    if node.id in _NAMES and self._hit():
      return ast.copy_location(ast.Name(_NAMES[node.id], node.ctx), node)
    return node

  def visit_Attribute(self, node):
    self.generic_visit(node)
    if node.attr in _NAMES and self._hit():
      node.attr = _NAMES[node.attr]
    return node

  def visit_BinOp(self, node):
    self.generic_visit(node)
    if type(node.op) in _BINOP and self._hit():
      node.op = _BINOP[type(node.op)]()
    return node


def mutants(code: str, limit: int) -> list[str]:
  """Up to `limit` distinct single-edit mutants of `code`."""
  try:
    tree = ast.parse(code)
  except SyntaxError:
    return []
  base, out = ast.unparse(tree), []  # unparse output is already canonical
  for target in range(200):
    m = _Mutator(target)
    text = ast.unparse(m.visit(copy.deepcopy(tree)))
    if m.seen <= target:
      break
    if text != base and text not in out:
      out.append(text)
    if len(out) == limit:
      break
  return out


# ----------------------------------------------------------- test capping
def kill_matrix(ev: Evaluator, row: dict, programs: list[str]) -> list[list[bool]]:
  """killed[p][t]: program p fails test t (each test judged on its own)."""
  prob = problem_of(row)
  singles = {f"{prob.id}#{i}": dataclasses.replace(prob, id=f"{prob.id}#{i}", tests=(t,))
             for i, t in enumerate(prob.tests)}
  samples = [{"id": pid, "code": code} for code in programs for pid in singles]
  verdicts = [r.verdict for r in ev.evaluate(singles, samples)]
  n = len(singles)
  return [[v not in ("pass", "eval_error") for v in verdicts[p * n:(p + 1) * n]]
          for p in range(len(programs))]


def choose_tests(killed_PxT: list[list[bool]], input_len_T: list[int], max_tests: int) -> list[int]:
  """Indices (in order) of at most `max_tests` tests; see the module docstring."""
  n = len(input_len_T)
  by_len = sorted(range(n), key=lambda t: (-input_len_T[t], t))
  chosen = [by_len[0]]
  alive = {p for p, row in enumerate(killed_PxT) if not row[chosen[0]]}
  while len(chosen) < max_tests and alive:
    rest = [t for t in by_len if t not in chosen]
    gain_T = [sum(killed_PxT[p][t] for p in alive) for t in rest]
    if not rest or max(gain_T) == 0:
      break
    t = rest[gain_T.index(max(gain_T))]  # Ties: the longer input.
    chosen.append(t)
    alive = {p for p in alive if not killed_PxT[p][t]}
  for t in by_len:
    if len(chosen) >= max_tests:
      break
    if t not in chosen:
      chosen.append(t)
  return sorted(chosen)


def cap_tests(ev: Evaluator, cand, reference: str, max_tests: int,
              max_mutants: int = 12) -> dict:
  """Cuts `cand.row["tests"]` to `max_tests`; returns what was done."""
  tests = cand.row["tests"]
  programs = list(cand.wrong[:8]) + (mutants(reference, max_mutants) if reference else [])
  killed = kill_matrix(ev, cand.row, programs) if programs else []
  keep = choose_tests(killed, [len(t["input"]) for t in tests], max_tests)
  cand.row["tests"] = [tests[i] for i in keep]
  useful = [p for p in killed if any(p)]
  return {"id": cand.id, "tests_before": len(tests), "tests_after": len(keep),
          "cut": [i for i in range(len(tests)) if i not in keep],
          "wrong_programs": len(programs), "rejected_by_all_tests": len(useful),
          "rejected_by_kept_tests": sum(any(p[i] for i in keep) for p in useful),
          "method": "set_cover" if useful else "longest_inputs"}
