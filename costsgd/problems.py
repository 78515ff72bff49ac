r"""Finite-sum problems with known per-component gradient bounds and costs.

A finite-sum problem (§3 of the paper) is
:math:`f(x) = \frac1n\sum_{i=1}^n f_i(x)` over a feasible ball
:math:`\mathcal X = \{\|x\| \le R\}`, where querying :math:`\nabla f_i` costs
:math:`c_i \ge 0` and :math:`\|\nabla f_i(x)\| \le G_i` on :math:`\mathcal X`.
Every problem exposes the same interface, which is all the SGD engine
(:func:`costsgd.cost_aware_sgd`) reads:

* ``data``: a pytree of arrays whose leading axis has length ``n`` (component
  ``i``'s datum is ``tree_map(lambda a: a[i], data)``);
* ``loss(x, datum)`` and ``grad(x, datum)``: :math:`f_i(x)` and
  :math:`\nabla f_i(x)`, pure and JAX-traceable (module-level functions, so
  jitted code that receives them compiles once);
* ``x_star``, ``f_star``: a minimiser over :math:`\mathcal X` (``None`` when
  only the minimum is known) and :math:`f^* = f(x^*)`; ``radius``: :math:`R`
  (``inf`` for no constraint);
* ``G``, ``c``: the bounds and costs, float64 numpy, shape ``(n,)``;
* ``hessian``: for a quadratic :math:`f` its Hessian :math:`H` (else ``None``);
  then the engine evaluates :math:`f(x) - f^* = \frac12 e^\top H e`,
  :math:`e = x - x^*`, exact when :math:`x^*` is an unconstrained minimiser and
  free of the cancellation of differencing two float32 losses.

:class:`FiniteSum` builds a user-defined problem; :func:`least_squares` builds
the §4.4 instance (:class:`LeastSquares`).

The §4.4 set-up: :math:`f_i(x) = \frac12(a_i^\top x - b_i)^2`, ``N = 3000``
points in ``d = 50``, row norms bounded by ``L = 10`` and heterogeneous, costs
:math:`c_i \sim \mathcal U[1, 1000]`. Choices the paper leaves open, made here
and exposed as parameters:

* row norms :math:`\|a_i\| = L\,s_i` with :math:`s_i \sim \mathcal U[s_{min}, 1]`
  (``min_norm_frac = 0.1``), directions uniform on the sphere;
* targets :math:`b_i = a_i^\top x_{true} + \sigma\xi_i` with
  :math:`x_{true} \sim \mathcal N(0, I/d)` and noise ``noise = 1.0``;
* feasible radius :math:`R = 2\|x^*\|` (``radius_factor = 2``), so the
  unconstrained minimiser :math:`x^*` is interior;
* the gradient bound over :math:`\mathcal X` (``gradient_bound``), both valid
  since :math:`\|\nabla f_i(x)\| = |a_i^\top x - b_i|\,\|a_i\|`:

  - ``"ball"`` (default): the exact supremum over the ball,
    :math:`G_i = (\|a_i\|R + |b_i|)\,\|a_i\|` (attained at
    :math:`x = -\mathrm{sign}(b_i) R\,a_i/\|a_i\|`), which grows like
    :math:`\|a_i\|^2`;
  - ``"row_norm"``: one residual bound for all components,
    :math:`G_i = \rho\,\|a_i\|` with :math:`\rho = \max_j (\|a_j\|R + |b_j|)`,
    proportional to the row norm as §4.4's wording ("norms bounded by L ...
    ensures that the Lipschitz constants G_i are bounded but heterogeneous")
    suggests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from costsgd._validate import as_generator, check_positive, check_positive_int

__all__ = [
    "FiniteSum",
    "LeastSquares",
    "least_squares",
    "least_squares_grad",
    "least_squares_loss",
    "objective",
    "suboptimality",
]

_BOUNDS = ("ball", "row_norm")


def least_squares_loss(x, datum):
    r"""One least-squares component :math:`f_i(x) = \frac12(a_i^\top x - b_i)^2`.

    Args:
      x: point, shape ``(d,)``.
      datum: ``(a_i, b_i)``, shapes ``(d,)`` and ``()``.

    Returns:
      A scalar of ``x``'s backend (numpy or JAX).

    Examples:
      >>> float(least_squares_loss(np.array([1.0, 1.0]), (np.array([1.0, 2.0]), 1.0)))
      2.0
    """
    a, b = datum
    return 0.5 * (a @ x - b) ** 2


def least_squares_grad(x, datum):
    r"""Gradient of one component, :math:`\nabla f_i(x) = (a_i^\top x - b_i)\,a_i`.

    Examples:
      >>> least_squares_grad(np.array([1.0, 1.0]), (np.array([1.0, 2.0]), 1.0))
      array([2., 4.])
    """
    a, b = datum
    return (a @ x - b) * a


class FiniteSum(NamedTuple):
    r"""A user-defined finite sum :math:`f = \frac1n\sum_i f_i` over :math:`\|x\|\le R`.

    ``loss`` and ``grad`` must be pure JAX-traceable functions of
    ``(x, datum)``; define them at module level (not as fresh lambdas per call)
    so the engine's compiled code is reused. ``grad=None`` uses
    ``jax.grad(loss)``.

    Examples:
      >>> import numpy as np
      >>> A = np.array([[1.0, 0.0], [0.0, 2.0]]); b = np.array([1.0, 2.0])
      >>> prob = FiniteSum(least_squares_loss, (A, b), G=np.array([1.0, 4.0]),
      ...                  c=np.array([1.0, 1.0]), radius=10.0,
      ...                  x_star=np.array([1.0, 1.0]), f_star=0.0)
      >>> float(objective(prob, np.zeros(2)))
      1.25
    """

    loss: Callable[[Any, Any], Any]  #: f_i(x, datum) -> scalar
    data: Any  #: pytree of arrays with leading axis n
    G: np.ndarray  #: bounds G_i >= ||grad f_i(x)|| on the ball, shape (n,)
    c: np.ndarray  #: costs c_i >= 0, shape (n,)
    radius: float  #: R (inf: unconstrained)
    x_star: np.ndarray | None  #: a minimiser over the ball, shape (d,); None: only f* known
    f_star: float  #: f(x_star), the minimum
    grad: Callable[[Any, Any], Any] | None = None  #: grad f_i(x, datum); None: jax.grad(loss)
    hessian: np.ndarray | None = None  #: H for quadratic f (error = ½ eᵀHe), else None


class LeastSquares(NamedTuple):
    """The §4.4 least-squares finite sum with its minimiser, bounds and costs (float64).

    Follows the :class:`FiniteSum` interface (``loss``, ``grad``, ``data``,
    ``hessian``), so it goes to the engine as it is.
    """

    A: np.ndarray  #: rows a_i, shape (n, d)
    b: np.ndarray  #: targets, shape (n,)
    x_star: np.ndarray  #: minimiser of f over the ball (interior), shape (d,)
    f_star: float  #: f(x_star)
    radius: float  #: R, the feasible ball's radius
    G: np.ndarray  #: Lipschitz bounds G_i over the ball, shape (n,)
    c: np.ndarray  #: costs c_i, shape (n,)

    loss = staticmethod(least_squares_loss)
    grad = staticmethod(least_squares_grad)

    @property
    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, b)``: component ``i``'s datum is ``(A[i], b[i])``."""
        return (self.A, self.b)

    @property
    def hessian(self) -> np.ndarray:
        r""":math:`H = A^\top A / n`."""
        return self.A.T @ self.A / self.A.shape[0]


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
    gradient_bound: str = "ball",
    rng: Any = 0,
) -> LeastSquares:
    """The §4.4 least-squares instance (defaults: N = 3000, d = 50, L = 10, c ~ U[1, 1000]).

    Args:
      n: number of components (``n >= d`` for a unique minimiser).
      d: dimension.
      L: the bound on the row norms.
      min_norm_frac: row norms are ``L * U[min_norm_frac, 1]``.
      noise: standard deviation of the target noise.
      radius_factor: feasible radius ``R = radius_factor * ||x*||`` (``>= 1``).
      cost_low: costs are ``U[cost_low, cost_high]``.
      cost_high: see ``cost_low``.
      gradient_bound: ``"ball"`` or ``"row_norm"`` (see the module docstring).
      rng: an int seed, a ``numpy.random.Generator`` or ``None`` (fresh
        entropy); the default 0 gives the same instance every time.

    Returns:
      A :class:`LeastSquares`.

    Examples:
      >>> prob = least_squares(rng=0)
      >>> prob.A.shape, bool(np.linalg.norm(prob.A, axis=1).max() <= 10.0)
      ((3000, 50), True)
    """
    n, d = check_positive_int(n, "n"), check_positive_int(d, "d")
    L = check_positive(L, "L")
    if not 0 < check_positive(min_norm_frac, "min_norm_frac") <= 1:
        raise ValueError(f"min_norm_frac must lie in (0, 1], got {min_norm_frac}")
    if check_positive(radius_factor, "radius_factor") < 1:
        raise ValueError(f"radius_factor must be >= 1, got {radius_factor}")
    for name, value in (("noise", noise), ("cost_low", cost_low), ("cost_high", cost_high)):
        if value != 0:
            check_positive(value, name)  # finite and > 0 (or exactly 0)
    if cost_low > cost_high:
        raise ValueError(f"need cost_low <= cost_high, got {cost_low}, {cost_high}")
    if gradient_bound not in _BOUNDS:
        raise ValueError(f"gradient_bound must be one of {_BOUNDS}, got {gradient_bound!r}")
    rng = as_generator(rng)
    with np.errstate(over="ignore", invalid="ignore"):
        prob = _least_squares(
            n, d, L, min_norm_frac, noise, radius_factor, cost_low, cost_high, gradient_bound, rng
        )
    if not all(np.all(np.isfinite(x)) for x in (prob.A, prob.b, prob.x_star, prob.f_star, prob.G)):
        raise ValueError(
            f"L={L!r}, noise={noise!r} and radius_factor={radius_factor!r} overflow float64:"
            " the instance is not finite"
        )
    return prob


def _least_squares(
    n, d, L, min_norm_frac, noise, radius_factor, cost_low, cost_high, gradient_bound, rng
) -> LeastSquares:
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
    residual_bound = norms * radius + np.abs(b)  # sup over the ball of |a_i^T x - b_i|
    if gradient_bound == "ball":
        G = residual_bound * norms
    else:
        G = residual_bound.max() * norms
    c = rng.uniform(cost_low, cost_high, size=n)
    return LeastSquares(A, b, x_star, f_star, radius, G, c)


def objective(problem: Any, x: Any):
    r"""The full objective :math:`f(x) = \frac1n\sum_i f_i(x)` at ``x`` (O(nd)).

    Args:
      problem: a :class:`FiniteSum`-like problem.
      x: point, shape ``(d,)`` (numpy or JAX).

    Returns:
      A JAX scalar.

    Examples:
      >>> prob = least_squares(200, 5, rng=1)
      >>> bool(abs(float(objective(prob, prob.x_star)) - prob.f_star) < 1e-5 * prob.f_star)
      True
    """
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(x)
    data = jax.tree_util.tree_map(lambda a: jnp.asarray(a, x.dtype), problem.data)
    return jnp.mean(jax.vmap(problem.loss, in_axes=(None, 0))(x, data))


def suboptimality(problem: Any, x: Any):
    r"""The error :math:`f(x) - f(x^*)`: :math:`\frac12 e^\top H e` when the problem is
    quadratic (``hessian`` given, no cancellation), else ``objective - f_star``.

    Examples:
      >>> prob = least_squares(200, 5, rng=1)
      >>> float(suboptimality(prob, prob.x_star))
      0.0
    """
    import jax.numpy as jnp

    x = jnp.asarray(x)
    if problem.hessian is not None:
        e = x - jnp.asarray(problem.x_star, x.dtype)
        return 0.5 * e @ (jnp.asarray(problem.hessian, x.dtype) @ e)
    return objective(problem, x) - problem.f_star
