r"""Subset selection as a min-cost knapsack (Appendix C, D.3, D.4 of the paper).

Training on a subset :math:`\pi \subseteq [n]`, i.e. on
:math:`f_\pi = \frac1n\sum_{i\in\pi} f_i` with :math:`p^*` restricted to
:math:`\pi`, costs

.. math::
   \mathcal K_\pi(\epsilon) = \frac{D^2}{n^2(\epsilon - D\beta_\pi)^2}
   \Big(\sum_{i\in\pi} G_i\sqrt{c_i}\Big)^2,\qquad
   \beta_\pi = \frac1n\sum_{i\notin\pi} G_i,

for a target :math:`\epsilon > D\beta_\pi` (Appendix C). Minimising the
numerator under a bias budget is the min-cost knapsack of Theorem C.1 / D.2
(Eq. 12): item cost :math:`\omega_i = G_i\sqrt{c_i}`, item value
:math:`v_i = G_i`, and required coverage :math:`\sum_{i\in\pi} v_i \ge V_{req}` with

* convex, bias budget :math:`D\beta_\pi \le \Gamma`:
  :math:`V_{req} = \sum_j G_j - n\Gamma/D` (Theorem D.2);
* :math:`\mu`-strongly convex, :math:`f(x^*_\pi) - f(x^*) \le \Gamma`:
  :math:`V_{req} = \sum_j G_j - n\sqrt{2\mu\Gamma}` (Theorem D.3).

Solvers (each returns a :class:`SubsetSolution`: the subset, its objective
:math:`\sum_{i\in\pi}\omega_i` and its bias :math:`\beta_\pi`):

============================  =============================================================
:func:`knapsack_exact`        optimum, ``scipy.optimize.milp`` (HiGHS) after exact
                              Lagrangian variable fixing; n in the thousands in seconds
:func:`knapsack_lp`           LP relaxation (fractional knapsack): cheapest :math:`c_i` first,
                              one fractional item (Theorem D.3); a lower bound on the optimum
:func:`knapsack_greedy`       the paper's greedy: cheapest :math:`c_i` first until covered
:func:`knapsack_two_approx`   within a factor 2 of the optimum on every instance (proved below),
                              and never worse than the greedy
============================  =============================================================

**The paper's greedy is not a 2-approximation.** Appendix C states that
"choosing the lowest-cost samples until the constraint is met" is a
2-approximation [Csirik et al., 1991]. It is not: with :math:`(G, c)` =
``(1, 1), (100, 1.21), (2, 1.44)`` and :math:`V_{req} = 2` the greedy takes the
first two items (objective 111) while the third alone covers the requirement
(objective 2.4): ratio 46, and scaling the middle item's :math:`G` makes the
ratio unbounded (kept as a regression test). What does hold for the greedy:
its objective is at most :math:`\mathrm{LP} + \omega_k \le \mathrm{OPT} + \omega_k`,
:math:`\omega_k` the last item it takes (so it is near-optimal when every
item is small next to the optimum), and it is optimal when all :math:`G_i`
are equal. Csirik et al. (1991) prove the factor 2 for a *modified* greedy
(Gens and Levner's heuristic); :func:`knapsack_two_approx` is a factor-2
algorithm with a self-contained proof.

:func:`subset_total_cost` and :func:`gamma_tradeoff` are the convex case of
Appendix C; the paper gives the strongly convex case only its knapsack
(Theorem D.3), not a cost formula, so none is offered here.

Conventions: components with :math:`G_i = 0` carry no value and are never
selected; *free* components (:math:`c_i = 0 < G_i`) are always selected
(same objective, less bias). When :math:`V_{req} \le 0` (the budget allows
ignoring every component: any feasible point is already within
:math:`D\frac1n\sum_i G_i \le \Gamma` of optimal) every solver returns the
free components only, objective 0, and :math:`\mathcal K_\pi(\epsilon) = 0`.
A subset *covers* the requirement when :math:`\sum_{i\in\pi} v_i \ge V_{req}`,
the sum taken exactly rounded (``math.fsum``) so that the answer does not depend
on the order of the terms; no slack is allowed, so every solver keeps the bias
budget :math:`D\beta_\pi \le \Gamma` up to the rounding of :math:`V_{req}`
itself. (:func:`knapsack` computes :math:`V_{req}` from the exactly rounded
:math:`\sum_j G_j`, so :math:`\Gamma = 0` is covered by the full set.)
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys
import time
from typing import Any, NamedTuple

import numpy as np

from costsgd._subset_search import core_search, least_sum_at_least
from costsgd._validate import (
    check_costs,
    check_gradient_norms,
    check_positive,
    check_real,
    check_same_shape,
    host,
)

__all__ = [
    "GammaTradeoff",
    "MinKnapsack",
    "SubsetSolution",
    "gamma_tradeoff",
    "knapsack",
    "knapsack_exact",
    "knapsack_greedy",
    "knapsack_lp",
    "knapsack_two_approx",
    "subset_total_cost",
]

_ROUNDING = 1e-12  # relative: a requirement this far above the total value is the total
_MAX_CORE_STATES = 1 << 20  # partial subsets per half in the exact core search


class MinKnapsack(NamedTuple):
    r"""A min-cost knapsack (Eq. 12): minimise :math:`\sum z_i\omega_i` s.t.
    :math:`\sum z_i v_i \ge V_{req}`, :math:`z \in \{0,1\}^n`."""

    item_cost: np.ndarray  #: ω_i = G_i √c_i, shape (n,)
    value: np.ndarray  #: v_i = G_i, shape (n,)
    required: float  #: V_req (may be <= 0: the empty subset covers it)
    costs: np.ndarray  #: c_i, the order of the greedy and of the LP, shape (n,)

    def covers(self, z: Any) -> bool:
        r"""Whether the (0/1 or fractional) selection ``z`` meets the requirement:
        :math:`\sum_i z_i v_i \ge V_{req}`, the sum exactly rounded (``math.fsum``)."""
        z = np.asarray(z, dtype=np.float64)
        return math.fsum(z * self.value) >= _required(self)


def _required(inst: MinKnapsack) -> float:
    """V_req, or the total value when V_req exceeds it by rounding only (a hand-built
    instance with ``required = value.sum()`` summed in another order)."""
    return min(float(inst.required), math.fsum(inst.value))


class SubsetSolution(NamedTuple):
    """A solver's answer: the subset, its knapsack objective and its bias."""

    selected: np.ndarray  #: bool mask of π, shape (n,) (LP: z_i > 0)
    z: np.ndarray  #: the solution in [0, 1]^n (0/1 except for the LP relaxation)
    objective: float  #: Σ z_i G_i √c_i
    bias: float  #: β_π = (1/n) Σ (1 - z_i) G_i
    gap: float  #: certified (objective - lower bound) / objective; 0: proven optimal


def knapsack(G: Any, c: Any, *, gamma: float, D: float | None = None, mu: float | None = None):
    r"""The min-cost knapsack of Theorem C.1 / D.2 (give ``D``) or D.3 (give ``mu``).

    .. math::
       \omega_i = G_i\sqrt{c_i},\quad v_i = G_i,\quad
       V_{req} = \sum_j G_j - \frac{n\Gamma}{D}\ \text{(convex)}\quad\text{or}\quad
       \sum_j G_j - n\sqrt{2\mu\Gamma}\ \text{(strongly convex)}.

    Args:
      G: gradient-norm bounds :math:`G_i \ge 0`, shape ``(n,)``.
      c: costs :math:`c_i \ge 0`, shape ``(n,)``.
      gamma: the budget :math:`\Gamma \ge 0`: on the bias term :math:`D\beta_\pi`
        (convex) or on :math:`f(x^*_\pi) - f(x^*)` (strongly convex).
      D: diameter of the feasible set (convex case).
      mu: strong-convexity constant (strongly convex case).

    Returns:
      A :class:`MinKnapsack`.

    Examples:
      >>> inst = knapsack([1.0, 2.0, 3.0], [1.0, 4.0, 9.0], gamma=0.5, D=1.0)
      >>> inst.item_cost, inst.required
      (array([1., 4., 9.]), 4.5)
      >>> knapsack([1.0, 2.0, 3.0], [1.0, 4.0, 9.0], gamma=0.5, mu=1.0).required
      3.0
    """
    G = check_gradient_norms(G)
    c = check_costs(c)
    check_same_shape(G=G, c=c)
    G, c = host(G).astype(np.float64), host(c).astype(np.float64)
    try:
        gamma = float(gamma)
    except (TypeError, ValueError) as err:
        raise ValueError(f"gamma must be a number, got {gamma!r}") from err
    if not (np.isfinite(gamma) and gamma >= 0):
        raise ValueError(
            f"gamma must be finite and >= 0, got {gamma!r} (a negative budget would "
            "require more coverage than all components together, V_req > sum(G))"
        )
    if (D is None) == (mu is None):
        raise ValueError("give exactly one of D (convex, Theorem D.2) or mu (Theorem D.3)")
    n = G.size
    if D is not None:
        excluded = n * gamma / check_positive(D, "D")
    else:
        excluded = n * np.sqrt(2.0 * check_positive(mu, "mu") * gamma)
    with np.errstate(over="ignore"):
        item_cost = G * np.sqrt(c)
    if not np.all(np.isfinite(item_cost)):
        raise ValueError("G, c: the item costs G_i sqrt(c_i) overflow float64; rescale G or c")
    # A budget beyond the total value needs no coverage (V_req <= 0 is the empty subset).
    return MinKnapsack(item_cost, G, float(max(math.fsum(G) - excluded, 0.0)), c)


def _check_instance(inst: MinKnapsack) -> MinKnapsack:
    if not isinstance(inst, MinKnapsack):
        raise ValueError(f"inst must be a MinKnapsack (see knapsack()), got {type(inst).__name__}")
    if not np.isfinite(inst.required):
        raise ValueError(f"inst.required must be finite, got {inst.required!r}")
    if inst.required > math.fsum(inst.value) * (1 + _ROUNDING):
        raise ValueError(
            f"infeasible: inst.required = {inst.required!r} exceeds the total value "
            f"{inst.value.sum()!r}; no subset covers it"
        )
    return inst


def _solution(inst: MinKnapsack, z: np.ndarray, lower: float) -> SubsetSolution:
    """The solution ``z`` with its objective, bias and gap to the lower bound ``lower``."""
    objective = float(z @ inst.item_cost)
    return SubsetSolution(
        selected=z > 0,
        z=z,
        objective=objective,
        bias=float((1.0 - z) @ inst.value / inst.value.size),
        gap=_relative_gap(objective, lower),
    )


def _base(inst: MinKnapsack):
    """(z with the free items set, the residual requirement, paid items in greedy order)."""
    v, w = inst.value, inst.item_cost
    free = (v > 0) & (w == 0)
    z = free.astype(np.float64)
    residual = _required(inst) - math.fsum(v[free])
    paid = np.flatnonzero((v > 0) & (w > 0))
    order = paid[np.argsort(inst.costs[paid], kind="stable")]
    return z, residual, order


def knapsack_lp(inst: MinKnapsack) -> SubsetSolution:
    r"""The LP relaxation (fractional knapsack), solved in closed form.

    With :math:`z \in [0,1]^n` the optimum takes items by decreasing density
    :math:`v_i/\omega_i = 1/\sqrt{c_i}`, i.e. by increasing cost :math:`c_i`,
    whole until the next would overshoot, then a fraction of that one
    (Theorem D.3). Its objective lower-bounds every 0/1 solution.

    Returns:
      A :class:`SubsetSolution` whose ``z`` has at most one fractional entry;
      ``bias`` is :math:`\frac1n\sum_i(1-z_i)G_i`.

    Examples:
      >>> inst = knapsack([1.0, 1.0, 1.0], [1.0, 4.0, 9.0], gamma=0.5, D=2.0)
      >>> knapsack_lp(inst).z
      array([1.  , 1.  , 0.25])
    """
    inst = _check_instance(inst)
    z, residual, order = _base(inst)
    if residual > 0:
        cum = np.cumsum(inst.value[order])
        k = min(int(np.searchsorted(cum, residual)), order.size - 1)
        z[order[:k]] = 1.0
        before = cum[k - 1] if k else 0.0
        z[order[k]] = min(1.0, (residual - before) / inst.value[order[k]])
        # a few ulps more of the fractional item, so that z itself passes covers()
        while not inst.covers(z) and z[order[k]] < 1.0:
            z[order[k]] = min(1.0, z[order[k]] * (1 + 4 * np.finfo(float).eps) + 1e-300)
    return _solution(inst, z, float(z @ inst.item_cost))


def _prefix_cover(v: np.ndarray, w: np.ndarray, required: float, *taken):
    """Cost and length of the shortest prefix of (v, w) that covers ``required`` together
    with the values ``taken`` (sequences of values); None if none does.

    The prefix is found on cumulative sums and checked exactly (``math.fsum`` of the
    taken values and the prefix) where the two could disagree, near ``required``.
    """
    base = math.fsum(itertools.chain(*taken))
    residual = required - base
    if base >= required:
        return 0.0, 0
    cum = np.cumsum(v)
    k = int(np.searchsorted(cum, residual)) + 1
    near = 64 * np.finfo(float).eps * (abs(required) + abs(base))

    def covers(length: int) -> bool:
        return math.fsum(itertools.chain(*taken, v[:length])) >= required

    while k > 1 and abs(cum[k - 2] - residual) <= near and covers(k - 1):
        k -= 1
    while k <= cum.size and abs(cum[k - 1] - residual) <= near and not covers(k):
        k += 1
    if k > cum.size:
        return None
    return float(w[:k].sum()), k


def knapsack_greedy(inst: MinKnapsack) -> SubsetSolution:
    r"""The paper's greedy (Appendix C): cheapest :math:`c_i` first until covered.

    Equals the LP relaxation rounded up. Guarantee: objective
    :math:`\le \mathrm{LP} + \omega_k \le \mathrm{OPT} + \omega_k`, with
    :math:`\omega_k` the last item taken. It is **not** a 2-approximation
    (see the module docstring for the counterexample); it is optimal when all
    :math:`G_i` are equal.

    Examples:
      >>> inst = knapsack([1.0, 100.0, 2.0], [1.0, 1.21, 1.44], gamma=101.0, D=3.0)
      >>> round(knapsack_greedy(inst).objective, 6), round(knapsack_exact(inst).objective, 6)
      (111.0, 2.4)
    """
    inst = _check_instance(inst)
    z, _, order = _base(inst)
    taken = inst.value[z > 0]
    found = _prefix_cover(inst.value[order], inst.item_cost[order], _required(inst), taken)
    z[order[: found[1]]] = 1.0  # found is never None: the instance is feasible
    return _solution(inst, z, _lp_relaxation(inst)[0])


def knapsack_two_approx(inst: MinKnapsack) -> SubsetSolution:
    r"""A 2-approximation for min-cost knapsack: objective :math:`\le 2\,\mathrm{OPT}`.

    For every item :math:`j`, take :math:`j` and then, among the items no
    costlier than :math:`j` (:math:`\omega_i \le \omega_j`), the greedy prefix
    by increasing :math:`c_i` until the requirement is covered; return the
    cheapest of these candidates and of the plain greedy. :math:`O(n^2)` time,
    :math:`O(n)` memory.

    **Guarantee (proof).** Let :math:`O` be an optimal subset and :math:`j`
    its item of largest :math:`\omega`. :math:`O\setminus\{j\}` covers the
    residual :math:`V_{req} - v_j` using items with :math:`\omega_i \le \omega_j`,
    so the fractional (LP) optimum of that residual instance is at most
    :math:`\mathrm{OPT} - \omega_j`. The greedy prefix exceeds that LP value
    by at most its last item, :math:`\le \omega_j`. Hence candidate :math:`j`
    costs at most :math:`\omega_j + (\mathrm{OPT} - \omega_j) + \omega_j =
    \mathrm{OPT} + \max_{i\in O}\omega_i \le 2\,\mathrm{OPT}`. The same bound
    (factor 2) is proved by Csirik, Frenk, Labbé and Zhang, *Heuristics for
    the 0-1 min-knapsack problem*, Acta Cybernetica 10(1-2):15-20, 1991, for
    the Gens-Levner greedy heuristic; the guessing argument above is the
    standard one for knapsack approximations.

    Examples:
      >>> inst = knapsack([1.0, 100.0, 2.0], [1.0, 1.21, 1.44], gamma=101.0, D=3.0)
      >>> knapsack_two_approx(inst).selected
      array([False, False,  True])
    """
    inst = _check_instance(inst)
    z, _, order = _base(inst)
    greedy = knapsack_greedy(inst)
    if inst.covers(z):
        return greedy
    v, w = inst.value[order], inst.item_cost[order]
    best_cost, best_pick = greedy.objective - float(z @ inst.item_cost), None
    taken, required = inst.value[z > 0], _required(inst)
    for pos in range(order.size):
        if w[pos] >= best_cost:  # this candidate cannot beat the incumbent
            continue
        allowed = w <= w[pos]
        allowed[pos] = False
        idx = np.flatnonzero(allowed)
        found = _prefix_cover(v[idx], w[idx], required, taken, (v[pos],))
        if found is not None and w[pos] + found[0] < best_cost:
            best_cost, best_pick = w[pos] + found[0], np.append(idx[: found[1]], pos)
    if best_pick is None:
        return greedy
    z[order[best_pick]] = 1.0
    return _solution(inst, z, _lp_relaxation(inst)[0])


@contextlib.contextmanager
def quiet_stdout():
    """Silence file descriptor 1 for the block: HiGHS 1.x (inside scipy) prints debug lines
    from C++, which ``contextlib.redirect_stdout`` cannot catch."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _lp_relaxation(inst: MinKnapsack) -> tuple[float, float, np.ndarray]:
    r"""The LP relaxation, items by increasing density :math:`\omega_i/v_i`: its value
    (a lower bound on every covering subset's objective), its break density
    :math:`\lambda` and its solution ``z``."""
    z, target, order = _base(inst)
    if target <= 0 or order.size == 0:
        return 0.0, 0.0, z
    v, w = inst.value, inst.item_cost
    order = order[np.argsort(w[order] / v[order], kind="stable")]
    cum = np.cumsum(v[order])
    k = min(int(np.searchsorted(cum, target)), order.size - 1)
    z[order[:k]] = 1.0
    z[order[k]] = min(1.0, (target - (cum[k - 1] if k else 0.0)) / v[order[k]])
    return float(z @ w), float(w[order[k]] / v[order[k]]), z


def _class_subset(vals: np.ndarray, need: float, pool: int) -> np.ndarray | None:
    """A subset of one cost class with value ``>= need`` and a small excess (bool mask).

    The largest items are taken greedily up to ``need`` less half the value of the
    ``pool`` smallest; those cover the rest exactly (:func:`least_sum_at_least`), so the
    excess is at most about their total over ``2^pool``.
    """
    asc = np.argsort(vals, kind="stable")
    small, large = asc[:pool], asc[pool:][::-1]
    spare = vals[small].sum()
    mask = np.zeros(vals.size, bool)
    total, aim = 0.0, need - spare / 2
    for i in large:
        if total + vals[i] <= aim:
            mask[i], total = True, total + vals[i]
    for i in large[::-1]:  # the pool alone cannot cover what is left: add the smallest large
        if need - total <= spare:
            break
        if not mask[i]:
            mask[i], total = True, total + vals[i]
    if need - total > spare:
        return None
    if need - total > 0:
        mask[small[least_sum_at_least(vals[small], need - total)]] = True
    return mask


def _tie_candidate(inst: MinKnapsack, pool: int, margin: float) -> np.ndarray | None:
    r"""A covering ``z`` from the structure of ties: every cost class cheaper than the LP's
    break class whole, and in the break class (equal :math:`c_i`, so equal density
    :math:`\omega_i/v_i = \sqrt{c_i}`: only the value taken matters) a subset whose value
    exceeds what is still needed by as little as :func:`_class_subset` finds."""
    z, residual, order = _base(inst)
    v = inst.value
    target = residual + margin
    cum = np.cumsum(v[order])
    if cum.size == 0 or cum[-1] < target:
        return None
    costs = inst.costs[order]
    c_break = costs[int(np.searchsorted(cum, target))]
    cheaper, tied = order[costs < c_break], order[costs == c_break]
    z[cheaper] = 1.0
    pick = _class_subset(v[tied], target - v[cheaper].sum(), pool)
    if pick is None:
        return None
    z[tied[pick]] = 1.0
    return z


def _window_candidate(inst: MinKnapsack, pool: int, margin: float) -> np.ndarray | None:
    r"""A covering ``z`` for costs without ties: the items of lowest density whole, and
    among the ``pool`` items around the LP's break (by density :math:`\omega_i/v_i`)
    the subset of least value covering the rest (exact, :func:`least_sum_at_least`)."""
    z, residual, order = _base(inst)
    v, w = inst.value, inst.item_cost
    target = residual + margin
    order = order[np.argsort(w[order] / v[order], kind="stable")]
    cum = np.cumsum(v[order])
    if cum.size == 0 or cum[-1] < target:
        return None
    k = int(np.searchsorted(cum, target))
    lo = max(0, min(k - pool // 2, order.size - pool))
    window = order[lo : lo + pool]
    need = target - (cum[lo - 1] if lo else 0.0)
    if need > v[window].sum():
        return None
    z[order[:lo]] = 1.0
    if need > 0:
        z[window[least_sum_at_least(v[window], need)]] = 1.0
    return z


def _relative_gap(objective: float, lower: float) -> float:
    return float(max(0.0, (objective - lower) / objective)) if objective > 0 else 0.0


def knapsack_exact(
    inst: MinKnapsack, *, gap: float = 1e-9, time_limit: float | None = None
) -> SubsetSolution:
    r"""An optimal subset, or one proven within a relative ``gap`` of the optimum.

    The lower bound is the LP relaxation :math:`L` (Theorem D.3), with break density
    :math:`\lambda`. Every covering subset costs :math:`L + \sum |r_i| + \lambda e`
    over the items flipped away from their LP value, :math:`r_i = \omega_i - \lambda v_i`
    the reduced costs and :math:`e \ge 0` the value covered beyond :math:`V_{req}`.

    1. **Incumbents.** :func:`knapsack_two_approx`, and two subset-sum candidates:
       with ties (token counts are integers) the classes cheaper than the LP's break
       class whole and, in the break class (equal :math:`c_i`, so :math:`r_i = 0`:
       only its value matters), a subset whose value covers what is left with as
       little excess as possible (meet in the middle over 24 or 32 of its smallest
       items); without ties, the same over the items around the LP's break. One
       that costs at most :math:`L/(1-\text{gap})` is returned.
    2. **Exact core search.** Items whose :math:`|r_i|` exceeds the incumbent's
       distance to :math:`L` are fixed (no better subset flips them). Break-class
       items too large to add (or to drop) without overshooting are fixed as well.
       What is left, the *core*, is searched exactly by meet in the middle over
       the sums of its two halves, pruned by the incumbent
       (``costsgd._subset_search``). The search first asks for subsets within a
       small fraction of that distance (1/4096, then 4 times more each round): the
       core is then small, and finding nothing proves a higher lower bound. Ties are what made HiGHS slow here (91.6 s on
       one instance with n = 300, costs in {1..5}): the subsets of the break class
       with equal value are equivalent, so branch and bound explores them all,
       while an enumeration of sums does not.
    3. **HiGHS.** A core too large for the search goes to ``scipy.optimize.milp``
       with the relative gap that makes the whole solution's gap ``gap``. HiGHS
       prints debug lines from C++; file descriptor 1 is silenced during the solve
       (:func:`quiet_stdout`).

    Timings are in ``docs/benchmarks.md`` (``python benchmarks/bench_subset.py``).

    Args:
      inst: the instance (:func:`knapsack`).
      gap: the certified relative gap :math:`(\text{objective} - \text{lower bound})/
        \text{objective}` to reach, in ``[0, 1)``; 0 asks for a proof of optimality.
        The default ``1e-9`` is far below anything that changes :math:`\mathcal K_\pi`.
      time_limit: seconds (> 0; ``None`` or ``inf``: no limit). When it runs out
        before ``gap`` is reached, the best subset found so far is returned with the
        gap certified for it, which may then exceed ``gap``.

    Returns:
      A :class:`SubsetSolution` whose ``gap`` is the certified relative gap reached
      (at most ``gap`` unless ``time_limit`` stopped the search).

    Raises:
      TypeError: ``gap`` or ``time_limit`` is not a number.
      ValueError: ``gap`` outside ``[0, 1)``, ``time_limit`` not > 0.

    Examples:
      >>> inst = knapsack([1.0, 1.0, 1.0], [1.0, 4.0, 9.0], gamma=1.0, D=2.0)
      >>> sol = knapsack_exact(inst)
      >>> sol.selected, sol.objective, sol.gap
      (array([ True,  True, False]), 3.0, 0.0)
    """
    inst = _check_instance(inst)
    gap = check_real(gap, "gap")
    if not 0.0 <= gap < 1.0:
        raise ValueError(f"gap must lie in [0, 1), got {gap!r}")
    deadline = _deadline(time_limit)
    z, _, _ = _base(inst)
    if inst.covers(z):
        return _solution(inst, z, 0.0)
    relaxation = _lp_relaxation(inst)
    lower = relaxation[0]
    candidates: list[np.ndarray] = []
    for pool in (24, 32):
        for build in (_tie_candidate, _window_candidate):
            # aimed at V_req; a few ulps above it when rounding left the first one short
            for margin in (0.0, 64 * np.finfo(float).eps * _required(inst)):
                candidate = build(inst, pool, margin)
                if candidate is not None and inst.covers(candidate):
                    candidates.append(candidate)
                    break
        if pool == 24:
            if candidates and _within(inst, _cheapest(inst, candidates), lower, gap):
                return _solution(inst, _cheapest(inst, candidates), lower)
            candidates.append(knapsack_two_approx(inst).z)  # O(n^2): only when needed
        best = _cheapest(inst, candidates)
        if _within(inst, best, lower, gap):
            return _solution(inst, best, lower)
        found, proven = _core_search(inst, best, relaxation, gap, deadline)
        if found is not None:
            return found
    if time.monotonic() >= deadline:
        return _solution(inst, best, proven)
    return _milp_core(inst, best, relaxation, gap, deadline, proven)


def _cheapest(inst: MinKnapsack, candidates: list[np.ndarray]) -> np.ndarray:
    return min(candidates, key=lambda z: float(z @ inst.item_cost))


def _within(inst: MinKnapsack, z: np.ndarray, lower: float, gap: float) -> bool:
    return _relative_gap(float(z @ inst.item_cost), lower) <= gap


def _deadline(time_limit: Any) -> float:
    """``time.monotonic()`` at which ``time_limit`` seconds from now run out (inf: never)."""
    if time_limit is None:
        return np.inf
    seconds = check_real(time_limit, "time_limit")
    if not seconds > 0:  # also NaN
        raise ValueError(f"time_limit must be > 0 seconds (or None: no limit), got {time_limit!r}")
    return time.monotonic() + seconds


def _core(inst: MinKnapsack, room: float, relaxation):
    r"""The items a subset costing less than :math:`L` + ``room`` may flip, and from what.

    Returns ``(order, base, core, r, need)``: the paid items in cost order; ``base``,
    the 0/1 values the others keep (the LP's, with the break class whole or empty,
    whichever leaves fewer of its items free); ``core``, a mask of the items left
    free; their reduced costs ``r`` (0 on the break class); ``need``, the value the
    flips must add to ``base``. Such a subset costs :math:`L + \sum|r_i| + \lambda e`,
    so :math:`|r_i|` and :math:`\lambda e` are each below ``room``.
    """
    lam = relaxation[1]
    v, w = inst.value, inst.item_cost
    _, residual, order = _base(inst)
    vo, wo = v[order], w[order]
    r = wo - lam * vo
    tied = np.abs(r) <= 1e-12 * wo  # the break class: the LP's break density
    r[tied] = 0.0
    below = r < 0
    flip = ~tied & (np.abs(r) < room * (1 + 1e-9))
    need = residual - math.fsum(vo[below])  # what the break class and the flips add
    total = math.fsum(vo[tied])
    drops, adds = vo[flip & below].sum(), vo[flip & ~below].sum()
    add_cap = need + room / lam + drops  # a break item larger than this is never added
    drop_cap = total - need + room / lam + adds  # ... or never dropped
    base = below.copy()
    if np.count_nonzero(tied & (vo <= drop_cap)) < np.count_nonzero(tied & (vo <= add_cap)):
        base |= tied
        core = flip | (tied & (vo <= drop_cap))
    else:
        core = flip | (tied & (vo <= add_cap))
    need = residual - math.fsum(vo[base])
    return order, base, core, r, need


#: The core searches try subsets costing less than L + room * share, share by share: a
#: small share leaves a small core; finding nothing there proves OPT >= L + room * share.
_SHARES = (4.0**-6, 4.0**-5, 4.0**-4, 4.0**-3, 4.0**-2, 4.0**-1, 1.0)


def _core_search(inst: MinKnapsack, incumbent: np.ndarray, relaxation, gap: float, deadline):
    """The exact optimum by meet in the middle over the core (:func:`_core`), searched
    below growing bounds (:data:`_SHARES`) until ``deadline`` (``time.monotonic()``).

    Returns ``(solution, lower)``: the solution (``None`` when a core grew too large for
    the search, or time ran out) and the lower bound proven on the way.
    """
    lower = relaxation[0]
    upper = float(incumbent @ inst.item_cost)
    room = upper - lower
    proven = lower
    for share in _SHARES:
        bound = room * share
        if share < 1 and _relative_gap(upper, lower + bound) <= gap:
            continue  # would prove no more than the gap asks; the next share decides
        if time.monotonic() >= deadline:
            return None, proven
        found = _search_below(inst, relaxation, bound)
        if found is None:
            return None, proven
        if found:
            break
        proven = lower + bound  # no subset costs less than that
        if _relative_gap(upper, proven) <= gap:
            return _solution(inst, incumbent, proven), proven
    else:  # nothing below the incumbent: it is optimal
        return _solution(inst, incumbent, upper), upper
    order, base, core, _, _ = found[0]
    z, _, _ = _base(inst)
    idx = np.flatnonzero(core)
    for candidate in found[1]:
        trial = z.copy()
        trial[order[base]] = 1.0
        trial[order[idx[candidate.flips]]] = 1.0 - trial[order[idx[candidate.flips]]]
        if inst.covers(trial):  # the search's float sums may miss exact coverage by an ulp
            best = _cheaper_of(inst, trial, incumbent)
            cost = float(best @ inst.item_cost)
            return _solution(inst, best, min(cost, lower + found[1][0].above_lp)), proven
    return _solution(inst, incumbent, lower + found[1][0].above_lp), proven


def _search_below(inst: MinKnapsack, relaxation, bound: float):
    """The subsets costing less than L + ``bound``, best first, with their core
    (``((order, base, core, r, need), candidates)``); ``[]`` when there is none; ``None``
    when the core is too large for the search."""
    lam = relaxation[1]
    order, base, core, r, need = _core(inst, bound, relaxation)
    idx = np.flatnonzero(core)
    vo = inst.value[order]
    shift = np.where(base[idx], -vo[idx], vo[idx])
    # need is a difference of rounded sums: searched a few ulps lower, so that subsets
    # covering exactly are not missed (each candidate is then checked exactly)
    need -= 16 * np.finfo(float).eps * math.fsum(inst.value)
    found = core_search(shift, np.abs(r[idx]), need, lam, bound, max_states=_MAX_CORE_STATES)
    if not found:
        return found
    return (order, base, core, r, need), found


def _milp_core(inst, incumbent, relaxation, gap, deadline, proven) -> SubsetSolution:
    """Lagrangian fixing against ``incumbent``, then HiGHS on the items left (the core);
    ``proven`` is a lower bound already known (from :func:`_core_search`)."""
    lower, ratio, z_lp = relaxation
    v, w = inst.value, inst.item_cost
    upper = float(incumbent @ w)
    z, residual, order = _base(inst)
    frac = z_lp[order]
    vo, wo = v[order], w[order]
    fixed = lower + np.abs(wo - ratio * vo) > upper * (1 + 1e-9)
    take = fixed & (frac == 1.0)
    core = np.flatnonzero(~fixed)
    need = residual - math.fsum(vo[take])
    z[order[take]] = 1.0
    if not core.size or need <= 0:
        return _solution(inst, _cheaper_of(inst, z, incumbent), proven)
    fixed_cost = float(z @ w)
    core_upper = upper - fixed_cost
    # normalise (dividing by the max first: no overflow for tiny entries)
    row, obj = vo[core] / vo[core].max(), wo[core] / wo[core].max()
    scale_v, scale_w = 1e6 / row.sum(), 1e6 / obj.sum()
    # HiGHS's gap is relative to the core's objective, ours to the whole one.
    core_gap = min(gap * (1.0 + fixed_cost / core_upper), 0.5) if core_upper > 0 else gap
    options = {"mip_rel_gap": core_gap}
    if np.isfinite(deadline):
        options["time_limit"] = max(deadline - time.monotonic(), 1e-3)
    # imported here: scipy.optimize takes longer to import than the rest of costsgd
    from scipy.optimize import Bounds, LinearConstraint, milp

    with quiet_stdout():
        res = milp(
            obj * scale_w,
            integrality=np.ones(core.size),
            bounds=Bounds(0, 1),
            constraints=LinearConstraint(
                (row * scale_v)[None, :], need / vo[core].max() * scale_v, np.inf
            ),
            options=options,
        )
    dual = getattr(res, "mip_dual_bound", None)
    bound = proven
    if dual is not None and np.isfinite(dual):
        bound = max(proven, fixed_cost + dual / scale_w * wo[core].max())
    best = incumbent
    if res.x is not None:
        trial = z.copy()
        trial[order[core[np.round(res.x) == 1]]] = 1.0
        best = _cheaper_of(inst, _repaired(inst, trial, order[core]), incumbent)
    return _solution(inst, best, min(bound, float(best @ w)))


def _repaired(inst: MinKnapsack, z: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """``z``, or when HiGHS's feasibility tolerance left it short of covering, ``z`` plus
    the cheapest item of ``pool`` that makes it cover (``z`` itself when none does)."""
    if inst.covers(z):
        return z
    for i in pool[np.argsort(inst.item_cost[pool], kind="stable")]:
        if z[i] == 0.0:
            trial = z.copy()
            trial[i] = 1.0
            if inst.covers(trial):
                return trial
    return z


def _cheaper_of(inst: MinKnapsack, z: np.ndarray, incumbent: np.ndarray) -> np.ndarray:
    """``z`` if it covers and costs no more than the (covering) incumbent, else the incumbent."""
    if not inst.covers(z) or incumbent @ inst.item_cost < z @ inst.item_cost:
        return incumbent
    return z


def subset_total_cost(G: Any, c: Any, selected: Any, *, eps: float, D: float) -> float:
    r"""Expected cost :math:`\mathcal K_\pi(\epsilon)` of Cost-Aware SGD on a subset (Appendix C).

    .. math::
       \mathcal K_\pi(\epsilon) = \frac{D^2}{n^2(\epsilon - D\beta_\pi)^2}
       \Big(\sum_{i\in\pi} G_i\sqrt{c_i}\Big)^2

    with :math:`p^*` restricted to :math:`\pi` (:math:`q_i \propto G_i/\sqrt{c_i}`
    on :math:`\pi`). The full set gives Eq. 6.

    Args:
      G: gradient-norm bounds, shape ``(n,)``.
      c: costs, shape ``(n,)``.
      selected: bool mask of :math:`\pi`, shape ``(n,)``.
      eps: target error; must exceed the bias floor :math:`D\beta_\pi`.
      D: diameter of the feasible set.

    Examples:
      >>> subset_total_cost([1.0, 1.0], [1.0, 9.0], [True, False], eps=1.0, D=1.0)
      1.0
    """
    G = check_gradient_norms(G)
    c = check_costs(c)
    check_same_shape(G=G, c=c)
    G, c = host(G).astype(np.float64), host(c).astype(np.float64)
    mask = np.asarray(selected)
    if mask.dtype != bool or mask.shape != G.shape:
        raise ValueError(
            f"selected must be a bool mask of shape {G.shape}, got {mask.dtype} {mask.shape}"
        )
    eps, D = check_positive(eps, "eps"), check_positive(D, "D")
    n = G.size
    floor = D * G[~mask].sum() / n
    if eps <= floor:
        raise ValueError(
            f"eps = {float(eps):.6g} is not above the subset's bias floor D·β_π = {float(floor):.6g}: "
            "SGD on this subset cannot reach it"
        )
    return float(D**2 * (G[mask] @ np.sqrt(c[mask])) ** 2 / (n**2 * (eps - floor) ** 2))


class GammaTradeoff(NamedTuple):
    """The error–cost trade-off of Appendix D.3, one entry per budget Γ."""

    gammas: np.ndarray  #: the budgets Γ tried, increasing, shape (m,)
    costs: np.ndarray  #: K_π(Γ)(ε) with the subset's actual bias, shape (m,)
    biases: np.ndarray  #: β_π(Γ), shape (m,)
    sizes: np.ndarray  #: |π(Γ)|, shape (m,)
    best_gamma: float  #: the Γ with the least expected cost
    best: SubsetSolution  #: its subset


_SOLVERS = {
    "exact": knapsack_exact,
    "two_approx": knapsack_two_approx,
    "greedy": knapsack_greedy,
}


def gamma_tradeoff(
    G: Any,
    c: Any,
    *,
    eps: float,
    D: float,
    gammas: Any = None,
    num: int = 32,
    solver: str = "exact",
) -> GammaTradeoff:
    r"""Enumerate bias budgets Γ, solve each knapsack, and pick the cheapest (Appendix D.3).

    For each Γ the solver returns :math:`\pi(\Gamma)` with :math:`D\beta_\pi \le \Gamma < \epsilon`;
    its expected cost is :math:`\mathcal K_{\pi(\Gamma)}(\epsilon)` evaluated with the
    subset's actual bias :math:`\beta_\pi` (never above the worst case
    :math:`D^2J(\pi)/(n^2(\epsilon-\Gamma)^2)` of Appendix D.3). Γ = 0 is the full
    set (Eq. 6). When :math:`\epsilon > D\frac1n\sum_i G_i` a large enough Γ selects
    nothing and costs 0: every feasible point is already :math:`\epsilon`-optimal.

    Args:
      G: gradient-norm bounds, shape ``(n,)``.
      c: costs, shape ``(n,)``.
      eps: target error.
      D: diameter.
      gammas: budgets to try, each in :math:`[0, \epsilon)`; default ``num``
        evenly spaced values in :math:`[0, \epsilon)`.
      num: how many default budgets.
      solver: ``"exact"``, ``"two_approx"`` or ``"greedy"``.

    Examples:
      >>> t = gamma_tradeoff([1.0, 1.0, 1.0], [1.0, 1.0, 100.0], eps=1.0, D=1.0, num=4)
      >>> t.gammas, t.sizes, t.costs, t.best_gamma
      (array([0.  , 0.25, 0.5 , 0.75]), array([3, 3, 2, 1]), array([16., 16., 1., 1.]), 0.5)
    """
    eps, D = check_positive(eps, "eps"), check_positive(D, "D")
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {sorted(_SOLVERS)}, got {solver!r}")
    if gammas is None:
        if int(num) != num or num < 1:
            raise ValueError(f"num must be a positive integer, got {num!r}")
        gammas = np.linspace(0.0, eps, int(num) + 1)[:-1]
    gammas = np.sort(np.atleast_1d(np.asarray(gammas, dtype=np.float64)))
    if gammas.ndim != 1 or gammas.size == 0:
        raise ValueError("gammas must be a non-empty 1-D array")
    if not (np.all(np.isfinite(gammas)) and gammas[0] >= 0 and gammas[-1] < eps):
        raise ValueError(
            f"every Γ in gammas must lie in [0, eps = {eps!r}): the bias term alone "
            f"would use the whole error budget; got [{gammas[0]!r}, {gammas[-1]!r}]"
        )
    solve = _SOLVERS[solver]
    costs, biases, sizes, sols = [], [], [], []
    for gamma in gammas:
        sol = solve(knapsack(G, c, gamma=gamma, D=D))
        costs.append(subset_total_cost(G, c, sol.selected, eps=eps, D=D))
        biases.append(sol.bias)
        sizes.append(int(sol.selected.sum()))
        sols.append(sol)
    best = int(np.argmin(costs))
    return GammaTradeoff(
        gammas, np.array(costs), np.array(biases), np.array(sizes), float(gammas[best]), sols[best]
    )
