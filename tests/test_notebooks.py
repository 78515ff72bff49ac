"""Notebooks (jupytext percent-format .py files) run top to bottom without error."""

import os
import pathlib
import subprocess
import sys

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "COSTSGD_NOTEBOOK_OUT": str(tmp_path)}
    subprocess.run([sys.executable, str(path)], check=True, cwd=tmp_path, env=env, timeout=300)


def test_there_are_notebooks():
    assert NOTEBOOKS
