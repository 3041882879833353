"""The judge CLI as `python -m microcoder_jax.evaluator`; see `microcoder_jax.evaluate`.

`python -m microcoder_jax.evaluate` runs the same `main`. Neither imports jax:
the CLI needs only this package and the standard library.
"""
import sys

from microcoder_jax.evaluate import main

if __name__ == "__main__":
  sys.exit(main())
