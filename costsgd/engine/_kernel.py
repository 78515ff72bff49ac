r"""The pure kernels of the Cost-Aware SGD engine: one step of Algorithm 1 on one trial.

:func:`sgd_step` is Algorithm 1's step for any problem's gradient;
:func:`linear_sgd_step` is the same step for a least-squares component. Neither
is jitted and neither imports anything of the engine: the layers above
(:mod:`costsgd.engine`) scan them over steps, ``vmap`` them over trials and
jit once. The carried state (:class:`SGDState`) is kept apart from what is
recorded (:class:`Checkpoints`), as in blackjax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = [
    "Checkpoints",
    "SGDState",
    "importance_weighted_gradient",
    "linear_sgd_step",
    "project",
    "sgd_step",
]


class SGDState(NamedTuple):
    """What the scan carries for one trial (Algorithm 1's state plus running outputs)."""

    x: Any  #: current iterate x_{t+1}, shape (d,)
    average: Any  #: average iterate x̄_t = mean of x_1..x_t, shape (d,)
    cost: Any  #: cumulative cost K_t = sum of c_{i_s}, s <= t, shape ()


class Checkpoints(NamedTuple):
    """What is recorded at the ``K`` checkpoints of one trial (shape ``(K,)`` each)."""

    cost: Any  #: cumulative cost K_t
    error_average: Any  #: f(x̄_t) - f*
    error_suffix: Any  #: f(suffix average) - f*
    error_last: Any  #: f(x_{t+1}) - f*


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

    norm = jnp.sqrt(jnp.sum(x * x))
    scale = jnp.minimum(1.0, radius / jnp.maximum(norm, jnp.finfo(x.dtype).tiny))
    scale = jnp.where(norm < jnp.inf, scale, jnp.nan)
    return x * scale.astype(x.dtype)


def importance_weighted_gradient(grad: Callable, x: Any, datum: Any, weight: Any):
    r"""The estimator of Algorithm 1, line 6: :math:`\tilde g = \nabla f_i(x)/(n p_i)`.

    ``weight`` is :math:`1/(n p_i)`. Over :math:`i \sim p` its mean is
    :math:`\nabla f(x)` (unbiased, §4.1).

    Examples:
      >>> import numpy as np
      >>> from costsgd.problems import least_squares_grad
      >>> importance_weighted_gradient(least_squares_grad, np.ones(2),
      ...                              (np.array([1.0, 0.0]), 0.0), 2.0)
      array([2., 0.])
    """
    return grad(x, datum) * weight


def sgd_step(
    state: SGDState,
    datum: Any,
    weight: Any,
    cost: Any,
    eta: Any,
    t: Any,
    radius: Any,
    *,
    grad: Callable,
) -> SGDState:
    r"""One step of Algorithm 1 on one trial (pure; no jit inside).

    .. math::
       \bar x_t = \bar x_{t-1} + (x_t - \bar x_{t-1})/t,\quad
       x_{t+1} = \Pi\big(x_t - \eta_t \nabla f_{i_t}(x_t)/(n p_{i_t})\big),\quad
       \mathcal K_t = \mathcal K_{t-1} + c_{i_t}

    Args:
      state: :class:`SGDState` holding :math:`x_t`, :math:`\bar x_{t-1}`, :math:`\mathcal K_{t-1}`.
      datum: component :math:`i_t`'s datum (a pytree slice of the problem's data).
      weight: :math:`1/(n p_{i_t})`.
      cost: :math:`c_{i_t}`.
      eta: step size :math:`\eta_t`.
      t: the step number, starting at 1.
      radius: :math:`R` of the feasible ball.
      grad: the problem's per-component gradient ``grad(x, datum)``.

    Returns:
      The next :class:`SGDState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from costsgd.problems import least_squares_grad
      >>> s = SGDState(jnp.ones(2), jnp.zeros(2), jnp.zeros(()))
      >>> s = sgd_step(s, (jnp.array([1.0, 0.0]), 0.0), 1.0, 5.0, 0.5, 1, 10.0,
      ...              grad=least_squares_grad)
      >>> s.x.tolist(), s.average.tolist(), float(s.cost)
      ([0.5, 1.0], [1.0, 1.0], 5.0)
    """
    x = state.x
    # one scalar reciprocal, then a multiply per coordinate (a vector divide costs more)
    average = state.average + (x - state.average) * (1 / t)
    g = importance_weighted_gradient(grad, x, datum, weight)
    x_next = project(x - eta * g, radius)
    return SGDState(x_next, average, state.cost + cost)


def linear_sgd_step(
    state: SGDState,
    datum: Any,
    a_norm2: Any,
    weight: Any,
    cost: Any,
    eta: Any,
    t: Any,
    radius: Any,
) -> SGDState:
    r""":func:`sgd_step` for a least-squares component, :math:`\nabla f_i(x) = (a_i^\top x - b_i)a_i`.

    With :math:`s = \eta_t (a_i^\top x_t - b_i)/(n p_i)` the step is
    :math:`y = x_t - s a_i` (Algorithm 1, line 6) and the projection's norm
    comes from the two reductions over :math:`x_t` and the precomputed
    :math:`\|a_i\|^2`,

    .. math:: \|y\|^2 = \|x_t\|^2 - 2s\,a_i^\top x_t + s^2\|a_i\|^2,

    so no reduction reads :math:`y`: the step is one pass of reductions over
    :math:`x_t` and one elementwise pass writing :math:`\Pi(y) = y\min(1, R/\|y\|)`.
    The result equals :func:`sgd_step`'s up to rounding.

    Args:
      state: :class:`SGDState` holding :math:`x_t`, :math:`\bar x_{t-1}`, :math:`\mathcal K_{t-1}`.
      datum: ``(a_i, b_i)``.
      a_norm2: :math:`\|a_i\|^2`.
      weight: :math:`1/(n p_{i_t})`.
      cost: :math:`c_{i_t}`.
      eta: step size :math:`\eta_t`.
      t: the step number, starting at 1.
      radius: :math:`R` of the feasible ball.

    Returns:
      The next :class:`SGDState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> s = SGDState(jnp.ones(2), jnp.zeros(2), jnp.zeros(()))
      >>> s = linear_sgd_step(s, (jnp.array([1.0, 0.0]), 0.0), 1.0, 1.0, 5.0, 0.5, 1, 10.0)
      >>> s.x.tolist(), s.average.tolist(), float(s.cost)
      ([0.5, 1.0], [1.0, 1.0], 5.0)
    """
    import jax.numpy as jnp

    a, b = datum
    x = state.x
    average = state.average + (x - state.average) * (1 / t)
    ax = jnp.sum(a * x)
    step = eta * weight * (ax - b)
    norm2 = jnp.sum(x * x) - 2 * step * ax + step * step * a_norm2
    norm = jnp.sqrt(jnp.maximum(norm2, 0))
    scale = jnp.minimum(1.0, radius / jnp.maximum(norm, jnp.finfo(x.dtype).tiny))
    scale = jnp.where(norm < jnp.inf, scale, jnp.nan)
    return SGDState((x - step * a) * scale.astype(x.dtype), average, state.cost + cost)
