"""Prompts: chat template + a format instruction that differs by I/O mode."""

from __future__ import annotations

import copy
import json
from typing import Any, Sequence

STDIN_FORMAT = (
    "Read the input from standard input and write the answer to standard "
    "output. Give the complete program in a single ```python code block.")
FUNCTIONAL_FORMAT = (
    "Complete the function in the starter code below. It is called with the "
    "test arguments and its return value is checked: do not read input or "
    "print. Give the complete code in a single ```python code block.")
STOP_STRINGS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>")


def problem_messages(problem, system: str | None = None) -> list[dict[str, str]]:
  """The chat messages for one problem (an evaluator `Problem`)."""
  if problem.mode == "functional":
    starter = problem.meta.get("starter_code", "") or f"def {problem.fn_name}(...):"
    body = f"{problem.question}\n\n{FUNCTIONAL_FORMAT}\n\n```python\n{starter}\n```"
  else:
    body = f"{problem.question}\n\n{STDIN_FORMAT}"
  messages = [{"role": "system", "content": system}] if system else []
  return messages + [{"role": "user", "content": body}]


def training_chat_template(base: str, *, system: str | None = None,
                           chat_template_kwargs: dict[str, Any] | None = None) -> str:
  """`base` (a Jinja chat template) wrapped so that it renders a conversation
  exactly as training rendered its prompts:

  - a last user message that carries neither format instruction gets the
    stdin one appended (`problem_messages`), so a bare problem statement is
    prompted as in training; a message that already ends with the functional
    instruction and starter code is left as it is;
  - the training system prompt, when there was one and none is given;
  - the training `chat_template_kwargs` (e.g. `enable_thinking=False`) as
    defaults that a caller may still override.

  The export's default template (transformers, vLLM); the unwrapped one stays
  available as the named template "base".
  """
  q = json.dumps
  lines = [
      f"{{%- set _mc_stdin = {q(STDIN_FORMAT)} %}}",
      f"{{%- set _mc_functional = {q(FUNCTIONAL_FORMAT)} %}}",
      "{%- if messages and messages[-1]['role'] == 'user' and messages[-1]['content'] is string"
      " and _mc_stdin not in messages[-1]['content']"
      " and _mc_functional not in messages[-1]['content'] %}",
      "{%- set messages = messages[:-1] + [{'role': 'user', 'content':"
      " messages[-1]['content'] ~ '\\n\\n' ~ _mc_stdin}] %}",
      "{%- endif %}"]
  if system:
    lines += ["{%- if not messages or messages[0]['role'] != 'system' %}",
              f"{{%- set messages = [{{'role': 'system', 'content': {q(system)}}}] + messages %}}",
              "{%- endif %}"]
  for name, value in sorted((chat_template_kwargs or {}).items()):
    lines.append(f"{{%- if {name} is not defined %}}{{%- set {name} = {q(value)} %}}"
                 "{%- endif %}")
  return "\n".join(lines) + "\n" + base


def with_training_template(tokenizer, *, system: str | None = None,
                           chat_template_kwargs: dict[str, Any] | None = None):
  """A copy of `tokenizer` whose default chat template is
  `training_chat_template` of its own (the original is named "base")."""
  out = copy.deepcopy(tokenizer)
  current = tokenizer.chat_template
  named = dict(current) if isinstance(current, dict) else {"default": current}
  if not named.get("default"):
    raise ValueError("the tokenizer has no chat template to export")
  named["base"] = named["default"]
  named["default"] = training_chat_template(named["base"], system=system,
                                            chat_template_kwargs=chat_template_kwargs)
  out.chat_template = named
  return out


def encode_prompt(tokenizer, problem, *, system: str | None = None,
                  chat_template_kwargs: dict[str, Any] | None = None) -> list[int]:
  """Token ids of the templated prompt, generation prompt appended."""
  text = tokenizer.apply_chat_template(
      problem_messages(problem, system), tokenize=False, add_generation_prompt=True,
      **(chat_template_kwargs or {}))
  return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_problems(tokenizer, problems, *, system: str | None = None,
                    chat_template_kwargs: dict[str, Any] | None = None,
                    max_prompt_length: int = 0) -> tuple[list, list[list[int]]]:
  """(kept problems, their prompt ids): `encode_prompt` for each problem,
  dropping those whose prompt is over `max_prompt_length` tokens (0: none)."""
  kept, ids = [], []
  for p in problems:
    x = encode_prompt(tokenizer, p, system=system, chat_template_kwargs=chat_template_kwargs)
    if not max_prompt_length or len(x) <= max_prompt_length:
      kept.append(p)
      ids.append(x)
  return kept, ids


def decode_completion(tokenizer, token_ids: Sequence[int]) -> str:
  """A response's text as the judge needs it.

  Special tokens are kept (reasoning models' `<think>`/`</think>` can be
  special, and the judge must see where reasoning ends); only the stop
  marker that ended the response is removed.
  """
  text = tokenizer.decode(list(token_ids), skip_special_tokens=False)
  markers = set(STOP_STRINGS) | {t for t in (tokenizer.eos_token, tokenizer.pad_token) if t}
  stripped = True
  while stripped:
    stripped = False
    for m in markers:
      if text.endswith(m):
        text, stripped = text[:-len(m)], True
  return text


def stop_token_ids(tokenizer, extra: Sequence[str] = ()) -> list[int]:
  """Ids of the tokenizer's EOS and the usual chat end markers it knows."""
  ids = set()
  if tokenizer.eos_token_id is not None:
    ids.add(int(tokenizer.eos_token_id))
  vocab = tokenizer.get_vocab()
  for s in tuple(STOP_STRINGS) + tuple(extra):
    if s in vocab:
      ids.add(int(vocab[s]))
  if not ids:
    raise ValueError("the tokenizer has no EOS or chat end token; set "
                     "rollout.stop_tokens in the config")
  return sorted(ids)
