"""``costsgd info``: versions, backends and cache folders, without building unless asked."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def info(tmp_path, *flags, **env):
    full = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CXX", "XLA_FLAGS", "COSTSGD_NO_COMPILE_CACHE")
    }
    full.update(XDG_CACHE_HOME=str(tmp_path), JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, **env)
    return subprocess.run(
        [sys.executable, "-m", "costsgd.cli", "info", *flags],
        capture_output=True, text=True, env=full, timeout=300,
    )  # fmt: skip


def test_info_reports_without_building(tmp_path):
    done = info(tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("costsgd ") and "jax " in out and "numpy " in out
    assert "xla: available" in out
    assert f"native loops: {tmp_path}/costsgd/native" in out
    assert f"JAX compilation cache (CLI runs): {tmp_path}/costsgd/jax" in out
    assert "native (least squares, CPUs): " in out
    assert not list(tmp_path.rglob("*.so")), "info built the native loop without --build"
    if "not built yet" in out:
        assert "compiler: " in out


def test_info_names_the_reason_the_native_loop_is_unavailable(tmp_path):
    done = info(tmp_path, CXX="g++ '")
    assert done.returncode == 0, done.stderr
    assert 'native (least squares, CPUs): unavailable: CXX="g++ \'" cannot be parsed' in done.stdout
