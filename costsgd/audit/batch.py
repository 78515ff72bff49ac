r""":func:`analyse_pool` for many pools at once: one call of each library sampler per batch.

The samplers of :data:`~costsgd.audit.pool.SAMPLERS` except the smoothings
have the form :math:`p_u = w_u / \sum_{v} w_v` with a per-rollout weight
(:math:`|A_u|/\sqrt{c_u}`, :math:`1[A_u \ne 0]`, :math:`1/\sqrt{c_u}`), so
calling the library's sampler once on the rows of many pools and dividing by
each pool's share of the total gives every pool's own distribution exactly;
:math:`p^*_{smooth}(\alpha) = (1-\alpha)p^* + \alpha/N_t` (``costsgd.smooth``)
then follows per pool. Every other quantity is a segment sum. A tiny pool
thus costs a few array operations instead of a few validated calls; the
result equals :func:`~costsgd.audit.pool.analyse_pool`'s pool by pool (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from costsgd import samplers
from costsgd.audit.pool import SAMPLERS, SMOOTHING, Pool, PoolAudit

__all__ = ["analyse_pools"]

_QUANTILES = np.array([0.1, 0.5, 0.9])


def _segment_sum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(x, starts) if x.size else np.zeros(starts.size)


def analyse_pools(pools: Sequence[Pool]) -> list[PoolAudit]:
    """:func:`~costsgd.audit.pool.analyse_pool` of each pool, computed for all of them at once.

    Examples:
      >>> import numpy as np
      >>> from costsgd.audit import Pool, analyse_pool
      >>> ps = [Pool(0, np.array([1.0, 0.0]), np.ones(2), np.array([1.0, 7.0])),
      ...       Pool(1, np.zeros(3), np.ones(3), np.ones(3))]
      >>> [a.expected_drawn_ratio["p*"] for a in analyse_pools(ps)]
      [0.4, 1.0]
    """
    if not pools:
        return []
    n = np.array([p.advantages.size for p in pools])
    starts = np.concatenate(([0], np.cumsum(n)[:-1]))
    seg = np.repeat(np.arange(n.size), n)
    A = np.concatenate([p.advantages for p in pools])
    c = np.concatenate([p.prompt_tokens + p.completion_tokens for p in pools])
    masked = np.concatenate(
        [np.zeros(p.advantages.size, bool) if p.masked is None else p.masked for p in pools]
    )
    G = np.where(masked, 0.0, np.abs(A))
    tokens = _segment_sum(c, starts)
    mean_c = tokens / n
    signal = _segment_sum((G > 0).astype(np.float64), starts) > 0
    ratio = {k: np.ones(n.size) for k in SAMPLERS}
    ess = {k: np.ones(n.size) for k in SAMPLERS}
    s_ratio = np.full(n.size, np.nan)
    if signal.any():
        rows = signal[seg]
        Gs, cs, ss = G[rows], c[rows], seg[rows]
        keep = np.flatnonzero(signal)
        ks = np.searchsorted(keep, ss)  # segment index among the pools with signal
        sub_starts = np.concatenate(([0], np.cumsum(n[keep])[:-1]))
        nk = n[keep].astype(np.float64)

        def per_pool(q: np.ndarray) -> np.ndarray:
            return q / _segment_sum(q, sub_starts)[ks]

        p_star = per_pool(np.asarray(samplers.optimal(Gs, cs)))
        dists = {"p*": p_star}
        for name, alpha in SMOOTHING.items():
            dists[name] = (1.0 - alpha) * p_star + alpha / nk[ks]
        dists["nonzero"] = per_pool(np.asarray(samplers.nonzero(Gs, cs)))
        dists["length"] = per_pool(np.asarray(samplers.length_only(None, cs)))
        for name, p in dists.items():
            ratio[name][keep] = _segment_sum(p * cs, sub_starts) / mean_c[keep]
            support = p > 0
            with np.errstate(divide="ignore"):
                inv = np.where(support, 1.0 / p, 0.0)
            k = _segment_sum(support.astype(np.float64), sub_starts)
            ess[name][keep] = (k / nk) ** 2 / (_segment_sum(inv, sub_starts) / nk**2)
        live = Gs > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            g2_over_p = np.where(live, Gs * Gs / np.where(live, p_star, 1.0), 0.0)
        s_p = _segment_sum(g2_over_p, sub_starts) / nk**2
        s_u = _segment_sum(Gs * Gs, sub_starts) / nk
        many = nk > 1
        s_ratio[keep[many]] = ((nk - 1) / nk * s_p / s_u)[many]
    order = np.lexsort((c, seg))
    sorted_c = c[order]
    at = _QUANTILES[None, :] * (n[:, None] - 1)
    lo = np.floor(at).astype(np.int64)
    hi = np.minimum(lo + 1, n[:, None] - 1)
    base = starts[:, None]
    q = sorted_c[base + lo] + (at - lo) * (sorted_c[base + hi] - sorted_c[base + lo])
    var = _segment_sum((c - mean_c[seg]) ** 2, starts) / n
    cmax = np.maximum.reduceat(c, starts)
    zero = _segment_sum((A == 0).astype(np.float64), starts) / n
    mfrac = _segment_sum(masked.astype(np.float64), starts) / n
    return [
        PoolAudit(
            n=int(n[t]),
            tokens=float(tokens[t]),
            zero_advantage_fraction=float(zero[t]),
            masked_fraction=float(mfrac[t]),
            no_signal=not bool(signal[t]),
            expected_drawn_ratio={k: float(v[t]) for k, v in ratio.items()},
            ess_fraction={k: float(v[t]) for k, v in ess.items()},
            Sp_over_Su=float(s_ratio[t]),
            cost={
                "mean": float(mean_c[t]),
                "cv": float(np.sqrt(var[t]) / mean_c[t]),
                "p10": float(q[t, 0]),
                "p50": float(q[t, 1]),
                "p90": float(q[t, 2]),
                "max": float(cmax[t]),
            },
        )
        for t in range(n.size)
    ]
