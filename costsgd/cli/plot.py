"""``costsgd plot``: redraw any experiment's figure (and table) from its results file.

The file says which experiment wrote it; :data:`PLOTTERS` maps that name to
how it is drawn, so one command serves every experiment.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

from costsgd.cli.common import (
    UserError,
    check_output_path,
    missing_modules,
    needs,
    positive_float,
    reading,
    writing,
)

__all__ = ["PLOTTERS", "register"]

Plotter = Callable[[argparse.Namespace, Path], str]


def _figure(name: str) -> Plotter:
    """Draw a figure module's results file; returns its table."""

    def draw(args: argparse.Namespace, png: Path) -> str:
        module = importlib.import_module(f"costsgd.experiments.{name}")
        results = reading(module.load_results, args.results)
        with writing(png):
            module.plot_results(results, png)
        return module.format_summary(*module.summary(results, args.target))

    return draw


def _grpo(args: argparse.Namespace, png: Path) -> str:
    from costsgd.cli.grpo import load_study, write_report

    if args.target is not None:
        raise UserError("argument --target: applies to figure2 and figure6 results only")
    missing = missing_modules(("torch",))
    if missing:
        raise UserError(
            f'a grpo-study file needs {", ".join(missing)}: pip install "costsgd[grpo]"'
        )
    return write_report(reading(load_study, args.results), png)


#: experiment recorded in a results file -> ``draw(args, png)``, returning the table it prints.
PLOTTERS: dict[str, Plotter] = {
    "figure2": _figure("figure2"),
    "figure6": _figure("figure6"),
    "grpo-study": _grpo,
}


def register(sub) -> None:
    """Add ``plot``."""
    p = sub.add_parser("plot", help="redraw a figure and its table from a results file")
    p.add_argument("results", help="results file written by figure2, figure6 or grpo-study")
    p.add_argument("--out", help="PNG path (default: next to the results file)")
    p.add_argument(
        "--target",
        type=positive_float,
        help="target error of the table, figure2 and figure6 results "
        "(default: the default of the command that wrote the file)",
    )
    p.set_defaults(run=_plot, parser=p)
    needs(p, "matplotlib", extra="plot")


def _plot(args: argparse.Namespace) -> int:
    from costsgd.experiments.results import experiment_of

    experiment = reading(experiment_of, args.results)
    if experiment not in PLOTTERS:
        raise UserError(
            f"{args.results!r} holds experiment {experiment!r}; plot draws {', '.join(PLOTTERS)}"
        )
    png = check_output_path(args.out or Path(args.results).with_suffix(".png"))
    print(PLOTTERS[experiment](args, png))
    print(f"figure:  {png}")
    return 0
