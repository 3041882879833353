"""Prompts: the exported chat template renders a bare problem as training did."""

import transformers

from microcoder_jax.data import datasets, prompts, tiny_tokenizer
from microcoder_jax.evaluator import parse_problem

# A Qwen3-like template: a system turn, and an empty think block when
# `enable_thinking` is false.
_QWEN_LIKE = (
    "{%- for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n"
    "{%- if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{%- endif %}{%- endif %}")
_FUNCTIONAL = parse_problem({
    "id": "f", "question": "Return the sum.", "fn_name": "add",
    "starter_code": "class Solution:\n    def add(self, a, b):\n        ",
    "tests": [{"input": "1\n2", "output": "3", "testtype": "functional"}]})


def _render(tok, messages, **kw):
  return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kw)


def test_exported_template_prompts_a_bare_problem_as_training_did(tmp_path):
  tok = tiny_tokenizer.load()
  tok.chat_template = _QWEN_LIKE
  kw = {"enable_thinking": False}
  system = "You are a careful competitive programmer."
  prompts.with_training_template(tok, system=system, chat_template_kwargs=kw).save_pretrained(
      tmp_path)
  exported = transformers.AutoTokenizer.from_pretrained(tmp_path)
  stdin = datasets.load_dataset("bundled:synthetic_train")[0]
  for problem in (stdin, _FUNCTIONAL):
    trained = prompts.encode_prompt(tok, problem, system=system, chat_template_kwargs=kw)
    # What training fed the policy, from the full training messages ...
    assert prompts.encode_prompt(exported, problem) == trained
    assert "<think>\n\n</think>" in tok.decode(trained)
  # ... and from a bare statement (stdin instruction and system prompt added).
  bare = _render(exported, [{"role": "user", "content": stdin.question}])
  assert bare == _render(tok, prompts.problem_messages(stdin, system), **kw)
  # Callers can still override the template arguments, or use the original.
  assert "<think>" not in _render(exported, [{"role": "user", "content": "x"}],
                                  enable_thinking=True)
  base = _render(exported, [{"role": "user", "content": "x"}], chat_template="base")
  assert prompts.STDIN_FORMAT not in base and system not in base
