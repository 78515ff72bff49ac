r"""Figure 3's proxy diagnostics on the tiny policy: is :math:`|A_u|` a good stand-in for :math:`G_u`?

At a training iteration, before its updates, the true per-sequence gradient
norm is :math:`G_u = \|\nabla_\theta \ell(o_u)\|` with :math:`\ell` the
policy-gradient part of Appendix G.3's per-sequence objective at
:math:`\theta = \theta_{old}` (ratio 1, so clipping is inactive). The KL term is
left out: it is the part :math:`|A_u|` does not stand in for, and with it every
zero-advantage rollout would have :math:`G_u > 0` (tiny, since
:math:`\beta = 10^{-3}`), making the gap below infinite for any proxy that
gives those rollouts probability 0.

Recorded (§5.2, Figure 3 and Theorem 4.2 / D.5):

* ``pearson``: Pearson correlation of :math:`|A_u|` and :math:`G_u` over the pool;
* ``pearson_nonzero``: the same over rollouts with :math:`A_u \ne 0` (the
  zero-advantage ones agree trivially, :math:`G_u = |A_u| = 0`);
* ``chi2_gap``: :math:`J(p')/J(p^*) - 1 = D_{\chi^2}(\tilde p^*\|\tilde p')` for
  the proxy :math:`p' \propto |A|/\sqrt{c}` (:func:`costsgd.chi2_gap`);
* ``chi2_gap_length`` and ``chi2_gap_uniform``: the same for :math:`p_{LEN}`
  and for uniform sampling (the cost per unit of progress of "no sampling",
  relative to the optimum).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

import costsgd as cs
from costsgd.experiments.grpo.policy import GRUPolicy, response_logprobs
from costsgd.experiments.grpo.trainer import Batch, GRPOConfig, sequence_objective

__all__ = ["per_sequence_gradient_norms", "proxy_diagnostics"]


def per_sequence_gradient_norms(policy: GRUPolicy, batch: Batch, config: GRPOConfig) -> np.ndarray:
    r"""True :math:`G_u = \|\nabla_\theta \ell_{PG}(o_u)\|` at the current parameters, float64 ``(N,)``.

    One backward pass per rollout with :math:`A_u \ne 0`; :math:`G_u = 0`
    exactly where :math:`A_u = 0`.
    """
    roll = batch.rollouts
    pg_only = config.__class__(**{**config.__dict__, "kl_coef": 0.0})
    params = [p for p in policy.parameters() if p.requires_grad]
    G = np.zeros(len(batch.advantages))
    for u in torch.nonzero(batch.advantages).reshape(-1).tolist():
        sl = slice(u, u + 1)
        lp, mask = response_logprobs(policy, roll.sequences[sl], roll.prompt_lengths[sl], roll.response_lengths[sl])
        obj = sequence_objective(lp, mask, lp.detach(), batch.advantages[sl], pg_only)
        grads = torch.autograd.grad(obj.sum(), params)
        G[u] = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
    return G


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def proxy_diagnostics(config: GRPOConfig) -> Callable[[GRUPolicy, Batch, torch.Tensor | None], dict]:
    """A ``diagnose`` callback for :func:`~costsgd.experiments.grpo.trainer.train`.

    Returns:
      ``diagnose(policy, batch, logp_ref) -> dict`` with the fields listed in the module docstring.
    """

    def diagnose(policy: GRUPolicy, batch: Batch, logp_ref: torch.Tensor | None) -> dict:
        G = per_sequence_gradient_norms(policy, batch, config)
        A = batch.advantages.abs().double().numpy()
        c = batch.rollouts.costs.double().numpy()
        nz = A > 0
        out = {
            "pearson": _pearson(A, G),
            "pearson_nonzero": _pearson(A[nz], G[nz]),
            "chi2_gap": float("nan"),
            "chi2_gap_length": float("nan"),
            "chi2_gap_uniform": float("nan"),
            "nonzero_fraction": float(nz.mean()),
        }
        if G.sum() > 0:
            out["chi2_gap"] = cs.chi2_gap(cs.optimal(A, c), G, c)
            out["chi2_gap_length"] = cs.chi2_gap(cs.length_only(None, c), G, c)
            out["chi2_gap_uniform"] = cs.chi2_gap(cs.uniform(G, c), G, c)
        return out

    return diagnose
