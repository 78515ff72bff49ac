r"""Figure 6 of the paper (Appendix C): greedy subset selection for several bias
budgets :math:`\Gamma` against full :math:`p^*` sampling, error against cumulative cost.

Protocol (the paper says "a similar setting to Section 4.4" and the greedy; the
rest is chosen here and recorded in the results file):

* the §4.4 least-squares instance of Figure 2 (:func:`costsgd.least_squares`),
  :math:`D = 2R`, start at the origin;
* budgets are given as fractions :math:`\Gamma/\Gamma_{max}` with
  :math:`\Gamma_{max} = D\,\frac1n\sum_i G_i` (the budget at which nothing needs
  to be kept, :math:`V_{req} = 0`); for each, the knapsack of Theorem C.1 is
  solved (greedy by default, as in the paper) and SGD samples
  :math:`q_i \propto G_i/\sqrt{c_i}` on the subset :math:`\pi` with weights
  :math:`1/(nq_i)`, i.e. runs unbiased SGD on :math:`f_\pi = \frac1n\sum_{i\in\pi}f_i`;
  :math:`\Gamma = 0` is full :math:`p^*` sampling;
* every strategy runs ``T`` steps with Eq. 3's step :math:`D/\sqrt{S_\pi(q)T}`
  (the subset's second moment) and reports the average iterate's error on
  the *full* objective, :math:`f(\bar x_t) - f^*`, against its cumulative cost;
* the bias floor of each subset is computed exactly: the point
  :math:`x_\pi` that projected (S)GD on :math:`f_\pi` started at the origin
  converges to (the minimiser of :math:`f_\pi` over the ball within the row
  space of :math:`A_\pi`) and :math:`f(x_\pi) - f^*`. The bound
  :math:`D\beta_\pi \le \Gamma` of Appendix C is recorded too; on this
  instance it is orders of magnitude looser than the true floor.

The engine rejects distributions with :math:`p_i = 0 < G_i` (an unintended
bias); here the bias is the point, so the problem handed to it declares
:math:`G_i = 0` outside the smallest subset, which is exact for
:math:`f_\pi` (those components are absent from it) and changes nothing
else: the error is still measured on the full :math:`f`.
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
    "SOLVERS",
    "Figure6Config",
    "Row6",
    "format_summary",
    "load_results",
    "plot_results",
    "run",
    "save_results",
    "subset_limit",
    "summary",
]

SOLVERS = {
    "greedy": cs.knapsack_greedy,
    "two_approx": cs.knapsack_two_approx,
    "exact": cs.knapsack_exact,
}


class Figure6Config(NamedTuple):
    """Everything that defines a Figure 6 run (saved with the results)."""

    n: int = 3000
    d: int = 50
    L: float = 10.0
    steps: int = 50_000  #: longer than Figure 2's 20 000: the floors show
    trials: int = 1000
    seed: int = 0  #: seed of the index draws
    problem_seed: int = 0  #: seed of the least-squares instance
    gamma_fractions: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 0.9, 0.97, 0.99)  #: Γ/Γ_max
    solver: str = "greedy"
    checkpoints: int = 50
    step_scale: float = 1.0  #: multiplies Eq. 3's step size

    def validate(self) -> Figure6Config:
        """Check every field; returns ``self``.

        Raises:
          ConfigError: naming the field (a ``ValueError``).
        """
        _results.check_common_fields(self)
        fr = np.asarray(self.gamma_fractions, dtype=np.float64)
        if fr.ndim != 1 or fr.size == 0:
            raise ConfigError("gamma_fractions", "gamma_fractions must be a non-empty sequence")
        if not (np.all(np.isfinite(fr)) and fr.min() >= 0 and fr.max() < 1):
            raise ConfigError(
                "gamma_fractions",
                f"gamma_fractions must lie in [0, 1), got {list(self.gamma_fractions)}",
            )
        if np.unique(fr).size != fr.size:
            raise ConfigError(
                "gamma_fractions", f"gamma_fractions has duplicates: {list(self.gamma_fractions)}"
            )
        if self.solver not in SOLVERS:
            raise ConfigError(
                "solver", f"solver must be one of {sorted(SOLVERS)}, got {self.solver!r}"
            )
        return self


PAPER = Figure6Config()
DEMO = PAPER._replace(trials=100)


def subset_limit(A: np.ndarray, b: np.ndarray, radius: float) -> np.ndarray:
    r"""Where projected (S)GD on :math:`\frac12\|A x - b\|^2/n` from :math:`x = 0` converges.

    Iterates stay in the row space of ``A`` (gradients are combinations of
    rows, the ball projection rescales), where the objective is strongly
    convex: the limit is the minimum-norm least-squares solution if it lies
    in the ball :math:`\|x\| \le R`, else the ridge solution
    :math:`x(\lambda) = (A^\top A + \lambda I)^{-1}A^\top b` with
    :math:`\|x(\lambda)\| = R` (trust-region subproblem, bisection on :math:`\lambda`).

    Examples:
      >>> A = np.array([[1.0, 0.0], [0.0, 1.0]]); b = np.array([3.0, 4.0])
      >>> subset_limit(A, b, 10.0).tolist(), np.round(subset_limit(A, b, 1.0), 6).tolist()
      ([3.0, 4.0], [0.6, 0.8])
    """
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    keep = s > s.max() * max(A.shape) * np.finfo(float).eps if s.size else s > 0
    U, s, Vt = U[:, keep], s[keep], Vt[keep]
    ub = U.T @ b

    def x_of(lam: float) -> np.ndarray:
        return Vt.T @ (s * ub / (s**2 + lam))

    x = x_of(0.0)
    if np.linalg.norm(x) <= radius:
        return x
    lo, hi = 0.0, float(s.max() * np.linalg.norm(ub) / radius)  # ‖x(hi)‖ <= R
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.linalg.norm(x_of(mid)) > radius else (lo, mid)
    return x_of(hi)


def run(config: Figure6Config = PAPER) -> dict[str, Any]:
    """Run the Figure 6 experiment and return its results as a dict of arrays.

    Returns:
      ``steps (K,)``; ``cost``, ``error`` (average iterate), ``error_last`` of
      shape ``(S, M, K)``, one row per Γ; per Γ: ``gamma``, ``size`` (|π|),
      ``bias`` (β_π), ``floor`` (f(x_π) - f*), ``expected_cost`` C(q),
      ``cost_product_ratio`` J_π/J(p*), ``eta``, ``selected (S, n)``; plus
      ``config`` and ``versions``.

    Raises:
      ConfigError: a field is invalid, or the run diverged (named: ``step_scale``).

    Examples:
      >>> cfg = PAPER._replace(n=300, d=5, steps=500, trials=4, checkpoints=5,
      ...                      gamma_fractions=(0.0, 0.5))
      >>> res = run(cfg)
      >>> res["error"].shape, bool(res["size"][1] < res["size"][0])
      ((2, 4, 5), True)
    """
    config.validate()
    prob = cs.least_squares(config.n, config.d, L=config.L, rng=config.problem_seed)
    G, c, D = prob.G, prob.c, 2 * prob.radius
    gamma_max = D * G.mean()
    gammas = np.asarray(config.gamma_fractions, dtype=np.float64) * gamma_max
    solve = SOLVERS[config.solver]
    selected = np.stack([solve(cs.knapsack(G, c, gamma=g, D=D)).selected for g in gammas])
    P = np.stack([np.asarray(cs.optimal(G * m, c), dtype=np.float64) for m in selected])
    eta = config.step_scale * np.array(
        [
            cs.theory_step_size(q, G * m, D=D, steps=config.steps)
            for q, m in zip(P, selected, strict=True)
        ]
    )
    _results.check_step_size(eta, config.step_scale)
    engine_problem = prob._replace(G=np.where(selected.all(axis=0), G, 0.0))
    res = cs.cost_aware_sgd(
        engine_problem,
        P,
        steps=config.steps,
        trials=config.trials,
        step_size=eta,
        key=config.seed,
        checkpoints=cs.log_checkpoints(config.steps, config.checkpoints),
    )
    names = [f"gamma_fraction={f:g}" for f in config.gamma_fractions]
    _results.check_finite(names, res.error_average, res.cost, config.step_scale)
    H = prob.hessian
    floors = []
    for m in selected:
        e = subset_limit(prob.A[m], prob.b[m], prob.radius) - prob.x_star
        floors.append(0.5 * e @ H @ e)
    omega = G * np.sqrt(c)
    return {
        "steps": res.steps,
        "cost": res.cost,
        "error": res.error_average,
        "error_last": res.error_last,
        "gamma": gammas,
        "gamma_max": gamma_max,
        "size": selected.sum(axis=1),
        "bias": (~selected * G).sum(axis=1) / G.size,
        "floor": np.array(floors),
        "expected_cost": np.array([cs.expected_cost(q, c) for q in P]),
        "cost_product_ratio": (selected @ omega) ** 2 / omega.sum() ** 2,
        "eta": eta,
        "selected": selected,
        "diameter": D,
        "config": config._asdict(),
        "versions": {**_results.versions("jax"), **res.provenance},
    }


_CURVES = Array(("budget", "trial", "checkpoint"))
_PER_BUDGET = Array(("budget",), minimum=0.0)

#: What a figure6 results file must hold to be summarised and plotted.
SCHEMA = Record(
    {
        "config": Record(
            {
                "gamma_fractions": ListOf(Number(minimum=0.0), dim="budget"),
                "solver": Text(),
                "n": Number(integer=True, minimum=1, dim="component"),
                "d": Number(integer=True, minimum=1),
                "trials": Number(integer=True, minimum=1, dim="trial"),
            }
        ),
        "steps": Array(("checkpoint",), kind="int", minimum=1, increasing=True),
        "cost": Array(("budget", "trial", "checkpoint"), minimum=0.0),
        "error": _CURVES,
        "size": Array(("budget",), kind="int", minimum=0),
        "floor": _PER_BUDGET,
        "cost_product_ratio": _PER_BUDGET,
    },
    optional={
        "error_last": _CURVES,
        "gamma": _PER_BUDGET,
        "gamma_max": Array((), minimum=0.0),
        "bias": _PER_BUDGET,
        "expected_cost": _PER_BUDGET,
        "eta": _PER_BUDGET,
        "selected": Array(("budget", "component"), kind="bool"),
        "diameter": Array((), minimum=0.0),
    },
)


def save_results(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write figure6 results to ``path`` (npz) atomically; see :mod:`costsgd.experiments.results`."""
    return _results.save_results(results, path, experiment="figure6")


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results file written by :func:`save_results`."""
    out = _results.load_results(path, experiment="figure6", schema=SCHEMA)
    out["config"]["gamma_fractions"] = tuple(out["config"]["gamma_fractions"])
    return out


class Row6(NamedTuple):
    """One bias budget at the target error."""

    gamma_fraction: float  #: Γ / Γ_max
    size: int  #: |π|
    floor: float  #: f(x_π) - f*, the bias floor
    final_error: float  #: mean f(x̄_T) - f*
    final_cost: float  #: mean cumulative cost after T steps
    full_error_at_cost: float  #: full p*'s mean error at the same cumulative cost
    cost: float  #: mean cumulative cost to reach the target (nan: not reached)
    cost_ratio: float  #: cost / (cost of full p*, Γ = 0)
    predicted_cost_ratio: float  #: J_π / J(p*) = (Σ_π G√c / Σ G√c)²


def summary(results: dict[str, Any], target: float | None = None) -> tuple[float, list[Row6]]:
    """Cost each budget's mean curve needed to reach ``target`` (default: 1.5x the
    final mean error of the smallest Γ, normally full p*).

    Returns:
      ``(target, rows)``.
    """
    mean_err, mean_cost = results["error"].mean(axis=1), results["cost"].mean(axis=1)
    fractions = list(results["config"]["gamma_fractions"])
    first = int(np.argmin(fractions))
    target = 1.5 * float(mean_err[first, -1]) if target is None else float(target)
    if not (np.isfinite(target) and target > 0):
        raise ValueError(f"target must be finite and > 0, got {target!r}")
    steps = results["steps"].astype(np.float64)
    reached = [
        _results.crossing(steps, mean_cost[s], mean_err[s], target)[1]
        for s in range(len(fractions))
    ]
    ref = reached[first]
    log_cost_full, log_err_full = np.log(mean_cost[first]), np.log(mean_err[first])
    at_cost = [
        float(np.exp(np.interp(np.log(mean_cost[s, -1]), log_cost_full, log_err_full)))
        if mean_cost[first, 0] <= mean_cost[s, -1] <= mean_cost[first, -1]
        else float("nan")
        for s in range(len(fractions))
    ]
    rows = [
        Row6(
            float(f),
            int(results["size"][s]),
            float(results["floor"][s]),
            float(mean_err[s, -1]),
            float(mean_cost[s, -1]),
            at_cost[s],
            reached[s],
            reached[s] / ref,
            float(results["cost_product_ratio"][s]),
        )
        for s, f in enumerate(fractions)
    ]
    return target, rows


def format_summary(target: float, rows: list[Row6]) -> str:
    """The summary as a text table."""
    lines = [
        f"target error f(x̄) - f* = {target:.4g} (mean over trials, average iterate)",
        f"{'Γ/Γmax':>7} {'|π|':>5} {'floor':>9} {'final err':>10} {'final cost':>11}"
        f" {'full@cost':>10} {'cost@target':>12} {'ratio':>7} {'J_π/J*':>8}",
    ]
    for r in rows:
        lines.append(
            f"{r.gamma_fraction:7.2f} {r.size:5d} {r.floor:9.3g} {r.final_error:10.4g}"
            f" {r.final_cost:11.4g} {r.full_error_at_cost:10.4g} {r.cost:12.4g} {r.cost_ratio:7.3f} {r.predicted_cost_ratio:8.3g}"
        )
    lines.append(
        "(floor: f(x_π) - f* where SGD on the subset converges; full@cost: full p*'s error at"
        " the same cumulative cost;\n ratio: cost@target / that of Γ = 0; nan: not reached)"
    )
    return "\n".join(lines)


def plot_results(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Draw Figure 6 (error against cumulative cost, one curve per Γ) to a PNG.

    Mean over trials with a ±1 standard deviation band; dotted lines mark each
    subset's bias floor.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    cfg = results["config"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8), constrained_layout=True)
    for s, frac in enumerate(cfg["gamma_fractions"]):
        err = results["error"][s]
        mean, std = err.mean(axis=0), err.std(axis=0)
        cost = results["cost"][s].mean(axis=0)
        label = (
            f"full $p^*$ (Γ = 0, n = {results['size'][s]})"
            if frac == 0
            else f"Γ = {frac:g} Γmax, |π| = {results['size'][s]}"
        )
        (line,) = ax.plot(cost, mean, label=label)
        low = np.maximum(mean - std, mean * 1e-2)
        ax.fill_between(cost, low, mean + std, color=line.get_color(), alpha=0.15, linewidth=0)
        if frac > 0:  # the full set's floor is 0 (up to rounding)
            ax.axhline(results["floor"][s], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cumulative cost")
    ax.set_ylabel(r"$f(\bar x_t) - f^*$")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(
        f"Greedy subset selection ({cfg['solver']}), least squares N={cfg['n']}, d={cfg['d']}, "
        f"{cfg['trials']} trials\n(mean ± 1 std; dotted: each subset's bias floor)",
        fontsize=9,
    )
    try:
        _results.write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))
    finally:
        plt.close(fig)
    return path
