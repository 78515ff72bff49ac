r"""A run's arrays, prepared once on the host, and the step on one drawn component.

:func:`engine_arrays` converts a problem and its strategies into the arrays the
compiled code reads (the problem type's prepared step data, costs, weights
:math:`1/(np_i)`, alias tables) in the run's dtype; :func:`component_step` takes
Algorithm 1's step on component :math:`i`. Both the driver
(:func:`costsgd.cost_aware_sgd`) and the init/step pair
(:func:`costsgd.sgd_algorithm`) run on them, so they take the same steps.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from costsgd._validate import host
from costsgd.draw import alias_table
from costsgd.engine._kernel import SGDState, sgd_step

__all__ = ["EngineArrays", "component_step", "engine_arrays"]


class EngineArrays(NamedTuple):
    """Problem and strategy arrays passed to the jitted code as arguments.

    Never closed over: large constants are slow to compile and would make the
    compiled program depend on the data (no reuse across problems of one shape).
    """

    data: Any  #: the problem's data for its loss (None when the error is ½eᵀHe)
    step_data: Any  #: the step's prepared data, leading axis n (None with a native loop)
    native_data: Any  #: the native loop's arrays (None on XLA's step)
    c: Any  #: (n,) costs
    weight: Any  #: (S, n): 1 / (n p_i), 0 where p_i = 0
    threshold: Any  #: (S, n) uint32 alias thresholds
    alias: Any  #: (S, n) int32 alias columns
    radius: Any  #: () radius R of the feasible ball
    x_star: Any  #: (d,) minimiser
    f_star: Any  #: () optimal value
    hessian: Any  #: (d, d) or None


def engine_arrays(problem: Any, P: np.ndarray, x_star: np.ndarray, dtype: Any, step: Any,
                  *, native: bool) -> EngineArrays:  # fmt: skip
    """The problem's and strategies' arrays in the run's dtype (alias tables built in float64).

    Converted on the host and passed to the jitted program as numpy arrays: a
    conversion or a staged transfer on the device would compile a small program
    of its own. ``step`` is the problem's :class:`costsgd.problems.GradientStep`;
    with ``native`` its native loop's arrays replace the step's data.
    """
    import jax

    n = P.shape[1]
    tables = [alias_table(row) for row in P]
    with np.errstate(divide="ignore"):
        weight = np.where(P > 0, 1.0 / (n * P), 0.0)
    hess = problem.hessian
    data = jax.tree_util.tree_map(lambda a: np.asarray(host(a), dtype), problem.data)
    step_data = data if step.prepare is None else step.prepare(data, dtype)
    return EngineArrays(
        data=None if hess is not None else data,
        step_data=None if native else step_data,
        native_data=step.native.prepare(step_data) if native else None,
        c=np.asarray(problem.c, np.float64).astype(dtype),
        weight=weight.astype(dtype),
        threshold=np.stack([t.threshold for t in tables]),
        alias=np.stack([t.alias for t in tables]).astype(np.int32),
        radius=np.asarray(float(problem.radius), dtype),
        x_star=np.asarray(x_star, dtype),
        f_star=np.asarray(float(problem.f_star), dtype),
        hessian=None if hess is None else np.asarray(host(hess), dtype),
    )


def component_step(arrays: EngineArrays, weight: Any, step: Any, state: SGDState, i: Any, eta):
    """:func:`costsgd.sgd_step` on component ``i`` (drawn or validated in range): its
    prepared datum, its weight (one strategy's row ``weight``) and its cost."""
    import jax

    def take(a):
        return a.at[i].get(mode="promise_in_bounds")

    datum = jax.tree_util.tree_map(take, arrays.step_data)
    return sgd_step(state, datum, take(weight), take(arrays.c), eta, arrays.radius, step=step)
