"""The command line: `predict`'s table, one-line user errors (exit 2), results files, the compile cache."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import costsgd as cs
from costsgd.cli import main
from costsgd.experiments import figure2 as f2
from costsgd.experiments import results as rf
from costsgd.experiments.runtime import compile_cache_dir

SMALL = ["--n", "200", "--d", "4", "--steps", "60", "--trials", "2", "--checkpoints", "4"]


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch, tmp_path):
    """A cache folder of the test's own (conftest keeps JAX's cache off in-process)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """A small figure2 results file."""
    config = f2.PAPER._replace(n=200, d=4, steps=60, trials=2, checkpoints=4)
    return f2.save_results(f2.run(config), tmp_path_factory.mktemp("r") / "figure2.npz")


def user_error(argv, capsys, command):
    """Run ``argv``; it must fail with exit 2 and exactly one line on stderr."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"costsgd {command}: error: "), err
    return err


def test_predict_prints_the_paper_ratios(capsys):
    assert main(["predict", "--n", "300", "--d", "10", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    prob = cs.least_squares(300, 10, rng=3)
    r = cs.cost_ratios(prob.G, prob.c)
    assert f"K(p*)/K(unif) = {r.optimal_vs_uniform:.4f}" in out
    assert f"K(p*)/K(var) = {r.optimal_vs_variance:.4f}" in out
    assert f"K(var)/K(unif) = {r.variance_vs_uniform:.4f}" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].islower()}
    assert float(rows["optimal"][3]) == 1.0
    assert float(rows["uniform"][3]) > 1.0 and float(rows["variance"][3]) > 1.0


def test_predict_beyond_float64(capsys):
    """L = 1e300 makes the instance overflow: one line naming --L. L = 1e150 makes S(p)
    ~ 1e600: printed as it is, and the ratios (scale-free) are finite."""
    err = user_error(["predict", "--L", "1e300", "--n", "300", "--d", "5"], capsys, "predict")
    assert "--L" in err and "overflow" in err
    assert main(["predict", "--L", "1e150", "--n", "300", "--d", "5"]) == 0
    rows = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines() if ln.strip()}
    assert rows["uniform"][1].endswith("e+599") and float(rows["optimal"][3]) == 1.0
    assert 1.0 < float(rows["uniform"][3]) < np.inf and 1.0 < float(rows["uniform"][4]) < np.inf


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["figure2", "--trials", "0"], "--trials"),
        (["figure6", "--trials", "0"], "--trials"),
        (["predict", "--n", "0"], "--n"),
        (["predict", "--L", "nan"], "--L"),
        (["predict", "--seed", "-1"], "--seed"),
        (["figure6", "--target", "-1"], "--target"),
        (["figure2", "--target", "inf"], "--target"),
        (["figure2", "--steps", "1.5"], "--steps"),
        (["figure2", "--step-scale", "0"], "--step-scale"),
        (["figure2", "--strategies", ","], "--strategies"),
        (["figure2", "--strategies", "uniform,uniform"], "--strategies"),
        (["figure2", "--gradient-bound", "box"], "--gradient-bound"),
        (["figure6", "--gammas", "0,1"], "--gammas"),
        (["figure6", "--gammas", "0,x"], "--gammas"),
        (["figure6", "--gammas", "0.5,0.5"], "--gammas"),
        (["figure6", "--solver", "lp"], "--solver"),
        (["grpo-study", "--iterations", "0"], "--iterations"),
        (["grpo-study", "--seeds", "-1"], "--seeds"),
        (["grpo-study", "--workers", "0"], "--workers"),
        (["grpo-study", "--token-budget", "-5"], "--token-budget"),
        (["grpo-study", "--smoke", "--setting", "PPO"], "--setting"),
        (["grpo-study", "--smoke", "--sweep-seeds", "0"], "sweep_seeds"),
        (["grpo-study", "--smoke", "--methods", "p**"], "--methods"),
        (["grpo-study", "--smoke", "--seeds", "1", "1"], "seeds"),
        (["plot"], "results"),
        (["figure2", "--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_flags_are_one_line_naming_the_option(argv, named, capsys, tmp_path):
    command = argv[0]
    err = user_error([*argv, "--out", str(tmp_path / "out")], capsys, command)
    assert named in err
    assert not (tmp_path / "out").exists()  # failed before any work


def test_no_command_is_a_user_error(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.startswith("costsgd: error:")


def test_help_exits_zero(capsys):
    assert main(["figure2", "--help"]) == 0
    assert "--no-compile-cache" in capsys.readouterr().out


def _corrupt(npz, tmp_path):
    """A copy of ``npz`` with bytes of its ``error`` array flipped (CRC mismatch)."""
    data = bytearray(npz.read_bytes())
    with zipfile.ZipFile(npz) as z:
        info = z.getinfo("error.npy")
    middle = info.header_offset + info.compress_size // 2  # inside the array's data
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(data))
    return path


def test_plot_of_bad_files_is_one_line_naming_the_file(npz, tmp_path, capsys):
    empty = tmp_path / "empty.npz"
    empty.touch()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(npz.read_bytes()[:300])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"experiment": "figure9"}))
    untagged = tmp_path / "untagged.json"
    untagged.write_text("[1, 2]")
    cases = {
        tmp_path / "missing.npz": "does not exist",
        tmp_path: "is not a file",
        empty: "is empty",
        truncated: "truncated or corrupt",
        _corrupt(npz, tmp_path): "truncated or corrupt",
        foreign: "no metadata",
        text: "not a results file",
        other: "figure9",
        untagged: "no 'experiment' entry",
    }
    for path, why in cases.items():
        err = user_error(["plot", str(path), "--out", str(tmp_path / "x.png")], capsys, "plot")
        assert str(path) in err and why in err, err
    assert not (tmp_path / "x.png").exists()


def test_plot_redraws_and_rejects_bad_outputs(npz, tmp_path, capsys):
    assert main(["plot", str(npz), "--out", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").stat().st_size > 10_000
    assert "cost/opt" in capsys.readouterr().out
    err = user_error(["plot", str(npz), "--out", str(tmp_path)], capsys, "plot")
    assert "--out" in err and "is a folder" in err
    err = user_error(["plot", str(npz), "--out", "/proc/costsgd/x.png"], capsys, "plot")
    assert "/proc/costsgd" in err


def test_out_that_is_a_file_or_unwritable_fails_before_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(f2, "run", lambda config: pytest.fail("ran"))
    afile = tmp_path / "afile"
    afile.touch()
    for out, why in [(afile, "is a file"), ("/proc/costsgd", "cannot create")]:
        err = user_error(["figure2", *SMALL, "--out", str(out)], capsys, "figure2")
        assert "--out" in err and why in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    err = user_error(["figure2", *SMALL, "--out", str(ro)], capsys, "figure2")
    assert "not writable" in err


def test_a_diverging_run_names_the_option_and_writes_nothing(tmp_path, capsys):
    err = user_error(
        ["figure2", *SMALL, "--step-scale", "1e300", "--out", str(tmp_path)], capsys, "figure2"
    )
    assert "--step-scale" in err and "target" not in err
    assert not any(tmp_path.iterdir())


def test_non_finite_numbers_after_the_run_name_the_option(tmp_path, capsys, monkeypatch):
    def diverge(*args, **kw):
        res = real(*args, **kw)
        return res._replace(error_average=res.error_average * np.nan)

    real = cs.cost_aware_sgd
    monkeypatch.setattr(cs, "cost_aware_sgd", diverge)
    err = user_error(["figure2", *SMALL, "--out", str(tmp_path)], capsys, "figure2")
    assert "--step-scale" in err and "diverged" in err
    assert not any(tmp_path.iterdir())


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def bug(config):
        raise RuntimeError("a bug")

    monkeypatch.setattr(f2, "run", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["figure2", *SMALL, "--out", str(tmp_path)])


def test_results_files_follow_the_umask_and_leave_no_temporaries(npz, tmp_path):
    results = f2.load_results(npz)
    stale = tmp_path / f".figure2.npz.{2**22 + 12345}.tmp"  # a killed writer's (no such pid)
    stale.write_bytes(b"half")
    for umask, mode in [(0o022, 0o644), (0o077, 0o600)]:
        old = os.umask(umask)
        try:
            path = f2.save_results(results, tmp_path / "figure2.npz")
            png = f2.plot_results(results, tmp_path / "figure2.png")
        finally:
            os.umask(old)
        assert path.stat().st_mode & 0o777 == mode and png.stat().st_mode & 0o777 == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure2.npz", "figure2.png"]


def test_results_with_non_finite_arrays_are_never_written(npz, tmp_path):
    results = f2.load_results(npz)
    results["error"] = results["error"] * np.nan
    with pytest.raises(ValueError, match="'error'"):
        f2.save_results(results, tmp_path / "bad.npz")
    assert not any(tmp_path.iterdir())


def test_a_kill_between_results_and_png_is_repaired_by_plot(npz, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "figure2.npz").write_bytes(npz.read_bytes())  # the PNG was never drawn
    assert main(["plot", str(folder / "figure2.npz")]) == 0
    assert (folder / "figure2.png").stat().st_size > 10_000


def test_plot_dispatches_on_the_recorded_experiment(npz, tmp_path):
    assert rf.experiment_of(npz) == "figure2"
    path = rf.save_json_results({"config": {}, "runs": []}, tmp_path / "s.json", experiment="x")
    assert rf.read_results(path) == ("x", {"config": {}, "runs": []})


def test_compile_cache_folder_and_switches(tmp_path, monkeypatch, capsys):
    assert compile_cache_dir({"XDG_CACHE_HOME": "/c"}).as_posix() == "/c/costsgd/jax"
    assert compile_cache_dir({}) == Path("~/.cache/costsgd/jax").expanduser()
    for value in ("1", "true", "YES"):
        assert compile_cache_dir({"COSTSGD_NO_COMPILE_CACHE": value}) is None
    assert compile_cache_dir({"COSTSGD_NO_COMPILE_CACHE": "0", "XDG_CACHE_HOME": "/c"}) is not None
    monkeypatch.delenv("COSTSGD_NO_COMPILE_CACHE")
    out = tmp_path / "out"
    assert main(["figure2", *SMALL, "--no-compile-cache", "--out", str(out)]) == 0
    assert not (tmp_path / "cache").exists()


def test_console_script_fills_the_compile_cache(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("COSTSGD_NO_COMPILE_CACHE", None)
    argv = [sys.executable, "-m", "costsgd.cli", "figure2", *SMALL, "--out", str(tmp_path / "o")]
    subprocess.run(argv, check=True, capture_output=True, env=env)
    assert any((tmp_path / "cache" / "costsgd" / "jax").iterdir())


@pytest.mark.parametrize(
    "argv", [["figure2", "--trials", "0"], ["plot", "/nonexistent.npz"], ["predict", "--n", "0"]]
)
def test_console_script_user_errors_have_no_traceback(argv):
    proc = subprocess.run(
        [sys.executable, "-m", "costsgd.cli", *argv], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
