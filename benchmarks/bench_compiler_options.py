"""Benchmark: the engine's CPU compiler options against alternatives, interleaved in one process.

Each variant passes its own XLA options (``EngineOptions(xla_options=...)``) and runs the
Figure 2 work (:func:`costsgd.experiments.figure2.setup`, float32, trials split
over one JAX device per core, as the CLI does). Printed per variant: the first
call's time (compile plus one run), the median warm run and ns per trial-step,
the ratio to the first variant, and the largest relative difference of its
errors from the first variant's (0 when bit for bit equal).

Variants:

* ``shipped``: ``COMPILER_OPTIONS`` as the engine ships them;
* ``default``: XLA's defaults (no options);
* ``no-region``: the shipped options without region-analysis copy insertion;
* ``ynn-reduce``: the shipped options with YNNPACK fusions limited to reductions.

Usage::

    python benchmarks/bench_compiler_options.py                     # 1000 trials, T = 20000
    python benchmarks/bench_compiler_options.py --trials 200 --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costsgd.experiments import figure2 as f2
from costsgd.experiments.runtime import use_all_cores

use_all_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

import costsgd as cs  # noqa: E402
from costsgd.engine._batch import COMPILER_OPTIONS  # noqa: E402

SHIPPED = dict(COMPILER_OPTIONS["cpu"])  # what the engine uses by default
VARIANTS = {
    "shipped": SHIPPED,
    "default": {},
    "no-region": {k: v for k, v in SHIPPED.items() if "region" not in k},
    "ynn-reduce": {**SHIPPED, "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"},
}


def use(name: str) -> cs.EngineOptions:
    """The engine's options for variant ``name`` (each option set has its own program)."""
    return cs.EngineOptions(xla_options=VARIANTS[name])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)
    prob, P, eta, cps = f2.setup(f2.PAPER._replace(steps=args.steps))
    kw = dict(steps=args.steps, trials=args.trials, step_size=eta, checkpoints=cps)
    work = 3 * args.trials * args.steps
    print(f"JAX {jax.__version__}, {jax.device_count()} device(s); {work:.2e} trial-steps per run")
    cs.cost_aware_sgd(prob, P, steps=10, trials=2, step_size=eta, checkpoints=[10])  # backend start
    first, errors = {}, {}
    for name in args.variants:
        t0 = time.perf_counter()
        errors[name] = cs.cost_aware_sgd(prob, P, options=use(name), **kw).error_average
        first[name] = time.perf_counter() - t0
    times = {name: [] for name in args.variants}
    for r in range(args.repeats):  # interleaved: every variant sees the same load
        for name in args.variants:
            t0 = time.perf_counter()
            cs.cost_aware_sgd(prob, P, key=r + 1, options=use(name), **kw)
            times[name].append(time.perf_counter() - t0)
    ref = args.variants[0]
    base = statistics.median(times[ref])
    print(
        f"{'variant':<12}{'first call, s':>14}{'warm, s':>9}{'ns/trial-step':>15}{'ratio':>7}  max rel. diff"
    )
    for name in args.variants:
        warm = statistics.median(times[name])
        diff = float(np.max(np.abs(errors[name] / errors[ref] - 1)))
        print(
            f"{name:<12}{first[name]:14.2f}{warm:9.3f}{warm / work * 1e9:15.1f}{warm / base:7.3f}  {diff:.1e}"
        )
    print(f"medians of {args.repeats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
