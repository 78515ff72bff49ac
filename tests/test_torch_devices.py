"""The adapter keeps tensors on their device: run on CPU everywhere, and on CUDA too
where a GPU is present (the same tests, parametrised by the devices this machine has)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

import costsgd as cs
from costsgd.torch import (
    SamplingOptions,
    cost_aware_probs,
    importance_weights,
    plan_update,
    sample_minibatches,
    weighted_policy_loss,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _pool(device, n_prompts=64, n_rollouts=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    rewards = (torch.rand(n_prompts, n_rollouts, generator=g) < 0.4).float()
    adv = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)
    lengths = torch.randint(16, 512, (n_prompts * n_rollouts,), generator=g)
    return adv.reshape(-1).to(device), lengths.to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_samplers_return_tensors_on_the_input_device(device):
    G = torch.tensor([0.0, 1.0, 2.0, 3.0], device=device)
    c = torch.tensor([1.0, 4.0, 9.0, 16.0], device=device)
    for sampler in (cs.uniform, cs.variance, cs.optimal, cs.length_only):
        p = sampler(G, c)
        assert p.device == G.device and p.dtype == G.dtype
    assert cs.smooth(cs.optimal(G, c), 0.1).device == G.device


@pytest.mark.parametrize("device", DEVICES)
def test_plan_stays_on_device_and_follows_p(device):
    adv, lengths = _pool(device)
    p = cost_aware_probs(adv, lengths, alpha=0.01)
    assert p.device == adv.device and p.dtype == torch.float64
    gen = torch.Generator(device=device).manual_seed(0)
    idx = sample_minibatches(p, 64, num_batches=4000, generator=gen)
    assert idx.device == adv.device and idx.shape == (4000, 64)
    counts = torch.bincount(idx.reshape(-1), minlength=p.numel()).cpu().numpy()
    expected = idx.numel() * p.cpu().numpy()
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    w = importance_weights(p, idx)
    assert w.device == adv.device and w.shape == idx.shape
    assert w.mean().item() == pytest.approx(1.0, rel=1e-5)
    plan = plan_update(
        adv, lengths, batch_size=64, sampling=SamplingOptions(alpha=0.01), generator=gen
    )
    assert plan.indices.device == adv.device and plan.weights.device == adv.device
    summary = plan.summary()
    assert summary["draws"] == plan.indices.numel()
    assert 0 < summary["unique_fraction"] <= 1 and summary["weight_mean"] == pytest.approx(1.0)


@pytest.mark.parametrize("device", DEVICES)
def test_more_categories_than_torch_multinomial_allows(device):
    n = 2**24 + 16
    p = torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)
    p[-8:] *= 4  # the last components, beyond multinomial's limit, are 4x as likely
    p /= p.sum()
    gen = torch.Generator(device=device).manual_seed(1)
    idx = sample_minibatches(p, 1024, num_batches=512, generator=gen)
    assert idx.device == p.device
    assert int(idx.max()) < n
    # The top 8 components hold 32/(n + 24) of the mass: expect about 16 draws.
    hits = int((idx >= n - 8).sum())
    assert stats.poisson(idx.numel() * float(p[-8:].sum())).cdf(hits) > 1e-4
    assert stats.poisson(idx.numel() * float(p[-8:].sum())).sf(hits - 1) > 1e-4


@pytest.mark.parametrize("device", DEVICES)
def test_weighted_loss_on_device_matches_cpu(device):
    n, t = 32, 12
    g = torch.Generator().manual_seed(3)
    token_loss = torch.randn(n, t, generator=g)
    mask = (torch.arange(t)[None] < torch.randint(1, t + 1, (n, 1), generator=g)).float()
    weights = torch.rand(n, generator=g) + 0.5
    ref = weighted_policy_loss(token_loss, mask, weights, mode="seq-mean-token-mean")
    got = weighted_policy_loss(
        token_loss.to(device), mask.to(device), weights.to(device), mode="seq-mean-token-mean"
    )
    assert got.device.type == torch.device(device).type
    np.testing.assert_allclose(got.cpu().numpy(), ref.numpy(), rtol=1e-5)
