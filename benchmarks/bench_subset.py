"""Time the subset-selection solvers on the §4.4 instance, against plain milp.

The reference is what a user would write without costsgd: one
``scipy.optimize.milp`` call on the whole knapsack (zero gap). It runs side by
side with :func:`costsgd.knapsack_exact` (Lagrangian fixing + milp on the core)
and the three fast solvers, on the same instances; medians of repeats.

    python benchmarks/bench_subset.py            # n = 3000, 5 budgets, 3 repeats
    python benchmarks/bench_subset.py --quick    # n = 1000, 3 budgets, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

import costsgd as cs
from costsgd.subset import _quiet_stdout


def plain_milp(inst: cs.MinKnapsack) -> float:
    v, w = inst.value, inst.item_cost
    with _quiet_stdout():
        res = milp(
            w / w.max(),
            integrality=np.ones(v.size),
            bounds=Bounds(0, 1),
            constraints=LinearConstraint((v / v.max())[None, :], inst.required / v.max(), np.inf),
            options={"mip_rel_gap": 0.0},
        )
    return float(np.round(res.x) @ w)


def median_time(fn, inst, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(inst)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int)
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--out", help="write the numbers as JSON here")
    args = ap.parse_args()
    n = args.n or (1000 if args.quick else 3000)
    repeats = args.repeats or (1 if args.quick else 3)
    fractions = (0.1, 0.5, 0.9) if args.quick else (0.01, 0.1, 0.3, 0.6, 0.9)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, numpy {np.__version__}"
    )
    prob = cs.least_squares(n, 50, rng=0)
    G, c, D = prob.G, prob.c, 2 * prob.radius
    solvers = {
        "lp": lambda i: cs.knapsack_lp(i).objective,
        "greedy": lambda i: cs.knapsack_greedy(i).objective,
        "two_approx": lambda i: cs.knapsack_two_approx(i).objective,
        "exact": lambda i: cs.knapsack_exact(i).objective,
        "plain milp": plain_milp,
    }
    rows = []
    print(f"n = {n}; seconds (median of {repeats}); objective / exact")
    print(f"{'Γ/Γmax':>7} " + " ".join(f"{k:>20}" for k in solvers) + f" {'milp/exact time':>16}")
    for f in fractions:
        inst = cs.knapsack(G, c, gamma=f * D * G.mean(), D=D)
        res = {k: median_time(fn, inst, repeats) for k, fn in solvers.items()}
        ex = res["exact"][1]
        cells = " ".join(f"{t:9.4f}s {obj / ex:9.6f}" for t, obj in res.values())
        ratio = res["plain milp"][0] / res["exact"][0]
        print(f"{f:7.2f} {cells} {ratio:16.2f}")
        rows.append(
            {"fraction": f, **{k: {"seconds": t, "objective": o} for k, (t, o) in res.items()}}
        )
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"n": n, "repeats": repeats, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
