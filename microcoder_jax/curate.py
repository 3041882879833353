"""Alias of `python -m microcoder_jax.curation`, the curation CLI (see there)."""

from microcoder_jax.curation.__main__ import main

if __name__ == "__main__":
  main()
