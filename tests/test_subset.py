"""Claims of Appendix C, D.3 and D.4 (subset selection as min-cost knapsack), checked."""

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import costsgd as cs
from costsgd.subset import MinKnapsack

SOLVERS = [cs.knapsack_exact, cs.knapsack_lp, cs.knapsack_greedy, cs.knapsack_two_approx]


def brute_force(inst):
    """Cheapest covering subset by enumerating all 2^n of them (n <= 12); coverage as
    ``value[selected].sum() >= required``, the sum exactly rounded (``math.fsum``)."""
    n = inst.value.size
    masks = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float64)
    total = min(inst.required, math.fsum(inst.value))  # V_req above the total by rounding
    ok = np.array([math.fsum(inst.value[m > 0]) >= total for m in masks])
    return float(np.min(masks[ok] @ inst.item_cost))


def assert_keeps_the_budget(inst, sol):
    """Covers V_req up to float64 rounding and nothing more (no slack that could swamp
    an item), i.e. the bias budget holds: sum G - value[selected] <= n Γ / D."""
    assert inst.value[sol.selected].sum() >= inst.required * (1 - 1e-12)
    assert math.fsum(inst.value[sol.selected]) >= min(inst.required, math.fsum(inst.value))


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


def meet_in_the_middle(inst):
    """The optimum by enumerating the 2^(n/2) subsets of each half of all items (n <= 36),
    independent of knapsack_exact's fixing and core; coverage checked on float sums, so
    up to 1e-12 relative (the full set's sum in another order can fall an ulp short)."""
    v, w, h = inst.value, inst.item_cost, inst.value.size // 2

    def sums(x):
        out = np.zeros(1)
        for t in x:
            out = np.concatenate([out, out + t])
        return out

    va, wa, vb, wb = sums(v[:h]), sums(w[:h]), sums(v[h:]), sums(w[h:])
    order = np.argsort(vb, kind="stable")
    vb, cheapest = vb[order], np.minimum.accumulate(wb[order][::-1])[::-1]
    j = np.searchsorted(vb, inst.required * (1 - 1e-12) - va, side="left")
    return float(np.where(j < vb.size, wa + cheapest[np.minimum(j, vb.size - 1)], np.inf).min())


def tied_instance(rng):
    """5 to 30 items in 1 to 5 cost classes (sometimes a free one); G lognormal, small
    integers (equal values too) or near 1, sometimes a zero; any budget."""
    n, k = int(rng.integers(5, 31)), int(rng.integers(1, 6))
    G = [rng.lognormal(size=n), rng.integers(1, 20, n).astype(float), rng.uniform(0.5, 1.5, n)]
    G = G[int(rng.integers(3))]
    if rng.random() < 0.1:
        G[rng.integers(n)] = 0.0
    low = 0 if rng.random() < 0.1 else 1
    c = rng.choice(np.arange(low, k + 1) * float(rng.integers(1, 100)), n)
    return cs.knapsack(G, c, gamma=rng.uniform(0.0, 1.05) * G.mean(), D=1.0)


@pytest.mark.parametrize("seed", range(30))
def test_exact_equals_meet_in_the_middle_on_tied_costs(seed):
    """The core search (fixing, break class whole or empty, pruned enumeration) against a
    plain enumeration of every subset, on 20 instances per seed."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        inst = tied_instance(rng)
        sol = cs.knapsack_exact(inst, gap=0.0)
        assert_keeps_the_budget(inst, sol)
        assert sol.gap <= 1e-15
        assert sol.objective == pytest.approx(meet_in_the_middle(inst), rel=1e-9, abs=1e-12)


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


def slow_for_highs(seed, fraction):
    """n = 300, costs in {1..5}: instances on which the solver that handed its core to
    HiGHS took 15 to 50 s (load average 8-10; `benchmarks/bench_subset.py --hard`)."""
    rng = np.random.default_rng(seed)
    G, c = rng.lognormal(size=300), rng.choice(np.arange(1, 6), size=300).astype(np.float64)
    return cs.knapsack(G, c, gamma=fraction * G.mean(), D=1.0)


@pytest.mark.parametrize(("seed", "fraction"), [(54, 0.7), (72, 0.7), (137, 0.7), (251, 0.7)])
def test_exact_certifies_instances_that_were_slow_for_highs(seed, fraction):
    """Returned with the requested gap certified, before its time limit (the limit makes
    a regression fail here rather than hang; its timing is in bench_subset.py)."""
    inst = slow_for_highs(seed, fraction)
    sol = cs.knapsack_exact(inst, time_limit=10.0)
    assert_keeps_the_budget(inst, sol)
    assert 0.0 <= sol.gap <= 1e-9
    assert (
        cs.knapsack_lp(inst).objective
        <= sol.objective
        <= cs.knapsack_two_approx(inst).objective * (1 + 1e-12)
    )


def test_exact_at_its_time_limit_returns_the_best_certified_subset():
    """A limit too short for the search: the incumbent comes back with the gap proven for it
    (a true lower bound: objective (1 - gap) <= the optimum), not an exception."""
    prob = cs.least_squares(1500, 5, rng=0)
    inst = cs.knapsack(prob.G, prob.c, gamma=0.3 * prob.G.mean(), D=1.0)
    rushed = cs.knapsack_exact(inst, gap=0.0, time_limit=1e-6)
    assert_keeps_the_budget(inst, rushed)
    assert rushed.gap > 0  # stopped before the proof
    optimum = cs.knapsack_exact(inst, gap=0.0)
    assert optimum.gap <= 1e-15
    assert rushed.objective * (1 - rushed.gap) <= optimum.objective * (1 + 1e-12)
    assert rushed.objective >= optimum.objective * (1 - 1e-12)


@settings(max_examples=150, deadline=None)
@given(st.one_of(instances(), instances(wide=True)))
def test_lp_le_exact_le_each_heuristic_and_guarantees(inst):
    lp, ex = cs.knapsack_lp(inst), cs.knapsack_exact(inst)
    gr, ta = cs.knapsack_greedy(inst), cs.knapsack_two_approx(inst)
    for sol in (ex, gr, ta):
        assert_keeps_the_budget(inst, sol)
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
        b_ub=[-inst.required],
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
        assert_keeps_the_budget(inst, sol)
        assert sol.bias * n <= budget + 64 * np.finfo(float).eps * inst.value.sum()


def test_strongly_convex_budget_bounds_suboptimality():
    """Theorem D.3: V_req = sum G - n sqrt(2 mu Γ) gives β_π^2 / (2 mu) <= Γ."""
    prob = cs.least_squares(n=300, d=5, rng=2)
    mu = 0.5
    for gamma in (0.0, 1.0, 10.0, 100.0):
        sol = cs.knapsack_exact(cs.knapsack(prob.G, prob.c, gamma=gamma, mu=mu))
        assert sol.bias**2 / (2 * mu) <= gamma * (1 + 1e-12) + 1e-12


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
    assert np.all(D * trade.biases <= trade.gammas * (1 + 1e-12) + 1e-12)
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
        (lambda: cs.knapsack_exact(cs.knapsack([1.0], [1.0], gamma=0.0, D=1.0), gap="x"), "gap"),
        (
            lambda: cs.subset_total_cost([1.0, 1.0], [1.0, 1.0], [True, False], eps=0.5, D=1.0),
            r"eps = 0.5 is not above the subset's bias floor D·β_π = 0.5:",  # plain numbers
        ),
        (lambda: cs.subset_total_cost([1.0, 1.0], [1.0, 1.0], [1, 0], eps=0.5, D=1.0), "bool mask"),
        (lambda: cs.gamma_tradeoff([1.0], [1.0], eps=1.0, D=1.0, gammas=[0.5, 1.0]), "eps"),
        (lambda: cs.gamma_tradeoff([1.0], [1.0], eps=1.0, D=1.0, gammas=[-0.1]), "eps"),
        (lambda: cs.gamma_tradeoff([1.0], [1.0], eps=1.0, D=1.0, solver="lp"), "solver"),
        (lambda: cs.gamma_tradeoff([1.0], [1.0], eps=0.0, D=1.0), "eps"),
    ],
)
def test_bad_input_raises_clear_value_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize("limit", [0, -1, float("nan"), "x", True])
def test_exact_refuses_a_bad_time_limit(limit):
    inst = tie_heavy(50, np.arange(1, 6), seed=0, fraction=0.5)
    with pytest.raises((ValueError, TypeError), match="time_limit"):
        cs.knapsack_exact(inst, time_limit=limit)


def test_one_dominant_item_cannot_swamp_the_bias_budget():
    """G = (1e12, 1, ..., 1): a coverage slack of 1e-9 sum(G) = 1000 once let every solver
    drop all 299 small items (bias D·β = 0.997 > Γ = 0.5), and gamma_tradeoff then
    refused valid input."""
    G, c = np.r_[1e12, np.ones(299)], np.ones(300)
    inst = cs.knapsack(G, c, gamma=0.5, D=1.0)
    for solve in (cs.knapsack_exact, cs.knapsack_greedy, cs.knapsack_two_approx):
        sol = solve(inst)
        assert_keeps_the_budget(inst, sol)
        assert sol.bias <= 0.5 and sol.selected.sum() == 150
    trade = cs.gamma_tradeoff(G, c, eps=0.6, D=1.0, gammas=[0.0, 0.5])
    assert np.all(trade.biases <= trade.gammas)


def test_a_budget_just_below_the_mean_keeps_a_component():
    """Γ = mean(G)(1 - 1e-12) leaves V_req = 300 mean(G) 1e-12 > 0: below the old slack,
    which returned the empty set."""
    inst = tie_heavy(300, np.arange(1, 6), seed=1, fraction=1 - 1e-12)
    assert 0 < inst.required < 1e-6
    for solve in (cs.knapsack_exact, cs.knapsack_greedy, cs.knapsack_two_approx):
        sol = solve(inst)
        assert_keeps_the_budget(inst, sol)
        assert sol.selected.sum() == 1


@pytest.mark.parametrize("seed", range(107))
def test_tie_heavy_solutions_cover_strictly(seed):
    """With the slack, 31 of these 107 instances came back short of V_req (up to 2.5e-8
    relative)."""
    rng = np.random.default_rng(seed)
    n, fraction = int(rng.integers(20, 400)), float(rng.uniform(0.02, 0.98))
    inst = tie_heavy(n, np.arange(1, int(rng.integers(2, 9))), seed=seed, fraction=fraction)
    lp = cs.knapsack_lp(inst)
    for solve in (cs.knapsack_exact, cs.knapsack_greedy, cs.knapsack_two_approx):
        sol = solve(inst)
        assert_keeps_the_budget(inst, sol)
        assert sol.objective >= lp.objective * (1 - 1e-12)


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


def test_within_a_cost_class_the_largest_items_are_not_always_best():
    """Equal costs make only the value taken matter, so a class cannot be reduced to a
    count of its largest items: with 1.5 left to cover, two items of 1 beat one of 10."""
    inst = cs.knapsack([1.0, 1.0, 10.0], [1.0, 1.0, 1.0], gamma=3.5, D=1.0)
    assert inst.required == 1.5
    assert list(np.flatnonzero(cs.knapsack_exact(inst, gap=0.0).selected)) == [0, 1]


def test_highs_on_a_core_too_large_for_the_search_and_at_its_time_limit(monkeypatch):
    """The last resort: HiGHS on the core. Without a limit it reaches the optimum the
    search finds; stopped after a millisecond its subset still covers and its gap is a
    true certificate (objective (1 - gap) <= optimum)."""
    from costsgd import subset

    rng = np.random.default_rng(23)  # n = 300, costs in {1..4096}: no ties
    G, c = rng.lognormal(size=300), rng.integers(1, 4097, 300).astype(float)
    inst = cs.knapsack(G, c, gamma=0.772 * G.mean(), D=1.0)
    optimum = cs.knapsack_exact(inst, gap=0.0)
    relaxation = subset._lp_relaxation(inst)
    incumbent = cs.knapsack_two_approx(inst).z
    lower = relaxation[0]
    for deadline in (np.inf, time.monotonic() + 1e-3):
        sol = subset._milp_core(inst, incumbent, relaxation, 0.0, deadline, lower)
        assert_keeps_the_budget(inst, sol)
        assert sol.objective * (1 - sol.gap) <= optimum.objective * (1 + 1e-12)
        assert sol.objective <= float(incumbent @ inst.item_cost)
    monkeypatch.setattr(subset, "_search_below", lambda *args: None)  # the core is "too large"
    via_highs = cs.knapsack_exact(inst, gap=0.0)
    assert via_highs.gap <= 1e-12
    assert via_highs.objective == pytest.approx(optimum.objective, rel=1e-12)
