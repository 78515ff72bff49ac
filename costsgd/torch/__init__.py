r"""The torch adapter: Algorithm 2's policy-update phase for any PyTorch loop.

This sub-package is the only part of :mod:`costsgd` that imports torch;
``import costsgd`` never loads it (nor does ``import costsgd.torch`` load TRL:
the TRL trainer lives in :mod:`costsgd.torch.trl`).

Core (Algorithm 2, Appendix B.2 and G.2–G.3 of the paper):

* :func:`cost_aware_probs` — :math:`p_u \propto |A_u|/\sqrt{c_u}`, smoothed;
* :func:`sample_minibatches` — :math:`\lceil N/B\rceil` mini-batches drawn with replacement;
* :func:`importance_weights` — :math:`1/(Np_u)`, re-centred to mean 1;
* :func:`plan_update` / :class:`UpdatePlan` / :class:`CostAwareBatchSampler` — conveniences;
* :func:`weighted_policy_loss` — unbiased aggregation with fixed denominators;
* :func:`global_plan` / :func:`stratified_plan` — the same under ``torch.distributed``;
* :func:`proxy_diagnostics` — Figure 3: true :math:`G_u`, corr(:math:`|A_u|, G_u`), χ² gap;
* :mod:`costsgd.torch.microbatch` — micro-batches grouped by length within an optimizer step, trimmed;
* :mod:`costsgd.torch.trl` — ``CostAwareGRPOTrainer`` and ``LengthGroupedGRPOTrainer`` for TRL;
* :mod:`costsgd.torch.verl` — index/weight construction on verl's batch layout;
* :mod:`costsgd.torch.verl_trainer` — verl's trainers with cost-aware actor updates (needs verl).
"""

from costsgd.torch._core import cost_aware_probs, importance_weights, sample_minibatches
from costsgd.torch.diagnostics import (
    ProxyDiagnostics,
    proxy_diagnostics,
    reinforce_loss,
    sequence_gradient_norms,
)
from costsgd.torch.distributed import ShardPlan, global_plan, stratified_plan
from costsgd.torch.loss import AGGREGATIONS, weighted_policy_loss
from costsgd.torch.plan import CostAwareBatchSampler, UpdatePlan, plan_update

__all__ = [
    "AGGREGATIONS",
    "CostAwareBatchSampler",
    "ProxyDiagnostics",
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
