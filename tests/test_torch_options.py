"""costsgd.torch.SamplingOptions: one validated carrier of the sampling choices, used by every plan."""

import numpy as np
import pytest
import torch

import costsgd as cs
from costsgd.torch import (
    PROXIES,
    SamplingOptions,
    cost_aware_probs,
    global_plan,
    plan_update,
    stratified_plan,
)


def _pool(n=16, seed=0, zeros=5):
    g = torch.Generator().manual_seed(seed)
    adv = torch.randn(n, generator=g, dtype=torch.float64)
    adv[:zeros] = 0.0
    lengths = torch.randint(4, 400, (n,), generator=g).double()
    return adv, lengths


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("proxy", "median"),
        ("proxy", 3),
        ("alpha", -0.1),
        ("alpha", "0.5"),
        ("alpha", float("nan")),
        ("sigma2", -1.0),
        ("sigma2", "0.5"),
        ("sigma2", float("inf")),
        ("sigma2", True),
        ("normalize", "mean"),
    ],
)
def test_an_invalid_option_is_refused_when_built_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^{field} "):
        SamplingOptions(**{field: value})


def test_plans_refuse_a_carrier_of_another_type():
    adv, lengths = _pool()
    with pytest.raises(TypeError, match="sampling"):
        plan_update(adv, lengths, 4, sampling={"alpha": 0.1})


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_every_named_proxy_is_its_sampler_on_abs_advantages_and_costs(name):
    adv, lengths = _pool()
    p = cost_aware_probs(adv, lengths, proxy=name)
    expected = PROXIES[name](np.abs(adv.numpy()), lengths.numpy())
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-12, atol=1e-15)


def test_nonzero_proxy_is_zero_advantage_removal():
    adv, lengths = _pool(zeros=5)
    p = cost_aware_probs(adv, lengths, proxy="nonzero")
    assert torch.equal(p[:5], torch.zeros(5, dtype=torch.float64))
    torch.testing.assert_close(p[5:], torch.full((11,), 1 / 11, dtype=torch.float64))
    smoothed = cost_aware_probs(adv, lengths, proxy="nonzero", alpha=0.1)
    torch.testing.assert_close(smoothed, 0.9 * p + 0.1 / 16)


def test_a_sampler_function_plugs_in_and_is_checked():
    adv, lengths = _pool()
    plan = plan_update(adv, lengths, 4, sampling=SamplingOptions(proxy=cs.variance))
    torch.testing.assert_close(plan.probs, cost_aware_probs(adv, lengths, proxy="variance"))

    def not_a_distribution(G, c):
        return G  # does not sum to 1

    with pytest.raises(ValueError, match="sampler's output must sum to 1"):
        plan_update(adv, lengths, 4, sampling=SamplingOptions(proxy=not_a_distribution))
    with pytest.raises(ValueError, match="returned shape"):
        cost_aware_probs(adv, lengths, proxy=lambda G, c: G[:3] / G[:3].sum())


@pytest.mark.parametrize("proxy", ["advantage", "nonzero", "variance", "uniform", cs.optimal])
def test_a_pool_without_signal_is_drawn_uniformly_with_weight_one(proxy):
    plan = plan_update(
        torch.zeros(6), torch.arange(1.0, 7.0), 3, sampling=SamplingOptions(proxy=proxy, sigma2=0.5)
    )
    torch.testing.assert_close(plan.probs, torch.full((6,), 1 / 6, dtype=torch.float64))
    assert torch.equal(plan.weights, torch.ones_like(plan.weights))


def test_length_proxy_ignores_the_advantages_even_without_signal():
    p = cost_aware_probs(torch.zeros(2), torch.tensor([1.0, 4.0]), proxy="length")
    torch.testing.assert_close(p, torch.tensor([2 / 3, 1 / 3], dtype=torch.float64))


def test_noisy_proxy_is_the_sampler_of_the_clipped_noisy_advantages():
    adv, lengths = _pool()
    for name in ("advantage", "nonzero"):
        p = cost_aware_probs(
            adv, lengths, proxy=name, sigma2=0.3, generator=torch.Generator().manual_seed(4)
        )
        noise = torch.randn(16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        G = (adv.abs() + 0.3**0.5 * noise).clamp(min=0)
        torch.testing.assert_close(p, PROXIES[name](G, lengths))


def test_every_plan_uses_the_same_options():
    adv, lengths = _pool()
    sampling = SamplingOptions(proxy="nonzero", alpha=0.05, normalize="none")
    expected = cost_aware_probs(adv, lengths, proxy="nonzero", alpha=0.05)
    plan = plan_update(adv, lengths, 4, sampling=sampling, generator=torch.Generator())
    strat = stratified_plan(adv, lengths, 4, sampling=sampling, generator=torch.Generator())
    shard = global_plan(adv, lengths, 4, seed=3, sampling=sampling)
    for probs in (plan.probs, strat.probs, shard.plan.probs):
        torch.testing.assert_close(probs, expected)
    for weights, indices in ((plan.weights, plan.indices), (strat.weights, strat.indices)):
        raw = 1.0 / (16 * expected[indices])  # normalize="none": the raw 1/(N p)
        torch.testing.assert_close(weights, raw.float())


def test_global_plan_draws_the_proxy_noise_from_the_shared_seed():
    adv, lengths = _pool()
    sampling = SamplingOptions(sigma2=0.5)
    a = global_plan(adv, lengths, 4, seed=11, sampling=sampling)
    b = global_plan(adv, lengths, 4, seed=11, sampling=sampling)
    c = global_plan(adv, lengths, 4, seed=12, sampling=sampling)
    assert torch.equal(a.plan.probs, b.plan.probs) and torch.equal(a.plan.indices, b.plan.indices)
    assert not torch.equal(a.plan.probs, c.plan.probs)
    assert not torch.equal(a.plan.probs, cost_aware_probs(adv, lengths))
