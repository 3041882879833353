"""Code extraction from a model completion."""
import re

_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL)
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*$", re.MULTILINE)
_PY_TAGS = ("python", "py", "python3", "py3", "")


def extract_code(completion: str):
  """Returns the code to run, or None when there is no complete fenced block.

  `<think>...</think>` is removed (an unclosed think block swallows the rest).
  The last complete block tagged python/py/python3/py3/untagged wins, else
  the last complete block of any language. An unclosed final fence (output
  truncated mid-block) means no complete code, even after earlier blocks.
  """
  text = _THINK.sub("", completion)
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
