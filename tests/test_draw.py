"""Alias-table draws: exact implied distribution and chi-square goodness of fit."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

import costsgd as cs

# Significance level of every goodness-of-fit test below. Seeds are fixed, so
# each test is deterministic; alpha says how surprising a failure would be
# if the sampler were right.
ALPHA = 1e-3


@given(
    hnp.arrays(
        np.float64,
        st.integers(1, 300),
        elements=st.one_of(st.floats(0.0, 1e6), st.sampled_from([0.0, 1e-12, 1.0])),
    )
)
def test_table_reproduces_p_exactly(w):
    if not np.any(w > 0):
        w[0] = 1.0
    p = w / w.sum()
    table = cs.alias_table(p)
    assert table.accept.shape == p.shape and table.alias.shape == p.shape
    assert np.all((table.accept >= 0) & (table.accept <= 1))
    assert np.all((table.alias >= 0) & (table.alias < p.size))
    np.testing.assert_allclose(cs.implied_probabilities(table), p, atol=1e-13)


@pytest.mark.parametrize("n", [10**5, 10**6])
def test_large_tables_are_exact(n):
    rng = np.random.default_rng(n)
    p = rng.lognormal(sigma=4.0, size=n)
    p /= p.sum()
    np.testing.assert_allclose(cs.implied_probabilities(cs.alias_table(p)), p, atol=1e-15)


def test_zero_probability_components_are_never_drawn():
    p = np.array([0.0, 0.5, 0.0, 0.5])
    idx = cs.sample(cs.alias_table(p), 20_000, rng=0)
    assert set(np.unique(idx)) == {1, 3}


def _chi_square_pvalue(idx, p, n_draws):
    counts = np.bincount(idx.ravel(), minlength=p.size)
    keep = p > 0
    assert counts[~keep].sum() == 0
    return stats.chisquare(counts[keep], n_draws * p[keep]).pvalue


def test_numpy_draws_follow_p():
    p = cs.optimal(*_instance())
    n_draws = 200_000
    idx = cs.sample(cs.alias_table(p), n_draws, rng=1234)
    assert _chi_square_pvalue(idx, p, n_draws) > ALPHA


def test_jax_draws_follow_p_and_trace_under_jit():
    p = cs.optimal(*_instance())
    table = cs.alias_table(p)
    table = jax.tree_util.tree_map(jax.numpy.asarray, table)  # a pytree through jit
    draw = jax.jit(cs.sample_jax, static_argnums=2)
    idx = np.asarray(draw(jax.random.key(0), table, (400, 500)))
    assert idx.shape == (400, 500)
    assert _chi_square_pvalue(idx, p, idx.size) > ALPHA


def test_a_wrong_distribution_is_detected():
    """The goodness-of-fit test has power: draws from p fail against a perturbed p."""
    G, c = _instance()
    p = cs.optimal(G + 0.1, c)  # full support, so only the frequencies can differ
    q = cs.smooth(p, 0.05)
    idx = cs.sample(cs.alias_table(q), 200_000, rng=1234)
    assert _chi_square_pvalue(idx, p, 200_000) < ALPHA


def test_draw_rejects_a_non_distribution():
    with pytest.raises(ValueError, match="p must sum to 1"):
        cs.alias_table([0.2, 0.2])
    with pytest.raises(ValueError, match="p must be non-negative"):
        cs.alias_table([1.5, -0.5])


def _instance():
    rng = np.random.default_rng(0)
    G = rng.uniform(0.0, 5.0, 50)
    G[:3] = 0.0
    c = rng.uniform(1.0, 1000.0, 50)
    return G, c


def test_jax_draws_do_not_inflate_rare_components():
    """A float32 coin is 0 with probability 2^-23, which would draw a component of
    probability 1e-12 about 10^5 times too often (and weight it by 1/(n p)). The
    integer threshold keeps its rate within 2^-32 per column of the float64 table."""
    p = np.array([1e-12, 1 - 1e-12])
    table = cs.alias_table(p)
    draws = jax.jit(cs.sample_jax, static_argnums=2)
    hits = sum(
        int((np.asarray(draws(jax.random.key(k), table, (10**7,))) == 0).sum()) for k in range(3)
    )
    # Expected 3e7 * 1e-12 = 3e-5 hits; a float32 coin would give about 3e7 * 2^-24 = 1.8.
    assert hits == 0
    # Exactness of the thresholds themselves: within 2^-32 of accept.
    assert np.all(np.abs(table.threshold / 2.0**32 - table.accept) <= 2.0**-32)


def test_sequential_fallback_builds_an_exact_table():
    """A chain that needs more bulk rounds than allowed finishes sequentially, exactly."""
    n, s = 100, 0.001
    q = np.full(n, 1 + s)
    q[0] = 1 - (n - 1) * s
    p = q / q.sum()
    np.testing.assert_allclose(cs.implied_probabilities(cs.alias_table(p)), p, atol=1e-15)


def test_jax_draws_refuse_what_is_not_a_table():
    table = cs.alias_table([0.25, 0.75])
    with pytest.raises(TypeError, match="table must be an AliasTable"):
        cs.sample_jax(jax.random.key(0), table.threshold, (3,))
    with pytest.raises(TypeError, match="threshold must be uint32"):
        cs.sample_jax(jax.random.key(0), table._replace(threshold=table.accept), (3,))
    assert cs.sample_jax(7, table, (5,)).shape == (5,)  # an int key is a seed


def test_numpy_draws_refuse_bad_tables_and_sizes():
    table = cs.alias_table([0.25, 0.75])
    forged = cs.AliasTable(np.array([0.5, 0.5]), np.array([5, 7]), table.threshold)
    with pytest.raises(ValueError, match=r"table\.alias must hold indices in"):
        cs.sample(forged, 50, rng=0)  # these columns would yield indices 5 and 7
    with pytest.raises(ValueError, match=r"table\.accept must lie in"):
        cs.sample(table._replace(accept=np.array([np.nan, 1.0])), 50, rng=0)
    with pytest.raises(ValueError, match="one length"):
        cs.sample(table._replace(alias=np.array([1])), 5, rng=0)
    with pytest.raises(TypeError, match="table must be an AliasTable"):
        cs.sample([0.5, 0.5], 3, rng=0)
    with pytest.raises(TypeError, match="table must hold"):
        cs.sample(table._replace(alias=table.accept), 3, rng=0)
    for size, error in [
        ((2, -1), ValueError),
        (-1, ValueError),
        (1.5, TypeError),
        ("3", TypeError),
    ]:
        with pytest.raises(error, match="size"):
            cs.sample(table, size, rng=0)
    assert cs.sample(table, (2, np.int64(3)), rng=0).shape == (2, 3)
    assert cs.sample(table, 0, rng=0).shape == (0,)
