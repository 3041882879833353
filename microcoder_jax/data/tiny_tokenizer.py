"""A small byte-level BPE tokenizer with a ChatML template, trained on bundled text.

Tests and the CPU demo cannot download a tokenizer; this builds one from a
bundled corpus of synthetic problems and their reference solutions,
deterministically.

    python -m microcoder_jax.data.tiny_tokenizer   # rewrites bundled/tiny_tokenizer
"""

from __future__ import annotations

import json
import os

import tokenizers
import transformers
from tokenizers import decoders, models, pre_tokenizers, trainers

from microcoder_jax.data.datasets import BUNDLED_DIR

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TOKENIZER_DIR = os.path.join(BUNDLED_DIR, "tiny_tokenizer")
CORPUS = os.path.join(BUNDLED_DIR, "tokenizer_corpus.jsonl")


def corpus() -> list[str]:
  """The fixed training texts: format instructions, statements, fenced solutions.

  `bundled/tokenizer_corpus.jsonl` holds the statements and reference solutions
  of the first synthetic problem set; it is kept fixed when the problem set
  grows, so that rebuilding reproduces the bundled tokenizer (and the bundled
  policy's vocabulary) exactly.
  """
  with open(CORPUS, encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def build(vocab_size: int = 512) -> transformers.PreTrainedTokenizerFast:
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                show_progress=False)
  tok.train_from_iterator(corpus(), trainer)
  return transformers.PreTrainedTokenizerFast(
      tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
      chat_template=CHATML)


def load(path: str = TOKENIZER_DIR) -> transformers.PreTrainedTokenizerFast:
  return transformers.AutoTokenizer.from_pretrained(path)


def main():
  tok = build()
  tok.save_pretrained(TOKENIZER_DIR)
  print(f"wrote {TOKENIZER_DIR}: vocab {len(tok)}")


if __name__ == "__main__":
  main()
