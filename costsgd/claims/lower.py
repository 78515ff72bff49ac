r"""Claims about the lower bound (Theorem 4.3 / E.1, its Remark, the hard instances).

The theorem is stated for :math:`n \ge G^2/\epsilon^2`; an instance with fewer
components is "not applicable" (the Remark's statement about :math:`S^*` is
combinatorial and is checked at any n).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from costsgd import samplers, theory
from costsgd.claims.base import Template, claim, describe, not_applicable, result
from costsgd.claims.engine import crossing
from costsgd.engine import cost_aware_sgd, log_checkpoints, theory_step_size
from costsgd.hardness import (
    clipped_mean,
    cost_uniform_set,
    hard_deltas,
    hard_instance,
    hard_slopes,
    lower_bound,
)

__all__ = ["thm43_hard_instances", "thm43_lower_bound", "thm43_remark"]


def _eq13(root: np.ndarray, subset: tuple[int, ...], n: int, G: float, eps: float) -> bool:
    r = root[list(subset)]
    return bool(40.0 * eps * n * r.max() <= G * r.sum())


def _remark_cases(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    out = []
    for n in (5, 8, 10):  # the Remark's c_i = 4^i: S* empty once eps > G/(20n)
        out.append({"c": 4.0 ** np.arange(1, n + 1), "G_max": 1.0, "eps": 1.01 / (20 * n)})
        out.append({"c": 4.0 ** np.arange(1, n + 1), "G_max": 1.0, "eps": 1.0 / (40 * n)})
    for _ in range(6 if quick else 40):
        n = int(rng.integers(1, 11))
        c = np.where(rng.random(n) < 0.7, rng.uniform(1.0, 2.0, n), 10.0 ** rng.uniform(0, 4, n))
        c[rng.random(n) < 0.1] = 0.0
        out.append({"c": c, "G_max": 1.0, "eps": float(10.0 ** rng.uniform(-3, -1.3))})
    return out


@claim(
    "thm4.3-remark",
    reference="Thm 4.3 / E.1, Remark, Eq. 13",
    statement="the bound-maximising S* is the largest prefix of the cheapest costs meeting Eq. 13"
    " (empty for c_i = 4^i once ε > G/(20n))",
    template=Template("tight", rel=1e-12, abs=1e-300, z=0.0),
    instances=_remark_cases,
)
def thm43_remark(c=None, G_max: float = 1.0, eps: float = 0.01, *, rng: Any = None):
    r"""The Remark after Theorem E.1: :func:`costsgd.cost_uniform_set` (largest feasible
    prefix) attains the maximum of :math:`\sum_{S}\sqrt{c_i}` over *all* sets :math:`S`
    satisfying Eq. 13 (brute force, n <= 12).

    Numerical: :math:`\sum_{S^*}\sqrt{c_i}`; theoretical: the brute-force maximum.
    """
    c = np.asarray([1.0, 1.0, 100.0] if c is None else c, dtype=np.float64)
    where = describe(None, c, "", G_max=float(G_max), eps=float(eps))
    if c.size > 12:
        return not_applicable("thm4.3-remark", "brute force needs n <= 12", instance=where)
    root = np.sqrt(c)
    best = 0.0
    for k in range(1, c.size + 1):
        for s in itertools.combinations(range(c.size), k):
            if _eq13(root, s, c.size, G_max, eps):
                best = max(best, float(root[list(s)].sum()))
    # cost_uniform_set takes the scalar gradient bound as G= (G_max= after the rename)
    found = float(root[cost_uniform_set(c, G_max=G_max, eps=eps)].sum())
    return result("thm4.3-remark", found, best, instance=where)


def _mixed(n: int, seed: int) -> np.ndarray:
    gen = np.random.default_rng(seed)
    return np.where(gen.random(n) < 0.9, gen.uniform(1.0, 1.1, n), 1.5)


def _hard_cases(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    mixed = _mixed(2500, int(rng.integers(2**31)))
    out = [
        {"c": np.ones(2500), "G_max": 1.0, "eps": 0.02, "label": "uniform costs"},
        {"c": mixed, "G_max": 1.0, "eps": 0.02, "label": "90% in [1, 1.1], 10% at 1.5"},
        {"c": np.ones(100), "G_max": 1.0, "eps": 0.05, "label": "n < G²/ε²"},
    ]
    if not quick:
        gen = np.random.default_rng(int(rng.integers(2**31)))
        c = np.where(gen.random(10_000) < 0.9, gen.uniform(1.0, 2.0, 10_000), 1e4)
        out.append({"c": c, "G_max": 1.0, "eps": 0.01, "label": "10% outliers at 1e4"})
    return out


@claim(
    "thm4.3-hard-instances",
    reference="Thm 4.3 / E.1, Eq. 15, Step 2",
    statement="Δ_i = α√c_i on S*: mean Δ = 20ε, Δ_i <= G/2, E b_i >= Δ_i/2, P_D0(b̄ >= 5ε) >= 0.95",
    template=Template("lower"),
    instances=_hard_cases,
    cost=0.4,
)
def thm43_hard_instances(
    c=None, G_max: float = 1.0, eps: float = 1 / 40, *, label="", rng=None, draws: int = 2000
):
    r"""The hard instances of Appendix E (Step 1-2): Eq. 15 and
    :math:`\mathbb E[b_i] \ge \Delta_i/2` are checked exactly (a violation fails the
    claim); the Hoeffding step :math:`P_{\mathcal D_0}(\bar b \ge 5\epsilon) \ge 0.95`
    by Monte Carlo. Needs :math:`n \ge G^2/\epsilon^2` and a non-empty :math:`S^*`.

    Numerical: the Monte Carlo frequency; theoretical: 0.95.
    """
    c = np.ones(1600) if c is None else np.asarray(c, dtype=np.float64)
    where = describe(None, c, label, G_max=float(G_max), eps=float(eps))
    if c.size < (G_max / eps) ** 2:
        return not_applicable("thm4.3-hard-instances", "n < G²/ε²", instance=where)
    if cost_uniform_set(c, G_max=G_max, eps=eps).size == 0:
        return not_applicable("thm4.3-hard-instances", "S* is empty", instance=where)
    delta, _, _ = hard_deltas(c, G_max=G_max, eps=eps)
    problems = []
    if abs(delta.mean() - 20 * eps) > 1e-9 * 20 * eps:
        problems.append(f"mean Δ = {delta.mean():.6g} != 20ε")
    if delta.max() > G_max / 2 * (1 + 1e-12):
        problems.append(f"max Δ = {delta.max():.6g} > G/2")
    if np.any(clipped_mean(delta, G_max) < delta / 2 * (1 - 1e-12)):
        problems.append("E b_i < Δ_i/2")
    gen = np.random.default_rng(rng)
    b = hard_slopes(delta, G_max=G_max, hypothesis=0, size=draws, rng=gen)
    hit = b.mean(axis=1) >= 5 * eps
    freq, se = float(hit.mean()), float(np.sqrt(max(hit.mean() * (1 - hit.mean()), 1e-4) / draws))
    if problems:
        return result(
            "thm4.3-hard-instances", -np.inf, 0.95, instance=where, reason="; ".join(problems)
        )
    return result("thm4.3-hard-instances", freq, 0.95, stderr=se, instance=where)


@claim(
    "thm4.3-lower-bound",
    reference="Thm 4.3 / E.1",
    statement="any algorithm reaching E error <= ε pays >= G²/(12800ε²)((1/n)Σ_{S*}√c_i)²",
    template=Template("lower"),
    instances=_hard_cases,
    runtime="jax",
    cost=1.2,
)
def thm43_lower_bound(
    c=None,
    G_max: float = 1.0,
    eps: float = 1 / 40,
    *,
    label="",
    rng=None,
    draws: int = 4,
    trials: int = 16,
):
    r"""Theorem 4.3 against Cost-Aware SGD: on hard instances (``draws`` of each of
    :math:`\mathcal D_0`, :math:`\mathcal D_1`), sampling :math:`p^* \propto 1/\sqrt{c_i}`
    with Eq. 3's step for the horizon :math:`T = D^2S(p^*)/\epsilon^2` (rounded up to a
    multiple of 512), the mean cost at which the mean error of :math:`\bar x_t` first
    reaches :math:`\epsilon`.

    Numerical: that cost; theoretical: the bound's value (explicit constant 12800).
    ``reason`` gives the measured cost over Eq. 6's upper bound. Not applicable for
    :math:`n < G^2/\epsilon^2` or an empty :math:`S^*`.
    """
    import jax

    c = np.ones(1600) if c is None else np.asarray(c, dtype=np.float64)
    where = describe(None, c, label, G_max=float(G_max), eps=float(eps))
    if c.size < (G_max / eps) ** 2:
        return not_applicable("thm4.3-lower-bound", "n < G²/ε²", instance=where)
    bound = lower_bound(c, G_max=G_max, eps=eps)
    if bound.support.size == 0:
        return not_applicable("thm4.3-lower-bound", "S* is empty: the bound is 0", instance=where)
    G = np.full(c.size, G_max)
    p = np.asarray(samplers.optimal(G, c), dtype=np.float64)
    D = 2.0
    # Eq. 3's horizon, rounded up to a multiple of 512: instances of one n whose S(p*)
    # differ by a few percent then share one compiled program
    steps = 512 * int(np.ceil(D**2 * theory.second_moment(p, G) / eps**2 / 512))
    checkpoints = log_checkpoints(steps, 60)
    gen = np.random.default_rng(rng)
    errors, costs = [], []
    with jax.enable_x64(True):
        eta = theory_step_size(p, G, D=D, steps=steps)
        for k in range(2 * draws):
            inst = hard_instance(c, G_max=G_max, eps=eps, hypothesis=k % 2, rng=gen)
            res = cost_aware_sgd(
                inst.problem,
                p,
                steps=steps,
                trials=trials,
                step_size=eta,
                checkpoints=checkpoints,
                key=int(gen.integers(2**31)),
            )
            errors.append(res.error_average)
            costs.append(res.cost)
    err = np.concatenate(errors).mean(axis=0)
    cost = np.concatenate(costs).mean(axis=0)
    _, measured = crossing(checkpoints, cost, err, eps)
    upper = theory.optimal_total_cost(G, c, eps=eps, D=D)
    if not np.isfinite(measured):
        return not_applicable(
            "thm4.3-lower-bound", "SGD did not reach ε within Eq. 3's horizon", instance=where
        )
    return result(
        "thm4.3-lower-bound",
        measured,
        bound.value,
        instance=where,
        reason=f"measured / Eq. 6 upper bound = {measured / upper:.3g}",
        provenance=res.provenance,
    )
