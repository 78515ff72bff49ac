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

The steps are the problem type's own (:class:`costsgd.problems.GradientStep`,
the generic step for any :class:`costsgd.problems.FiniteSum`), the same
:func:`costsgd.sgd_step` that :func:`costsgd.sgd_algorithm` runs in a user's
loop; this module adds the host-side checks, the choice of backend (XLA's step,
or the problem type's native loop on a CPU), the jitted batch over strategies
and trials, and the results.

The error :math:`f(\hat x) - f^*` costs O(d²) (quadratic problems, ½eᵀHe) or
O(nd), so it is evaluated only at the ``K`` checkpoints. Per step the work is
O(d): indices come from Walker alias tables (:func:`costsgd.draw.sample_jax`,
drawn in bulk once per chunk of steps) or from caller-supplied indices, never
from an O(n) categorical draw.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import numpy as np

from costsgd._validate import check_positive_int
from costsgd.engine._arrays import engine_arrays
from costsgd.engine._batch import COMPILER_OPTIONS, compiled, place_indices, trial_mesh
from costsgd.engine._checks import (
    as_key,
    check_dtype,
    check_indices,
    check_problem,
    check_strategies,
    is_indices,
)
from costsgd.engine._kernel import SGDState
from costsgd.engine._native import notice
from costsgd.engine._native import status as native_status
from costsgd.engine._options import check_options
from costsgd.engine._schedules import event_schedule, log_checkpoints, step_sizes

__all__ = ["SGDResult", "cost_aware_sgd"]


class SGDResult(NamedTuple):
    """Output of :func:`cost_aware_sgd` (numpy arrays, and where they came from).

    Leading axes ``(S, M)``: strategies and trials (``S`` is dropped when a
    single 1-D ``p`` was given).
    """

    steps: np.ndarray  #: checkpoint steps t_k, shape (K,)
    cost: np.ndarray  #: cumulative cost at each checkpoint, (S, M, K)
    error_average: np.ndarray  #: f(x̄_t) - f*, (S, M, K)
    error_suffix: np.ndarray  #: f(suffix average) - f*, (S, M, K)
    error_last: np.ndarray  #: f(x_{t+1}) - f*, (S, M, K)
    final: SGDState  #: state after the last step, arrays (S, M, d) / (S, M)
    provenance: dict  #: ``engine_backend`` ("native" or "xla"), its compiler and options


def cost_aware_sgd(
    problem: Any,
    p: Any,
    *,
    steps: int,
    step_size: Any,
    trials: int = 1,
    key: Any = 0,
    checkpoints: Any = None,
    x0: Any = None,
    options: Any = None,
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
        :func:`costsgd.least_squares`, :func:`costsgd.logistic_regression`).
      p: sampling distribution(s), shape ``(n,)`` or ``(S, n)``.
      steps: iterations :math:`T` per trial.
      step_size: a number :math:`\eta`, one per strategy ``(S,)``
        (:func:`costsgd.theory_step_size`), or a schedule: a function of the
        step numbers ``t = 1..T`` (an int array ``(T,)``) returning shape
        ``()``, ``(T,)`` or ``(S, T)`` (:func:`costsgd.inverse_time_schedule`).
      trials: independent trials :math:`M`.
      key: the index draws' randomness: an int seed, a JAX PRNG key, or the
        draws themselves, pre-drawn component indices ``(M, T)`` or
        ``(S, M, T)`` (to replay a reference run).
      checkpoints: strictly increasing integers in ``[1, T]`` (any integer
        dtype; the last need not be ``T``) at which errors and costs are
        recorded (default :func:`costsgd.log_checkpoints`).
      x0: starting point :math:`x_1` (default the origin), projected onto the ball.
      options: an :class:`costsgd.EngineOptions`: chunk, sharding, backend
        (``"auto"``: the problem type's native loop on a CPU where it builds,
        else XLA's step; ``"xla"``; ``"native"``), dtype, suffix fraction, XLA
        compiler options (default ``EngineOptions()``).

    Returns:
      An :class:`SGDResult`; its ``provenance`` says which backend ran.

    Raises:
      ValueError: bad input, naming the argument or the problem's field; or a run
        that diverged (non-finite errors), naming the strategy and its step size.
      TypeError: an argument of the wrong type (``key`` neither a key, a seed nor
        indices; ``x0`` not numbers; ...), naming it.
      RuntimeError: ``backend="native"`` and the native loop cannot be built
        (the message says why).

    Examples:
      >>> import costsgd as cs
      >>> prob = cs.least_squares(300, 5, rng=0)
      >>> P = np.stack([cs.uniform(prob.G, prob.c), cs.optimal(prob.G, prob.c)])
      >>> res = cost_aware_sgd(prob, P, steps=2000, trials=8, step_size=1e-3,
      ...                      checkpoints=[100, 2000])
      >>> res.error_average.shape
      (2, 8, 2)
      >>> bool(np.all(res.error_average[:, :, -1] < res.error_average[:, :, 0]))
      True
    """
    import jax

    from costsgd.problems import gradient_step

    steps = check_positive_int(steps, "steps")
    trials = check_positive_int(trials, "trials")
    options = check_options(options)
    chunk = min(options.chunk, steps)
    P, squeeze = check_strategies(p, problem)
    S, n = P.shape
    dtype = check_dtype(options.dtype)
    eta, constant = step_sizes(step_size, S, steps, dtype)
    events = event_schedule(
        steps,
        log_checkpoints(steps) if checkpoints is None else checkpoints,
        options.suffix_fraction,
    )
    x_star, x0 = check_problem(problem, n, x0)
    step = gradient_step(problem)
    predrawn = is_indices(key)
    mesh, pad = trial_mesh(trials, enabled=options.shard)
    if predrawn:
        sources = np.asarray(check_indices(key, P, trials, steps), np.int32)
        sources = place_indices(sources, mesh, pad)
    else:
        sources = as_key(key)
    platform = jax.devices()[0].platform
    native = _backend(options.backend, step, platform)
    xla = COMPILER_OPTIONS.get(platform, {}) if options.xla_options is None else options.xla_options
    arrays = engine_arrays(problem, P, x_star, dtype, step, native=native is not None)
    state, rec = compiled(platform, xla)(
        arrays,
        np.asarray(eta, dtype),
        sources,
        np.asarray(x0, dtype),
        events,
        loss=problem.loss,
        step=step,
        target=None if native is None else native.target,
        chunk=chunk,
        predrawn=predrawn,
        segmented=platform == "cpu",
        mesh=mesh,
        trials=trials + pad,
    )
    result = _collect(state, rec, events.steps, pad, squeeze, _provenance(native, xla))
    _check_converged(result, eta, constant, squeeze)
    return result


def _backend(backend: str, step: Any, platform: str):
    """The native loop's status when the steps run in it, else None (XLA's step)."""
    if backend == "xla":
        return None
    loop = step.native
    if backend == "native":
        if loop is None:
            raise ValueError(
                "backend='native' needs a problem type with a native loop (least squares); "
                "this problem's steps have none"
            )
        if platform != "cpu":
            raise ValueError(f"backend='native' runs on CPUs; this run is on {platform!r}")
    if loop is None or platform != "cpu":
        return None
    st = native_status(loop)
    if st.available:
        return st
    if backend == "native":
        raise RuntimeError(f"the native step loop is unavailable: {st.reason}")
    if not st.reason.startswith("turned off"):
        notice(
            f"running XLA's step, slower than the native loop, which is unavailable: {st.reason}"
        )
    return None


def _provenance(native: Any, xla: dict) -> dict:
    """Where the results came from, for a results file's provenance."""
    out = {"engine_backend": "xla" if native is None else "native"}
    if native is not None:
        out.update(engine_compiler=native.compiler, engine_compiler_flags=native.flags)
    out["engine_xla_options"] = json.dumps(xla, sort_keys=True)
    return out


def _collect(state, rec, steps, pad: int, squeeze: bool, provenance: dict) -> SGDResult:
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
        provenance=provenance,
    )


def _check_converged(result: SGDResult, eta: np.ndarray, constant: bool, squeeze: bool) -> None:
    """Raise when a strategy's run produced non-finite errors or costs (it diverged)."""
    values = (result.cost, result.error_average, result.error_suffix, result.error_last)
    rows = [v.reshape(1, -1) if squeeze else v.reshape(v.shape[0], -1) for v in values]
    bad = ~np.all([np.isfinite(v).all(axis=1) for v in rows], axis=0)
    if not np.any(bad):
        return
    s = int(np.flatnonzero(bad)[0])
    where = "" if squeeze else f" for strategy p[{s}]"
    size = f"{eta[s, 0]:.3g}" if constant else f"up to {eta[s].max():.3g}"
    raise ValueError(
        f"the run diverged{where}: non-finite errors or costs with step_size {size} "
        f"(too large for the run's precision); use smaller step sizes"
    )
