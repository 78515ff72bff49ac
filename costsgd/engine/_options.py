"""How a run of the engine is executed: one options object, checked in one place."""

from __future__ import annotations

from typing import Any, NamedTuple

from costsgd._validate import check_positive_int
from costsgd.engine._schedules import check_suffix_fraction

__all__ = ["BACKENDS", "EngineOptions", "check_options"]

#: The step backends: ``auto`` (the problem type's native loop on a CPU where it
#: builds, else XLA's step), ``xla`` and ``native`` (required).
BACKENDS = ("auto", "xla", "native")


class EngineOptions(NamedTuple):
    r"""Execution options of :func:`costsgd.cost_aware_sgd`; none changes the iterates
    beyond rounding except ``dtype``, and ``suffix_fraction`` only picks what is recorded.

    Examples:
      >>> EngineOptions(backend="xla", chunk=100)._replace(dtype="float64").dtype
      'float64'
    """

    chunk: int = 250  #: steps per bulk draw of indices (results do not depend on it)
    shard: bool = True  #: split trials across devices when JAX sees more than one
    backend: str = "auto"  #: ``"auto"``, ``"xla"`` or ``"native"`` (see :data:`BACKENDS`)
    dtype: Any = None  #: float32 or float64 (None: JAX's default, float32 unless x64 is on)
    suffix_fraction: float = 0.5  #: α of the recorded suffix average, in (0, 1] (App. F.3)
    xla_options: dict | None = None  #: XLA compiler options (None: the engine's, per platform)


def check_options(options: Any) -> EngineOptions:
    """``options`` (None for the defaults) checked, each bad field named.

    Raises:
      TypeError: not an :class:`EngineOptions`, or a field of the wrong type.
      ValueError: a field out of range.
    """
    if options is None:
        return EngineOptions()
    if not isinstance(options, EngineOptions):
        raise TypeError(f"options must be an EngineOptions, got {type(options).__name__}")
    check_positive_int(options.chunk, "options.chunk")
    if not isinstance(options.shard, bool):
        raise TypeError(f"options.shard must be True or False, got {options.shard!r}")
    if options.backend not in BACKENDS:
        raise ValueError(f"options.backend must be one of {BACKENDS}, got {options.backend!r}")
    if options.xla_options is not None and not isinstance(options.xla_options, dict):
        raise TypeError(f"options.xla_options must be a dict, got {options.xla_options!r}")
    try:
        check_suffix_fraction(options.suffix_fraction)
    except (TypeError, ValueError) as err:
        raise type(err)(f"options.{err}") from None
    return options
