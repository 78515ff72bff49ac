r"""The paper's §5 claims, one verdict each, by rules fixed here before any suite run.

Each :class:`Claim` names the paper's statement, the suite part whose results
answer it (:mod:`~costsgd.experiments.grpo.suite`), the method and what it is
compared with ("no sampling" or another method of the same part, paired by
seed), and the rule of :data:`RULES` that turns the comparison into a verdict.
Every comparison is :func:`~costsgd.experiments.grpo.report.compare`: the tokens
(§5.4's drawn policy-optimisation tokens) to reach the baseline's 50/75/90%
thresholds, :math:`1 - \sum T_{method}/\sum T_{against}` over seeds and
thresholds with a paired bootstrap 95% interval over seeds, and the
plateau-accuracy difference in pp.

A verdict is *marginal* when the number it rests on lies near the rule's
threshold: an interval bound or saving within :data:`MARGIN` (3 pp) of it, or,
for a rule that looks at the plateau, a plateau difference within
:data:`PLATEAU_MARGIN_PP` (0.5 pp) of −1.5 pp. A rerun with other seeds may
reach another verdict.
"""

from __future__ import annotations

from typing import NamedTuple

from costsgd.experiments.grpo import report

__all__ = ["CLAIMS", "MARGIN", "RULES", "Claim", "apply_rule", "evaluate", "format_table"]

#: A verdict resting on a number within this distance of its threshold is marginal.
MARGIN = 0.03
#: The plateau-accuracy loss (pp) every rule tolerates, as the study's rule does.
PLATEAU_LOSS_PP = 1.5
#: A plateau difference within this many pp of the tolerated loss is marginal.
PLATEAU_MARGIN_PP = 0.5

#: Rule name -> its statement (printed with the table).
RULES: dict[str, str] = {
    "study": report.VERDICT_RULE,
    "saves": "reproduced: the saving's 95% interval lies above 0 and plateau accuracy is no more "
    "than 1.5 pp below; not reproduced: the interval's upper end is under FLOOR (the paper's "
    "smallest figure for this claim, 0 when it gives none) or the plateau is more than 1.5 pp "
    "below; inconclusive otherwise.",
    "no gain": "reproduced (no gain): the saving's 95% interval lies below +10%; not reproduced: "
    "it lies above 0 (a gain); inconclusive otherwise.",
    "adds": "reproduced (the |A|/√c weighting adds to zero-advantage removal): the saving of p* "
    "over p ∝ 1[A≠0] has its 95% interval above 0; not reproduced: its upper end is under +5%; "
    "inconclusive otherwise.",
    "worse than baseline": "reproduced: the saving's 95% interval lies below 0 (more tokens than "
    "no sampling); not reproduced: it lies above 0; inconclusive otherwise.",
    "worse than": "reproduced: the method's saving over the compared method has its 95% "
    "interval below 0; not reproduced: above 0; inconclusive otherwise.",
}


class Claim(NamedTuple):
    """One §5 claim and how the suite answers it.

    Attributes:
      key: short identifier.
      where: the paper's section, figure or table.
      statement: what the paper states (its numbers).
      part: the suite part whose results answer it.
      method, against: the comparison (paired by seed within ``part``).
      rule: a key of :data:`RULES`.
      floor: the "saves" rule's FLOOR.
    """

    key: str
    where: str
    statement: str
    part: str
    method: str
    against: str
    rule: str
    floor: float = 0.0


_BASE = "no sampling"

#: Every claim of §5 (and Appendix G.6) the suite answers, in the report's order.
CLAIMS: tuple[Claim, ...] = (
    Claim(
        "grpo p*",
        "§5.4, Figure 4",
        "GRPO: p* reaches the baseline's peak with 28% fewer tokens (AIME; 34% on AMC), peak +5 pp",
        "grpo",
        "p*",
        _BASE,
        "study",
    ),
    Claim(
        "grpo p*_smooth",
        "§5.4, Figure 4",
        "GRPO: p*_smooth(0.01) reaches the baseline's peak with 32% fewer tokens (AIME)",
        "grpo",
        "p*_smooth(0.01)",
        _BASE,
        "study",
    ),
    Claim(
        "zvf p*_smooth",
        "§5.4, Figure 4, Table 1",
        "GRPO+ZVF: p*_smooth(0.01) needs 13% fewer tokens than ZVF alone (AIME; 5% on AMC), peak +5 pp",
        "zvf",
        "p*_smooth(0.01)",
        _BASE,
        "saves",
        0.05,
    ),
    Claim(
        "zvf p*",
        "§5.4, Table 1",
        "GRPO+ZVF: plain p* gains nothing over ZVF alone (best accuracy −0.5 pp AIME, −0.8 pp mean)",
        "zvf",
        "p*",
        _BASE,
        "no gain",
    ),
    Claim(
        "p* vs 1[A≠0]",
        "§5.2 (p* ∝ |A|/√c)",
        "GRPO: the saving comes from cost-aware sampling, not only from dropping zero-advantage "
        "rollouts (no figure in the paper)",
        "grpo",
        "p*",
        "p ∝ 1[A≠0]",
        "adds",
    ),
    Claim(
        "zvf p* vs uniform",
        "§5.2 under §5.3's ZVF",
        "GRPO+ZVF (no zero-advantage rollout left, so p ∝ 1[A≠0] is uniform draws): |A|/√c "
        "weighting alone saves tokens (no figure in the paper)",
        "zvf",
        "p*",
        "p ∝ 1[A≠0]",
        "adds",
    ),
    Claim(
        "cispo p*",
        "§5.5, Figure 5a",
        "CISPO: p* needs 31% fewer tokens to the baseline's peak, then about +4 pp",
        "cispo",
        "p*",
        _BASE,
        "study",
    ),
    Claim(
        "cispo p*_smooth",
        "§5.5, Figure 5a",
        "CISPO: p*_smooth(0.01) needs 34% fewer tokens to the baseline's peak",
        "cispo",
        "p*_smooth(0.01)",
        _BASE,
        "study",
    ),
    Claim(
        "noise 0.1",
        "§5.5, Figure 5b",
        "Proxy noise: Cost-Aware GRPO is robust to noise of variance σ² = 0.1 on |A|",
        "grpo",
        "p*_noisy(σ²=0.1)",
        _BASE,
        "study",
    ),
    Claim(
        "noise 1.0",
        "§5.5, Figure 5b",
        "Proxy noise: near σ² = 1.0 it deteriorates with respect to the baseline",
        "grpo",
        "p*_noisy(σ²=1.0)",
        _BASE,
        "worse than baseline",
    ),
    Claim(
        "grpo α=0.05",
        "Appendix G.6, Table 6",
        "GRPO: p*_smooth(0.05) preserves accuracy (+2.0 pp mean) and saves tokens (Figure 7)",
        "grpo",
        "p*_smooth(0.05)",
        _BASE,
        "saves",
    ),
    Claim(
        "grpo α=0.1",
        "Appendix G.6, Table 6",
        "GRPO: p*_smooth(0.1) preserves accuracy (+1.3 pp mean) and saves tokens (Figure 7)",
        "grpo",
        "p*_smooth(0.1)",
        _BASE,
        "saves",
    ),
    Claim(
        "zvf α=0.05",
        "Appendix G.6, Table 6",
        "GRPO+ZVF: p*_smooth(0.05) preserves accuracy (+0.8 pp mean) and saves tokens (Figure 7)",
        "zvf",
        "p*_smooth(0.05)",
        _BASE,
        "saves",
    ),
    Claim(
        "zvf α=0.1",
        "Appendix G.6, Table 6",
        "GRPO+ZVF: p*_smooth(0.1) preserves accuracy (+1.6 pp mean) and saves tokens (Figure 7)",
        "zvf",
        "p*_smooth(0.1)",
        _BASE,
        "saves",
    ),
    Claim(
        "p_LEN",
        "§5.5, Appendix G.6",
        "GRPO: the length-only proxy p_LEN ∝ 1/√c does not perform as well as p*",
        "grpo",
        "p_LEN",
        "p*",
        "worse than",
    ),
)


def _verdict(name: str, reason: str, distance: float, plateau: float | None = None) -> dict:
    near = plateau is not None and abs(plateau + PLATEAU_LOSS_PP) < PLATEAU_MARGIN_PP
    return {"verdict": name, "reason": reason, "marginal": bool(distance < MARGIN or near)}


def apply_rule(claim: Claim, comparison: dict, expected: float) -> dict:
    """The verdict of ``claim``'s rule on a :func:`report.compare` result.

    Args:
      claim: the claim.
      comparison: ``report.compare(results, claim.method, claim.against)``.
      expected: the method's expected per-iteration saving (the "study" rule's
        mechanism test): :math:`1 - \\mathbb E_{p}[c]/\\bar c` on its pools.

    Returns:
      ``{"verdict", "reason", "marginal"}``.

    Examples:
      >>> c = Claim("x", "", "", "grpo", "p*", "no sampling", "adds")
      >>> cmp = {"drawn": {"saving": 0.04, "ci": (-0.01, 0.09)}, "plateau_vs_against": {"pp": 0.2}}
      >>> apply_rule(c, cmp, 0.3)["verdict"]
      'inconclusive'
      >>> cmp["drawn"]["ci"] = (0.02, 0.09)
      >>> v = apply_rule(c, cmp, 0.3)
      >>> v["verdict"], v["marginal"]
      ('reproduced', True)
    """
    d, plateau = comparison["drawn"], comparison["plateau_vs_against"]["pp"]
    if d["saving"] is None:
        return _verdict("inconclusive", report.NO_GAIN, 0.0)
    lo, hi = d["ci"]
    ci = f"interval [{lo:+.1%}, {hi:+.1%}]"
    if claim.rule == "study":
        v = report.verdict(expected, d["saving"], (lo, hi), plateau)
        return _verdict(v["verdict"], v["reason"], min(abs(lo), abs(d["saving"] - 0.20)), plateau)
    if claim.rule == "saves":
        loss = plateau < -PLATEAU_LOSS_PP
        if lo > 0 and not loss:
            return _verdict("reproduced", f"{ci} above 0, plateau {plateau:+.1f} pp", lo, plateau)
        if hi < claim.floor or loss:
            why = f"plateau {plateau:+.1f} pp" if loss else f"{ci} below {claim.floor:+.0%}"
            return _verdict("not reproduced", why, abs(hi - claim.floor), plateau)
        return _verdict(
            "inconclusive", f"{ci} includes 0", min(abs(lo), abs(hi - claim.floor)), plateau
        )
    if claim.rule == "no gain":
        if lo > 0:
            return _verdict("not reproduced", f"{ci} above 0: a gain", lo)
        if hi < 0.10:
            return _verdict("reproduced", f"{ci} below +10%: no gain", 0.10 - hi)
        return _verdict("inconclusive", f"{ci} spans 0 and +10%", min(-lo, hi - 0.10))
    if claim.rule == "adds":
        if lo > 0:
            return _verdict("reproduced", f"{ci} above 0", lo)
        if hi < 0.05:
            return _verdict("not reproduced", f"{ci} below +5%: adds nothing measurable", 0.05 - hi)
        return _verdict("inconclusive", f"{ci} includes 0", min(-lo, hi - 0.05))
    if claim.rule in ("worse than baseline", "worse than"):
        if hi < 0:
            return _verdict("reproduced", f"{ci} below 0", -hi)
        if lo > 0:
            return _verdict("not reproduced", f"{ci} above 0", lo)
        return _verdict("inconclusive", f"{ci} includes 0", min(-lo, hi))
    raise ValueError(f"claim {claim.key!r}: unknown rule {claim.rule!r}")


def _expected(summary: dict, method: str) -> float:
    """The method's expected per-iteration saving, as the study's verdict takes it."""
    row = {r["method"]: r for r in summary["rows"]}[method]
    if method == "p*":
        return 1 - row["pstar_cost_ratio"]
    return 1 - row["drawn_per_iteration_vs_baseline"]


def evaluate(
    parts: dict[str, dict],
    summaries: dict[str, dict] | None = None,
    planned: dict[str, tuple[str, ...]] | None = None,
) -> list[dict]:
    """Every claim of :data:`CLAIMS` on the suite's results (``part name -> results``).

    ``summaries`` (``part name ->`` :func:`report.summarize` of it) is filled
    as needed and can be shared with other readers of the same parts. With
    ``planned`` (``part name -> methods`` of a suite), only the claims that
    suite answers. A claim whose part or methods have no finished run is
    listed with verdict ``"not run"`` and the reason (a stated gap, never a
    number made up).
    """
    summaries = {} if summaries is None else summaries
    rows = []
    for claim in CLAIMS:
        if planned is not None and not {claim.method, claim.against} <= set(
            planned.get(claim.part, ())
        ):
            continue
        row = {**claim._asdict(), "rule_text": RULES[claim.rule]}
        results = parts.get(claim.part)
        try:
            if results is None:
                raise ValueError(f"part {claim.part!r} has no results")
            cmp = report.compare(results, claim.method, claim.against)
        except (ValueError, KeyError) as err:
            rows.append({**row, "verdict": "not run", "reason": str(err), "marginal": False})
            continue
        if claim.part not in summaries:
            summaries[claim.part] = report.summarize(results)
        expected = _expected(summaries[claim.part], claim.method)
        rows.append({**row, "comparison": cmp, **apply_rule(claim, cmp, expected)})
    return rows


def format_table(rows: list[dict]) -> str:
    """The claims table (markdown): statement, our number with its interval, verdict."""
    out = [
        "| claim | paper | ours: saving [95%], plateau Δ | seeds | verdict |",
        "|---|---|---|---|---|",
    ]
    md = report.markdown_literal
    for r in rows:
        claim = f"{md(r['key'])} | {md(r['statement'])} ({md(r['where'])})"
        if r["verdict"] == "not run":
            out.append(f"| {claim} | — | — | not run: {md(r['reason'])} |")
            continue
        c = r["comparison"]
        versus = "" if r["against"] == _BASE else f" vs {r['against']}"
        pl = c["plateau_vs_against"]
        ours = (
            f"{md(r['method'] + versus)}: {report.saving_text(c['drawn'])}, plateau "
            f"{pl['pp']:+.1f} pp [{pl['ci_pp'][0]:+.1f}, {pl['ci_pp'][1]:+.1f}]"
        )
        mark = " (marginal)" if r["marginal"] else ""
        out.append(
            f"| {claim} | {ours} | {len(c['seeds'])} | "
            f"**{r['verdict']}**{mark}: {md(r['reason'])} |"
        )
    out += ["", "Rules (fixed in code before the run, `costsgd/experiments/grpo/section5.py`):", ""]
    used = dict.fromkeys(r["rule"] for r in rows)
    for name in used:
        out.append(f"- *{name}*: {md(RULES[name])}")
    out.append(
        f"- *marginal*: the interval bound or saving a verdict rests on lies within {MARGIN:.0%} "
        f"of the rule's threshold, or the plateau difference within {PLATEAU_MARGIN_PP} pp of "
        f"−{PLATEAU_LOSS_PP} pp; another seed set may decide otherwise."
    )
    return "\n".join(out)
