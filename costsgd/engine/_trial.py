r"""One trial of the Cost-Aware SGD engine: the scan over its steps and checkpoints.

:func:`run_trial` runs one strategy's trial: chunks of steps with bulk alias
draws, the step loops between events (checkpoints and suffix starts), and the
record at each checkpoint (:class:`costsgd.engine.Checkpoints`). It is not
jitted: :mod:`costsgd.engine` jits once, over ``vmap`` of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from costsgd.engine._arrays import EngineArrays, component_step
from costsgd.engine._kernel import Checkpoints, SGDState
from costsgd.engine._schedules import EventSchedule

__all__ = ["TrialInputs", "error_function", "run_trial"]


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


def _run_steps(arrays, inputs, step, target, state, span, indices, offset):
    """Steps t = span[0]..span[1] (inclusive); step t uses ``indices[t - 1 - offset]``.

    With a native ``target`` (the problem type's compiled loop, on a CPU) the
    steps run in one call of its :class:`costsgd.problems.NativeLoop`, else in a
    ``fori_loop`` of the step.
    """
    import jax.numpy as jnp
    from jax import lax

    if target is not None:
        bounds = jnp.stack([span[0], span[1], offset]).astype(jnp.int32)
        x, average, cost = step.native.call(
            target, state.x, state.average, state.cost, indices, inputs.eta, bounds,
            arrays.native_data, inputs.weight, arrays.c, arrays.radius,
        )  # fmt: skip
        return SGDState(x, average, cost, span[1].astype(state.t.dtype))

    def body(t, state):
        i = indices[t - 1 - offset]
        return component_step(arrays, inputs.weight, step.step, state, i, inputs.eta[t - 1])

    return lax.fori_loop(span[0], span[1] + 1, body, state)


def _scan_chunk(arrays, inputs, step, error, schedule, carry, start, indices):
    """One scan step per step, the events flagged per step: the structure for GPUs and
    TPUs, where a scan of fixed length runs without a host round trip per step."""
    import jax.numpy as jnp
    from jax import lax

    length = indices.shape[0]

    def one_step(c, xs):
        state, anchors, rec = c
        i, eta_t, t, slot, is_anchor = xs
        state = component_step(arrays, inputs.weight, step.step, state, i, eta_t)
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
    step: Any,
    target: str | None,
    chunk: int,
    predrawn: bool,
    segmented: bool = True,
):
    r"""One trial of one strategy: ``lax.scan`` over chunks of ``chunk`` steps, then a tail.

    Each chunk draws its ``chunk`` indices in bulk (:func:`costsgd.draw.sample_jax`,
    key folded with the chunk's first step) or slices the pre-drawn ones. Inside
    a chunk, plain loops of :func:`costsgd.sgd_step` run from one event to the next; only at
    an event (a checkpoint, or a suffix start :math:`a_k`, where the prefix sum
    :math:`t\bar x_t` is kept) is anything recorded. Events are shared by all
    trials, so under ``vmap`` the loops keep scalar bounds and the step loop
    carries nothing but the :class:`SGDState`. This is the structure for CPUs;
    ``segmented=False`` scans step by step with the events as per-step branches
    instead (for accelerators, where loops of varying length cost a host round
    trip per iteration).

    ``step`` is the problem type's :class:`costsgd.problems.GradientStep`;
    ``target`` its native loop's registered XLA target, or None for XLA's step.

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
            return _scan_chunk(arrays, inputs, step, error, schedule, carry, start, indices)
        end = start + length

        def segment(c):
            state, anchors, rec, e, done = c
            event = schedule.events[e]
            last = jnp.minimum(event, end)
            state = _run_steps(
                arrays, inputs, step, target, state, (done + 1, last), indices, start
            )
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
        SGDState(x0, jnp.zeros_like(x0), jnp.zeros((), dtype), jnp.zeros((), jnp.int32)),
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
