r"""Run every claim on fresh instances and summarise: the verdict table of ``costsgd verify``.

Each claim gets its own generator, seeded from ``(seed, crc32(name))``, so a claim
run alone (``--claim``) sees the same instances as in a full run, and in any
process. Fixed instances (known counterexamples, the tight cases) come first, so
the counterexample reported for a failing claim (the first failing instance) does
not depend on how many random instances follow.

With ``jobs > 1`` the claims run in that many processes (this one and ``jobs - 1``
spawned ones): the claims of one runtime (JAX, torch) stay in one process, which
imports it once, and the rest are spread by their registered cost (:func:`schedule`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from costsgd.claims.base import CLAIMS, FAILS, HOLDS, NOT_APPLICABLE, ClaimResult, Template

__all__ = [
    "COMPACT_TABLE_START",
    "TABLE_END",
    "TABLE_START",
    "Verdict",
    "render_markdown",
    "render_text",
    "replace_table",
    "run",
    "schedule",
    "table_style",
    "to_json",
    "unexpected_failures",
]

TABLE_START = "<!-- claims-table:start -->"
"""The line after which a Markdown file holds the generated claims table."""
COMPACT_TABLE_START = TABLE_START + "<!-- compact -->"
"""The same, for the compact table (no statement and template columns: the README's)."""
TABLE_END = "<!-- claims-table:end -->"
"""The line before which a Markdown file's generated claims table ends."""


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


IMPORT_COST = {"numpy": 0.0, "jax": 4.0, "torch": 4.0}
"""CPU seconds a process spends on a runtime besides its claims' own work, for
:func:`schedule`: JAX's import and each program's trace, lowering and cache load;
torch's import and ``torch._dynamo``'s, which the first optimizer imports (measured
side by side on a loaded 2-core machine: only their ratio to the claims' costs matters)."""


def schedule(names: Iterable[str], jobs: int) -> list[list[str]]:
    """Split claims over ``jobs`` processes: each runtime's claims (JAX, torch) together
    in one process, numpy claims one by one, the largest estimated work first onto the
    least loaded process; JAX's group goes to the first process (the caller's, which
    has set JAX up).

    Examples:
      >>> schedule(["eq8", "eq3-engine", "eq22", "thm4.1"], 2)
      [['eq3-engine', 'thm4.1'], ['eq22', 'eq8']]
    """
    names = list(names)
    units: dict[str, list[str]] = {}
    for name in names:
        runtime = CLAIMS[name].runtime
        units.setdefault(name if runtime == "numpy" else runtime, []).append(name)

    def cost(unit: list[str]) -> float:
        return IMPORT_COST[CLAIMS[unit[0]].runtime] + sum(CLAIMS[n].cost for n in unit)

    groups: list[list[str]] = [[] for _ in range(max(1, int(jobs)))]
    load = [0.0] * len(groups)
    if "jax" in units:
        groups[0] += units["jax"]
        load[0] += cost(units.pop("jax"))
    for unit in sorted(units.values(), key=cost, reverse=True):
        k = int(np.argmin(load))
        groups[k] += unit
        load[k] += cost(unit)
    return [g for g in groups if g] or [[]]


def _check(name: str, seed: int, quick: bool) -> Verdict:
    spec = CLAIMS[name]
    gen = _generator(seed, name)
    cases = [spec.function(**kwargs, rng=gen) for kwargs in spec.instances(gen, quick)]
    return _summarise(spec, cases)


def _run_group(names: list[str], seed: int, quick: bool, compile_cache: str | None):
    """One process's share (:func:`run`); JAX's cache is set only where JAX claims run."""
    if compile_cache is not None and any(CLAIMS[n].runtime == "jax" for n in names):
        from costsgd.experiments.runtime import enable_compile_cache

        enable_compile_cache(Path(compile_cache))
    return [_check(name, seed, quick) for name in names]


def run(
    names: Iterable[str] | None = None,
    *,
    seed: int = 0,
    quick: bool = False,
    jobs: int = 1,
    compile_cache: str | Path | None = None,
) -> list[Verdict]:
    """Check the named claims (default: all) on the instances of their generators.

    Args:
      names: claim names (see :data:`costsgd.claims.CLAIMS`), or ``None`` for all.
      seed: seeds every instance and every Monte Carlo draw.
      quick: fewer and smaller instances and shorter runs.
      jobs: processes to run the claims in (this one and ``jobs - 1`` spawned ones,
        see :func:`schedule`); the verdicts do not depend on it.
      compile_cache: JAX's persistent compilation cache folder
        (:func:`costsgd.experiments.runtime.enable_compile_cache`), set in each
        process that runs JAX claims, this one included; ``None`` leaves this
        process's setting as it is and the spawned ones without a cache. The
        processes are spawned before this one imports JAX.

    Returns:
      One :class:`Verdict` per claim, in registry order.

    Raises:
      ValueError: an unknown name (the message lists the valid ones), or ``jobs < 1``.
    """
    chosen = list(CLAIMS) if names is None else list(names)
    unknown = [n for n in chosen if n not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claim(s) {unknown}; valid names: {', '.join(CLAIMS)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    groups = schedule(chosen, jobs) if jobs > 1 and len(chosen) > 1 else [chosen]
    cache = None if compile_cache is None else str(compile_cache)
    if len(groups) == 1:
        return _run_group(chosen, seed, quick, cache)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(
        len(groups) - 1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        futures = [pool.submit(_run_group, g, seed, quick, cache) for g in groups[1:]]
        done = {v.name: v for v in _run_group(groups[0], seed, quick, cache)}
        for future in futures:
            done.update((v.name, v) for v in future.result())
    return [done[name] for name in chosen]


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


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(verdicts: Iterable[Verdict], *, compact: bool = False) -> str:
    """The claims table in Markdown: only columns that a seed fixes on any machine
    (no engine measurements; the counterexamples are numpy computations).
    ``compact`` leaves out the statement and the template (the README's table).

    Examples:
      >>> row = render_markdown(run(["appC-greedy"], quick=True)).splitlines()[2]
      >>> row.split(" | ")[-2:]
      ['fails (expected: fails)', 'Appendix C counterexample: G=(1, 100, 2), c=(1, 1.21, 1.44), V_req=2: 46.3 vs 2 |']
      >>> render_markdown(run(["eq8"], quick=True), compact=True).splitlines()[2]
      '| `eq8` | §4.3, Eq. 8 | holds (expected: holds) | - |'
    """
    if compact:
        rows = ["| claim | paper | verdict | counterexample |", "|---|---|---|---|"]
    else:
        rows = [
            "| claim | paper | statement | template | verdict | counterexample |",
            "|---|---|---|---|---|---|",
        ]
    for v in verdicts:
        ce = (
            "-"
            if v.counterexample is None
            else f"{_cell(v.counterexample.instance)}: {_pair(v.counterexample)}"
        )
        middle = "" if compact else f" {_cell(v.statement)} | {v.template.describe()} |"
        rows.append(
            f"| `{v.name}` | {v.reference} |{middle} {v.verdict} (expected: {v.expected}) | {ce} |"
        )
    return "\n".join(rows)


def to_json(verdicts: Iterable[Verdict], *, seed: int, quick: bool) -> dict[str, Any]:
    """Everything as JSON-ready data (``costsgd verify --out``).

    ``engine_backends``: the step backends the engine claims' runs used (each case's
    ``provenance`` says which, with the compiler and its options)."""
    claims, backends = [], set()
    for v in verdicts:
        backends.update(r.provenance["engine_backend"] for r in v.cases if r.provenance)
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
    return {
        "seed": int(seed),
        "quick": bool(quick),
        "engine_backends": sorted(backends),
        "claims": claims,
    }


def replace_table(text: str, table: str) -> str:
    """``text`` with the part between its start marker (:data:`TABLE_START` or
    :data:`COMPACT_TABLE_START`) and :data:`TABLE_END` replaced.

    Examples:
      >>> replace_table(f"a\\n{TABLE_START}\\nold\\n{TABLE_END}\\nb", "new").splitlines()
      ['a', '<!-- claims-table:start -->', 'new', '<!-- claims-table:end -->', 'b']
    """
    marker = COMPACT_TABLE_START if COMPACT_TABLE_START in text else TABLE_START
    start, end = text.find(marker), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"text must contain {TABLE_START!r} then {TABLE_END!r}")
    return f"{text[: start + len(marker)]}\n{table}\n{text[end:]}"


def table_style(text: str) -> bool:
    """Whether the Markdown ``text`` asks for the compact table (:data:`COMPACT_TABLE_START`)."""
    return COMPACT_TABLE_START in text
