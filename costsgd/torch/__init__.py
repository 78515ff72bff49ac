r"""The torch adapter: Algorithm 2's policy-update phase for any PyTorch loop.

This sub-package is the only part of :mod:`costsgd` that imports torch;
``import costsgd`` never loads it, and ``import costsgd.torch`` never loads a
training framework: the TRL and verl integrations live in
:mod:`costsgd.integrations`.

Algorithm 2, Appendix B.2 and G.2–G.3 of the paper, module by module:

* :mod:`~costsgd.torch.options` — :class:`SamplingOptions`, the one carrier of the
  sampling choices (which :math:`p`, smoothing, proxy noise, weight normalisation);
* :mod:`~costsgd.torch.probs` — :func:`cost_aware_probs`, :math:`p_u \propto |A_u|/\sqrt{c_u}`
  or any sampler ``(G, c) -> p``;
* :mod:`~costsgd.torch.draws` — :func:`sample_minibatches`, :math:`\lceil N/B\rceil`
  mini-batches drawn with replacement;
* :mod:`~costsgd.torch.weights` — :func:`importance_weights`, :math:`1/(Np_u)` re-centred to mean 1;
* :mod:`~costsgd.torch.plan` — :func:`plan_update` / :class:`UpdatePlan` /
  :class:`CostAwareBatchSampler`, the three together;
* :mod:`~costsgd.torch.loss` — :func:`weighted_policy_loss`, unbiased aggregation
  with fixed denominators;
* :mod:`~costsgd.torch.distributed` — :func:`global_plan` / :func:`stratified_plan`
  under ``torch.distributed``;
* :mod:`~costsgd.torch.microbatch` — micro-batches grouped by length within an
  optimizer step, trimmed;
* :mod:`~costsgd.torch.diagnostics` — :func:`proxy_diagnostics`, Figure 3: true
  :math:`G_u`, corr(:math:`|A_u|, G_u`), χ² gap.
"""

from costsgd.torch.diagnostics import (
    ProxyDiagnostics,
    proxy_diagnostics,
    reinforce_loss,
    sequence_gradient_norms,
)
from costsgd.torch.distributed import ShardPlan, global_plan, stratified_plan
from costsgd.torch.draws import sample_minibatches
from costsgd.torch.loss import AGGREGATIONS, weighted_policy_loss
from costsgd.torch.options import PROXIES, SamplingOptions
from costsgd.torch.plan import CostAwareBatchSampler, UpdatePlan, plan_update
from costsgd.torch.probs import cost_aware_probs
from costsgd.torch.weights import importance_weights

__all__ = [
    "AGGREGATIONS",
    "PROXIES",
    "CostAwareBatchSampler",
    "ProxyDiagnostics",
    "SamplingOptions",
    "ShardPlan",
    "UpdatePlan",
    "cost_aware_probs",
    "global_plan",
    "importance_weights",
    "plan_update",
    "proxy_diagnostics",
    "reinforce_loss",
    "sample_minibatches",
    "sequence_gradient_norms",
    "stratified_plan",
    "weighted_policy_loss",
]
