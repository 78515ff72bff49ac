r"""What each sampler of Algorithm 2 would draw from one rollout pool.

A *pool* is the set of rollouts of one training step (§5.2): rollout
:math:`u` has advantage :math:`A_u` and cost :math:`c_u` = prompt + completion
tokens. Algorithm 2 draws the step's mini-batches from a distribution
:math:`p` over the pool, as many draws as the pool has rollouts ("no
sampling" sweeps the pool once), so its expected drawn tokens per iteration
relative to no sampling are

.. math:: r(p) = \frac{\mathbb E_p[c]}{\bar c} = \frac{C(p)}{C(u)},

with :math:`C(p) = \sum_u p_u c_u` (Eq. 1, :func:`costsgd.expected_cost`) and
:math:`u` the uniform distribution. The expected saving is :math:`1 - r(p)`.
The samplers are the library's own, with :math:`|A_u|` as the gradient-norm
proxy :math:`G_u` (§5.2): :func:`costsgd.optimal` (:math:`p^* \propto |A|/\sqrt c`,
Theorem 4.1), :func:`costsgd.smooth` (:math:`p^*_{smooth}(\alpha)`, §5.3),
zero-advantage removal :math:`p \propto 1[A \ne 0]` (:func:`costsgd.nonzero`), and
:func:`costsgd.length_only` (:math:`p_{LEN} \propto 1/\sqrt c`, Appendix G.6).
A pool without signal (every :math:`A_u = 0`) has ratio 1 under every
sampler: the adapter then falls back to uniform draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from costsgd import samplers
from costsgd.theory import second_moment

__all__ = [
    "NORMALIZATIONS",
    "SAMPLERS",
    "SMOOTHING",
    "Pool",
    "PoolAudit",
    "analyse_pool",
    "distributions",
    "group_advantages",
]

#: Reward normalisations: ``"group"`` divides by the group's std + 1e-4 (TRL's
#: default ``scale_rewards="group"``; verl's ``norm_adv_by_std_in_grpo=True`` up
#: to its 1e-6), ``"batch"`` by the pool's std + 1e-4 (TRL ``"batch"``),
#: ``"none"`` only centres (TRL ``"none"``, verl ``norm_adv_by_std_in_grpo=False``, Dr. GRPO).
NORMALIZATIONS = ("group", "batch", "none")
_STD_EPS = 1e-4


#: p*_smooth(alpha) audited, by name.
SMOOTHING = {"p*_smooth(0.01)": 0.01, "p*_smooth(0.05)": 0.05, "p*_smooth(0.1)": 0.1}


def _smoothed(alpha: float) -> Callable[[Any, Any], Any]:
    def p(G: Any, c: Any):
        return samplers.smooth(samplers.optimal(G, c), alpha)

    return p


#: name -> sampler ``(G, c) -> p``; the keys of ``expected_drawn_ratio`` in ``audit.json``.
SAMPLERS: dict[str, Callable[[Any, Any], Any]] = {
    "p*": samplers.optimal,
    **{name: _smoothed(alpha) for name, alpha in SMOOTHING.items()},
    "nonzero": samplers.nonzero,
    "length": samplers.length_only,
}


def distributions(G: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    """Every sampler of :data:`SAMPLERS` on one pool (p* computed once for its smoothings).

    Examples:
      >>> d = distributions(np.array([1.0, 0.0]), np.array([1.0, 4.0]))
      >>> d["p*"].tolist(), d["p*_smooth(0.1)"].tolist(), d["length"].round(3).tolist()
      ([1.0, 0.0], [0.95, 0.05], [0.667, 0.333])
    """
    p_star = samplers.optimal(G, c)
    out = {"p*": p_star}
    out.update({name: samplers.smooth(p_star, alpha) for name, alpha in SMOOTHING.items()})
    out.update({name: SAMPLERS[name](G, c) for name in ("nonzero", "length")})
    return out


class Pool(NamedTuple):
    """One step's rollouts, as a reader hands them to the audit.

    Attributes:
      step: the training step (``None`` when unknown).
      advantages: :math:`A_u`, float64 ``(N,)``.
      prompt_tokens: float64 ``(N,)``, ``>= 0``.
      completion_tokens: float64 ``(N,)``, ``>= 0``; prompt + completion ``> 0``.
      masked: bool ``(N,)``: rollouts whose loss is masked out (no gradient), or ``None``.
    """

    step: int | None
    advantages: np.ndarray
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray
    masked: np.ndarray | None = None


class PoolAudit(NamedTuple):
    """:func:`analyse_pool`'s numbers for one pool (the per-step entries of ``audit.json``)."""

    n: int
    tokens: float
    zero_advantage_fraction: float
    masked_fraction: float
    no_signal: bool
    expected_drawn_ratio: dict[str, float]
    ess_fraction: dict[str, float]
    Sp_over_Su: float
    cost: dict[str, float]


def group_advantages(rewards: Any, groups: Any, normalization: str = "group") -> np.ndarray:
    r"""GRPO advantages from rewards: centred on the group mean, optionally scaled.

    .. math:: A_u = \frac{R_u - \bar R_{g(u)}}{\sigma + \epsilon}

    with :math:`\sigma` the group's (``"group"``) or the pool's (``"batch"``)
    standard deviation (unbiased, as TRL's ``nanstd`` and ``torch.std``),
    :math:`\epsilon = 10^{-4}` (TRL's), or no division (``"none"``). A group
    whose rewards are all equal (including a group of one) gets exactly 0, not
    a rounding residue.

    Args:
      rewards: ``(N,)`` finite rewards.
      groups: ``(N,)`` group ids (rollouts of one prompt share one).
      normalization: one of :data:`NORMALIZATIONS`.

    Examples:
      >>> group_advantages([1.0, 0.0, 0.5, 0.5], [0, 0, 1, 1], "none").tolist()
      [0.5, -0.5, 0.0, 0.0]
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    r = np.asarray(rewards, dtype=np.float64)
    g = np.asarray(groups)
    if r.ndim != 1 or g.shape != r.shape:
        raise ValueError(f"rewards and groups must be 1-D of one length, got {r.shape}, {g.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards must be finite")
    if g.dtype.kind in "iu" and g.size and g.min() >= 0 and g.max() < g.size:
        codes = g  # already small non-negative codes (empty codes are harmless)
    else:
        codes = np.unique(g, return_inverse=True)[1].ravel()
    count = np.bincount(codes).astype(np.float64)
    with np.errstate(invalid="ignore"):  # 0/0 for an unused code, never read
        mean = np.bincount(codes, weights=r) / count
    A = r - mean[codes]
    if normalization == "group":
        dev = np.bincount(codes, weights=A * A)
        std = np.sqrt(dev / np.maximum(count - 1, 1))
        A = A / (std[codes] + _STD_EPS)
    elif normalization == "batch" and r.size > 1:
        A = A / (float(np.std(r, ddof=1)) + _STD_EPS)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.diff(codes[order], prepend=-1))
    lo = np.minimum.reduceat(r[order], starts)
    hi = np.maximum.reduceat(r[order], starts)
    equal = np.zeros(count.size, dtype=bool)
    equal[codes[order][starts]] = lo == hi
    A[equal[codes]] = 0.0
    return A


def _quantiles(c: np.ndarray, qs=(0.1, 0.5, 0.9)) -> list[float]:
    """``np.quantile``'s default (linear) rule, on one sort: cheap for many small pools."""
    x = np.sort(c)
    at = np.asarray(qs) * (x.size - 1)
    lo = np.floor(at).astype(np.int64)
    hi = np.minimum(lo + 1, x.size - 1)
    return (x[lo] + (at - lo) * (x[hi] - x[lo])).tolist()


def analyse_pool(pool: Pool) -> PoolAudit:
    r"""Expected drawn tokens per sampler, zero-advantage fraction, weights and costs of one pool.

    For each sampler of :data:`SAMPLERS`, with :math:`G_u = |A_u|` (0 where masked):

    * ``expected_drawn_ratio``: :math:`r(p) = C(p)/C(u)` (Eq. 1; module doc);
    * ``ess_fraction``: the importance weights' effective sample size per
      draw, :math:`(\mathbb E_p w)^2/\mathbb E_p w^2` with :math:`w_u = 1/(Np_u)`,
      which is :math:`(k/N)^2/S(p, 1_{p>0})` for a support of :math:`k`
      rollouts (:func:`costsgd.second_moment`); 1 for uniform draws.

    ``Sp_over_Su`` is the study's variance ratio with :math:`|A|` as
    :math:`G` and the pool-mean gradient taken as 0 (it cannot be known from
    logs): :math:`S_p/S_u = \frac{N-1}{N}\,S(p^*)/S(u)` for :math:`N` draws
    (docs/audit.md). ``cost`` holds the mean, coefficient of variation,
    quantiles and maximum of :math:`c`.

    Examples:
      >>> import numpy as np
      >>> pool = Pool(0, np.array([1.0, -1.0, 0.0, 0.0]), np.full(4, 10.0),
      ...             np.array([10.0, 10.0, 170.0, 170.0]))
      >>> a = analyse_pool(pool)
      >>> a.expected_drawn_ratio["p*"], a.expected_drawn_ratio["nonzero"], a.zero_advantage_fraction
      (0.2, 0.2, 0.5)
    """
    A = pool.advantages
    c = pool.prompt_tokens + pool.completion_tokens
    n = A.size
    masked = np.zeros(n, dtype=bool) if pool.masked is None else pool.masked
    G = np.where(masked, 0.0, np.abs(A))
    mean_c = float(c.mean())
    no_signal = not bool(np.any(G > 0))
    ratio, ess = dict.fromkeys(SAMPLERS, 1.0), dict.fromkeys(SAMPLERS, 1.0)
    s_ratio = float("nan")
    if not no_signal:
        dists = distributions(G, c)
        P = np.stack(list(dists.values()))
        # C(p) = sum p c (Eq. 1, costsgd.expected_cost) and S(p, 1_{p>0}) = (1/N^2) sum_{p>0} 1/p
        # (costsgd.second_moment) for every sampler at once; tests check both against theory.
        drawn = P @ c / mean_c
        support = P > 0
        with np.errstate(divide="ignore"):
            s_support = np.where(support, 1.0 / P, 0.0).sum(1) / n**2
        ess_all = (support.sum(1) / n) ** 2 / s_support
        ratio = dict(zip(dists, drawn.tolist(), strict=True))
        ess = dict(zip(dists, ess_all.tolist(), strict=True))
        if n > 1:
            s_u = float(np.mean(G * G))  # S(u) = (1/N^2) sum G^2 / (1/N)
            s_ratio = (n - 1) / n * second_moment(dists["p*"], G) / s_u
    q10, q50, q90 = _quantiles(c)
    return PoolAudit(
        n=n,
        tokens=float(c.sum()),
        zero_advantage_fraction=float(np.mean(A == 0)),
        masked_fraction=float(masked.mean()),
        no_signal=no_signal,
        expected_drawn_ratio=ratio,
        ess_fraction=ess,
        Sp_over_Su=float(s_ratio),
        cost={
            "mean": mean_c,
            "cv": float(c.std() / mean_c),
            "p10": float(q10),
            "p50": float(q50),
            "p90": float(q90),
            "max": float(c.max()),
        },
    )
