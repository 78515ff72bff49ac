"""Cost-Aware GRPO trained end to end in TRL: accuracy vs processed tokens and update seconds.

A small Llama built in code (2 layers, width 64) with a word-level tokenizer built in code
(nothing downloaded) is warm-started on the GRPO study's modular walk by a short supervised
phase, then trained by TRL's GRPO in four arms, 4 seeds each, at the learning rate a
baseline-only sweep chooses: ``GRPOTrainer``, ``LengthGroupedGRPOTrainer``,
``CostAwareGRPOTrainer`` (p*) and ``CostAwareGRPOTrainer(proxy="nonzero")``. Held-out accuracy
is exact (teacher-forced probability of the one correct answer); the policy-update phase is
timed apart from generation and scoring (``costsgd/experiments/trl_study/phases.py``).

    PYTHONPATH=. python benchmarks/trl_study.py [--out DIR] [--workers 2]   # the default study
    PYTHONPATH=. python benchmarks/trl_study.py --smoke --out /tmp/trl_smoke  # whole pipeline, seconds
    PYTHONPATH=. python benchmarks/trl_study.py --replot DIR/trl_study.json   # report + figure again

Writes ``trl_study.json`` (rewritten after every run: rerunning with the same ``--out`` resumes
an interrupted study), ``trl_study.md`` (verdict, target, tables, load average, CPU-seconds),
``trl_study_summary.json`` and ``trl_study.png``. Needs ``costsgd[trl]`` and matplotlib.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costsgd.experiments.trl_study import report, study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trl_study.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/trl_study"))
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run of the pipeline")
    parser.add_argument("--workers", type=int, default=None, help="parallel runs (default 2)")
    parser.add_argument("--replot", type=Path, help="write report and figure from a results file")
    args = parser.parse_args(argv)
    if args.replot is not None:
        try:
            results = study.load_results(args.replot)
        except ValueError as err:
            parser.error(str(err))
        summary = report.write_report(results, args.replot.parent)
        print(report.format_report(summary))
        return 0
    overrides = {} if args.workers is None else {"workers": args.workers}
    try:
        config = (study.smoke_config if args.smoke else study.default_config)(**overrides)
    except ValueError as err:
        parser.error(str(err))
    load = os.getloadavg()
    print(
        f"trl_study: {'smoke' if args.smoke else 'default'} study into {args.out}; "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
        file=sys.stderr,
        flush=True,
    )
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        results = study.run(config, args.out)
    except ValueError as err:
        parser.error(str(err))
    summary = report.write_report(results, args.out)
    print(report.format_report(summary))
    load = os.getloadavg()
    print(
        f"trl_study: {time.perf_counter() - t0:.0f} s this invocation, "
        f"{summary['cpu_seconds']:.0f} CPU-s in runs (this process {time.process_time() - cpu0:.0f}); "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
