"""Every notebook in notebooks/ runs without a cell error against a repository made by scans.

The repository comes from `afb demo --no-serve --data DIR` (emulator, generated share, two scans with
changes in between, then a backup job, which scans a third time); `AFB_BIN` names the afb binary. Run: `AFB_BIN=... .venv/bin/python -m pytest -q tests/notebooks`.
"""
import os
import pathlib
import subprocess

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    afb = os.environ.get("AFB_BIN")
    if not afb:
        pytest.skip("AFB_BIN is not set")
    data = tmp_path_factory.mktemp("demo")
    out = subprocess.run([afb, "demo", "--no-serve", "--data", str(data), "--files", "300"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    repo = data / "repo"
    assert sorted(p.name for p in (repo / "demo" / "demo" / "index" / "snapshots").glob("*.json")) == [
        "00000000000000000001.json",
        "00000000000000000002.json",
        "00000000000000000003.json",
    ]
    return repo


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, repo, tmp_path, monkeypatch):
    monkeypatch.setenv("AFB_REPO", str(repo))
    monkeypatch.setenv("AFB_TENANT", "demo")
    monkeypatch.setenv("AFB_SHARE", "demo")
    monkeypatch.setenv("AFB_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "3 snapshots of demo/demo" in outputs
    assert any(tmp_path.glob("*.png"))


def test_there_are_notebooks():
    assert NOTEBOOKS
