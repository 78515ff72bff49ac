r"""Importance-weighted policy losses with fixed denominators (Eq. 22, Appendix G.3).

A policy-gradient step aggregates a per-token loss :math:`\ell_{u,t}` over the
rollouts of a mini-batch. Under cost-aware sampling the mini-batch holds
:math:`B` draws :math:`u_1..u_B \sim p` with weights :math:`w_k = 1/(Np_{u_k})`,
and the aggregate must estimate the **pool** aggregate without bias. Each mode
below is written as (weighted sum over draws) / (a constant):

=========================  =======================================================  ===============================================
``mode``                   pool target (at mini-batch scale)                        unbiased estimator
=========================  =======================================================  ===============================================
``token-mean``             :math:`\sum_{u,t}\ell_{u,t} / T_{\mathrm{pool}}`          :math:`\sum_k w_k\sum_t\ell_{k,t} / (B\,\bar L)`
``seq-mean-token-mean``    :math:`\frac1N\sum_u \frac{1}{|o_u|}\sum_t\ell_{u,t}`     :math:`\frac1B\sum_k w_k \frac{1}{|o_k|}\sum_t\ell_{k,t}`
``seq-mean-token-sum``     :math:`\frac1N\sum_u \sum_t\ell_{u,t}`                    :math:`\frac1B\sum_k w_k \sum_t\ell_{k,t}`
``token-sum``              :math:`\frac BN\sum_{u,t}\ell_{u,t}`                      :math:`\sum_k w_k \sum_t\ell_{k,t}`
=========================  =======================================================  ===============================================

with :math:`T_{\mathrm{pool}} = \sum_u |o_u|` the loss tokens of the whole pool and
:math:`\bar L = T_{\mathrm{pool}}/N`. With raw weights each estimator's
expectation is exactly its target (tested by enumeration).

**Why the denominators are fixed.** The usual token-mean divides by the number
of tokens *in the mini-batch*, :math:`\sum_k |o_k|`. Cost-aware sampling draws
short rollouts more often (:math:`p \propto 1/\sqrt{c}`), so that count is
smaller than :math:`B\bar L` on average and the step is inflated (and the
ratio is biased even after importance weighting). The fixed :math:`B\bar L`
keeps the estimator linear in the draws, hence unbiased.
(``seq-mean-*`` divide by the number of draws, which is fixed already.)

With gradient accumulation, call the helper on each micro-batch with
``num_sequences`` = the number of draws in the whole optimizer step on this
rank: the micro-batch losses then sum to the step's estimator. Under DDP the
gradient mean over ranks completes the global average.
"""

from __future__ import annotations

import math

import torch

__all__ = ["AGGREGATIONS", "weighted_policy_loss"]

AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "token-sum")


def weighted_policy_loss(
    token_loss: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    mode: str,
    num_sequences: int | None = None,
    mean_pool_length: float | None = None,
) -> torch.Tensor:
    r"""Aggregate a per-token loss with per-sequence importance weights, without bias.

    See the module docstring for the estimator of each ``mode``.

    Args:
      token_loss: ``(b, T)`` per-token loss of the drawn rollouts.
      mask: ``(b, T)`` which tokens count (the response/loss mask).
      weights: ``(b,)`` importance weights (:func:`importance_weights`);
        ``None`` means 1.
      mode: one of :data:`AGGREGATIONS` (verl's ``loss_agg_mode`` names); required,
        as the right one is the trainer's own aggregation.
      num_sequences: :math:`B`, the draws of the whole step on this rank
        (all micro-batches); default ``b``.
      mean_pool_length: :math:`\bar L`, mean loss tokens per rollout over the
        pool; required by ``"token-mean"``.

    Returns:
      A scalar tensor.

    Raises:
      TypeError: ``token_loss``, ``mask`` or ``weights`` not tensors.
      ValueError: unknown mode, mismatched shapes, a missing, non-finite or
        non-positive ``mean_pool_length`` for ``"token-mean"``, or one below
        ``1/num_sequences`` (the divisor :math:`B\bar L` is then under one token,
        so the loss is kept finite by refusing it).

    Examples:
      >>> import torch
      >>> loss = torch.tensor([[1.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
      >>> mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
      >>> w = torch.tensor([0.5, 1.5])
      >>> weighted_policy_loss(loss, mask, w, mode="seq-mean-token-sum").item()
      2.0
      >>> weighted_policy_loss(loss, mask, w, mode="token-mean", mean_pool_length=2.0).item()
      1.0
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"mode must be one of {AGGREGATIONS}, got {mode!r}")
    for name, x in (("token_loss", token_loss), ("mask", mask), ("weights", weights)):
        if x is not None and not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not token_loss.is_floating_point():
        raise TypeError(f"token_loss must be a floating tensor, got dtype {token_loss.dtype}")
    if mode == "token-mean":
        try:
            pool_length = float(mean_pool_length)
        except (TypeError, ValueError):
            pool_length = float("nan")
        if not (math.isfinite(pool_length) and pool_length > 0):
            raise ValueError(
                "token-mean needs a finite mean_pool_length > 0 (mean loss tokens per rollout "
                f"over the pool), got {mean_pool_length!r}"
            )
    if token_loss.ndim != 2 or tuple(mask.shape) != tuple(token_loss.shape):
        raise ValueError(
            f"token_loss and mask must both be (b, T); got {tuple(token_loss.shape)} "
            f"and {tuple(mask.shape)}"
        )
    b = token_loss.shape[0]
    if weights is not None and tuple(weights.shape) != (b,):
        raise ValueError(f"weights must have shape ({b},), got {tuple(weights.shape)}")
    B = b if num_sequences is None else num_sequences
    if isinstance(B, bool) or not isinstance(B, int) or B < 1:
        raise ValueError(f"num_sequences must be a positive integer, got {num_sequences!r}")
    if mode == "token-mean" and B * pool_length < 1:
        raise ValueError(
            f"token-mean divides by num_sequences * mean_pool_length = {B * pool_length!r} < 1: "
            "a step expecting under one loss token has no mean to take; mean_pool_length must "
            f"be >= 1/num_sequences = {1 / B!r}"
        )
    m = mask.to(token_loss.dtype)
    seq = (token_loss * m).sum(dim=-1)
    if mode == "seq-mean-token-mean":
        seq = seq / m.sum(dim=-1).clamp(min=1.0)
    if weights is not None:
        seq = seq * weights.to(token_loss.dtype)
    total = seq.sum()
    if mode == "token-sum":
        return total
    if mode == "token-mean":
        return total / (B * pool_length)
    return total / B
