"""costsgd.claims and `costsgd verify`: every claim meets its expectation on the quick run,
the README's table is the generated one, and the checks that need Monte Carlo or the engine.

One quick run (seed 0) is shared by the module (the `quick` fixture).
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import costsgd as cs
from costsgd import claims
from costsgd.claims.base import ClaimSpec, Template, result
from costsgd.claims.closed_form import proxy_gap_monte_carlo
from costsgd.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick():
    return {v.name: v for v in claims.run(quick=True, seed=0)}


# --- the verdict table ---------------------------------------------------------


@pytest.mark.parametrize("name", list(claims.CLAIMS))
def test_every_claim_meets_its_expectation(quick, name):
    v = quick[name]
    assert v.verdict == v.expected, claims.render_text([v])
    assert v.checked >= 1


def test_known_false_claims_report_their_counterexamples(quick):
    greedy = quick["appC-greedy"].counterexample
    assert greedy.instance.endswith("G=(1, 100, 2), c=(1, 1.21, 1.44), V_req=2")
    assert greedy.numerical == pytest.approx(111.0 / 2.4) and greedy.theoretical == 2.0
    d5 = quick["thmD.5-paper"].counterexample
    assert "G=(1, 1), c=(1, 1e+08), sigma=0.05" in d5.instance
    assert d5.theoretical == pytest.approx(0.05**2)
    assert d5.numerical == pytest.approx(5.0e-7, rel=0.1)  # Monte Carlo, 2000 draws


def test_readme_table_is_the_generated_one(quick):
    text = (ROOT / "README.md").read_text()
    start, end = text.index(claims.TABLE_START), text.index(claims.TABLE_END)
    in_readme = text[start + len(claims.TABLE_START) : end].strip()
    generated = claims.render_markdown(quick[n] for n in claims.CLAIMS)
    assert in_readme == generated, "regenerate: python -m costsgd.claims README.md"


def test_outside_the_assumptions_is_not_applicable_never_a_pass():
    r = claims.thm43_lower_bound(np.ones(100), G_max=1.0, eps=0.05)
    assert r.verdict == claims.NOT_APPLICABLE and "n < G²/ε²" in r.reason
    r = claims.thm43_hard_instances(np.ones(100), G_max=1.0, eps=0.05)
    assert r.verdict == claims.NOT_APPLICABLE
    r = claims.thmD5_corrected([1.0, 2.0], [1.0, 1.0], sigma=0.5)  # σ > 0.1 min G
    assert r.verdict == claims.NOT_APPLICABLE and "small noise" in r.reason
    r = claims.thm43_lower_bound(1.01 ** np.arange(10_000), G_max=1.0, eps=0.01)
    assert r.verdict == claims.NOT_APPLICABLE and "S* is empty" in r.reason


@pytest.mark.parametrize(
    ("template", "num", "th", "se", "holds"),
    [
        (Template("upper", rel=0.01, z=0.0), 1.011, 1.0, 0.0, False),
        (Template("upper", rel=0.01, z=0.0), 0.5, 1.0, 0.0, True),
        (Template("upper", z=4.0), 1.3, 1.0, 0.1, True),
        (Template("lower", z=0.0), 0.99, 1.0, 0.0, False),
        (Template("lower", z=0.0), np.inf, 1.0, 0.0, True),
        (Template("tight", rel=1e-9, z=0.0), 1.0 + 2e-9, 1.0, 0.0, False),
        (Template("tight", rel=1e-9, z=0.0), np.nan, 1.0, 0.0, False),
    ],
)
def test_templates_can_fail(template, num, th, se, holds):
    assert template.holds(num, th, se) is holds


@pytest.fixture
def no_compile_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COSTSGD_NO_COMPILE_CACHE", "1")


def test_cli_unknown_claim_lists_the_names_and_exits_2(capsys, no_compile_cache):
    assert main(["verify", "--claim", "nosuch"]) == 2
    msg = capsys.readouterr().err
    assert msg.count("\n") == 1 and msg.startswith("costsgd verify: error:")
    assert "thm4.2" in msg and "appC-greedy" in msg


def test_cli_exit_status_and_json(tmp_path, monkeypatch, capsys, no_compile_cache):
    out = tmp_path / "v.json"
    # a claim known to fail does not make the command fail
    assert main(["verify", "--claim", "appC-greedy", "--claim", "eq8", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [c["name"] for c in data["claims"]] == ["appC-greedy", "eq8"]
    assert data["claims"][0]["counterexample"]["numerical"] == pytest.approx(46.25)
    # a claim expected to hold that fails does
    spec = claims.CLAIMS["eq8"]

    def broken(rng=None, **_):
        return result("eq8", 2.0, 1.0)

    monkeypatch.setitem(
        claims.CLAIMS, "eq8", ClaimSpec(*spec[:1], broken, *spec[2:6], lambda g, q: [{}])
    )
    assert main(["verify", "--claim", "eq8"]) == 1
    assert "expected to hold that failed: eq8" in capsys.readouterr().out


# --- Theorem D.5: the paper's approximation and the corrected one ---------------


def _ratio(G, c):
    sc = np.sqrt(c)
    W = np.sum(G * sc)
    return np.sum(c) / (W * np.sum(sc / G))


def _heavy(seed, n=400):
    rng = np.random.default_rng(seed)
    return rng.uniform(1.0, 3.0, n), rng.lognormal(0.0, 4.0, n)


def test_monte_carlo_excess_equals_J_from_its_definition():
    """The cancellation-free per-draw excess is J(p')/J(p*) - 1 (checked on one draw each)."""
    G, c = _heavy(1, n=50)
    for seed in range(5):
        eps = 0.1 * np.random.default_rng(seed).standard_normal(G.size)
        p = (G + eps) / np.sqrt(c)
        direct = cs.cost_product(p / p.sum(), G, c) / cs.optimal_cost_product(G, c) - 1
        mean, _, _ = proxy_gap_monte_carlo(G, c, 0.01, draws=1, rng=seed)
        assert mean == pytest.approx(direct, rel=1e-9)


@pytest.mark.parametrize(
    ("G", "c"),
    [
        (np.ones(2), np.array([1.0, 1e8])),  # one cost dominates
        _heavy(13),  # lognormal(0, 4): a few costs dominate
        _heavy(0),
        _heavy(2, n=40),
    ],
)
def test_corrected_d5_matches_monte_carlo_on_heavy_tailed_costs(G, c):
    sigma = 0.05
    mean, se, bad = proxy_gap_monte_carlo(G, c, sigma**2, draws=4000, rng=7)
    assert bad == 0
    predicted = cs.second_order_proxy_gap(G, c, sigma2=sigma**2) - 1
    assert abs(mean - predicted) <= 0.02 * predicted + 4 * se


@pytest.mark.parametrize(
    ("G", "c", "factor"), [(np.ones(2), np.array([1.0, 1e8]), 1000), (*_heavy(13), 1.2)]
)
def test_paper_d5_fails_where_the_covariance_term_matters(G, c, factor):
    """One cost (or a few) carrying Σc: the paper's excess overshoots by 1/(1 - r)."""
    mean, se, _ = proxy_gap_monte_carlo(G, c, 0.05**2, draws=4000, rng=8)
    paper = cs.predicted_proxy_gap(G, c, sigma2=0.05**2) - 1
    assert paper > factor * (mean + 4 * se)
    r = _ratio(G, c)
    assert paper == pytest.approx(
        (cs.second_order_proxy_gap(G, c, sigma2=0.05**2) - 1) / (1 - r), rel=1e-6
    )


def test_paper_d5_holds_when_no_cost_dominates():
    """c ~ U[1, 1000], n = 400: r = Σc / (W Σ √c/G) ≈ 0.3%; both forms agree with Monte Carlo."""
    rng = np.random.default_rng(42)
    G, c = rng.uniform(1.0, 3.0, 400), rng.uniform(1.0, 1000.0, 400)
    assert _ratio(G, c) < 0.01
    mean, se, _ = proxy_gap_monte_carlo(G, c, 0.05**2, draws=4000, rng=9)
    for predicted in (
        cs.predicted_proxy_gap(G, c, sigma2=0.05**2) - 1,
        cs.second_order_proxy_gap(G, c, sigma2=0.05**2) - 1,
    ):
        assert abs(mean - predicted) <= 0.03 * predicted + 4 * se


def test_second_order_proxy_gap_rho_form_and_bad_input():
    G, c = np.array([1.0, 2.0, 4.0]), np.array([1.0, 10.0, 100.0])
    sigma2 = 0.01
    rho = np.sqrt(np.var(G) / (np.var(G) + sigma2))
    assert cs.second_order_proxy_gap(G, c, rho=rho) == pytest.approx(
        cs.second_order_proxy_gap(G, c, sigma2=sigma2), rel=1e-12
    )
    assert cs.second_order_proxy_gap(G, c, sigma2=0.0) == 1.0
    for kwargs, match in [
        ({"G": [0.0, 1.0], "c": [1.0, 1.0], "sigma2": 0.1}, "G must be > 0"),
        ({"G": [1.0, 1.0], "c": [0.0, 1.0], "sigma2": 0.1}, "c must be > 0"),
        ({"G": [1.0, 1.0], "c": [1.0, 1.0]}, "exactly one"),
        ({"G": [1.0, 2.0], "c": [1.0, 1.0], "rho": 1.5}, "rho"),
        ({"G": [1.0, 2.0], "c": [1.0, 1.0], "sigma2": -1.0}, "sigma2"),
    ]:
        with pytest.raises(ValueError, match=match):
            cs.second_order_proxy_gap(**kwargs)


# --- the engine: Eq. 3, Eq. 4 and the lower bound ------------------------------


def test_eq3_bound_holds_for_every_p_and_is_nearly_tight_on_the_kink(quick):
    kink, lsq = quick["eq3-engine"].cases[:2]
    for case in (kink, lsq):
        for s in claims.engine.STRATEGIES:
            assert case.details[s] <= 1.0 + 4 * case.details[f"{s} se"], case
    # b_i|x - x*| from x_1 = -1: within 30% of D sqrt(S(p)/T) for every p, within 2% for
    # variance sampling (|g̃| constant: the deterministic case)
    assert min(kink.details[s] for s in claims.engine.STRATEGIES) >= 0.7, kink
    assert kink.details["variance"] >= 0.98, kink


def test_eq4_suffix_average_converges_at_rate_one_over_T(quick):
    (case,) = quick["eq4-engine"].cases
    for s in claims.engine.STRATEGIES:
        assert -1.5 <= case.details[f"{s} slope"] <= -0.8, case  # not the convex -1/2
    assert case.numerical <= 1.0


def test_measured_cost_on_hard_instances_is_above_the_lower_bound(quick):
    cases = [r for r in quick["thm4.3-lower-bound"].cases if r.verdict != claims.NOT_APPLICABLE]
    assert len(cases) == 2
    for r in cases:
        assert r.numerical >= r.theoretical > 0
