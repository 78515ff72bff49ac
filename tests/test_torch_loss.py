"""costsgd.torch.loss: weighted aggregations estimate the pool loss without bias."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from costsgd.torch import AGGREGATIONS, cost_aware_probs, importance_weights, weighted_policy_loss

N, T, B = 4, 6, 2


def _pool(seed=0):
    g = torch.Generator().manual_seed(seed)
    resp_len = torch.tensor([1, 2, 4, 6])
    mask = torch.arange(T)[None, :] < resp_len[:, None]
    token_loss = torch.randn(N, T, generator=g, dtype=torch.float64) + 0.5
    lengths = (resp_len + 3).double()  # cost = prompt (3 tokens) + response
    return token_loss, mask, lengths, resp_len


def _target(token_loss, mask, mode):
    m = mask.double()
    per_seq_sum = (token_loss * m).sum(1)
    if mode == "token-mean":
        return per_seq_sum.sum() / m.sum()
    if mode == "seq-mean-token-mean":
        return (per_seq_sum / m.sum(1)).mean()
    if mode == "seq-mean-token-sum":
        return per_seq_sum.mean()
    return per_seq_sum.sum() * B / N  # token-sum at mini-batch scale


def _expectation(estimator, probs):
    """Exact E over B i.i.d. draws from probs, by enumerating all N^B ordered draws."""
    total = torch.zeros((), dtype=torch.float64)
    for draw in itertools.product(range(N), repeat=B):
        idx = torch.tensor(draw)
        if bool((probs[idx] > 0).all()):  # draws of probability zero never happen
            total = total + probs[idx].prod() * estimator(idx)
    return total


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("proxy", ["length", "advantage"])
def test_weighted_estimator_is_exactly_unbiased_under_each_aggregation(mode, proxy):
    token_loss, mask, lengths, resp_len = _pool()
    adv = torch.tensor([0.7, -1.3, 0.4, 2.0])
    probs = cost_aware_probs(adv, lengths, proxy=proxy)
    mean_len = float(resp_len.double().mean())

    def estimator(idx):
        w = importance_weights(probs, idx, normalize="none", dtype=torch.float64)
        return weighted_policy_loss(
            token_loss[idx], mask[idx], w, mode=mode, mean_pool_length=mean_len
        )

    expected = _expectation(estimator, probs)
    assert abs(float(expected - _target(token_loss, mask, mode))) < 1e-12


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    resp=st.lists(st.integers(1, T), min_size=N, max_size=N),
    alpha=st.sampled_from([0.0, 0.3]),
    mode=st.sampled_from(AGGREGATIONS),
)
def test_unbiasedness_holds_on_random_pools(seed, resp, alpha, mode):
    g = torch.Generator().manual_seed(seed)
    resp_len = torch.tensor(resp)
    mask = torch.arange(T)[None, :] < resp_len[:, None]
    token_loss = torch.randn(N, T, generator=g, dtype=torch.float64)
    adv = torch.randn(N, generator=g) + 0.1
    probs = cost_aware_probs(adv, resp_len.double() + 2.0, alpha=alpha)
    mean_len = float(resp_len.double().mean())

    def estimator(idx):
        w = importance_weights(probs, idx, normalize="none", dtype=torch.float64)
        return weighted_policy_loss(
            token_loss[idx], mask[idx], w, mode=mode, mean_pool_length=mean_len
        )

    expected = _expectation(estimator, probs)
    target = _target(token_loss, mask, mode)
    assert abs(float(expected - target)) <= 1e-9 * (1 + abs(float(target)))


def test_zero_advantage_rollouts_drop_out_without_bias_when_their_loss_is_zero():
    token_loss, mask, lengths, _ = _pool()
    adv = torch.tensor([0.0, -1.3, 0.0, 2.0])
    token_loss = token_loss * (adv != 0).double()[:, None]  # PG loss is A * (...): zero there
    probs = cost_aware_probs(adv, lengths)
    assert probs[0] == 0 and probs[2] == 0

    def estimator(idx):
        w = importance_weights(probs, idx, normalize="none", dtype=torch.float64)
        return weighted_policy_loss(token_loss[idx], mask[idx], w, mode="seq-mean-token-sum")

    expected = _expectation(estimator, probs)
    assert abs(float(expected - _target(token_loss, mask, "seq-mean-token-sum"))) < 1e-12


def test_a_denominator_counting_drawn_tokens_is_biased_under_length_aware_sampling():
    # The reason for fixed denominators: p ∝ 1/sqrt(c) over-draws short rollouts.
    token_loss, mask, lengths, _ = _pool()
    token_loss = torch.ones_like(token_loss)  # pool token-mean is exactly 1
    probs = cost_aware_probs(torch.ones(N), lengths, proxy="length")

    def drawn_token_mean(idx):
        w = importance_weights(probs, idx, normalize="none", dtype=torch.float64)
        m = mask[idx].double()
        return (w[:, None] * token_loss[idx] * m).sum() / m.sum()

    expected = _expectation(drawn_token_mean, probs)
    # Exact (every draw enumerated): the step is inflated by 4.5% (README), not the pool mean 1.
    assert float(expected) == pytest.approx(1.0450, abs=5e-5)


def test_micro_batches_sum_to_the_step_estimator():
    token_loss, mask, _, resp_len = _pool()
    w = torch.tensor([0.5, 1.0, 1.5, 1.0], dtype=torch.float64)
    mean_len = float(resp_len.double().mean())
    for mode in AGGREGATIONS:
        whole = weighted_policy_loss(token_loss, mask, w, mode=mode, mean_pool_length=mean_len)
        parts = sum(
            weighted_policy_loss(
                token_loss[s], mask[s], w[s], mode=mode, num_sequences=N, mean_pool_length=mean_len
            )
            for s in (slice(0, 1), slice(1, 4))
        )
        assert torch.allclose(whole, parts), mode


def test_no_weights_means_unit_weights_and_gradients_flow():
    token_loss, mask, _, _ = _pool()
    x = token_loss.clone().requires_grad_(True)
    a = weighted_policy_loss(x, mask, None, mode="seq-mean-token-mean")
    b = weighted_policy_loss(x, mask, torch.ones(N), mode="seq-mean-token-mean")
    assert torch.equal(a, b)
    a.backward()
    assert bool((x.grad[~mask] == 0).all()) and bool((x.grad[mask] != 0).all())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "token-avg"}, "mode"),
        ({"mode": "token-mean"}, "mean_pool_length"),
        ({"mode": "token-mean", "mean_pool_length": 0.0}, "mean_pool_length"),
        ({"num_sequences": 0}, "num_sequences"),
        ({"weights": torch.ones(3)}, "weights"),
        ({"mask": torch.ones(N, T + 1)}, "mask"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    token_loss, mask, _, _ = _pool()
    args = {"mask": mask, "weights": None, "mode": "seq-mean-token-sum", **kwargs}
    with pytest.raises(ValueError, match=match):
        weighted_policy_loss(token_loss, args.pop("mask"), args.pop("weights"), **args)
