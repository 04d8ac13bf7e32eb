"""Every notebook runs top to bottom, so none of them rots.

They run in a temporary copy of the checkout's layout (``notebooks/`` beside
``data/``), so what they write to ``../outputs`` stays out of the checkout.
"""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# What a notebook writes, under ../outputs of the folder it runs in.
WRITES = {"leader": ["leader_coverage_map.html"]}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A folder laid out like the repository: data/ (copied) and an empty notebooks/."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(ROOT / "data", root / "data", ignore=shutil.ignore_patterns("cache"))
    (root / "notebooks").mkdir()
    return root


def test_there_is_a_notebook_per_user():
    assert {p.stem for p in NOTEBOOKS} >= {"planner", "leader", "analyst"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, checkout, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    folder = checkout / "notebooks"
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert outputs, "a notebook that shows nothing"
    for name in WRITES.get(path.stem, []):
        written = checkout / "outputs" / name
        assert written.stat().st_size > 100_000, name
        assert "乌拉特前旗" in written.read_text(encoding="utf-8")
