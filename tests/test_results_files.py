"""Results files: a format version in each, and a schema checked before anything is plotted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from costsgd.cli import main
from costsgd.experiments import figure2 as f2
from costsgd.experiments import figure6 as f6
from costsgd.experiments import results as rf
from costsgd.experiments.grpo import study

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def figure2_results(tmp_path_factory):
    config = f2.PAPER._replace(n=200, d=4, steps=60, trials=2, checkpoints=4)
    path = f2.save_results(f2.run(config), tmp_path_factory.mktemp("r") / "figure2.npz")
    return f2.load_results(path)


def write_npz(path, results, *, experiment="figure2", format_version=rf.FORMAT_VERSION):
    """An npz results file as save_results writes it, without its checks."""
    meta = {"experiment": experiment, "config": results["config"], "versions": {}}
    if format_version is not None:
        meta["format"] = format_version
    arrays = {k: np.asarray(v) for k, v in results.items() if k not in ("config", "versions")}
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def grpo_results():
    """The smallest grpo-study results the report reads: one baseline run."""
    run = {
        "stage": "main",
        "method": "no sampling",
        "seed": 0,
        "lr": 1e-3,
        "eval_tokens": [0.0, 10.0, 20.0],
        "eval_processed_tokens": [0.0, 12.0, 24.0],
        "eval_accuracy": [0.1, 0.2, 0.3],
        "iter_tokens": [10.0, 10.0],
        "iter_processed_tokens": [12.0, 12.0],
        "iter_pstar_cost_ratio": [0.9, 0.8],
        "iter_zero_adv_frac": [0.5, 0.4],
    }
    config = {
        "methods": ["no sampling"],
        "seeds": [0],
        "regime_seeds": [],
        "grpo": {"token_budget": None, "eval_every": 5},
    }
    return {"config": config, "versions": {}, "lr": 1e-3, "runs": [run], "complete": True}


def write_json(path, data, *, experiment="grpo-study"):
    path.write_text(json.dumps({"experiment": experiment, **data}))
    return path


def _without(d, key):
    return {k: v for k, v in d.items() if k != key}


def figure2_cases(res):
    config = res["config"]
    return {
        "figure6 in the metadata": (res, {"experiment": "figure6"}, "no 'gamma_fractions'"),
        "an array missing": (_without(res, "error"), {}, "no 'error' entry"),
        "NaN in an array": ({**res, "error": res["error"] * np.nan}, {}, "NaN"),
        "empty arrays": (
            {**res, "steps": res["steps"][:0], "cost": res["cost"][..., :0]},
            {},
            "is empty",
        ),
        "more strategies than rows": (
            {**res, "config": {**config, "strategies": [*config["strategies"], "extra"]}},
            {},
            "strategy axis",
        ),
        "trials not the arrays'": (
            {**res, "config": {**config, "trials": 5}},
            {},
            "trial axis",
        ),
        "an array of the wrong rank": ({**res, "error": res["error"][0]}, {}, "3 axes"),
        "config not a mapping": ({**res, "config": [1, 2]}, {}, "must be a mapping"),
        "text where numbers go": (
            {**res, "second_moment": np.array(["a", "b", "c"])},
            {},
            "float values",
        ),
        "a newer format": (res, {"format_version": rf.FORMAT_VERSION + 1}, "newer than"),
        "steps not increasing": ({**res, "steps": res["steps"][::-1]}, {}, "increasing"),
    }


def test_plot_refuses_figure_files_of_the_wrong_schema_in_one_line(
    figure2_results, tmp_path, capsys
):
    for i, (name, (res, kw, why)) in enumerate(figure2_cases(figure2_results).items()):
        path = write_npz(tmp_path / f"f{i}.npz", res, **kw)
        assert main(["plot", str(path), "--out", str(tmp_path / "x.png")]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("costsgd plot: error: "), (name, err)
        assert str(path) in err and why in err, (name, err)
    assert not (tmp_path / "x.png").exists()


def grpo_cases(data):
    run = data["runs"][0]
    deep = "[" * 100_000 + "]" * 100_000
    return {
        "runs not a list": ({**data, "runs": {"a": 1}}, "must be a list"),
        "no runs": ({**data, "runs": []}, "is empty"),
        "a run without accuracy": (
            {**data, "runs": [_without(run, "eval_accuracy")]},
            "no 'eval_accuracy'",
        ),
        "curves of different lengths": (
            {**data, "runs": [{**run, "eval_accuracy": [0.1, 0.2]}]},
            "eval axis",
        ),
        "null in a curve": (
            {**data, "runs": [{**run, "eval_accuracy": [0.1, None, 0.3]}]},
            "float values",
        ),
        "no baseline run": (
            {**data, "runs": [{**run, "method": "p*"}]},
            "baseline method",
        ),
        "config without grpo": (
            {**data, "config": _without(data["config"], "grpo")},
            "no 'grpo'",
        ),
        "deeply nested": (deep, "nested too deeply"),
    }


def test_plot_refuses_grpo_files_of_the_wrong_schema_in_one_line(tmp_path, capsys):
    for i, (name, (data, why)) in enumerate(grpo_cases(grpo_results()).items()):
        path = tmp_path / f"g{i}.json"
        if isinstance(data, str):
            path.write_text('{"experiment": "grpo-study", "runs": ' + data + "}")
        else:
            write_json(path, data)
        assert main(["plot", str(path), "--out", str(tmp_path / "x.png")]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("costsgd plot: error: "), (name, err)
        assert str(path) in err and why in err, (name, err)
    assert not (tmp_path / "x.png").exists()


def test_the_smallest_valid_grpo_file_passes_the_schema(tmp_path):
    """The cases above differ from this file in one entry each."""
    path = write_json(tmp_path / "ok.json", grpo_results())
    assert study.load_results(path)["runs"][0]["seed"] == 0


def test_every_file_records_its_format_and_old_files_still_read(figure2_results, tmp_path):
    path = f2.save_results(figure2_results, tmp_path / "new.npz")
    with np.load(path) as z:
        assert json.loads(str(z["meta"]))["format"] == rf.FORMAT_VERSION
    legacy = write_npz(tmp_path / "legacy.npz", figure2_results, format_version=None)
    assert f2.load_results(legacy)["error"].shape == figure2_results["error"].shape
    js = rf.save_json_results({"config": {}}, tmp_path / "s.json", experiment="x")
    assert json.loads(js.read_text())["format"] == rf.FORMAT_VERSION
    assert rf.read_results(js) == ("x", {"config": {}})
    # the study in docs/results predates the format key: format 1, read and checked
    shipped = study.load_results(ROOT / "docs" / "results" / "grpo_study.json")
    assert len(shipped["runs"]) > 0
    for bad in (0, "2", True):
        write_json(tmp_path / "b.json", {**grpo_results(), "format": bad})
        with pytest.raises(ValueError, match="invalid results format"):
            rf.read_results(tmp_path / "b.json")


def test_figure6_files_are_checked_too(tmp_path):
    config = f6.PAPER._replace(n=200, d=4, steps=60, trials=2, checkpoints=4)
    res = f6.run(config._replace(gamma_fractions=(0.0, 0.5)))
    path = f6.save_results(res, tmp_path / "figure6.npz")
    assert f6.load_results(path)["size"].shape == (2,)
    bad = write_npz(tmp_path / "bad.npz", {**res, "size": res["size"][:1]}, experiment="figure6")
    with pytest.raises(ValueError, match="budget axis"):
        f6.load_results(bad)


_LIMITED_VERIFY = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
from costsgd.cli import main
sys.exit(main(["verify", "--claim", "appC-greedy", "--jobs", "1", "--out", sys.argv[1]]))
"""


def test_verify_out_is_atomic_a_failed_write_keeps_the_old_file(tmp_path):
    """Files may not grow past 200 bytes: the JSON write fails half-way. The previous
    file is left whole (it was truncated when verify wrote in place)."""
    out = tmp_path / "verify.json"
    out.write_text("previous results\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COSTSGD_NO_COMPILE_CACHE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _LIMITED_VERIFY, str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("costsgd verify: error: cannot write"), proc.stderr
    assert out.read_text() == "previous results\n"
    assert [p.name for p in tmp_path.iterdir()] == ["verify.json"]  # no temporary left


def test_verify_out_empty_is_an_error(capsys):
    assert main(["verify", "--claim", "appC-greedy", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "empty" in err
