"""Property-based fuzzing of the public API: bad and extreme inputs (numpy, JAX, torch).

The contract every call must meet: raise ``ValueError``/``TypeError`` whose
message names one of the function's arguments, or return finite values that
satisfy what the function promises (a distribution sums to 1 and is >= 0, a
cost is >= 0, ...). Examples per test: ``COSTSGD_MAX_EXAMPLES`` (conftest).
"""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import costsgd as cs
import costsgd.torch as ct
from costsgd.hardness import hard_slopes

EXTREME = st.sampled_from(
    [0.0, -0.0, 1.0, -1.0, 1e-310, 1e-200, 1e-30, 1e30, 1e200, 1e300, np.inf, -np.inf, np.nan]
)
VALUES = st.one_of(EXTREME, st.floats(-1e3, 1e3), st.floats(1e-300, 1e300))
DTYPES = st.sampled_from(["float64", "float32", "float16", "int64"])
BACKENDS = st.sampled_from(["numpy", "jax", "torch", "list"])


def convert(values, dtype, backend):
    x = np.asarray(values, dtype=np.float64)
    if dtype == "int64":
        x = np.nan_to_num(x, nan=0, posinf=10, neginf=-10).clip(-1e9, 1e9).astype(np.int64)
    else:
        with np.errstate(over="ignore"):
            x = x.astype(dtype)
    if backend == "jax":  # JAX's default float32: cast here, where overflow is expected
        with np.errstate(over="ignore"):
            return jax.numpy.asarray(x.astype(np.float32) if x.dtype == np.float64 else x)
    if backend == "torch":
        return torch.as_tensor(x)
    return x.tolist() if backend == "list" else x


@st.composite
def arrays(draw, n=None):
    n = draw(st.integers(0, 6)) if n is None else n
    values = draw(st.lists(VALUES, min_size=n, max_size=n))
    return convert(values, draw(DTYPES), draw(BACKENDS))


def host(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
    return np.asarray(x, dtype=np.float64)


def names(name: str, message: str) -> bool:
    """Whether ``message`` names ``name`` as a whole word: ``c`` in "c must be finite",
    not in "costs" or "c_i"; a phrase (``"n ="``) is matched whole the same way."""
    start = r"(?<!\w)" if re.match(r"\w", name) else ""
    end = r"(?!\w)" if re.match(r"\w", name[-1]) else ""
    return re.search(start + re.escape(name) + end, message) is not None


def test_names_matches_whole_words_only():
    assert names("c", "c must be finite") and names("c", "G, c: overflow")
    assert not names("c", "cannot convert") and not names("c", "costs c_i")
    assert names("n =", "n = 3 < (G_max/eps)") and not names("p", "step_size")


def obeys(call, arguments):
    """Run ``call``; an error must be ValueError/TypeError naming one of ``arguments``."""
    try:
        return True, call()
    except (ValueError, TypeError) as err:
        msg = str(err)
        assert any(names(name, msg) for name in arguments), (
            f"{type(err).__name__} names none of {arguments}: {msg}"
        )
        return False, None


def is_distribution(p, n):
    p = host(p)
    assert p.shape == (n,) and np.all(np.isfinite(p)) and np.all(p >= 0), p
    assert abs(p.sum() - 1) < 1e-3, p


@given(st.data())
def test_samplers(data):
    n = data.draw(st.integers(0, 6))
    G, c = data.draw(arrays(n)), data.draw(arrays(data.draw(st.sampled_from([n, n + 1]))))
    sampler = data.draw(st.sampled_from([cs.uniform, cs.variance, cs.optimal, cs.length_only]))
    ok, p = obeys(lambda: sampler(G, c), ("G", "c", "sampling weights"))
    if ok:
        is_distribution(p, n)
        alpha = data.draw(VALUES)
        ok, q = obeys(lambda: cs.smooth(p, alpha), ("p", "alpha"))
        if ok:
            is_distribution(q, n)


@given(st.data())
def test_theory(data):
    n = data.draw(st.integers(1, 5))
    p, G, c = data.draw(arrays(n)), data.draw(arrays(n)), data.draw(arrays(n))
    for f, names in [
        (lambda: cs.second_moment(p, G), ("p", "G")),
        (lambda: cs.expected_cost(p, c), ("p", "c")),
        (lambda: cs.cost_product(p, G, c), ("p", "G", "c")),
        (lambda: cs.optimal_cost_product(G, c), ("G", "c")),
        (lambda: cs.chi2_gap(p, G, c), ("p", "G", "c")),
    ]:
        ok, value = obeys(f, names)
        if ok:
            assert value >= 0 and not np.isnan(value), value  # +inf is documented (p_i = 0 < G_i)
    ok, r = obeys(lambda: cs.cost_ratios(G, c), ("G", "c"))
    if ok:
        assert all(np.isnan(v) or 0 <= v < np.inf for v in r), r
    ok, v = obeys(lambda: cs.variance_beats_uniform(G, c), ("G", "c"))
    if ok:
        assert isinstance(v.holds, bool) and not np.isnan(v.lhs) and not np.isnan(v.rhs)


@given(st.data())
def test_alias_tables_and_draws(data):
    n = data.draw(st.integers(0, 5))
    p = data.draw(arrays(n))
    ok, table = obeys(lambda: cs.alias_table(p), ("p",))
    if ok:
        np.testing.assert_allclose(
            cs.implied_probabilities(table), host(p) / host(p).sum(), atol=1e-6
        )
        rng = data.draw(st.sampled_from([0, None, np.random.default_rng(1), 2.5, "x", -1]))
        ok, idx = obeys(lambda: cs.sample(table, 7, rng=rng), ("rng",))
        if ok:
            assert np.all(host(p)[idx] > 0)


#: seeds as users pass them: good ones, and floats, strings, bools, negatives, huge ints
SEEDS = st.sampled_from(
    [None, 0, 7, np.int64(3), 2**63 - 1, 2**64, -1, 1.5, "abc", True, np.random.default_rng(1)]
)
#: output sizes: ints, tuples, and what numpy would turn into a confusing error
SIZES = st.sampled_from(
    [0, 3, np.int64(2), (2, 3), (0,), (), -1, (2, -1), 1.5, "3", None, True, (2.0, 3), [2, 3]]
)
#: time limits: seconds, none, and what HiGHS would choke on
LIMITS = st.sampled_from([None, 10.0, 1e-9, np.inf, 1e300, 0, -1, np.nan, "x", True])


@given(st.data())
def test_sizes_and_seeds(data):
    table = cs.alias_table([0.25, 0.0, 0.75])
    size, rng = data.draw(SIZES), data.draw(SEEDS)
    ok, idx = obeys(lambda: cs.sample(table, size, rng=rng), ("size", "rng"))
    if ok:
        assert idx.shape == (tuple(size) if isinstance(size, tuple) else (size,))
        assert idx.dtype == np.int64 and np.all((idx == 0) | (idx == 2))
    ok, p = obeys(lambda: cs.noisy_proxy([1.0, 2.0], [1.0, 4.0], 0.1, rng=rng), ("rng",))
    if ok:
        is_distribution(p, 2)
    ok, prob = obeys(lambda: cs.least_squares(8, 2, rng=rng), ("rng",))
    if ok:
        assert np.all(np.isfinite(prob.G))
    delta = np.full(4, 0.25)
    ok, b = obeys(
        lambda: hard_slopes(delta, G_max=1.0, hypothesis=0, size=size, rng=rng), ("size", "rng")
    )
    if ok:
        assert np.all(np.abs(b) <= 1.0)


@settings(max_examples=max(2, settings().max_examples // 3))
@given(st.data())
def test_knapsack_gaps_and_time_limits(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    G, c = rng.lognormal(size=40), rng.integers(1, 6, 40).astype(float)
    inst = cs.knapsack(G, c, gamma=data.draw(st.floats(0.0, 1.0)) * G.mean(), D=1.0)
    gap = data.draw(st.one_of(st.sampled_from([0.0, 1e-9, 0.5, 1.0, -0.1, np.nan, "x"]), VALUES))
    limit = data.draw(LIMITS)
    ok, sol = obeys(
        lambda: cs.knapsack_exact(inst, gap=gap, time_limit=limit), ("gap", "time_limit")
    )
    if ok:
        assert inst.covers(sol.z) and sol.gap >= 0.0
        assert sol.objective >= cs.knapsack_lp(inst).objective * (1 - 1e-12)


@given(st.data())
def test_hardness(data):
    c = data.draw(arrays())
    G_max, eps = data.draw(VALUES), data.draw(VALUES)
    ok, lb = obeys(lambda: cs.lower_bound(c, G_max=G_max, eps=eps), ("c", "G_max", "eps", "n ="))
    if ok:
        assert 0 <= lb.value < np.inf


@given(st.data())
def test_least_squares(data):
    kwargs = {
        name: data.draw(VALUES)
        for name in data.draw(
            st.sets(st.sampled_from(["L", "noise", "radius_factor", "cost_high"]))
        )
    }
    n = data.draw(st.sampled_from([0, 1, 8, 2.5]))
    ok, prob = obeys(lambda: cs.least_squares(n, 2, **kwargs), (*kwargs, "n", "d", "cost_low"))
    if ok:
        for x in (prob.A, prob.b, prob.G, prob.c, prob.x_star):
            assert np.all(np.isfinite(x))
        assert np.isfinite(prob.f_star) and np.all(prob.c >= 0)


@settings(max_examples=max(2, settings().max_examples // 3))
@given(st.data())
def test_torch_adapter(data):
    n = data.draw(st.integers(0, 5))
    adv = torch.as_tensor(host(data.draw(arrays(n))))
    lengths = data.draw(arrays(data.draw(st.sampled_from([n, n + 1]))))
    alpha = data.draw(st.sampled_from([0.0, 0.1, 1.0, -0.5, np.nan, 2.0]))
    generator = data.draw(st.sampled_from([None, torch.Generator().manual_seed(0), 3]))
    ok, plan = obeys(
        lambda: ct.plan_update(
            adv, lengths, 2, sampling=ct.SamplingOptions(alpha=alpha), generator=generator
        ),
        ("advantages", "lengths", "alpha", "generator"),
    )
    if ok:
        is_distribution(plan.probs, n)
        assert torch.isfinite(plan.weights).all() and (plan.weights > 0).all()
    p = torch.as_tensor(host(data.draw(arrays(n))))
    idx = torch.as_tensor(data.draw(st.lists(st.integers(-1, 6), min_size=0, max_size=4)))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64]))
    normalize = data.draw(st.sampled_from(["draws", "expected", "none", "mean"]))
    ok, w = obeys(
        lambda: ct.importance_weights(p, idx, normalize=normalize, dtype=dtype),
        ("probs", "indices", "normalize", "dtype"),
    )
    if ok:
        assert torch.isfinite(w).all() and (w >= 0).all()


@given(st.data())
def test_policy_loss(data):
    b, T = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    loss = torch.as_tensor(host(data.draw(arrays(b * T)))).reshape(b, T).nan_to_num()
    mask = torch.ones(b, T)
    pool = data.draw(st.one_of(VALUES, st.none()))
    mode = data.draw(st.sampled_from(ct.AGGREGATIONS))
    ok, out = obeys(
        lambda: ct.weighted_policy_loss(loss, mask, mode=mode, mean_pool_length=pool),
        ("mode", "mean_pool_length", "token_loss"),
    )
    if ok and torch.isfinite(loss).all() and loss.abs().max() < 1e30:
        assert torch.isfinite(out)


@settings(max_examples=max(2, settings().max_examples // 8))
@given(st.data())
def test_engine(data):
    prob = cs.least_squares(20, 2, rng=0)
    field = data.draw(st.sampled_from(["c", "G", "x_star", "b", "A"]))
    bad = np.array(getattr(prob, field), dtype=np.float64)
    bad.flat[data.draw(st.integers(0, bad.size - 1))] = data.draw(
        st.sampled_from([-1.0, np.nan, np.inf])
    )
    problem = prob._replace(**{field: bad})
    step = data.draw(st.sampled_from([1e-3, 1e39, np.nan, -1.0]))
    ok, res = obeys(
        lambda: cs.cost_aware_sgd(
            problem, cs.uniform(prob.G, prob.c), steps=5, trials=1, step_size=step
        ),
        ("problem", field, "step_size", "data"),
    )
    if ok:
        assert np.all(np.isfinite(res.cost)) and np.all(res.cost >= 0)
        assert np.all(np.isfinite(res.error_average))


INT_DTYPES = st.sampled_from(
    [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
)
KEYS = st.sampled_from([0, 7, np.int64(3), 2**63 - 1, 2**64, -(2**63) - 1, 1.5, "abc", None])


@st.composite
def schedules(draw, steps):
    """Checkpoint schedules: sorted positive steps of any integer dtype, ending before,
    at, or (bad) after ``steps``; and unsorted, zero, float, empty and scalar ones."""
    good = np.array(sorted(draw(st.sets(st.integers(1, steps), min_size=1))))
    good = good.astype(draw(INT_DTYPES))
    bad = draw(
        st.sampled_from([[steps + 1], [2, 1], [0, 1], [1.5], [], 3, [[1, 2]], np.array([1.0, 2.0])])
    )
    return draw(st.sampled_from([None, good, good, bad]))


@settings(max_examples=max(2, settings().max_examples // 6))
@given(st.data())
def test_engine_schedules_and_keys(data):
    prob = cs.least_squares(12, 2, rng=0)
    steps = data.draw(st.integers(1, 6))
    checkpoints, key = data.draw(schedules(steps)), data.draw(KEYS)
    ok, res = obeys(
        lambda: cs.cost_aware_sgd(
            prob,
            cs.uniform(prob.G, prob.c),
            steps=steps,
            step_size=1e-3,
            key=key,
            checkpoints=checkpoints,
        ),
        ("checkpoints", "key", "steps"),
    )
    if ok:
        expected = np.arange(1, steps + 1) if checkpoints is None else np.asarray(checkpoints)
        assert np.asarray(res.steps).tolist() == expected.astype(np.int64).tolist()
        cost = np.asarray(res.cost)
        assert np.all(np.isfinite(cost)) and np.all(np.diff(cost, axis=-1) >= 0)


@given(st.data())
def test_subset_solvers(data):
    G, c = data.draw(arrays(4)), data.draw(arrays(4))
    gamma, D = data.draw(VALUES), data.draw(VALUES)
    ok, ks = obeys(lambda: cs.knapsack(G, c, gamma=gamma, D=D), ("G", "c", "gamma", "D"))
    if ok:
        for solve in (cs.knapsack_greedy, cs.knapsack_two_approx, cs.knapsack_exact):
            sol = solve(ks)
            assert np.isfinite(sol.objective) and sol.objective >= 0 and np.isfinite(sol.bias)


NAN = float("nan")


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: cs.optimal(np.ones(3), torch.ones(3)), "G, c must be arrays of one library"),
        (lambda: ct.sample_minibatches(torch.tensor([0.5, 0.5]), 1, generator=3), "generator"),
        (lambda: hard_slopes([-1.0], G_max=1.0, hypothesis=0), "delta"),
        (lambda: cs.lower_bound(np.ones(4), G_max=1.0, eps=1e-200), "G_max/eps"),
        (
            lambda: ct.importance_weights(torch.tensor([NAN, 0.5, 0.5]), torch.tensor([0, 1])),
            "probs",
        ),
        (lambda: ct.importance_weights(torch.ones(3), torch.tensor([0, 1])), "probs must sum to 1"),
        (
            lambda: ct.importance_weights(
                torch.tensor([0.5, 0.5]), torch.tensor([0, 1]), dtype=torch.int64
            ),
            "dtype",
        ),
        (
            lambda: ct.importance_weights(
                torch.tensor([1e-310, 1.0], dtype=torch.float64),
                torch.tensor([0, 1]),
                normalize="none",
            ),
            "overflow",
        ),
        (lambda: ct.cost_aware_probs(torch.zeros(0), torch.zeros(0)), "advantages"),
        (
            lambda: ct.weighted_policy_loss(
                torch.ones(1, 2), torch.ones(1, 2), mode="token-mean", mean_pool_length=np.inf
            ),
            "mean_pool_length",
        ),
        (lambda: ct.weighted_policy_loss(torch.ones(1, 2), torch.ones(1, 2)), "mode"),
        (lambda: cs.least_squares(10, 3, noise=np.inf), "noise"),
        (lambda: cs.smooth(np.full(10_000, 0.6 / 10_000, np.float16), 0.1), "p must sum to 1"),
        (lambda: cs.alias_table(np.full(10_000, 0.6 / 10_000, np.float16)), "p must sum to 1"),
        (lambda: cs.sample(cs.alias_table([1.0]), 2, rng=2.5), "rng"),
        (lambda: cs.optimal(jax.numpy.ones(1), [1e200]), "c holds"),
        (lambda: cs.knapsack([1e200], [4e216], gamma=0.0, D=1.0), "G, c"),
        (lambda: cs.sample([0.5, 0.5], 3), "table"),
        (lambda: cs.sample(cs.alias_table([1.0]), (2, -1)), "size"),
        (lambda: cs.sample(cs.alias_table([1.0]), "3"), "size"),
        (lambda: hard_slopes([0.5], G_max=1.0, hypothesis=0, size=(2, 3)), "size"),
        (lambda: cs.noisy_proxy([1.0], [1.0], 0.1, rng="abc"), "rng"),
        (lambda: cs.exponential_example(np.nan), "n"),
        (lambda: cs.predicted_proxy_gap([1.0, 2.0], [1.0, 1.0], rho=1e-200), "rho"),
        (lambda: cs.second_order_proxy_gap([1.0, 2.0], [1.0, 1.0], sigma2="0.5"), "sigma2"),
        (lambda: cs.knapsack_exact(cs.knapsack([1.0], [1.0], gamma=0, D=1.0), gap="x"), "gap"),
        (
            lambda: cs.knapsack_exact(cs.knapsack([1.0], [1.0], gamma=0, D=1.0), time_limit=0),
            "time_limit",
        ),
        (
            lambda: ct.weighted_policy_loss(
                torch.ones(1, 2), torch.ones(1, 2), mode="token-mean", mean_pool_length=1e-310
            ),
            "mean_pool_length",
        ),
    ],
)
def test_issue_examples_raise_naming_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_issue_examples_return_the_finite_true_value():
    holds = cs.variance_beats_uniform([1e10, 2e10], [1e299, 3e299])
    assert holds.holds == cs.variance_beats_uniform([1.0, 2.0], [1.0, 3.0]).holds
    assert np.isfinite(holds.lhs) and np.isfinite(holds.rhs)  # scaled by exp(log_scale)
    assert cs.cost_product([0.5, 0.5], [1e200] * 2, [1e-200] * 2) == pytest.approx(1e200)
    assert cs.chi2_gap([0.5, 0.5], [1.0, 1.0], [1e-300, 1e300]) == pytest.approx(1.0)
    p = cs.uniform(np.ones(70_000, np.float16), np.ones(70_000))
    assert p.dtype == np.float32 and np.allclose(p, 1 / 70_000)
    w = ct.importance_weights(torch.tensor([1e-310, 1.0], dtype=torch.float64), torch.tensor([0]))
    assert w.tolist() == [1.0]
    is_distribution(cs.uniform(jax.numpy.ones(2), [1.0, 2.0]), 2)  # a list adopts JAX
    assert cs.knapsack([1.0, 1.0], [1.0, 1.0], gamma=1e30, D=1e-310).required == 0.0
