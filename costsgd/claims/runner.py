r"""Run every claim on fresh instances and summarise: the verdict table of ``costsgd verify``.

Each claim gets its own generator, seeded from ``(seed, crc32(name))``, so a claim
run alone (``--claim``) sees the same instances as in a full run. Fixed instances
(known counterexamples, the tight cases) come first, so the counterexample
reported for a failing claim (the first failing instance) does not depend on how
many random instances follow.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from costsgd.claims.base import CLAIMS, FAILS, HOLDS, NOT_APPLICABLE, ClaimResult, Template

__all__ = [
    "TABLE_END",
    "TABLE_START",
    "Verdict",
    "render_markdown",
    "render_text",
    "replace_table",
    "run",
    "to_json",
    "unexpected_failures",
]

TABLE_START, TABLE_END = "<!-- claims-table:start -->", "<!-- claims-table:end -->"


class Verdict(NamedTuple):
    """One claim over all the instances tried."""

    name: str
    reference: str
    statement: str
    template: Template
    expected: str  #: "holds" or "fails" (known to be false)
    verdict: str  #: "holds", "fails" or "not applicable"
    worst: ClaimResult | None  #: the instance with the largest excess (None: none applicable)
    counterexample: ClaimResult | None  #: the first failing instance
    cases: tuple[ClaimResult, ...]  #: every instance tried, in order

    @property
    def checked(self) -> int:
        """How many instances were within the claim's assumptions."""
        return sum(r.verdict != NOT_APPLICABLE for r in self.cases)


def _generator(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def _closeness(template: Template, r: ClaimResult) -> float:
    """How close an instance came to breaking the claim: the forbidden-direction
    deviation relative to the theoretical value (largest: the worst case)."""
    dev = template.deviation(r.numerical, r.theoretical)
    if np.isnan(dev):
        return float("inf")
    return float(dev / (abs(r.theoretical) + template.abs + 1e-300))


def _summarise(spec, cases: list[ClaimResult]) -> Verdict:
    applicable = [r for r in cases if r.verdict != NOT_APPLICABLE]
    failing = [r for r in applicable if r.verdict == FAILS]
    worst = None
    if applicable:
        worst = max(applicable, key=lambda r: _closeness(spec.template, r))
    verdict = NOT_APPLICABLE if not applicable else (FAILS if failing else HOLDS)
    return Verdict(
        spec.name,
        spec.reference,
        spec.statement,
        spec.template,
        spec.expected,
        verdict,
        worst,
        failing[0] if failing else None,
        tuple(cases),
    )


def run(names: Iterable[str] | None = None, *, seed: int = 0, quick: bool = False) -> list[Verdict]:
    """Check the named claims (default: all) on the instances of their generators.

    Args:
      names: claim names (see :data:`costsgd.claims.CLAIMS`), or ``None`` for all.
      seed: seeds every instance and every Monte Carlo draw.
      quick: fewer and smaller instances and shorter runs (about 30 s on 2 cores).

    Returns:
      One :class:`Verdict` per claim, in registry order.

    Raises:
      ValueError: an unknown name (the message lists the valid ones).
    """
    chosen = list(CLAIMS) if names is None else list(names)
    unknown = [n for n in chosen if n not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claim(s) {unknown}; valid names: {', '.join(CLAIMS)}")
    out = []
    for name in chosen:
        spec = CLAIMS[name]
        gen = _generator(seed, name)
        cases = [spec.function(**kwargs, rng=gen) for kwargs in spec.instances(gen, quick)]
        out.append(_summarise(spec, cases))
    return out


def unexpected_failures(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """The claims expected to hold that failed (``costsgd verify`` exits 1 if any)."""
    return [v for v in verdicts if v.expected == HOLDS and v.verdict == FAILS]


def _g(x: float) -> str:
    return f"{x:.3g}"


def _pair(r: ClaimResult | None) -> str:
    if r is None:
        return "-"
    se = f" ± {_g(r.stderr)}" if r.stderr else ""
    return f"{_g(r.numerical)}{se} vs {_g(r.theoretical)}"


def render_text(verdicts: Iterable[Verdict]) -> str:
    """The verdict table for the terminal: every column, worst case included."""
    lines = []
    for v in verdicts:
        flag = "" if v.verdict in (v.expected, NOT_APPLICABLE) else "  <-- unexpected"
        lines.append(
            f"{v.name:<22} {v.verdict:<15} (expected {v.expected}; {v.checked}/{len(v.cases)}"
            f" instances){flag}"
        )
        lines.append(f"    {v.reference}: {v.statement}")
        lines.append(f"    template {v.template.describe()}; worst case {_pair(v.worst)}")
        if v.worst is not None:
            lines.append(
                f"      at {v.worst.instance}" + (f" [{v.worst.reason}]" if v.worst.reason else "")
            )
        if v.counterexample is not None:
            c = v.counterexample
            lines.append(f"    counterexample: {c.instance} ({_pair(c)})")
        if v.verdict == NOT_APPLICABLE and v.cases:
            lines.append(f"    not applicable: {v.cases[0].reason}")
    return "\n".join(lines)


def render_markdown(verdicts: Iterable[Verdict]) -> str:
    """The README's claims table: only columns that a seed fixes on any machine
    (no engine measurements; the counterexamples are numpy computations).

    Examples:
      >>> row = render_markdown(run(["appC-greedy"], quick=True)).splitlines()[2]
      >>> row.split(" | ")[-2:]
      ['fails (expected: fails)', 'Appendix C counterexample: G=(1, 100, 2), c=(1, 1.21, 1.44), V_req=2: 46.3 vs 2 |']
    """
    rows = [
        "| claim | paper | statement | template | verdict | counterexample |",
        "|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        ce = (
            "-"
            if v.counterexample is None
            else f"{v.counterexample.instance}: {_pair(v.counterexample)}"
        )
        rows.append(
            f"| `{v.name}` | {v.reference} | {v.statement} | {v.template.describe()} | {v.verdict} "
            f"(expected: {v.expected}) | {ce} |"
        )
    return "\n".join(rows)


def to_json(verdicts: Iterable[Verdict], *, seed: int, quick: bool) -> dict[str, Any]:
    """Everything as JSON-ready data (``costsgd verify --out``)."""
    claims = []
    for v in verdicts:
        claims.append(
            {
                "name": v.name,
                "reference": v.reference,
                "statement": v.statement,
                "template": v.template._asdict(),
                "expected": v.expected,
                "verdict": v.verdict,
                "worst": None if v.worst is None else v.worst.as_dict(),
                "counterexample": None if v.counterexample is None else v.counterexample.as_dict(),
                "cases": [r.as_dict() for r in v.cases],
            }
        )
    return {"seed": int(seed), "quick": bool(quick), "claims": claims}


def replace_table(text: str, table: str) -> str:
    """``text`` with the part between :data:`TABLE_START` and :data:`TABLE_END` replaced.

    Examples:
      >>> replace_table(f"a\\n{TABLE_START}\\nold\\n{TABLE_END}\\nb", "new").splitlines()
      ['a', '<!-- claims-table:start -->', 'new', '<!-- claims-table:end -->', 'b']
    """
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"text must contain {TABLE_START!r} then {TABLE_END!r}")
    return f"{text[: start + len(TABLE_START)]}\n{table}\n{text[end:]}"
