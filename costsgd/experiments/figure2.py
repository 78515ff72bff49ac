r"""Figure 2 of the paper (§4.4): Uniform, Variance and Optimal sampling compared by
error against steps and against cumulative cost.

Protocol (the paper states N, d, L, the costs, the strategies and 1000 trials;
the rest is chosen here and recorded in the results file):

* one §4.4 least-squares instance (:func:`costsgd.least_squares`,
  ``gradient_bound="ball"``), start at the origin;
* every strategy runs ``T = 20000`` steps of Algorithm 1 with Eq. 3's constant
  step :math:`\eta_p = D/\sqrt{S(p)T}`, :math:`D = 2R` (times ``step_scale``),
  and reports the average iterate :math:`\bar x_t` (Algorithm 1's output);
* trial ``m`` of every strategy uses the same random key (common random numbers);
* errors :math:`f(\bar x_t) - f^*` (computed as ½eᵀHe) and cumulative costs
  are recorded at 50 log-spaced checkpoints.

``T = 20000`` is where, with these step sizes, every strategy's mean error has
fallen by more than an order of magnitude and the three curves are well
separated; ``--steps`` changes it.

The summary reads the mean curves at a target error (by default the largest
final mean error, so every strategy reaches it): the steps and the cumulative
cost each strategy needed (log-log interpolation between checkpoints), their
ratios to Optimal, and Eq. 8's predicted ratio :math:`J(p)/J(p^*)`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import costsgd as cs
from costsgd.experiments import results as _results

__all__ = [
    "DEMO",
    "PAPER",
    "Figure2Config",
    "Row",
    "add_parsers",
    "collect_results",
    "default_target",
    "format_summary",
    "load_results",
    "plot_results",
    "run_figure2",
    "save_results",
    "summary",
    "use_all_cores",
]

STRATEGIES = {
    "uniform": cs.uniform,
    "variance": cs.variance,
    "optimal": cs.optimal,
    "length_only": cs.length_only,
}
LABELS = {
    "uniform": "Uniform",
    "variance": "Variance",
    "optimal": "Optimal",
    "length_only": "Length only",
}


class Figure2Config(NamedTuple):
    """Everything that defines a Figure 2 run (saved with the results)."""

    n: int = 3000
    d: int = 50
    L: float = 10.0
    steps: int = 20_000
    trials: int = 1000
    seed: int = 0  #: seed of the index draws
    problem_seed: int = 0  #: seed of the least-squares instance
    strategies: tuple[str, ...] = ("uniform", "variance", "optimal")
    checkpoints: int = 50
    step_scale: float = 1.0  #: multiplies Eq. 3's step size
    gradient_bound: str = "ball"


PAPER = Figure2Config()
DEMO = PAPER._replace(trials=200)


def _validate(config: Figure2Config) -> None:
    for name in ("n", "d", "steps", "trials", "checkpoints"):
        value = getattr(config, name)
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not config.strategies:
        raise ValueError("strategies is empty: give at least one")
    unknown = [s for s in config.strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {sorted(STRATEGIES)}")
    if len(set(config.strategies)) != len(config.strategies):
        raise ValueError(f"strategies has duplicates: {list(config.strategies)}")
    if not (np.isfinite(config.step_scale) and config.step_scale > 0):
        raise ValueError(f"step_scale must be finite and > 0, got {config.step_scale!r}")


def run_figure2(config: Figure2Config = PAPER) -> dict[str, Any]:
    """Run the Figure 2 experiment and return its results as a dict of arrays.

    Returns:
      ``steps (K,)``, ``cost``, ``error`` (average iterate), ``error_suffix``,
      ``error_last`` of shape ``(S, M, K)``, and per strategy ``p (S, n)``,
      ``eta``, ``second_moment`` S(p), ``expected_cost`` C(p), ``cost_product``
      J(p); plus ``config`` and ``versions`` (dicts).

    Examples:
      >>> cfg = PAPER._replace(n=300, d=5, steps=500, trials=4, checkpoints=5)
      >>> res = run_figure2(cfg)
      >>> res["error"].shape
      (3, 4, 5)
    """
    _validate(config)
    prob = cs.least_squares(
        config.n,
        config.d,
        L=config.L,
        gradient_bound=config.gradient_bound,
        seed=config.problem_seed,
    )
    G, c = prob.G, prob.c
    P = np.stack([np.asarray(STRATEGIES[s](G, c), dtype=np.float64) for s in config.strategies])
    eta = config.step_scale * cs.theory_step_size(P, G, D=2 * prob.radius, steps=config.steps)
    res = cs.cost_aware_sgd(
        prob,
        P,
        steps=config.steps,
        trials=config.trials,
        step_size=eta,
        key=config.seed,
        checkpoints=cs.log_checkpoints(config.steps, config.checkpoints),
    )
    return collect_results(res, P, eta, G, c, config)


def collect_results(res: cs.SGDResult, P, eta, G, c, config: Figure2Config) -> dict[str, Any]:
    """The results dict of :func:`run_figure2` from an engine run and its inputs
    (arrays, the theory's S, C, J per strategy, config and versions)."""
    return {
        "steps": res.steps,
        "cost": res.cost,
        "error": res.error_average,
        "error_suffix": res.error_suffix,
        "error_last": res.error_last,
        "p": P,
        "eta": eta,
        "second_moment": np.array([cs.second_moment(p, G) for p in P]),
        "expected_cost": np.array([cs.expected_cost(p, c) for p in P]),
        "cost_product": np.array([cs.cost_product(p, G, c) for p in P]),
        "optimal_cost_product": cs.optimal_cost_product(G, c),
        "config": config._asdict(),
        "versions": _results.versions(),
    }


def save_results(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write figure2 results to ``path`` (npz) atomically; see :mod:`costsgd.experiments.results`."""
    return _results.save_results(results, path, experiment="figure2")


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results file written by :func:`save_results`."""
    out = _results.load_results(path, experiment="figure2")
    out["config"]["strategies"] = tuple(out["config"]["strategies"])
    return out


class Row(NamedTuple):
    """One strategy at the target error."""

    strategy: str
    steps: float  #: steps the mean curve needed (nan: not reached)
    cost: float  #: mean cumulative cost at that point
    cost_ratio: float  #: cost / Optimal's cost (nan without Optimal)
    predicted_cost_ratio: float  #: Eq. 8: J(p) / J(p*)
    steps_ratio: float  #: steps / Optimal's steps
    predicted_steps_ratio: float  #: S(p) / S(p*) (T ∝ S, §4.1)


def default_target(results: dict[str, Any]) -> float:
    """The largest final mean error over the strategies: every strategy reaches it."""
    return float(np.max(results["error"].mean(axis=1)[:, -1]))


def summary(results: dict[str, Any], target: float | None = None) -> tuple[float, list[Row]]:
    """Steps and cost each strategy's mean curve needed to reach ``target``.

    Returns:
      ``(target, rows)``.
    """
    target = default_target(results) if target is None else float(target)
    if not (np.isfinite(target) and target > 0):
        raise ValueError(f"target must be finite and > 0, got {target!r}")
    names = list(results["config"]["strategies"])
    steps = results["steps"].astype(np.float64)
    mean_cost, mean_error = results["cost"].mean(axis=1), results["error"].mean(axis=1)
    reached = [
        _results.crossing(steps, mean_cost[s], mean_error[s], target) for s in range(len(names))
    ]
    J, S = results["cost_product"], results["second_moment"]
    j_star = float(results["optimal_cost_product"])
    s_star = S[names.index("optimal")] if "optimal" in names else float("nan")
    ref = reached[names.index("optimal")] if "optimal" in names else (np.nan, np.nan)
    rows = [
        Row(name, t, k, k / ref[1], J[s] / j_star, t / ref[0], S[s] / s_star)
        for s, (name, (t, k)) in enumerate(zip(names, reached, strict=True))
    ]
    return target, rows


def format_summary(target: float, rows: list[Row]) -> str:
    """The summary as a text table."""
    lines = [
        f"target error f(x̄) - f* = {target:.4g} (mean over trials, average iterate)",
        f"{'strategy':<10} {'steps':>9} {'cost':>11} {'cost/opt':>9} {'Eq.8':>7}"
        f" {'steps/opt':>10} {'S/S*':>7}",
    ]
    for r in rows:
        lines.append(
            f"{r.strategy:<10} {r.steps:9.0f} {r.cost:11.4g} {r.cost_ratio:9.3f}"
            f" {r.predicted_cost_ratio:7.3f} {r.steps_ratio:10.3f} {r.predicted_steps_ratio:7.3f}"
        )
    lines.append(
        "(Eq. 8: K(p)/K(p*) = J(p)/J(p*); §4.1: T(p)/T(p*) = S(p)/S(p*); nan: not reached)"
    )
    return "\n".join(lines)


def plot_results(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Draw Figure 2's two panels (error vs steps, error vs cumulative cost) to a PNG.

    Mean over trials with a ±1 standard deviation band (clipped above zero on
    the log axis).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = results["config"]
    steps = results["steps"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for s, name in enumerate(cfg["strategies"]):
        err = results["error"][s]
        mean, std = err.mean(axis=0), err.std(axis=0)
        low = np.maximum(mean - std, mean * 1e-2)
        cost = results["cost"][s].mean(axis=0)
        for ax, x in zip(axes, (steps, cost), strict=True):
            (line,) = ax.plot(x, mean, label=LABELS.get(name, name))
            ax.fill_between(x, low, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    axes[0].set_xlabel("steps t")
    axes[1].set_xlabel("cumulative cost")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel(r"$f(\bar x_t) - f^*$")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"Cost-Aware SGD, least squares N={cfg['n']}, d={cfg['d']}, "
        f"{cfg['trials']} trials (mean ± 1 std)"
    )
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def use_all_cores() -> None:
    """Expose every CPU core as a JAX device so trials shard across them.

    Only effective before JAX is first imported, and only when the caller has
    not set the device count already; used by the command line, never on import.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in flags:
        return
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if count and count > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``figure2`` and ``plot`` on the ``costsgd`` command line."""
    fig = sub.add_parser("figure2", help="reproduce Figure 2 (§4.4): results file, PNG, table")
    fig.add_argument(
        "--demo", action="store_true", help=f"smaller run ({DEMO.trials} trials) for a quick look"
    )
    fig.add_argument("--trials", type=int, help=f"trials per strategy (default {PAPER.trials})")
    fig.add_argument("--steps", type=int, help=f"steps T per trial (default {PAPER.steps})")
    fig.add_argument("--n", type=int, default=PAPER.n, help="components N")
    fig.add_argument("--d", type=int, default=PAPER.d, help="dimension d")
    fig.add_argument(
        "--checkpoints",
        type=int,
        default=PAPER.checkpoints,
        help="about this many log-spaced checkpoints",
    )
    fig.add_argument("--seed", type=int, default=PAPER.seed, help="seed of the index draws")
    fig.add_argument("--problem-seed", type=int, default=PAPER.problem_seed)
    fig.add_argument(
        "--strategies",
        default=",".join(PAPER.strategies),
        help=f"comma-separated, from {sorted(STRATEGIES)}",
    )
    fig.add_argument(
        "--step-scale",
        type=float,
        default=PAPER.step_scale,
        help="multiplies Eq. 3's step size D/sqrt(S(p) T)",
    )
    fig.add_argument("--gradient-bound", default=PAPER.gradient_bound, choices=("ball", "row_norm"))
    fig.add_argument("--target", type=float, help="target error of the table")
    fig.add_argument("--out", default="results/figure2", help="output folder")
    fig.set_defaults(func=_figure2_command)
    plot = sub.add_parser("plot", help="redraw a PNG from a results file, without rerunning")
    plot.add_argument("results", help="results file (.npz) written by `costsgd figure2`")
    plot.add_argument("--out", help="PNG path (default: next to the results file)")
    plot.add_argument("--target", type=float, help="target error of the table")
    plot.set_defaults(func=_plot_command)


def _clean_errors(command):
    """Report a ``ValueError`` (bad input) as one line on stderr with exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except ValueError as err:
            print(f"costsgd {args.command}: error: {err}", file=sys.stderr)
            return 2

    return run


def _check_target(target: float | None) -> None:
    if target is not None and not (np.isfinite(target) and target > 0):
        raise ValueError(f"target must be finite and > 0, got {target!r}")


@_clean_errors
def _figure2_command(args: argparse.Namespace) -> int:
    use_all_cores()
    _check_target(args.target)
    base = DEMO if args.demo else PAPER
    config = base._replace(
        trials=base.trials if args.trials is None else args.trials,
        steps=base.steps if args.steps is None else args.steps,
        n=args.n,
        d=args.d,
        checkpoints=args.checkpoints,
        seed=args.seed,
        problem_seed=args.problem_seed,
        strategies=tuple(s.strip() for s in args.strategies.split(",") if s.strip()),
        step_scale=args.step_scale,
        gradient_bound=args.gradient_bound,
    )
    _validate(config)
    print(
        f"Figure 2: {config.trials} trials x {config.steps} steps x "
        f"{len(config.strategies)} strategies ...",
        flush=True,
    )
    results = run_figure2(config)
    out = Path(args.out)
    npz = save_results(results, out / "figure2.npz")
    png = plot_results(results, out / "figure2.png")
    print(format_summary(*summary(results, args.target)))
    print(f"results: {npz}\nfigure:  {png}")
    return 0


@_clean_errors
def _plot_command(args: argparse.Namespace) -> int:
    _check_target(args.target)
    results = load_results(args.results)
    png = Path(args.out) if args.out else Path(args.results).with_suffix(".png")
    plot_results(results, png)
    print(format_summary(*summary(results, args.target)))
    print(f"figure:  {png}")
    return 0
