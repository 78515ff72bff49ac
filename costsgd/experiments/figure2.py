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

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import costsgd as cs
from costsgd.experiments import results as _results
from costsgd.experiments.results import ConfigError
from costsgd.experiments.schema import Array, ListOf, Number, Record, Text

__all__ = [
    "DEMO",
    "PAPER",
    "SCHEMA",
    "STRATEGIES",
    "Figure2Config",
    "Row",
    "Setup",
    "collect_results",
    "default_target",
    "format_summary",
    "load_results",
    "plot_results",
    "run",
    "save_results",
    "setup",
    "summary",
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

    def validate(self) -> Figure2Config:
        """Check every field; returns ``self``.

        Raises:
          ConfigError: naming the field (a ``ValueError``).
        """
        _results.check_common_fields(self)
        if not self.strategies:
            raise ConfigError("strategies", "strategies is empty: give at least one")
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise ConfigError(
                "strategies", f"unknown strategies {unknown}; choose from {sorted(STRATEGIES)}"
            )
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError("strategies", f"strategies has duplicates: {list(self.strategies)}")
        if self.gradient_bound not in ("ball", "row_norm"):
            raise ConfigError(
                "gradient_bound",
                f"gradient_bound must be 'ball' or 'row_norm', got {self.gradient_bound!r}",
            )
        return self


PAPER = Figure2Config()
DEMO = PAPER._replace(trials=200)


class Setup(NamedTuple):
    """The inputs of one Figure 2 run, as :func:`costsgd.cost_aware_sgd` takes them."""

    problem: cs.LeastSquares  #: the §4.4 instance
    p: np.ndarray  #: (S, n) strategies, in ``config.strategies`` order
    step_size: np.ndarray  #: (S,) Eq. 3's step sizes times ``step_scale``
    checkpoints: np.ndarray  #: log-spaced checkpoint steps


def setup(config: Figure2Config = PAPER) -> Setup:
    """The instance, the strategies, Eq. 3's step sizes and the checkpoints of ``config``.

    Raises:
      ConfigError: a field is invalid, or the step sizes overflow (named: ``step_scale``).

    Examples:
      >>> s = setup(PAPER._replace(n=300, d=5, steps=500, checkpoints=5))
      >>> s.p.shape, s.step_size.shape, s.checkpoints.tolist()
      ((3, 300), (3,), [1, 5, 22, 106, 500])
    """
    config.validate()
    prob = cs.least_squares(
        config.n,
        config.d,
        L=config.L,
        gradient_bound=config.gradient_bound,
        rng=config.problem_seed,
    )
    G, c = prob.G, prob.c
    P = np.stack([np.asarray(STRATEGIES[s](G, c), dtype=np.float64) for s in config.strategies])
    eta = config.step_scale * cs.theory_step_size(P, G, D=2 * prob.radius, steps=config.steps)
    _results.check_step_size(eta, config.step_scale)
    return Setup(prob, P, eta, cs.log_checkpoints(config.steps, config.checkpoints))


def run(config: Figure2Config = PAPER) -> dict[str, Any]:
    """Run the Figure 2 experiment and return its results as a dict of arrays.

    Returns:
      ``steps (K,)``, ``cost``, ``error`` (average iterate), ``error_suffix``,
      ``error_last`` of shape ``(S, M, K)``, and per strategy ``p (S, n)``,
      ``eta``, ``second_moment`` S(p), ``expected_cost`` C(p), ``cost_product``
      J(p); plus ``config`` and ``versions`` (dicts).

    Raises:
      ConfigError: a field is invalid, or the run diverged (named: ``step_scale``).

    Examples:
      >>> cfg = PAPER._replace(n=300, d=5, steps=500, trials=4, checkpoints=5)
      >>> res = run(cfg)
      >>> res["error"].shape
      (3, 4, 5)
    """
    prob, P, eta, checkpoints = setup(config)
    res = cs.cost_aware_sgd(
        prob,
        P,
        steps=config.steps,
        trials=config.trials,
        step_size=eta,
        key=config.seed,
        checkpoints=checkpoints,
    )
    _results.check_finite(config.strategies, res.error_average, res.cost, config.step_scale)
    return collect_results(res, P, eta, prob.G, prob.c, config)


def collect_results(res: cs.SGDResult, P, eta, G, c, config: Figure2Config) -> dict[str, Any]:
    """The results dict of :func:`run` from an engine run and its inputs
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
        "versions": {**_results.versions("jax"), **res.provenance},
    }


_CURVES = Array(("strategy", "trial", "checkpoint"))
_PER_STRATEGY = Array(("strategy",), minimum=0.0)

#: What a figure2 results file must hold to be summarised and plotted.
SCHEMA = Record(
    {
        "config": Record(
            {
                "strategies": ListOf(Text(), dim="strategy"),
                "n": Number(integer=True, minimum=1, dim="component"),
                "d": Number(integer=True, minimum=1),
                "trials": Number(integer=True, minimum=1, dim="trial"),
            }
        ),
        "steps": Array(("checkpoint",), kind="int", minimum=1, increasing=True),
        "cost": Array(("strategy", "trial", "checkpoint"), minimum=0.0),
        "error": _CURVES,
        "second_moment": _PER_STRATEGY,
        "cost_product": _PER_STRATEGY,
        "optimal_cost_product": Array((), minimum=0.0),
    },
    optional={
        "error_suffix": _CURVES,
        "error_last": _CURVES,
        "p": Array(("strategy", "component"), minimum=0.0),
        "eta": _PER_STRATEGY,
        "expected_cost": _PER_STRATEGY,
    },
)


def save_results(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write figure2 results to ``path`` (npz) atomically; see :mod:`costsgd.experiments.results`."""
    return _results.save_results(results, path, experiment="figure2")


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results file written by :func:`save_results`."""
    out = _results.load_results(path, experiment="figure2", schema=SCHEMA)
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
    try:
        _results.write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))
    finally:
        plt.close(fig)
    return path
