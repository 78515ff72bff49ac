r"""Least squares, the problem of §4.4 and Figure 2, with its own fast step and native loop.

:math:`f_i(x) = \frac12(a_i^\top x - b_i)^2`, so
:math:`\nabla f_i(x) = (a_i^\top x - b_i)\,a_i`: the step is
:func:`costsgd.problems.linear_step`'s (the norm of the stepped point from
:math:`\|a_i\|^2`, prepared once per run), and on CPUs the engine's native
backend runs many steps in one compiled loop (``_least_squares.cc``).

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

from typing import Any, NamedTuple

import numpy as np

from costsgd._validate import as_generator
from costsgd.problems._base import GradientStep, NativeLoop
from costsgd.problems._least_squares_native import SOURCE, least_squares_steps, native_arrays
from costsgd.problems._linear import check_instance, linear_step, random_rows, row_norms2

__all__ = [
    "LeastSquares",
    "least_squares",
    "least_squares_grad",
    "least_squares_loss",
    "least_squares_step",
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


def prepare_least_squares(data: Any, dtype: Any) -> tuple[Any, Any, Any]:
    r"""``(A, b)`` in ``dtype`` with :math:`\|a_i\|^2` appended: what the step reads."""
    A, b = (np.asarray(v, dtype) for v in data)
    return A, b, row_norms2(A).astype(dtype)


def least_squares_step(x, datum, eta, weight, radius):
    r"""Algorithm 1's projected step on a least-squares component.

    With :math:`s = \eta_t (a_i^\top x_t - b_i)/(n p_i)` the step is
    :math:`\Pi(x_t - s a_i)`, its norm from :math:`\|a_i\|^2`
    (:func:`costsgd.problems.linear_step`). Equals the generic step up to rounding.

    Args:
      x: the iterate :math:`x_t`.
      datum: ``(a_i, b_i, ||a_i||^2)``.
      eta: the step size :math:`\eta_t`.
      weight: :math:`1/(n p_i)`.
      radius: :math:`R`.

    Returns:
      :math:`x_{t+1}`.

    Examples:
      >>> import jax.numpy as jnp
      >>> least_squares_step(jnp.ones(2), (jnp.array([1.0, 0.0]), 0.0, 1.0), 0.5, 1.0, 10.0).tolist()
      [0.5, 1.0]
    """
    import jax.numpy as jnp

    a, b, a_norm2 = datum
    ax = jnp.sum(a * x)
    return linear_step(x, a, a_norm2, ax, eta * weight * (ax - b), radius)


#: How the engine steps least-squares components: the step above, and the native loop.
STEP = GradientStep(
    least_squares_step,
    prepare_least_squares,
    NativeLoop(SOURCE, "CostsgdLinearSgdSteps", native_arrays, least_squares_steps),
)


class LeastSquares(NamedTuple):
    """The §4.4 least-squares finite sum with its minimiser, bounds and costs (float64).

    Follows the :class:`costsgd.problems.FiniteSum` interface (``loss``, ``grad``, ``data``,
    ``hessian``) and brings its own :class:`costsgd.problems.GradientStep`.
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
    gradient_step = STEP  #: the engine's step for these components (fast step, native loop)

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
    n, d, L = check_instance(
        n, d, L, min_norm_frac, radius_factor, noise=noise, cost_low=cost_low, cost_high=cost_high
    )
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
    A, norms = random_rows(n, d, L, min_norm_frac, rng)
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
