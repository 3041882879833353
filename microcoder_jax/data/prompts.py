"""Prompts: chat template + a format instruction that differs by I/O mode."""

from __future__ import annotations

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


def encode_prompt(tokenizer, problem, *, system: str | None = None,
                  chat_template_kwargs: dict[str, Any] | None = None) -> list[int]:
  """Token ids of the templated prompt, generation prompt appended."""
  text = tokenizer.apply_chat_template(
      problem_messages(problem, system), tokenize=False, add_generation_prompt=True,
      **(chat_template_kwargs or {}))
  return list(tokenizer(text, add_special_tokens=False)["input_ids"])


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
