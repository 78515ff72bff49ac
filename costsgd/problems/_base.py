r"""The finite-sum interface the engine reads, and how a problem's components are stepped.

A finite-sum problem (§3 of the paper) is
:math:`f(x) = \frac1n\sum_{i=1}^n f_i(x)` over a feasible ball
:math:`\mathcal X = \{\|x\| \le R\}`, where querying :math:`\nabla f_i` costs
:math:`c_i \ge 0` and :math:`\|\nabla f_i(x)\| \le G_i` on :math:`\mathcal X`.

A problem type brings its own gradient step (:class:`GradientStep`, the
engine's extension point): how its per-component arrays are prepared once per
run, the projected step on one component, and optionally a compiled loop of
many steps (:class:`NativeLoop`). :func:`gradient_step` returns a problem's
own step, or the generic one built from its ``grad`` (or ``jax.grad`` of its
``loss``), which serves any :class:`FiniteSum`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "FiniteSum",
    "GenericStep",
    "GradientStep",
    "NativeLoop",
    "gradient_step",
    "objective",
    "project",
    "suboptimality",
]


class NativeLoop(NamedTuple):
    """A compiled loop of many steps of a problem type, run as an XLA custom call on CPUs.

    The engine builds ``source`` once per machine with the C++ compiler (its
    ``native`` backend) and registers the handler ``symbol`` under a target
    name; then, between two events of a run, it calls
    ``call(target, x, average, cost, indices, eta, bounds, arrays, weight, c, radius)``
    instead of a loop of :attr:`GradientStep.step`, where ``arrays`` is
    ``prepare(data)`` of the step's prepared data. The loop must take the same
    steps as :attr:`GradientStep.step` (the engine's tests compare them).
    """

    source: Path  #: C++ source of an XLA FFI handler
    symbol: str  #: the handler's exported name
    prepare: Callable[[Any], Any]  #: prepared step data -> the arrays the loop reads (host)
    call: Callable[..., Any]  #: ``call(target, x, average, cost, indices, eta, bounds, ...)``


class GradientStep(NamedTuple):
    r"""How the engine steps the components of a problem type (its extension point).

    ``step(x, datum, eta, weight, radius)`` returns Algorithm 1's projected step
    on one component,
    :math:`\Pi\big(x - \eta\,\nabla f_i(x)\,w_i\big)` with :math:`w_i = 1/(n p_i)`,
    where ``datum`` is component ``i``'s slice of ``prepare(data, dtype)``
    (computed once per run on the host: a step may read more per component than
    the loss does, such as :math:`\|a_i\|^2`). Both must be hashable and equal
    across calls (module-level functions), so the engine's compiled program is
    reused.
    """

    step: Callable[..., Any]  #: ``step(x, datum, eta, weight, radius) -> x_next``
    prepare: Callable[[Any, Any], Any] | None = None  #: ``prepare(data, dtype)``; None: ``data``
    native: NativeLoop | None = None  #: a compiled loop of many steps (CPU), if the type has one


def project(x: Any, radius: Any):
    r"""Euclidean projection onto the ball :math:`\{\|x\| \le R\}` (``R = inf``: identity).

    .. math:: \Pi(x) = x\,\min\big(1, R/\|x\|\big)

    When :math:`\|x\|^2` overflows the dtype (a step far too large for its
    precision) the result is NaN rather than a silently wrong point, so the run
    is reported as diverged.

    Examples:
      >>> import jax.numpy as jnp
      >>> project(jnp.array([3.0, 4.0]), 1.0).tolist()
      [0.6000000238418579, 0.800000011920929]
    """
    import jax.numpy as jnp

    return x * ball_scale(jnp.sum(x * x), radius, x.dtype)


def ball_scale(norm2: Any, radius: Any, dtype: Any):
    r"""The factor :math:`\min(1, R/\|y\|)` that projects a point of squared norm ``norm2``
    onto the ball; NaN when the norm overflows (the run is then reported as diverged)."""
    import jax.numpy as jnp

    norm = jnp.sqrt(jnp.maximum(norm2, 0))
    scale = jnp.minimum(1.0, radius / jnp.maximum(norm, jnp.finfo(dtype).tiny))
    return jnp.where(norm < jnp.inf, scale, jnp.nan).astype(dtype)


class GenericStep(NamedTuple):
    r"""The projected step from any per-component gradient:
    :math:`\Pi\big(x - \eta\,(\nabla f_i(x)\,w_i)\big)`.

    Examples:
      >>> import numpy as np
      >>> from costsgd.problems import least_squares_grad, least_squares_loss
      >>> step = GenericStep(least_squares_loss, least_squares_grad)
      >>> step(np.ones(2), (np.array([1.0, 0.0]), 0.0), 0.5, 1.0, 10.0).tolist()
      [0.5, 1.0]
    """

    loss: Callable[[Any, Any], Any] | None  #: ``loss(x, datum)``, f_i (unused given ``grad``)
    grad: Callable[[Any, Any], Any] | None = None  #: its gradient; None: ``jax.grad(loss)``

    def __call__(self, x, datum, eta, weight, radius):
        import jax
        import jax.numpy as jnp

        x = jnp.asarray(x)
        grad = self.grad if self.grad is not None else jax.grad(self.loss)
        return project(x - eta * (grad(x, datum) * weight), radius)


def gradient_step(problem: Any) -> GradientStep:
    """The problem's own :class:`GradientStep` (its ``gradient_step`` attribute), or the
    generic step from ``problem.grad`` (``jax.grad(problem.loss)`` when that is None).

    Examples:
      >>> import costsgd as cs
      >>> gradient_step(cs.least_squares(20, 2)).native is not None
      True
    """
    own = getattr(problem, "gradient_step", None)
    if own is not None:
        if not isinstance(own, GradientStep):
            raise TypeError(
                f"problem.gradient_step must be a GradientStep, got {type(own).__name__}"
            )
        return own
    return GradientStep(GenericStep(problem.loss, problem.grad))


class FiniteSum(NamedTuple):
    r"""A user-defined finite sum :math:`f = \frac1n\sum_i f_i` over :math:`\|x\|\le R`.

    ``loss`` and ``grad`` must be pure JAX-traceable functions of
    ``(x, datum)``; define them at module level (not as fresh lambdas per call)
    so the engine's compiled code is reused. ``grad=None`` uses
    ``jax.grad(loss)``. ``gradient_step`` replaces the generic step (see
    :class:`GradientStep`).

    Examples:
      >>> import numpy as np
      >>> from costsgd.problems import least_squares_loss
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
    gradient_step: GradientStep | None = None  #: the step the engine takes; None: generic


def objective(problem: Any, x: Any):
    r"""The full objective :math:`f(x) = \frac1n\sum_i f_i(x)` at ``x`` (O(nd)).

    Args:
      problem: a :class:`FiniteSum`-like problem.
      x: point, shape ``(d,)`` (numpy or JAX).

    Returns:
      A JAX scalar.

    Examples:
      >>> import costsgd as cs
      >>> prob = cs.least_squares(200, 5, rng=1)
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
      >>> import costsgd as cs
      >>> prob = cs.least_squares(200, 5, rng=1)
      >>> float(suboptimality(prob, prob.x_star))
      0.0
    """
    import jax.numpy as jnp

    x = jnp.asarray(x)
    if problem.hessian is not None:
        e = x - jnp.asarray(problem.x_star, x.dtype)
        return 0.5 * e @ (jnp.asarray(problem.hessian, x.dtype) @ e)
    return objective(problem, x) - problem.f_star
