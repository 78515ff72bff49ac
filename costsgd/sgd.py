r"""Cost-Aware SGD (Algorithm 1 of the paper) as a jitted JAX engine.

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

Structure (blackjax/optax style): :func:`sgd_step` is the pure kernel of one
step on one trial; :func:`cost_aware_sgd` is the single entry point that jits
``lax.scan`` over steps, ``vmap`` over trials and over strategies (all
strategies share the trials' random keys, so they are compared on the same
problem and seeds), and shards trials across JAX devices when there are
several. The carried state (:class:`SGDState`) is kept apart from what is
recorded at the ``K`` checkpoints (:class:`Checkpoints`): the error
:math:`f(\hat x) - f^*` costs O(d²) (quadratic problems, ½eᵀHe) or O(nd), so it
is evaluated only there. Per step the work is O(d): indices come from Walker
alias tables (:func:`costsgd.draw.sample_jax`, drawn in bulk once per chunk of
steps) or from caller-supplied indices, never from an O(n) categorical draw.

Step sizes: a constant per strategy (``step_size``; :func:`theory_step_size`
gives Eq. 3's :math:`\eta = D/\sqrt{S(p)T}`), or a schedule of length ``T``
(``schedule``; :func:`inverse_time_schedule` gives Eq. 4's
:math:`\eta_t = 1/(\mu t)`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from costsgd._validate import check_positive_int, check_probabilities, host
from costsgd.draw import alias_table
from costsgd.theory import second_moment

__all__ = [
    "Checkpoints",
    "SGDResult",
    "SGDState",
    "cost_aware_sgd",
    "importance_weighted_gradient",
    "inverse_time_schedule",
    "log_checkpoints",
    "project",
    "sgd_step",
    "theory_step_size",
]

_DEFAULT_CHUNK = 250


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


class _Arrays(NamedTuple):
    """Problem and strategy arrays passed to the jitted code (never closed over)."""

    data: Any  # pytree, leading axis n
    c: Any  # (n,)
    weight: Any  # (S, n): 1 / (n p_i), 0 where p_i = 0
    accept: Any  # (S, n) uint32 alias thresholds
    alias: Any  # (S, n)
    radius: Any  # ()
    x_star: Any  # (d,)
    f_star: Any  # ()
    hessian: Any  # (d, d) or None


class _Schedule(NamedTuple):
    """Per-step event flags (shared by every trial) and checkpoint bookkeeping."""

    slot: Any  # (T,) int32: checkpoint index written after step t, or -1
    anchor: Any  # (T,) bool: some suffix starts right after step t
    steps: Any  # (K,) checkpoint steps
    anchor_steps: Any  # (K,) a_k = t_k - ceil(alpha t_k)


def project(x: Any, radius: Any):
    r"""Euclidean projection onto the ball :math:`\{\|x\| \le R\}` (``R = inf``: identity).

    .. math:: \Pi(x) = x\,\min\big(1, R/\|x\|\big)

    Examples:
      >>> import jax.numpy as jnp
      >>> project(jnp.array([3.0, 4.0]), 1.0).tolist()
      [0.6000000238418579, 0.800000011920929]
    """
    import jax.numpy as jnp

    norm = jnp.sqrt(jnp.sum(x * x))
    scale = jnp.minimum(1.0, radius / jnp.maximum(norm, jnp.finfo(x.dtype).tiny))
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
    average = state.average + (x - state.average) / t
    g = importance_weighted_gradient(grad, x, datum, weight)
    x_next = project(x - eta * g, radius)
    return SGDState(x_next, average, state.cost + cost)


def _error_fn(arrays: _Arrays, loss: Callable) -> Callable:
    """f(x) - f* for one point: ½eᵀHe (quadratic) or the mean loss minus f*."""
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


def _trial(
    arrays: _Arrays,
    weight: Any,
    accept: Any,
    alias: Any,
    eta: Any,
    source: Any,
    x0: Any,
    schedule: _Schedule,
    *,
    loss: Callable,
    grad: Callable,
    chunk: int,
    predrawn: bool,
):
    """One trial of one strategy: chunks of ``chunk`` steps (bulk draws), then a tail."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    from costsgd.draw import AliasTable, sample_jax

    T = eta.shape[0]
    K = schedule.steps.shape[0]
    dtype = x0.dtype
    error = _error_fn(arrays, loss)

    def record(state: SGDState, anchors, rec: Checkpoints, t, slot):
        tf = t.astype(dtype)
        a = schedule.anchor_steps[slot].astype(dtype)
        suffix = (tf * state.average - anchors[slot]) / (tf - a)
        return Checkpoints(
            rec.cost.at[slot].set(state.cost),
            rec.error_average.at[slot].set(error(state.average)),
            rec.error_suffix.at[slot].set(error(suffix)),
            rec.error_last.at[slot].set(error(state.x)),
        )

    def one_step(carry, xs):
        state, anchors, rec = carry
        i, eta_t, t, slot, is_anchor = xs
        datum = jax.tree_util.tree_map(lambda a: a[i], arrays.data)
        state = sgd_step(
            state, datum, weight[i], arrays.c[i], eta_t, t.astype(dtype), arrays.radius, grad=grad
        )
        # Prefix sums t * x̄_t at the suffix starts a_k (several k may share one a_k).
        anchors = lax.cond(
            is_anchor,
            lambda: jnp.where(
                (schedule.anchor_steps == t)[:, None], t.astype(dtype) * state.average, anchors
            ),
            lambda: anchors,
        )
        rec = lax.cond(slot >= 0, lambda: record(state, anchors, rec, t, slot), lambda: rec)
        return (state, anchors, rec), None

    def run_chunk(carry, start, length, indices):
        if indices is None:  # bulk alias draws for the whole chunk
            key = jax.random.fold_in(source, start)
            indices = sample_jax(key, AliasTable(None, alias, accept), (length,))
        t = start + jnp.arange(1, length + 1, dtype=jnp.int32)
        xs = (
            indices,
            lax.dynamic_slice_in_dim(eta, start, length),
            t,
            lax.dynamic_slice_in_dim(schedule.slot, start, length),
            lax.dynamic_slice_in_dim(schedule.anchor, start, length),
        )
        carry, _ = lax.scan(one_step, carry, xs)
        return carry

    d = x0.shape[0]
    zeros = jnp.zeros((K,), dtype)
    carry = (
        SGDState(x0, jnp.zeros_like(x0), jnp.zeros((), dtype)),
        jnp.zeros((K, d), dtype),
        Checkpoints(zeros, zeros, zeros, zeros),
    )
    n_full, tail = divmod(T, chunk)

    def body(carry, c_idx):
        start = c_idx * chunk
        idx = lax.dynamic_slice_in_dim(source, start, chunk) if predrawn else None
        return run_chunk(carry, start, chunk, idx), None

    if n_full:
        carry, _ = lax.scan(body, carry, jnp.arange(n_full, dtype=jnp.int32))
    if tail:
        start = jnp.int32(n_full * chunk)
        idx = lax.dynamic_slice_in_dim(source, start, tail) if predrawn else None
        carry = run_chunk(carry, start, tail, idx)
    state, _, rec = carry
    return state, rec


def _simulate(arrays, eta, sources, x0, schedule, *, loss, grad, chunk, predrawn, mesh):
    """All strategies x all trials: vmap(strategies) of vmap(trials) of the scan.

    With a ``mesh``, ``shard_map`` runs the same program on each device's slice
    of the trials (no communication: trials are independent).
    """
    import jax
    from jax.sharding import PartitionSpec

    trial = partial(_trial, loss=loss, grad=grad, chunk=chunk, predrawn=predrawn)
    over_trials = jax.vmap(trial, in_axes=(None, None, None, None, None, 0, None, None))
    # Random keys are shared across strategies (common random numbers);
    # pre-drawn indices are per strategy.
    source_axis = 0 if predrawn else None
    over_strategies = jax.vmap(over_trials, in_axes=(None, 0, 0, 0, 0, source_axis, None, None))
    args = (arrays, arrays.weight, arrays.accept, arrays.alias, eta, sources, x0, schedule)
    if mesh is None:
        return over_strategies(*args)
    rep = PartitionSpec()
    split = PartitionSpec(None, "trials") if predrawn else PartitionSpec("trials")
    sharded = jax.shard_map(
        over_strategies,
        mesh=mesh,
        in_specs=(rep, rep, rep, rep, rep, split, rep, rep),
        out_specs=PartitionSpec(None, "trials"),
        check_vma=False,  # carries start replicated and become per-device: fine here
    )
    return sharded(*args)


_simulate_jit = None


def _jitted():
    global _simulate_jit
    if _simulate_jit is None:
        import jax

        _simulate_jit = jax.jit(
            _simulate, static_argnames=("loss", "grad", "chunk", "predrawn", "mesh")
        )
    return _simulate_jit


def log_checkpoints(steps: int, num: int = 50) -> np.ndarray:
    """About ``num`` log-spaced checkpoint steps in ``[1, steps]``, always ending at ``steps``.

    Examples:
      >>> log_checkpoints(1000, 4).tolist()
      [1, 10, 100, 1000]
    """
    steps, num = check_positive_int(steps, "steps"), check_positive_int(num, "num")
    return np.unique(np.rint(np.geomspace(1, steps, num)).astype(np.int64))


def inverse_time_schedule(mu: float, steps: int, *, offset: float = 0.0) -> np.ndarray:
    r"""Eq. 4's decaying step :math:`\eta_t = 1/(\mu (t + t_0))`, ``t = 1..steps``.

    Examples:
      >>> inverse_time_schedule(0.5, 3).tolist()
      [2.0, 1.0, 0.6666666666666666]
    """
    steps = check_positive_int(steps, "steps")
    if not (np.isfinite(mu) and mu > 0):
        raise ValueError(f"mu must be finite and > 0, got {mu!r}")
    if not (np.isfinite(offset) and offset >= 0):
        raise ValueError(f"offset must be finite and >= 0, got {offset!r}")
    return 1.0 / (mu * (np.arange(1, steps + 1) + offset))


def theory_step_size(p: Any, G: Any, *, diameter: float, steps: int) -> np.ndarray:
    r"""Eq. 3's constant step :math:`\eta = D/\sqrt{S(p)\,T}` for each row of ``p``.

    With it the average iterate satisfies
    :math:`\mathbb E[f(\bar x_T)] - f^* \le D\sqrt{S(p)}/\sqrt T` (§4.1).

    Args:
      p: distribution(s), shape ``(n,)`` or ``(S, n)``.
      G: gradient bounds, shape ``(n,)``.
      diameter: :math:`D` of the feasible set (``2R`` for a ball).
      steps: the horizon :math:`T`.

    Returns:
      float64 array of shape ``()`` or ``(S,)``.

    Examples:
      >>> float(theory_step_size([0.5, 0.5], [1.0, 1.0], diameter=2.0, steps=100))
      0.2
    """
    steps = check_positive_int(steps, "steps")
    if not (np.isfinite(diameter) and diameter > 0):
        raise ValueError(f"diameter must be finite and > 0, got {diameter!r}")
    P = np.asarray(host(p), dtype=np.float64)
    rows = P.reshape(-1, P.shape[-1]) if P.ndim else P
    s = np.array([second_moment(row, G) for row in rows])
    return (diameter / np.sqrt(s * steps)).reshape(P.shape[:-1])


def _make_schedule(steps: int, checkpoints: Any, suffix_fraction: float) -> _Schedule:
    cps = np.asarray(checkpoints)
    if cps.ndim != 1 or cps.size == 0 or not np.issubdtype(cps.dtype, np.integer):
        raise ValueError(f"checkpoints must be a non-empty 1-D array of ints, got {checkpoints!r}")
    if np.any(np.diff(cps) <= 0) or cps[0] < 1 or cps[-1] > steps:
        raise ValueError(f"checkpoints must increase strictly within [1, steps={steps}]")
    m = np.maximum(1, np.ceil(suffix_fraction * cps - 1e-9)).astype(np.int64)
    anchors = cps - m
    slot = np.full(steps, -1, np.int32)
    slot[cps - 1] = np.arange(cps.size, dtype=np.int32)
    anchor = np.zeros(steps, bool)
    anchor[anchors[anchors > 0] - 1] = True
    return _Schedule(slot, anchor, cps.astype(np.int32), anchors.astype(np.int32))


def _step_sizes(step_size, schedule, S: int, T: int) -> np.ndarray:
    if (step_size is None) == (schedule is None):
        raise ValueError("give exactly one of step_size (constant) or schedule (length steps)")
    if step_size is not None:
        eta = np.asarray(host(step_size), dtype=np.float64)
        if eta.ndim > 1 or (eta.ndim == 1 and eta.size != S):
            raise ValueError(
                f"step_size must be a scalar or have one entry per strategy ({S}), "
                f"got shape {eta.shape}"
            )
        eta = np.broadcast_to(eta.reshape(-1, 1), (S, T))
        name = "step_size"
    else:
        eta = np.asarray(host(schedule), dtype=np.float64)
        if eta.shape not in ((T,), (S, T)):
            raise ValueError(f"schedule must have shape ({T},) or ({S}, {T}), got {eta.shape}")
        eta = np.broadcast_to(eta, (S, T))
        name = "schedule"
    if not np.all(np.isfinite(eta)) or np.any(eta < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    return np.ascontiguousarray(eta)


def cost_aware_sgd(
    problem: Any,
    p: Any,
    *,
    steps: int,
    trials: int = 1,
    step_size: Any = None,
    schedule: Any = None,
    seed: int = 0,
    checkpoints: Any = None,
    suffix_fraction: float = 0.5,
    x0: Any = None,
    indices: Any = None,
    dtype: Any = None,
    chunk: int = _DEFAULT_CHUNK,
    shard: bool = True,
) -> SGDResult:
    r"""Run Cost-Aware SGD (Algorithm 1): ``trials`` independent runs of ``steps`` steps
    for each sampling distribution in ``p``, in one compiled call.

    All strategies share the trials' random keys (trial ``m`` of every strategy
    uses key ``m``): differences between strategies are not seed noise. The
    compiled code is cached: a second call with the same shapes, problem type
    and static options does not recompile.

    Args:
      problem: a finite-sum problem (:class:`costsgd.problems.FiniteSum`,
        :class:`costsgd.problems.LeastSquares`).
      p: sampling distribution(s), shape ``(n,)`` or ``(S, n)``.
      steps: iterations :math:`T` per trial.
      trials: independent trials :math:`M`.
      step_size: constant :math:`\eta`, a scalar or one per strategy ``(S,)``
        (see :func:`theory_step_size`).
      schedule: step sizes per step, ``(T,)`` or ``(S, T)`` (see
        :func:`inverse_time_schedule`). Give exactly one of the two.
      seed: seed of the index draws.
      checkpoints: increasing steps in ``[1, T]`` at which errors and costs are
        recorded (default :func:`log_checkpoints`).
      suffix_fraction: :math:`\alpha` of the suffix average, in ``(0, 1]``.
      x0: starting point :math:`x_1` (default the origin), projected onto the ball.
      indices: pre-drawn component indices, ``(S, M, T)`` or ``(M, T)``, used
        instead of alias draws (for reproducing a reference run).
      dtype: float dtype of the run (default JAX's default: float32, or float64
        when x64 is enabled).
      chunk: steps per bulk draw (a performance knob; results do not depend on
        it when ``indices`` are given).
      shard: split trials across devices when JAX sees more than one.

    Returns:
      An :class:`SGDResult`.

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
    import jax.numpy as jnp

    steps = check_positive_int(steps, "steps")
    trials = check_positive_int(trials, "trials")
    chunk = min(check_positive_int(chunk, "chunk"), steps)
    if not (0 < suffix_fraction <= 1):
        raise ValueError(f"suffix_fraction must lie in (0, 1], got {suffix_fraction!r}")
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
    if np.any((P == 0) & (G > 0)):
        raise ValueError("p is zero on a component with G_i > 0: the estimator would be biased")
    S = P.shape[0]
    eta = _step_sizes(step_size, schedule, S, steps)
    sched = _make_schedule(
        steps, log_checkpoints(steps) if checkpoints is None else checkpoints, suffix_fraction
    )
    dtype = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype))
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a float dtype, got {dtype}")
    radius = float(problem.radius)
    if not radius > 0:
        raise ValueError(f"problem.radius must be > 0, got {radius!r}")

    leaves = jax.tree_util.tree_leaves(problem.data)
    if not leaves or any(np.shape(leaf)[:1] != (n,) for leaf in leaves):
        raise ValueError(f"every array of problem.data must have leading axis n = {n}")
    if problem.x_star is None:  # only f* is known: the dimension comes from x0
        if problem.hessian is not None:
            raise ValueError("problem.hessian needs problem.x_star (error = ½eᵀHe, e = x - x*)")
        if x0 is None:
            raise ValueError("x0 is required when problem.x_star is None")
        x_star = np.zeros(np.shape(x0))
    else:
        x_star = np.asarray(problem.x_star, dtype=np.float64)
    d = x_star.shape[0]
    x0 = np.zeros(d) if x0 is None else np.asarray(host(x0), dtype=np.float64)
    if x0.shape != (d,) or not np.all(np.isfinite(x0)):
        raise ValueError(f"x0 must be finite with shape ({d},), got shape {x0.shape}")
    if np.linalg.norm(x0) > radius:
        x0 = x0 * (radius / np.linalg.norm(x0))

    predrawn = indices is not None
    if predrawn:
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
        sources = jnp.asarray(idx, jnp.int32)
    else:
        sources = jax.random.split(jax.random.key(seed), trials)

    tables = [alias_table(row) for row in P]
    with np.errstate(divide="ignore"):
        weight = np.where(P > 0, 1.0 / (n * P), 0.0)
    hess = problem.hessian
    as_dtype = partial(jnp.asarray, dtype=dtype)
    arrays = _Arrays(
        data=jax.tree_util.tree_map(as_dtype, problem.data),
        c=as_dtype(c),
        weight=as_dtype(weight),
        accept=jnp.asarray(np.stack([t.threshold for t in tables])),
        alias=jnp.asarray(np.stack([t.alias for t in tables]), jnp.int32),
        radius=as_dtype(radius),
        x_star=as_dtype(x_star),
        f_star=as_dtype(float(problem.f_star)),
        hessian=None if hess is None else as_dtype(hess),
    )
    sources, pad, mesh = _shard_trials(sources, axis=1 if predrawn else 0, enabled=shard)
    grad = problem.grad if problem.grad is not None else jax.grad(problem.loss)
    state, rec = _jitted()(
        arrays,
        as_dtype(eta),
        sources,
        as_dtype(x0),
        _Schedule(*(jnp.asarray(a) for a in sched)),
        loss=problem.loss,
        grad=grad,
        chunk=chunk,
        predrawn=predrawn,
        mesh=mesh,
    )

    def out(a):
        a = np.asarray(a)[:, : a.shape[1] - pad] if pad else np.asarray(a)
        return a[0] if squeeze else a

    return SGDResult(
        steps=np.asarray(sched.steps, np.int64),
        cost=out(rec.cost),
        error_average=out(rec.error_average),
        error_suffix=out(rec.error_suffix),
        error_last=out(rec.error_last),
        final=SGDState(*(out(a) for a in state)),
    )


def _shard_trials(sources: Any, *, axis: int, enabled: bool):
    """Split the trial axis over all devices (padded to a multiple of their number).

    Returns ``(sources, pad, mesh)``; ``mesh`` is ``None`` on a single device.
    """
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = jax.devices()
    if not enabled or len(devices) == 1:
        return sources, 0, None
    count = sources.shape[axis]
    pad = -count % len(devices)
    if pad:
        reps = np.r_[np.arange(count), np.zeros(pad, np.int64)]
        sources = jax.numpy.take(sources, reps, axis=axis)
    mesh = Mesh(np.asarray(devices), ("trials",))
    spec = PartitionSpec(*([None] * axis), "trials")
    return jax.device_put(sources, NamedSharding(mesh, spec)), pad, mesh
