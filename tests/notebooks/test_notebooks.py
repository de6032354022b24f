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


def test_other_readers_see_times_as_utc_timestamps(repo):
    """DuckDB and pyarrow, which no one here wrote, read mtime and ctime of afb's node files as UTC
    timestamps with nanoseconds (Parquet TIMESTAMP(NANOS, isAdjustedToUTC=true)), not as integers."""
    import duckdb
    import pyarrow.parquet as pq

    files = sorted((repo / "demo" / "demo" / "index" / "data").glob("*/nodes.parquet"))
    assert files
    schema = pq.read_schema(files[-1])
    for column in ("mtime", "ctime"):
        t = schema.field(column).type
        assert str(t) in ("timestamp[ns, tz=UTC]", "timestamp[ns, tz=+00:00]"), (column, t)
    con = duckdb.connect()
    kinds = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT mtime, ctime FROM read_parquet('{files[-1]}')").fetchall()}
    assert all("TIMESTAMP" in v for v in kinds.values()), kinds
    recent = con.execute(
        f"SELECT count(*) FROM read_parquet('{files[-1]}') WHERE mtime > TIMESTAMPTZ '2000-01-01 00:00:00+00'"
    ).fetchone()[0]
    assert recent > 0
