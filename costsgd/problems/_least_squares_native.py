r"""The native loop of least-squares steps: its source, its arrays and its call (XLA FFI).

:func:`least_squares_steps` runs steps ``lo..hi`` of
:func:`costsgd.problems.least_squares_step` for a batch of trials in one XLA
custom call, a C++ loop (``_least_squares.cc``) that keeps each trial's
iterate and average in registers over all its steps. XLA's own program for the
same step makes one pass over the whole batch per operation (the gather of
:math:`a_i`, the reduction :math:`a_i^\top x_t`, the update), each bound by the
L2 cache; docs/benchmarks.md compares the two on the Figure 2 work. The engine builds and registers it (its ``native``
backend); the random draws, the events, the checkpoints and the sharding stay
in the JAX program.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LANES", "SOURCE", "least_squares_steps", "native_arrays", "pad_rows"]

#: Rows of ``a`` are padded with zeros to a multiple of this many coordinates
#: (``kLanes`` in ``_least_squares.cc``): every pass then runs over whole blocks.
LANES = 16

#: The loop's C++ source.
SOURCE = Path(__file__).with_name("_least_squares.cc")


def pad_rows(a: np.ndarray) -> np.ndarray:
    """``a`` ``(n, d)`` with zero columns appended up to a multiple of :data:`LANES`.

    Examples:
      >>> pad_rows(np.ones((2, 3), np.float32)).shape
      (2, 16)
    """
    n, d = a.shape
    out = np.zeros((n, -(-d // LANES) * LANES), a.dtype)
    out[:, :d] = a
    return out


def native_arrays(datum: tuple[Any, Any, Any]) -> tuple[np.ndarray, Any, Any]:
    """The prepared ``(A, b, ||a_i||^2)`` as the loop reads them: ``A`` padded by :func:`pad_rows`."""
    A, b, a_norm2 = datum
    return pad_rows(np.asarray(A)), b, a_norm2


def least_squares_steps(target, x, average, cost, indices, eta, bounds, arrays, weight, c, radius):
    r"""Steps ``t = lo..hi`` of :func:`costsgd.problems.least_squares_step` in one custom call.

    Args:
      target: the name the engine registered the loop's handler under.
      x, average, cost: the :class:`costsgd.SGDState` fields,
        :math:`x_t`, :math:`\bar x_{t-1}`, :math:`\mathcal K_{t-1}`.
      indices: ``(L,)`` int32 component indices; step ``t`` reads ``indices[t - 1 - offset]``.
      eta: ``(T,)`` step sizes; step ``t`` reads ``eta[t - 1]``.
      bounds: int32 ``[lo, hi, offset]``.
      arrays: ``(rows, b, a_norm2)`` (:func:`native_arrays`): :math:`a` padded with
        zero columns by :func:`pad_rows`, ``b`` and :math:`\|a_i\|^2`, shape ``(n,)``.
      weight, c: :math:`1/(np_i)` and :math:`c_i`, shape ``(n,)``.
      radius: :math:`R`.

    Returns:
      ``(x, average, cost)`` after step ``hi``. Under ``jax.vmap`` every argument
      may carry batch dimensions (``vmap_method="expand_dims"``): shared arrays
      are not copied per trial.
    """
    import jax
    import jax.numpy as jnp

    rows, b, a_norm2 = arrays
    _check_shapes(x, average, cost, indices, eta, bounds, rows, b, a_norm2, weight, c, radius)
    for name, value in (("indices", indices), ("bounds", bounds)):
        if not jnp.issubdtype(jnp.result_type(value), jnp.integer):
            raise ValueError(f"{name} must be integers, got {jnp.result_type(value)}")
    x = jnp.asarray(x)  # the run's dtype (float32 unless x64 is on); the rest follows it
    floats = (average, cost, eta, rows, b, a_norm2, weight, c, radius)
    average, cost, eta, rows, b, a_norm2, weight, c, radius = (
        jnp.asarray(v, x.dtype) for v in floats
    )
    shapes = tuple(jax.ShapeDtypeStruct(v.shape, v.dtype) for v in (x, average, cost))
    call = jax.ffi.ffi_call(target, shapes, vmap_method="expand_dims")
    index = jnp.int32
    return call(
        x, average, cost, jnp.asarray(indices, index), eta, jnp.asarray(bounds, index),
        rows, b, a_norm2, weight, c, radius,
    )  # fmt: skip


def _check_shapes(x, average, cost, indices, eta, bounds, rows, b, a_norm2, weight, c, radius):
    """One trial's shapes (``vmap`` adds the batch dimensions); ``ValueError`` naming the argument."""
    if np.ndim(x) != 1:
        raise ValueError(f"x must be one trial's iterate, shape (d,), got {np.shape(x)}")
    d = np.shape(x)[0]
    if np.ndim(rows) != 2 or np.shape(rows)[1] % LANES or np.shape(rows)[1] < d:
        raise ValueError(
            f"rows must be (n, w), w >= d = {d} a multiple of {LANES} (pad_rows); "
            f"got {np.shape(rows)}"
        )
    n = np.shape(rows)[0]
    fixed = {"average": (average, (d,)), "cost": (cost, ()), "bounds": (bounds, (3,)),
             "b": (b, (n,)), "a_norm2": (a_norm2, (n,)), "weight": (weight, (n,)),
             "c": (c, (n,)), "radius": (radius, ())}  # fmt: skip
    for name, (value, shape) in fixed.items():
        if np.shape(value) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {np.shape(value)}")
    for name, value in (("indices", indices), ("eta", eta)):
        if np.ndim(value) != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {np.shape(value)}")
