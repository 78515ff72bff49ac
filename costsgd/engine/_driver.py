r"""Cost-Aware SGD (Algorithm 1 of the paper) as a jitted JAX engine: the entry point.

Each step draws :math:`i_t \sim p`, pays :math:`c_{i_t}` and takes a projected
step along the importance-weighted gradient:

.. math::
   \tilde g_t = \frac{\nabla f_{i_t}(x_t)}{n\,p_{i_t}},\qquad
   x_{t+1} = \Pi_{\mathcal X}\big(x_t - \eta_t\,\tilde g_t\big),\qquad
   \mathcal K_t = \sum_{s \le t} c_{i_s}.

:math:`\mathbb E[\tilde g_t] = \nabla f(x_t)` (the estimator is unbiased) and
its second moment is at most :math:`S(p)` (§4.1). The outputs of Appendix B.1
and F.3 are tracked at once: the average iterate
:math:`\bar x_t = \frac1t\sum_{s\le t} x_s`, the :math:`\alpha`-suffix average
:math:`\frac1m\sum_{s=t-m+1}^{t} x_s`, :math:`m = \lceil\alpha t\rceil`
(Rakhlin et al., 2011; the suffix is relative to each checkpoint, so every
checkpoint reads as the end of a run of that length), and the last iterate
:math:`x_{t+1}`.

Structure (blackjax/optax style), one concept per module, each importing only
the ones before it:

* ``_kernel``: the pure kernels, :func:`sgd_step` (one step on one trial),
  with the carried :class:`SGDState` kept apart from the recorded
  :class:`Checkpoints`;
* ``_schedules``: step sizes, schedules and checkpoints;
* ``_native``: the optional compiled step loop for least-squares components;
* ``_trial``: the scan of one trial;
* ``_batch``: ``vmap`` over trials and strategies and the split of trials
  over devices, jitted once;
* this module: :func:`cost_aware_sgd`, the single entry point, and the
  host-side checks and preparation of its inputs.

The error :math:`f(\hat x) - f^*` costs O(d²) (quadratic problems, ½eᵀHe) or
O(nd), so it is evaluated only at the ``K`` checkpoints. Per step the work is
O(d): indices come from Walker alias tables (:func:`costsgd.draw.sample_jax`,
drawn in bulk once per chunk of steps) or from caller-supplied indices, never
from an O(n) categorical draw.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from costsgd._validate import (
    check_costs,
    check_gradient_norms,
    check_positive_int,
    check_probabilities,
    host,
)
from costsgd.draw import alias_table
from costsgd.engine._batch import THREEFRY, compiled, place_indices, trial_mesh
from costsgd.engine._kernel import SGDState
from costsgd.engine._native import load as load_native
from costsgd.engine._native import pad_rows
from costsgd.engine._native import status as native_status
from costsgd.engine._schedules import event_schedule, log_checkpoints, step_sizes
from costsgd.engine._trial import EngineArrays
from costsgd.problems import least_squares_grad

__all__ = ["SGDResult", "cost_aware_sgd"]

_DEFAULT_CHUNK = 250


class SGDResult(NamedTuple):
    """Output of :func:`cost_aware_sgd` (numpy arrays).

    Leading axes ``(S, M)``: strategies and trials (``S`` is dropped when a
    single 1-D ``p`` was given).
    """

    steps: np.ndarray  #: checkpoint steps t_k, shape (K,)
    cost: np.ndarray  #: cumulative cost at each checkpoint, (S, M, K)
    error_average: np.ndarray  #: f(x̄_t) - f*, (S, M, K)
    error_suffix: np.ndarray  #: f(suffix average) - f*, (S, M, K)
    error_last: np.ndarray  #: f(x_{t+1}) - f*, (S, M, K)
    final: SGDState  #: state after the last step, arrays (S, M, d) / (S, M)


def cost_aware_sgd(
    problem: Any,
    p: Any,
    *,
    steps: int,
    trials: int = 1,
    step_size: Any = None,
    schedule: Any = None,
    key: Any = 0,
    checkpoints: Any = None,
    suffix_fraction: float = 0.5,
    x0: Any = None,
    indices: Any = None,
    dtype: Any = None,
    chunk: int = _DEFAULT_CHUNK,
    shard: bool = True,
    native: bool | None = None,
) -> SGDResult:
    r"""Run Cost-Aware SGD (Algorithm 1): ``trials`` independent runs of ``steps`` steps
    for each sampling distribution in ``p``, in one compiled call.

    All strategies share the trials' random keys (trial ``m`` of every strategy
    uses the ``m``-th key split from ``key``): differences between strategies are
    not seed noise. The compiled program is cached: a second call with the same
    shapes, problem functions and static options does not recompile, and it
    closes over no data, so JAX's persistent compilation cache can reuse it
    across processes.

    Args:
      problem: a finite-sum problem (:class:`costsgd.problems.FiniteSum`,
        :class:`costsgd.problems.LeastSquares`).
      p: sampling distribution(s), shape ``(n,)`` or ``(S, n)``.
      steps: iterations :math:`T` per trial.
      trials: independent trials :math:`M`.
      step_size: constant :math:`\eta`, a scalar or one per strategy ``(S,)``
        (see :func:`costsgd.theory_step_size`).
      schedule: step sizes per step, ``(T,)`` or ``(S, T)`` (see
        :func:`costsgd.inverse_time_schedule`). Give exactly one of the two.
      key: a JAX PRNG key, or an int seed, for the index draws.
      checkpoints: increasing steps in ``[1, T]`` at which errors and costs are
        recorded (default :func:`costsgd.log_checkpoints`).
      suffix_fraction: :math:`\alpha` of the suffix average, in ``(0, 1]``.
      x0: starting point :math:`x_1` (default the origin), projected onto the ball.
      indices: pre-drawn component indices, ``(S, M, T)`` or ``(M, T)``, used
        instead of alias draws (for reproducing a reference run).
      dtype: float32 or float64 (default JAX's default: float32, or float64
        when x64 is enabled). Half precision is refused: its range (6.5e4)
        overflows on ordinary step sizes and gradients.
      chunk: steps per bulk draw (a performance knob; results do not depend on
        it when ``indices`` are given).
      shard: split trials across devices when JAX sees more than one.
      native: run the steps of least-squares components on a CPU in the
        compiled loop of :mod:`costsgd.engine` (its ``_native`` module) (``None``: whenever it
        applies and builds; ``False``: XLA's step; ``True``: require it). The
        two agree to rounding.

    Returns:
      An :class:`SGDResult`.

    Raises:
      ValueError: bad input, naming the argument or the problem's field; or a run
        that diverged (non-finite errors), naming the strategy and its step size.
      TypeError: ``key`` is neither a JAX key nor an int.
      RuntimeError: ``native=True`` and the compiled loop cannot be built
        (the message says why).

    Examples:
      >>> import costsgd as cs
      >>> prob = cs.least_squares(300, 5, rng=0)
      >>> P = np.stack([cs.uniform(prob.G, prob.c), cs.optimal(prob.G, prob.c)])
      >>> res = cost_aware_sgd(prob, P, steps=2000, trials=8, schedule=np.full(2000, 1e-3),
      ...                      checkpoints=[100, 2000])
      >>> res.error_average.shape
      (2, 8, 2)
      >>> bool(np.all(res.error_average[:, :, -1] < res.error_average[:, :, 0]))
      True
    """
    import jax

    steps = check_positive_int(steps, "steps")
    trials = check_positive_int(trials, "trials")
    chunk = min(check_positive_int(chunk, "chunk"), steps)
    if not (0 < suffix_fraction <= 1):
        raise ValueError(f"suffix_fraction must lie in (0, 1], got {suffix_fraction!r}")
    P, squeeze = _check_strategies(p, problem)
    S, n = P.shape
    dtype = _check_dtype(dtype)
    eta, eta_name = step_sizes(step_size, schedule, S, steps, dtype)
    events = event_schedule(
        steps, log_checkpoints(steps) if checkpoints is None else checkpoints, suffix_fraction
    )
    x_star, x0 = _check_problem(problem, n, x0)
    predrawn = indices is not None
    mesh, pad = trial_mesh(trials, enabled=shard)
    if predrawn:
        sources = np.asarray(_check_indices(indices, P, trials, steps), np.int32)
        sources = place_indices(sources, mesh, pad)
    else:
        sources = _as_key(key)
    platform = jax.devices()[0].platform
    arrays = _native_rows(_engine_arrays(problem, P, x_star, dtype), native, platform)
    grad = problem.grad if problem.grad is not None else jax.grad(problem.loss)
    state, rec = compiled(platform)(
        arrays,
        np.asarray(eta, dtype),
        sources,
        np.asarray(x0, dtype),
        events,
        loss=problem.loss,
        grad=grad,
        chunk=chunk,
        predrawn=predrawn,
        segmented=platform == "cpu",
        mesh=mesh,
        trials=trials + pad,
    )

    result = _collect(state, rec, events.steps, pad, squeeze)
    _check_converged(result, eta, eta_name, squeeze)
    return result


def _collect(state, rec, steps, pad: int, squeeze: bool) -> SGDResult:
    """The device outputs as an :class:`SGDResult` of numpy arrays (padding trials dropped)."""

    def out(a):
        a = np.asarray(a)[:, : a.shape[1] - pad] if pad else np.asarray(a)
        return a[0] if squeeze else a

    return SGDResult(
        steps=np.asarray(steps, np.int64),
        cost=out(rec.cost),
        error_average=out(rec.error_average),
        error_suffix=out(rec.error_suffix),
        error_last=out(rec.error_last),
        final=SGDState(*(out(a) for a in state)),
    )


def _check_strategies(p: Any, problem: Any) -> tuple[np.ndarray, bool]:
    """``p`` as float64 ``(S, n)`` (and whether it was 1-D), checked against the problem."""
    P = np.asarray(host(p), dtype=np.float64)
    squeeze = P.ndim == 1
    P = np.atleast_2d(P)
    if P.ndim != 2:
        raise ValueError(f"p must have shape (n,) or (S, n), got {P.shape}")
    n = P.shape[1]
    for s, row in enumerate(P):
        check_probabilities(row, "p" if squeeze else f"p[{s}]")
    G = np.asarray(problem.G, dtype=np.float64)
    c = np.asarray(problem.c, dtype=np.float64)
    if G.shape != (n,) or c.shape != (n,):
        raise ValueError(f"p has {n} components but problem.G, problem.c have {G.shape}, {c.shape}")
    check_gradient_norms(G, "problem.G")
    check_costs(c, "problem.c")
    if np.any((P == 0) & (G > 0)):
        raise ValueError("p is zero on a component with G_i > 0: the estimator would be biased")
    return P, squeeze


def _check_dtype(dtype: Any):
    """The run's float dtype: float32 or float64 (JAX's default when None)."""
    import jax
    import jax.numpy as jnp

    dtype = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype))
    if dtype not in (jnp.float32, jnp.float64):
        raise ValueError(
            f"dtype must be float32 or float64, got {dtype} (half precision overflows "
            "at 6.5e4 and is not supported)"
        )
    return dtype


def _finite(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(host(value), dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; it has {int(np.sum(~np.isfinite(arr)))} NaN/inf")
    return arr


def _check_problem(problem: Any, n: int, x0: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check the problem's values; return ``(x_star, x0)`` (x0 projected onto the ball)."""
    import jax

    radius = float(problem.radius)
    if not radius > 0:
        raise ValueError(f"problem.radius must be > 0, got {radius!r}")
    leaves = jax.tree_util.tree_leaves(problem.data)
    if not leaves or any(np.shape(leaf)[:1] != (n,) for leaf in leaves):
        raise ValueError(f"every array of problem.data must have leading axis n = {n}")
    for leaf in leaves:
        _finite(leaf, "problem.data")
    _finite(problem.f_star, "problem.f_star")
    if problem.x_star is None:  # only f* is known: the dimension comes from x0
        if problem.hessian is not None:
            raise ValueError("problem.hessian needs problem.x_star (error = ½eᵀHe, e = x - x*)")
        if x0 is None:
            raise ValueError("x0 is required when problem.x_star is None")
        x_star = np.zeros(np.shape(x0))
    else:
        x_star = _finite(problem.x_star, "problem.x_star")
    if problem.hessian is not None:
        _finite(problem.hessian, "problem.hessian")
    d = x_star.shape[0]
    x0 = np.zeros(d) if x0 is None else np.asarray(host(x0), dtype=np.float64)
    if x0.shape != (d,) or not np.all(np.isfinite(x0)):
        raise ValueError(f"x0 must be finite with shape ({d},), got shape {x0.shape}")
    if np.linalg.norm(x0) > radius:
        x0 = x0 * (radius / np.linalg.norm(x0))
    return x_star, x0


def _check_indices(indices: Any, P: np.ndarray, trials: int, steps: int) -> np.ndarray:
    """Pre-drawn indices as ``(S, M, T)`` ints in range, never on a component with p_i = 0."""
    S, n = P.shape
    idx = np.asarray(host(indices))
    if idx.shape == (trials, steps):
        idx = np.broadcast_to(idx, (S, trials, steps))
    if idx.shape != (S, trials, steps) or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(
            f"indices must be ints of shape ({trials}, {steps}) or ({S}, {trials}, {steps})"
        )
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"indices must lie in [0, {n})")
    if np.any(np.take_along_axis(P, idx.reshape(S, -1), axis=1) == 0):
        raise ValueError("indices draw a component whose p_i is 0")
    return idx


def _as_key(key: Any):
    """``key`` as the engine takes it: the ``uint32[2]`` data of a threefry key
    (wrapped into a key inside the compiled program, so neither seeding nor
    unwrapping compiles a program of its own, and every seed and key takes the
    same program), or a typed JAX key of another PRNG implementation.

    ``key`` is a typed key, a raw ``uint32[2]`` threefry key, or an int seed
    (``jax.random.key(seed)``; for ``0 <= seed < 2**32`` its threefry data is
    ``[0, seed]``, computed here).
    """
    import jax

    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if 0 <= int(key) < 2**32 and jax.config.jax_default_prng_impl == THREEFRY:
            return np.array([0, int(key)], np.uint32)
        key = jax.random.key(int(key))
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key, got shape {key.shape}")
        if str(jax.random.key_impl(key)) == THREEFRY:
            return np.asarray(jax.random.key_data(key), np.uint32)
        return key
    if dtype == np.uint32 and np.shape(key) == (2,):
        return np.asarray(key, np.uint32)
    raise TypeError(f"key must be a JAX PRNG key or an int seed, got {type(key).__name__}")


def _engine_arrays(problem: Any, P: np.ndarray, x_star: np.ndarray, dtype: Any) -> EngineArrays:
    """The problem's and strategies' arrays in the run's dtype (alias tables built in float64).

    Converted on the host and passed to the jitted program as numpy arrays: a
    conversion or a staged transfer on the device would compile a small program
    of its own.
    """
    import jax

    n = P.shape[1]
    tables = [alias_table(row) for row in P]
    with np.errstate(divide="ignore"):
        weight = np.where(P > 0, 1.0 / (n * P), 0.0)
    hess = problem.hessian
    data = jax.tree_util.tree_map(lambda a: np.asarray(host(a), dtype), problem.data)
    linear = (  # gradient (aᵀx - b)a: the step reads ‖a_i‖² (linear_sgd_step)
        problem.grad is least_squares_grad
        and isinstance(data, tuple)
        and len(data) == 2
        and np.ndim(data[0]) == 2
    )
    arrays = EngineArrays(
        data=data,
        c=np.asarray(problem.c, np.float64).astype(dtype),
        weight=weight.astype(dtype),
        threshold=np.stack([t.threshold for t in tables]),
        alias=np.stack([t.alias for t in tables]).astype(np.int32),
        radius=np.asarray(float(problem.radius), dtype),
        x_star=np.asarray(x_star, dtype),
        f_star=np.asarray(float(problem.f_star), dtype),
        hessian=None if hess is None else np.asarray(host(hess), dtype),
        a_norm2=np.einsum("ij,ij->i", data[0], data[0]) if linear else None,
    )
    return arrays


def _native_rows(arrays: EngineArrays, native: Any, platform: str) -> EngineArrays:
    """``arrays`` with the padded rows of ``a`` when the steps run in the native loop."""
    if native is not None and not isinstance(native, bool):
        raise ValueError(f"native must be True, False or None, got {native!r}")
    if native is False:
        return arrays
    applies = arrays.a_norm2 is not None and platform == "cpu"
    if native is None and not (applies and native_status().available):
        return arrays
    if not applies:
        raise ValueError(
            "native=True needs least-squares components (problem.grad is "
            f"least_squares_grad) on a CPU; this run is on {platform!r}"
            + ("" if arrays.a_norm2 is not None else " with another gradient")
        )
    load_native()
    return arrays._replace(rows=pad_rows(arrays.data[0]))


def _check_converged(result: SGDResult, eta: np.ndarray, eta_name: str, squeeze: bool) -> None:
    """Raise when a strategy's run produced non-finite errors or costs (it diverged)."""
    values = (result.cost, result.error_average, result.error_suffix, result.error_last)
    rows = [v.reshape(1, -1) if squeeze else v.reshape(v.shape[0], -1) for v in values]
    bad = ~np.all([np.isfinite(v).all(axis=1) for v in rows], axis=0)
    if not np.any(bad):
        return
    s = int(np.flatnonzero(bad)[0])
    where = "" if squeeze else f" for strategy p[{s}]"
    size = f"{eta[s, 0]:.3g}" if eta_name == "step_size" else f"up to {eta[s].max():.3g}"
    raise ValueError(
        f"the run diverged{where}: non-finite errors or costs with {eta_name} {size} "
        f"(too large for the run's precision); use smaller step sizes"
    )
