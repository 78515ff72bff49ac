r"""The paper's claims, checked live: one function per claim (PEPit-style).

Each claim function takes an instance (or draws one from ``rng``) and returns a
:class:`ClaimResult`: the numerical value, the paper's theoretical value, the
template (tight / upper / lower bound with its tolerance), the verdict (holds /
fails / not applicable, with the reason) and whether the claim is expected to
hold (App. C's greedy factor and Theorem D.5 as stated are known to fail).
:func:`run` tries every claim on fresh instances and ``costsgd verify`` prints
the result; :data:`CLAIMS` maps each name to its function and metadata.

Examples:
  >>> from costsgd import claims
  >>> r = claims.appC_greedy()  # Appendix C's counterexample
  >>> r.verdict, round(r.numerical, 2), r.theoretical
  ('fails', 46.25, 2.0)
  >>> claims.thm42_chi2([1.0, 2.0, 3.0], [1.0, 4.0, 9.0], rng=0).verdict
  'holds'
"""

from costsgd.claims.base import (
    CLAIMS,
    FAILS,
    HOLDS,
    NOT_APPLICABLE,
    ClaimResult,
    ClaimSpec,
    Template,
)
from costsgd.claims.closed_form import (
    eq6_closed_form,
    eq8_equality,
    eq8_ratios,
    proxy_gap_monte_carlo,
    sec43_theta,
    thm41_optimal,
    thm42_chi2,
    thmD1_condition,
    thmD5_corrected,
    thmD5_paper,
)
from costsgd.claims.engine import eq3_engine, eq4_engine, sec44_orderings
from costsgd.claims.extensions import appF2_nonconvex, appF3_last_iterate
from costsgd.claims.grpo import appG2_corrected, appG2_paper, eq22_unbiased, sec52_proxy
from costsgd.claims.lower import thm43_hard_instances, thm43_lower_bound, thm43_remark
from costsgd.claims.runner import (
    COMPACT_TABLE_START,
    TABLE_END,
    TABLE_START,
    Verdict,
    render_markdown,
    render_text,
    replace_table,
    run,
    schedule,
    table_style,
    to_json,
    unexpected_failures,
)
from costsgd.claims.selection import (
    appC_greedy,
    thmC1_corrected,
    thmC1_paper,
    thmD2_engine,
    thmD3_budget,
    thmD3_lp,
)

__all__ = [
    "CLAIMS",
    "COMPACT_TABLE_START",
    "FAILS",
    "HOLDS",
    "NOT_APPLICABLE",
    "TABLE_END",
    "TABLE_START",
    "ClaimResult",
    "ClaimSpec",
    "Template",
    "Verdict",
    "appC_greedy",
    "appF2_nonconvex",
    "appF3_last_iterate",
    "appG2_corrected",
    "appG2_paper",
    "eq3_engine",
    "eq4_engine",
    "eq6_closed_form",
    "eq8_equality",
    "eq8_ratios",
    "eq22_unbiased",
    "proxy_gap_monte_carlo",
    "render_markdown",
    "render_text",
    "replace_table",
    "run",
    "schedule",
    "sec43_theta",
    "sec44_orderings",
    "sec52_proxy",
    "table_style",
    "thm41_optimal",
    "thm42_chi2",
    "thm43_hard_instances",
    "thm43_lower_bound",
    "thm43_remark",
    "thmC1_corrected",
    "thmC1_paper",
    "thmD1_condition",
    "thmD2_engine",
    "thmD3_budget",
    "thmD3_lp",
    "thmD5_corrected",
    "thmD5_paper",
    "to_json",
    "unexpected_failures",
]
