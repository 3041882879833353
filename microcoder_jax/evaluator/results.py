"""Result records, tickets and the small helpers they need."""
import dataclasses
import threading

VERDICTS = ("pass", "wrong_answer", "runtime_error", "timeout",
            "memory_limit", "compile_error", "no_code", "eval_error")


@dataclasses.dataclass
class Result:
  """The judgement of one sample (`passed` is true only for `pass`)."""
  id: str
  sample: int
  verdict: str
  passed: bool
  tests_passed: int
  tests_total: int
  has_code: bool
  seconds: float
  isolation: str = ""
  detail: str = ""

  def to_json(self) -> dict:
    return dataclasses.asdict(self)


class Ticket:
  """Handle returned by `Evaluator.submit`; pass it to `collect`."""

  def __init__(self, n: int):
    self.results = [None] * n
    self.remaining = n
    self.cond = threading.Condition()

  def _fill(self, index: int, result: Result) -> None:
    with self.cond:
      self.results[index] = result
      self.remaining -= 1
      if self.remaining == 0:
        self.cond.notify_all()

  @property
  def done(self) -> int:
    return len(self.results) - self.remaining


def code_key(code: str) -> str:
  """The cache/dedup key of a program: its exact text. Any normalisation
  short of a full tokenization could merge programs that differ inside a
  string literal (a wrong twin inheriting a correct program's `pass`), and
  tokenizing every sample costs milliseconds each; identical samples, the
  common case in GRPO groups, are still run once."""
  return code


def compare_cap(expected: str) -> int:
  """Output cap for one test: max(64 KiB, 4x expected + 4 KiB)."""
  return max(1 << 16, 4 * len(expected.encode("utf-8", "surrogatepass")) + 4096)
