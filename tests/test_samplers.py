"""Samplers: definitions, metamorphic properties, backends, degenerate and bad input."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import costsgd as cs
from tests.helpers import instances

SAMPLERS = [cs.uniform, cs.variance, cs.optimal, cs.length_only]


@given(instances())
def test_every_sampler_is_a_distribution(inst):
    G, c = inst
    for sampler in SAMPLERS:
        p = sampler(G, c)
        assert p.shape == G.shape
        assert np.all(p >= 0)
        assert np.sum(p) == pytest.approx(1.0, rel=1e-12)


@given(instances())
def test_definitions(inst):
    G, c = inst
    np.testing.assert_allclose(cs.uniform(G, c), np.full(G.size, 1 / G.size), rtol=1e-15)
    np.testing.assert_allclose(cs.variance(G, c), G / G.sum(), rtol=1e-12)
    s = G / np.sqrt(c)
    np.testing.assert_allclose(cs.optimal(G, c), s / s.sum(), rtol=1e-12, atol=1e-300)
    w = 1 / np.sqrt(c)
    np.testing.assert_allclose(cs.length_only(G, c), w / w.sum(), rtol=1e-12)


@given(instances(min_n=2), st.randoms(use_true_random=False))
def test_optimal_is_permutation_equivariant(inst, rnd):
    G, c = inst
    perm = np.array(rnd.sample(range(G.size), G.size))
    np.testing.assert_allclose(cs.optimal(G[perm], c[perm]), cs.optimal(G, c)[perm], rtol=1e-12)


@given(instances(), st.floats(1e-6, 1e6), st.floats(1e-6, 1e6))
def test_optimal_is_invariant_to_scaling_costs_and_gradients(inst, a, b):
    G, c = inst
    np.testing.assert_allclose(cs.optimal(a * G, b * c), cs.optimal(G, c), rtol=1e-11, atol=1e-300)


@given(instances(), st.floats(0.0, 1.0))
def test_smooth_mixes_with_uniform(inst, alpha):
    G, c = inst
    p = cs.optimal(G, c)
    q = cs.smooth(p, alpha)
    np.testing.assert_allclose(q, (1 - alpha) * p + alpha / p.size, rtol=1e-12, atol=1e-300)
    assert q.sum() == pytest.approx(1.0, rel=1e-12)
    assert np.all(q >= alpha / p.size * (1 - 1e-12))


def test_smooth_endpoints():
    p = np.array([0.7, 0.3, 0.0])
    np.testing.assert_array_equal(cs.smooth(p, 0.0), p)
    np.testing.assert_allclose(cs.smooth(p, 1.0), np.full(3, 1 / 3))


def test_zero_gradient_components_are_never_drawn():
    G, c = np.array([0.0, 1.0, 2.0]), np.array([5.0, 1.0, 4.0])
    assert cs.variance(G, c)[0] == 0.0
    assert cs.optimal(G, c)[0] == 0.0
    assert cs.uniform(G, c)[0] == pytest.approx(1 / 3)


def test_zero_cost_with_zero_gradient_is_legal():
    p = cs.optimal([0.0, 1.0], [0.0, 4.0])
    np.testing.assert_array_equal(p, [0.0, 1.0])


def test_zero_cost_with_positive_gradient_raises_and_infimum_is_not_attained():
    G, c = np.array([1.0, 1.0]), np.array([0.0, 4.0])
    with pytest.raises(ValueError, match="c is zero where G > 0"):
        cs.optimal(G, c)
    # The infimum (1/n^2)(sum G sqrt c)^2 = 1 is approached, never reached:
    # J(p_eps) with mass 1 - eps on the free component decreases to it.
    infimum = cs.optimal_cost_product(G, c)
    assert infimum == pytest.approx(1.0)
    values = [cs.cost_product(np.array([1 - e, e]), G, c) for e in (1e-1, 1e-2, 1e-3, 1e-4)]
    assert all(v > infimum for v in values)
    assert all(a > b for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(infimum, rel=1e-3)


def test_length_only_rejects_zero_cost_and_ignores_G():
    with pytest.raises(ValueError, match="c has zero entries"):
        cs.length_only(None, [0.0, 1.0])
    np.testing.assert_array_equal(cs.length_only([5.0, 1.0], [1.0, 1.0]), [0.5, 0.5])


# --- noisy proxy (§5.5) ------------------------------------------------------


def test_noisy_proxy_adds_scaled_noise_before_forming_p():
    G, c = np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 9.0])
    xi = np.array([0.5, -1.0, 2.0])
    p = cs.noisy_proxy(G, c, 0.25, noise=xi)
    np.testing.assert_allclose(p, cs.optimal(G + 0.5 * xi, c))


def test_noisy_proxy_negative_handling():
    G, c = np.array([1.0, 1.0]), np.array([1.0, 1.0])
    xi = np.array([-3.0, 1.0])  # proxy = [-2, 2]
    np.testing.assert_allclose(cs.noisy_proxy(G, c, 1.0, noise=xi, negative="clip"), [0.0, 1.0])
    np.testing.assert_allclose(cs.noisy_proxy(G, c, 1.0, noise=xi, negative="abs"), [0.5, 0.5])
    with pytest.raises(ValueError, match="every noisy proxy"):
        cs.noisy_proxy(G, c, 1.0, noise=np.array([-3.0, -3.0]))
    with pytest.raises(ValueError, match="negative"):
        cs.noisy_proxy(G, c, 1.0, noise=xi, negative="zero")
    with pytest.raises(ValueError, match="sigma2"):
        cs.noisy_proxy(G, c, -1.0, rng=0)
    with pytest.raises(ValueError, match="noise must be finite"):
        cs.noisy_proxy(G, c, 1.0, noise=np.array([np.nan, 1.0]))


def test_noisy_proxy_is_reproducible_and_zero_noise_is_exact():
    G, c = np.arange(1.0, 6.0), np.arange(2.0, 7.0)
    np.testing.assert_array_equal(
        cs.noisy_proxy(G, c, 0.3, rng=7), cs.noisy_proxy(G, c, 0.3, rng=7)
    )
    np.testing.assert_allclose(cs.noisy_proxy(G, c, 0.0, rng=7), cs.optimal(G, c))


# --- backends ----------------------------------------------------------------


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda f: f.__name__)
def test_backends_agree_and_return_their_own_kind(sampler):
    G = np.array([0.0, 1.0, 2.5, 4.0])
    c = np.array([3.0, 1.0, 10.0, 2.0])
    ref = sampler(G, c)
    p_jax = sampler(jnp.asarray(G), jnp.asarray(c))
    assert isinstance(p_jax, jax.Array)
    np.testing.assert_allclose(np.asarray(p_jax), ref, rtol=1e-6)
    p_torch = sampler(torch.tensor(G), torch.tensor(c))
    assert isinstance(p_torch, torch.Tensor)
    assert p_torch.dtype == torch.float64
    assert p_torch.device == torch.device("cpu")
    np.testing.assert_allclose(p_torch.numpy(), ref, rtol=1e-12)


def test_torch_float32_stays_float32_and_smooth_works_on_tensors():
    G = torch.tensor([1.0, 2.0, 3.0])
    c = torch.tensor([1.0, 4.0, 9.0])
    p = cs.optimal(G, c)
    assert p.dtype == torch.float32
    q = cs.smooth(p, 0.1)
    assert isinstance(q, torch.Tensor) and q.dtype == torch.float32
    torch.testing.assert_close(q, 0.9 * p + 0.1 / 3)


def test_samplers_trace_under_jit_and_vmap():
    @jax.jit
    def f(G, c, alpha):
        return cs.smooth(cs.optimal(G, c), alpha)

    G = jnp.array([1.0, 2.0, 3.0])
    c = jnp.array([1.0, 4.0, 9.0])
    np.testing.assert_allclose(f(G, c, 0.0), [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    alphas = jnp.array([0.0, 0.5])
    out = jax.vmap(f, in_axes=(None, None, 0))(G, c, alphas)
    assert out.shape == (2, 3)


def test_integer_and_list_inputs_become_float():
    p = cs.variance([1, 3], [1, 1])
    assert p.dtype == np.float64
    np.testing.assert_allclose(p, [0.25, 0.75])


# --- bad input ---------------------------------------------------------------


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("G", "c", "match"),
    [
        ([1.0, -1.0], [1.0, 1.0], r"G must be non-negative; negative 1 entry: \[1\]=-1.0"),
        ([1.0, np.nan], [1.0, 1.0], "G must be finite"),
        ([1.0, np.inf], [1.0, 1.0], "G must be finite"),
        ([0.0, 0.0], [1.0, 1.0], "G is zero everywhere"),
        ([1.0, 1.0], [1.0, -2.0], "c must be non-negative"),
        ([1.0, 1.0], [1.0, np.inf], "c must be finite"),
        ([1.0, 1.0], [1.0, 1.0, 1.0], "shape mismatch"),
        ([], [], "empty"),
        ([[1.0]], [[1.0]], "1-D"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(sampler, G, c, match):
    with pytest.raises(ValueError, match=match):
        sampler(G, c)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), "a"])
def test_smooth_rejects_alpha_outside_unit_interval(alpha):
    with pytest.raises(ValueError, match="alpha"):
        cs.smooth([0.5, 0.5], alpha)


def test_smooth_rejects_a_non_distribution():
    with pytest.raises(ValueError, match="p must sum to 1"):
        cs.smooth([0.5, 0.6], 0.1)


def test_bad_torch_input_names_the_argument():
    with pytest.raises(ValueError, match="c must be finite"):
        cs.optimal(torch.tensor([1.0, 2.0]), torch.tensor([1.0, float("nan")]))


def test_float32_distributions_over_many_components_are_accepted():
    rng = np.random.default_rng(0)
    p = rng.random(10**6).astype(np.float32)
    p /= p.sum()
    q = cs.smooth(p, 0.1)
    assert q.dtype == np.float32
    with pytest.raises(ValueError, match="must sum to 1"):
        cs.smooth(p * np.float32(1.01), 0.1)


def test_extreme_magnitudes_give_a_distribution_not_nan():
    """G/sqrt(c) beyond the dtype (1e300 / sqrt(1e-300)) and float32 sums of 3e38 are
    scaled before normalising, so they give the limit distribution, not [nan, 0] or [0, 0]."""
    p = cs.optimal([1e300, 1.0], [1e-300, 1.0])
    np.testing.assert_allclose(p, [1.0, 0.0], atol=1e-300)
    p32 = cs.variance(np.array([3e38, 3e38], np.float32), np.ones(2, np.float32))
    np.testing.assert_allclose(p32, [0.5, 0.5])
    p32 = cs.optimal(np.array([3e38, 3e38], np.float32), np.array([1.0, 4.0], np.float32))
    np.testing.assert_allclose(p32, [2 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(cs.length_only(None, [1e-300, 1e300]), [1.0, 0.0], atol=1e-300)


def test_nonzero_is_uniform_over_the_components_with_signal_in_every_backend():
    G, c = [0.0, 2.0, 0.0, 1e-30, 5.0], [1.0, 9.0, 4.0, 1.0, 1e6]  # 1e-30: float32 keeps it
    expected = np.array([0.0, 1 / 3, 0.0, 1 / 3, 1 / 3])
    np.testing.assert_allclose(cs.nonzero(G, c), expected, rtol=1e-15)
    np.testing.assert_allclose(
        np.asarray(cs.nonzero(jnp.array(G), jnp.array(c))), expected, rtol=1e-6
    )
    p = cs.nonzero(torch.tensor(G, dtype=torch.float64), torch.tensor(c, dtype=torch.float64))
    assert isinstance(p, torch.Tensor)
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-15)
    with pytest.raises(ValueError, match="G is zero everywhere"):
        cs.nonzero([0.0, 0.0], [1.0, 1.0])


@pytest.mark.parametrize(("rng", "error"), [(-1, ValueError), (1.5, TypeError), ("abc", TypeError)])
def test_noisy_proxy_names_a_bad_rng(rng, error):
    with pytest.raises(error, match="rng"):
        cs.noisy_proxy([1.0, 2.0], [1.0, 1.0], 0.1, rng=rng)
