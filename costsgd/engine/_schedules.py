r"""Step sizes, schedules and checkpoints of the Cost-Aware SGD engine (host side, numpy).

A run's ``step_size`` is a scalar, one per strategy, or a schedule: a function
of the step number :math:`t = 1, 2, \dots` (optax's scalar-or-schedule).
:func:`theory_step_size` gives Eq. 3's constant :math:`\eta = D/\sqrt{S(p)T}`,
:func:`inverse_time_schedule` Eq. 4's :math:`\eta_t = 1/(\mu t)`.
:func:`step_sizes` turns any of them into the ``(S, T)`` array the kernel
reads; :func:`event_schedule` flags, per step, the checkpoints and the starts
of the suffix averages.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from costsgd._validate import check_gradient_norms, check_positive, check_positive_int, host

__all__ = [
    "EventSchedule",
    "check_suffix_fraction",
    "event_schedule",
    "inverse_time_schedule",
    "log_checkpoints",
    "step_sizes",
    "theory_step_size",
]


class EventSchedule(NamedTuple):
    """The steps at which something is recorded (shared by every trial)."""

    events: Any  #: (2K + 1,) int32: distinct event steps, increasing, padded with T + 1
    slot: Any  #: (T,) int32: checkpoint index written after step t, or -1
    anchor: Any  #: (T,) bool: some suffix starts right after step t
    steps: Any  #: (K,) checkpoint steps t_k
    anchor_steps: Any  #: (K,) a_k = t_k - ceil(alpha t_k)


def log_checkpoints(steps: int, num: int = 50) -> np.ndarray:
    """About ``num`` log-spaced checkpoint steps in ``[1, steps]``, always ending at ``steps``.

    Examples:
      >>> log_checkpoints(1000, 4).tolist()
      [1, 10, 100, 1000]
    """
    steps, num = check_positive_int(steps, "steps"), check_positive_int(num, "num")
    return np.unique(np.rint(np.geomspace(1, steps, num)).astype(np.int64))


def inverse_time_schedule(mu: float, *, offset: float = 0.0) -> Callable[[Any], Any]:
    r"""Eq. 4's decaying step :math:`\eta_t = 1/(\mu (t + t_0))` as a schedule, a function
    of the step number :math:`t \ge 1` (numpy or JAX integers, any shape).

    Raises:
      ValueError: ``mu`` or ``offset`` not finite and positive (``offset >= 0``), or
        :math:`1/(\mu(1 + t_0))` beyond float64 (``mu=1e-310``: every step infinite).

    Examples:
      >>> schedule = inverse_time_schedule(0.5)
      >>> schedule(np.arange(1, 4)).tolist()
      [2.0, 1.0, 0.6666666666666666]
    """
    mu = _finite_number(mu, "mu")
    offset = _finite_number(offset, "offset")
    if not mu > 0:
        raise ValueError(f"mu must be finite and > 0, got {mu!r}")
    if not offset >= 0:
        raise ValueError(f"offset must be finite and >= 0, got {offset!r}")
    with np.errstate(over="ignore", divide="ignore"):
        first = 1.0 / (mu * (1.0 + offset))
    if not np.isfinite(first):
        raise ValueError(f"mu={mu!r}: the first step 1/(mu (1 + offset)) overflows float64")

    def schedule(t):
        return 1.0 / (mu * (t + offset))

    schedule.__doc__ = f"eta_t = 1 / ({mu!r} (t + {offset!r}))"
    return schedule


def theory_step_size(p: Any, G: Any, *, D: float, steps: int) -> np.ndarray:
    r"""Eq. 3's constant step :math:`\eta = D/\sqrt{S(p)\,T}` for each row of ``p``.

    With it the average iterate satisfies
    :math:`\mathbb E[f(\bar x_T)] - f^* \le D\sqrt{S(p)}/\sqrt T` (§4.1).
    :math:`\sqrt{S(p)}` is computed with :math:`G` scaled by its largest entry, so
    the step stays finite where :math:`S(p)` itself would overflow.

    Args:
      p: distribution(s), shape ``(n,)`` or ``(S, n)``.
      G: gradient bounds, shape ``(n,)``.
      D: diameter of the feasible set (``2R`` for a ball).
      steps: the horizon :math:`T`.

    Returns:
      float64 array of shape ``()`` or ``(S,)``.

    Raises:
      ValueError: ``p`` is zero on a component with :math:`G_i > 0`
        (:math:`S(p)` is infinite, the estimator biased), or bad input.

    Examples:
      >>> float(theory_step_size([0.5, 0.5], [1.0, 1.0], D=2.0, steps=100))
      0.2
    """
    steps = check_positive_int(steps, "steps")
    D = check_positive(D, "D")
    G = np.asarray(check_gradient_norms(G, "G"), dtype=np.float64)
    try:
        P = np.asarray(host(p), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"p must be an array of probabilities: {err}") from None
    if P.ndim not in (1, 2) or P.shape[-1] != G.size:
        raise ValueError(f"p must have shape ({G.size},) or (S, {G.size}), got {P.shape}")
    rows = P.reshape(-1, G.size)
    if np.any((rows == 0) & (G > 0)):
        raise ValueError("p is zero on a component with G_i > 0: S(p) is infinite")
    scale = G.max()
    keep = G > 0
    with np.errstate(over="ignore"):
        total = np.sum((G[keep] / scale) ** 2 / rows[:, keep], axis=1)
    root_s = scale / G.size * np.sqrt(total)  # sqrt(S(p)), S = (1/n^2) sum G_i^2 / p_i
    return (D / (root_s * np.sqrt(steps))).reshape(P.shape[:-1])


def check_suffix_fraction(value: Any) -> float:
    r""":math:`\alpha` of the suffix average as a float in ``(0, 1]``.

    Raises:
      TypeError: not a real number. ValueError: outside ``(0, 1]``.
    """
    value = _finite_number(value, "suffix_fraction", allow_inf=True)
    if not 0 < value <= 1:
        raise ValueError(f"suffix_fraction must lie in (0, 1], got {value!r}")
    return value


def _finite_number(value: Any, name: str, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (allow_inf or np.isfinite(value)) or np.isnan(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def event_schedule(steps: int, checkpoints: Any, suffix_fraction: float) -> EventSchedule:
    r"""The events of a run: checkpoints :math:`t_k` and suffix starts
    :math:`a_k = t_k - \lceil\alpha t_k\rceil` (where :math:`t\bar x_t` is kept).

    ``checkpoints`` are strictly increasing integers (any integer dtype) in
    ``[1, steps]``; the last need not be ``steps``.

    Raises:
      ValueError: ``checkpoints`` not strictly increasing ints within ``[1, steps]``.

    Examples:
      >>> s = event_schedule(4, [2, 4], 0.5)
      >>> s.events.tolist(), s.slot.tolist(), s.anchor.tolist(), s.anchor_steps.tolist()
      ([1, 2, 4, 5, 5], [-1, 0, -1, 1], [True, True, False, False], [1, 2])
    """
    cps = np.asarray(checkpoints)
    if cps.dtype == object:  # Python ints beyond int64
        cps = np.asarray(checkpoints, dtype=float) if cps.ndim == 1 else cps
    if cps.ndim != 1 or cps.size == 0 or not np.issubdtype(cps.dtype, np.integer):
        raise ValueError(f"checkpoints must be a non-empty 1-D array of ints, got {checkpoints!r}")
    if cps.min() < 1 or cps.max() > steps:
        raise ValueError(f"checkpoints must increase strictly within [1, steps={steps}]")
    cps = cps.astype(np.int64)  # safe: within [1, steps]; uint64 differences would wrap
    if np.any(np.diff(cps) <= 0):
        raise ValueError(f"checkpoints must increase strictly within [1, steps={steps}]")
    m = np.maximum(1, np.ceil(suffix_fraction * cps - 1e-9)).astype(np.int64)
    anchors = cps - m
    slot = np.full(steps, -1, np.int32)
    slot[cps - 1] = np.arange(cps.size, dtype=np.int32)
    anchor = np.zeros(steps, bool)
    anchor[anchors[anchors > 0] - 1] = True
    # one length for every checkpoint set, and at least one sentinel T + 1 after the last
    # event, so a run whose last checkpoint is before T still reaches T
    events = np.full(2 * cps.size + 1, steps + 1, np.int32)
    distinct = np.union1d(cps, anchors[anchors > 0])
    events[: distinct.size] = distinct
    return EventSchedule(events, slot, anchor, cps.astype(np.int32), anchors.astype(np.int32))


def step_sizes(step_size: Any, S: int, T: int, dtype: Any) -> tuple[np.ndarray, bool]:
    """The ``(S, T)`` float64 step sizes of a run, and whether they are constant per strategy.

    ``step_size`` is a scalar, an ``(S,)`` array (one per strategy) or a schedule:
    a function of the step numbers ``t = 1..T`` (an int64 array of shape
    ``(T,)``) returning ``()``, ``(T,)`` or ``(S, T)`` step sizes.

    Raises:
      TypeError: not a number, an array or a callable.
      ValueError: a wrong shape, a negative or non-finite entry, or an entry that
        overflows ``dtype`` (e.g. ``1e39`` in float32).

    Examples:
      >>> eta, constant = step_sizes([0.1, 0.2], 2, 3, np.float32)
      >>> eta.tolist(), constant
      ([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2]], True)
      >>> step_sizes(lambda t: 1.0 / t, 1, 3, np.float32)[0].tolist()
      [[1.0, 0.5, 0.3333333333333333]]
    """
    if step_size is None:
        raise ValueError("step_size is required: a number, one per strategy, or a schedule")
    constant = not callable(step_size)
    if constant:
        eta = _as_floats(step_size)
        if eta.ndim > 1 or (eta.ndim == 1 and eta.size != S):
            raise ValueError(
                f"step_size must be a scalar, have one entry per strategy ({S}) or be a "
                f"schedule (a function of t), got shape {eta.shape}"
            )
        eta = np.broadcast_to(eta.reshape(-1, 1), (S, T))
    else:
        eta = _as_floats(step_size(np.arange(1, T + 1)))
        if eta.shape not in ((), (T,), (S, T)):
            raise ValueError(
                f"step_size(t) for t = 1..{T} must have shape (), ({T},) or ({S}, {T}), "
                f"got {eta.shape}"
            )
        eta = np.broadcast_to(eta, (S, T))
    if not np.all(np.isfinite(eta)) or np.any(eta < 0):
        raise ValueError("step_size must be finite and >= 0")
    top, largest = float(eta.max()), float(np.finfo(dtype).max)
    if top > largest:
        raise ValueError(
            f"step_size = {top!r} overflows the run's {np.dtype(dtype).name} "
            f"(largest finite value {largest:.3g})"
        )
    return np.ascontiguousarray(eta), constant


def _as_floats(value: Any) -> np.ndarray:
    try:
        return np.asarray(host(value), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"step_size must be a number, an array or a schedule, got {value!r} ({err})"
        ) from None
