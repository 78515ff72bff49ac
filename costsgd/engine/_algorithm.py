r"""Cost-Aware SGD as an init/step pair, to run in one's own loop (blackjax, optax style).

:func:`sgd_algorithm` builds Algorithm 1 for one problem and one sampling
distribution: ``init(x0)`` gives the first :class:`costsgd.SGDState`,
``step(key, state)`` draws :math:`i_t \sim p` from a Walker alias table (O(1))
and takes the step, ``update(state, i)`` takes the step on a given component.
All three are pure and jittable; the user owns the loop (``lax.scan``, a
Python loop, ``vmap`` over trials). The driver :func:`costsgd.cost_aware_sgd`
runs the same step (:func:`costsgd.sgd_step` on the problem type's
:class:`costsgd.problems.GradientStep`) over many trials and strategies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from costsgd.engine._arrays import component_step, engine_arrays
from costsgd.engine._checks import check_dtype, check_problem, check_strategies
from costsgd.engine._kernel import SGDState
from costsgd.engine._schedules import step_sizes

__all__ = ["SGDAlgorithm", "SGDInfo", "sgd_algorithm"]


class SGDInfo(NamedTuple):
    """What one step did (diagnostics, kept apart from the carried state)."""

    index: Any  #: the component i_t stepped on
    step_size: Any  #: the step size eta_t taken


class SGDAlgorithm(NamedTuple):
    """Algorithm 1 as pure functions: ``init``, ``step`` and ``update`` (see :func:`sgd_algorithm`)."""

    init: Callable[..., SGDState]  #: ``init(x0=None) -> SGDState``
    step: Callable[[Any, SGDState], tuple[SGDState, SGDInfo]]  #: ``step(key, state)``
    update: Callable[[SGDState, Any], tuple[SGDState, SGDInfo]]  #: ``update(state, i)``


def sgd_algorithm(problem: Any, p: Any, *, step_size: Any, dtype: Any = None) -> SGDAlgorithm:
    r"""Cost-Aware SGD (Algorithm 1) on ``problem`` with sampling distribution ``p``, as
    an init/step pair.

    .. math::
       i_t \sim p,\qquad
       x_{t+1} = \Pi\big(x_t - \eta_t \nabla f_{i_t}(x_t)/(n p_{i_t})\big),\qquad
       \bar x_t = \tfrac1t \textstyle\sum_{s \le t} x_s,\qquad
       \mathcal K_t = \mathcal K_{t-1} + c_{i_t}

    The problem's arrays are converted once here (to ``dtype``) and closed
    over by the returned functions.

    Args:
      problem: a finite-sum problem (:class:`costsgd.problems.FiniteSum`,
        :func:`costsgd.least_squares`, :func:`costsgd.logistic_regression`).
      p: the sampling distribution, shape ``(n,)``.
      step_size: a number :math:`\eta`, or a schedule: a function of the step
        number :math:`t = 1, 2, \dots` (an int array) returning :math:`\eta_t`
        (:func:`costsgd.inverse_time_schedule`).
      dtype: float32 or float64 (default JAX's default).

    Returns:
      An :class:`SGDAlgorithm` ``(init, step, update)``: ``init(x0=None)``
      projects ``x0`` (default the origin) onto the ball and returns an
      :class:`costsgd.SGDState` at :math:`t = 0` (on the host, outside ``jit``);
      ``step(key, state)`` draws
      :math:`i_t` with ``key`` and returns ``(state, SGDInfo)``;
      ``update(state, i)`` does the same on a given component ``i``.

    Examples:
      >>> import jax
      >>> import costsgd as cs
      >>> prob = cs.least_squares(100, 3, rng=0)
      >>> sgd = sgd_algorithm(prob, cs.optimal(prob.G, prob.c), step_size=1e-3)
      >>> def body(state, key):
      ...     state, info = sgd.step(key, state)
      ...     return state, info.index
      >>> state, drawn = jax.lax.scan(body, sgd.init(), jax.random.split(jax.random.key(0), 500))
      >>> int(state.t), drawn.shape
      (500, (500,))
      >>> bool(cs.suboptimality(prob, state.average) < cs.suboptimality(prob, np.zeros(3)))
      True
    """
    import jax.numpy as jnp

    from costsgd.draw import sample_jax
    from costsgd.problems import gradient_step

    P, squeeze = check_strategies(p, problem)
    if not squeeze:
        raise ValueError(f"p must have shape (n,) (one distribution), got {P.shape}")
    n = P.shape[1]
    dtype = check_dtype(dtype)
    step_spec = gradient_step(problem)
    x_star = None if problem.x_star is None else check_problem(problem, n, None)[0]
    known = np.zeros(0) if x_star is None else x_star
    arrays = engine_arrays(problem, P, known, dtype, step_spec, native=False)
    arrays = arrays._replace(
        step_data=_to_device(arrays.step_data),
        c=jnp.asarray(arrays.c),
        radius=jnp.asarray(arrays.radius),
    )
    weight = jnp.asarray(arrays.weight[0])
    table = _table(arrays)
    eta = _eta(step_size, dtype)

    def init(x0: Any = None) -> SGDState:
        start = check_problem(problem, n, x0)[1]
        zero = jnp.zeros((), dtype)
        return SGDState(
            jnp.asarray(start, dtype), jnp.zeros(start.shape, dtype), zero, jnp.int32(0)
        )

    def update(state: SGDState, i: Any) -> tuple[SGDState, SGDInfo]:
        eta_t = eta(state.t + 1)
        new = component_step(arrays, weight, step_spec.step, state, jnp.asarray(i), eta_t)
        return new, SGDInfo(jnp.asarray(i), eta_t)

    def step(key: Any, state: SGDState) -> tuple[SGDState, SGDInfo]:
        return update(state, sample_jax(key, table, ()))

    return SGDAlgorithm(init, step, update)


def _to_device(tree: Any):
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(jnp.asarray, tree)


def _table(arrays):
    import jax.numpy as jnp

    from costsgd.draw import AliasTable

    return AliasTable(None, jnp.asarray(arrays.alias[0]), jnp.asarray(arrays.threshold[0]))


def _eta(step_size: Any, dtype: Any) -> Callable[[Any], Any]:
    """``t -> eta_t`` in ``dtype``: a constant's value checked on the host, a schedule's
    first value checked there too and the rest computed in the loop."""
    import jax.numpy as jnp

    if callable(step_size):
        step_sizes(step_size, 1, 1, dtype)  # its first step, checked
        return lambda t: jnp.asarray(step_size(t), dtype)
    value = step_sizes(step_size, 1, 1, dtype)[0][0, 0]
    return lambda t: jnp.asarray(value, dtype)
