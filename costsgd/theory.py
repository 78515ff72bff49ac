r"""The quantities of §4 of the paper, in float64.

Notation (Eq. 1–4): for a sampling distribution :math:`p` over ``n``
components with gradient-norm bounds :math:`G_i` and costs :math:`c_i`,

.. math::
   S(p) = \frac{1}{n^2}\sum_i \frac{G_i^2}{p_i},\qquad
   C(p) = \sum_i p_i c_i,\qquad J(p) = S(p)\,C(p).

The expected total cost to reach error :math:`\epsilon` is
:math:`K(\epsilon,p) = \frac{D^2}{\epsilon^2}J(p)` for convex objectives
(Eq. 3) and :math:`\frac{4}{\mu\epsilon}J(p)` for :math:`\mu`-strongly convex
ones (Eq. 4), so every comparison between strategies is a comparison of
:math:`J`.

Inputs may be numpy, JAX or torch arrays; they are validated and copied to
host float64. Sums whose terms span many orders of magnitude (the §4.3
example) are done in log-space; :func:`log_cost_ratios` takes logarithms
directly, for inputs beyond the float64 range.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from costsgd import samplers
from costsgd._numerics import log_of, logsumexp, safe_ratio
from costsgd._validate import (
    as_array,
    check_costs,
    check_gradient_norms,
    check_positive,
    check_positive_int,
    check_probabilities,
    check_real,
    check_same_shape,
    host,
)

__all__ = [
    "CostRatios",
    "VarianceVsUniform",
    "chi2_divergence",
    "chi2_gap",
    "cost_biased",
    "cost_product",
    "cost_ratios",
    "expected_cost",
    "exponential_example",
    "iterations",
    "log_cost_ratios",
    "optimal_cost_product",
    "optimal_total_cost",
    "predicted_proxy_gap",
    "second_moment",
    "second_order_proxy_gap",
    "total_cost",
    "variance_beats_uniform",
]


def _f64(x: Any) -> np.ndarray:
    return host(x).astype(np.float64)


def _pG(p: Any, G: Any):
    p = check_probabilities(p)
    G = check_gradient_norms(G)
    check_same_shape(p=p, G=G)
    return _f64(p), _f64(G)


def _pc(p: Any, c: Any):
    p = check_probabilities(p)
    c = check_costs(c)
    check_same_shape(p=p, c=c)
    return _f64(p), _f64(c)


def _Gc(G: Any, c: Any):
    G = check_gradient_norms(G)
    c = check_costs(c)
    check_same_shape(G=G, c=c)
    return _f64(G), _f64(c)


def second_moment(p: Any, G: Any) -> float:
    r"""The second moment bound :math:`S(p) = \frac{1}{n^2}\sum_i G_i^2/p_i` (§4.1).

    A component with :math:`p_i = 0` contributes 0 if :math:`G_i = 0` and makes
    :math:`S(p) = +\infty` otherwise (the estimator is then biased).

    Examples:
      >>> second_moment([0.5, 0.5], [1.0, 1.0])
      1.0
    """
    p, G = _pG(p, G)
    with np.errstate(over="ignore"):  # beyond float64: +inf
        return float(np.exp(_log_second_moment(p, G)))


def _log_second_moment(p: np.ndarray, G: np.ndarray) -> float:
    """log S(p) in log-space (finite whenever S is; +inf when p misses a component with G > 0)."""
    if np.any((p == 0) & (G > 0)):
        return float("inf")
    keep = G > 0
    return logsumexp(2 * log_of(G[keep]) - log_of(p[keep])) - 2 * np.log(p.size)


def expected_cost(p: Any, c: Any) -> float:
    r"""Expected cost per iteration :math:`C(p) = \sum_i p_i c_i` (Eq. 1).

    Examples:
      >>> expected_cost([0.25, 0.75], [4.0, 8.0])
      7.0
    """
    p, c = _pc(p, c)
    return float(np.dot(p, c))


def cost_product(p: Any, G: Any, c: Any) -> float:
    r"""The cost objective :math:`J(p) = S(p)\,C(p)` (§4.1, minimised by Theorem 4.1).

    Computed in log-space, so it is finite whenever :math:`J` is in float64
    (:math:`S = 10^{400}` with :math:`C = 10^{-200}`). ``+inf`` when ``p``
    misses a component with :math:`G_i > 0` (:math:`S(p) = +\infty`), even if
    :math:`C(p) = 0`.

    Examples:
      >>> cost_product([0.5, 0.5], [1.0, 1.0], [1.0, 3.0])
      2.0
    """
    p, G = _pG(p, G)
    _, c = _pc(p, c)
    log_s, log_c = _log_second_moment(p, G), logsumexp(log_of(p) + log_of(c))
    if log_s == np.inf:  # p misses a component with G_i > 0: J is +inf whatever C(p) is
        return float("inf")
    with np.errstate(over="ignore"):  # beyond float64: +inf
        return float(np.exp(log_s + log_c))


def _log_sum_G_sqrt_c(G: np.ndarray, c: np.ndarray) -> float:
    return logsumexp(log_of(G) + 0.5 * log_of(c))


def optimal_cost_product(G: Any, c: Any) -> float:
    r"""The minimum :math:`J(p^*) = \big(\frac1n\sum_i G_i\sqrt{c_i}\big)^2` (Theorem 4.1).

    With zero costs this is the infimum of :math:`J`, not attained (see
    :func:`costsgd.optimal`).

    Examples:
      >>> optimal_cost_product([1.0, 1.0], [1.0, 9.0])
      4.0
    """
    G, c = _Gc(G, c)
    with np.errstate(over="ignore"):  # beyond float64: +inf
        return float(np.exp(2.0 * (_log_sum_G_sqrt_c(G, c) - np.log(G.size))))


def _horizon(eps: float, D: float | None, mu: float | None) -> float:
    """The factor K/J: D^2/eps^2 (Eq. 3) or 4/(mu eps) (Eq. 4)."""
    if (D is None) == (mu is None):
        raise ValueError("give exactly one of D (convex, Eq. 3) or mu (strongly convex, Eq. 4)")
    eps = check_positive(eps, "eps")
    with np.errstate(over="ignore"):  # numpy floats: overflow gives inf, checked below
        if D is not None:
            factor = (np.float64(check_positive(D, "D")) / eps) ** 2
        else:
            factor = 4.0 / (np.float64(check_positive(mu, "mu")) * eps)
    factor = float(factor)
    if not np.isfinite(factor):
        raise ValueError(f"the horizon overflows float64 (eps = {eps!r} is too small)")
    return factor


def iterations(p: Any, G: Any, *, eps: float, D: float | None = None, mu: float | None = None):
    r"""Iterations :math:`T(\epsilon,p)`: :math:`D^2S(p)/\epsilon^2` (convex) or
    :math:`4S(p)/(\mu\epsilon)` (strongly convex), §4.1.

    Examples:
      >>> round(iterations([0.5, 0.5], [1.0, 1.0], eps=0.1, D=1.0), 9)
      100.0
    """
    return _horizon(eps, D, mu) * second_moment(p, G)


def total_cost(
    p: Any, G: Any, c: Any, *, eps: float, D: float | None = None, mu: float | None = None
) -> float:
    r"""Expected total cost :math:`K(\epsilon,p) = T(\epsilon,p)\,C(p)`: Eq. 3 (give ``D``)
    or Eq. 4 (give ``mu``).

    Examples:
      >>> total_cost([0.5, 0.5], [1.0, 1.0], [1.0, 3.0], eps=0.5, D=1.0)
      8.0
    """
    return _horizon(eps, D, mu) * cost_product(p, G, c)


def optimal_total_cost(
    G: Any, c: Any, *, eps: float, D: float | None = None, mu: float | None = None
) -> float:
    r"""The closed forms of Eq. 6 at :math:`p^*`:
    :math:`\frac{D^2}{\epsilon^2}(\frac1n\sum G_i\sqrt{c_i})^2` or
    :math:`\frac{4}{\mu\epsilon}(\frac1n\sum G_i\sqrt{c_i})^2`.

    Examples:
      >>> optimal_total_cost([1.0, 1.0], [1.0, 9.0], eps=0.5, mu=2.0)
      16.0
    """
    return _horizon(eps, D, mu) * optimal_cost_product(G, c)


class CostRatios(NamedTuple):
    """Ratios of expected total cost between strategies (independent of eps, D, mu)."""

    optimal_vs_uniform: float  #: K(p*)/K(unif), Eq. 8 (<= 1)
    optimal_vs_variance: float  #: K(p*)/K(var), Eq. 8 (<= 1)
    variance_vs_uniform: float  #: K(var)/K(unif), Eq. 10 (either side of 1)


def log_cost_ratios(log_G: Any, log_c: Any) -> CostRatios:
    r"""Natural logs of the Eq. 8 and Eq. 10 ratios from :math:`\log G_i, \log c_i`.

    For instances whose :math:`G_i` or :math:`c_i` overflow float64 (the §4.3
    example with ``n`` in the thousands). ``-inf`` entries stand for zeros.

    .. math::
       \log\frac{K^*}{K_{unif}} = 2\log\sum G_i\sqrt{c_i} - \log\sum G_i^2 - \log\sum c_i
    """
    lg = host(as_array(log_G, "log_G")).astype(np.float64)
    lc = host(as_array(log_c, "log_c")).astype(np.float64)
    check_same_shape(log_G=lg, log_c=lc)
    for name, x in (("log_G", lg), ("log_c", lc)):
        if np.any(np.isnan(x) | (x == np.inf)):
            raise ValueError(f"{name} must be finite or -inf (a zero)")
    if np.all(lg == -np.inf):
        raise ValueError("log_G is -inf everywhere: G is zero everywhere")
    s_gsc = logsumexp(lg + 0.5 * lc)
    s_g2 = logsumexp(2 * lg)
    s_c = logsumexp(lc)
    s_g = logsumexp(lg)
    s_gc = logsumexp(lg + lc)
    return CostRatios(
        optimal_vs_uniform=2 * s_gsc - s_g2 - s_c,
        optimal_vs_variance=2 * s_gsc - s_g - s_gc,
        variance_vs_uniform=s_g + s_gc - s_g2 - s_c,
    )


def cost_ratios(G: Any, c: Any) -> CostRatios:
    r"""The cost ratios of Eq. 8 and Eq. 10.

    .. math::
       \frac{K^*}{K_{unif}} = \frac{(\sum G_i\sqrt{c_i})^2}{(\sum G_i^2)(\sum c_i)},\quad
       \frac{K^*}{K_{var}} = \frac{(\sum G_i\sqrt{c_i})^2}{(\sum G_i)(\sum G_ic_i)},\quad
       \frac{K_{var}}{K_{unif}} = \frac{(\sum G_i)(\sum G_ic_i)}{(\sum G_i^2)(\sum c_i)}

    Computed in log-space. The first two are at most 1 (Cauchy–Schwarz), with
    equality when :math:`G \propto \sqrt c` (first) or when costs are equal on
    the support of :math:`G` (second). A ratio is ``nan`` when its denominator is
    0: every cost 0, or (``optimal_vs_variance``) every component with
    :math:`G_i > 0` free.

    Examples:
      >>> r = cost_ratios([1.0, 1.0], [1.0, 1.0])
      >>> (r.optimal_vs_uniform, r.optimal_vs_variance, r.variance_vs_uniform)
      (1.0, 1.0, 1.0)
    """
    G, c = _Gc(G, c)
    if not np.any(c > 0):
        return CostRatios(np.nan, np.nan, np.nan)
    logs = log_cost_ratios(log_of(G), log_of(c))
    return CostRatios(*(float(np.exp(v)) for v in logs))


class VarianceVsUniform(NamedTuple):
    """Theorem D.1: variance sampling costs no more than uniform iff ``lhs <= rhs``.

    The true sides are ``lhs * exp(log_scale)`` and ``rhs * exp(log_scale)``;
    ``log_scale`` is 0 whenever the larger side is a normal float64, and otherwise
    a power of two that brings the larger side to magnitude at most 1.
    """

    holds: bool
    lhs: float  #: E[G] Cov(G, c), divided by exp(log_scale)
    rhs: float  #: E[c] Var(G), divided by exp(log_scale)
    log_scale: float = 0.0  #: natural log of the factor both sides are divided by


def variance_beats_uniform(G: Any, c: Any) -> VarianceVsUniform:
    r"""Theorem D.1's condition (Eq. 11): :math:`K_{var} \le K_{unif}` iff
    :math:`\mathbb E[G]\,\mathrm{Cov}(G,c) \le \mathbb E[c]\,\mathrm{Var}(G)`,
    with moments over a uniformly drawn index.

    Everything is computed on :math:`G/\max G` and :math:`c/\max c` (the condition
    is invariant to scaling either), so ``holds`` is right at any magnitude. When
    a side overflows float64 (:math:`G \sim 10^{10}`, :math:`c \sim 10^{299}`),
    both are returned divided by a common power of two, ``exp(log_scale)``.

    Examples:
      >>> variance_beats_uniform([1.0, 2.0], [5.0, 1.0]).holds  # negatively correlated
      True
      >>> v = variance_beats_uniform([1e10, 2e10], [1e299, 3e299])
      >>> round(float(np.log10(v.lhs) + v.log_scale / np.log(10)), 6)  # lhs = 7.5e318
      318.875061
    """
    G, c = _Gc(G, c)
    sg, sc = G.max(), (c.max() if c.max() > 0 else 1.0)
    g, k = G / sg, c / sc
    mean_g, mean_k = g.mean(), k.mean()
    lhs_s = mean_g * np.mean((g - mean_g) * (k - mean_k))
    rhs_s = mean_k * np.mean((g - mean_g) ** 2)
    # The true sides are x * sg^2 * sc; sg^2 = 2^(2 eg) mg^2 and sc = 2^ec mc exactly.
    (mg, eg), (mc, ec) = np.frexp(sg), np.frexp(sc)
    exponent = 2 * int(eg) + int(ec)
    lhs_m, rhs_m = lhs_s * mg * mg * mc, rhs_s * mg * mg * mc  # |.| <= 1: no overflow
    top = max(abs(lhs_m), rhs_m)
    # Unscaled unless the larger side would leave float64's normal range: then both
    # are returned as lhs_m, rhs_m (divided by exp(log_scale) = 2^exponent).
    in_range = top == 0 or -1021 < exponent + int(np.frexp(top)[1]) <= 1024
    shift = 0 if in_range else exponent
    lhs, rhs = float(np.ldexp(lhs_m, exponent - shift)), float(np.ldexp(rhs_m, exponent - shift))
    return VarianceVsUniform(bool(lhs_s <= rhs_s), lhs, rhs, float(shift * np.log(2.0)))


def cost_biased(p: Any, c: Any) -> np.ndarray:
    r"""The cost-biased distribution :math:`\tilde p_i = p_i c_i / C(p)` (Theorem 4.2).

    Raises ``ValueError`` when :math:`C(p) = 0` (``p`` only draws free components).

    Examples:
      >>> cost_biased([0.5, 0.5], [1.0, 3.0])
      array([0.25, 0.75])
    """
    p, c = _pc(p, c)
    mass = p * c
    total = mass.sum()
    if total <= 0:
        raise ValueError("C(p) = 0: p puts all its mass on zero-cost components")
    return mass / total


def chi2_divergence(P: Any, Q: Any) -> float:
    r"""Pearson :math:`\chi^2` divergence :math:`D_{\chi^2}(P\|Q) = \sum_i P_i^2/Q_i - 1`.

    ``+inf`` when :math:`Q_i = 0 < P_i` for some ``i``.

    Examples:
      >>> chi2_divergence([0.5, 0.5], [0.25, 0.75])
      0.3333333333333333
    """
    P = _f64(check_probabilities(P, "P"))
    Q = _f64(check_probabilities(Q, "Q"))
    check_same_shape(P=P, Q=Q)
    return float(np.sum(safe_ratio(P**2, Q)) - 1.0)


def chi2_gap(p: Any, G: Any, c: Any) -> float:
    r"""Sub-optimality of a proxy distribution, by Theorem 4.2.

    .. math:: \frac{J(p')}{J(p^*)} - 1 = D_{\chi^2}(\tilde p^*\,\|\,\tilde p')

    where :math:`\tilde p` is the cost-biased distribution (:func:`cost_biased`).
    ``p`` is the proxy :math:`p'`; ``G`` and ``c`` define :math:`p^*`. The
    result is ``+inf`` when ``p`` misses a component that :math:`p^*` draws.

    Examples:
      >>> import costsgd as cs
      >>> G, c = [1.0, 2.0, 3.0], [1.0, 4.0, 9.0]
      >>> chi2_gap(cs.optimal(G, c), G, c)
      0.0
    """
    p, c_ = _pc(p, c)
    p_star = _f64(samplers.optimal(G, c))
    check_same_shape(p=p, G=_f64(check_gradient_norms(G)))
    if np.dot(p, c_) <= 0:
        return float("inf")
    # D(P||Q) = sum P^2/Q - 1 with P, Q the cost-biased p*, p', in log-space:
    # entries that underflow separately (1e-300^2 / 1e-600) keep their ratio.
    log_P = log_of(p_star) + log_of(c_)
    log_P -= logsumexp(log_P)
    log_Q = log_of(p) + log_of(c_)
    log_Q -= logsumexp(log_Q)
    drawn = log_P > -np.inf
    if np.any(log_Q[drawn] == -np.inf):
        return float("inf")
    with np.errstate(over="ignore"):  # a gap beyond float64 is +inf
        return float(max(np.exp(logsumexp(2 * log_P[drawn] - log_Q[drawn])) - 1.0, 0.0))


def predicted_proxy_gap(
    G: Any, c: Any, *, sigma2: float | None = None, rho: float | None = None
) -> float:
    r"""Theorem D.5's approximation of :math:`\mathbb E[J(p')]/J(p^*)` for a noisy proxy.

    For :math:`G'_i = G_i + \varepsilon_i` with independent zero-mean noise of
    variance :math:`\sigma_\varepsilon^2` and :math:`p'_i \propto G'_i/\sqrt{c_i}`:

    .. math::
       \frac{\mathbb E[J(p')]}{J(p^*)} \approx 1 + \sigma_\varepsilon^2
       \frac{\sum_i \sqrt{c_i}/G_i}{\sum_i G_i\sqrt{c_i}},\qquad
       \sigma_\varepsilon^2 = \sigma_G^2\,\frac{1-\rho^2}{\rho^2}.

    Give either ``sigma2`` (:math:`\sigma_\varepsilon^2`) or ``rho`` (the
    Pearson correlation between :math:`G` and :math:`G'`; then
    :math:`\sigma_G^2` is the population variance of ``G``). A second-order
    expansion: accurate when the noise is small next to every :math:`G_i`.

    Examples:
      >>> predicted_proxy_gap([1.0, 1.0], [1.0, 1.0], sigma2=0.01)
      1.01
    """
    G, c = _proxy_inputs(G, c, "Theorem D.5 expands 1/G'_i around G_i")
    log_noise, blamed = _log_relative_noise(G, sigma2, rho)
    # sum(sqrt(c)/G) / sum(G sqrt(c)) is homogeneous of degree -2 in G (the noise term
    # is sigma2 / max(G)^2): computed with g = G / max G, in log-space (1/g overflows
    # for g < 1e-308).
    log_g, log_c = np.log(G / G.max()), 0.5 * np.log(c)
    log_bracket = logsumexp(log_c - log_g) - logsumexp(log_g + log_c)
    return _one_plus_exp(log_noise + log_bracket, blamed)


def second_order_proxy_gap(
    G: Any, c: Any, *, sigma2: float | None = None, rho: float | None = None
) -> float:
    r"""The second-order expansion of :math:`\mathbb E[J(p')]/J(p^*)` for a noisy proxy,
    keeping the covariance term that Theorem D.5 drops.

    Same model as :func:`predicted_proxy_gap` (Theorem D.5):
    :math:`G'_i = G_i + \varepsilon_i`, independent zero-mean noise of variance
    :math:`\sigma^2`, :math:`p'_i \propto G'_i/\sqrt{c_i}`. With
    :math:`W = \sum_i G_i\sqrt{c_i}`,

    .. math::
       J(p') = \frac{1}{n^2}\Big(\sum_i \frac{G_i^2\sqrt{c_i}}{G'_i}\Big)
       \Big(\sum_i G'_i\sqrt{c_i}\Big),\qquad
       \frac{\mathbb E[J(p')]}{J(p^*)} = 1 + \sigma^2\Big[
       \frac{\sum_i \sqrt{c_i}/G_i}{W} - \frac{\sum_i c_i}{W^2}\Big] + O(\sigma^4).

    Derivation: expanding :math:`1/G'_i` to second order, the first sum is
    :math:`W - \sum_i\sqrt{c_i}\varepsilon_i + \sum_i\sqrt{c_i}\varepsilon_i^2/G_i`
    and the second is :math:`W + \sum_i\sqrt{c_i}\varepsilon_i`; the product's
    mean has the term :math:`-\mathbb E[(\sum_i\sqrt{c_i}\varepsilon_i)^2] =
    -\sigma^2\sum_i c_i`, the covariance of the two sums. Theorem D.5 treats
    the sums as independent and drops it, which overstates the excess by the
    factor :math:`1/(1-r)`, :math:`r = \sum_i c_i / (W\sum_i\sqrt{c_i}/G_i)`:
    negligible when many costs share :math:`\sum_i c_i` (:math:`r \approx 1/n`
    for equal costs and :math:`G`), unbounded when one cost dominates
    (:math:`r \to 1`). The bracket is :math:`\ge 0` by Cauchy–Schwarz. The
    neglected terms are of relative size :math:`O(\sigma^2/\min_i G_i^2)` (about
    3% at :math:`\sigma = 0.1\min_i G_i`, by Monte Carlo).

    Args:
      G: true gradient norms :math:`G_i > 0`, shape ``(n,)``.
      c: costs :math:`c_i > 0`, shape ``(n,)``.
      sigma2: the noise variance :math:`\sigma^2 \ge 0`.
      rho: alternatively the Pearson correlation of :math:`G` and :math:`G'`,
        giving :math:`\sigma^2 = \sigma_G^2(1-\rho^2)/\rho^2` as in Theorem D.5.

    Returns:
      The predicted :math:`\mathbb E[J(p')]/J(p^*)`.

    Raises:
      ValueError: ``G`` or ``c`` not positive everywhere, or not exactly one of
        ``sigma2`` and ``rho``, or either out of range.

    Examples:
      One cost dominating: Theorem D.5 predicts an excess of 2.5e-3, the
      expansion 5.0e-7 (Monte Carlo agrees with the latter):

      >>> G, c = [1.0, 1.0], [1.0, 1e8]
      >>> round(predicted_proxy_gap(G, c, sigma2=0.05**2) - 1, 10)
      0.0025
      >>> float(f"{second_order_proxy_gap(G, c, sigma2=0.05**2) - 1:.4g}")
      4.999e-07
    """
    G, c = _proxy_inputs(G, c, "the expansion is of 1/G'_i around G_i")
    log_noise, blamed = _log_relative_noise(G, sigma2, rho)
    # The bracket is homogeneous of degree -2 in G and 0 in c: with g = G / max G and
    # k = c / max c it is (A - B) / W / max(G)^2, A = sum(sqrt(k)/g), B = sum(k)/W,
    # W = sum(g sqrt(k)); A in log-space (1/g overflows for g < 1e-308).
    g, k = G / G.max(), c / c.max()
    W = float(np.sum(g * np.sqrt(k)))
    log_a = logsumexp(0.5 * np.log(k) - np.log(g))
    b_over_a = np.exp(np.log(np.sum(k) / W) - log_a)
    if b_over_a >= 1.0:  # A >= B by Cauchy-Schwarz; equal up to rounding
        return 1.0
    log_bracket = log_a + np.log1p(-b_over_a) - np.log(W)
    return _one_plus_exp(log_noise + log_bracket, blamed)


def _proxy_inputs(G: Any, c: Any, why: str) -> tuple[np.ndarray, np.ndarray]:
    G, c = _Gc(G, c)
    if np.any(G <= 0):
        raise ValueError(f"G must be > 0 everywhere: {why}")
    if not np.all(c > 0):
        raise ValueError("c must be > 0 everywhere: p' ∝ G'/sqrt(c) needs positive costs")
    return G, c


def _log_relative_noise(G: np.ndarray, sigma2: Any, rho: Any) -> tuple[float, str]:
    r"""``(log(σ² / max(G)²), "name = value" of the argument that set σ²)``; ``-inf``
    for no noise.

    ``rho`` gives :math:`\sigma^2 = \sigma_G^2(1-\rho^2)/\rho^2` (Theorem D.5), taken
    in log-space with :math:`\sigma_G^2` of ``G / max G``: neither a tiny ``rho`` nor
    a tiny ``G`` (whose variance underflows) loses it.
    """
    if (sigma2 is None) == (rho is None):
        raise ValueError("give exactly one of sigma2 or rho")
    if rho is not None:
        rho = check_real(rho, "rho")
        if not 0 < rho <= 1:
            raise ValueError(f"rho must lie in (0, 1], got {rho!r}")
        var = float(np.var(G / G.max()))
        if var == 0.0 or rho == 1.0:
            return -np.inf, f"rho = {rho!r}"
        return float(np.log(var) + np.log1p(-(rho**2)) - 2.0 * np.log(rho)), f"rho = {rho!r}"
    sigma2 = check_real(sigma2, "sigma2")
    if not (np.isfinite(sigma2) and sigma2 >= 0):
        raise ValueError(f"sigma2 must be finite and >= 0, got {sigma2!r}")
    if sigma2 == 0.0:
        return -np.inf, f"sigma2 = {sigma2!r}"
    return float(np.log(sigma2) - 2.0 * np.log(G.max())), f"sigma2 = {sigma2!r}"


def _one_plus_exp(log_excess: float, blamed: str) -> float:
    """``1 + exp(log_excess)``; a ratio beyond float64 is an error naming ``blamed``."""
    if log_excess > np.log(np.finfo(np.float64).max):
        raise ValueError(
            f"{blamed} makes the predicted ratio E[J(p')]/J(p*) = 1 + exp({log_excess:.6g}) "
            "overflow float64 (the noise is far larger than G; the expansion does not apply)"
        )
    return float(1.0 + np.exp(log_excess))


def exponential_example(n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The §4.3 instance :math:`G_i = 2^{-i/4}`, :math:`c_i = 2^i`, ``i = 1..n``, as
    natural logs ``(log G, log c)`` (the costs overflow float64 beyond n = 1023).

    Feed the result to :func:`log_cost_ratios`. The paper states
    :math:`K^*/K_{unif} = \Theta(2^{-n/2})` and :math:`K^*/K_{var} = \Theta(2^{-n/4})`.

    Examples:
      >>> r = log_cost_ratios(*exponential_example(10_000))
      >>> round(float(r.optimal_vs_uniform / np.log(2)) / 10_000, 3)  # log2 ratio / n
      -0.5
    """
    n = check_positive_int(n, "n")
    i = np.arange(1, n + 1, dtype=np.float64)
    return -0.25 * i * np.log(2.0), i * np.log(2.0)
