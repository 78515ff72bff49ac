"""``costsgd grpo-study``: run the mini Cost-Aware GRPO study, or redraw it from its results file."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from costsgd.experiments.grpo import report, study

    os.makedirs(args.out, exist_ok=True)
    results_path = args.replot or os.path.join(args.out, "grpo_study.json")
    if args.replot:
        results = study.load_results(args.replot)
    else:
        config = study.smoke_config() if args.smoke else study.default_config()
        overrides = {}
        if args.seeds is not None:
            overrides["seeds"] = tuple(args.seeds)
        if args.workers is not None:
            overrides["workers"] = args.workers
        grpo = {}
        if args.iterations is not None:
            grpo["iterations"] = args.iterations
        if args.token_budget is not None:
            grpo["token_budget"] = args.token_budget or None
        if grpo:
            overrides["grpo"] = dataclasses.replace(config.grpo, **grpo)
        if args.settings or args.methods:
            keep = [
                (s, tuple(m for m in ms if not args.methods or m in args.methods or m == ms[0]))
                for s, ms in config.runs
                if not args.settings or s in args.settings
            ]
            overrides["runs"] = tuple(keep)
            overrides["diagnostics"] = tuple(
                p for p in config.diagnostics if any(p[0] == s and p[1] in ms for s, ms in keep)
            )
        config = dataclasses.replace(config, **overrides).validate()
        results = study.run_study(config, progress=not args.no_progress)
        study.save_results(results, results_path)
        print(f"results: {results_path}  ({results['seconds']:.0f} s)")
    summary = report.summarize(results)
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
    report.plot(results, stem + ".png")
    print(text)
    print(f"\nfigure: {stem}.png  table: {stem}.md  summary: {stem}_summary.json")
    return 0


def add_parser(sub) -> None:
    """Register the ``grpo-study`` subcommand on an argparse subparsers object."""
    p = sub.add_parser(
        "grpo-study",
        help="mini Cost-Aware GRPO on CPU: accuracy vs policy-optimization tokens (§5, Figure 4, Table 1)",
    )
    p.add_argument("--out", default="results/grpo", help="output folder (default: results/grpo)")
    p.add_argument(
        "--smoke", action="store_true", help="a seconds-long configuration (pipeline check)"
    )
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 0 1 2)")
    p.add_argument("--iterations", type=int, help="GRPO iterations per run")
    p.add_argument("--workers", type=int, help="parallel processes (default: 2)")
    p.add_argument(
        "--token-budget",
        type=int,
        help="policy-optimization tokens per run (default: 240000; 0 = run all iterations)",
    )
    p.add_argument("--settings", nargs="+", help="only these settings (GRPO, GRPO+ZVF, CISPO)")
    p.add_argument(
        "--methods", nargs="+", help="only these methods (the baseline 'no sampling' is kept)"
    )
    p.add_argument(
        "--replot", metavar="RESULTS.json", help="redraw tables and figure from a results file"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
