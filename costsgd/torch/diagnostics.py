r"""Proxy diagnostics (Figure 3): how good is :math:`|A_u|` as a stand-in for :math:`G_u`?

§5.2 justifies the advantage proxy by two measurements on real batches:

* the Pearson correlation between :math:`|A_u|` and the true per-sequence
  gradient norm :math:`G_u = \|\nabla_\theta \ell_u(\theta)\|` (Theorem D.5 links
  it to the expected sub-optimality), and
* the cost-biased :math:`\chi^2` gap of Theorem 4.2 between the proxy
  distribution :math:`p' \propto |A_u|/\sqrt{c_u}` and :math:`p^* \propto G_u/\sqrt{c_u}`:

.. math:: \frac{J(p')}{J(p^*)} - 1 = D_{\chi^2}(\tilde p^*\,\|\,\tilde p').

:func:`sequence_gradient_norms` computes :math:`G_u` exactly, one sequence at a
time (a micro-batch loop: costs a backward pass per rollout, so run it on a
sample of batches, as the paper does, not every step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from costsgd import samplers, theory
from costsgd.torch._inputs import check_lengths, sequence_advantages
from costsgd.torch.probs import cost_aware_probs

__all__ = [
    "ProxyDiagnostics",
    "pearson",
    "proxy_diagnostics",
    "reinforce_loss",
    "sequence_gradient_norms",
]

LossFn = Callable[[torch.nn.Module, Mapping[str, torch.Tensor]], torch.Tensor]


class ProxyDiagnostics(NamedTuple):
    r"""Figure 3's numbers for one rollout batch.

    Attributes:
      grad_norms: ``(N,)`` float64 true per-sequence gradient norms :math:`G_u`.
      pearson: Pearson correlation of :math:`|A_u|` and :math:`G_u` (NaN when
        either is constant: the correlation is undefined).
      chi2_gap: :math:`J(p')/J(p^*) - 1` (Theorem 4.2); ``inf`` when the proxy
        never draws a rollout that has gradient (e.g. a zero-advantage rollout
        with a KL term).
      proxy_probs: ``(N,)`` the proxy distribution :math:`p'`.
      optimal_probs: ``(N,)`` :math:`p^* \propto G_u/\sqrt{c_u}` (Theorem 4.1).
    """

    grad_norms: torch.Tensor
    pearson: float
    chi2_gap: float
    proxy_probs: torch.Tensor
    optimal_probs: torch.Tensor


def reinforce_loss(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    r"""The on-policy GRPO loss of a batch of sequences (clipped ratio = 1).

    :math:`-\sum_u A_u \frac{1}{|o_u|}\sum_{t \in o_u}\log\pi_\theta(o_{u,t}\mid\cdot)`,
    whose gradient equals that of GRPO's clipped objective at
    :math:`\theta = \theta_{\mathrm{old}}`. For any causal LM returning
    ``.logits`` (or a logits tensor).

    Args:
      model: maps ``input_ids``, ``attention_mask`` to logits ``(b, L, V)``.
      batch: ``input_ids`` and ``attention_mask`` ``(b, L)`` (prompt + response),
        ``loss_mask`` ``(b, L)`` (1 on response tokens), ``advantages`` ``(b,)``.
    """
    ids, attn = batch["input_ids"], batch["attention_mask"]
    out = model(input_ids=ids, attention_mask=attn)
    logits = getattr(out, "logits", out)[:, :-1]
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    m = batch["loss_mask"][:, 1:].to(logp.dtype)
    seq = (logp * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    return -(batch["advantages"].to(logp.dtype) * seq).sum()


def sequence_gradient_norms(
    model: torch.nn.Module, batch: Mapping[str, Any], loss_fn: LossFn = reinforce_loss
) -> torch.Tensor:
    r""":math:`G_u = \|\nabla_\theta \ell_u\|_2` for each sequence of ``batch``.

    Row ``u`` of every tensor in ``batch`` (first dimension :math:`N`) is passed
    to ``loss_fn(model, row_batch)``; the gradient over the parameters that
    require grad is taken and its Euclidean norm recorded. The model's
    ``.grad`` fields are left as they were.

    Returns:
      float64 tensor of shape ``(N,)`` on the CPU.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameter that requires grad")
    sizes = {v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor) and v.ndim}
    if len(sizes) != 1:
        raise ValueError(f"batch tensors must share their first dimension, got sizes {sizes}")
    n = sizes.pop()
    norms = torch.empty(n, dtype=torch.float64)
    for u in range(n):
        row = {
            k: v[u : u + 1] if isinstance(v, torch.Tensor) and v.ndim else v
            for k, v in batch.items()
        }
        grads = torch.autograd.grad(loss_fn(model, row), params, allow_unused=True)
        sq = sum(float(g.double().pow(2).sum()) for g in grads if g is not None)
        norms[u] = math.sqrt(sq)
    return norms


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; ``nan`` when fewer than 2 points or either side is constant."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def proxy_diagnostics(
    model: torch.nn.Module,
    batch: Mapping[str, Any],
    advantages: Any,
    lengths: Any,
    *,
    loss_fn: LossFn = reinforce_loss,
    alpha: float = 0.0,
    mask: Any = None,
) -> ProxyDiagnostics:
    r"""Figure 3 for one batch: :math:`G_u`, corr(:math:`|A_u|, G_u`) and the χ² gap.

    Args:
      model: as in :func:`sequence_gradient_norms`.
      batch: as in :func:`sequence_gradient_norms`.
      loss_fn: as in :func:`sequence_gradient_norms`.
      advantages: ``(N,)`` or ``(N, T)`` (with ``mask``) advantages.
      lengths: ``(N,)`` rollout costs :math:`c_u > 0`.
      alpha: smoothing of the proxy distribution, as used in training.

    Raises:
      ValueError: every :math:`G_u` is zero (no :math:`p^*` exists), or the
        inputs fail the checks of :func:`cost_aware_probs`.

    Examples:
      >>> import torch
      >>> from costsgd.torch.diagnostics import proxy_diagnostics
      >>> model = torch.nn.Linear(2, 1, bias=False)
      >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
      >>> a = torch.tensor([1.0, -2.0, 0.5])
      >>> d = proxy_diagnostics(model, {"x": x, "a": a}, a, torch.tensor([1.0, 4.0, 9.0]),
      ...                       loss_fn=lambda m, b: (b["a"] * m(b["x"])[:, 0]).sum())
      >>> [round(g, 4) for g in d.grad_norms.tolist()], round(d.pearson, 4)
      ([1.0, 4.0, 0.7071], 0.9682)
    """
    proxy = cost_aware_probs(advantages, lengths, alpha=alpha, mask=mask)
    a = sequence_advantages(advantages, mask).cpu().numpy()
    c = check_lengths(lengths, a.shape[0], torch.device("cpu")).numpy()
    G = sequence_gradient_norms(model, batch, loss_fn)
    if G.shape[0] != a.shape[0]:
        raise ValueError(f"batch has {G.shape[0]} sequences, advantages {a.shape[0]}")
    g = G.numpy()
    p_star = samplers.optimal(g, c)
    gap = theory.chi2_gap(proxy.cpu().numpy(), g, c)
    return ProxyDiagnostics(G, pearson(a, g), gap, proxy, torch.from_numpy(p_star))
