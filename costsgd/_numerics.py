"""Numerics in one place: log-space sums and safe ratios (float64 numpy)."""

from __future__ import annotations

import numpy as np

__all__ = ["log_of", "logsumexp", "safe_ratio"]


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
