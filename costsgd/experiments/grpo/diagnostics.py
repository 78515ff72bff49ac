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

And the regime diagnostic (:func:`noise_terms`), from the same per-sequence
norms :math:`G_u` plus the norm of the pool-mean gradient :math:`\bar g`:

* ``noise_scale``: :math:`B_{noise} = \operatorname{tr}\Sigma / \|g\|^2`, with
  :math:`\operatorname{tr}\Sigma = \frac{N}{N-1}(\overline{G^2} - \|\bar g\|^2)`
  the per-sequence gradient covariance's trace and
  :math:`\|g\|^2 = \|\bar g\|^2 - \operatorname{tr}\Sigma/N` the unbiased
  estimate of the squared expected gradient. A mini-batch of ``B`` much below
  it is variance-limited (noise dominates a step), much above it step-limited;
* ``S_u = tr Σ / N``: the variance of the pool gradient (what every method sees);
* ``S_p``: the extra variance of the per-iteration sum of :math:`D = T B`
  draws from :math:`p^*` with weights :math:`1/(Np_u)` around the pool
  gradient, :math:`(\frac{1}{N^2}\sum_u G_u^2/p_u - \|\bar g\|^2)/D`
  ("no sampling" sweeps the pool once: 0);
* ``cost_ratio``: :math:`C_p/C_u = \mathbb E_{p^*}[c]/\bar c`.

Tokens per unit of progress relative to "no sampling" are then predicted as
:math:`C_p/C_u` when step-limited and :math:`(1 + S_p/S_u)\,C_p/C_u` when
variance-limited (groups of rollouts share a prompt, so :math:`S_u` treats
the pool as :math:`N` independent draws: an approximation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import torch

import costsgd as cs
import costsgd.torch as adapter
from costsgd.experiments.grpo.policy import GRUPolicy, response_logprobs
from costsgd.experiments.grpo.trainer import (
    Batch,
    GRPOConfig,
    pstar_cost_ratio,
    token_objective,
)
from costsgd.torch.diagnostics import pearson, proxy_diagnostics

__all__ = ["noise_terms", "policy_gradient_loss", "rollout_diagnostics"]

_FIELDS = (
    "pearson",
    "pearson_nonzero",
    "chi2_gap",
    "chi2_gap_length",
    "chi2_gap_uniform",
    "noise_scale",
    "S_u",
    "S_p",
    "cost_ratio",
)


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


def noise_terms(G, mean_grad_sq: float, probs, draws: int) -> dict[str, float]:
    r"""``noise_scale``, ``S_u`` and ``S_p`` (module doc) from per-sequence norms.

    Args:
      G: :math:`G_u`, the per-sequence gradient norms (length :math:`N \ge 2`).
      mean_grad_sq: :math:`\|\bar g\|^2`, the squared norm of their mean gradient.
      probs: the sampling distribution :math:`p` (``G_u > 0`` needs ``p_u > 0``).
      draws: :math:`D`, draws per iteration.

    Examples:
      >>> import numpy as np
      >>> t = noise_terms(np.array([1.0, 1.0]), 0.0, np.array([0.5, 0.5]), 2)
      >>> t["S_u"], t["S_p"], t["noise_scale"]
      (1.0, 0.5, inf)
    """
    G = np.asarray(G, dtype=float)
    p = np.asarray(probs, dtype=float)
    N = G.shape[0]
    tr = N / (N - 1) * (float(np.mean(G**2)) - mean_grad_sq)
    g2 = mean_grad_sq - tr / N
    live = G > 0
    if np.any(p[live] <= 0):
        raise ValueError("probs must be > 0 wherever G > 0")
    second = float(np.sum(G[live] ** 2 / p[live])) / N**2
    return {
        "noise_scale": tr / g2 if g2 > 0 else math.inf,
        "S_u": tr / N,
        "S_p": (second - mean_grad_sq) / draws,
    }


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
        out = dict.fromkeys(_FIELDS, float("nan"))
        out["nonzero_fraction"] = float(nz.mean())
        if not nz.any():
            return out
        rows = {**batch.rollouts._asdict(), "advantages": batch.advantages}
        d = proxy_diagnostics(policy, rows, batch.advantages, batch.rollouts.costs, loss_fn=loss_fn)
        G = d.grad_norms.numpy()
        params = [q for q in policy.parameters() if q.requires_grad]
        grads = torch.autograd.grad(loss_fn(policy, rows) / len(G), params, allow_unused=True)
        mean_sq = sum(float(g.double().pow(2).sum()) for g in grads if g is not None)
        probs = adapter.cost_aware_probs(batch.advantages, batch.rollouts.costs).numpy()
        draws = math.ceil(len(G) / config.minibatch_size) * config.minibatch_size
        out.update(noise_terms(G, mean_sq, probs, draws))
        out["cost_ratio"] = pstar_cost_ratio(batch)
        out.update(
            pearson=d.pearson,
            pearson_nonzero=pearson(A[nz], G[nz]),
            chi2_gap=d.chi2_gap,
            chi2_gap_length=cs.chi2_gap(cs.length_only(None, c), G, c),
            chi2_gap_uniform=cs.chi2_gap(cs.uniform(G, c), G, c),
        )
        return out

    return diagnose
