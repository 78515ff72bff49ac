"""Benchmark: the JAX Cost-Aware SGD engine against a plain numpy per-step loop.

Both run Algorithm 1 on the Figure 2 configuration (§4.4 least squares,
N = 3000, d = 50, T = 20000, Uniform / Variance / Optimal) with the same work per
step: importance-weighted gradient, projected step, running average, cost. The
numpy reference is the loop a researcher would write (one trial at a time,
indices pre-drawn from the alias table, so its draws cost nothing in the timing).

Reported, side by side from one run: trial-steps per second of each, their
ratio, the engine's compile time, and the wall time of the full 1000-trial
figure (all three strategies) including compilation. Times are medians over
``--repeats``; machines shared with other work are noisy (about 1.5x run to run),
so compare the ratio, not the absolute numbers.

Usage::

    python benchmarks/bench_sgd.py            # full: 1000 trials x 20000 steps
    python benchmarks/bench_sgd.py --quick    # 100 trials, fewer numpy steps
    python benchmarks/bench_sgd.py --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costsgd.experiments import figure2 as f2

f2.use_all_cores()  # as the CLI does: one JAX device per core, before JAX starts

import jax  # noqa: E402
import numpy as np  # noqa: E402

import costsgd as cs  # noqa: E402


def numpy_loop(prob, p, idx, eta):
    """Algorithm 1, one trial, plain numpy: the reference a researcher would write."""
    A, b, c, R = prob.A, prob.b, prob.c, prob.radius
    n = len(b)
    w = 1.0 / (n * p)
    x = np.zeros(A.shape[1])
    avg = np.zeros_like(x)
    cost = 0.0
    for t, i in enumerate(idx, start=1):
        avg += (x - avg) / t
        g = (A[i] @ x - b[i]) * w[i] * A[i]
        x = x - eta * g
        norm = np.sqrt(x @ x)
        if norm > R:
            x *= R / norm
        cost += c[i]
    return x, avg, cost


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 trials, 5000 numpy steps")
    parser.add_argument("--trials", type=int, help="engine trials per strategy (default 1000)")
    parser.add_argument("--steps", type=int, default=20_000, help="steps T per trial")
    parser.add_argument("--numpy-steps", type=int, help="steps timed for the numpy loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    trials = args.trials or (100 if args.quick else 1000)
    numpy_steps = args.numpy_steps or (5000 if args.quick else 20_000)
    T = args.steps

    config = f2.PAPER._replace(trials=trials, steps=T)
    prob = cs.least_squares(config.n, config.d, rng=config.problem_seed)
    G, c = prob.G, prob.c
    P = np.stack([cs.uniform(G, c), cs.variance(G, c), cs.optimal(G, c)])
    eta = cs.theory_step_size(P, G, diameter=2 * prob.radius, steps=T)

    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {platform.platform()}"
    )
    print(
        f"JAX {jax.__version__}: {jax.device_count()} device(s) "
        f"{sorted({d.device_kind for d in jax.devices()})}; numpy {np.__version__}"
    )
    print(f"config: N={config.n}, d={config.d}, T={T}, 3 strategies x {trials} trials")

    # engine cold: the whole figure (run_figure2) including compilation
    t0 = time.perf_counter()
    f2.run_figure2(config)
    cold = time.perf_counter() - t0
    # then, interleaved so that both see the same machine load: the numpy loop
    # (one trial per strategy) and the warm engine (the whole figure again)
    rng = np.random.default_rng(0)
    np_times, warm_times = [], []
    for r in range(args.repeats):
        for s, p in enumerate(P):
            idx = cs.sample(cs.alias_table(p), numpy_steps, rng=rng)
            t0 = time.perf_counter()
            numpy_loop(prob, p, idx, eta[s])
            np_times.append((time.perf_counter() - t0) / numpy_steps)
        t0 = time.perf_counter()
        f2.run_figure2(config._replace(seed=r + 1))
        warm_times.append(time.perf_counter() - t0)
    np_per_step = statistics.median(np_times)
    warm = statistics.median(warm_times)
    work = 3 * trials * T
    engine_per_step = warm / work

    out = {
        "numpy_steps_per_s": 1 / np_per_step,
        "engine_trial_steps_per_s": 1 / engine_per_step,
        "speedup": np_per_step / engine_per_step,
        "compile_s": cold - warm,
        "figure_wall_s_incl_compile": cold,
        "figure_wall_s_warm": warm,
        "numpy_figure_estimate_s": np_per_step * work,
        "trials": trials,
        "steps": T,
        "devices": jax.device_count(),
        "jax": jax.__version__,
        "platform": platform.platform(),
    }
    print()
    print(f"{'':<34}{'numpy loop':>14}{'JAX engine':>14}")
    print(
        f"{'trial-steps per second':<34}{out['numpy_steps_per_s']:14.3g}"
        f"{out['engine_trial_steps_per_s']:14.3g}"
    )
    print(f"{'ns per trial-step':<34}{np_per_step * 1e9:14.0f}{engine_per_step * 1e9:14.1f}")
    print(
        f"{'whole figure (' + str(trials) + ' trials), s':<34}"
        f"{out['numpy_figure_estimate_s']:14.1f}{cold:14.2f}   (numpy: extrapolated)"
    )
    print(
        f"speedup: {out['speedup']:.0f}x   compile: {out['compile_s']:.2f} s   "
        f"warm figure: {warm:.2f} s (median of {args.repeats})"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
