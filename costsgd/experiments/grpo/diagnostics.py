r"""Figure 3's proxy diagnostics on the tiny policy: is :math:`|A_u|` a good stand-in for :math:`G_u`?

At a training iteration, before its updates, the adapter's
:func:`costsgd.torch.diagnostics.proxy_diagnostics` computes the true
per-sequence gradient norms :math:`G_u = \|\nabla_\theta \ell(o_u)\|`, where
:math:`\ell` is the policy-gradient part of Appendix G.3's per-sequence
objective at :math:`\theta = \theta_{old}` (ratio 1, so clipping is inactive).
The KL term is left out: it is the part :math:`|A_u|` does not stand in for,
and with it every zero-advantage rollout would have a (tiny, :math:`\beta =
10^{-3}`) :math:`G_u > 0`, making the gap below infinite for any proxy that
gives those rollouts probability 0.

Recorded (§5.2, Figure 3, Theorem 4.2 / D.5):

* ``pearson``: Pearson correlation of :math:`|A_u|` and :math:`G_u` over the pool;
* ``pearson_nonzero``: the same over rollouts with :math:`A_u \ne 0` (the
  zero-advantage ones agree trivially, :math:`G_u = |A_u| = 0`, and inflate
  the pooled correlation);
* ``chi2_gap``: :math:`J(p')/J(p^*) - 1 = D_{\chi^2}(\tilde p^*\|\tilde p')` for
  the proxy :math:`p' \propto |A|/\sqrt{c}`;
* ``chi2_gap_length`` and ``chi2_gap_uniform``: the same gap for
  :math:`p_{LEN}` and for uniform sampling ("no sampling": its cost per unit
  of progress relative to the optimum, Theorem 4.2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

import costsgd as cs
from costsgd.experiments.grpo.policy import GRUPolicy, response_logprobs
from costsgd.experiments.grpo.trainer import Batch, GRPOConfig, token_objective
from costsgd.torch.diagnostics import pearson, proxy_diagnostics

__all__ = ["policy_gradient_loss", "rollout_diagnostics"]


def policy_gradient_loss(
    config: GRPOConfig,
) -> Callable[[GRUPolicy, Mapping[str, torch.Tensor]], torch.Tensor]:
    """``loss_fn(model, rows)`` for the adapter: minus the rows' summed :math:`\\ell_{PG}` at ratio 1."""
    pg_only = GRPOConfig(**{**config.__dict__, "kl_coef": 0.0})

    def loss_fn(model: GRUPolicy, rows: Mapping[str, torch.Tensor]) -> torch.Tensor:
        lp, mask = response_logprobs(
            model, rows["sequences"], rows["prompt_lengths"], rows["response_lengths"]
        )
        tok = token_objective(lp, mask, lp.detach(), rows["advantages"], pg_only)
        return -(tok.sum(1) / mask.sum(1).clamp(min=1)).sum()

    return loss_fn


def rollout_diagnostics(
    config: GRPOConfig,
) -> Callable[[GRUPolicy, Batch, torch.Tensor | None], dict]:
    """A ``diagnose`` callback for :func:`~costsgd.experiments.grpo.trainer.train`.

    Returns:
      ``diagnose(policy, batch, logp_ref) -> dict`` with the fields listed in
      the module docstring (NaN where undefined, e.g. every advantage zero).
    """
    loss_fn = policy_gradient_loss(config)

    def diagnose(policy: GRUPolicy, batch: Batch, logp_ref: torch.Tensor | None) -> dict:
        A = batch.advantages.abs().double().numpy()
        c = batch.rollouts.costs.double().numpy()
        nz = A > 0
        out = dict.fromkeys(
            ("pearson", "pearson_nonzero", "chi2_gap", "chi2_gap_length", "chi2_gap_uniform"),
            float("nan"),
        )
        out["nonzero_fraction"] = float(nz.mean())
        if not nz.any():
            return out
        rows = {**batch.rollouts._asdict(), "advantages": batch.advantages}
        d = proxy_diagnostics(policy, rows, batch.advantages, batch.rollouts.costs, loss_fn=loss_fn)
        G = d.grad_norms.numpy()
        out.update(
            pearson=d.pearson,
            pearson_nonzero=pearson(A[nz], G[nz]),
            chi2_gap=d.chi2_gap,
            chi2_gap_length=cs.chi2_gap(cs.length_only(None, c), G, c),
            chi2_gap_uniform=cs.chi2_gap(cs.uniform(G, c), G, c),
        )
        return out

    return diagnose
