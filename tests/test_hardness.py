"""Theorem 4.3 / E.1: the cost-uniform set, the bound's value, the hard instances."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import costsgd as cs
from costsgd.hardness import (
    clipped_mean,
    cost_uniform_set,
    hard_deltas,
    hard_instance,
    hard_slopes,
    lower_bound,
)


def eq13(c, subset, G, eps):
    """Eq. 13 for an explicit subset, straight from the statement."""
    root = np.sqrt(np.asarray(c)[list(subset)])
    if root.sum() == 0:
        return True  # max = sum = 0: the product form 0 <= 0
    return root.max() / (root.sum() / len(c)) <= G / (40 * eps)


costs_lists = st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1e4)), min_size=1, max_size=10)


@settings(max_examples=200, deadline=None)
@given(costs_lists, st.floats(1e-4, 1.0))
def test_s_star_is_the_largest_feasible_prefix(c, eps):
    c = np.array(c)
    s = cost_uniform_set(c, G_max=1.0, eps=eps)
    order = np.argsort(c, kind="stable")
    feasible = [k for k in range(1, c.size + 1) if eq13(c, order[:k], 1.0, eps)]
    assert s.size == (max(feasible) if feasible else 0)
    assert np.array_equal(s, order[: s.size])


@settings(max_examples=100, deadline=None)
@given(costs_lists, st.floats(1e-4, 1.0))
def test_largest_prefix_maximises_the_bound_over_all_sets(c, eps):
    """The Remark: the bound-maximising S* is a prefix; here, the largest feasible one."""
    c = np.array(c)
    best = 0.0
    for k in range(1, c.size + 1):
        for subset in itertools.combinations(range(c.size), k):
            if eq13(c, subset, 1.0, eps):
                best = max(best, np.sqrt(c[list(subset)]).sum())
    s = cost_uniform_set(c, G_max=1.0, eps=eps)
    assert np.sqrt(c[s]).sum() == pytest.approx(best, rel=1e-12, abs=1e-300)


def test_feasible_prefixes_need_not_be_contiguous():
    c = np.array([1.0, 1.0, 100.0, 100.0, 100.0, 100.0])
    order = np.argsort(c, kind="stable")
    feasible = [k for k in range(1, 7) if eq13(c, order[:k], 1.0, 1 / 140)]
    assert feasible == [2, 4, 5, 6]
    assert cost_uniform_set(c, G_max=1.0, eps=1 / 140).size == 6


@pytest.mark.parametrize("n", [1600, 5000])
def test_remark_uniform_costs_give_full_set(n):
    G = 1.0
    for eps in (G / 40, G / 41, G / np.sqrt(n)):
        if eps <= G / 40:
            assert cost_uniform_set(np.full(n, 3.0), G_max=G, eps=eps).size == n
    assert cost_uniform_set(np.full(n, 3.0), G_max=G, eps=G / 39.9).size == 0
    lb = lower_bound(np.full(n, 3.0), G_max=G, eps=G / 40)
    assert lb.value == pytest.approx(G**2 / (12800 * (G / 40) ** 2) * 3.0)


@pytest.mark.parametrize("n", [5, 50, 400])
def test_remark_exponential_costs_need_eps_below_g_over_20n(n):
    G = 1.0
    c = 4.0 ** (np.arange(1, n + 1) - n)  # c_i ∝ 4^i; Eq. 13 is scale-free in c
    for factor in (1.0001, 1.5, 10.0):
        assert cost_uniform_set(c, G_max=G, eps=factor * G / (20 * n)).size == 0
    # every prefix's ratio lies in (n/2, n]: at eps = G/(40n) all of them pass
    assert cost_uniform_set(c, G_max=G, eps=G / (40 * n)).size == n


@settings(max_examples=100, deadline=None)
@given(
    costs_lists,
    st.floats(1e-3, 1.0),
    st.floats(0.01, 1e3),
)
def test_metamorphic_cost_scaling(c, eps, scale):
    """Eq. 13 is scale-free in c (no positive cost may underflow to 0: see costs_lists)."""
    c = np.array(c)
    a = cost_uniform_set(c, G_max=1.0, eps=eps)
    b = cost_uniform_set(c * scale, G_max=1.0, eps=eps)
    assert np.array_equal(a, b)


def test_lower_bound_outside_the_theorem_raises():
    with pytest.raises(ValueError, match=r"G²/eps²"):
        lower_bound(np.ones(100), G_max=1.0, eps=0.05)
    with pytest.raises(ValueError, match=r"G²/eps²"):
        hard_instance(np.ones(100), G_max=1.0, eps=0.05, hypothesis=0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cost_uniform_set([1.0, -1.0], G_max=1.0, eps=0.1), "c"),
        (lambda: cost_uniform_set([1.0], G_max=0.0, eps=0.1), "G"),
        (lambda: cost_uniform_set([1.0], G_max=1.0, eps=np.nan), "eps"),
        (lambda: hard_deltas(1.01 ** np.arange(10_000), G_max=1.0, eps=0.01), "S\\* is empty"),
        (lambda: hard_deltas(np.zeros(10000), G_max=1.0, eps=0.01), "S\\* is empty"),
        (lambda: hard_slopes([0.1], G_max=1.0, hypothesis=2), "hypothesis"),
        (lambda: hard_slopes([-0.1], G_max=1.0, hypothesis=0), "must be non-negative"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def mixed_costs(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.9, rng.uniform(1.0, 2.0, n), 1e4)


def test_hard_deltas_satisfy_eq15():
    G, eps = 1.0, 0.01
    c = mixed_costs(10_000)
    delta, alpha, support = hard_deltas(c, G_max=G, eps=eps)
    assert delta.mean() == pytest.approx(20 * eps)
    assert delta.max() <= G / 2 * (1 + 1e-12)
    assert np.all(delta[np.setdiff1d(np.arange(c.size), support)] == 0)
    assert np.allclose(delta[support], alpha * np.sqrt(c[support]))
    assert c[support].max() <= 2.0  # the outliers are out of S*


def test_clipped_mean_monte_carlo_and_step2_inequality():
    """E[b_i] = g(Δ_i) >= Δ_i / 2 for 0 <= Δ_i <= G/2 (Step 2), by Monte Carlo."""
    G = 2.0
    delta = np.linspace(0.0, G / 2, 11)
    b = hard_slopes(delta, G_max=G, hypothesis=0, size=200_000, rng=1)
    mean, se = b.mean(0), b.std(0) / np.sqrt(b.shape[0])
    exact = clipped_mean(delta, G)
    assert np.all(np.abs(mean - exact) <= 5 * se)
    assert np.all(mean + 5 * se >= delta / 2)
    assert np.all(mean[1:] - 5 * se[1:] >= delta[1:] / 2)  # with room to spare for Δ > 0
    assert np.all(exact >= delta / 2)
    b1 = hard_slopes(delta, G_max=G, hypothesis=1, size=200_000, rng=2)
    assert np.all(np.abs(b1.mean(0) + exact) <= 5 * se)  # D1 mirrors D0


@pytest.mark.parametrize(("hypothesis", "sign"), [(0, 1.0), (1, -1.0)])
@pytest.mark.parametrize("costs", ["uniform", "mixed"])
def test_hoeffding_event_has_probability_at_least_095(hypothesis, sign, costs):
    """Step 2: under D0, P(b̄ >= 5 eps) >= 0.95 when n = G²/eps² (D1: b̄ <= -5 eps)."""
    G, eps = 1.0, (1 / 40 if costs == "uniform" else 1 / 100)
    n = int(np.ceil((G / eps) ** 2))
    c = np.ones(n) if costs == "uniform" else mixed_costs(n, seed=3)
    delta, _, _ = hard_deltas(c, G_max=G, eps=eps)
    b = hard_slopes(delta, G_max=G, hypothesis=hypothesis, size=2000, rng=4)
    freq = np.mean(sign * b.mean(1) >= 5 * eps)
    assert freq >= 0.95


def test_hard_instance_problem_runs_in_the_engine():
    from costsgd import cost_aware_sgd

    G, eps = 1.0, 1 / 40
    c = np.ones(1600)
    inst = hard_instance(c, G_max=G, eps=eps, hypothesis=1, rng=0)
    prob = inst.problem
    assert np.all(np.abs(inst.b) <= G) and prob.radius == 1.0
    assert prob.x_star[0] == np.sign(inst.b.mean()) and prob.f_star == -abs(inst.b.mean())
    res = cost_aware_sgd(
        prob, cs.optimal(prob.G, c), steps=4000, trials=4, step_size=0.05, checkpoints=[10, 4000]
    )
    assert np.all(res.error_average[:, -1] < res.error_average[:, 0])
    assert np.all(res.error_average >= -1e-6)
    np.testing.assert_allclose(res.cost[:, -1], 4000.0)  # unit costs
