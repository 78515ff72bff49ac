r"""The projected step of a linear model, shared by least squares and logistic regression.

For a component whose gradient is :math:`r_i(a_i^\top x)\,a_i + \lambda x`
(a scalar residual times the row, plus a ridge term), the step
:math:`y = (1 - s\lambda)\,x - s\,r\,a_i` with :math:`s = \eta_t/(n p_i)` has

.. math:: \|y\|^2 = (1 - s\lambda)^2\|x\|^2 - 2(1 - s\lambda)\,s r\,a_i^\top x + s^2r^2\|a_i\|^2,

so with :math:`\|a_i\|^2` computed once per run no reduction reads :math:`y`:
the step is one pass of reductions over :math:`x` (:math:`a_i^\top x`,
:math:`\|x\|^2`) and one elementwise pass writing :math:`\Pi(y)`. It equals the
generic step (:class:`costsgd.problems.GenericStep`) up to rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costsgd._validate import check_positive, check_positive_int
from costsgd.problems._base import ball_scale

__all__ = ["check_instance", "linear_step", "random_rows", "row_norms2"]


def check_instance(n, d, L, min_norm_frac, radius_factor, **nonnegative) -> tuple[int, int, float]:
    """The generators' shared checks: sizes, the row-norm bound ``L`` and its fraction,
    the radius factor (``>= 1``) and values that are finite and > 0 or exactly 0
    (``cost_low <= cost_high`` when both are given); each error names its argument.

    Returns:
      ``(n, d, L)`` as checked.
    """
    n, d = check_positive_int(n, "n"), check_positive_int(d, "d")
    L = check_positive(L, "L")
    if not 0 < check_positive(min_norm_frac, "min_norm_frac") <= 1:
        raise ValueError(f"min_norm_frac must lie in (0, 1], got {min_norm_frac}")
    if check_positive(radius_factor, "radius_factor") < 1:
        raise ValueError(f"radius_factor must be >= 1, got {radius_factor}")
    for name, value in nonnegative.items():
        if value != 0:
            check_positive(value, name)  # finite and > 0 (or exactly 0)
    low, high = nonnegative.get("cost_low", 0.0), nonnegative.get("cost_high", np.inf)
    if low > high:
        raise ValueError(f"need cost_low <= cost_high, got {low}, {high}")
    return n, d, L


def random_rows(n: int, d: int, L: float, min_norm_frac: float, rng) -> tuple[np.ndarray, Any]:
    r"""Rows :math:`a_i = L s_i u_i`, :math:`u_i` uniform on the sphere,
    :math:`s_i \sim \mathcal U[s_{min}, 1]`; returns ``(A, norms)``."""
    directions = rng.standard_normal((n, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    norms = L * rng.uniform(min_norm_frac, 1.0, size=n)
    return directions * norms[:, None], norms


def row_norms2(rows: Any) -> np.ndarray:
    r""":math:`\|a_i\|^2` of every row of ``rows`` ``(n, d)`` (host, numpy)."""
    rows = np.asarray(rows)
    return np.einsum("ij,ij->i", rows, rows)


def linear_step(x, a, a_norm2, ax, step, radius, shrink=None):
    r"""The projected step :math:`\Pi\big(\text{shrink}\cdot x - \text{step}\cdot a\big)`.

    Args:
      x: the iterate :math:`x_t`.
      a: the row :math:`a_i`.
      a_norm2: :math:`\|a_i\|^2`.
      ax: :math:`a_i^\top x_t`.
      step: :math:`s\,r`, the step along :math:`a_i`.
      radius: :math:`R`.
      shrink: :math:`1 - s\lambda` (``None``: no ridge term, 1).

    Returns:
      :math:`x_{t+1}`, NaN when :math:`\|y\|` overflows.
    """
    import jax.numpy as jnp

    xx = jnp.sum(x * x)
    if shrink is None:
        norm2 = xx - 2 * step * ax + step * step * a_norm2
        y = x - step * a
    else:
        norm2 = shrink * shrink * xx - 2 * shrink * step * ax + step * step * a_norm2
        y = shrink * x - step * a
    return y * ball_scale(norm2, radius, x.dtype)
