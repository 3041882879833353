"""Colab notebooks: each .ipynb matches its percent-format .py, and each .py runs.

CI executes the paired scripts with plain python (no kernel) against tiny
settings (`MICROCODER_NOTEBOOK_CI=1`); the install cell skips itself because
microcoder_jax is already importable.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(ROOT, "colab")
NAMES = ("quickstart", "losses", "evaluator")
BADGE = "https://colab.research.google.com/github/your-org/microcoder_jax/blob/main/colab/{}.ipynb"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_matches_its_script_and_is_thin(name):
  import jupytext  # pylint: disable=g-import-not-at-top
  import nbformat  # pylint: disable=g-import-not-at-top
  script = jupytext.read(os.path.join(COLAB, f"{name}.py"), fmt="py:percent")
  notebook = nbformat.read(os.path.join(COLAB, f"{name}.ipynb"), as_version=4)
  nbformat.validate(notebook)
  assert [(c.cell_type, c.source) for c in notebook.cells] == \
         [(c.cell_type, c.source) for c in script.cells], \
         f"colab/{name}.ipynb is out of date: jupytext --to ipynb colab/{name}.py"
  first = notebook.cells[0]
  assert first.cell_type == "markdown"
  assert f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]" \
         f"({BADGE.format(name)})" in first.source
  assert "Target runtime" in first.source
  code = [c for c in notebook.cells if c.cell_type == "code"]
  assert code and all(c.source.startswith("# @title ") for c in code)
  assert "find_spec(\"microcoder_jax\")" in code[0].source  # install cell skips itself
  assert all(not c.get("outputs") for c in code), "commit notebooks without outputs"
  assert max(len(c.source.splitlines()) for c in code) <= 70


@pytest.mark.parametrize("name", NAMES)
def test_notebook_script_runs(name, tmp_path):
  env = dict(os.environ, MICROCODER_NOTEBOOK_CI="1", MICROCODER_NOTEBOOK_WORKDIR=str(tmp_path),
             XLA_FLAGS="", PYTHONHASHSEED="0")
  proc = subprocess.run([sys.executable, os.path.join(COLAB, f"{name}.py")], cwd=tmp_path,
                        env=env, capture_output=True, text=True, timeout=420)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  if name == "quickstart":
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert "overall pass@1" in proc.stdout
    assert (tmp_path / "benchmark" / "results.jsonl").exists()
  elif name == "losses":
    assert "PyTorch gradient norm through the JAX loss" in proc.stdout
  else:
    assert "| sum_ab    | correct         | pass" in proc.stdout
