"""``costsgd figure2`` and ``costsgd figure6``: run a figure's experiment, write its results and PNG.

Every flag is checked when parsed, the output folder before the run; the
results file is written before the PNG, so a run killed in between leaves a
results file that ``costsgd plot`` redraws.
"""

from __future__ import annotations

import argparse

from costsgd.cli.common import (
    add_compile_cache_flag,
    check_output_folder,
    comma_list,
    needs,
    non_negative_int,
    option_errors,
    positive_float,
    positive_int,
    start_engine,
    writing,
)
from costsgd.experiments import figure2, figure6

__all__ = ["register"]


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise ValueError(f"{text!r} is not in [0, 1)")
    return value


def _common(p: argparse.ArgumentParser, paper, demo, what: str, out: str, target: str) -> None:
    p.add_argument(
        "--demo", action="store_true", help=f"smaller run ({demo.trials} trials) for a quick look"
    )
    p.add_argument(
        "--trials", type=positive_int, help=f"trials per {what} (default {paper.trials})"
    )
    p.add_argument("--steps", type=positive_int, help=f"steps T per trial (default {paper.steps})")
    p.add_argument("--n", type=positive_int, default=paper.n, help="components N")
    p.add_argument("--d", type=positive_int, default=paper.d, help="dimension d")
    p.add_argument(
        "--checkpoints",
        type=positive_int,
        default=paper.checkpoints,
        help="about this many log-spaced checkpoints",
    )
    p.add_argument(
        "--seed", type=non_negative_int, default=paper.seed, help="seed of the index draws"
    )
    p.add_argument(
        "--problem-seed",
        type=non_negative_int,
        default=paper.problem_seed,
        help="seed of the least-squares instance",
    )
    p.add_argument(
        "--step-scale",
        type=positive_float,
        default=paper.step_scale,
        help="multiplies Eq. 3's step size D/sqrt(S(p) T)",
    )
    p.add_argument(
        "--target", type=positive_float, help=f"target error of the table (default: {target})"
    )
    p.add_argument("--out", default=out, help=f"output folder (default {out})")
    add_compile_cache_flag(p)
    needs(p, "matplotlib", extra="plot")


def register(sub) -> None:
    """Add ``figure2`` and ``figure6``."""
    p2 = sub.add_parser("figure2", help="reproduce Figure 2 (§4.4): results file, PNG, table")
    _common(
        p2,
        figure2.PAPER,
        figure2.DEMO,
        "strategy",
        "results/figure2",
        "the largest final mean error, which every strategy reaches",
    )
    p2.add_argument(
        "--strategies",
        type=comma_list(str, sorted(figure2.STRATEGIES)),
        default=figure2.PAPER.strategies,
        help=f"comma-separated, from {', '.join(sorted(figure2.STRATEGIES))}",
    )
    p2.add_argument(
        "--gradient-bound",
        default=figure2.PAPER.gradient_bound,
        choices=("ball", "row_norm"),
        help="the bound G_i of each component's gradient (costsgd.least_squares)",
    )
    p2.set_defaults(
        run=_run,
        parser=p2,
        module=figure2,
        experiment="figure2",
        items="strategies",
        noun="strategies",
    )

    p6 = sub.add_parser(
        "figure6", help="reproduce Figure 6 (App. C): subset selection vs full p*, results + PNG"
    )
    _common(
        p6,
        figure6.PAPER,
        figure6.DEMO,
        "budget",
        "results/figure6",
        "1.5x the final mean error of the smallest budget",
    )
    p6.add_argument(
        "--gammas",
        dest="gamma_fractions",
        type=comma_list(_fraction),
        default=figure6.PAPER.gamma_fractions,
        help="comma-separated budgets Γ/Γmax in [0, 1), Γmax = D·mean(G)",
    )
    p6.add_argument(
        "--solver",
        default=figure6.PAPER.solver,
        choices=sorted(figure6.SOLVERS),
        help="the knapsack solver that picks each budget's subset",
    )
    p6.set_defaults(
        run=_run,
        parser=p6,
        module=figure6,
        experiment="figure6",
        items="gamma_fractions",
        noun="budgets",
    )


def _config(args: argparse.Namespace):
    """The experiment's config: the flags that name one of its fields, on top of PAPER or DEMO."""
    base = args.module.DEMO if args.demo else args.module.PAPER
    given = {k: v for k, v in vars(args).items() if k in base._fields and v is not None}
    return base._replace(**given)


def _run(args: argparse.Namespace) -> int:
    module, parser = args.module, args.parser
    with option_errors(parser, validation=True):
        config = _config(args).validate()
    out = check_output_folder(args.out)
    start_engine(args)
    print(
        f"{args.command}: {config.trials} trials x {config.steps} steps"
        f" x {len(getattr(config, args.items))} {args.noun} ...",
        flush=True,
    )
    with option_errors(parser):
        results = module.run(config)
    npz, png = out / f"{args.experiment}.npz", out / f"{args.experiment}.png"
    with writing(npz):
        module.save_results(results, npz)
    with writing(png):
        module.plot_results(results, png)
    print(module.format_summary(*module.summary(results, args.target)))
    print(f"results: {npz}\nfigure:  {png}")
    return 0
