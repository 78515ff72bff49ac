"""Host-side checks of the engine's inputs: each bad input raises naming its argument.

Shared by :func:`costsgd.cost_aware_sgd` and :func:`costsgd.sgd_algorithm`; all
numpy, before anything is compiled.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from costsgd._validate import check_costs, check_gradient_norms, check_probabilities, host

__all__ = [
    "THREEFRY",
    "as_key",
    "check_dtype",
    "check_indices",
    "check_problem",
    "check_strategies",
    "floats",
    "is_indices",
]

#: The PRNG implementation whose raw keys the engine takes (JAX's default).
THREEFRY = "threefry2x32"


def floats(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array; ``TypeError`` naming ``name`` when it holds no numbers."""
    try:
        return np.asarray(host(value), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers, got {value!r} ({err})") from None


def _finite(value: Any, name: str) -> np.ndarray:
    arr = floats(value, name)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; it has {int(np.sum(~np.isfinite(arr)))} NaN/inf")
    return arr


def check_strategies(p: Any, problem: Any) -> tuple[np.ndarray, bool]:
    """``p`` as float64 ``(S, n)`` (and whether it was 1-D), checked against the problem."""
    P = floats(p, "p")
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


def check_dtype(dtype: Any):
    """The run's float dtype: float32 or float64 (JAX's default when None)."""
    import jax
    import jax.numpy as jnp

    try:
        dtype = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype))
    except TypeError as err:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r} ({err})") from None
    if dtype not in (jnp.float32, jnp.float64):
        raise ValueError(
            f"dtype must be float32 or float64, got {dtype} (half precision overflows "
            "at 6.5e4 and is not supported)"
        )
    return dtype


def check_problem(problem: Any, n: int, x0: Any) -> tuple[np.ndarray, np.ndarray]:
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
        x_star = np.zeros(np.shape(floats(x0, "x0")))
    else:
        x_star = _finite(problem.x_star, "problem.x_star")
    if problem.hessian is not None:
        _finite(problem.hessian, "problem.hessian")
    d = x_star.shape[0]
    x0 = np.zeros(d) if x0 is None else floats(x0, "x0")
    if x0.shape != (d,) or not np.all(np.isfinite(x0)):
        raise ValueError(f"x0 must be finite with shape ({d},), got shape {x0.shape}")
    return x_star, _into_ball(x0, radius)


def _into_ball(x0: np.ndarray, radius: float) -> np.ndarray:
    """``x0`` projected onto the ball, its norm taken on ``x0 / max|x0|`` so that a norm
    beyond float64 still gives the point on the sphere in ``x0``'s direction."""
    top = float(np.max(np.abs(x0), initial=0.0))
    if top == 0.0:
        return x0
    unit = x0 / top
    norm = np.linalg.norm(unit)
    with np.errstate(over="ignore"):
        outside = top * norm > radius
    return unit * (radius / norm) if outside else x0


def check_indices(indices: Any, P: np.ndarray, trials: int, steps: int) -> np.ndarray:
    """Pre-drawn indices as ``(S, M, T)`` ints in range, never on a component with p_i = 0."""
    S, n = P.shape
    idx = np.asarray(host(indices))
    if idx.shape == (trials, steps):
        idx = np.broadcast_to(idx, (S, trials, steps))
    if idx.shape != (S, trials, steps) or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(
            f"key as pre-drawn indices must be ints of shape ({trials}, {steps}) or "
            f"({S}, {trials}, {steps}), got {idx.dtype} {idx.shape}"
        )
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"pre-drawn indices (key) must lie in [0, {n})")
    if np.any(np.take_along_axis(P, idx.reshape(S, -1).astype(np.int64), axis=1) == 0):
        raise ValueError("pre-drawn indices (key) draw a component whose p_i is 0")
    return idx


def is_indices(key: Any) -> bool:
    """Whether ``key`` holds pre-drawn indices (an int array of 2 or 3 dimensions)."""
    return (
        not isinstance(key, numbers.Integral)
        and np.ndim(key) in (2, 3)
        and np.issubdtype(np.asarray(host(key)).dtype, np.integer)
    )


def as_key(key: Any):
    """``key`` as the engine takes it: the ``uint32[2]`` data of a threefry key
    (wrapped into a key inside the compiled program, so neither seeding nor
    unwrapping compiles a program of its own, and every seed and key takes the
    same program), or a typed JAX key of another PRNG implementation.

    ``key`` is a typed key, a raw ``uint32[2]`` threefry key, or an int seed in
    ``[-2**63, 2**63)`` (``jax.random.key(seed)``; for ``0 <= seed < 2**32``
    its threefry data is ``[0, seed]``, computed here).
    """
    import jax

    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        key = int(key)
        if not -(2**63) <= key < 2**63:
            raise ValueError(f"key as an int seed must lie in [-2**63, 2**63), got {key}")
        if 0 <= key < 2**32 and jax.config.jax_default_prng_impl == THREEFRY:
            return np.array([0, key], np.uint32)
        key = jax.random.key(key)
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key, got shape {key.shape}")
        if str(jax.random.key_impl(key)) == THREEFRY:
            return np.asarray(jax.random.key_data(key), np.uint32)
        return key
    if dtype == np.uint32 and np.shape(key) == (2,):
        return np.asarray(key, np.uint32)
    raise TypeError(
        f"key must be a JAX PRNG key, an int seed or pre-drawn indices, got {type(key).__name__}"
    )
