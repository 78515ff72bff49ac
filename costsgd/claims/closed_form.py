r"""Claims about closed forms of §4 and Appendix D.1, D.5 (no SGD run needed).

Each function takes an instance (``G``, ``c`` and what else the claim needs) or,
when ``G`` is ``None``, draws one from ``rng`` (:mod:`costsgd.claims.zoo`), and
returns a :class:`~costsgd.claims.base.ClaimResult`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costsgd import samplers, theory
from costsgd.claims import zoo
from costsgd.claims.base import Template, claim, describe, not_applicable, result

__all__ = [
    "eq6_closed_form",
    "eq8_equality",
    "eq8_ratios",
    "sec43_theta",
    "thm41_optimal",
    "thm42_chi2",
    "thmD1_condition",
    "thmD5_corrected",
    "thmD5_paper",
]


def _instance(G: Any, c: Any, rng: Any, *, positive_G: bool = False):
    if G is None:
        gen = np.random.default_rng(rng)
        inst = zoo.instances(gen, True, positive_G=positive_G, per_size=1)
        pick = inst[gen.integers(len(inst))]
        return pick["G"], pick["c"], pick["label"]
    return np.asarray(G, dtype=np.float64), np.asarray(c, dtype=np.float64), ""


def _gc(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    return zoo.instances(rng, quick)


def _J(p: np.ndarray, G: np.ndarray, c: np.ndarray) -> float:
    return theory.cost_product(p, G, c)


@claim(
    "thm4.1",
    reference="Thm 4.1, Eq. 5, 7",
    statement="p* ∝ G/√c minimises J(p) = S(p)C(p): J(q) >= J(p*) for every q in the simplex",
    template=Template("lower", rel=1e-9, z=0.0),
    instances=_gc,
    cost=0.45,
)
def thm41_optimal(G=None, c=None, *, label: str = "", rng: Any = None, trials: int = 64):
    r"""Theorem 4.1: :math:`J(q)/J(p^*) \ge 1` for random :math:`q` (Dirichlet draws of
    three concentrations and multiplicative perturbations of :math:`p^*`).

    Assumes :math:`c_i > 0` wherever :math:`G_i > 0` (otherwise :math:`p^*` is not
    attained). Numerical: the smallest :math:`J(q)/J(p^*)` found; theoretical: 1.
    """
    G, c, drawn = _instance(G, c, rng)
    where = describe(G, c, label or drawn)
    if np.any((c == 0) & (G > 0)):
        return not_applicable(
            "thm4.1", "a free component with G_i > 0: p* is not attained", instance=where
        )
    gen = np.random.default_rng(rng)
    p_star = np.asarray(samplers.optimal(G, c), dtype=np.float64)
    j_star = _J(p_star, G, c)
    n = G.size
    best = np.inf
    for k in range(trials):
        if k % 2:
            q = gen.dirichlet(np.full(n, (0.1, 1.0, 10.0)[k % 3]))
        else:
            q = p_star * np.exp(gen.normal(0.0, 10.0 ** -(k % 5), n))
        q = np.maximum(q, 1e-300)
        best = min(best, _J(q / q.sum(), G, c) / j_star)
    return result("thm4.1", best, 1.0, instance=where)


@claim(
    "eq6",
    reference="Thm 4.1, Eq. 6",
    statement="K(ε, p*) = D²/ε² ((1/n)Σ G_i√c_i)² (convex) and 4/(με) (...)² (strongly convex)",
    template=Template("tight", rel=1e-9, z=0.0),
    instances=_gc,
)
def eq6_closed_form(G=None, c=None, *, label: str = "", rng: Any = None, eps: float = 0.01):
    r"""Eq. 6: the cost of :math:`p^*` from its definition, :math:`T(\epsilon,p^*)C(p^*)`
    (Eq. 3 with D = 1, Eq. 4 with :math:`\mu` = 1), against the closed form.

    Numerical: the worse ratio of the two; theoretical: 1.
    """
    G, c, drawn = _instance(G, c, rng)
    where = describe(G, c, label or drawn)
    if np.any((c == 0) & (G > 0)):
        return not_applicable(
            "eq6", "a free component with G_i > 0: p* is not attained", instance=where
        )
    p = np.asarray(samplers.optimal(G, c), dtype=np.float64)
    closed = (np.sum(G * np.sqrt(c)) / G.size) ** 2
    convex = theory.total_cost(p, G, c, eps=eps, D=1.0) / (closed / eps**2)
    strong = theory.total_cost(p, G, c, eps=eps, mu=1.0) / (4.0 * closed / eps)
    worse = max((convex, strong), key=lambda r: abs(r - 1.0))
    return result("eq6", worse, 1.0, instance=where)


@claim(
    "eq8",
    reference="§4.3, Eq. 8",
    statement="K*/K_unif = (ΣG√c)²/(ΣG²Σc) <= 1 and K*/K_var = (ΣG√c)²/(ΣGΣGc) <= 1",
    template=Template("upper", rel=1e-12, z=0.0),
    instances=_gc,
)
def eq8_ratios(G=None, c=None, *, label: str = "", rng: Any = None):
    r"""Eq. 8: both ratios are at most 1, and their closed forms equal
    :math:`J(p^*)/J(p)` computed from the definitions (else the claim fails).

    Numerical: the larger ratio; theoretical: 1.
    """
    G, c, drawn = _instance(G, c, rng)
    where = describe(G, c, label or drawn)
    if np.any((c == 0) & (G > 0)) or not np.any(c[G > 0] > 0):
        return not_applicable("eq8", "needs c_i > 0 where G_i > 0", instance=where)
    p_star = np.asarray(samplers.optimal(G, c), dtype=np.float64)
    j_star = _J(p_star, G, c)
    by_definition = (
        j_star / _J(np.asarray(samplers.uniform(G, c)), G, c),
        j_star / _J(np.asarray(samplers.variance(G, c)), G, c),
    )
    r = theory.cost_ratios(G, c)
    closed = (r.optimal_vs_uniform, r.optimal_vs_variance)
    for d, f in zip(by_definition, closed, strict=True):
        if abs(d - f) > 1e-9 * abs(d):
            return result("eq8", np.inf, 1.0, instance=where, reason=f"closed form {f!r} != {d!r}")
    return result("eq8", max(closed), 1.0, instance=where)


def _eq8_cases(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    out = []
    for inst in zoo.instances(rng, quick, per_size=2 if quick else 6):
        out.append({"G": inst["G"], "case": "G_prop_sqrt_c", "label": inst["label"]})
        out.append({"G": inst["G"], "case": "equal_costs", "label": inst["label"]})
    return out


@claim(
    "eq8-equality",
    reference="§4.3, Eq. 8",
    statement="equality in Eq. 8: G ∝ √c gives K* = K_unif; equal costs give K* = K_var",
    template=Template("tight", rel=1e-12, z=0.0),
    instances=_eq8_cases,
)
def eq8_equality(G=None, case: str = "equal_costs", *, label: str = "", rng: Any = None):
    r"""The Cauchy–Schwarz equality cases of Eq. 8, built from ``G``:
    ``case="G_prop_sqrt_c"`` sets :math:`c_i = (3G_i)^2` (then :math:`K^*/K_{unif} = 1`),
    ``case="equal_costs"`` sets :math:`c_i = 7` (then :math:`K^*/K_{var} = 1`).
    """
    if G is None:
        G, _, drawn = _instance(None, None, rng)
    else:
        G, drawn = np.asarray(G, dtype=np.float64), ""
    if case == "G_prop_sqrt_c":
        c = (3.0 * G) ** 2
        if np.any((c == 0) & (G > 0)):  # (3G)² underflows
            return not_applicable("eq8-equality", "c = (3G)² underflows", instance=describe(G))
        value = theory.cost_ratios(G, c).optimal_vs_uniform
    elif case == "equal_costs":
        c = np.full(G.size, 7.0)
        value = theory.cost_ratios(G, c).optimal_vs_variance
    else:
        raise ValueError(f"case must be 'G_prop_sqrt_c' or 'equal_costs', got {case!r}")
    return result("eq8-equality", value, 1.0, instance=describe(G, c, label or drawn, case=case))


def _sec43_cases(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    return [{"n_max": 2000 if quick else 10_000}]


@claim(
    "sec4.3-theta",
    reference="§4.3",
    statement="G_i = 2^{-i/4}, c_i = 2^i: K*/K_unif = Θ(2^{-n/2}) and K*/K_var = Θ(2^{-n/4})",
    template=Template("tight", abs=1e-3, z=0.0),
    instances=_sec43_cases,
)
def sec43_theta(n_max: int = 2000, *, rng: Any = None):
    r"""§4.3's exponential example, in log-space for every n in 20, 40, ..., ``n_max``.

    The Θ claims hold iff :math:`\log_2(\text{ratio}) + n/2` (resp. :math:`+ n/4`)
    stays bounded: numerical is the fitted slope of :math:`\log_2` ratio against
    n (the worse of the two, as its deviation), theoretical its Θ exponent; the claim
    also fails if the offsets :math:`\log_2(\text{ratio}) + n/2` spread by more
    than 1 over the range (unbounded constant).
    """
    ns = np.arange(20, int(n_max) + 1, 20)
    logs = [theory.log_cost_ratios(*theory.exponential_example(int(n))) for n in ns]
    worst = None
    for attr, exponent in (("optimal_vs_uniform", -0.5), ("optimal_vs_variance", -0.25)):
        log2 = np.array([getattr(r, attr) for r in logs]) / np.log(2.0)
        slope = float(np.polyfit(ns, log2, 1)[0])
        spread = float(np.ptp(log2 - exponent * ns))
        if spread > 1.0:
            return result(
                "sec4.3-theta", slope, exponent, reason=f"{attr}: offset spreads {spread:.3g}"
            )
        if worst is None or abs(slope - exponent) > abs(worst[0] - worst[1]):
            worst = (slope, exponent, attr)
    where = f"n = 20..{int(n_max)}"
    return result("sec4.3-theta", worst[0], worst[1], instance=where, reason=worst[2])


@claim(
    "thmD.1",
    reference="Thm D.1, Eq. 10, 11",
    statement="K_var <= K_unif iff E[G]Cov(G,c) <= E[c]Var(G)",
    template=Template("tight", rel=1e-9, abs=1e-12, z=0.0),
    instances=_gc,
)
def thmD1_condition(G=None, c=None, *, label: str = "", rng: Any = None):
    r"""Theorem D.1, through the identity behind it:
    :math:`K_{var}/K_{unif} - 1 = (\mathbb E[G]\mathrm{Cov}(G,c) - \mathbb E[c]\mathrm{Var}(G))
    / (\mathbb E[G^2]\mathbb E[c])`, whose sign is the "iff".

    Numerical: :math:`J(p_{var})/J(p_{unif}) - 1` from the definitions; theoretical:
    the right-hand side. A sign disagreement (the "iff" broken) also fails.
    """
    G, c, drawn = _instance(G, c, rng)
    where = describe(G, c, label or drawn)
    if not np.any(c > 0):
        return not_applicable("thmD.1", "every cost is 0: both costs vanish", instance=where)
    ratio = _J(np.asarray(samplers.variance(G, c)), G, c) / _J(
        np.asarray(samplers.uniform(G, c)), G, c
    )
    cond = theory.variance_beats_uniform(G, c)
    rhs = (cond.lhs - cond.rhs) / (np.mean(G**2) * np.mean(c))
    if cond.holds != (ratio <= 1.0) and abs(rhs) > 1e-12:
        return result("thmD.1", ratio - 1.0, rhs, instance=where, reason="the iff is broken")
    return result("thmD.1", ratio - 1.0, rhs, instance=where)


def _proxies(G, c, gen):
    n = G.size
    p_star = np.asarray(samplers.optimal(G, c), dtype=np.float64)
    yield "uniform", np.asarray(samplers.uniform(G, c), dtype=np.float64)
    yield "variance", np.asarray(samplers.variance(G, c), dtype=np.float64)
    yield "smoothed p*", np.asarray(samplers.smooth(p_star, 0.1), dtype=np.float64)
    for conc in (0.1, 1.0):
        q = np.maximum(gen.dirichlet(np.full(n, conc)), 1e-300)
        yield f"dirichlet({conc})", q / q.sum()


@claim(
    "thm4.2",
    reference="Thm 4.2 / D.4",
    statement="J(p')/J(p*) = 1 + χ²(p̃*‖p̃'), p̃_i = p_i c_i / C(p)",
    template=Template("tight", rel=1e-9, z=0.0),
    instances=_gc,
    cost=0.1,
)
def thm42_chi2(G=None, c=None, *, label: str = "", rng: Any = None):
    r"""Theorem 4.2 for proxies :math:`p'` (uniform, variance, smoothed :math:`p^*`,
    Dirichlet draws) with full support where :math:`G_i > 0`.

    Numerical: :math:`J(p')/J(p^*)` from the definitions; theoretical:
    :math:`1 + D_{\chi^2}(\tilde p^*\|\tilde p')`; reported for the proxy with the
    largest relative deviation.
    """
    G, c, drawn = _instance(G, c, rng)
    where = describe(G, c, label or drawn)
    if not np.all(c > 0):
        return not_applicable("thm4.2", "needs c_i > 0 (p̃ and p* defined)", instance=where)
    gen = np.random.default_rng(rng)
    p_star = np.asarray(samplers.optimal(G, c), dtype=np.float64)
    j_star = _J(p_star, G, c)
    tilde_star = theory.cost_biased(p_star, c)
    worst = None
    for name, p in _proxies(G, c, gen):
        if np.any((p == 0) & (G > 0)):
            continue
        num = _J(p, G, c) / j_star
        th = 1.0 + theory.chi2_divergence(tilde_star, theory.cost_biased(p, c))
        dev = abs(num - th) / th
        if worst is None or dev > worst[0]:
            worst = (dev, num, th, name)
    return result("thm4.2", worst[1], worst[2], instance=where, reason=f"proxy {worst[3]}")


def proxy_gap_monte_carlo(G: Any, c: Any, sigma2: float, *, draws: int, rng: Any = None):
    r"""Monte Carlo :math:`\mathbb E[J(p')]/J(p^*) - 1` under Theorem D.5's noise model.

    Each draw's excess is computed without cancellation: with
    :math:`\delta_i = \varepsilon_i/G_i`, :math:`w_i = G_i\sqrt{c_i}`, :math:`W = \sum w_i`,
    :math:`a = -\sum w_i\delta_i/(1+\delta_i)/W`, :math:`b = \sum w_i\delta_i/W`,
    :math:`J(p')/J(p^*) - 1 = \sum_i w_i\delta_i^2/(1+\delta_i)/W + ab`.

    Returns:
      ``(mean excess, standard error, number of draws with some G'_i <= 0)``;
      those draws (no distribution) are left out.

    Examples:
      >>> m, se, bad = proxy_gap_monte_carlo([1.0, 1.0], [1.0, 1.0], 0.0, draws=10)
      >>> m, se, bad
      (0.0, 0.0, 0)
    """
    G, c = np.asarray(G, dtype=np.float64), np.asarray(c, dtype=np.float64)
    gen = np.random.default_rng(rng)
    w = G * np.sqrt(c)
    w = w / w.max()
    W = w.sum()
    scale = np.sqrt(sigma2) / G
    excess, bad = [], 0
    for start in range(0, draws, 512):
        delta = scale * gen.standard_normal((min(512, draws - start), G.size))
        ok = np.all(delta > -1.0, axis=1)
        bad += int(np.sum(~ok))
        delta = delta[ok]
        a = -(delta / (1.0 + delta)) @ w / W
        b = delta @ w / W
        excess.append((delta**2 / (1.0 + delta)) @ w / W + a * b)
    e = np.concatenate(excess)
    return float(e.mean()), float(e.std(ddof=1) / np.sqrt(e.size)) if e.size > 1 else 0.0, bad


def _d5_cases(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    heavy = np.random.default_rng(13)
    fixed = [
        {"G": np.ones(2), "c": np.array([1.0, 1e8]), "sigma": 0.05, "label": "one cost dominates"},
        {
            "G": heavy.uniform(1.0, 3.0, 400),
            "c": heavy.lognormal(0.0, 4.0, 400),
            "sigma": 0.05,
            "label": "G ~ U[1, 3], c ~ lognormal(0, 4) (seed 13)",
        },
    ]
    out = []
    for n in zoo.SIZES[1:]:
        for _ in range(1 if quick else 4):
            G = rng.uniform(1.0, 3.0, n) if rng.random() < 0.5 else rng.lognormal(0.0, 1.0, n)
            kind = ("log_uniform", "lognormal", "ties", "dominant")[rng.integers(4)]
            label = f"c {kind}"
            out.append(
                {"G": G, "c": zoo.costs(rng, n, kind), "sigma": 0.1 * G.min(), "label": label}
            )
    return fixed + out


def _d5(name: str, G, c, sigma, label, rng, draws, predict):
    G, c, drawn = _instance(G, c, rng, positive_G=True)
    where = describe(G, c, label or drawn, sigma=float(sigma))
    if not (np.all(G > 0) and np.all(c > 0)):
        return not_applicable(name, "needs G_i > 0 and c_i > 0", instance=where)
    if sigma <= 0 or sigma > 0.1 * G.min():
        return not_applicable(name, "small noise only: needs 0 < σ <= 0.1 min G", instance=where)
    mean, se, bad = proxy_gap_monte_carlo(G, c, sigma**2, draws=draws, rng=rng)
    if bad:
        return not_applicable(name, f"{bad} draws had some G'_i <= 0", instance=where)
    return result(name, mean, predict(G, c, sigma**2) - 1.0, stderr=se, instance=where)


@claim(
    "thmD.5-paper",
    reference="Thm D.5",
    statement="E[J(p')]/J(p*) ≈ 1 + σ² Σ(√c/G)/Σ(G√c) for G' = G + noise of variance σ²",
    template=Template("tight", rel=0.05, abs=1e-15),
    instances=_d5_cases,
    expected="fails",
    cost=0.3,
)
def thmD5_paper(G=None, c=None, sigma: float = 0.05, *, label="", rng=None, draws: int = 2000):
    r"""Theorem D.5 as stated, against Monte Carlo, in its small-noise regime
    (:math:`\sigma \le 0.1\min_i G_i`; the terms beyond second order are of relative
    size about :math:`3\sigma^2/\min_i G_i^2 \le 3\%`, inside the 5% tolerance).

    Known to fail where one cost, or a few, dominate :math:`\sum_i c_i`: the proof
    drops the covariance of its two sums (see
    :func:`costsgd.theory.second_order_proxy_gap`). Numerical: the Monte Carlo
    excess :math:`\mathbb E[J(p')]/J(p^*) - 1`; theoretical: the predicted excess.
    """

    def paper(G, c, s2):
        return theory.predicted_proxy_gap(G, c, sigma2=s2)

    return _d5("thmD.5-paper", G, c, sigma, label, rng, draws, paper)


@claim(
    "thmD.5-corrected",
    reference="Thm D.5 (with the covariance term)",
    statement="E[J(p')]/J(p*) ≈ 1 + σ²[Σ(√c/G)/W - Σc/W²], W = ΣG√c",
    template=Template("tight", rel=0.05, abs=1e-15),
    instances=_d5_cases,
    cost=0.3,
)
def thmD5_corrected(G=None, c=None, sigma: float = 0.05, *, label="", rng=None, draws: int = 2000):
    r"""The second-order expansion with the covariance term kept
    (:func:`costsgd.theory.second_order_proxy_gap`), against Monte Carlo, for
    :math:`\sigma \le 0.1\min_i G_i` (higher-order terms :math:`\lesssim 3\%`, as for
    :func:`thmD5_paper`). Numerical: the Monte Carlo excess; theoretical: the
    predicted excess.
    """

    def corrected(G, c, s2):
        return theory.second_order_proxy_gap(G, c, sigma2=s2)

    return _d5("thmD.5-corrected", G, c, sigma, label, rng, draws, corrected)
