r"""Finite-sum problems with known per-component gradient bounds and costs.

The §4.4 synthetic set-up of the paper: linear least squares
:math:`f(x) = \frac1n\sum_i f_i(x)`, :math:`f_i(x) = \frac12(a_i^\top x - b_i)^2`,
over the ball :math:`\mathcal X = \{\|x\| \le R\}`, with row norms bounded by
``L`` and heterogeneous, and costs :math:`c_i \sim \mathcal U[1, 1000]`.

Choices the paper leaves open, made here and exposed as parameters:

* row norms :math:`\|a_i\| = L\,s_i` with :math:`s_i \sim \mathcal U[s_{min}, 1]`
  (``min_norm_frac = 0.1``), directions uniform on the sphere;
* targets :math:`b_i = a_i^\top x_{true} + \sigma\xi_i` with
  :math:`x_{true} \sim \mathcal N(0, I/d)` and noise ``noise = 1.0``;
* feasible radius :math:`R = 2\|x^*\|` (``radius_factor = 2``), so the
  unconstrained minimiser :math:`x^*` is interior;
* the gradient bound over :math:`\mathcal X`:
  :math:`\|\nabla f_i(x)\| = |a_i^\top x - b_i|\,\|a_i\| \le
  (\|a_i\|R + |b_i|)\,\|a_i\| =: G_i`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["LeastSquares", "least_squares"]


class LeastSquares(NamedTuple):
    """A least-squares finite sum with its minimiser, bounds and costs (float64)."""

    A: np.ndarray  #: rows a_i, shape (n, d)
    b: np.ndarray  #: targets, shape (n,)
    x_star: np.ndarray  #: minimiser of f over the ball (interior), shape (d,)
    f_star: float  #: f(x_star)
    radius: float  #: R, the feasible ball's radius
    G: np.ndarray  #: Lipschitz bounds G_i over the ball, shape (n,)
    c: np.ndarray  #: costs c_i, shape (n,)


def least_squares(
    n: int = 3000,
    d: int = 50,
    *,
    L: float = 10.0,
    min_norm_frac: float = 0.1,
    noise: float = 1.0,
    radius_factor: float = 2.0,
    cost_low: float = 1.0,
    cost_high: float = 1000.0,
    seed: int = 0,
) -> LeastSquares:
    """The §4.4 least-squares instance (defaults: N = 3000, d = 50, L = 10, c ~ U[1, 1000]).

    Examples:
      >>> prob = least_squares(seed=0)
      >>> prob.A.shape, bool(np.linalg.norm(prob.A, axis=1).max() <= 10.0)
      ((3000, 50), True)
    """
    if n < 1 or d < 1:
        raise ValueError(f"n and d must be >= 1, got n={n}, d={d}")
    if not 0 < min_norm_frac <= 1:
        raise ValueError(f"min_norm_frac must lie in (0, 1], got {min_norm_frac}")
    if not (L > 0 and noise >= 0 and radius_factor >= 1):
        raise ValueError("need L > 0, noise >= 0 and radius_factor >= 1")
    if not 0 <= cost_low <= cost_high:
        raise ValueError(f"need 0 <= cost_low <= cost_high, got {cost_low}, {cost_high}")
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((n, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    norms = L * rng.uniform(min_norm_frac, 1.0, size=n)
    A = directions * norms[:, None]
    x_true = rng.standard_normal(d) / np.sqrt(d)
    b = A @ x_true + noise * rng.standard_normal(n)
    x_star = np.linalg.lstsq(A, b, rcond=None)[0]
    residual = A @ x_star - b
    f_star = float(0.5 * np.mean(residual**2))
    radius = radius_factor * float(np.linalg.norm(x_star))
    G = (norms * radius + np.abs(b)) * norms
    c = rng.uniform(cost_low, cost_high, size=n)
    return LeastSquares(A, b, x_star, f_star, radius, G, c)
