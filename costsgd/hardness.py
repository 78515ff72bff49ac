r"""The lower bound of Theorem 4.3 / E.1 and its hard instances (Appendix E).

For :math:`n \ge G^2/\epsilon^2` components with costs :math:`c_i \ge 0`,
any algorithm whose output satisfies :math:`\mathbb E[F(\hat x) - F^*] \le \epsilon`
on every convex, :math:`G`-Lipschitz finite sum over :math:`X = [-1, 1]` pays,
on some such instance, an expected total query cost of at least

.. math::
   \frac{G^2}{12800\,\epsilon^2}\Big(\frac1n\sum_{i\in S^*}\sqrt{c_i}\Big)^2

(the explicit constant of the proof's last line), where :math:`S^*` satisfies
the cost-uniformity condition (Eq. 13)

.. math::
   \frac{\max_{i\in S^*}\sqrt{c_i}}{\frac1n\sum_{j\in S^*}\sqrt{c_j}} \le \frac{G}{40\epsilon}.

**Which** :math:`S^*`. The proof defines it as "the largest set of cheapest
components satisfying" Eq. 13, and the Remark shows that a bound-maximising
set is a prefix :math:`[k]` of the costs sorted increasingly. The two agree:
the largest feasible prefix maximises the bound over *all* sets satisfying
Eq. 13 (adding a cheaper component keeps Eq. 13 and never lowers the sum;
among prefixes the sum grows with :math:`k`). But the feasible prefixes need
not be contiguous in :math:`k`: the ratio :math:`n\sqrt{c_{(k)}}/\sum_{j\le k}\sqrt{c_{(j)}}`
can fall, rise and fall again, so a scan that stops at the first :math:`k`
violating Eq. 13 can return too small a set. :func:`cost_uniform_set`
checks every :math:`k`. With ties, the largest feasible prefix never splits
a group of equal costs. :math:`S^*` may be empty (then the bound is 0):
Eq. 13 needs :math:`\epsilon \le G/40` at least, and for :math:`c_i = 4^i`
it needs :math:`\epsilon < G/(20n)`, which contradicts :math:`n \ge G^2/\epsilon^2`.

**Hard instances** (Step 1 of the proof): :math:`f_i(x) = -b_i x` on
:math:`[-1, 1]`, :math:`b_i = \mathrm{clip}(z_i, -G, G)`, :math:`z_i \sim
\mathcal N(\pm\Delta_i, \sigma^2)` (:math:`+` under :math:`\mathcal D_0`,
:math:`-` under :math:`\mathcal D_1`), :math:`\sigma = G/2`,
:math:`\Delta_i = \alpha\sqrt{c_i}` on :math:`S^*` and 0 elsewhere,
:math:`\alpha = 20n\epsilon/\sum_{S^*}\sqrt{c_j}`, so that Eq. 15 holds:
:math:`\frac1n\sum_i\Delta_i = 20\epsilon` and :math:`\Delta_i \le G/2`.
"""

from __future__ import annotations

import numbers
from math import erf, exp, pi, sqrt
from typing import Any, NamedTuple

import numpy as np

from costsgd._validate import as_generator, check_costs, check_positive, host
from costsgd.problems import FiniteSum

__all__ = [
    "HardInstance",
    "LowerBound",
    "clipped_mean",
    "cost_uniform_set",
    "hard_deltas",
    "hard_instance",
    "hard_slopes",
    "linear_grad",
    "linear_loss",
    "lower_bound",
]

_CONSTANT = 12800.0  # 32 · 20² (Step 4 of the proof)


def _costs(c: Any, name: str = "c") -> np.ndarray:
    return host(check_costs(c, name)).astype(np.float64)


def cost_uniform_set(c: Any, *, G_max: float, eps: float) -> np.ndarray:
    r"""The cost-uniform set :math:`S^*`: the largest prefix of the cheapest components
    satisfying Eq. 13 (indices into ``c``, cheapest first; empty if there is none).

    Eq. 13 is checked as :math:`40\,\epsilon\,n\max_{S}\sqrt{c_i} \le G\sum_{S}\sqrt{c_j}`
    (no division, so a prefix of zero costs satisfies it). Every prefix length
    is tried: the feasible ones need not be contiguous (module docstring).

    Args:
      c: costs :math:`c_i \ge 0`, shape ``(n,)``.
      G_max: the Lipschitz constant :math:`G > 0` (a scalar bound on every component).
      eps: the target error :math:`\epsilon > 0`.

    Returns:
      ``int`` indices of :math:`S^*`, shape ``(k,)``.

    Examples:
      Feasible prefix lengths here are k = 2, 4, 5, 6 (not 1 or 3):

      >>> c = np.array([1.0, 1.0, 100.0, 100.0, 100.0, 100.0])
      >>> cost_uniform_set(c, G_max=1.0, eps=1 / 140)
      array([0, 1, 2, 3, 4, 5])
      >>> cost_uniform_set(4.0 ** np.arange(1, 11), G_max=1.0, eps=0.01)  # G/(20n) = 0.005
      array([], dtype=int64)
    """
    c = _costs(c)
    G, eps = check_positive(G_max, "G_max"), check_positive(eps, "eps")
    order = np.argsort(c, kind="stable")
    root = np.sqrt(c[order])
    with np.errstate(over="ignore"):  # inf on either side compares correctly
        feasible = 40.0 * eps * c.size * root <= G * np.cumsum(root)
    if not feasible.any():
        return np.zeros(0, dtype=np.int64)
    return order[: int(np.flatnonzero(feasible)[-1]) + 1].astype(np.int64)


class LowerBound(NamedTuple):
    """Theorem 4.3's bound with its explicit constant, and the set it uses."""

    value: float  #: G²/(12800 ε²) · ((1/n) Σ_{S*} √c_i)²
    support: np.ndarray  #: S*, indices (cheapest first)


def _check_regime(n: int, G: float, eps: float) -> None:
    if sqrt(n) * eps < G:  # n < G²/eps², without overflow for tiny eps
        raise ValueError(
            f"n = {n} < (G_max/eps)² = ({G / eps:.6g})²: Theorem 4.3 needs n >= G²/eps² "
            "(the Hoeffding step of Appendix E); the bound is not established there"
        )


def lower_bound(c: Any, *, G_max: float, eps: float) -> LowerBound:
    r"""The value of Theorem 4.3's bound,
    :math:`\frac{G^2}{12800\,\epsilon^2}\big(\frac1n\sum_{i\in S^*}\sqrt{c_i}\big)^2`.

    Raises ``ValueError`` when :math:`n < G^2/\epsilon^2` (outside the theorem).
    The value is 0 when :math:`S^*` is empty.

    Examples:
      >>> lb = lower_bound(np.ones(1600), G_max=1.0, eps=1 / 40)  # uniform costs: S* = [n]
      >>> round(lb.value, 9), lb.support.size
      (0.125, 1600)
    """
    c = _costs(c)
    G, eps = check_positive(G_max, "G_max"), check_positive(eps, "eps")
    _check_regime(c.size, G, eps)
    support = cost_uniform_set(c, G_max=G, eps=eps)
    mean_root = np.sqrt(c[support]).sum() / c.size
    # (G/eps)² <= n by the regime check: no overflow, and no 0/0 for tiny G and eps.
    return LowerBound(float((G / eps) ** 2 / _CONSTANT * mean_root**2), support)


def hard_deltas(c: Any, *, G_max: float, eps: float) -> tuple[np.ndarray, float, np.ndarray]:
    r"""The shifts :math:`\Delta_i = \alpha\sqrt{c_i}` on :math:`S^*` (Eq. 19), 0 elsewhere.

    Returns:
      ``(delta, alpha, support)`` with :math:`\frac1n\sum\Delta_i = 20\epsilon` and
      :math:`\Delta_i \le G/2` (Eq. 15).

    Raises:
      ValueError: outside the theorem (:math:`n < G^2/\epsilon^2`), or when
        :math:`S^*` is empty or costs nothing (no :math:`\alpha` meets Eq. 15).

    Examples:
      >>> delta, alpha, _ = hard_deltas(np.ones(1600), G_max=1.0, eps=1 / 40)
      >>> float(delta.mean()), float(delta.max())  # 20 eps, G/2
      (0.5, 0.5)
    """
    c = _costs(c)
    G, eps = check_positive(G_max, "G_max"), check_positive(eps, "eps")
    _check_regime(c.size, G, eps)
    support = cost_uniform_set(c, G_max=G, eps=eps)
    root_sum = np.sqrt(c[support]).sum()
    if root_sum <= 0:
        raise ValueError(
            "no hard instance: S* is empty or all its costs are 0 (Eq. 13 fails for every "
            f"non-free prefix at eps = {eps!r}, G = {G!r})"
        )
    alpha = 20.0 * c.size * eps / root_sum
    delta = np.zeros(c.size)
    delta[support] = alpha * np.sqrt(c[support])
    return delta, float(alpha), support


def clipped_mean(delta: Any, G_max: float) -> np.ndarray:
    r""":math:`g(\delta) = \mathbb E[\mathrm{clip}(Z + \delta, -G, G)]`, :math:`Z \sim \mathcal N(0, (G/2)^2)`,
    in closed form (the mean of a hard instance's slope; Step 2 shows
    :math:`g(\delta) \ge \delta/2` for :math:`0 \le \delta \le G/2`).

    .. math::
       g(\delta) = \delta\,[\Phi(b) - \Phi(a)] + \sigma[\varphi(a) - \varphi(b)]
       - G\,\Phi(a) + G\,[1 - \Phi(b)],\quad a = \frac{-G-\delta}{\sigma},\ b = \frac{G-\delta}{\sigma}

    Examples:
      >>> float(clipped_mean(0.0, 1.0))
      0.0
    """
    G = check_positive(G_max, "G_max")
    sigma = G / 2

    def one(d: float) -> float:
        a, b = (-G - d) / sigma, (G - d) / sigma
        cdf_a, cdf_b = 0.5 * (1 + erf(a / sqrt(2))), 0.5 * (1 + erf(b / sqrt(2)))
        pdf_a, pdf_b = exp(-a * a / 2) / sqrt(2 * pi), exp(-b * b / 2) / sqrt(2 * pi)
        return d * (cdf_b - cdf_a) + sigma * (pdf_a - pdf_b) - G * cdf_a + G * (1 - cdf_b)

    d = np.asarray(delta, dtype=np.float64)
    return np.vectorize(one, otypes=[np.float64])(d)


def hard_slopes(
    delta: Any, *, G_max: float, hypothesis: int, size: int | None = None, rng: Any = None
) -> np.ndarray:
    r"""Draw slopes :math:`b_i = \mathrm{clip}(\mathcal N(\pm\Delta_i, (G/2)^2), -G, G)`:
    ``hypothesis=0`` (:math:`\mathcal D_0`, :math:`+\Delta`) or ``1`` (:math:`\mathcal D_1`).

    Args:
      delta: :math:`\Delta_i \ge 0`, shape ``(n,)``.
      G_max: the Lipschitz constant :math:`G`.
      hypothesis: 0 or 1.
      size: number of independent instances (leading axis, an integer >= 0), or
        ``None`` for one.
      rng: ``None``, an int seed or a ``numpy.random.Generator``.

    Returns:
      ``b`` of shape ``(n,)`` or ``(size, n)``, every entry in :math:`[-G, G]`.

    Examples:
      >>> b = hard_slopes(np.full(4, 0.5), G_max=1.0, hypothesis=1, size=3, rng=0)
      >>> b.shape, bool(np.all(np.abs(b) <= 1.0))
      ((3, 4), True)
    """
    G = check_positive(G_max, "G_max")
    delta = _costs(delta, "delta")  # finite, >= 0
    if hypothesis not in (0, 1):
        raise ValueError(f"hypothesis must be 0 (D0) or 1 (D1), got {hypothesis!r}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, numbers.Integral)):
        raise TypeError(f"size must be None or an integer >= 0, got {size!r}")
    if size is not None and size < 0:
        raise ValueError(f"size must be None or an integer >= 0, got {size!r}")
    rng = as_generator(rng)
    shape = delta.shape if size is None else (int(size), delta.size)
    mean = delta if hypothesis == 0 else -delta
    return np.clip(mean + (G / 2) * rng.standard_normal(shape), -G, G)


def linear_loss(x, datum):
    r"""A hard instance's component, :math:`f_i(x) = -b_i x` (``x`` of shape ``(1,)``)."""
    return -datum * x[0]


def linear_grad(x, datum):
    r""":math:`\nabla f_i(x) = -b_i`, shape ``(1,)``."""
    return -datum * (x * 0 + 1)


class HardInstance(NamedTuple):
    """One draw from D0 or D1 with its parameters and a problem the SGD engine runs."""

    b: np.ndarray  #: slopes b_i, shape (n,)
    delta: np.ndarray  #: Δ_i, shape (n,)
    alpha: float  #: Δ_i = α √c_i on S*
    support: np.ndarray  #: S*
    hypothesis: int  #: 0 (D0) or 1 (D1)
    problem: FiniteSum  #: f_i(x) = -b_i x on [-1, 1], G_i = G, costs c


def hard_instance(c: Any, *, G_max: float, eps: float, hypothesis: int, rng: Any = None):
    r"""Draw one hard instance of Appendix E (Step 1) as a runnable problem.

    The problem is a :class:`costsgd.problems.FiniteSum` over the 1-D ball of
    radius 1 (:math:`X = [-1, 1]`, diameter :math:`D = 2`) with
    :math:`G_i = G`, the given costs, :math:`x^* = \mathrm{sign}(\bar b)` and
    :math:`F^* = -|\bar b|`; it goes to :func:`costsgd.cost_aware_sgd` as it is.

    Examples:
      >>> inst = hard_instance(np.ones(1600), G_max=1.0, eps=1 / 40, hypothesis=0, rng=0)
      >>> inst.problem.x_star, bool(inst.problem.f_star == -abs(inst.b.mean()))
      (array([1.]), True)
    """
    c = _costs(c)
    G = check_positive(G_max, "G_max")
    delta, alpha, support = hard_deltas(c, G_max=G, eps=eps)
    b = hard_slopes(delta, G_max=G, hypothesis=hypothesis, rng=rng)
    mean = float(b.mean())
    problem = FiniteSum(
        loss=linear_loss,
        data=b,
        G=np.full(c.size, G),
        c=c,
        radius=1.0,
        x_star=np.array([1.0 if mean >= 0 else -1.0]),
        f_star=-abs(mean),
        grad=linear_grad,
    )
    return HardInstance(b, delta, alpha, support, int(hypothesis), problem)
