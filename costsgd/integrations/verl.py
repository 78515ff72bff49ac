r"""Cost-aware mini-batches on verl's batch layout (the paper's own setup, Appendix G.2).

Tested against verl 0.9.1 (see ``docs/verl.md``). After ``compute_advantage``
verl's driver holds one rollout pool of :math:`N` rollouts with token-level
``advantages`` ``(N, R)`` (for GRPO the sequence advantage broadcast over the
response) and a ``response_mask`` ``(N, R)``. Its actor update
(``TrainingWorker.train_mini_batch`` in ``verl/workers/engine_workers.py``)
cuts the pool into data-parallel chunks in order, then each chunk into
mini-batches of ``ppo_mini_batch_size × rollout.n / dp`` rows, one optimizer
step each; the policy-loss functions multiply the per-token loss by
``rollout_is_weights`` when the batch has that key.

Algorithm 2 (Phase 2-3) on that layout, with no verl import here:

1. :func:`plan_verl_batch` draws :math:`T\cdot B = N` rollouts from
   :math:`p_u \propto |A_u|/\sqrt{c_u}` (Theorem 4.1; :math:`c_u` = prompt +
   response tokens), mini-batch after mini-batch;
2. :func:`dispatch_order` lays the draws out so that verl's chunking gives
   global mini-batch :math:`t` = the plan's mini-batch :math:`t`;
3. :func:`apply_plan` re-indexes a mapping of per-rollout arrays by the draws
   and multiplies the importance weights :math:`1/(Np_u)` (eq. 22, re-centred
   to mean 1 as in Appendix G.2) into ``rollout_is_weights``.

:mod:`costsgd.integrations.verl_trainer` wires these into verl's trainers.

Loss aggregation (``agg_loss`` in ``verl/trainer/ppo/core_algos.py``):
``seq-mean-token-mean``, ``seq-mean-token-sum``, ``seq-mean-token-sum-norm``
divide by a number of sequences or a constant, ``token-sum`` by nothing:
all unbiased under the draws (:data:`SAFE_LOSS_AGG_MODES`). ``token-mean``
divides by the tokens of the drawn global mini-batch, which cost-aware draws
shrink, so it is biased; :func:`token_mean_weights` corrects it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from costsgd._validate import check_positive_int
from costsgd.torch.options import SamplingOptions
from costsgd.torch.plan import UpdatePlan, plan_update

__all__ = [
    "LOSS_AGG_MODES",
    "SAFE_LOSS_AGG_MODES",
    "apply_plan",
    "check_loss_agg_mode",
    "dispatch_order",
    "plan_metrics",
    "plan_verl_batch",
    "token_mean_weights",
]

SAFE_LOSS_AGG_MODES = (
    "seq-mean-token-mean",
    "seq-mean-token-sum",
    "seq-mean-token-sum-norm",
    "token-sum",
)
"""verl ``loss_agg_mode`` values that stay unbiased under cost-aware draws."""
LOSS_AGG_MODES = (*SAFE_LOSS_AGG_MODES, "token-mean")
"""Every verl ``loss_agg_mode`` that :func:`check_loss_agg_mode` accepts (``token-mean`` only corrected)."""


def check_loss_agg_mode(mode: str, *, token_mean_corrected: bool = False) -> str:
    """Refuse a verl ``loss_agg_mode`` that would bias cost-aware updates.

    Args:
      mode: ``actor_rollout_ref.actor.loss_agg_mode``.
      token_mean_corrected: the weights come from :func:`token_mean_weights`,
        which makes ``token-mean`` unbiased.

    Returns:
      ``mode``.

    Raises:
      ValueError: an unknown mode, or ``token-mean`` without the correction.

    Examples:
      >>> check_loss_agg_mode("token-sum")
      'token-sum'
      >>> check_loss_agg_mode("token-mean", token_mean_corrected=True)
      'token-mean'
    """
    if mode not in LOSS_AGG_MODES:
        raise ValueError(f"loss_agg_mode must be one of {LOSS_AGG_MODES}, got {mode!r}")
    if mode == "token-mean" and not token_mean_corrected:
        raise ValueError(
            "loss_agg_mode='token-mean' divides by the tokens actually drawn; cost-aware sampling "
            "over-draws short rollouts, so the step is biased. Use one of "
            f"{SAFE_LOSS_AGG_MODES}, or weights from token_mean_weights()"
        )
    return mode


def plan_verl_batch(
    batch: Mapping[str, torch.Tensor],
    batch_size: int,
    *,
    costs: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    sampling: SamplingOptions | None = None,
    generator: torch.Generator | None = None,
) -> UpdatePlan:
    r"""Algorithm 2's draws (Phase 2-3) for a verl rollout pool.

    Args:
      batch: mapping with ``advantages`` and ``response_mask`` ``(N, R)`` and,
        unless ``costs`` is given, ``attention_mask`` ``(N, P+R)`` (its row sums
        are the costs :math:`c_u`), e.g. ``data.batch`` of a ``DataProto``.
      batch_size: :math:`B`, rollouts per global mini-batch, i.e. verl's
        ``ppo_mini_batch_size × rollout.n``; it must divide :math:`N`, so the
        actor takes :math:`T = N/B` optimizer steps, as without sampling.
      costs: ``(N,)`` per-rollout costs instead of the ``attention_mask`` row
        sums (the v1 trainer's ``seq_len`` tags).
      valid: ``(N,)`` bool, rows that may be drawn (default all); verl's
        padding rows (``is_padding`` tags) are not. The weights are relative to
        the valid rows: :math:`1/(n p_u)` over the :math:`n` valid rollouts.
      sampling: as in :func:`costsgd.torch.plan_update`.
      generator: as in :func:`costsgd.torch.plan_update`.

    Returns:
      An :class:`UpdatePlan` over all :math:`N` rows (``probs`` 0 on invalid
      rows), with ``indices`` / ``weights`` of shape ``(T, B)``.

    Raises:
      ValueError: a missing tensor, a ``batch_size`` that does not divide
        :math:`N`, mis-shaped ``costs``/``valid``, or no valid row.

    Examples:
      >>> import torch
      >>> adv = torch.tensor([1.0, 0.0, -2.0, 0.5])[:, None].expand(4, 3)
      >>> batch = {"advantages": adv, "response_mask": torch.ones(4, 3),
      ...          "attention_mask": torch.ones(4, 5)}
      >>> plan = plan_verl_batch(batch, 2, generator=torch.Generator().manual_seed(0))
      >>> tuple(plan.indices.shape), bool((plan.indices != 1).all())
      ((2, 2), True)
    """
    needed = ("advantages", "response_mask") + (() if costs is not None else ("attention_mask",))
    for key in needed:
        if key not in batch:
            raise ValueError(f"batch has no {key!r} tensor")
    adv = batch["advantages"]
    n = adv.shape[0]
    B = check_positive_int(batch_size, "batch_size")
    if n % B:
        raise ValueError(f"batch_size {B} must divide the number of rollouts {n}")
    lengths = batch["attention_mask"].sum(-1) if costs is None else torch.as_tensor(costs)
    if tuple(lengths.shape) != (n,):
        raise ValueError(f"costs must have shape ({n},), got {tuple(lengths.shape)}")
    mask = batch["response_mask"].bool() if adv.ndim == 2 else None
    if valid is None:
        return plan_update(
            adv,
            lengths,
            B,
            sampling=sampling,
            num_batches=n // B,
            mask=mask,
            generator=generator,
        )
    valid = torch.as_tensor(valid, dtype=torch.bool, device=adv.device)
    if tuple(valid.shape) != (n,):
        raise ValueError(f"valid must have shape ({n},), got {tuple(valid.shape)}")
    rows = valid.nonzero().reshape(-1)
    if rows.numel() == 0:
        raise ValueError("valid marks no row: nothing to draw")
    sub = plan_update(
        adv[rows],
        lengths[rows.to(lengths.device)],
        B,
        sampling=sampling,
        num_batches=n // B,
        mask=None if mask is None else mask[rows],
        generator=generator,
    )
    probs = sub.probs.new_zeros(n).index_copy(0, rows.to(sub.probs.device), sub.probs)
    full_lengths = sub.lengths.new_zeros(n).index_copy(0, rows.to(sub.lengths.device), sub.lengths)
    return UpdatePlan(probs, rows.to(sub.indices.device)[sub.indices], sub.weights, full_lengths)


def dispatch_order(
    plan: UpdatePlan, dp_size: int = 1, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The draws as the flat rows verl's actor update expects, data-parallel chunk by chunk.

    verl gives data-parallel rank :math:`r` rows :math:`[rN/d, (r+1)N/d)` and
    that rank iterates them in order (``actor.shuffle=False``) in local
    mini-batches of :math:`B/d`. Placing draw :math:`(t, j)` at row
    :math:`\lfloor j/(B/d)\rfloor N/d + t B/d + (j \bmod B/d)` makes global
    mini-batch :math:`t` exactly the plan's mini-batch :math:`t` (which
    :func:`token_mean_weights` relies on). With ``actor.shuffle=True`` the
    draws are still i.i.d., so the seq-mean modes stay unbiased.

    Args:
      plan: from :func:`plan_verl_batch`.
      dp_size: the actor's data-parallel size :math:`d`; must divide :math:`B`.
      weights: per-draw weights shaped like ``plan.weights`` (default those).

    Returns:
      ``(rows, weights)``, both ``(T·B,)``: pool row and weight of each slot.

    Raises:
      ValueError: ``dp_size`` does not divide the mini-batch size, or the
        weights are mis-shaped.

    Examples:
      >>> import torch
      >>> from costsgd.torch import UpdatePlan
      >>> idx = torch.arange(8).reshape(2, 4)  # mini-batch 0 = rows 0-3, 1 = rows 4-7
      >>> plan = UpdatePlan(torch.full((8,), 0.125), idx, torch.ones(2, 4), torch.ones(8))
      >>> dispatch_order(plan, 2)[0].tolist()  # rank 0 gets [0, 1 | 4, 5], rank 1 [2, 3 | 6, 7]
      [0, 1, 4, 5, 2, 3, 6, 7]
    """
    T, B = plan.indices.shape
    d = check_positive_int(dp_size, "dp_size")
    if B % d:
        raise ValueError(f"dp_size {d} must divide the mini-batch size {B}")
    w = plan.weights if weights is None else weights
    if tuple(w.shape) != (T, B):
        raise ValueError(f"weights must have shape {(T, B)}, got {tuple(w.shape)}")
    local = B // d
    # (T, B) -> (T, d, local) -> (d, T, local): rank-major, then mini-batch, then position.
    order = torch.arange(T * B, device=plan.indices.device).reshape(T, d, local)
    order = order.permute(1, 0, 2).reshape(-1)
    return plan.indices.reshape(-1)[order], w.reshape(-1)[order.to(w.device)]


def apply_plan(
    batch: Mapping[str, Any],
    plan: UpdatePlan,
    weights: torch.Tensor | None = None,
    *,
    dp_size: int = 1,
) -> dict[str, Any]:
    """Re-index per-rollout arrays by the draws and fold the weights into ``rollout_is_weights``.

    Every tensor (or numpy array) of ``batch`` whose first dimension is
    :math:`N` is indexed by the rows of :func:`dispatch_order`;
    ``rollout_is_weights`` ``(N, R)`` becomes the drawn rows' existing weights
    (1 if absent) times the importance weight (eq. 22) broadcast over the response. A
    ``DataProto`` is re-indexed whole by ``data[rows]`` (tensors and
    ``non_tensor_batch``: ``uid``, multi-modal inputs).

    Args:
      batch: mapping of per-rollout arrays with ``response_mask`` ``(N, R)``.
      plan: from :func:`plan_verl_batch`.
      weights: per-draw weights to use instead of ``plan.weights`` (e.g. from
        :func:`token_mean_weights`), same shape.
      dp_size: the actor's data-parallel size, as in :func:`dispatch_order`.

    Returns:
      A new dict; ``batch`` is not modified.

    Raises:
      ValueError: ``batch`` has no ``response_mask``, or as :func:`dispatch_order`.
    """
    if "response_mask" not in batch:
        raise ValueError("batch has no 'response_mask' tensor")
    rows, w = dispatch_order(plan, dp_size, weights)
    n = plan.probs.shape[0]
    out = {}
    for key, value in batch.items():
        if hasattr(value, "shape") and len(value.shape) >= 1 and value.shape[0] == n:
            idx = rows.to(value.device) if isinstance(value, torch.Tensor) else rows.cpu().numpy()
            out[key] = value[idx]
        else:
            out[key] = value
    mask = out["response_mask"]
    previous = out.get("rollout_is_weights")
    base = (
        torch.ones(mask.shape, dtype=w.dtype, device=mask.device) if previous is None else previous
    )
    out["rollout_is_weights"] = base * w.to(base.dtype).to(mask.device)[:, None]
    return out


def token_mean_weights(
    plan: UpdatePlan, response_mask: torch.Tensor, group_size: int
) -> torch.Tensor:
    r"""Weights that make a drawn-token ``token-mean`` equal the fixed-denominator estimator.

    ``token-mean`` divides the weighted token sum of each group of
    ``group_size`` consecutive draws by that group's token count :math:`D_g`.
    Multiplying each weight by :math:`D_g/(g\bar L)` (:math:`g` = ``group_size``,
    :math:`\bar L` = mean response tokens per rollout over the valid pool)
    turns every group's loss into :math:`\sum_{k\in g} w_k\sum_t\ell_{k,t}/(g\bar L)`,
    the unbiased ``token-mean`` of :func:`costsgd.torch.weighted_policy_loss`.
    In verl 0.9.1 the group is the global mini-batch (``batch_num_tokens`` is
    all-reduced over data-parallel ranks per mini-batch, whatever the
    micro-batching), so ``group_size`` = :math:`B`, valid with
    :func:`dispatch_order` and ``actor.shuffle=False``.

    Args:
      plan: from :func:`plan_verl_batch`.
      response_mask: the **pool's** ``(N, R)`` response mask (before re-indexing).
      group_size: draws sharing one token denominator; must divide :math:`N`.

    Returns:
      Weights shaped like ``plan.weights``.

    Raises:
      ValueError: ``group_size`` does not divide the draws, or the pool has no
        response token.
    """
    g = check_positive_int(group_size, "group_size")
    idx = plan.indices.reshape(-1)
    if idx.numel() % g:
        raise ValueError(f"group_size {g} must divide the number of draws {idx.numel()}")
    tokens = response_mask.to(torch.float64).sum(-1)
    pool_rows = (plan.lengths > 0).to(tokens.device)  # plan_verl_batch zeroes invalid rows' costs
    mean_len = tokens[pool_rows].mean() if bool(pool_rows.any()) else tokens.new_zeros(())
    if not float(mean_len) > 0:
        raise ValueError("response_mask has no token: token-mean is undefined")
    D = tokens[idx.to(tokens.device)].reshape(-1, g).sum(-1, keepdim=True).expand(-1, g)
    factor = (D / (g * mean_len)).reshape(-1).to(plan.weights.device)
    return (
        (plan.weights.reshape(-1).double() * factor)
        .to(plan.weights.dtype)
        .reshape(plan.weights.shape)
    )


def plan_metrics(plan: UpdatePlan, prefix: str = "cost_aware") -> dict[str, float]:
    r"""Logging numbers for one step, the pool's and the draws' under separate names.

    ``{prefix}/pool/...`` describe the rollout pool before any draw:
    ``rollouts`` (drawable rows), ``tokens`` (:math:`\sum_u c_u`),
    ``mean_tokens`` and ``zero_prob_fraction`` (drawable rows with
    :math:`p_u = 0`, e.g. zero-advantage groups). ``{prefix}/draws/...`` describe
    the draws: ``count``, ``tokens`` (a rollout drawn twice counts twice),
    ``token_fraction`` (drawn over pool tokens), ``unique_fraction``, ``ess``
    and ``ess_fraction`` (Kish), ``weight_mean``/``weight_std``/``weight_min``/``weight_max``.
    verl's own ``critic/*`` and ``response_length/*`` metrics stay the pool's
    when the trainer keeps the pool (:mod:`costsgd.integrations.verl_trainer`).

    Args:
      plan: from :func:`plan_verl_batch`.
      prefix: metric name prefix.

    Returns:
      A dict of Python floats.

    Examples:
      >>> import torch
      >>> from costsgd.torch import UpdatePlan
      >>> plan = UpdatePlan(torch.tensor([0.5, 0.5, 0.0]), torch.tensor([[0, 0, 1]]),
      ...                   torch.ones(1, 3), torch.tensor([2.0, 4.0, 6.0]))
      >>> m = plan_metrics(plan)
      >>> m["cost_aware/pool/tokens"], m["cost_aware/draws/tokens"], m["cost_aware/pool/zero_prob_fraction"]
      (12.0, 8.0, 0.3333333333333333)
    """
    summary = plan.summary()
    drawable = plan.lengths > 0
    rollouts = int(drawable.sum())
    zero = int(((plan.probs == 0) & drawable.to(plan.probs.device)).sum())
    pool = {
        "rollouts": float(rollouts),
        "tokens": summary["tokens_pool"],
        "mean_tokens": summary["tokens_pool"] / max(rollouts, 1),
        "zero_prob_fraction": zero / max(rollouts, 1),
    }
    draws = {
        "count": summary["draws"],
        "tokens": summary["tokens_selected"],
        "token_fraction": summary["token_fraction"],
        "unique_fraction": summary["unique_fraction"],
        **{k: summary[k] for k in ("ess", "ess_fraction")},
        **{k: summary[k] for k in ("weight_mean", "weight_std", "weight_min", "weight_max")},
    }
    return {
        **{f"{prefix}/pool/{k}": float(v) for k, v in pool.items()},
        **{f"{prefix}/draws/{k}": float(v) for k, v in draws.items()},
    }
