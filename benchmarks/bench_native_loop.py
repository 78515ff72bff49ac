"""Benchmark: the engine's native step loop with 1, 2, 4 and 8 trials stepped in lockstep.

``costsgd/problems/_least_squares.cc`` steps ``COSTSGD_GROUP`` trials at a time (4 as
shipped): one trial's step is a chain of dependent operations, so independent
trials interleaved overlap their latencies. This script builds the source once
per group size (``g++ -O3 -march=native -fopenmp-simd -DCOSTSGD_GROUP=g``, in
a temporary folder), registers each build as its own XLA FFI target, and times
each on the same work, interleaved in one process on one JAX device (one core):
1500 trials x 250 steps of random rows of a random 3000 x d matrix, float32,
medians of ``--repeats``. All builds must return the same iterates bit for bit.

Usage::

    python benchmarks/bench_native_loop.py                 # d = 5 20 50 100 200
    python benchmarks/bench_native_loop.py --d 50 --repeats 9
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from costsgd.problems._least_squares_native import SOURCE, pad_rows  # noqa: E402

GROUPS = (1, 2, 4, 8)
FLAGS = ["-std=c++17", "-O3", "-march=native", "-fopenmp-simd", "-fPIC", "-shared", "-w"]


def build(folder: Path) -> dict[int, str]:
    """One FFI target per group size: ``{group: target name}``."""
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        raise SystemExit("bench_native_loop: no C++ compiler found (set CXX)")
    targets = {}
    for g in GROUPS:
        lib = folder / f"loop{g}.so"
        cmd = [cxx, *FLAGS, f"-DCOSTSGD_GROUP={g}", f"-I{jax.ffi.include_dir()}", str(SOURCE)]
        subprocess.run([*cmd, "-o", str(lib)], check=True, capture_output=True)
        handler = ctypes.cdll.LoadLibrary(str(lib)).CostsgdLinearSgdSteps
        name = f"bench_linear_sgd_steps_{g}"
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(handler), platform="cpu")
        targets[g] = name
    return targets


def time_d(targets: dict[int, str], d: int, repeats: int) -> dict[int, float]:
    M, n, L = 1500, 3000, 250
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, d)).astype(np.float32)
    rows, b = pad_rows(a), rng.normal(size=n).astype(np.float32)
    a_norm2, ones = (a * a).sum(1), np.ones(n, np.float32)
    idx = rng.integers(0, n, (M, L)).astype(np.int32)
    eta, x = np.full(L, 1e-3, np.float32), np.zeros((M, d), np.float32)
    bounds = np.array([1, L, 0], np.int32)
    out = (jax.ShapeDtypeStruct((M, d), jnp.float32),) * 2 + (
        jax.ShapeDtypeStruct((M,), jnp.float32),
    )
    fns = {}
    for g, name in targets.items():
        call = jax.ffi.ffi_call(name, out)
        fns[g] = jax.jit(
            lambda x, i, call=call: call(
                x, x, jnp.zeros(M, jnp.float32), i, eta[None], bounds[None], rows[None],
                b[None], a_norm2[None], ones[None], ones[None], jnp.ones((1,), jnp.float32),
            )
        )  # fmt: skip
    results = {g: np.asarray(f(x, idx)[0]) for g, f in fns.items()}
    for g, r in results.items():
        assert np.array_equal(r, results[1]), f"group {g} differs from group 1"
    times = {g: [] for g in fns}
    for _ in range(repeats):
        for g, f in fns.items():
            t0 = time.perf_counter()
            f(x, idx)[0].block_until_ready()
            times[g].append((time.perf_counter() - t0) / (M * L) * 1e9)
    return {g: statistics.median(v) for g, v in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, nargs="+", default=[5, 20, 50, 100, 200])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"one core, float32, 1500 trials x 250 steps, load average {load:.2f}")
    with tempfile.TemporaryDirectory(prefix="costsgd_loop_") as folder:
        targets = build(Path(folder))
        print(f"{'d':>5}" + "".join(f"{f'group {g}':>12}" for g in GROUPS) + "   ns per trial-step")
        for d in args.d:
            ns = time_d(targets, d, args.repeats)
            print(f"{d:>5}" + "".join(f"{ns[g]:12.2f}" for g in GROUPS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
