"""``costsgd grpo-study``: run the mini Cost-Aware GRPO study, or redraw it from its results file.

Flags map onto :class:`~costsgd.experiments.grpo.study.StudyConfig` through
:data:`FIELDS` (flag ``dest`` -> dotted config field), applied with
``dataclasses.replace``; a new option is one ``add_argument`` and one entry.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from costsgd.cli.common import (
    UserError,
    check_output_folder,
    needs,
    non_negative_int,
    option_errors,
    positive_int,
    reading,
    writing,
)

__all__ = [
    "FIELDS",
    "load_study",
    "register",
    "replace_field",
    "write_report",
    "write_suite_report",
]

#: flag dest -> (dotted StudyConfig field, conversion of the flag's value).
FIELDS: dict[str, tuple[str, Any]] = {
    "seeds": ("seeds", tuple),
    "sweep_seeds": ("sweep_seeds", tuple),
    "lrs": ("lrs", tuple),
    "setting": ("setting", str),
    "workers": ("workers", int),
    "iterations": ("grpo.iterations", int),
    "token_budget": ("grpo.token_budget", lambda b: b or None),
}


def register(sub) -> None:
    """Add ``grpo-study``."""
    p = sub.add_parser(
        "grpo-study",
        help="mini Cost-Aware GRPO on CPU: does p* save policy-optimization tokens? (§5.4)",
    )
    p.add_argument(
        "--out",
        help="output folder (default: results/grpo; with --replot, the results file's folder; "
        "with --suite NAME, results/grpo-suite-NAME)",
    )
    p.add_argument(
        "--suite",
        choices=("paper", "headline", "smoke"),
        help="paper: every §5 claim and the task mixes, one results file per part (<= 90 min on "
        "2 idle cores); headline: its GRPO and GRPO+ZVF headline rows only (default seeds "
        "10-15, sweep 110 111); smoke: seconds; resumes the files in --out (default: no suite, "
        "a single study)",
    )
    p.add_argument(
        "--smoke", action="store_true", help="a seconds-long configuration (pipeline check)"
    )
    p.add_argument(
        "--task", choices=("walk", "sort"), help="the modular walk (default) or the sorting task"
    )
    p.add_argument("--setting", help="GRPO (default), GRPO+ZVF or CISPO")
    p.add_argument("--seeds", type=non_negative_int, nargs="+", help="seeds (default: 0 1 2 3 4 5)")
    p.add_argument(
        "--sweep-seeds",
        type=non_negative_int,
        nargs="+",
        help="seeds of the baseline-only learning-rate sweep (default: 100 101)",
    )
    p.add_argument(
        "--lrs", type=float, nargs="+", help="learning rates of the sweep (default: 1e-3 2e-3 4e-3)"
    )
    p.add_argument(
        "--iterations",
        type=positive_int,
        help="at most this many GRPO iterations per run (default: 1000)",
    )
    p.add_argument("--workers", type=positive_int, help="parallel processes (default: 2)")
    p.add_argument(
        "--token-budget",
        type=non_negative_int,
        help="drawn policy-optimization tokens per run (default: 700000; 0 = run all iterations)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        help="only these methods; the baseline 'no sampling' is kept (default: all of the study's)",
    )
    p.add_argument(
        "--replot",
        metavar="PATH",
        help="redraw the report and figure from this results file instead of running the study "
        "(with --suite: from the suite's folder; default: run it)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard the results saved in --out (default: resume them, running only what is missing)",
    )
    p.set_defaults(run=_run, parser=p)
    needs(p, "torch", "matplotlib", "tqdm", extra="grpo")


def replace_field(config: Any, dotted: str, value: Any) -> Any:
    """``config`` with the (nested) dataclass field ``dotted`` set to ``value``.

    Examples:
      >>> from dataclasses import dataclass
      >>> @dataclass(frozen=True)
      ... class In:
      ...     a: int = 1
      >>> @dataclass(frozen=True)
      ... class Out:
      ...     inner: In = In()
      >>> replace_field(Out(), "inner.a", 5)
      Out(inner=In(a=5))
    """
    head, _, rest = dotted.partition(".")
    inner = replace_field(getattr(config, head), rest, value) if rest else value
    return dataclasses.replace(config, **{head: inner})


def _choose(given: list[str] | None, known, option: str) -> None:
    unknown = [x for x in given or () if x not in known]
    if unknown:
        raise UserError(
            f"argument {option}: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(known)}"
        )


def _config(args: argparse.Namespace):
    from costsgd.experiments.grpo import study
    from costsgd.experiments.grpo.task import TASKS

    config = study.smoke_config() if args.smoke else study.default_config()
    _choose([args.setting] if args.setting else None, list(study.SETTINGS), "--setting")
    _choose(args.methods, list(study.METHODS), "--methods")
    for dest, (dotted, convert) in FIELDS.items():
        value = getattr(args, dest)
        if value is not None:
            config = replace_field(config, dotted, convert(value))
    if args.task is not None:
        task = study.DEFAULT_WALK if args.task == "walk" and not args.smoke else TASKS[args.task]()
        config = dataclasses.replace(config, task=task)
    if args.seeds is not None:  # the regime runs move to the first of the given seeds
        regime = tuple(args.seeds[: len(config.regime_seeds)])
        config = dataclasses.replace(config, regime_seeds=regime)
    if args.methods:
        chosen = (study.BASELINE, *(m for m in args.methods if m != study.BASELINE))
        config = dataclasses.replace(config, methods=chosen)
    with option_errors(args.parser, validation=True):
        return config.validate()


def load_study(path: str) -> dict:
    """Read a study's results file (see :func:`costsgd.experiments.grpo.study.load_results`)."""
    from costsgd.experiments.grpo import study

    return study.load_results(path)


def write_report(results: dict, png: Path) -> str:
    """Write the study's figure ``png`` and, next to it, its table (``.md``) and summary
    (``_summary.json``); returns the table."""
    from costsgd.experiments import results as results_file
    from costsgd.experiments.grpo import report, study

    summary = study.summary(results)
    text = report.format_report(summary)
    md, js = png.with_suffix(".md"), png.with_name(png.stem + "_summary.json")
    with writing(md):
        results_file.write_text(md, text + "\n")
    with writing(js):
        record = {"config": results["config"], "versions": results.get("versions"), **summary}
        results_file.write_text(js, json.dumps(record, indent=1))
    with writing(png):
        study.plot_results(results, png)
    return f"{text}\n\ntable: {md}  summary: {js}"


#: Options that define a single study; a suite defines its own (``--suite`` refuses them).
_STUDY_ONLY = ("smoke", "task", "setting", "lrs", "iterations", "token_budget", "methods")


def _suite_config(args: argparse.Namespace):
    from costsgd.experiments.grpo import suite

    for dest in _STUDY_ONLY:
        if getattr(args, dest) not in (None, False):
            raise UserError(f"argument {_flag(dest)}: not allowed with --suite (a suite fixes it)")
    kwargs = {}
    if args.workers is not None:
        kwargs["workers"] = args.workers
    if args.suite in ("paper", "headline"):
        if args.seeds is not None:
            kwargs["seeds"] = tuple(args.seeds)
        if args.sweep_seeds is not None:
            kwargs["sweep_seeds"] = tuple(args.sweep_seeds)
    elif args.seeds is not None or args.sweep_seeds is not None:
        raise UserError("argument --seeds/--sweep-seeds: the smoke suite has fixed seeds")
    with option_errors(args.parser, validation=True):
        return suite.SUITES[args.suite](**kwargs)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _run_suite(args: argparse.Namespace) -> int:
    from costsgd.experiments.grpo import suite

    config = _suite_config(args)
    out = check_output_folder(args.replot or args.out or f"results/grpo-suite-{args.suite}")
    if args.replot:
        parts = suite.load_suite(out, config)
        if not parts:
            raise UserError(
                f"argument --replot: no results of suite {args.suite!r} in {str(out)!r}"
            )
    else:
        with option_errors(args.parser, validation=True):
            if not args.restart:  # refuse a different saved configuration before any run
                suite.load_all(config, out, restart=False)
            parts = suite.run_suite(
                config, out, progress=not args.no_progress, restart=args.restart
            )
    print(write_suite_report(config, parts, out))
    return 0


def write_suite_report(config, parts: dict, out: Path) -> str:
    """Write each part's report (``<part>.md``, ``.png``) and the combined ``suite.md``,
    ``suite_summary.json`` and ``suite_mixes.png``; returns the combined report."""
    from costsgd.experiments import results as results_file
    from costsgd.experiments.grpo import report, study, suite

    summaries = {}
    for name, res in parts.items():
        if name == "sweep" or not any(r["stage"] == "main" for r in res["runs"]):
            continue
        md = out / f"{name}.md"
        summaries[name] = study.summary(res)
        with writing(md):
            text = report.format_report(summaries[name], verdicts=False)
            results_file.write_text(md, f"# Part `{name}` ({res['config']['setting']})\n\n{text}\n")
        with writing(out / f"{name}.png"):
            study.plot_results(res, out / f"{name}.png")
    s = suite.summarize_suite(config, parts, summaries)
    text = suite.format_suite_report(s)
    md, js, png = out / "suite.md", out / "suite_summary.json", out / "suite_mixes.png"
    with writing(md):
        results_file.write_text(md, text + "\n")
    with writing(js):
        results_file.write_text(js, json.dumps(s, indent=1))
    with writing(png):
        suite.plot_mixes(s, png)
    return f"{text}\n\nreport: {md}  summary: {js}  figure: {png}"


def _run(args: argparse.Namespace) -> int:
    if args.suite:
        return _run_suite(args)
    if args.replot:
        results = reading(load_study, args.replot)
        out = check_output_folder(args.out or Path(args.replot).parent)
    else:
        config = _config(args)
        out = check_output_folder(args.out or "results/grpo")
        from costsgd.experiments.grpo import study

        path = out / "grpo_study.json"
        if not args.restart:
            with option_errors(args.parser, validation=True):
                study.resume_results(config, path)
        with writing(path):  # rewritten after every finished run
            results = study.run(
                config, progress=not args.no_progress, checkpoint=path, resume=not args.restart
            )
        print(f"results: {path}  ({results['seconds']:.0f} s)")
    png = out / "grpo_study.png"
    print(write_report(results, png))
    print(f"figure: {png}")
    return 0
