"""Sandboxed multiprocessing code judge (standard library only, no jax).

  with Evaluator(timeout_s=2) as ev:
    results = ev.evaluate(load_problems("problems.jsonl"), samples)
"""
from microcoder_jax.evaluator.extract import extract_code
from microcoder_jax.evaluator.orchestrator import EVALUATOR_VERSION
from microcoder_jax.evaluator.orchestrator import Evaluator
from microcoder_jax.evaluator.results import Result
from microcoder_jax.evaluator.results import Ticket
from microcoder_jax.evaluator.results import VERDICTS
from microcoder_jax.evaluator.problems import load_problems
from microcoder_jax.evaluator.problems import parse_problem
from microcoder_jax.evaluator.problems import Problem
from microcoder_jax.evaluator.problems import ProblemError

__all__ = ["Evaluator", "Result", "Ticket", "VERDICTS", "EVALUATOR_VERSION",
           "extract_code", "load_problems", "parse_problem", "Problem",
           "ProblemError"]
