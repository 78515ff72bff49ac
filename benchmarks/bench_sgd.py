"""Benchmark: the JAX Cost-Aware SGD engine, numpy vectorised over trials, and compiled C.

All three run Algorithm 1 on the Figure 2 work (§4.4 least squares, N = 3000,
d = 50, T = 20000, Uniform / Variance / Optimal, float32, Eq. 3's step sizes,
average iterate, errors ½eᵀHe at 50 log-spaced checkpoints), side by side in
one process:

* ``engine``: :func:`costsgd.cost_aware_sgd`, trials split over one JAX device
  per core (as the CLI does), alias draws with threefry inside, the steps in
  least squares' native loop (``costsgd/problems/_least_squares.cc``) when it builds;
* ``engine, XLA step``: the same with ``EngineOptions(backend="xla")`` (XLA's own step);
* ``numpy``: a loop over steps, each step a (3·M, d) array operation over all
  trials (alias draws in bulk, outside the timed steps' arithmetic);
* ``C``: a plain C loop (gcc -O3 -march=native -fopenmp, d fixed at build
  time), one trial per OpenMP iteration over all cores, an alias draw per
  step from splitmix64; built in a temporary folder when gcc is present,
  skipped with a message otherwise.

Printed: the machine (CPU model, cores, load average), ns per trial-step of
each (median of ``--repeats``, the three interleaved so they see the same load),
their ratios, the engine's compile time, the whole 1000-trial figure's wall
time, and (``--cache``) the time a fresh process spends before computing when
JAX's persistent compilation cache is warm (medians over ``--repeats`` fresh
process pairs). On a shared machine compare the
ratios of one run, not absolute numbers.

Usage::

    python benchmarks/bench_sgd.py                 # full: 3 x 1000 trials x 20000 steps
    python benchmarks/bench_sgd.py --quick         # 3 x 200 trials
    python benchmarks/bench_sgd.py --cache --out bench.json
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from costsgd.experiments import figure2 as f2  # noqa: E402
from costsgd.experiments.runtime import use_all_cores  # noqa: E402

use_all_cores()  # as the CLI does: one JAX device per core, before JAX starts

import jax  # noqa: E402
import numpy as np  # noqa: E402

import costsgd as cs  # noqa: E402

C_SOURCE = r"""#ifndef DIM
#define DIM 50
#endif
#include <math.h>
#include <stdint.h>
/* Algorithm 1 on a least-squares finite sum, one trial per OpenMP thread iteration. */
static inline uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
void run(int n, int d_unused, int T, int S, int M, const float *A, const float *b, const float *c,
         const float *w, const uint32_t *thr, const int32_t *alias, const float *eta, float R,
         int K, const int32_t *cps, const float *H, const float *xstar, float *err, float *cost) {
#pragma omp parallel for schedule(dynamic, 1)
  for (long st = 0; st < (long)S * M; st++) {
    int s = (int)(st / M);
    uint64_t seed = 0x1234567ULL + (uint64_t)st * 0x9E3779B97F4A7C15ULL;
    float x[DIM], avg[DIM], e[DIM]; const int d = DIM;
    for (int k = 0; k < d; k++) x[k] = avg[k] = 0.0f;
    float C = 0.0f, et = eta[s];
    const float *ws = w + (long)s * n;
    const uint32_t *ts = thr + (long)s * n;
    const int32_t *as = alias + (long)s * n;
    int next = 0;
    for (int t = 1; t <= T; t++) {
      uint64_t r = splitmix64(&seed);
      uint32_t j = (uint32_t)(((r & 0xFFFFFFFFULL) * (uint64_t)n) >> 32);
      int i = ((uint32_t)(r >> 32) < ts[j]) ? (int)j : as[j];
      const float *a = A + (long)i * d;
      float inv = 1.0f / (float)t, dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int k = 0; k < d; k++) { avg[k] += (x[k] - avg[k]) * inv; dot += a[k] * x[k]; }
      float sc = et * ws[i] * (dot - b[i]), nrm = 0.0f;
#pragma omp simd reduction(+ : nrm)
      for (int k = 0; k < d; k++) { x[k] -= sc * a[k]; nrm += x[k] * x[k]; }
      if (nrm > R * R) { float q = R / sqrtf(nrm); for (int k = 0; k < d; k++) x[k] *= q; }
      C += c[i];
      if (next < K && t == cps[next]) {
        float q = 0.0f;
        for (int k = 0; k < d; k++) e[k] = avg[k] - xstar[k];
        for (int k = 0; k < d; k++) { float h = 0.0f; for (int l = 0; l < d; l++) h += H[k * d + l] * e[l]; q += e[k] * h; }
        err[st * K + next] = 0.5f * q; cost[st * K + next] = C; next++;
      }
    }
  }
}
"""


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{model}, {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def build_c(d: int):
    """Compile the C reference for dimension ``d``; None (with a message) without gcc."""
    gcc = shutil.which("gcc")
    if gcc is None:
        print("C reference skipped: gcc not found")
        return None
    folder = Path(tempfile.mkdtemp(prefix="costsgd_bench_"))
    (folder / "ref.c").write_text(C_SOURCE)
    cmd = [gcc, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", f"-DDIM={d}"]
    out = subprocess.run(
        [*cmd, "ref.c", "-o", "ref.so", "-lm"], cwd=folder, capture_output=True, text=True
    )
    if out.returncode != 0:
        print(f"C reference skipped: gcc failed: {out.stderr.strip()[:300]}")
        return None
    return ctypes.CDLL(str(folder / "ref.so"))


class Work:
    """The Figure 2 work in float32 arrays shared by the three implementations."""

    def __init__(self, trials: int, steps: int):
        self.prob, self.P, self.eta, self.cps = f2.setup(f2.PAPER._replace(steps=steps))
        prob, c = self.prob, self.prob.c
        self.trials, self.steps = trials, steps
        f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
        tables = [cs.alias_table(p) for p in self.P]
        self.threshold = np.ascontiguousarray(np.stack([t.threshold for t in tables]), np.uint32)
        self.accept = np.stack([t.accept for t in tables])
        self.alias = np.ascontiguousarray(np.stack([t.alias for t in tables]), np.int32)
        n = self.P.shape[1]
        self.A, self.b, self.c = f32(prob.A), f32(prob.b), f32(c)
        self.w, self.H, self.x_star = f32(1.0 / (n * self.P)), f32(prob.hessian), f32(prob.x_star)

    def engine(self, seed: int = 0, backend: str = "auto") -> np.ndarray:
        res = cs.cost_aware_sgd(
            self.prob,
            self.P,
            steps=self.steps,
            trials=self.trials,
            step_size=self.eta,
            key=seed,
            checkpoints=self.cps,
            options=cs.EngineOptions(dtype=np.float32, backend=backend),
        )
        return res.error_average

    def c_loop(self, lib) -> np.ndarray:
        S, M, K = 3, self.trials, self.cps.size
        err = np.zeros((S, M, K), np.float32)
        cost = np.zeros_like(err)
        cps = np.ascontiguousarray(self.cps, np.int32)
        ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
        n, d = self.A.shape
        lib.run(
            n, d, self.steps, S, M, ptr(self.A), ptr(self.b), ptr(self.c), ptr(self.w),
            ptr(self.threshold), ptr(self.alias), ptr(np.ascontiguousarray(self.eta, np.float32)),
            ctypes.c_float(self.prob.radius), K, ptr(cps), ptr(self.H), ptr(self.x_star),
            ptr(err), ptr(cost),
        )  # fmt: skip
        return err

    def numpy_steps(self, steps: int, rng) -> float:
        """Seconds for ``steps`` steps of all 3·M trials at once (float32)."""
        S, M = 3, self.trials
        n, d = self.A.shape
        A, b, c, w = self.A, self.b, self.c, self.w
        eta = np.repeat(self.eta.astype(np.float32), M)
        rows_w = np.repeat(np.arange(S), M)
        x = np.zeros((S * M, d), np.float32)
        avg = np.zeros_like(x)
        cost = np.zeros(S * M, np.float32)
        R = np.float32(self.prob.radius)
        t0 = time.perf_counter()
        for t in range(1, steps + 1):
            j = rng.integers(0, n, S * M)
            keep = rng.random(S * M) < self.accept[rows_w, j]
            i = np.where(keep, j, self.alias[rows_w, j])
            avg += (x - avg) * np.float32(1.0 / t)
            a = A[i]
            r = np.einsum("ij,ij->i", a, x) - b[i]
            x -= (eta * w[rows_w, i] * r)[:, None] * a
            norm = np.sqrt(np.einsum("ij,ij->i", x, x))
            x *= np.minimum(np.float32(1.0), R / np.maximum(norm, np.float32(1e-30)))[:, None]
            cost += c[i]
        return time.perf_counter() - t0


def cache_check(trials: int, steps: int, repeats: int) -> dict:
    """Seconds a fresh process spends before computing, with a cold then a warm
    persistent compilation cache (``jax_compilation_cache_dir``): medians over
    ``repeats`` pairs of fresh processes, each pair on a new cache folder."""
    code = f"""
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from costsgd.experiments import figure2 as f2
from costsgd.experiments.runtime import enable_compile_cache, use_all_cores
use_all_cores()
enable_compile_cache(Path(sys.argv[1]))
import jax, costsgd as cs
t_import = time.perf_counter() - t0
prob, P, eta, cps = f2.setup(f2.PAPER._replace(steps={steps}))
kw = dict(steps={steps}, trials={trials}, step_size=eta, checkpoints=cps)
t1 = time.perf_counter(); cs.cost_aware_sgd(prob, P, **kw); first = time.perf_counter() - t1
t2 = time.perf_counter(); cs.cost_aware_sgd(prob, P, key=1, **kw); warm = time.perf_counter() - t2
print(t_import, first - warm, warm)
"""
    runs = {"cold_cache": [], "warm_cache": []}
    for _ in range(repeats):
        folder = tempfile.mkdtemp(prefix="costsgd_jax_cache_")
        for label in runs:
            run = subprocess.run(
                [sys.executable, "-c", code, folder], capture_output=True, text=True, check=True
            )
            runs[label].append([float(v) for v in run.stdout.split()[-3:]])
        shutil.rmtree(folder, ignore_errors=True)
    keys = ("import_s", "compile_or_load_s", "warm_run_s")
    return {
        label: {k: statistics.median(r[j] for r in rows) for j, k in enumerate(keys)}
        for label, rows in runs.items()
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 trials, 500 numpy steps")
    parser.add_argument("--trials", type=int, help="trials per strategy (default 1000)")
    parser.add_argument("--steps", type=int, default=20_000, help="steps T per trial")
    parser.add_argument("--numpy-steps", type=int, help="steps timed for numpy (default 2000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", action="store_true", help="also time the persistent cache")
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    trials = args.trials or (200 if args.quick else 1000)
    numpy_steps = args.numpy_steps or (500 if args.quick else 2000)
    work = Work(trials, args.steps)

    print(f"machine: {machine()}")
    print(
        f"JAX {jax.__version__}: {jax.device_count()} device(s) "
        f"{sorted({d.device_kind for d in jax.devices()})}; numpy {np.__version__}; "
        f"{platform.platform()}"
    )
    print(f"work: N=3000, d=50, T={args.steps}, 3 strategies x {trials} trials, float32")
    lib = build_c(work.A.shape[1])
    native = cs.engine.native_status(cs.LeastSquares.gradient_step.native)
    if jax.devices()[0].platform != "cpu":
        native = native._replace(available=False, reason="the engine runs on an accelerator")
    print(
        f"engine's step loop: native ({native.library})"
        if native.available
        else f"engine's step loop: XLA (the native loop is not used: {native.reason})"
    )
    t0 = time.perf_counter()
    work.engine()
    cold = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    times = {"engine": [], "engine, XLA step": [], "numpy": [], "C": []}
    if native.available:
        work.engine(backend="xla")  # compiled before the timed runs
    else:
        del times["engine, XLA step"]  # the engine runs XLA's step already
    per_step = 3 * trials
    for r in range(args.repeats):  # interleaved: all see the same load
        for label, backend in (("engine", "auto"), ("engine, XLA step", "xla")):
            if label in times:
                t0 = time.perf_counter()
                work.engine(seed=r + 1, backend=backend)
                times[label].append((time.perf_counter() - t0) / (per_step * args.steps))
        times["numpy"].append(work.numpy_steps(numpy_steps, rng) / (per_step * numpy_steps))
        if lib is not None:
            t0 = time.perf_counter()
            work.c_loop(lib)
            times["C"].append((time.perf_counter() - t0) / (per_step * args.steps))
    ns = {k: statistics.median(v) * 1e9 for k, v in times.items() if v}
    work_steps = per_step * args.steps
    out = {
        "machine": machine(),
        "native_step_loop": str(native.library) if native.available else native.reason,
        "ns_per_trial_step": ns,
        "engine_compile_s": cold - ns["engine"] * 1e-9 * work_steps,
        "figure_warm_s": {k: v * 1e-9 * work_steps for k, v in ns.items()},
        "trials": trials,
        "steps": args.steps,
        "repeats": args.repeats,
        "devices": jax.device_count(),
        "jax": jax.__version__,
    }
    print()
    print(f"{'implementation':<18}{'ns/trial-step':>15}{'vs engine':>11}{'figure, s':>11}")
    for k, v in ns.items():
        print(f"{k:<18}{v:15.1f}{v / ns['engine']:10.2f}x{v * 1e-9 * work_steps:11.2f}")
    print(f"engine compile: {out['engine_compile_s']:.2f} s; medians of {args.repeats}")
    for label in ("engine", "engine, XLA step"):
        if label in ns and "C" in ns:
            print(f"{label}: / C = {ns[label] / ns['C']:.2f}; numpy / it = "
                  f"{ns['numpy'] / ns[label]:.2f}")  # fmt: skip
    if args.cache:
        out["cache"] = cache_check(trials, args.steps, args.repeats)
        for label, v in out["cache"].items():
            print(
                f"fresh process, {label} (median of {args.repeats}): import {v['import_s']:.2f} s, "
                f"compile/load "
                f"{v['compile_or_load_s']:.2f} s, warm run {v['warm_run_s']:.2f} s"
            )
    print(f"machine after: {machine()}")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
