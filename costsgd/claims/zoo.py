r"""Random instances for the claims: heavy-tailed :math:`G` and :math:`c` over many
orders of magnitude, ties, near-zero and zero :math:`G`, one dominating cost, many sizes.

Each generator takes a numpy ``Generator`` and ``quick`` (fewer, smaller instances)
and returns keyword arguments for a claim function; the runner calls them with a
seeded generator, so a seed fixes every instance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SIZES", "costs", "gradient_norms", "instances"]

SIZES = (1, 2, 3, 5, 10, 40, 200, 1000)
_G_KINDS = ("lognormal", "near_zero", "ties", "zeros", "pareto")
_C_KINDS = ("log_uniform", "lognormal", "ties", "dominant")


def gradient_norms(rng: np.random.Generator, n: int, kind: str, *, positive: bool = False):
    """:math:`G_i \\ge 0` (``> 0`` when ``positive``), never all zero.

    ``lognormal``: :math:`e^{3\\xi}`; ``near_zero``: a tenth of them at 1e-12;
    ``ties``: three values; ``zeros``: a tenth exactly 0; ``pareto``: tail index 1.1.
    """
    if kind == "lognormal":
        G = rng.lognormal(0.0, 3.0, n)
    elif kind == "near_zero":
        G = rng.lognormal(0.0, 1.0, n)
        G[rng.random(n) < 0.1] = 1e-12
    elif kind == "ties":
        G = rng.choice([0.5, 1.0, 2.0], n)
    elif kind == "zeros":
        G = rng.lognormal(0.0, 1.0, n)
        G[rng.random(n) < 0.1] = 1e-12 if positive else 0.0
    elif kind == "pareto":
        G = 1.0 + rng.pareto(1.1, n)
    else:
        raise ValueError(f"kind must be one of {_G_KINDS}, got {kind!r}")
    if not np.any(G > 0):
        G[0] = 1.0
    return G


def costs(rng: np.random.Generator, n: int, kind: str):
    """:math:`c_i > 0`: ``log_uniform`` over 1e-6..1e6, ``lognormal`` :math:`e^{4\\xi}`,
    ``ties`` (three values), ``dominant`` (one cost 1e8, the rest in [1, 2])."""
    if kind == "log_uniform":
        return 10.0 ** rng.uniform(-6.0, 6.0, n)
    if kind == "lognormal":
        return rng.lognormal(0.0, 4.0, n)
    if kind == "ties":
        return rng.choice([1.0, 10.0, 100.0], n)
    if kind == "dominant":
        c = rng.uniform(1.0, 2.0, n)
        c[rng.integers(n)] = 1e8
        return c
    raise ValueError(f"kind must be one of {_C_KINDS}, got {kind!r}")


def instances(
    rng: np.random.Generator, quick: bool, *, positive_G: bool = False, per_size: int | None = None
) -> list[dict[str, Any]]:
    """``{"G", "c", "label"}`` for every size in :data:`SIZES` (and 10 000 unless
    ``quick``), ``per_size`` random (G kind, c kind) pairs each."""
    sizes = SIZES if quick else (*SIZES, 10_000)
    reps = per_size if per_size is not None else (3 if quick else 12)
    out = []
    for n in sizes:
        for _ in range(reps):
            g_kind = _G_KINDS[rng.integers(len(_G_KINDS))]
            c_kind = _C_KINDS[rng.integers(len(_C_KINDS))]
            out.append(
                {
                    "G": gradient_norms(rng, n, g_kind, positive=positive_G),
                    "c": costs(rng, n, c_kind),
                    "label": f"G {g_kind}, c {c_kind}",
                }
            )
    return out
