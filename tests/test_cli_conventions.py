"""Conventions every ``costsgd`` command keeps: ``--version``, ``python -m costsgd``, defaults in
``--help``, and a missing extra reported before any work as one line naming what to install."""

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import costsgd
from costsgd.cli import build_parser, main
from costsgd.cli.common import HelpFormatter, missing_modules

ROOT = Path(__file__).resolve().parents[1]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"costsgd {costsgd.__version__}\n"


def test_python_m_costsgd_is_the_command_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "costsgd", "predict", "--n", "50", "--d", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "K(p*)/K(unif)" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "costsgd", "predict", "--n", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("costsgd predict: error: ")


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_help_shows_every_default(command):
    parser = _subcommands()[command]
    formatter = HelpFormatter(parser.prog)
    silent = []
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0:
            continue  # positional arguments and flags: nothing to default
        if "default" not in formatter._get_help_string(action):
            silent.append("/".join(action.option_strings))
    assert silent == [], f"options of {command} whose --help states no default"
    assert isinstance(parser.formatter_class(parser.prog), HelpFormatter)


def test_help_formatter_appends_defaults_in_the_form_they_are_typed():
    parser = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
    parser.add_argument("--rate", type=float, default=0.5, help="a rate")
    parser.add_argument("--names", default=("a", "b"), help="comma-separated names")
    parser.add_argument("--seeds", nargs="+", default=(1, 2), help="seeds")
    parser.add_argument("--share", default=5, help="share in %%")
    parser.add_argument("--out", default="o", help="folder (default: ./o)")
    text = " ".join(parser.format_help().split())
    assert "a rate (default: 0.5)" in text
    assert "comma-separated names (default: a,b)" in text
    assert "seeds (default: 1 2)" in text
    assert "share in % (default: 5)" in text
    assert "folder (default: ./o) --" not in text and "(default: ./o)" in text
    assert text.count("default:") == 5


# command line, module hidden, extra to install
EXTRAS = [
    (["figure2", "--demo"], "matplotlib", "plot"),
    (["figure6", "--demo"], "matplotlib", "plot"),
    (["plot", "results.npz"], "matplotlib", "plot"),
    (["grpo-study", "--smoke"], "torch", "grpo"),
    (["grpo-study", "--smoke"], "tqdm", "grpo"),
]


@pytest.mark.parametrize(("argv", "module", "extra"), EXTRAS)
def test_a_missing_extra_is_one_line_before_any_work(argv, module, extra, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # what `import module` then raises on
    assert missing_modules([module]) == [module]
    out = tmp_path / "out"
    err = _run_captured([*argv, "--out", str(out)])
    assert err == (
        f'costsgd {argv[0]}: error: {argv[0]} needs {module}: pip install "costsgd[{extra}]"\n'
    )
    assert not out.exists()


def _run_captured(argv: list[str]) -> str:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(argv) == 2
    return err.getvalue()


def test_every_command_declares_the_extras_its_modules_import():
    # The commands that draw or train need an extra; predict and verify run on the core install.
    needs = {name: p.get_default("needs") for name, p in _subcommands().items()}
    assert needs["figure2"] == needs["figure6"] == needs["plot"] == (("matplotlib",), "plot")
    assert needs["grpo-study"] == (("torch", "matplotlib", "tqdm"), "grpo")
    assert needs["predict"] is None and needs["verify"] is None


def test_replot_writes_beside_its_results_file_unless_out_says_otherwise(tmp_path, capsys):
    source = ROOT / "docs" / "results" / "grpo_study.json"
    assert json.loads(source.read_text())["config"], "the committed study results"
    beside = tmp_path / "mine"
    beside.mkdir()
    shutil.copy(source, beside / "grpo_study.json")
    assert main(["grpo-study", "--replot", str(beside / "grpo_study.json")]) == 0
    assert sorted(p.name for p in beside.iterdir()) == [
        "grpo_study.json",
        "grpo_study.md",
        "grpo_study.png",
        "grpo_study_summary.json",
    ]
    elsewhere = tmp_path / "elsewhere"
    argv = ["grpo-study", "--replot", str(beside / "grpo_study.json"), "--out", str(elsewhere)]
    assert main(argv) == 0
    assert (elsewhere / "grpo_study.png").is_file() and (elsewhere / "grpo_study.md").is_file()
    capsys.readouterr()
