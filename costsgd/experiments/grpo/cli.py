"""``costsgd grpo-study``: run the mini Cost-Aware GRPO study, or redraw it from its results file."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from costsgd.experiments.grpo import report, study
    from costsgd.experiments.grpo.task import TASKS

    os.makedirs(args.out, exist_ok=True)
    results_path = args.replot or os.path.join(args.out, "grpo_study.json")
    if args.replot:
        results = study.load_results(args.replot)
    else:
        config = study.smoke_config() if args.smoke else study.default_config()
        overrides = {}
        if args.task is not None:
            overrides["task"] = (
                study.DEFAULT_WALK if args.task == "walk" and not args.smoke else TASKS[args.task]()
            )
        if args.seeds is not None:
            overrides["seeds"] = tuple(args.seeds)
            overrides["regime_seeds"] = tuple(s for s in config.regime_seeds if s in args.seeds)
        if args.sweep_seeds is not None:
            overrides["sweep_seeds"] = tuple(args.sweep_seeds)
        if args.lrs is not None:
            overrides["lrs"] = tuple(args.lrs)
        if args.workers is not None:
            overrides["workers"] = args.workers
        if args.methods:
            overrides["methods"] = (
                study.BASELINE,
                *(m for m in args.methods if m != study.BASELINE),
            )
        if args.setting is not None:
            overrides["setting"] = args.setting
        grpo = {}
        if args.iterations is not None:
            grpo["iterations"] = args.iterations
        if args.token_budget is not None:
            grpo["token_budget"] = args.token_budget or None
        if grpo:
            overrides["grpo"] = dataclasses.replace(config.grpo, **grpo)
        try:
            config = dataclasses.replace(config, **overrides).validate()
        except (TypeError, ValueError) as e:
            raise SystemExit(f"costsgd grpo-study: error: {e}") from None
        results = study.run(config, progress=not args.no_progress, checkpoint=results_path)
        print(f"results: {results_path}  ({results['seconds']:.0f} s)")
    summary = study.summary(results)
    text = report.format_report(summary)
    stem = os.path.join(args.out, "grpo_study")
    with open(stem + ".md", "w") as f:
        f.write(text + "\n")
    with open(stem + "_summary.json", "w") as f:
        json.dump(
            {"config": results["config"], "versions": results.get("versions"), **summary},
            f,
            indent=1,
        )
    study.plot_results(results, stem + ".png")
    print(text)
    print(f"\nfigure: {stem}.png  report: {stem}.md  summary: {stem}_summary.json")
    return 0


def add_parser(sub) -> None:
    """Register the ``grpo-study`` subcommand on an argparse subparsers object."""
    p = sub.add_parser(
        "grpo-study",
        help="mini Cost-Aware GRPO on CPU: does p* save policy-optimization tokens? (§5.4)",
    )
    p.add_argument("--out", default="results/grpo", help="output folder (default: results/grpo)")
    p.add_argument(
        "--smoke", action="store_true", help="a seconds-long configuration (pipeline check)"
    )
    p.add_argument(
        "--task", choices=("walk", "sort"), help="task: the modular walk (default) or sorting"
    )
    p.add_argument("--setting", choices=("GRPO", "GRPO+ZVF", "CISPO"), help="default: GRPO")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 0 1 2 3 4 5)")
    p.add_argument(
        "--sweep-seeds", type=int, nargs="+", help="seeds of the lr sweep (default: 100 101)"
    )
    p.add_argument("--lrs", type=float, nargs="+", help="lr sweep (default: 5e-4 1e-3 2e-3)")
    p.add_argument("--iterations", type=int, help="at most this many GRPO iterations per run")
    p.add_argument("--workers", type=int, help="parallel processes (default: 2)")
    p.add_argument(
        "--token-budget",
        type=int,
        help="drawn policy-optimization tokens per run (default: 600000; 0 = run all iterations)",
    )
    p.add_argument(
        "--methods", nargs="+", help="only these methods (the baseline 'no sampling' is kept)"
    )
    p.add_argument(
        "--replot", metavar="RESULTS.json", help="redraw report and figure from a results file"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
