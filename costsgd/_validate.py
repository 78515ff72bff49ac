"""Input validation: one place that checks arrays and raises clear errors.

Every public function of the samplers and theory layers calls these checks
before it computes anything, so bad input fails at the call that received it
(``ValueError`` naming the argument and the offending entries) instead of
surfacing as a NaN several calls later.

The checks are backend-generic: numpy, JAX and torch arrays are inspected
through the array API namespace they belong to. Arrays that are being traced
by JAX (inside ``jit``/``vmap``) cannot be inspected; for those the value
checks are skipped and only the static shape checks run.
"""

from __future__ import annotations

import numbers
import sys
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "as_array",
    "as_generator",
    "check_alpha",
    "check_costs",
    "check_gradient_norms",
    "check_probabilities",
    "check_real",
    "check_same_shape",
    "host",
    "is_traced",
    "namespace",
]

_MAX_LISTED = 5


def namespace(**arrays: Any):
    """The array API namespace shared by the named ``arrays`` (numpy for plain sequences).

    Raises:
      TypeError: naming the arguments when they come from different libraries
        (a numpy ``G`` with a torch ``c``, say).
    """
    given = {k: a for k, a in arrays.items() if array_api_compat.is_array_api_obj(a)}
    if not given:
        return array_api_compat.array_namespace(np.zeros(0))
    try:
        return array_api_compat.array_namespace(*given.values())
    except TypeError as err:
        kinds = ", ".join(
            f"{k} is {type(a).__module__}.{type(a).__name__}" for k, a in given.items()
        )
        raise TypeError(f"{', '.join(given)} must be arrays of one library: {kinds}") from err


def as_array(x: Any, name: str):
    """Return ``x`` as an array of its own backend, floating point, at least 1-D.

    Lists, tuples and scalars become numpy ``float64`` arrays. Integer arrays are
    cast to the backend's default floating dtype, float16 and bfloat16 to float32
    (their range and resolution cannot hold probabilities over many components). Raises ``ValueError`` naming
    ``name`` for anything that is not a 1-D non-empty array.
    """
    if not array_api_compat.is_array_api_obj(x):
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}") from err
    xp = array_api_compat.array_namespace(x)
    if xp.isdtype(x.dtype, "real floating") and xp.finfo(x.dtype).bits < 32:
        x = xp.astype(x, xp.float32)  # float16/bfloat16: computed at a safe precision
    if not xp.isdtype(x.dtype, "real floating"):
        if xp.isdtype(x.dtype, "bool") or not xp.isdtype(x.dtype, "numeric"):
            raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
        if xp.isdtype(x.dtype, "complex floating"):
            raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
        x = xp.astype(x, xp.asarray(0.0).dtype)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: at least one component is needed")
    return x


def as_generator(rng: Any, name: str = "rng") -> np.random.Generator:
    """A numpy Generator from ``None``, an int seed >= 0 or a Generator (SPEC 7).

    Raises:
      TypeError: naming ``name`` for anything else (a float, a torch or JAX key, ...).
      ValueError: naming ``name`` for a negative seed.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral):
        raise TypeError(
            f"{name} must be None, an int seed or a numpy.random.Generator, "
            f"got {type(rng).__name__}"
        )
    if rng < 0:
        raise ValueError(f"{name} must be a seed >= 0, got {rng!r}")
    return np.random.default_rng(int(rng))


def is_traced(x: Any) -> bool:
    """True when ``x`` is a JAX tracer (its values are unknown at trace time)."""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(x, jax.core.Tracer)


def host(x: Any) -> np.ndarray:
    """A numpy copy of ``x`` (for error messages and host-side algorithms)."""
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu()
    return np.asarray(x)


def _bad_entries(mask: Any, values: Any) -> str:
    idx = np.flatnonzero(host(mask))
    vals = host(values)[idx]
    shown = ", ".join(
        f"[{i}]={v!r}" for i, v in zip(idx[:_MAX_LISTED], vals[:_MAX_LISTED].tolist(), strict=True)
    )
    more = f" and {idx.size - _MAX_LISTED} more" if idx.size > _MAX_LISTED else ""
    return f"{idx.size} entr{'y' if idx.size == 1 else 'ies'}: {shown}{more}"


def _value_summary(x: Any, with_sum: bool) -> np.ndarray:
    """[min, max(, sum)] of ``x`` in one host transfer.

    NaN propagates through min and max and an infinity shows in one of them, so
    these two reductions decide finiteness, sign and positivity at once. One
    transfer and few kernels matter for arrays on a GPU, where every
    ``bool(...)`` is a device synchronisation.
    """
    xp = array_api_compat.array_namespace(x)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is inf: checked
        parts = [xp.min(x), xp.max(x)] + ([xp.sum(x)] if with_sum else [])
        return host(xp.stack(parts))


def _check_finite_nonnegative(x: Any, name: str, with_sum: bool = False) -> np.ndarray | None:
    """Raise unless ``x`` is finite and >= 0; return ``[min, max(, sum)]`` (None if traced)."""
    if is_traced(x):
        return None
    summary = _value_summary(x, with_sum)
    if not (np.isfinite(summary[0]) and np.isfinite(summary[1])):
        bad = ~array_api_compat.array_namespace(x).isfinite(x)
        raise ValueError(f"{name} must be finite; non-finite {_bad_entries(bad, x)}")
    if summary[0] < 0:
        raise ValueError(f"{name} must be non-negative; negative {_bad_entries(x < 0, x)}")
    return summary


def check_gradient_norms(G: Any, name: str = "G"):
    """Validate gradient-norm bounds G_i: finite, >= 0, not all zero."""
    G = as_array(G, name)
    summary = _check_finite_nonnegative(G, name)
    if summary is not None and not summary[1] > 0:
        raise ValueError(
            f"{name} is zero everywhere: no component carries gradient signal, "
            "so no sampling distribution is defined"
        )
    return G


def check_costs(c: Any, name: str = "c"):
    """Validate per-component costs c_i: finite and >= 0 (zeros are legal)."""
    c = as_array(c, name)
    _check_finite_nonnegative(c, name)
    return c


def check_probabilities(p: Any, name: str = "p"):
    """Validate a distribution over components: finite, >= 0, sums to 1.

    The sum may miss 1 by rounding: up to ``max(1e-6, 16 eps sqrt(n))`` with
    ``eps`` the input dtype's machine epsilon (float32 probabilities over a
    million components sum to 1 only to about 1e-4), and never more than 1e-3.
    """
    eps = _input_eps(p)
    p = as_array(p, name)
    summary = _check_finite_nonnegative(p, name, with_sum=True)
    if summary is not None:
        total = float(summary[2])
        atol = min(1e-3, max(1e-6, 16 * eps * p.shape[0] ** 0.5))
        if abs(total - 1.0) > atol:
            raise ValueError(f"{name} must sum to 1, sums to {total!r}")
    return p


def _input_eps(x: Any) -> float:
    """Machine epsilon of ``x``'s own floating dtype (float64's for anything else)."""
    dtype = getattr(x, "dtype", None)
    try:
        return float(array_api_compat.array_namespace(x).finfo(dtype).eps)
    except (TypeError, ValueError, AttributeError):
        return float(np.finfo(np.float64).eps)


def check_same_shape(**arrays: Any) -> None:
    """Raise ``ValueError`` unless every named array has the same shape."""
    shapes = {name: tuple(a.shape) for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shape mismatch: {listed}")


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """Validate a smoothing weight in [0, 1]."""
    try:
        value = float(alpha)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number in [0, 1], got {alpha!r}") from err
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must lie in [0, 1], got {alpha!r}")
    return value


def check_real(x: Any, name: str) -> float:
    """A real scalar as a float; a string, a bool or anything ``float()`` refuses is a
    ``TypeError`` naming ``name`` (NaN and infinities pass: range checks are the caller's)."""
    if isinstance(x, (str, bytes, bool)):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__} {x!r}")
    try:
        return float(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real number, got {type(x).__name__} {x!r}") from err


def check_positive(x: Any, name: str) -> float:
    """A finite scalar > 0 as a float (step sizes, tolerances, radii, Γ, ε, ...)."""
    try:
        value = float(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number, got {x!r}") from err
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {x!r}")
    return value


def check_positive_int(value: Any, name: str) -> int:
    """An integer >= 1 (a Python or numpy integer; bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
