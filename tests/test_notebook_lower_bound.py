"""The lower-bound notebook (jupytext percent format) runs as a script and its checks pass."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lower_bound_notebook_executes(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MPLBACKEND": "Agg",
        "COSTSGD_NOTEBOOK_OUT": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "notebooks" / "lower_bound.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "lower bound" in proc.stdout
    assert (tmp_path / "lower_bound.png").stat().st_size > 10_000
