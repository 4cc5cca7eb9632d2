"""The notebooks in notebooks/ run top to bottom on a fresh kernel, and are committed without outputs.

Each notebook builds its own small demo workspace in a temporary folder, so running it here is what an
analyst or steward gets when they open it: a cell that raises fails the test, with the cell and its
traceback. The kernel is this interpreter (the project's .venv), never whatever `python` is first on PATH.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "python3"
CELL_TIMEOUT_S = 300


@pytest.fixture
def kernel_on_this_python(tmp_path, monkeypatch) -> str:
    """A `python3` kernel spec that starts this interpreter, found first (JUPYTER_PATH beats the user's
    and the system's kernel specs)."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "campus-kg (.venv)", "language": "python"}), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def test_the_notebooks_are_there():
    """The parametrised tests below would pass vacuously on an empty folder."""
    assert {"01_explore_the_graph.ipynb", "02_tune_resolution.ipynb",
            "03_quality_and_lineage.ipynb"} <= {p.name for p in NOTEBOOKS}


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, kernel_on_this_python: str, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    # First, in the kernel: it is this interpreter's environment (the .venv with the project installed).
    notebook.cells.insert(0, nbformat.v4.new_code_cell(
        f"import sys\nassert sys.prefix == {sys.prefix!r}, sys.prefix"))
    run_in = tmp_path / "cwd"  # anything a notebook writes beside itself lands here, not in the checkout
    run_in.mkdir()
    client = NotebookClient(notebook, kernel_name=kernel_on_this_python, timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(run_in)}})
    client.execute()  # raises CellExecutionError, naming the cell, when one fails
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    executed = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in executed)  # every cell ran, none skipped


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"
             and (c.outputs or c.execution_count is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} hold outputs or execution counts; clear them before "
                       "committing (Jupyter: Edit > Clear Outputs of All Cells, then save)")


def test_readme_links_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((notebooks/[^)]+\.ipynb)\)", readme))
    assert linked == {f"notebooks/{p.name}" for p in NOTEBOOKS}
