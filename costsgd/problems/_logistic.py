r"""Regularised logistic regression with per-example gradient bounds and costs.

.. math::
   f_i(x) = \log\big(1 + e^{-y_i a_i^\top x}\big) + \frac\lambda2\|x\|^2,\qquad
   \nabla f_i(x) = -y_i\,\sigma(-y_i a_i^\top x)\,a_i + \lambda x,

with labels :math:`y_i \in \{-1, +1\}` and :math:`\sigma(z) = 1/(1 + e^{-z})`.
On the ball :math:`\|x\| \le R` the gradient's norm is at most

.. math:: G_i = \sigma(\|a_i\|R)\,\|a_i\| + \lambda R,

attained at :math:`x = -y_i R\,a_i/\|a_i\|`: the bound is tight and
heterogeneous through the row norms, as §4.4's least squares. The problem
brings its own step (:func:`logistic_step`: the linear-model step of
:func:`costsgd.problems.linear_step` with the ridge term as a shrink
:math:`1 - s\lambda`); it has no native loop, so the engine runs XLA's step.
The minimiser :math:`x^*` (unique: :math:`f` is :math:`\lambda`-strongly
convex) comes from Newton's method in float64, and the feasible radius is
:math:`R = 2\|x^*\|` by default, so :math:`x^*` is interior.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from costsgd._validate import as_generator, check_positive
from costsgd.problems._base import GradientStep
from costsgd.problems._linear import check_instance, linear_step, random_rows, row_norms2

__all__ = [
    "LogisticRegression",
    "logistic_grad",
    "logistic_loss",
    "logistic_regression",
    "logistic_step",
]


def logistic_loss(x, datum):
    r"""One component :math:`\log(1 + e^{-y_i a_i^\top x}) + \frac\lambda2\|x\|^2`.

    Args:
      x: point, shape ``(d,)``.
      datum: ``(a_i, y_i, lambda)``, shapes ``(d,)``, ``()``, ``()``.

    Returns:
      A scalar of ``x``'s backend (numpy or JAX).

    Examples:
      >>> round(float(logistic_loss(np.zeros(2), (np.array([1.0, 2.0]), 1.0, 0.5))), 6)
      0.693147
    """
    a, y, lam = datum
    xp = _namespace(x)
    return xp.logaddexp(0.0, -y * (a @ x)) + 0.5 * lam * (x @ x)


def logistic_grad(x, datum):
    r"""Gradient of one component, :math:`-y_i\sigma(-y_i a_i^\top x)\,a_i + \lambda x`.

    Examples:
      >>> logistic_grad(np.zeros(2), (np.array([1.0, 2.0]), 1.0, 0.5)).tolist()
      [-0.5, -1.0]
    """
    a, y, lam = datum
    return _residual(a @ x, y, _namespace(x)) * a + lam * x


def _namespace(x):
    if isinstance(x, np.ndarray | np.generic):
        return np
    import jax.numpy as jnp

    return jnp


def _residual(ax, y, xp):
    r""":math:`r = -y\,\sigma(-y\,a^\top x)`, the scalar factor of the loss term's gradient."""
    return -y * 0.5 * (1.0 + xp.tanh(-0.5 * y * ax))


def prepare_logistic(data: Any, dtype: Any) -> tuple[Any, Any, Any, Any]:
    r"""``(A, y, lambda)`` in ``dtype`` with :math:`\|a_i\|^2` appended: what the step reads."""
    A, y, lam = (np.asarray(v, dtype) for v in data)
    return A, y, lam, row_norms2(A).astype(dtype)


def logistic_step(x, datum, eta, weight, radius):
    r"""Algorithm 1's projected step on a logistic component.

    With :math:`s = \eta_t/(n p_i)` and :math:`r = -y_i\sigma(-y_i a_i^\top x_t)`,
    :math:`x_{t+1} = \Pi\big((1 - s\lambda)\,x_t - s r\,a_i\big)`, its norm from
    :math:`\|a_i\|^2` (:func:`costsgd.problems.linear_step`).

    The arguments are :func:`costsgd.problems.least_squares_step`'s, with the
    datum ``(a_i, y_i, lambda, ||a_i||^2)``; it returns :math:`x_{t+1}`.

    Examples:
      >>> import jax.numpy as jnp
      >>> x = logistic_step(jnp.zeros(2), (jnp.array([1.0, 2.0]), 1.0, 0.5, 5.0), 1.0, 1.0, 10.0)
      >>> x.tolist()
      [0.5, 1.0]
    """
    import jax.numpy as jnp

    a, y, lam, a_norm2 = datum
    ax = jnp.sum(a * x)
    s = eta * weight
    return linear_step(x, a, a_norm2, ax, s * _residual(ax, y, jnp), radius, shrink=1 - s * lam)


#: How the engine steps logistic components.
STEP = GradientStep(logistic_step, prepare_logistic)


class LogisticRegression(NamedTuple):
    r"""Regularised logistic regression with its minimiser, bounds and costs (float64).

    Follows the :class:`costsgd.problems.FiniteSum` interface (``loss``, ``grad``,
    ``data``) and brings its own :class:`costsgd.problems.GradientStep`. The
    error :math:`f(x) - f^*` is the mean loss minus ``f_star``
    (``hessian`` is ``None``: :math:`f` is not quadratic).
    """

    A: np.ndarray  #: rows a_i, shape (n, d)
    y: np.ndarray  #: labels in {-1, +1}, shape (n,)
    regularization: float  #: lambda > 0
    x_star: np.ndarray  #: minimiser of f (interior to the ball), shape (d,)
    f_star: float  #: f(x_star)
    radius: float  #: R, the feasible ball's radius
    G: np.ndarray  #: gradient bounds G_i over the ball, shape (n,)
    c: np.ndarray  #: costs c_i, shape (n,)

    loss = staticmethod(logistic_loss)
    grad = staticmethod(logistic_grad)
    gradient_step = STEP  #: the engine's step for these components
    hessian = None  #: not quadratic: the error is objective - f_star

    @property
    def data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""``(A, y, lambda)``: component ``i``'s datum is ``(A[i], y[i], lambda)``."""
        return (self.A, self.y, np.full(self.y.shape, self.regularization))


def logistic_regression(
    n: int = 1000,
    d: int = 10,
    *,
    regularization: float = 0.1,
    L: float = 5.0,
    min_norm_frac: float = 0.1,
    radius_factor: float = 2.0,
    cost_low: float = 1.0,
    cost_high: float = 1000.0,
    rng: Any = 0,
) -> LogisticRegression:
    r"""A regularised logistic regression instance with per-example :math:`G_i` and costs.

    Rows :math:`a_i = L s_i u_i` with :math:`s_i \sim \mathcal U[s_{min}, 1]` and
    :math:`u_i` uniform on the sphere; labels drawn from the logistic model of
    :math:`x_{true} \sim \mathcal N(0, I/d)`,
    :math:`P(y_i = 1) = \sigma(a_i^\top x_{true})`; costs
    :math:`c_i \sim \mathcal U[c_{low}, c_{high}]`.

    Args:
      n: number of components.
      d: dimension.
      regularization: :math:`\lambda > 0`.
      L: the bound on the row norms.
      min_norm_frac: row norms are ``L * U[min_norm_frac, 1]``.
      radius_factor: feasible radius ``R = radius_factor * ||x*||`` (``>= 1``).
      cost_low: costs are ``U[cost_low, cost_high]``.
      cost_high: see ``cost_low``.
      rng: an int seed, a ``numpy.random.Generator`` or ``None`` (fresh entropy).

    Returns:
      A :class:`LogisticRegression`.

    Examples:
      >>> prob = logistic_regression(200, 3, rng=0)
      >>> g = np.mean([logistic_grad(prob.x_star, d) for d in zip(*prob.data)], axis=0)
      >>> bool(np.linalg.norm(g) < 1e-10), bool(np.linalg.norm(prob.x_star) < prob.radius)
      (True, True)
    """
    lam = check_positive(regularization, "regularization")
    n, d, L = check_instance(
        n, d, L, min_norm_frac, radius_factor, cost_low=cost_low, cost_high=cost_high
    )
    rng = as_generator(rng)
    A, norms = random_rows(n, d, L, min_norm_frac, rng)
    x_true = rng.standard_normal(d) / np.sqrt(d)
    y = np.where(rng.uniform(size=n) < _sigmoid(A @ x_true), 1.0, -1.0)
    c = rng.uniform(cost_low, cost_high, size=n)
    x_star = _minimise(A, y, lam)
    radius = radius_factor * max(float(np.linalg.norm(x_star)), np.finfo(float).tiny)
    G = _sigmoid(norms * radius) * norms + lam * radius
    f_star = float(np.mean(np.logaddexp(0.0, -y * (A @ x_star))) + 0.5 * lam * x_star @ x_star)
    return LogisticRegression(A, y, lam, x_star, f_star, radius, G, c)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _minimise(A: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """The unique minimiser of the mean loss (Newton's method with backtracking, float64)."""
    n, d = A.shape

    def value(x):
        return np.mean(np.logaddexp(0.0, -y * (A @ x))) + 0.5 * lam * x @ x

    x = np.zeros(d)
    for _ in range(100):
        margin = y * (A @ x)
        s = _sigmoid(-margin)
        grad = -(A.T @ (y * s)) / n + lam * x
        if np.linalg.norm(grad) <= 1e-13 * max(1.0, np.linalg.norm(x)):
            break
        hess = (A.T * (s * (1 - s))) @ A / n + lam * np.eye(d)
        direction = np.linalg.solve(hess, grad)
        step, f0 = 1.0, value(x)
        while value(x - step * direction) > f0 - 0.25 * step * grad @ direction and step > 1e-8:
            step /= 2
        x = x - step * direction
    return x
