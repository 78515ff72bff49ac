"""costsgd.torch.diagnostics: true per-sequence gradient norms, correlation, χ² gap (Figure 3)."""

import numpy as np
import pytest
import torch
from torch.func import functional_call, grad, vmap

import costsgd as cs
from costsgd.torch.diagnostics import proxy_diagnostics, reinforce_loss, sequence_gradient_norms
from tests.helpers import tiny_llama


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))


def _loss(model, batch):
    return (batch["a"] * model(batch["x"])[:, 0]).sum()


def _batch(n=9, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(n, 3, generator=g), "a": torch.randn(n, generator=g)}


def test_gradient_norms_match_torch_func_per_sample_gradients():
    model, batch = _mlp(), _batch()
    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p, x, a):
        return a * functional_call(model, p, (x[None],))[0, 0]

    per_sample = vmap(grad(one), in_dims=(None, 0, 0))(params, batch["x"], batch["a"])
    reference = torch.sqrt(sum(g.double().pow(2).flatten(1).sum(1) for g in per_sample.values()))
    G = sequence_gradient_norms(model, batch, _loss)
    torch.testing.assert_close(G, reference, rtol=1e-5, atol=1e-8)
    assert all(p.grad is None for p in model.parameters())  # .grad left untouched


def test_chi2_gap_is_theorem_4_2_cost_product_ratio_and_pearson_is_numpy_corrcoef():
    model, batch = _mlp(), _batch()
    lengths = torch.arange(1.0, 10.0) ** 2
    d = proxy_diagnostics(model, batch, batch["a"], lengths, loss_fn=_loss)
    G, c = d.grad_norms.numpy(), lengths.numpy()
    proxy = cs.optimal(np.abs(batch["a"].numpy()).astype(float), c)
    np.testing.assert_allclose(d.proxy_probs.numpy(), proxy, rtol=1e-6)
    np.testing.assert_allclose(d.optimal_probs.numpy(), cs.optimal(G, c))
    ratio = cs.cost_product(proxy, G, c) / cs.cost_product(cs.optimal(G, c), G, c)
    assert d.chi2_gap == pytest.approx(ratio - 1.0, rel=1e-6)
    assert d.chi2_gap > 0
    assert d.pearson == pytest.approx(np.corrcoef(np.abs(batch["a"].numpy()), G)[0, 1])


def test_a_perfect_proxy_has_unit_correlation_and_zero_gap():
    # Linear model, unit-norm inputs: grad of a_u * w.x_u is a_u x_u, so G_u = |a_u| exactly.
    model = torch.nn.Linear(3, 1, bias=False)
    batch = _batch()
    batch["x"] = batch["x"] / batch["x"].norm(dim=1, keepdim=True)
    d = proxy_diagnostics(model, batch, batch["a"], torch.arange(1.0, 10.0), loss_fn=_loss)
    torch.testing.assert_close(d.grad_norms, batch["a"].abs().double(), rtol=1e-6, atol=1e-7)
    assert d.pearson == pytest.approx(1.0, abs=1e-6)
    assert d.chi2_gap == pytest.approx(0.0, abs=1e-9)


def test_reinforce_loss_on_a_causal_lm_scales_with_the_advantage():
    model = tiny_llama(16, hidden_size=16, num_layers=1, max_positions=16, special_tokens=False)
    ids = torch.randint(0, 16, (4, 7), generator=torch.Generator().manual_seed(0))
    attn = torch.ones_like(ids)
    loss_mask = torch.zeros_like(ids)
    loss_mask[:, 3:] = 1  # 3 prompt tokens, 4 response tokens
    adv = torch.tensor([1.0, -0.5, 0.0, 2.0])
    batch = {"input_ids": ids, "attention_mask": attn, "loss_mask": loss_mask, "advantages": adv}
    G = sequence_gradient_norms(model, batch, reinforce_loss)
    assert G[2] == 0.0 and bool((G[[0, 1, 3]] > 0).all())
    doubled = sequence_gradient_norms(model, {**batch, "advantages": 2 * adv}, reinforce_loss)
    torch.testing.assert_close(doubled, 2 * G)
    d = proxy_diagnostics(model, batch, adv, torch.full((4,), 7.0))
    assert np.isfinite(d.chi2_gap)


def test_degenerate_inputs():
    model, batch = _mlp(), _batch(n=3)
    const = torch.ones(3)
    d = proxy_diagnostics(model, batch, const, torch.ones(3), loss_fn=_loss)
    assert np.isnan(d.pearson)  # |A| constant: correlation undefined
    with pytest.raises(ValueError, match="zero everywhere"):
        proxy_diagnostics(
            model, batch, batch["a"], torch.ones(3), loss_fn=lambda m, b: 0 * _loss(m, b)
        )
    with pytest.raises(ValueError, match="first dimension"):
        sequence_gradient_norms(model, {"x": batch["x"], "a": torch.ones(4)}, _loss)
