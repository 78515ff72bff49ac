r"""The pure kernels of the Cost-Aware SGD engine: one step, and one trial's scan.

:func:`sgd_step` is Algorithm 1's step on one trial; :func:`run_trial` scans it
over the steps of one trial and records :class:`Checkpoints`. Neither is jitted:
:func:`costsgd.sgd.cost_aware_sgd` jits once, over ``vmap`` of these
(:mod:`costsgd.sgd_shard`). The carried state (:class:`SGDState`) is kept apart
from what is recorded (:class:`Checkpoints`), as in blackjax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from costsgd.sgd_native import linear_sgd_steps

__all__ = [
    "Checkpoints",
    "EngineArrays",
    "EventSchedule",
    "SGDState",
    "TrialInputs",
    "error_function",
    "importance_weighted_gradient",
    "linear_sgd_step",
    "project",
    "run_trial",
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


class EngineArrays(NamedTuple):
    """Problem and strategy arrays passed to the jitted code as arguments.

    Never closed over: large constants are slow to compile and would make the
    compiled program depend on the data (no reuse across problems of one shape).
    """

    data: Any  #: pytree, leading axis n
    c: Any  #: (n,) costs
    weight: Any  #: (S, n): 1 / (n p_i), 0 where p_i = 0
    threshold: Any  #: (S, n) uint32 alias thresholds
    alias: Any  #: (S, n) int32 alias columns
    radius: Any  #: () radius R of the feasible ball
    x_star: Any  #: (d,) minimiser
    f_star: Any  #: () optimal value
    hessian: Any  #: (d, d) or None
    a_norm2: Any = None  #: (n,) ‖a_i‖² for least-squares data (a, b), else None
    rows: Any = None  #: (n, w) a padded for the native step loop (costsgd.sgd_native), else None


class EventSchedule(NamedTuple):
    """The steps at which something is recorded (shared by every trial)."""

    events: Any  #: (2K,) int32: distinct event steps, increasing, padded with T + 1
    slot: Any  #: (T,) int32: checkpoint index written after step t, or -1
    anchor: Any  #: (T,) bool: some suffix starts right after step t
    steps: Any  #: (K,) checkpoint steps t_k
    anchor_steps: Any  #: (K,) a_k = t_k - ceil(alpha t_k)


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


def error_function(arrays: EngineArrays, loss: Callable) -> Callable:
    r""":math:`f(x) - f^*` for one point: ½eᵀHe (quadratic, :math:`e = x - x^*`) or the
    mean loss minus :math:`f^*` (O(nd); evaluated only at checkpoints)."""
    import jax
    import jax.numpy as jnp

    if arrays.hessian is not None:

        def error(x):
            e = x - arrays.x_star
            return 0.5 * e @ (arrays.hessian @ e)

    else:

        def error(x):
            return jnp.mean(jax.vmap(loss, in_axes=(None, 0))(x, arrays.data)) - arrays.f_star

    return error


class TrialInputs(NamedTuple):
    """One strategy's arrays and one trial's randomness, as :func:`run_trial` reads them."""

    weight: Any  #: (n,) 1 / (n p_i)
    threshold: Any  #: (n,) alias thresholds
    alias: Any  #: (n,) alias columns
    eta: Any  #: (T,) step sizes
    source: Any  #: a PRNG key, or (T,) pre-drawn indices
    x0: Any  #: (d,) start


def _record(error, schedule, state, anchors, rec, t, slot):
    """Write checkpoint ``slot``: cost and the errors of x̄_t, the suffix average and x_{t+1}."""
    dtype = state.x.dtype
    tf = t.astype(dtype)
    a = schedule.anchor_steps[slot].astype(dtype)
    suffix = (tf * state.average - anchors[slot]) / (tf - a)
    return Checkpoints(
        rec.cost.at[slot].set(state.cost),
        rec.error_average.at[slot].set(error(state.average)),
        rec.error_suffix.at[slot].set(error(suffix)),
        rec.error_last.at[slot].set(error(state.x)),
    )


def _one_step(arrays, inputs, grad, state, i, eta, t):
    """Step ``t`` of :func:`sgd_step` on component ``i`` (validated or drawn in range)."""
    import jax

    def take(a):
        return a.at[i].get(mode="promise_in_bounds")

    datum = jax.tree_util.tree_map(take, arrays.data)
    if arrays.a_norm2 is not None:
        return linear_sgd_step(
            state,
            datum,
            take(arrays.a_norm2),
            take(inputs.weight),
            take(arrays.c),
            eta,
            t.astype(state.x.dtype),
            arrays.radius,
        )
    return sgd_step(
        state,
        datum,
        take(inputs.weight),
        take(arrays.c),
        eta,
        t.astype(state.x.dtype),
        arrays.radius,
        grad=grad,
    )


def _run_steps(arrays, inputs, grad, state, span, indices, offset):
    """Steps t = span[0]..span[1] (inclusive); step t uses ``indices[t - 1 - offset]``.

    With ``arrays.rows`` (least-squares components on a CPU) the steps run in
    the compiled loop of :func:`costsgd.sgd_native.linear_sgd_steps`, else in a
    ``fori_loop`` of :func:`linear_sgd_step` or :func:`sgd_step`.
    """
    from jax import lax

    if arrays.rows is not None:
        import jax.numpy as jnp

        bounds = jnp.stack([span[0], span[1], offset]).astype(jnp.int32)
        x, average, cost = linear_sgd_steps(
            state.x, state.average, state.cost, indices, inputs.eta, bounds, arrays.rows,
            arrays.data[1], arrays.a_norm2, inputs.weight, arrays.c, arrays.radius,
        )  # fmt: skip
        return SGDState(x, average, cost)

    def body(t, state):
        return _one_step(arrays, inputs, grad, state, indices[t - 1 - offset], inputs.eta[t - 1], t)

    return lax.fori_loop(span[0], span[1] + 1, body, state)


def _scan_chunk(arrays, inputs, grad, error, schedule, carry, start, indices):
    """One scan step per step, the events flagged per step: the structure for GPUs and
    TPUs, where a scan of fixed length runs without a host round trip per step."""
    import jax.numpy as jnp
    from jax import lax

    length = indices.shape[0]

    def one_step(c, xs):
        state, anchors, rec = c
        i, eta_t, t, slot, is_anchor = xs
        state = _one_step(arrays, inputs, grad, state, i, eta_t, t)
        tf = t.astype(state.x.dtype)
        anchors = lax.cond(
            is_anchor,
            lambda: jnp.where((schedule.anchor_steps == t)[:, None], tf * state.average, anchors),
            lambda: anchors,
        )
        rec = lax.cond(
            slot >= 0, lambda: _record(error, schedule, state, anchors, rec, t, slot), lambda: rec
        )
        return (state, anchors, rec), None

    xs = (
        indices,
        lax.dynamic_slice_in_dim(inputs.eta, start, length),
        start + jnp.arange(1, length + 1, dtype=jnp.int32),
        lax.dynamic_slice_in_dim(schedule.slot, start, length),
        lax.dynamic_slice_in_dim(schedule.anchor, start, length),
    )
    state, anchors, rec, e = carry
    (state, anchors, rec), _ = lax.scan(one_step, (state, anchors, rec), xs)
    return state, anchors, rec, e


def _at_event(error, schedule, state, anchors, rec, t):
    """After step t: keep t * x̄_t for the suffixes starting there; write checkpoint t."""
    import jax.numpy as jnp
    from jax import lax

    tf = t.astype(state.x.dtype)
    anchors = jnp.where((schedule.anchor_steps == t)[:, None], tf * state.average, anchors)
    slot = schedule.slot[t - 1]
    rec = lax.cond(
        slot >= 0,
        lambda: _record(error, schedule, state, anchors, rec, t, slot),
        lambda: rec,
    )
    return anchors, rec


def run_trial(
    arrays: EngineArrays,
    inputs: TrialInputs,
    schedule: EventSchedule,
    *,
    loss: Callable,
    grad: Callable,
    chunk: int,
    predrawn: bool,
    segmented: bool = True,
):
    r"""One trial of one strategy: ``lax.scan`` over chunks of ``chunk`` steps, then a tail.

    Each chunk draws its ``chunk`` indices in bulk (:func:`costsgd.draw.sample_jax`,
    key folded with the chunk's first step) or slices the pre-drawn ones. Inside
    a chunk, plain :func:`sgd_step` loops run from one event to the next; only at
    an event (a checkpoint, or a suffix start :math:`a_k`, where the prefix sum
    :math:`t\bar x_t` is kept) is anything recorded. Events are shared by all
    trials, so under ``vmap`` the loops keep scalar bounds and the step loop
    carries nothing but the :class:`SGDState`. This is the structure for CPUs;
    ``segmented=False`` scans step by step with the events as per-step branches
    instead (for accelerators, where loops of varying length cost a host round
    trip per iteration).

    Returns:
      ``(SGDState, Checkpoints)`` after the last step.
    """
    import jax
    import jax.numpy as jnp
    from jax import lax

    from costsgd.draw import AliasTable, sample_jax

    T = inputs.eta.shape[0]
    K = schedule.steps.shape[0]
    dtype = inputs.x0.dtype
    error = error_function(arrays, loss)

    def run_chunk(carry, start, length):
        if predrawn:
            indices = lax.dynamic_slice_in_dim(inputs.source, start, length)
        else:  # bulk alias draws for the whole chunk
            key = jax.random.fold_in(inputs.source, start)
            table = AliasTable(None, inputs.alias, inputs.threshold)
            indices = sample_jax(key, table, (length,))
        if not segmented:
            return _scan_chunk(arrays, inputs, grad, error, schedule, carry, start, indices)
        end = start + length

        def segment(c):
            state, anchors, rec, e, done = c
            event = schedule.events[e]
            last = jnp.minimum(event, end)
            state = _run_steps(arrays, inputs, grad, state, (done + 1, last), indices, start)
            anchors, rec = lax.cond(
                last == event,
                lambda: _at_event(error, schedule, state, anchors, rec, last),
                lambda: (anchors, rec),
            )
            return state, anchors, rec, e + (last == event), last

        state, anchors, rec, e = carry
        state, anchors, rec, e, _ = lax.while_loop(
            lambda c: c[4] < end, segment, (state, anchors, rec, e, start)
        )
        return state, anchors, rec, e

    x0 = inputs.x0
    zeros = jnp.zeros((K,), dtype)
    carry = (
        SGDState(x0, jnp.zeros_like(x0), jnp.zeros((), dtype)),
        jnp.zeros((K, x0.shape[0]), dtype),
        Checkpoints(zeros, zeros, zeros, zeros),
        jnp.int32(0),
    )
    n_full, tail = divmod(T, chunk)
    if n_full:
        starts = jnp.arange(n_full, dtype=jnp.int32) * chunk
        carry, _ = lax.scan(lambda c, s: (run_chunk(c, s, chunk), None), carry, starts)
    if tail:
        carry = run_chunk(carry, jnp.int32(n_full * chunk), tail)
    state, _, rec, _ = carry
    return state, rec
