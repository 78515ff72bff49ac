"""Benchmark: wall time of whole ``costsgd verify`` processes, side by side with a reference.

Each timing is one fresh process (``python -m costsgd.cli verify ...``), so it includes
Python's start, the imports (numpy, scipy, JAX, torch) and every claim; the
variants are interleaved round by round so that they see the same load, and the
median of ``--repeats`` rounds is reported with the load average (1 min) before and
after each round. Variants:

* ``new``: this checkout, ``--jobs`` as given (default: one per core, the CLI's default);
* ``new --jobs 1``: this checkout in one process (what parallelism buys: nothing on
  a busy machine, where the kernel shares the CPU between sessions, not processes);
* ``reference``: another checkout (``--reference PATH``), or a commit of this
  repository exported to a temporary folder (``--reference-commit SHA``, by ``git
  archive``), run with its own code (``PYTHONPATH``) and the same flags (without
  ``--jobs`` if it has none).

The compile cache is warm by default: one untimed run of each variant fills JAX's
persistent compilation cache first. ``--cold`` points every timed run at an empty
cache folder of its own instead (``XDG_CACHE_HOME``), the first run on a machine.

Usage::

    python benchmarks/bench_verify.py --quick --repeats 5 --reference-commit 5552705
    python benchmarks/bench_verify.py --quick --cold --repeats 3
    python benchmarks/bench_verify.py --repeats 1          # the full run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load() -> float:
    return os.getloadavg()[0]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _has_jobs(checkout: Path) -> bool:
    return "--jobs" in (checkout / "costsgd" / "cli" / "verify.py").read_text()


def _command(checkout: Path, flags: list[str], jobs: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "costsgd.cli", "verify", *flags]
    if jobs is not None and _has_jobs(checkout):
        cmd += ["--jobs", str(jobs)]
    return cmd


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(checkout: Path, cmd: list[str], cache_home: str | None) -> tuple[float, float]:
    """Wall time and CPU time (user + sys, every process of the run) of one run."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    if cache_home is not None:
        env["XDG_CACHE_HOME"] = cache_home
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="time `costsgd verify --quick`")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds (median)")
    ap.add_argument("--jobs", type=int, default=None, help="--jobs of the new variant")
    ap.add_argument("--reference", type=Path, help="a checkout to time beside this one")
    ap.add_argument("--reference-commit", help="a commit of this repository to time beside it")
    ap.add_argument("--no-serial", action="store_true", help="skip the `--jobs 1` variant")
    ap.add_argument("--cold", action="store_true", help="an empty compile cache for every run")
    ap.add_argument("--out", type=Path, help="write the timings as JSON")
    args = ap.parse_args(argv)

    flags = ["--quick"] if args.quick else []
    jobs = args.jobs or len(os.sched_getaffinity(0))
    variants = {f"new (--jobs {jobs})": (ROOT, _command(ROOT, flags, jobs))}
    if not args.no_serial and jobs != 1:
        variants["new (--jobs 1)"] = (ROOT, _command(ROOT, flags, 1))
    with tempfile.TemporaryDirectory() as tmp:
        refs = [] if args.reference is None else [(str(args.reference), args.reference.resolve())]
        if args.reference_commit is not None:
            folder = Path(tmp) / "reference"
            folder.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.reference_commit], cwd=ROOT, capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
            refs.append((args.reference_commit, folder))
        for label, ref in refs:
            variants[f"reference {label}"] = (ref, _command(ref, flags, None))
        print(f"machine: {_cpu()}, {len(os.sched_getaffinity(0))} usable cores")
        print(f"costsgd verify {' '.join(flags)}; {'cold' if args.cold else 'warm'} compile cache")
        if not args.cold:
            for checkout, cmd in variants.values():  # fill the cache, untimed
                _run(checkout, cmd, None)
        times: dict[str, list[float]] = {k: [] for k in variants}
        cpus: dict[str, list[float]] = {k: [] for k in variants}
        loads = []
        for r in range(args.repeats):
            before = _load()
            for k, (checkout, cmd) in variants.items():
                cache = None
                if args.cold:
                    cache = tempfile.mkdtemp(dir=tmp)
                wall, cpu = _run(checkout, cmd, cache)
                times[k].append(wall)
                cpus[k].append(cpu)
            loads.append((before, _load()))
            row = ", ".join(
                f"{k}: {v[-1]:.1f} s ({cpus[k][-1]:.1f} s CPU)" for k, v in times.items()
            )
            print(f"round {r + 1}: {row} (load {before:.2f} -> {loads[-1][1]:.2f})", flush=True)
    print("medians (wall, CPU = user + sys of all its processes):")
    first = next(iter(times))
    for k, v in times.items():
        ratio = statistics.median(v) / statistics.median(times[first])
        print(
            f"  {k:<40} {statistics.median(v):6.1f} s wall ({ratio:.2f}x {first}),"
            f" {statistics.median(cpus[k]):6.1f} s CPU"
        )
    if args.out is not None:
        args.out.write_text(
            json.dumps(
                {
                    "flags": flags,
                    "cold": args.cold,
                    "machine": _cpu(),
                    "times": times,
                    "cpu_seconds": cpus,
                    "load_before_after": loads,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
