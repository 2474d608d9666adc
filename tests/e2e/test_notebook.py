"""plot_utils/paper_figures.ipynb is a valid notebook that calls only what plot_utils has, and runs top to bottom in a
real Jupyter kernel (nbclient + ipykernel) where there is no runs/ directory: it says it draws the example data, and
writes and shows every figure it can draw from it."""

from __future__ import annotations

import ast
import base64
import io
import json
import os
from pathlib import Path

import nbclient
import nbformat
import numpy as np
import pytest
from PIL import Image

from plot_utils import data, figures, published, stats, tables
from support.paths import ROOT

NOTEBOOK = ROOT / "plot_utils" / "paper_figures.ipynb"
EXAMPLE_FIGURES = ("game_curves", "aggregate_curves", "final_intervals", "scaling", "train_test", "profiles",
                   "paper_figure1")


def not_blank(png: bytes) -> bool:
    """A PNG that decodes and is not a single colour."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return pixels.size > 10_000 and pixels.std() > 5


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[nbformat.NotebookNode, Path]:
    """The notebook executed with its kernel started in an empty folder (as a new user's, without runs/)."""
    workdir = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", path)  # the kernel imports this checkout's plot_utils
        nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(workdir)}}).execute()
    return notebook, workdir


def test_first_cell_says_it_uses_the_example(executed) -> None:
    notebook, workdir = executed
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    text = "".join(output.get("text", "") for output in first.outputs)
    assert f"No {workdir / 'runs'} directory: drawing the example data" in text
    assert "impala_s1 (train-procgen)" in text


def test_figures_are_written_and_shown(executed) -> None:
    notebook, workdir = executed
    out = workdir / "figures"
    for name in EXAMPLE_FIGURES:
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert not_blank((out / f"{name}.png").read_bytes()), name
    assert not (out / "dormant.png").exists() and not (out / "poi.png").exists()  # nothing to draw them from
    shown = [base64.b64decode(output["data"]["image/png"]) for cell in notebook.cells if cell.cell_type == "code"
             for output in cell.outputs if "image/png" in output.get("data", {})]
    assert len(shown) == len(EXAMPLE_FIGURES) and all(map(not_blank, shown))
    assert "impala_s1 (train-procgen)" in (out / "tables" / "aggregate.md").read_text()
    assert (out / "tidy.csv").stat().st_size > 100_000


def test_notebook_is_valid_and_uses_existing_api() -> None:
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4 and {"metadata", "cells"} <= set(notebook)
    kinds = {cell["cell_type"] for cell in notebook["cells"]}
    assert kinds == {"markdown", "code"}
    modules = {"data": data, "stats": stats, "figures": figures, "tables": tables, "published": published}
    for cell in notebook["cells"]:
        assert isinstance(cell["source"], list) and "metadata" in cell
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and "execution_count" in cell
            tree = ast.parse("".join(line for line in cell["source"] if not line.startswith("%")))  # no magics
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                    assert hasattr(modules[node.value.id], node.attr), f"{node.value.id}.{node.attr}"
