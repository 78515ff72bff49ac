"""Time ``costsgd audit`` on a million rollouts in the generic format (JSONL), end to end.

Writes a synthetic run (``--rows`` rollouts, ``--per-step`` per pool, groups of
8, 0/1 rewards, completions of 1-4000 tokens) to a temporary folder, then runs
the command as a user would (a fresh ``python -m costsgd.cli audit`` process)
``--repeat`` times and reports medians of wall time, CPU time (user + system
of the child) and peak memory (max RSS). The reference measured in the same
run is the floor of any pure-Python JSONL reader: ``json.loads`` on every
line, nothing else. The machine is shared: the load average is printed before
and after, beside every time. Memory is bounded (the audit streams by step):
``--rows-small`` runs the same pools at a quarter of the rows for comparison.

    python benchmarks/bench_audit.py                 # 1e6 rollouts, 1024 per step
    python benchmarks/bench_audit.py --per-step 64   # many small pools
    python benchmarks/bench_audit.py --quick         # 1e5 rollouts
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_run(path: Path, rows: int, per_step: int, seed: int = 0) -> int:
    """A synthetic run in the generic format; returns its size in bytes."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            i = np.arange(start, start + n)
            step, group = i // per_step, i // 8
            reward = rng.integers(0, 2, n)
            reward[(group % 3) == 0] = 0  # a third of the groups without signal
            prompt = rng.integers(20, 200, n)
            completion = rng.integers(1, 4000, n)
            fh.writelines(
                f'{{"step": {s}, "group": "{s}-{g}", "reward": {r}.0, "prompt_tokens": {p}, '
                f'"completion_tokens": {c}, "truncated": false}}\n'
                for s, g, r, p, c in zip(
                    step.tolist(),
                    group.tolist(),
                    reward.tolist(),
                    prompt.tolist(),
                    completion.tolist(),
                    strict=True,
                )
            )
    return path.stat().st_size


def _child(code: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + sys) and max RSS (MiB) of one child process."""
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(code, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(code)} failed:\n{err.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


_REFERENCE = (
    "import json, sys\nwith open(sys.argv[1]) as f:\n    for line in f:\n        json.loads(line)\n"
)


def _median_runs(code: list[str], repeat: int) -> dict:
    runs = [_child(code) for _ in range(repeat)]
    return {
        "wall_s": statistics.median(r[0] for r in runs),
        "cpu_s": statistics.median(r[1] for r in runs),
        "max_rss_mib": max(r[2] for r in runs),
        "walls": [round(r[0], 2) for r in runs],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--per-step", type=int, default=1024, help="rollouts per pool (step)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1e5 rollouts, 1 repeat")
    ap.add_argument("--out", help="also write the measurements to this JSON file")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.repeat = 100_000, 1
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rollouts.jsonl"
        size = write_run(data, args.rows, args.per_step)
        small = Path(tmp) / "quarter.jsonl"
        write_run(small, args.rows // 4, args.per_step)
        audit = [sys.executable, "-m", "costsgd.cli", "audit", "--out", str(Path(tmp) / "out")]
        reference = _median_runs([sys.executable, "-c", _REFERENCE, str(data)], args.repeat)
        full = _median_runs([*audit, str(data)], args.repeat)
        quarter = _median_runs([*audit, str(small)], 1)
        load_after = os.getloadavg()
    result = {
        "rows": args.rows,
        "per_step": args.per_step,
        "file_mib": size / 2**20,
        "audit": full,
        "reference_json_loads": reference,
        "audit_quarter_rows": quarter,
        "load_before": load_before,
        "load_after": load_after,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    print(
        f"{args.rows:,} rollouts, {args.per_step} per step, JSONL {size / 2**20:.0f} MiB; "
        f"{os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after (1-min)"
    )
    print(f"{'':28}{'wall s':>8}{'CPU s':>8}{'max RSS MiB':>13}")
    for name, r in (
        ("costsgd audit", full),
        ("reference: json.loads/line", reference),
        (f"costsgd audit, {args.rows // 4:,} rows", quarter),
    ):
        print(f"{name:28}{r['wall_s']:8.2f}{r['cpu_s']:8.2f}{r['max_rss_mib']:13.0f}")
    print(
        f"audit / reference: {full['wall_s'] / reference['wall_s']:.2f}x wall, "
        f"{full['cpu_s'] / reference['cpu_s']:.2f}x CPU; target: <= 10 s wall for 1e6 rollouts"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
