"""A reduced calibration run: the GRPO study on other task mixes, for ``audit_calibration.py``.

The study's default mix (60% unsolvable walks) is in docs/results/grpo_study.json.
This script runs the same study, reduced, on mixes with fewer unsolvable walks
(so fewer zero-advantage groups on the baseline's pools): the default walk task
with ``unsolvable_fraction`` replaced, methods "no sampling", "p*" and
"p ∝ 1[A≠0]", seeds 0-2, a one-rate sweep at the default study's chosen rate
(2e-3) on one sweep seed, no regime runs; everything else as the default
study (700 000-token budget). One results file per mix, resumable (a finished
file is not rerun). It is *reduced*: 3 seeds instead of 6, and the mixes are
defined here, not by the study's suite.

    python benchmarks/audit_calibration_runs.py --out results/audit_calibration
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from costsgd.experiments.grpo import study
from costsgd.experiments.results import write_atomic

#: unsolvable fraction of the walk task per reduced mix (the default study's is 0.6).
MIXES = {"unsolvable 0%": 0.0, "unsolvable 30%": 0.3}


def config(unsolvable: float, workers: int) -> study.StudyConfig:
    """The reduced study on the default walk task with ``unsolvable`` unsolvable prompts."""
    return study.default_config(
        task=study.DEFAULT_WALK._replace(unsolvable_fraction=unsolvable),
        methods=(study.BASELINE, "p*", "p ∝ 1[A≠0]"),
        seeds=(0, 1, 2),
        sweep_seeds=(100,),
        lrs=(2e-3,),
        regime_seeds=(),
        workers=workers,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/audit_calibration")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    out = Path(args.out)
    for name, fraction in MIXES.items():
        path = out / f"walk_unsolvable_{fraction:.1f}.json"
        if path.exists():
            print(f"{name}: {path} exists, not rerun")
            continue
        load, t0, c0 = os.getloadavg(), time.perf_counter(), time.process_time()
        results = study.run(config(fraction, args.workers), progress=False)
        results["audit_calibration"] = {
            "mix": name,
            "load_before": load,
            "load_after": os.getloadavg(),
            "wall_s": time.perf_counter() - t0,
            "cpu_s_this_process": time.process_time() - c0,
        }
        write_atomic(path, lambda f, r=results: f.write(json.dumps(r).encode()))
        print(f"{name}: {path} ({time.perf_counter() - t0:.0f} s, load {load[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
