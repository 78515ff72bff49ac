r"""Claims about subset selection (Appendix C, D.3, D.4): the greedy's factor, the
LP relaxation's order, and the strongly convex budget."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.optimize import linprog

from costsgd import subset
from costsgd.claims import zoo
from costsgd.claims.base import Template, claim, describe, not_applicable, result
from costsgd.problems import least_squares

__all__ = ["appC_greedy", "thmD3_budget", "thmD3_lp"]

COUNTEREXAMPLE = {"G": [1.0, 100.0, 2.0], "c": [1.0, 1.21, 1.44], "required": 2.0}


def _knapsack_cases(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    out = [{**COUNTEREXAMPLE, "label": "Appendix C counterexample"}]
    for inst in zoo.instances(rng, quick, per_size=2 if quick else 8):
        if inst["G"].size > 12:
            continue
        frac = float(rng.uniform(0.05, 0.95))
        out.append(
            {
                "G": inst["G"],
                "c": inst["c"],
                "required": frac * inst["G"].sum(),
                "label": inst["label"],
            }
        )
    return out


def _instance(G, c, required) -> subset.MinKnapsack:
    G, c = np.asarray(G, dtype=np.float64), np.asarray(c, dtype=np.float64)
    return subset.MinKnapsack(G * np.sqrt(c), G, float(required), c)


def _brute_force(inst: subset.MinKnapsack) -> float:
    best = np.inf
    n = inst.value.size
    for mask in itertools.product((0.0, 1.0), repeat=n):
        z = np.array(mask)
        if inst.covers(z):
            best = min(best, float(z @ inst.item_cost))
    return best


@claim(
    "appC-greedy",
    reference="App. C (greedy approximation)",
    statement="cheapest-first greedy is a 2-approximation of the min-cost knapsack (Eq. 12)",
    template=Template("upper", z=0.0),
    instances=_knapsack_cases,
    expected="fails",
)
def appC_greedy(G=None, c=None, required: float | None = None, *, label: str = "", rng: Any = None):
    r"""Appendix C: the greedy (lowest :math:`c_i` first until :math:`\sum v_i \ge V_{req}`)
    has objective at most twice the optimum. Known false: ``(G, c) = (1, 1), (100, 1.21),
    (2, 1.44)``, :math:`V_{req} = 2` gives 111 against 2.4 (ratio 46.25).

    Numerical: greedy objective / optimum (brute force, n <= 12); theoretical: 2.
    Defaults to that counterexample.
    """
    if G is None:
        G, c, required = COUNTEREXAMPLE["G"], COUNTEREXAMPLE["c"], COUNTEREXAMPLE["required"]
    inst = _instance(G, c, required)
    where = describe(G, c, label, V_req=float(required))
    if inst.value.size > 12:
        return not_applicable("appC-greedy", "brute force needs n <= 12", instance=where)
    if inst.required > inst.value.sum():
        return not_applicable("appC-greedy", "V_req > Σ G: infeasible", instance=where)
    opt = _brute_force(inst)
    greedy = subset.knapsack_greedy(inst).objective
    if opt == 0:
        ratio = 1.0 if greedy == 0 else np.inf
    else:
        ratio = greedy / opt
    return result("appC-greedy", ratio, 2.0, instance=where)


@claim(
    "thmD.3-lp",
    reference="Thm D.3 (LP relaxation)",
    statement="the knapsack's LP relaxation is solved by taking items by increasing c_i",
    template=Template("tight", rel=1e-7, abs=1e-12, z=0.0),
    instances=_knapsack_cases,
)
def thmD3_lp(G=None, c=None, required: float | None = None, *, label: str = "", rng: Any = None):
    r"""Theorem D.3: the fractional knapsack (:math:`z \in [0,1]^n`) is optimal when
    items are taken by increasing cost (:func:`costsgd.knapsack_lp`).

    Numerical: that solution's objective; theoretical: ``scipy.optimize.linprog``'s optimum.
    """
    if G is None:
        G, c, required = COUNTEREXAMPLE["G"], COUNTEREXAMPLE["c"], COUNTEREXAMPLE["required"]
    inst = _instance(G, c, required)
    where = describe(G, c, label, V_req=float(required))
    if inst.required > inst.value.sum():
        return not_applicable("thmD.3-lp", "V_req > Σ G: infeasible", instance=where)
    ours = subset.knapsack_lp(inst).objective
    scale_v, scale_w = inst.value.max(), max(inst.item_cost.max(), 1e-300)
    ref = linprog(
        inst.item_cost / scale_w,
        A_ub=-(inst.value / scale_v)[None, :],
        b_ub=[-inst.required / scale_v],
        bounds=(0, 1),
        method="highs",
    )
    if ref.status != 0:
        return not_applicable("thmD.3-lp", f"linprog: {ref.message}", instance=where)
    return result("thmD.3-lp", ours, ref.fun * scale_w, instance=where)


def _budget_cases(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    seeds = range(2) if quick else range(8)
    return [{"seed": int(rng.integers(2**31)) + s, "n": 60, "d": 3} for s in seeds]


@claim(
    "thmD.3-budget",
    reference="Thm D.3 / App. D.4",
    statement="covering V_req = ΣG - n√(2μΓ) keeps f(x*_π) - f(x*) <= Γ (μ-strongly convex f)",
    template=Template("upper", rel=1e-9, abs=1e-12, z=0.0),
    instances=_budget_cases,
)
def thmD3_budget(seed: int = 0, n: int = 60, d: int = 3, *, rng: Any = None):
    r"""Theorem D.3 on §4.4-style least squares (:func:`costsgd.least_squares`):
    for several budgets :math:`\Gamma`, the exact knapsack subset :math:`\pi` has
    :math:`f(x^*_\pi) - f(x^*) \le \Gamma`, :math:`x^*_\pi` the minimiser of
    :math:`f_\pi = \frac1n\sum_{i\in\pi} f_i`, :math:`\mu` the smallest eigenvalue of
    the Hessian. Needs :math:`x^*_\pi` inside the ball where the :math:`G_i` are
    bounds (else not applicable).

    Numerical: the largest :math:`(f(x^*_\pi) - f^*)/\Gamma` over the budgets; theoretical: 1.
    """
    prob = least_squares(n, d, rng=seed)
    H = prob.hessian
    mu = float(np.linalg.eigvalsh(H)[0])
    where = describe(prob.G, prob.c, "least squares", seed=seed, mu=mu)
    worst, tried = -np.inf, 0
    scale = 0.5 * mu * (prob.G.sum() / n) ** 2  # Γ at which every component may go
    for frac in (1e-4, 1e-3, 1e-2, 0.1):
        gamma = frac * scale
        sol = subset.knapsack_exact(subset.knapsack(prob.G, prob.c, gamma=gamma, mu=mu))
        rows = np.flatnonzero(sol.selected)
        if rows.size < d or np.linalg.matrix_rank(prob.A[rows]) < d:
            continue
        x_pi = np.linalg.lstsq(prob.A[rows], prob.b[rows], rcond=None)[0]
        if np.linalg.norm(x_pi) > prob.radius:
            continue
        e = x_pi - prob.x_star
        worst = max(worst, 0.5 * e @ H @ e / gamma)
        tried += 1
    if not tried:
        return not_applicable(
            "thmD.3-budget", "no budget left a full-rank subset inside the ball", instance=where
        )
    return result("thmD.3-budget", worst, 1.0, instance=where, reason=f"{tried} budgets")
