"""Colab notebooks: each .ipynb matches its percent-format .py, and each runs in a kernel.

CI executes every .ipynb in a real Jupyter kernel (nbclient + ipykernel, both in
the `[test]` extra) against tiny settings (`MICROCODER_NOTEBOOK_CI=1`), with this
checkout first on the kernel's PYTHONPATH; the install cell then finds an
importable microcoder_jax with a checkout root and skips itself.
"""

import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(ROOT, "colab")
NAMES = ("quickstart", "losses", "evaluator")
BADGE = "https://colab.research.google.com/github/your-org/microcoder_jax/blob/main/colab/{}.ipynb"
REPO_URL = 'REPO_URL = "https://github.com/your-org/microcoder_jax"  # @param {type:"string"}'
CELL_TIMEOUT_S = 420  # the quickstart's training cell is the long one


def _without_cell_ids(notebook_json):
  """A notebook's JSON with the cell ids dropped (jupytext draws new ones at random)."""
  notebook = json.loads(notebook_json)
  for cell in notebook["cells"]:
    cell.pop("id", None)
  return notebook


@pytest.mark.parametrize("name", NAMES)
def test_notebook_matches_its_script_and_is_thin(name):
  import jupytext  # pylint: disable=g-import-not-at-top
  import nbformat  # pylint: disable=g-import-not-at-top
  script = jupytext.read(os.path.join(COLAB, f"{name}.py"), fmt="py:percent")
  path = os.path.join(COLAB, f"{name}.ipynb")
  notebook = nbformat.read(path, as_version=4)
  nbformat.validate(notebook)
  # What `jupytext --to ipynb colab/NAME.py` writes, cell ids aside: sources,
  # cell types and notebook metadata all come from the .py.
  with open(path, encoding="utf-8") as f:
    assert _without_cell_ids(f.read()) == _without_cell_ids(jupytext.writes(script, fmt="ipynb")), \
        f"colab/{name}.ipynb is out of date: jupytext --update --to ipynb colab/{name}.py"
  # The kernel metadata Colab expects, kept by the .py's header.
  assert notebook.metadata.kernelspec == {"name": "python3", "display_name": "Python 3",
                                          "language": "python"}
  assert notebook.metadata.language_info == {"name": "python"}
  assert notebook.metadata.colab == {"provenance": []}
  first = notebook.cells[0]
  assert first.cell_type == "markdown"
  assert f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]" \
         f"({BADGE.format(name)})" in first.source
  assert "Target runtime" in first.source
  assert "`REPO_URL`" in first.source
  code = [c for c in notebook.cells if c.cell_type == "code"]
  assert code and all(c.source.startswith("# @title ") for c in code)
  assert "find_spec(\"microcoder_jax\")" in code[0].source  # install cell skips itself
  assert REPO_URL in code[0].source.splitlines()  # the one place for a fork's URL
  assert all("your-org" not in c.source for c in code[1:])
  assert all(not c.get("outputs") for c in code), "commit notebooks without outputs"
  assert max(len(c.source.splitlines()) for c in code) <= 70


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_a_kernel(name, tmp_path, monkeypatch):
  import nbclient  # pylint: disable=g-import-not-at-top
  import nbformat  # pylint: disable=g-import-not-at-top
  # The kernel inherits os.environ: tiny settings, one CPU device, this checkout.
  monkeypatch.setenv("MICROCODER_NOTEBOOK_CI", "1")
  monkeypatch.setenv("MICROCODER_NOTEBOOK_WORKDIR", str(tmp_path))
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setenv("PYTHONHASHSEED", "0")
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
      p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
  notebook = nbformat.read(os.path.join(COLAB, f"{name}.ipynb"), as_version=4)
  nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()
  outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
  stdout = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  assert "microcoder_jax from the " in stdout  # the install cell names its source
  if name == "quickstart":
    assert f"microcoder_jax from the checkout this runtime imports: {ROOT}" in stdout
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert any("image/png" in o.get("data", {}) for o in outputs), "curves not shown inline"
    assert "overall pass@1" in stdout
    assert (tmp_path / "benchmark" / "results.jsonl").exists()
  elif name == "losses":
    assert "PyTorch gradient norm through the JAX loss" in stdout
  else:
    assert "| sum_ab    | correct         | pass" in stdout
