"""costsgd.torch core: probabilities, mini-batch draws, importance weights (Algorithm 2)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import costsgd as cs
from costsgd.torch import cost_aware_probs, importance_weights, sample_minibatches


def _pool(n=12, seed=0, zeros=3):
    rng = np.random.default_rng(seed)
    adv = rng.normal(size=n)
    adv[:zeros] = 0.0
    lengths = rng.integers(5, 400, size=n).astype(float)
    return torch.tensor(adv, dtype=torch.float32), torch.tensor(lengths)


# --- cost_aware_probs -------------------------------------------------------------------


def test_probs_match_the_numpy_optimal_distribution():
    adv, lengths = _pool()
    p = cost_aware_probs(adv, lengths)
    expected = cs.optimal(np.abs(adv.numpy().astype(float)), lengths.numpy())
    assert p.dtype == torch.float64
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-6)


def test_zero_advantage_rollouts_get_zero_probability_unless_smoothed():
    adv, lengths = _pool(zeros=3)
    assert cost_aware_probs(adv, lengths)[:3].tolist() == [0.0, 0.0, 0.0]
    alpha = 0.1
    p = cost_aware_probs(adv, lengths, alpha=alpha)
    assert bool((p[:3] == alpha / 12).all())
    np.testing.assert_allclose(p.numpy(), cs.smooth(cost_aware_probs(adv, lengths).numpy(), alpha))


def test_all_zero_advantages_give_uniform_draws_with_weight_one():
    p = cost_aware_probs(torch.zeros(6), torch.arange(1.0, 7.0))
    assert p.tolist() == [1 / 6] * 6
    idx = sample_minibatches(p, 2, generator=torch.Generator().manual_seed(0))
    assert tuple(idx.shape) == (3, 2)
    for normalize in ("draws", "expected", "none"):
        assert importance_weights(p, idx, normalize=normalize).tolist() == [[1.0, 1.0]] * 3


def test_per_token_advantages_with_mask_reduce_to_the_sequence_advantage():
    adv, lengths = _pool()
    mask = torch.zeros(12, 7, dtype=torch.bool)
    for u in range(12):
        mask[u, : 1 + u % 7] = True
    per_token = torch.where(mask, adv[:, None], torch.full((12, 7), 99.0))  # padding ignored
    p_tok = cost_aware_probs(per_token, lengths, mask=mask)
    torch.testing.assert_close(p_tok, cost_aware_probs(adv, lengths))


def test_huge_but_finite_advantages_are_accepted():
    # Their sum overflows to inf; the finiteness check must not mistake that for bad input.
    p = cost_aware_probs(torch.tensor([1e308, 1e308, 0.0], dtype=torch.float64), torch.ones(3))
    assert p.tolist() == [0.5, 0.5, 0.0]


def test_length_only_proxy_ignores_advantages():
    adv, lengths = _pool()
    p = cost_aware_probs(adv, lengths, proxy="length")
    np.testing.assert_allclose(p.numpy(), cs.length_only(None, lengths.numpy()))


def test_noisy_proxy_is_reproducible_and_reduces_to_exact_at_zero_noise():
    adv, lengths = _pool()
    p1 = cost_aware_probs(adv, lengths, sigma2=0.5, generator=torch.Generator().manual_seed(3))
    p2 = cost_aware_probs(adv, lengths, sigma2=0.5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(p1, p2)
    assert not torch.allclose(p1, cost_aware_probs(adv, lengths))
    assert abs(float(p1.sum()) - 1.0) < 1e-12 and bool((p1 >= 0).all())


@pytest.mark.parametrize(
    ("adv", "lengths", "kwargs", "match"),
    [
        ([1.0, float("nan")], [1.0, 1.0], {}, "advantages must be finite"),
        ([1.0, float("inf")], [1.0, 1.0], {}, "advantages must be finite"),
        ([1.0, 2.0], [1.0, 0.0], {}, "lengths must be finite and > 0"),
        ([1.0, 2.0], [1.0, -3.0], {}, "lengths must be finite and > 0"),
        ([1.0, 2.0], [1.0, float("nan")], {}, "lengths must be finite and > 0"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], {}, "lengths must have shape"),
        ([1.0, 2.0], [1.0, 2.0], {"alpha": 1.5}, "alpha"),
        ([1.0, 2.0], [1.0, 2.0], {"proxy": "grad"}, "proxy"),
        ([1.0, 2.0], [1.0, 2.0], {"mask": [[1, 1], [1, 1]]}, "mask"),
        ([[[1.0]]], [1.0], {}, "advantages must have shape"),
    ],
)
def test_bad_inputs_raise_value_errors_naming_the_argument(adv, lengths, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cost_aware_probs(torch.tensor(adv), torch.tensor(lengths), **kwargs)


@settings(max_examples=40, deadline=None)
@given(
    adv=st.lists(
        st.one_of(st.just(0.0), st.floats(1e-6, 5), st.floats(-5, -1e-6)), min_size=1, max_size=30
    ),
    alpha=st.floats(0, 1),
    data=st.data(),
)
def test_probs_form_a_distribution_zero_exactly_where_advantage_is_zero(adv, alpha, data):
    lengths = data.draw(st.lists(st.floats(1, 1e4), min_size=len(adv), max_size=len(adv)))
    p = cost_aware_probs(torch.tensor(adv), torch.tensor(lengths), alpha=alpha)
    assert abs(float(p.sum()) - 1.0) < 1e-9
    assert bool((p >= 0).all())
    if alpha == 0 and any(a != 0 for a in adv):
        assert ((p == 0) == (torch.tensor(adv) == 0)).all()
    if alpha > 0:
        assert float(p.min()) >= alpha / len(adv) * (1 - 1e-12)


# --- sample_minibatches -----------------------------------------------------------------


def test_default_number_of_minibatches_is_ceil_n_over_b():
    p = torch.full((10,), 0.1)
    for b in (1, 3, 4, 10, 11):
        idx = sample_minibatches(p, b)
        assert tuple(idx.shape) == (math.ceil(10 / b), b)
        assert idx.dtype == torch.int64 and idx.device == p.device
    assert tuple(sample_minibatches(p, 3, num_batches=7).shape) == (7, 3)


def test_draws_are_reproducible_with_a_generator():
    p = cost_aware_probs(*_pool())
    a = sample_minibatches(p, 4, num_batches=50, generator=torch.Generator().manual_seed(7))
    b = sample_minibatches(p, 4, num_batches=50, generator=torch.Generator().manual_seed(7))
    c = sample_minibatches(p, 4, num_batches=50, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_draw_frequencies_follow_p_and_zero_probability_is_never_drawn():
    p = cost_aware_probs(*_pool(zeros=3))
    idx = sample_minibatches(p, 1000, num_batches=60, generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(idx.reshape(-1), minlength=12).numpy()
    assert counts[:3].tolist() == [0, 0, 0]
    expected = p.numpy()[3:] * idx.numel()
    assert stats.chisquare(counts[3:], expected).pvalue > 1e-4


def test_more_categories_than_torch_multinomial_allows():
    n = 2**24 + 16  # torch.multinomial refuses more than 2^24 categories
    p = torch.zeros(n, dtype=torch.float64)
    p[-4:] = 0.25  # only the last few (beyond 2^24) have mass
    idx = sample_minibatches(p, 64, num_batches=1, generator=torch.Generator().manual_seed(0))
    assert bool((idx >= n - 4).all())
    assert len(set(idx.reshape(-1).tolist())) == 4


@pytest.mark.parametrize(
    ("probs", "b", "kwargs", "match"),
    [
        ([0.5, 0.5], 0, {}, "batch_size"),
        ([0.5, 0.5], 2.0, {}, "batch_size"),
        ([0.5, 0.5], 1, {"num_batches": 0}, "num_batches"),
        ([0.5, 0.6], 1, {}, "sum to 1"),
        ([1.5, -0.5], 1, {}, "non-negative"),
        ([[0.5, 0.5]], 1, {}, "1-D"),
        ([float("nan"), 1.0], 1, {}, "finite"),
    ],
)
def test_bad_sampling_arguments_raise(probs, b, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_minibatches(torch.tensor(probs), b, **kwargs)


# --- importance_weights -----------------------------------------------------------------


def test_raw_weights_are_one_over_n_p_and_normalised_ones_average_one():
    p = cost_aware_probs(*_pool())
    idx = sample_minibatches(p, 4, generator=torch.Generator().manual_seed(0))
    raw = importance_weights(p, idx, normalize="none", dtype=torch.float64)
    torch.testing.assert_close(raw, 1.0 / (12 * p[idx]))
    w = importance_weights(p, idx)
    assert w.shape == idx.shape and w.dtype == torch.float32
    assert abs(float(w.mean()) - 1.0) < 1e-6
    torch.testing.assert_close(w.double(), raw / raw.mean(), rtol=1e-6, atol=0)
    exp = importance_weights(p, idx, normalize="expected", dtype=torch.float64)
    torch.testing.assert_close(exp, raw * 12 / 9)  # 9 of 12 rollouts have mass


def test_raw_weighted_single_draw_is_exactly_unbiased_for_the_pool_mean():
    # E_{u~p}[w_u l_u] = sum_u p_u l_u / (N p_u) = mean of l over the pool, when l vanishes
    # where p does (zero-advantage rollouts have zero policy-gradient loss).
    adv, lengths = _pool()
    p = cost_aware_probs(adv, lengths)
    loss = adv.double() * torch.arange(1.0, 13.0, dtype=torch.float64)  # zero where adv is
    support = torch.nonzero(p > 0).reshape(-1)
    w = importance_weights(p, support, normalize="none", dtype=torch.float64)
    assert abs(float((p[support] * w * loss[support]).sum() - loss.mean())) < 1e-12


@pytest.mark.parametrize(
    ("idx", "kwargs", "match"),
    [
        ([0, 3], {}, "cannot have been drawn"),
        ([0, 5], {}, r"must lie in \[0, 4\)"),
        ([0.0, 1.0], {}, "integer"),
        ([0, 1], {"normalize": "mean"}, "normalize"),
    ],
)
def test_bad_weight_arguments_raise(idx, kwargs, match):
    p = torch.tensor([0.25, 0.25, 0.5, 0.0])
    with pytest.raises(ValueError, match=match):
        importance_weights(p, torch.tensor(idx), **kwargs)


def test_importing_costsgd_torch_is_the_only_way_torch_gets_loaded():
    import subprocess
    import sys

    code = (
        "import sys, costsgd\n"
        "assert 'torch' not in sys.modules\n"
        "import costsgd.torch\n"
        "assert 'torch' in sys.modules and 'trl' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_name_of_the_adapter_exists():
    import costsgd.torch

    for name in costsgd.torch.__all__:
        assert hasattr(costsgd.torch, name), name
