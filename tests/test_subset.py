"""Claims of Appendix C, D.3 and D.4 (subset selection as min-cost knapsack), checked."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import costsgd as cs
from costsgd.subset import MinKnapsack

SOLVERS = [cs.knapsack_exact, cs.knapsack_lp, cs.knapsack_greedy, cs.knapsack_two_approx]


def brute_force(inst):
    """Cheapest covering subset by enumerating all 2^n of them (n <= 12)."""
    n = inst.value.size
    masks = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float64)
    ok = masks @ inst.value >= inst.required - 1e-9 * inst.value.sum()
    return float(np.min(masks[ok] @ inst.item_cost))


def values(high, low=1e-3):
    """Zero or a float in [low, high]: G_i √c_i must not underflow to 0 for c_i > 0."""
    return st.one_of(st.just(0.0), st.floats(low, high))


@st.composite
def instances(draw, max_n=12, convex=None, wide=False, ties=False):
    n = draw(st.integers(1, max_n))
    g_values = st.builds(lambda e: 10.0**e, st.floats(-4, 6)) if wide else values(10.0)
    G = np.array(draw(st.lists(g_values, min_size=n, max_size=n)))
    if not np.any(G > 0):
        G[draw(st.integers(0, n - 1))] = 1.0
    c_values = st.sampled_from([1.0, 2.0, 3.0]) if ties else values(100.0)  # token counts
    c = np.array(draw(st.lists(c_values, min_size=n, max_size=n)))
    frac = draw(st.floats(0.0, 1.2))  # of the budget that excludes everything
    if convex if convex is not None else draw(st.booleans()):
        D = draw(st.floats(0.1, 10.0))
        return cs.knapsack(G, c, gamma=frac * D * G.sum() / n, D=D)
    mu = draw(st.floats(0.1, 10.0))
    return cs.knapsack(G, c, gamma=(frac * G.sum() / n) ** 2 / (2 * mu), mu=mu)


def rel(x):
    return 1e-7 * max(1.0, abs(x))


@settings(max_examples=150, deadline=None)
@given(st.one_of(instances(), instances(ties=True)), st.sampled_from([0.0, 1e-9]))
def test_exact_equals_brute_force(inst, gap):
    sol = cs.knapsack_exact(inst, gap=gap)
    assert inst.covers(sol.z)
    assert set(np.unique(sol.z)) <= {0.0, 1.0}
    assert 0.0 <= sol.gap <= gap + 1e-15
    assert sol.objective == pytest.approx(brute_force(inst), rel=1e-7, abs=1e-9)


def tie_heavy(n, distinct, seed, fraction):
    """Lognormal G, integer costs from a few values (token counts of short answers)."""
    rng = np.random.default_rng(seed)
    G = rng.lognormal(size=n)
    c = rng.choice(distinct, size=n).astype(np.float64)
    return cs.knapsack(G, c, gamma=fraction * G.mean(), D=1.0)


@pytest.mark.parametrize(
    ("n", "distinct"),
    [(300, np.arange(1, 6)), (4096, np.arange(1, 17)), (4096, [100, 700, 1500, 3000, 4000])],
)
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_exact_certifies_its_gap_on_tie_heavy_costs(n, distinct, fraction):
    """The reported gap is a certificate: the LP relaxation lower-bounds the optimum, and
    objective <= LP / (1 - gap). With ties the default 1e-9 is reached."""
    inst = tie_heavy(n, distinct, seed=n + int(100 * fraction), fraction=fraction)
    sol, lp = cs.knapsack_exact(inst), cs.knapsack_lp(inst)
    assert inst.covers(sol.z) and set(np.unique(sol.z)) <= {0.0, 1.0}
    assert 0.0 <= sol.gap <= 1e-9
    assert lp.objective <= sol.objective * (1 + 1e-12)
    assert sol.objective <= lp.objective / (1 - sol.gap) * (1 + 1e-12)
    assert sol.objective <= cs.knapsack_two_approx(inst).objective * (1 + 1e-12)


@settings(max_examples=150, deadline=None)
@given(st.one_of(instances(), instances(wide=True)))
def test_lp_le_exact_le_each_heuristic_and_guarantees(inst):
    lp, ex = cs.knapsack_lp(inst), cs.knapsack_exact(inst)
    gr, ta = cs.knapsack_greedy(inst), cs.knapsack_two_approx(inst)
    for sol in (lp, ex, gr, ta):
        assert inst.covers(sol.z)
        n = inst.value.size
        assert sol.bias == pytest.approx((1 - sol.z) @ inst.value / n, rel=1e-12, abs=1e-12)
    assert lp.objective <= ex.objective + rel(ex.objective)
    assert ex.objective <= ta.objective + rel(ta.objective)
    assert ta.objective <= gr.objective + rel(gr.objective)
    # two_approx: <= OPT + (largest item of an optimum) <= 2 OPT
    biggest = inst.item_cost[ex.selected].max(initial=0.0)
    assert ta.objective <= ex.objective + biggest + rel(ex.objective)
    assert ta.objective <= 2 * ex.objective + rel(ex.objective)
    # greedy: the LP rounded up (up to the coverage slack), hence <= LP + the fractional item
    assert np.all(gr.selected[lp.z == 1]) and not np.any(gr.selected & (lp.z == 0))
    assert gr.objective <= lp.objective + inst.item_cost[(lp.z > 0) & (lp.z < 1)].sum() + rel(
        gr.objective
    )


@settings(max_examples=100, deadline=None)
@given(instances(max_n=30))
def test_lp_relaxation_matches_linprog_and_takes_cheapest_first(inst):
    """Theorem D.3: the LP optimum takes indices by increasing c_i."""
    lp = cs.knapsack_lp(inst)
    ref = linprog(
        inst.item_cost,
        A_ub=-inst.value[None, :],
        # the coverage slack every solver allows (1e-9 of the total value)
        b_ub=[-(inst.required - 1e-9 * inst.value.sum())],
        bounds=(0, 1),
        method="highs",
    )
    assert ref.status == 0
    assert lp.objective == pytest.approx(ref.fun, rel=1e-7, abs=1e-9)
    useful = inst.value > 0
    order = np.argsort(inst.costs[useful], kind="stable")
    assert np.all(np.diff(lp.z[useful][order]) <= 0)  # a non-increasing prefix


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.floats(0.1, 10.0), st.data())
def test_greedy_is_optimal_when_gradient_bounds_are_equal(n, g, data):
    c = np.array(data.draw(st.lists(st.floats(0.0, 100.0), min_size=n, max_size=n)))
    frac = data.draw(st.floats(0.0, 1.0))
    inst = cs.knapsack(np.full(n, g), c, gamma=frac * g, D=1.0)
    assert cs.knapsack_greedy(inst).objective == pytest.approx(
        brute_force(inst), rel=1e-9, abs=1e-12
    )


def test_paper_claim_greedy_is_2_approximation_is_false():
    """Appendix C says the cheapest-first greedy is a 2-approximation. It is not."""
    G, c = [1.0, 100.0, 2.0], [1.0, 1.21, 1.44]
    inst = cs.knapsack(G, c, gamma=101.0, D=3.0)  # V_req = 103 - 101 = 2
    assert inst.required == pytest.approx(2.0)
    greedy, exact = cs.knapsack_greedy(inst), cs.knapsack_exact(inst)
    assert list(np.flatnonzero(greedy.selected)) == [0, 1]
    assert list(np.flatnonzero(exact.selected)) == [2]
    assert greedy.objective / exact.objective == pytest.approx(111.0 / 2.4)
    assert greedy.objective / exact.objective > 2
    # the ratio is unbounded: grow the middle item
    ratios = []
    for big in (1e2, 1e4, 1e6):
        inst = MinKnapsack(
            np.array([1.0, 1.1 * big, 2.4]),
            np.array([1.0, big, 2.0]),
            2.0,
            np.array([1.0, 1.21, 1.44]),
        )
        ratios.append(cs.knapsack_greedy(inst).objective / cs.knapsack_exact(inst).objective)
    assert ratios[0] < ratios[1] < ratios[2] and ratios[2] > 1e5
    # the proven 2-approximation is optimal here
    assert cs.knapsack_two_approx(inst).objective == pytest.approx(2.4)


def test_nonpositive_requirement_selects_only_free_components():
    G, c = np.array([1.0, 2.0, 3.0, 0.0]), np.array([0.0, 1.0, 4.0, 5.0])
    inst = cs.knapsack(G, c, gamma=10.0, D=1.0)
    assert inst.required <= 0
    for solve in SOLVERS:
        sol = solve(inst)
        assert list(np.flatnonzero(sol.selected)) == [0]
        assert sol.objective == 0.0
        assert sol.bias == pytest.approx(5.0 / 4)


def test_zero_gradient_components_are_never_selected_and_free_ones_always():
    G, c = np.array([0.0, 1.0, 1.0, 1.0]), np.array([0.0, 0.0, 1.0, 4.0])
    inst = cs.knapsack(G, c, gamma=0.0, D=1.0)
    for solve in SOLVERS:
        sol = solve(inst)
        assert not sol.selected[0] and sol.selected[1]


def test_full_budget_zero_gamma_is_full_set_and_eq6():
    prob = cs.least_squares(n=200, d=5, rng=1)
    inst = cs.knapsack(prob.G, prob.c, gamma=0.0, D=2 * prob.radius)
    sol = cs.knapsack_exact(inst)
    assert sol.selected.all() and sol.bias == pytest.approx(0.0, abs=1e-9)
    k = cs.subset_total_cost(prob.G, prob.c, sol.selected, eps=0.1, D=2 * prob.radius)
    assert k == pytest.approx(cs.optimal_total_cost(prob.G, prob.c, eps=0.1, D=2 * prob.radius))


@settings(max_examples=60, deadline=None)
@given(instances(convex=True))
def test_convex_solution_respects_bias_budget(inst):
    """Theorem D.2: covering V_req = sum G - n Γ/D is exactly D β_π <= Γ."""
    n = inst.value.size
    budget = inst.value.sum() - inst.required  # = n Γ / D
    for solve in (cs.knapsack_exact, cs.knapsack_greedy, cs.knapsack_two_approx):
        sol = solve(inst)
        assert sol.bias * n <= budget + 1e-9 * inst.value.sum()


def test_strongly_convex_budget_bounds_suboptimality():
    """Theorem D.3: V_req = sum G - n sqrt(2 mu Γ) gives β_π^2 / (2 mu) <= Γ."""
    prob = cs.least_squares(n=300, d=5, rng=2)
    mu = 0.5
    for gamma in (0.0, 1.0, 10.0, 100.0):
        sol = cs.knapsack_exact(cs.knapsack(prob.G, prob.c, gamma=gamma, mu=mu))
        assert sol.bias**2 / (2 * mu) <= gamma * (1 + 1e-9) + 1e-12


def test_exact_scales_to_thousands():
    prob = cs.least_squares(rng=0)  # n = 3000
    D = 2 * prob.radius
    inst = cs.knapsack(prob.G, prob.c, gamma=0.3 * D * prob.G.mean(), D=D)
    ex, lp, ta = cs.knapsack_exact(inst), cs.knapsack_lp(inst), cs.knapsack_two_approx(inst)
    assert inst.covers(ex.z)
    assert lp.objective <= ex.objective <= ta.objective
    assert 1000 < ex.selected.sum() < 3000


@settings(max_examples=40, deadline=None)
@given(instances(max_n=10, convex=True), st.randoms(use_true_random=False), st.floats(0.01, 100.0))
def test_metamorphic_permutation_and_cost_scaling(inst, rnd, scale):
    perm = list(range(inst.value.size))
    rnd.shuffle(perm)
    permuted = MinKnapsack(inst.item_cost[perm], inst.value[perm], inst.required, inst.costs[perm])
    scaled = MinKnapsack(
        inst.item_cost * np.sqrt(scale), inst.value, inst.required, inst.costs * scale
    )
    for solve in (cs.knapsack_exact, cs.knapsack_lp):
        base = solve(inst).objective
        assert solve(permuted).objective == pytest.approx(base, rel=1e-7, abs=1e-9)
        assert solve(scaled).objective == pytest.approx(np.sqrt(scale) * base, rel=1e-7, abs=1e-9)
    assert np.array_equal(cs.knapsack_greedy(scaled).selected, cs.knapsack_greedy(inst).selected)


def test_subset_total_cost_formula():
    G, c = np.array([1.0, 2.0, 3.0]), np.array([4.0, 1.0, 9.0])
    mask = np.array([True, True, False])
    # D^2 / (n^2 (eps - D beta)^2) (sum G sqrt c)^2 with beta = 1
    assert cs.subset_total_cost(G, c, mask, eps=3.0, D=2.0) == pytest.approx(
        4.0 / (9.0 * (3.0 - 2.0) ** 2) * 16.0
    )
    assert cs.subset_total_cost(G, c, np.zeros(3, bool), eps=5.0, D=2.0) == 0.0


@pytest.mark.parametrize(("frac", "bias_pays"), [(0.3, False), (0.95, True)])
def test_gamma_tradeoff_curve_and_choice(frac, bias_pays):
    """Appendix D.3 on a §4.4 instance. With the worst-case bias D·β_π, some bias
    pays only for coarse targets (eps near D·mean(G)); for finer ones Γ = 0 wins."""
    prob = cs.least_squares(n=400, d=5, rng=3)
    G, c, D = prob.G, prob.c, 2 * prob.radius
    eps = frac * D * G.mean()
    trade = cs.gamma_tradeoff(G, c, eps=eps, D=D, num=8, solver="two_approx")
    assert trade.gammas[0] == 0 and np.all(np.diff(trade.gammas) > 0)
    assert np.all(D * trade.biases <= trade.gammas * (1 + 1e-9) + 1e-12)
    greedy = cs.gamma_tradeoff(G, c, eps=eps, D=D, num=8, solver="greedy")
    assert np.all(np.diff(greedy.sizes) <= 0)  # the greedy's subsets shrink as Γ grows
    assert trade.costs[0] == pytest.approx(cs.optimal_total_cost(G, c, eps=eps, D=D))
    assert trade.best_gamma == trade.gammas[np.argmin(trade.costs)]
    assert (trade.best_gamma > 0) == bias_pays
    sol = trade.best
    assert cs.subset_total_cost(G, c, sol.selected, eps=eps, D=D) == trade.costs.min()
    # the worst case D^2 J(π) / (n^2 (eps - Γ)^2) of Appendix D.3 bounds each point
    omega = G * np.sqrt(c)
    j = [
        omega[cs.knapsack_two_approx(cs.knapsack(G, c, gamma=g, D=D)).selected].sum()
        for g in trade.gammas
    ]
    worst = D**2 * np.square(j) / (G.size**2 * (eps - trade.gammas) ** 2)
    assert np.all(trade.costs <= worst * (1 + 1e-12))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cs.knapsack([1.0], [1.0], gamma=-0.1, D=1.0), "gamma"),
        (lambda: cs.knapsack([1.0], [1.0], gamma=np.nan, D=1.0), "gamma"),
        (lambda: cs.knapsack([1.0], [1.0], gamma=0.1), "exactly one"),
        (lambda: cs.knapsack([1.0], [1.0], gamma=0.1, D=1.0, mu=1.0), "exactly one"),
        (lambda: cs.knapsack([1.0], [1.0], gamma=0.1, D=0.0), "D"),
        (lambda: cs.knapsack([1.0], [-1.0], gamma=0.1, D=1.0), "c"),
        (lambda: cs.knapsack([1.0, 2.0], [1.0], gamma=0.1, D=1.0), "shape"),
        (
            lambda: cs.knapsack_exact(MinKnapsack(np.ones(2), np.ones(2), 3.0, np.ones(2))),
            "infeasible",
        ),
        (lambda: cs.knapsack_greedy("nope"), "MinKnapsack"),
        (lambda: cs.knapsack_exact(cs.knapsack([1.0], [1.0], gamma=0.0, D=1.0), gap=1.0), "gap"),
        (lambda: cs.knapsack_exact(cs.knapsack([1.0], [1.0], gamma=0.0, D=1.0), gap=-1), "gap"),
        (
            lambda: cs.subset_total_cost([1.0, 1.0], [1.0, 1.0], [True, False], eps=0.5, D=1.0),
            "bias floor",
        ),
        (lambda: cs.subset_total_cost([1.0, 1.0], [1.0, 1.0], [1, 0], eps=0.5, D=1.0), "bool mask"),
        (lambda: cs.gamma_tradeoff([1.0], [1.0], eps=1.0, D=1.0, gammas=[0.5, 1.0]), "eps"),
        (lambda: cs.gamma_tradeoff([1.0], [1.0], eps=1.0, D=1.0, gammas=[-0.1]), "eps"),
        (lambda: cs.gamma_tradeoff([1.0], [1.0], eps=1.0, D=1.0, solver="lp"), "solver"),
        (lambda: cs.gamma_tradeoff([1.0], [1.0], eps=0.0, D=1.0), "eps"),
    ],
)
def test_bad_input_raises_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_exact_subsets_need_not_shrink_as_the_budget_grows():
    """More bias budget can make the optimal subset larger (5 cheap items replace one
    expensive one), so only the greedy's subsets are monotone in Γ."""
    G, c = np.array([10.0, 1, 1, 1, 1, 1]), np.array([1.0] + [1.44] * 5)
    sizes = [
        cs.knapsack_exact(cs.knapsack(G, c, gamma=g, D=1.0)).selected.sum() for g in (5 / 6, 10 / 6)
    ]
    assert sizes == [1, 5]


def test_exact_is_between_lp_and_two_approx_on_a_wide_range_instance():
    """G and c spanning nine orders of magnitude: LP <= exact <= two_approx."""
    inst = cs.knapsack([1e-3, 1e6], [1e3, 1.0], gamma=0.0, D=1.0)
    assert cs.knapsack_exact(inst).objective <= cs.knapsack_two_approx(inst).objective
    assert cs.knapsack_lp(inst).objective <= cs.knapsack_exact(inst).objective * (1 + 1e-12)
