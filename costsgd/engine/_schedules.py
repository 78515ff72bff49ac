r"""Step sizes, schedules and checkpoints of the Cost-Aware SGD engine (host side, numpy).

A run takes either a constant step per strategy (``step_size``;
:func:`theory_step_size` gives Eq. 3's :math:`\eta = D/\sqrt{S(p)T}`) or a
schedule of length ``T`` (``schedule``; :func:`inverse_time_schedule` gives
Eq. 4's :math:`\eta_t = 1/(\mu t)`). :func:`step_sizes` turns either into the
``(S, T)`` array the kernel reads; :func:`event_schedule` flags, per step, the
checkpoints and the starts of the suffix averages.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from costsgd._validate import check_positive, check_positive_int, host
from costsgd.theory import second_moment

__all__ = [
    "EventSchedule",
    "event_schedule",
    "inverse_time_schedule",
    "log_checkpoints",
    "step_sizes",
    "theory_step_size",
]


class EventSchedule(NamedTuple):
    """The steps at which something is recorded (shared by every trial)."""

    events: Any  #: (2K,) int32: distinct event steps, increasing, padded with T + 1
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


def theory_step_size(p: Any, G: Any, *, D: float, steps: int) -> np.ndarray:
    r"""Eq. 3's constant step :math:`\eta = D/\sqrt{S(p)\,T}` for each row of ``p``.

    With it the average iterate satisfies
    :math:`\mathbb E[f(\bar x_T)] - f^* \le D\sqrt{S(p)}/\sqrt T` (§4.1).

    Args:
      p: distribution(s), shape ``(n,)`` or ``(S, n)``.
      G: gradient bounds, shape ``(n,)``.
      D: diameter of the feasible set (``2R`` for a ball).
      steps: the horizon :math:`T`.

    Returns:
      float64 array of shape ``()`` or ``(S,)``.

    Examples:
      >>> float(theory_step_size([0.5, 0.5], [1.0, 1.0], D=2.0, steps=100))
      0.2
    """
    steps = check_positive_int(steps, "steps")
    D = check_positive(D, "D")
    P = np.asarray(host(p), dtype=np.float64)
    rows = P.reshape(-1, P.shape[-1]) if P.ndim else P
    s = np.array([second_moment(row, G) for row in rows])
    return (D / np.sqrt(s * steps)).reshape(P.shape[:-1])


def event_schedule(steps: int, checkpoints: Any, suffix_fraction: float) -> EventSchedule:
    r"""The events of a run: checkpoints :math:`t_k` and suffix starts
    :math:`a_k = t_k - \lceil\alpha t_k\rceil` (where :math:`t\bar x_t` is kept).

    Raises:
      ValueError: ``checkpoints`` not strictly increasing ints within ``[1, steps]``.

    Examples:
      >>> s = event_schedule(4, [2, 4], 0.5)
      >>> s.events.tolist(), s.slot.tolist(), s.anchor.tolist(), s.anchor_steps.tolist()
      ([1, 2, 4, 5], [-1, 0, -1, 1], [True, True, False, False], [1, 2])
    """
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
    events = np.full(2 * cps.size, steps + 1, np.int32)  # one length for every checkpoint set
    distinct = np.union1d(cps, anchors[anchors > 0])
    events[: distinct.size] = distinct
    return EventSchedule(events, slot, anchor, cps.astype(np.int32), anchors.astype(np.int32))


def step_sizes(step_size: Any, schedule: Any, S: int, T: int, dtype: Any) -> tuple[np.ndarray, str]:
    """The ``(S, T)`` float64 step sizes of a run, and the name of the argument they came from.

    Raises:
      ValueError: not exactly one of the two given, a wrong shape, a negative or
        non-finite entry, or an entry that overflows ``dtype`` (e.g. ``1e39`` in
        float32).

    Examples:
      >>> eta, name = step_sizes([0.1, 0.2], None, 2, 3, np.float32)
      >>> eta.tolist(), name
      ([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2]], 'step_size')
    """
    if (step_size is None) == (schedule is None):
        raise ValueError("give exactly one of step_size (constant) or schedule (length steps)")
    if step_size is not None:
        name, eta = "step_size", np.asarray(host(step_size), dtype=np.float64)
        if eta.ndim > 1 or (eta.ndim == 1 and eta.size != S):
            raise ValueError(
                f"step_size must be a scalar or have one entry per strategy ({S}), "
                f"got shape {eta.shape}"
            )
        eta = np.broadcast_to(eta.reshape(-1, 1), (S, T))
    else:
        name, eta = "schedule", np.asarray(host(schedule), dtype=np.float64)
        if eta.shape not in ((T,), (S, T)):
            raise ValueError(f"schedule must have shape ({T},) or ({S}, {T}), got {eta.shape}")
        eta = np.broadcast_to(eta, (S, T))
    if not np.all(np.isfinite(eta)) or np.any(eta < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    top, largest = float(eta.max()), float(np.finfo(dtype).max)
    if top > largest:
        raise ValueError(
            f"{name} = {top!r} overflows the run's {np.dtype(dtype).name} "
            f"(largest finite value {largest:.3g})"
        )
    return np.ascontiguousarray(eta), name
