"""Notebooks (jupytext percent-format .py files) run top to bottom, and say what they show."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))

# A line each notebook must print (its conclusion), and the files it must write.
EXPECT = {
    "figure2": ("Optimal reaches the target at the lowest cost", []),
    "lower_bound": ("lower bound", ["lower_bound.png"]),
    "theory_tour": ("Theorem D.5 predicts", []),
}


def test_every_notebook_has_expectations():
    assert {p.stem for p in NOTEBOOKS} == set(EXPECT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "COSTSGD_NOTEBOOK_OUT": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    phrase, files = EXPECT[path.stem]
    assert phrase in proc.stdout
    for name in files:
        assert (tmp_path / name).stat().st_size > 10_000
