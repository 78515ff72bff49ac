"""The command line: `costsgd predict` prints the Eq. 8 / Eq. 10 table."""

import subprocess
import sys

import costsgd as cs
from costsgd.cli import main


def test_predict_prints_the_paper_ratios(capsys):
    assert main(["predict", "--n", "300", "--d", "10", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    prob = cs.least_squares(300, 10, seed=3)
    r = cs.cost_ratios(prob.G, prob.c)
    assert f"K(p*)/K(unif) = {r.optimal_vs_uniform:.4f}" in out
    assert f"K(p*)/K(var) = {r.optimal_vs_variance:.4f}" in out
    assert f"K(var)/K(unif) = {r.variance_vs_uniform:.4f}" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].islower()}
    assert float(rows["optimal"][3]) == 1.0
    assert float(rows["uniform"][3]) > 1.0 and float(rows["variance"][3]) > 1.0


def test_console_script_module_runs():
    out = subprocess.run(
        [sys.executable, "-m", "costsgd.cli", "predict", "--n", "50", "--d", "5"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "Eq. 8" in out
