r"""The pieces every claim shares: templates, results, the registry (PEPit-style).

A claim compares a *numerical* value (computed, measured or simulated on an
instance) with the *theoretical* value the paper states, under one of three
templates with a tolerance :math:`\tau = \mathrm{rel}\,|th| + \mathrm{abs} + z\,\mathrm{se}`
(``se``: the Monte Carlo standard error of the numerical value, 0 when exact):

* **tight**: :math:`|num - th| \le \tau`;
* **upper** (the paper's value bounds the numerical one from above): :math:`num \le th + \tau`;
* **lower** (from below): :math:`num \ge th - \tau`.

The verdict is ``holds``, ``fails`` or ``not applicable`` (the instance is
outside the claim's assumptions; the reason says which).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "CLAIMS",
    "FAILS",
    "HOLDS",
    "NOT_APPLICABLE",
    "RUNTIMES",
    "ClaimResult",
    "ClaimSpec",
    "Template",
    "claim",
    "describe",
    "not_applicable",
    "result",
]

HOLDS = "holds"
"""Verdict of a claim whose check passed on the instance."""
FAILS = "fails"
"""Verdict of a claim whose check failed on the instance (the instance is a counterexample)."""
NOT_APPLICABLE = "not applicable"
"""Verdict on an instance outside the claim's assumptions (with the reason)."""
_KINDS = ("tight", "upper", "lower")


class Template(NamedTuple):
    """How a numerical value is compared with the theoretical one (module docstring)."""

    kind: str  #: "tight", "upper" or "lower"
    rel: float = 0.0  #: relative tolerance, times |theoretical|
    abs: float = 0.0  #: absolute tolerance
    z: float = 4.0  #: standard errors allowed (Monte Carlo claims)

    def tolerance(self, theoretical: float, stderr: float = 0.0) -> float:
        """The allowed deviation :math:`\\tau`."""
        return self.rel * abs(theoretical) + self.abs + self.z * stderr

    def deviation(self, numerical: float, theoretical: float) -> float:
        """The deviation in the direction the template forbids (negative: inside)."""
        if self.kind == "tight":
            return abs(numerical - theoretical)
        if self.kind == "upper":
            return numerical - theoretical
        return theoretical - numerical

    def holds(self, numerical: float, theoretical: float, stderr: float = 0.0) -> bool:
        """Whether ``numerical`` passes against ``theoretical``.

        Examples:
          >>> Template("upper", rel=0.01).holds(1.005, 1.0), Template("lower").holds(0.9, 1.0)
          (True, False)
        """
        dev = self.deviation(numerical, theoretical)
        return bool(not np.isnan(dev) and dev <= self.tolerance(theoretical, stderr))

    def describe(self) -> str:
        """Short text, e.g. ``upper (rel 0.02, +4 s.e.)``.

        Examples:
          >>> Template("tight", rel=1e-9, z=0.0).describe(), Template("lower").describe()
          ('tight (rel 1e-09)', 'lower (+4 s.e.)')
        """
        parts = [f"{k} {v:g}" for k, v in (("rel", self.rel), ("abs", self.abs)) if v]
        if self.z:
            parts.append(f"+{self.z:g} s.e.")
        return f"{self.kind} ({', '.join(parts) or 'no tolerance'})"


class ClaimResult(NamedTuple):
    """One claim checked on one instance (or, from the runner, on many)."""

    name: str  #: the claim's name, e.g. "thm4.2"
    reference: str  #: where the paper states it
    template: Template
    expected: str  #: "holds" or "fails" (a claim known to be false)
    verdict: str  #: "holds", "fails" or "not applicable"
    numerical: float  #: computed/measured value (worst case for the runner)
    theoretical: float  #: the paper's value at the same instance
    stderr: float = 0.0  #: Monte Carlo standard error of ``numerical`` (0: exact)
    instance: str = ""  #: the instance, in words
    reason: str = ""  #: why not applicable, or what failed, or a detail
    details: dict[str, float] | None = None  #: per-part values (e.g. one per strategy)
    #: where an engine run's numbers came from (its ``SGDResult.provenance``: ``engine_backend``,
    #: compiler and options); None for claims that run no engine
    provenance: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (template as its fields)."""
        out = self._asdict()
        out["template"] = self.template._asdict()
        for key in ("numerical", "theoretical", "stderr"):
            out[key] = _json_float(out[key])
        if self.details is not None:
            out["details"] = {k: _json_float(v) for k, v in self.details.items()}
        return out


def _json_float(x: float):
    x = float(x)
    return x if np.isfinite(x) else str(x)


RUNTIMES = ("numpy", "jax", "torch")
"""What a claim runs on beyond numpy/scipy: the runner keeps claims of one runtime in
one process, so each process imports JAX or torch at most once."""


class ClaimSpec(NamedTuple):
    """A registered claim: its function, its metadata and its instance generator."""

    name: str
    function: Callable[..., ClaimResult]
    reference: str
    statement: str
    template: Template
    expected: str
    instances: Callable[[np.random.Generator, bool], list[dict[str, Any]]]
    runtime: str = "numpy"  #: one of RUNTIMES
    cost: float = 0.1  #: seconds of the quick run on one idle core (for scheduling only)


CLAIMS: dict[str, ClaimSpec] = {}
"""Every registered claim by name (``"thm4.1"``, ...): its function and metadata."""


def claim(
    name: str,
    *,
    reference: str,
    statement: str,
    template: Template,
    instances: Callable[[np.random.Generator, bool], list[dict[str, Any]]],
    expected: str = HOLDS,
    runtime: str = "numpy",
    cost: float = 0.1,
):
    """Register a claim function under ``name`` (a decorator).

    ``instances(rng, quick)`` returns the keyword arguments of the instances the
    runner tries, fixed ones (known counterexamples, tight cases) first. ``runtime``
    and ``cost`` (seconds of the quick run on one idle core) only schedule the
    claims over processes (:func:`costsgd.claims.run` with ``jobs``).
    """
    if template.kind not in _KINDS:
        raise ValueError(f"template.kind must be one of {_KINDS}, got {template.kind!r}")
    if expected not in (HOLDS, FAILS):
        raise ValueError(f"expected must be {HOLDS!r} or {FAILS!r}, got {expected!r}")
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")

    def register(fn: Callable[..., ClaimResult]) -> Callable[..., ClaimResult]:
        CLAIMS[name] = ClaimSpec(
            name, fn, reference, statement, template, expected, instances, runtime, float(cost)
        )
        return fn

    return register


def result(
    name: str,
    numerical: float,
    theoretical: float,
    *,
    stderr: float = 0.0,
    instance: str = "",
    reason: str = "",
    details: dict[str, float] | None = None,
    provenance: dict[str, str] | None = None,
) -> ClaimResult:
    """Compare under the registered template of ``name`` and return the verdict.

    ``provenance``: the engine run's ``SGDResult.provenance``, for claims run on the engine."""
    spec = CLAIMS[name]
    ok = spec.template.holds(numerical, theoretical, stderr)
    return ClaimResult(
        name,
        spec.reference,
        spec.template,
        spec.expected,
        HOLDS if ok else FAILS,
        float(numerical),
        float(theoretical),
        float(stderr),
        instance,
        reason,
        details,
        provenance,
    )


def not_applicable(name: str, reason: str, *, instance: str = "") -> ClaimResult:
    """The verdict for an instance outside the claim's assumptions."""
    spec = CLAIMS[name]
    return ClaimResult(
        name,
        spec.reference,
        spec.template,
        spec.expected,
        NOT_APPLICABLE,
        float("nan"),
        float("nan"),
        0.0,
        instance,
        reason,
    )


def _fmt(x: float) -> str:
    return f"{float(x):.3g}"


def describe(G: Any = None, c: Any = None, label: str = "", **scalars: Any) -> str:
    """An instance in words: the values for n <= 6, else n and the ranges.

    Examples:
      >>> describe([1.0, 100.0, 2.0], [1.0, 1.21, 1.44], V_req=2.0)
      'G=(1, 100, 2), c=(1, 1.21, 1.44), V_req=2'
    """
    parts = []
    for key, arr in (("G", G), ("c", c)):
        if arr is None:
            continue
        a = np.asarray(arr, dtype=np.float64)
        if a.size <= 6:
            parts.append(f"{key}=({', '.join(_fmt(v) for v in a)})")
        else:
            if key == "G":
                parts.insert(0, f"n={a.size}")
            parts.append(f"{key} in [{_fmt(a.min())}, {_fmt(a.max())}]")
    parts += [f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in scalars.items()]
    text = ", ".join(parts)
    return f"{label}: {text}" if label else text
