"""Every quantitative claim of §4 (and Appendix D.1, D.2, D.5) as a test that can fail.

Templates (after PEPit): *tight* |num - th| <= rel * th, *upper* num <= th (1 + rel),
*lower* th <= num (1 + rel).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import costsgd as cs
from tests.helpers import ZOO, dirichlet, instances

REL = 1e-10


def _J_star_direct(G, c):
    return (np.sum(G * np.sqrt(c)) / G.size) ** 2


# --- Eq. 1-4 ---------------------------------------------------------------


@given(instances(positive_G=True))
def test_S_C_J_match_their_definitions(inst):
    G, c = inst
    rng = np.random.default_rng(0)
    p = dirichlet(rng, G.size)
    S = np.sum(G**2 / p) / G.size**2
    C = np.sum(p * c)
    assert cs.second_moment(p, G) == pytest.approx(S, rel=1e-12)
    assert cs.expected_cost(p, c) == pytest.approx(C, rel=1e-12)
    assert cs.cost_product(p, G, c) == pytest.approx(S * C, rel=1e-12)


def test_second_moment_conventions_at_zero_probability():
    assert cs.second_moment([1.0, 0.0], [1.0, 0.0]) == pytest.approx(0.25)
    assert cs.second_moment([1.0, 0.0], [1.0, 1.0]) == np.inf


def test_total_cost_eq3_eq4_and_iterations():
    G, c = ZOO["negatively_correlated"]()
    p = cs.variance(G, c)
    J = cs.cost_product(p, G, c)
    S = cs.second_moment(p, G)
    assert cs.total_cost(p, G, c, eps=0.1, D=3.0) == pytest.approx(9.0 / 0.01 * J)
    assert cs.total_cost(p, G, c, eps=0.1, mu=2.0) == pytest.approx(4 / 0.2 * J)
    assert cs.iterations(p, G, eps=0.1, D=3.0) == pytest.approx(900 * S)
    # K = T * C (Eq. 2)
    assert cs.total_cost(p, G, c, eps=0.1, D=3.0) == pytest.approx(
        cs.iterations(p, G, eps=0.1, D=3.0) * cs.expected_cost(p, c)
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eps": 0.1}, "exactly one"),
        ({"eps": 0.1, "D": 1.0, "mu": 1.0}, "exactly one"),
        ({"eps": 0.0, "D": 1.0}, "eps"),
        ({"eps": 0.1, "D": -1.0}, "D must"),
        ({"eps": 0.1, "mu": np.nan}, "mu must"),
    ],
)
def test_total_cost_rejects_bad_horizons(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cs.total_cost([0.5, 0.5], [1.0, 1.0], [1.0, 1.0], **kwargs)


# --- Theorem 4.1 -----------------------------------------------------------


@given(instances())
def test_thm41_J_of_p_star_equals_closed_form(inst):
    """Tight: J(p*) = (1/n^2)(sum G_i sqrt c_i)^2 (Theorem 4.1)."""
    G, c = inst
    num = cs.cost_product(cs.optimal(G, c), G, c)
    th = cs.optimal_cost_product(G, c)
    assert abs(num - th) <= REL * th
    assert th == pytest.approx(_J_star_direct(G, c), rel=1e-12)


@given(instances(), st.integers(0, 2**32 - 1), st.floats(0.05, 5.0))
def test_thm41_no_distribution_beats_p_star(inst, seed, concentration):
    """Lower: J(q) >= J(p*) for random q in the simplex (Theorem 4.1)."""
    G, c = inst
    rng = np.random.default_rng(seed)
    th = cs.optimal_cost_product(G, c)
    for _ in range(5):
        q = dirichlet(rng, G.size, concentration)
        assert th <= cs.cost_product(q, G, c) * (1 + REL)


@given(instances(min_n=2, positive_G=True), st.integers(0, 2**32 - 1))
def test_thm41_p_star_is_a_local_minimum(inst, seed):
    """Perturbations of p* inside the simplex never lower J."""
    G, c = inst
    rng = np.random.default_rng(seed)
    p = cs.optimal(G, c)
    th = cs.cost_product(p, G, c)
    for scale in (1e-1, 1e-3, 1e-6):
        direction = rng.standard_normal(G.size)
        direction -= direction.mean()  # stay on the simplex's affine hull
        step = scale * np.min(p) / np.max(np.abs(direction))
        q = p + step * direction
        q /= q.sum()
        assert th <= cs.cost_product(q, G, c) * (1 + REL)


@given(instances(), st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_J_scales_linearly_in_c_and_quadratically_in_G(inst, a, b):
    """Metamorphic: J(p; bG, ac) = a b^2 J(p; G, c); p* is unchanged (tested in samplers)."""
    G, c = inst
    p = cs.optimal(G, c)
    assert cs.cost_product(p, b * G, a * c) == pytest.approx(
        a * b**2 * cs.cost_product(p, G, c), rel=1e-9
    )
    assert cs.optimal_cost_product(b * G, a * c) == pytest.approx(
        a * b**2 * cs.optimal_cost_product(G, c), rel=1e-9
    )


@given(instances(min_n=2), st.randoms(use_true_random=False))
def test_J_star_is_permutation_invariant(inst, rnd):
    G, c = inst
    perm = np.array(rnd.sample(range(G.size), G.size))
    assert cs.optimal_cost_product(G[perm], c[perm]) == pytest.approx(
        cs.optimal_cost_product(G, c), rel=1e-12
    )


def test_eq6_closed_forms():
    G, c = ZOO["paper_4_4"]()
    p = cs.optimal(G, c)
    for kw in ({"D": 4.5}, {"mu": 0.3}):
        assert cs.optimal_total_cost(G, c, eps=1e-2, **kw) == pytest.approx(
            cs.total_cost(p, G, c, eps=1e-2, **kw), rel=1e-10
        )
    n = G.size
    assert cs.optimal_total_cost(G, c, eps=1e-2, D=4.5) == pytest.approx(
        4.5**2 / 1e-4 * (np.sum(G * np.sqrt(c)) / n) ** 2, rel=1e-12
    )


# --- Eq. 8 and Eq. 10 ------------------------------------------------------


@given(instances())
def test_eq8_ratios_match_direct_costs_and_are_at_most_one(inst):
    G, c = inst
    r = cs.cost_ratios(G, c)
    J = {
        name: cs.cost_product(f(G, c), G, c)
        for name, f in (("unif", cs.uniform), ("var", cs.variance), ("opt", cs.optimal))
    }
    assert r.optimal_vs_uniform == pytest.approx(J["opt"] / J["unif"], rel=1e-9)
    assert r.optimal_vs_variance == pytest.approx(J["opt"] / J["var"], rel=1e-9)
    assert r.variance_vs_uniform == pytest.approx(J["var"] / J["unif"], rel=1e-9)
    assert r.optimal_vs_uniform <= 1 + REL
    assert r.optimal_vs_variance <= 1 + REL


@given(instances())
def test_eq8_equality_exactly_in_the_cauchy_schwarz_cases(inst):
    """1 - K*/K_unif = sin^2 of the angle between G and sqrt(c), and
    1 - K*/K_var = Var_w(sqrt c)/E_w[c] with weights w ∝ G: each is zero iff the
    Cauchy-Schwarz equality case holds (G ∝ sqrt c; sqrt c constant where G > 0)."""
    G, c = inst
    r = cs.cost_ratios(G, c)
    u = np.sqrt(c) / np.linalg.norm(np.sqrt(c))
    g = G / np.linalg.norm(G)
    sin2 = np.linalg.norm(g - (g @ u) * u) ** 2
    assert 1 - r.optimal_vs_uniform == pytest.approx(sin2, abs=1e-9)
    w = G / G.sum()
    m = w @ np.sqrt(c)
    var_w = w @ (np.sqrt(c) - m) ** 2
    assert 1 - r.optimal_vs_variance == pytest.approx(var_w / (w @ c), abs=1e-9)


@given(st.integers(1, 30), st.floats(1e-3, 1e3), st.integers(0, 2**32 - 1))
def test_eq8_G_prop_sqrt_c_makes_optimal_uniform(n, k, seed):
    c = 10 ** np.random.default_rng(seed).uniform(-2, 4, n)
    G = k * np.sqrt(c)
    np.testing.assert_allclose(cs.optimal(G, c), np.full(n, 1 / n), rtol=1e-12)
    assert cs.cost_ratios(G, c).optimal_vs_uniform == pytest.approx(1.0, rel=1e-12)


@given(instances(), st.floats(1e-3, 1e6))
def test_eq8_equal_costs_make_optimal_variance(inst, cost):
    G, _ = inst
    c = np.full(G.size, cost)
    np.testing.assert_allclose(cs.optimal(G, c), cs.variance(G, c), rtol=1e-12)
    assert cs.cost_ratios(G, c).optimal_vs_variance == pytest.approx(1.0, rel=1e-12)


def test_ratios_work_up_to_the_float64_limit():
    G = np.array([1e-300, 1e300, 1.0])
    c = np.array([1e300, 1e-300, 1.0])
    r = cs.cost_ratios(G, c)
    assert all(np.isfinite(v) for v in r)
    logs = cs.log_cost_ratios(np.log(G), np.log(c))
    assert r.optimal_vs_uniform == pytest.approx(np.exp(logs.optimal_vs_uniform), rel=1e-12)
    # sum G sqrt(c) ~ 1e150, sum G^2 ~ 1e600 (beyond float64), sum c ~ 1e300.
    # log ratio = (2 * 150 - 600 - 300) ln 10
    assert logs.optimal_vs_uniform == pytest.approx(-600 * np.log(10), rel=1e-9)


def test_ratios_with_every_cost_zero_are_nan():
    assert all(np.isnan(v) for v in cs.cost_ratios([1.0, 2.0], [0.0, 0.0]))


# --- Theorem D.1 (Eq. 10, 11) ------------------------------------------------


@given(instances(min_n=2))
def test_thmD1_condition_is_equivalent_to_the_ratio(inst):
    G, c = inst
    cond = cs.variance_beats_uniform(G, c)
    ratio = cs.cost_ratios(G, c).variance_vs_uniform
    scale = G.mean() ** 2 * c.mean()  # the natural size of both sides
    assume(abs(cond.lhs - cond.rhs) > 1e-9 * scale)  # not a numerical tie
    assert cond.holds == (ratio <= 1.0)


@given(instances(min_n=2))
def test_thmD1_non_positive_covariance_implies_variance_wins(inst):
    G, c = inst
    cov = np.mean((G - G.mean()) * (c - c.mean()))
    assume(cov < -1e-9 * G.mean() * c.mean())
    assert cs.cost_ratios(G, c).variance_vs_uniform <= 1 + REL


def test_thmD1_positive_correlation_can_make_variance_lose():
    G, c = ZOO["positively_correlated"]()
    cond = cs.variance_beats_uniform(G, c)
    assert not cond.holds and cond.lhs > cond.rhs
    assert cs.cost_ratios(G, c).variance_vs_uniform > 1


# --- Theorem 4.2 -------------------------------------------------------------


@given(instances(), st.integers(0, 2**32 - 1), st.floats(0.05, 5.0))
def test_thm42_gap_is_the_cost_biased_chi2(inst, seed, concentration):
    """Tight, to 1e-10 relative: J(p')/J(p*) = 1 + chi2(p~* || p~') for full-support p'."""
    G, c = inst
    p_prime = dirichlet(np.random.default_rng(seed), G.size, concentration)
    num = cs.cost_product(p_prime, G, c) / cs.cost_product(cs.optimal(G, c), G, c)
    th = 1.0 + cs.chi2_gap(p_prime, G, c)
    assert abs(num - th) <= REL * th


@given(instances())
def test_thm42_for_the_baselines(inst):
    G, c = inst
    r = cs.cost_ratios(G, c)
    assert 1 + cs.chi2_gap(cs.uniform(G, c), G, c) == pytest.approx(
        1 / r.optimal_vs_uniform, rel=1e-9
    )
    assert 1 + cs.chi2_gap(cs.variance(G, c), G, c) == pytest.approx(
        1 / r.optimal_vs_variance, rel=1e-9
    )


def test_chi2_gap_is_infinite_when_the_proxy_misses_a_component():
    G, c = np.array([1.0, 1.0]), np.array([1.0, 1.0])
    assert cs.chi2_gap([1.0, 0.0], G, c) == np.inf


def test_cost_biased_and_chi2_divergence():
    np.testing.assert_allclose(cs.cost_biased([0.5, 0.5], [1.0, 3.0]), [0.25, 0.75])
    assert cs.chi2_divergence([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="C\\(p\\) = 0"):
        cs.cost_biased([1.0, 0.0], [0.0, 1.0])


# --- Theorem D.5 -------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1])
def test_thmD5_predicts_the_expected_gap_for_small_noise(sigma):
    """Monte Carlo check of E[J(p')]/J(p*) ≈ 1 + σ² Σ(√c/G)/Σ(G√c).

    Tolerance: the expansion drops terms of relative size O(σ²/G²) (G >= 1
    here, so <= 1%) and the covariance of the two sums, -σ²Σc, which is
    O(1/n) of the predicted excess (n = 400: < 1%). With 4000 draws the
    Monte-Carlo standard error of the excess is measured and allowed 4x.
    We ask the excess to match to 5% + 4 standard errors.
    """
    rng = np.random.default_rng(42)
    n = 400
    G = rng.uniform(1.0, 3.0, n)
    c = 10 ** rng.uniform(0, 3, n)
    J_star = cs.optimal_cost_product(G, c)
    draws = 4000
    ratios = np.empty(draws)
    for k in range(draws):
        Gp = G + sigma * rng.standard_normal(n)
        w = Gp / np.sqrt(c)
        p = w / w.sum()
        ratios[k] = (np.sum(G**2 / p) / n**2) * (p @ c) / J_star
    excess = ratios.mean() - 1
    stderr = ratios.std(ddof=1) / np.sqrt(draws)
    predicted = cs.predicted_proxy_gap(G, c, sigma2=sigma**2) - 1
    assert abs(excess - predicted) <= 0.05 * predicted + 4 * stderr
    # The rho form gives the same prediction when rho is the model's correlation.
    rho = np.sqrt(np.var(G) / (np.var(G) + sigma**2))
    assert cs.predicted_proxy_gap(G, c, rho=rho) - 1 == pytest.approx(predicted, rel=1e-10)


def test_thmD5_is_only_an_approximation_for_large_noise():
    """Outside its regime (noise comparable to G) the prediction is off by a lot:
    the docstring's 'small noise' qualifier is needed."""
    rng = np.random.default_rng(1)
    n = 200
    G = rng.uniform(1.0, 3.0, n)
    c = 10 ** rng.uniform(0, 3, n)
    sigma = 0.6
    J_star = cs.optimal_cost_product(G, c)
    vals = []
    for _ in range(2000):
        Gp = np.abs(G + sigma * rng.standard_normal(n))
        p = Gp / np.sqrt(c)
        p /= p.sum()
        vals.append(cs.cost_product(p, G, c) / J_star - 1)
    predicted = cs.predicted_proxy_gap(G, c, sigma2=sigma**2) - 1
    assert abs(np.mean(vals) - predicted) > 0.1 * predicted


def test_thmD5_rejects_zero_G_and_bad_parameters():
    with pytest.raises(ValueError, match="G must be > 0"):
        cs.predicted_proxy_gap([0.0, 1.0], [1.0, 1.0], sigma2=0.1)
    with pytest.raises(ValueError, match="exactly one"):
        cs.predicted_proxy_gap([1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="rho"):
        cs.predicted_proxy_gap([1.0, 2.0], [1.0, 1.0], rho=0.0)


@pytest.mark.parametrize("gap", [cs.predicted_proxy_gap, cs.second_order_proxy_gap])
@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1e-150, 1.0, 1e150, 1e300])
def test_thmD5_predictions_are_invariant_to_scaling_G_and_sigma_together(gap, scale):
    """E[J(p')]/J(p*) depends on sigma/G only: scaling G and sigma by one factor keeps
    it (no nan from 0/0 for max G < 1e-154, no inf from sigma2/G^2 for tiny G), and
    the rho form does not depend on the scale at all (np.var(G) would underflow)."""
    G, c = np.array([1.0, 2.0, 4.0]), np.array([1.0, 10.0, 100.0])
    ref = gap(G, c, sigma2=0.01)
    if 1e-150 <= scale <= 1e150:  # sigma2 = 0.01 scale^2 is a normal float64
        assert gap(G * scale, c, sigma2=0.01 * scale**2) == pytest.approx(ref, rel=1e-9)
    assert gap(G * scale, c, sigma2=0.0) == 1.0
    assert gap(G * scale, c, rho=0.9) == pytest.approx(gap(G, c, rho=0.9), rel=1e-9)
    assert gap(G * scale, c * 1e-200, rho=0.9) == pytest.approx(gap(G, c, rho=0.9), rel=1e-9)


@pytest.mark.parametrize("gap", [cs.predicted_proxy_gap, cs.second_order_proxy_gap])
def test_thmD5_bad_sigma2_and_rho_name_themselves(gap):
    G, c = [1.0, 2.0], [1.0, 3.0]
    for kwargs, match in [
        ({"sigma2": "0.5"}, "sigma2 must be a real number"),
        ({"rho": "0.5"}, "rho must be a real number"),
        ({"sigma2": None, "rho": True}, "rho must be a real number"),
        ({"rho": 1e-200}, "rho = 1e-200"),  # sigma2 = var(G)/rho^2 overflows: rho's fault
        ({"rho": float("nan")}, "rho must lie in"),
    ]:
        with pytest.raises((TypeError, ValueError), match=match):
            gap(G, c, **kwargs)
    with pytest.raises(ValueError, match=r"sigma2 = 1e\+300 makes"):  # 1e320: beyond float64
        gap([1e-10, 2e-10], c, sigma2=1e300)
    # a tiny rho with a tiny spread of G is a finite prediction, not an overflow
    assert np.isfinite(gap([1.0, 1.0 + 1e-150], c, rho=1e-140))


def test_thmD1_sides_beyond_float64_are_returned_scaled():
    """lhs = E[G]Cov(G, c) = 7.5e318 and rhs = E[c]Var(G) = 5e318 overflow float64:
    both come back divided by exp(log_scale), finite; in range, log_scale is 0."""
    v = cs.variance_beats_uniform([1e10, 2e10], [1e299, 3e299])
    assert np.isfinite(v.lhs) and np.isfinite(v.rhs) and not v.holds
    assert np.log(v.lhs) + v.log_scale == pytest.approx(np.log(7.5) + 318 * np.log(10), rel=1e-13)
    assert np.log(v.rhs) + v.log_scale == pytest.approx(np.log(5.0) + 318 * np.log(10), rel=1e-13)
    tiny = cs.variance_beats_uniform([1e-200, 3e-200], [1e-300, 2e-300])  # underflow: 1e-700
    assert tiny.lhs > 0 and tiny.rhs > 0 and tiny.holds
    assert np.log(tiny.rhs) + tiny.log_scale == pytest.approx(
        np.log(1.5) - 700 * np.log(10), rel=1e-13
    )
    plain = cs.variance_beats_uniform([1.0, 2.0], [1.0, 3.0])
    assert (plain.lhs, plain.rhs, plain.log_scale) == (0.75, 0.5, 0.0)


# --- §4.3 exponential example ------------------------------------------------


def _log2_geometric(log2_r: float, n: int) -> float:
    """log2 of sum_{i=1}^n r^i in closed form, stable for large n."""
    r = 2.0**log2_r
    if log2_r > 0:
        return log2_r + n * log2_r + np.log2(-np.expm1(-n * log2_r * np.log(2))) - np.log2(r - 1)
    return log2_r + np.log2(-np.expm1(n * log2_r * np.log(2))) - np.log2(1 - r)


@pytest.mark.parametrize("n", [1, 2, 10, 100, 1000, 5000, 10_000])
def test_sec43_log_space_is_finite_and_accurate(n):
    r = cs.log_cost_ratios(*cs.exponential_example(n))
    s_gsc = _log2_geometric(0.25, n)
    expected_unif = 2 * s_gsc - _log2_geometric(-0.5, n) - _log2_geometric(1.0, n)
    expected_var = 2 * s_gsc - _log2_geometric(-0.25, n) - _log2_geometric(0.75, n)
    got_unif = r.optimal_vs_uniform / np.log(2)
    got_var = r.optimal_vs_variance / np.log(2)
    assert np.isfinite(got_unif) and np.isfinite(got_var)
    assert got_unif == pytest.approx(expected_unif, rel=1e-10, abs=1e-9)
    assert got_var == pytest.approx(expected_var, rel=1e-10, abs=1e-9)


def test_sec43_theta_claims():
    """K*/K_unif = Θ(2^{-n/2}) and K*/K_var = Θ(2^{-n/4}): fitted slopes of log2 ratio
    against n are -1/2 and -1/4, and ratio * 2^{n/2} (resp. 2^{n/4}) stays within
    constant bounds over n = 20..10000."""
    ns = np.arange(20, 10_001, 20)
    logs = [cs.log_cost_ratios(*cs.exponential_example(int(n))) for n in ns]
    log2_unif = np.array([r.optimal_vs_uniform for r in logs]) / np.log(2)
    log2_var = np.array([r.optimal_vs_variance for r in logs]) / np.log(2)
    assert np.polyfit(ns, log2_unif, 1)[0] == pytest.approx(-0.5, abs=1e-4)
    assert np.polyfit(ns, log2_var, 1)[0] == pytest.approx(-0.25, abs=1e-4)
    for resid in (log2_unif + ns / 2, log2_var + ns / 4):
        assert np.ptp(resid) < 0.5  # bounded: within a factor 2^0.5 over the whole range
        assert np.ptp(resid[ns >= 200]) < 1e-9  # and the Θ's constant has converged


def test_sec43_small_n_matches_direct_float64():
    n = 40
    i = np.arange(1, n + 1, dtype=float)
    G, c = 2.0 ** (-i / 4), 2.0**i
    direct = cs.cost_ratios(G, c)
    logs = cs.log_cost_ratios(*cs.exponential_example(n))
    assert direct.optimal_vs_uniform == pytest.approx(np.exp(logs.optimal_vs_uniform), rel=1e-12)
    assert direct.optimal_vs_variance == pytest.approx(np.exp(logs.optimal_vs_variance), rel=1e-12)


def test_exponential_example_rejects_bad_n():
    for bad in (0, -3, 2.5, np.nan, np.inf, None, "3", True):
        with pytest.raises(ValueError, match="n must be"):
            cs.exponential_example(bad)


def test_log_cost_ratios_rejects_nan_and_all_zero():
    with pytest.raises(ValueError, match="log_G"):
        cs.log_cost_ratios([np.nan, 0.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="zero everywhere"):
        cs.log_cost_ratios([-np.inf, -np.inf], [0.0, 0.0])


# --- theory accepts other backends -------------------------------------------


def test_theory_accepts_jax_and_torch_inputs():
    import jax.numpy as jnp
    import torch

    G, c = ZOO["negatively_correlated"]()
    ref = cs.cost_product(cs.optimal(G, c), G, c)
    assert cs.cost_product(cs.optimal(jnp.asarray(G), jnp.asarray(c)), G, c) == pytest.approx(
        ref, rel=1e-6
    )
    t = cs.optimal(torch.tensor(G), torch.tensor(c))
    assert cs.cost_product(t, torch.tensor(G), torch.tensor(c)) == pytest.approx(ref, rel=1e-12)


def test_non_numeric_overflowing_and_zero_cost_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="eps must be a number"):
        cs.total_cost([0.5, 0.5], [1.0, 1.0], [1.0, 1.0], eps="a", D=1.0)
    with pytest.raises(ValueError, match="overflows"):
        cs.total_cost([0.5, 0.5], [1.0, 1.0], [1.0, 1.0], eps=1e-200, D=1.0)
    with pytest.raises(ValueError, match="c must be > 0"):
        cs.predicted_proxy_gap([1.0, 2.0], [0.0, 1.0], sigma2=0.1)
    with pytest.raises(ValueError, match="rho = 1e-200"):
        cs.predicted_proxy_gap([1.0, 2.0], [1.0, 1.0], rho=1e-200)
    # a ratio with a zero denominator is nan, as documented: K_var = 0 when G > 0 only where c = 0
    r = cs.cost_ratios([1.0, 0.0], [0.0, 1.0])
    assert np.isnan(r.optimal_vs_variance)
