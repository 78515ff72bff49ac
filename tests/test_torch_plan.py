"""costsgd.torch.plan: the update-step plan, its summary, and the batch sampler."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from costsgd.torch import CostAwareBatchSampler, cost_aware_probs, plan_update


def _pool(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    adv = torch.randn(n, generator=g)
    adv[:5] = 0.0
    lengths = torch.randint(10, 500, (n,), generator=g).double()
    return adv, lengths


def test_plan_holds_probs_draws_and_weights_of_one_step():
    adv, lengths = _pool()
    plan = plan_update(adv, lengths, 8, generator=torch.Generator().manual_seed(1))
    assert tuple(plan.indices.shape) == (4, 8) == tuple(plan.weights.shape)
    torch.testing.assert_close(plan.probs, cost_aware_probs(adv, lengths))
    torch.testing.assert_close(
        plan.weights.double(),
        (1 / (32 * plan.probs[plan.indices])) / (1 / (32 * plan.probs[plan.indices])).mean(),
        rtol=1e-6,
        atol=0,
    )
    assert not bool((plan.indices < 5).any())  # zero-advantage rollouts are never drawn


def test_summary_reports_weights_ess_and_tokens():
    adv, lengths = _pool()
    plan = plan_update(adv, lengths, 8, num_batches=6, generator=torch.Generator().manual_seed(2))
    s = plan.summary()
    w = plan.weights.double().reshape(-1)
    assert s["draws"] == 48
    assert s["weight_mean"] == pytest.approx(1.0, abs=1e-6)
    assert s["weight_min"] == pytest.approx(float(w.min()))
    assert s["weight_max"] == pytest.approx(float(w.max()))
    assert s["weight_std"] == pytest.approx(float(w.std(unbiased=False)))
    assert s["ess"] == pytest.approx(float(w.sum() ** 2 / (w**2).sum()))
    assert 0 < s["ess_fraction"] <= 1
    assert s["tokens_selected"] == float(lengths[plan.indices.reshape(-1)].sum())
    assert s["tokens_pool"] == float(lengths.sum())
    assert s["token_fraction"] == pytest.approx(s["tokens_selected"] / s["tokens_pool"])
    assert s["unique_fraction"] == len(set(plan.indices.reshape(-1).tolist())) / 32


def test_uniform_plan_has_full_effective_sample_size():
    plan = plan_update(torch.zeros(10), torch.arange(1.0, 11.0), 5)  # no signal: uniform
    s = plan.summary()
    assert s["ess"] == pytest.approx(10.0) and s["weight_std"] == 0.0


def test_length_aware_plan_selects_fewer_tokens_on_average():
    adv, lengths = _pool(n=256)
    fractions = [
        plan_update(adv, lengths, 16, generator=torch.Generator().manual_seed(s)).summary()[
            "token_fraction"
        ]
        for s in range(20)
    ]
    expected = float((cost_aware_probs(adv, lengths) * lengths).sum() / lengths.mean())
    assert expected < 1.0
    assert sum(fractions) / len(fractions) == pytest.approx(expected, rel=0.05)


def test_batch_sampler_drives_a_dataloader_and_exposes_aligned_weights():
    adv, lengths = _pool()
    probs = cost_aware_probs(adv, lengths)
    data = TensorDataset(torch.arange(32))
    sampler = CostAwareBatchSampler(probs, 8, generator=torch.Generator().manual_seed(3))
    loader = DataLoader(data, batch_sampler=sampler)
    assert len(loader) == 4
    batches = [b[0] for b in loader]
    assert torch.equal(torch.stack(batches), sampler.indices)
    assert tuple(sampler.weights.shape) == (4, 8)
    assert float(sampler.weights.mean()) == pytest.approx(1.0, abs=1e-6)
    first = sampler.indices.clone()
    list(loader)
    assert not torch.equal(first, sampler.indices)  # each pass draws afresh


def test_batch_sampler_is_reproducible_and_validates_eagerly():
    probs = torch.tensor([0.5, 0.5, 0.0])
    a = list(CostAwareBatchSampler(probs, 2, generator=torch.Generator().manual_seed(0)))
    b = list(CostAwareBatchSampler(probs, 2, generator=torch.Generator().manual_seed(0)))
    assert a == b
    with pytest.raises(ValueError, match="batch_size"):
        CostAwareBatchSampler(probs, 0)
    with pytest.raises(ValueError, match="sum to 1"):
        CostAwareBatchSampler(torch.tensor([0.5, 0.6]), 1)
    with pytest.raises(ValueError, match="normalize"):
        CostAwareBatchSampler(probs, 1, normalize="mean")


def test_batch_sampler_accepts_a_list_and_rejects_bad_probabilities():
    from costsgd.torch import CostAwareBatchSampler

    sampler = CostAwareBatchSampler([0.5, 0.5], 2)
    assert len(list(sampler)) == 1
    with pytest.raises(ValueError, match="probs must sum to 1"):
        CostAwareBatchSampler([0.5, 0.6], 2)
