"""Numerics in one place: log-space sums, safe ratios, the overflow-free p* kernel."""

from __future__ import annotations

import numpy as np

__all__ = ["log_of", "logsumexp", "optimal_weights", "safe_ratio"]


def log_of(x: np.ndarray) -> np.ndarray:
    """Natural log with log(0) = -inf and no warning (inputs are validated >= 0)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, -np.inf)
    np.log(x, out=out, where=x > 0)
    return out


def logsumexp(a: np.ndarray) -> float:
    """log(sum(exp(a))) without overflow; -inf when every term is -inf.

    Examples:
      >>> round(logsumexp(np.array([1000.0, 1000.0])) - 1000.0, 12)  # log 2
      0.69314718056
    """
    a = np.asarray(a, dtype=np.float64)
    top = np.max(a)
    if not np.isfinite(top):
        return float(top)
    return float(top + np.log(np.sum(np.exp(a - top))))


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise with 0/0 = 0 and x/0 = +inf for x > 0.

    The convention of the second moment :math:`S(p)`: a component that is
    never drawn contributes nothing if it has no gradient, and makes the
    estimator's second moment infinite otherwise.
    """
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.where(num > 0, np.inf, 0.0)
    np.divide(num, den, out=out, where=den > 0)
    return out


def optimal_weights(G, c, xp):
    """Unnormalised p* of Theorem 4.1 (any array API backend ``xp``), each weight in [0, 1]: no validation and no host synchronisation.

    For inputs already checked (G >= 0 finite with some G > 0; c > 0 where G > 0).
    Both factors are scaled to at most 1 first: G/max G and sqrt(c_min/c) cannot
    overflow where G/sqrt(c) could (G = 1e300, c = 1e-300), and the square roots
    are taken before dividing so c_min/c cannot underflow (1e-300/1e300).
    """
    positive = G > 0
    safe_c = xp.where(positive, c, xp.ones_like(c))
    c_min = xp.min(xp.where(positive, safe_c, xp.full_like(safe_c, float("inf"))))
    return (G / xp.max(G)) * (xp.sqrt(c_min) / xp.sqrt(safe_c))
