r"""Exact searches behind :func:`costsgd.knapsack_exact`: meet in the middle.

Both searches enumerate the subsets of two halves of a small item set
(Horowitz and Sahni, 1974), pruning partial subsets that cannot lead to an
answer, and combine the two lists through one sort and a binary search.

* :func:`least_sum_at_least`: the subset of least sum ``>= need`` (subset sum);
* :func:`core_search`: the core of a min-cost knapsack after Lagrangian fixing.
  Relative to the LP relaxation (break density :math:`\lambda`) every covering
  subset costs :math:`\mathrm{LP} + \sum_{i\ \text{flipped}} |r_i| + \lambda e`,
  :math:`r_i = \omega_i - \lambda v_i` the reduced costs and :math:`e \ge 0` the value
  covered beyond :math:`V_{req}`. Items of the LP's break class (equal cost
  :math:`c_i`, so :math:`r_i = 0`) cost nothing to flip: among them only the
  excess :math:`e` matters, which is why ties make HiGHS's branch and bound
  slow (every subset of the class with the same value is an equivalent
  solution) and why an enumeration of their *sums*, pruned by the incumbent,
  is fast.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["CoreCandidate", "core_search", "least_sum_at_least", "subset_sums"]

_MAX_HALF = 62  # items per half: subsets are bit masks in int64


def subset_sums(vals: np.ndarray) -> np.ndarray:
    """All 2^m subset sums; entry ``s`` is the sum of the items whose bits are set in ``s``."""
    sums = np.zeros(1)
    for x in vals:
        sums = np.concatenate([sums, sums + x])
    return sums


def least_sum_at_least(vals: np.ndarray, need: float) -> np.ndarray:
    """The subset (bool mask) of ``vals`` with the least sum ``>= need``, exactly, by meet
    in the middle: two lists of ``2^(m/2)`` sums, one sorted. Every item when no float
    sum reaches ``need`` (it is then within rounding of ``vals.sum()`` or above it)."""
    h = vals.size // 2
    a, b = subset_sums(vals[:h]), subset_sums(vals[h:])
    ob = np.argsort(b, kind="stable")
    bs = b[ob]
    j = np.searchsorted(bs, need - a, side="left")
    total = np.where(j < bs.size, a + bs[np.minimum(j, bs.size - 1)], np.inf)
    if not np.isfinite(total).any():
        return np.ones(vals.size, dtype=bool)
    ia = int(np.argmin(total))
    ib = int(ob[j[ia]])
    return np.r_[(ia >> np.arange(h)) & 1, (ib >> np.arange(vals.size - h)) & 1].astype(bool)


class CoreCandidate(NamedTuple):
    """A subset of the core and its cost above the LP bound."""

    above_lp: float  #: sum of |r_i| over the flips + lambda * excess
    flips: np.ndarray  #: bool mask over the core items


def core_search(
    shift: np.ndarray,
    penalty: np.ndarray,
    need: float,
    lam: float,
    bound: float,
    *,
    max_states: int,
    keep: int = 8,
) -> list[CoreCandidate] | None:
    r"""The subsets :math:`X` of the core with the least
    :math:`f(X) = \sum_X p_i + \lambda(\sum_X s_i - \text{need})` subject to
    :math:`\sum_X s_i \ge \text{need}`, among those with :math:`f(X) <` ``bound``.

    Args:
      shift: :math:`s_i`, the value a flip adds (negative: a flip that drops an item).
      penalty: :math:`p_i = |r_i| \ge 0`, what a flip costs above the LP.
      need: the value the flips must add, :math:`\text{need}`.
      lam: the LP's break density :math:`\lambda > 0`.
      bound: only subsets with :math:`f <` ``bound`` are looked for (the incumbent's).
      max_states: the most partial subsets one half may keep; beyond it the search
        gives up.
      keep: how many of the best subsets to return.

    Returns:
      Up to ``keep`` candidates by increasing :math:`f` (empty: none beats ``bound``,
      the incumbent is optimal); ``None`` when the core is too large for the search.
    """
    m = shift.size
    if m > 2 * _MAX_HALF:
        return None
    order = np.argsort(-np.abs(shift), kind="stable")  # large items first: early pruning
    halves = order[0::2], order[1::2]
    q = penalty + lam * shift  # each flip's contribution to f (plus lam * need)
    reach = [(np.maximum(shift[h], 0).sum(), np.minimum(q[h], 0).sum()) for h in halves]
    lists = []
    for side, half in enumerate(halves):
        other_pos, other_qneg = reach[1 - side]
        found = _enumerate(
            shift[half],
            penalty[half],
            q[half],
            need - other_pos,
            other_qneg - lam * need,
            bound,
            max_states,
        )
        if found is None:
            return None
        lists.append(found)
    (sa, qa, ma), (sb, qb, mb) = lists
    if sa.size == 0 or sb.size == 0:  # every partial subset was pruned: none beats bound
        return []
    ob = np.argsort(sb, kind="stable")
    sb, qb, mb = sb[ob], qb[ob], mb[ob]
    # Suffix minimum of qb (and where it is): the cheapest b with shift >= a threshold.
    rev = qb[::-1]
    run = np.minimum.accumulate(rev)
    at = np.maximum.accumulate(np.where(rev <= run, np.arange(rev.size), 0))
    best_q, best_at = run[::-1], (rev.size - 1 - at)[::-1]
    j = np.searchsorted(sb, need - sa, side="left")
    ok = j < sb.size
    jj = np.minimum(j, sb.size - 1)
    f = np.where(ok, qa + best_q[jj] - lam * need, np.inf)
    f = np.maximum(f, 0.0)  # f >= 0 by construction; rounding below 0 is 0
    good = np.flatnonzero(f < bound)
    if good.size == 0:
        return []
    good = good[np.argsort(f[good], kind="stable")[:keep]]
    out = []
    for ia in good:
        flips = np.zeros(m, dtype=bool)
        flips[halves[0]] = _bits(ma[ia], halves[0].size)
        flips[halves[1]] = _bits(mb[best_at[jj[ia]]], halves[1].size)
        out.append(CoreCandidate(float(f[ia]), flips))
    return out


def _bits(mask: np.int64, size: int) -> np.ndarray:
    return ((int(mask) >> np.arange(size)) & 1).astype(bool)


def _enumerate(s, p, q, low, q_floor, bound, max_states):
    """Every subset of one half (shift, penalty, q = its part of f, bit mask) that can
    still be completed by the other half into a covering subset with f < bound.

    ``low``: the half's shift must reach at least this (need less the other half's
    positive shifts); ``q_floor``: the least the other half can add to q, less
    ``lam * need``. Pruned: penalty >= bound; shift that cannot reach ``low`` even with
    every remaining positive shift; ``q + remaining negative q + q_floor >= bound``.
    """
    if s.size > _MAX_HALF:
        return None
    rem_pos = np.r_[np.cumsum(np.maximum(s, 0)[::-1])[::-1], 0.0]
    rem_qneg = np.r_[np.cumsum(np.minimum(q, 0)[::-1])[::-1], 0.0]
    tol = 1e-12 * (abs(low) + np.abs(s).sum() + abs(bound))  # rounding: prune only clear cases
    S, P, Q = np.zeros(1), np.zeros(1), np.zeros(1)
    M = np.zeros(1, dtype=np.int64)
    for k in range(s.size):
        S = np.concatenate([S, S + s[k]])
        P = np.concatenate([P, P + p[k]])
        Q = np.concatenate([Q, Q + q[k]])
        M = np.concatenate([M, M | np.int64(1 << k)])
        alive = (
            (P < bound + tol)
            & (S + rem_pos[k + 1] >= low - tol)
            & (Q + rem_qneg[k + 1] + q_floor < bound + tol)
        )
        S, P, Q, M = S[alive], P[alive], Q[alive], M[alive]
        if S.size > max_states:
            return None
    return S, Q, M
