r"""Phase 2 of Algorithm 2: the sampling distribution over a rollout pool.

Phase 2 of Cost-Aware GRPO (Algorithm 2, Appendix B.2) turns the rollout pool
:math:`\mathcal D_{\mathrm{step}}` of size :math:`N` into the distribution

.. math:: p_u \propto |A_u| / \sqrt{c_u},

with :math:`|A_u|` the advantage magnitude standing in for the gradient norm
:math:`G_u` (§5.2) and :math:`c_u` the rollout's token count (prompt plus
response), or into another distribution chosen by :class:`SamplingOptions`.
The probabilities are computed by :mod:`costsgd.samplers` (which accepts torch
tensors) in float64 on the tensors' device.
"""

from __future__ import annotations

from typing import Any

import torch

from costsgd.torch._inputs import pool_inputs
from costsgd.torch._kernels import pool_probs
from costsgd.torch.options import SamplingOptions

__all__ = ["cost_aware_probs"]


def cost_aware_probs(
    advantages: Any,
    lengths: Any,
    *,
    alpha: float = 0.0,
    mask: Any = None,
    proxy: Any = "advantage",
    sigma2: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The sampling distribution of Algorithm 2 over a rollout pool.

    .. math:: p_u = (1-\alpha)\,\frac{|A_u|/\sqrt{c_u}}{\sum_v |A_v|/\sqrt{c_v}} + \frac{\alpha}{N}

    the proxy form of Theorem 4.1's :math:`p^*` (§5.2) smoothed as in §5.3, or,
    with ``proxy``, another sampler of :class:`SamplingOptions`.

    Degenerate pools (documented behaviour):

    * a rollout with :math:`A_u = 0` gets :math:`p_u = 0` unless ``alpha > 0``
      (it carries no policy-gradient signal);
    * if **every** advantage is zero the step has no signal; the distribution
      is then uniform, so the draws are ordinary uniform mini-batches with
      importance weight exactly 1 and the loop keeps its usual number of
      micro-steps (on every rank, which distributed training needs).

    Args:
      advantages: ``(N,)`` per-sequence or ``(N, T)`` per-token advantages.
      lengths: ``(N,)`` rollout costs :math:`c_u > 0` (prompt + response tokens).
      alpha: smoothing weight in ``[0, 1]``.
      mask: ``(N, T)`` response mask for per-token advantages (see
        the per-token reduction is the mean of
        :math:`|A_{u,t}|` over the masked tokens).
      proxy: a name of :data:`costsgd.torch.PROXIES` — ``"advantage"``
        (:math:`|A_u|/\sqrt{c_u}`), ``"nonzero"`` (:math:`\mathbf 1[A_u\ne0]`,
        zero-advantage removal), ``"length"`` (:math:`p^*_{\mathrm{LEN}} \propto
        1/\sqrt{c_u}`, Appendix G.6), ``"variance"``, ``"uniform"`` — or a
        function ``(G, c) -> p``.
      sigma2: noise variance of the noisy-proxy ablation (§5.5): the proxy is
        :math:`|A_u| + \sigma\xi_u`, clipped at 0 (as :func:`costsgd.noisy_proxy`).
      generator: ``torch.Generator`` for the noise draws (``sigma2 > 0``).

    Returns:
      float64 tensor of shape ``(N,)`` on the device of ``advantages``.

    Raises:
      ValueError: non-finite advantages, non-positive or non-finite lengths,
        mismatched shapes, or an invalid option (see :class:`SamplingOptions`).

    Examples:
      >>> import torch
      >>> from costsgd.torch import cost_aware_probs
      >>> p = cost_aware_probs(torch.tensor([1.0, -1.0, 0.0]), torch.tensor([1.0, 4.0, 1.0]))
      >>> [round(v, 4) for v in p.tolist()]
      [0.6667, 0.3333, 0.0]
      >>> cost_aware_probs(torch.tensor([1.0, -1.0, 0.0]), torch.tensor([1.0, 4.0, 1.0]),
      ...                  proxy="nonzero").tolist()
      [0.5, 0.5, 0.0]
      >>> cost_aware_probs(torch.zeros(4), torch.ones(4)).tolist()  # no signal: uniform
      [0.25, 0.25, 0.25, 0.25]
    """
    sampling = SamplingOptions(proxy=proxy, alpha=alpha, sigma2=sigma2)
    G, c = pool_inputs(advantages, lengths, mask, generator)
    return pool_probs(G, c, sampling, generator)
