"""Code extraction from a model completion."""
import re

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*$", re.MULTILINE)
_PY_TAGS = ("python", "py", "python3", "py3", "")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def _answer_part(completion: str, prompt_opens_think: bool):
  """The text after the reasoning, or None while the reasoning is unfinished.

  Everything up to the last `</think>` is reasoning. A completion whose
  prompt opened a think block (DeepSeek-R1-distill templates end the prompt
  with `<think>`) is all reasoning until its `</think>`; so is one that opens
  a block itself and never closes it.
  """
  close = completion.rfind(THINK_CLOSE)
  if close >= 0:
    return completion[close + len(THINK_CLOSE):]
  if prompt_opens_think or THINK_OPEN in completion:
    return None
  return completion


def extract_code(completion: str, *, prompt_opens_think: bool = False):
  """Returns the code to run, or None when there is no complete fenced block.

  Reasoning is skipped (see `_answer_part`): a draft code block inside it is
  never graded, and a completion truncated mid-reasoning has no code. In the
  answer, the last complete block tagged python/py/python3/py3/untagged
  wins, else the last complete block of any language. An unclosed final
  fence (output truncated mid-block) means no complete code, even after
  earlier blocks.
  """
  text = _answer_part(completion, prompt_opens_think)
  if text is None:
    return None
  blocks, open_tag, start = [], None, 0
  for m in _FENCE.finditer(text):
    if open_tag is None:
      open_tag, start = m.group(1).lower(), m.end() + 1
    elif not m.group(1):  # A bare fence closes the open block.
      blocks.append((open_tag, text[start:m.start()]))
      open_tag = None
  if open_tag is not None:
    return None
  for tag, body in reversed(blocks):
    if tag in _PY_TAGS:
      return body
  return blocks[-1][1] if blocks else None


def prompt_opens_think(prompt_text: str) -> bool:
  """True when a rendered prompt leaves a `<think>` block open for the
  completion (the completion then starts inside the reasoning)."""
  return prompt_text.rfind(THINK_OPEN) > prompt_text.rfind(THINK_CLOSE)
