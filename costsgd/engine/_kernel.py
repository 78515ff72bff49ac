r"""The pure kernel of the Cost-Aware SGD engine: one step of Algorithm 1 on one trial.

:func:`sgd_step` is Algorithm 1's step given the problem type's projected step
(:class:`costsgd.problems.GradientStep`). It is not jitted and imports nothing
of the engine: the layers above scan it over steps, ``vmap`` it over trials and
jit once. The carried state (:class:`SGDState`) is kept apart from what is
recorded (:class:`Checkpoints`), as in blackjax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["Checkpoints", "SGDState", "sgd_step"]


class SGDState(NamedTuple):
    """What a run carries for one trial (Algorithm 1's state plus running outputs)."""

    x: Any  #: current iterate x_{t+1}, shape (d,)
    average: Any  #: average iterate x̄_t = mean of x_1..x_t, shape (d,)
    cost: Any  #: cumulative cost K_t = sum of c_{i_s}, s <= t, shape ()
    t: Any  #: steps taken t (int32), shape ()


class Checkpoints(NamedTuple):
    """What is recorded at the ``K`` checkpoints of one trial (shape ``(K,)`` each)."""

    cost: Any  #: cumulative cost K_t
    error_average: Any  #: f(x̄_t) - f*
    error_suffix: Any  #: f(suffix average) - f*
    error_last: Any  #: f(x_{t+1}) - f*


def sgd_step(
    state: SGDState,
    datum: Any,
    weight: Any,
    cost: Any,
    eta: Any,
    radius: Any,
    *,
    step: Callable,
) -> SGDState:
    r"""One step of Algorithm 1 on one trial, on component :math:`i_t` (pure; no jit inside).

    .. math::
       \bar x_t = \bar x_{t-1} + (x_t - \bar x_{t-1})/t,\quad
       x_{t+1} = \Pi\big(x_t - \eta_t \nabla f_{i_t}(x_t)/(n p_{i_t})\big),\quad
       \mathcal K_t = \mathcal K_{t-1} + c_{i_t}

    Args:
      state: :class:`SGDState` holding :math:`x_t`, :math:`\bar x_{t-1}`,
        :math:`\mathcal K_{t-1}` and :math:`t - 1`.
      datum: component :math:`i_t`'s datum, as the problem's step reads it
        (a slice of its :class:`costsgd.problems.GradientStep`'s prepared data).
      weight: :math:`1/(n p_{i_t})`.
      cost: :math:`c_{i_t}`.
      eta: step size :math:`\eta_t`.
      radius: :math:`R` of the feasible ball.
      step: the problem type's projected step
        (:attr:`costsgd.problems.GradientStep.step`).

    Returns:
      The next :class:`SGDState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from costsgd.problems import least_squares_step
      >>> s = SGDState(jnp.ones(2), jnp.zeros(2), jnp.zeros(()), jnp.int32(0))
      >>> s = sgd_step(s, (jnp.array([1.0, 0.0]), 0.0, 1.0), 1.0, 5.0, 0.5, 10.0,
      ...              step=least_squares_step)
      >>> s.x.tolist(), s.average.tolist(), float(s.cost), int(s.t)
      ([0.5, 1.0], [1.0, 1.0], 5.0, 1)
    """
    x = state.x
    t = state.t + 1
    # one scalar reciprocal, then a multiply per coordinate (a vector divide costs more)
    average = state.average + (x - state.average) * (1 / t.astype(x.dtype))
    return SGDState(step(x, datum, eta, weight, radius), average, state.cost + cost, t)
