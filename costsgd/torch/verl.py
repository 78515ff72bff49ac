r"""Cost-aware mini-batches on verl's batch layout (the paper's own setup, Appendix G.2).

verl's PPO/GRPO trainer keeps one rollout batch (a ``DataProto``) on the
driver: ``prompts`` ``(N, P)``, ``responses`` ``(N, R)``, ``input_ids`` /
``attention_mask`` / ``position_ids`` ``(N, P+R)``, ``response_mask``
``(N, R)``, and, after ``compute_advantage``, token-level ``advantages``
``(N, R)`` (for GRPO the sequence advantage broadcast over the response).
The actor's ``update_policy`` splits the batch, in order, into mini-batches of
``ppo_mini_batch_size × rollout.n`` rollouts, and multiplies the per-token
policy loss by ``rollout_is_weights`` when that key is present.

Algorithm 2 therefore needs two things, done on the driver between
``compute_advantage`` and ``_update_actor`` (see ``docs/verl.md``):

1. :func:`plan_verl_batch` — draws :math:`T\cdot B = N` rollouts from
   :math:`p \propto |A_u|/\sqrt{c_u}` (cost = prompt + response tokens from
   ``attention_mask``), laid out mini-batch after mini-batch;
2. :func:`apply_plan` — re-indexes every per-rollout tensor by the draws and
   multiplies the importance weight into ``rollout_is_weights``.

Loss aggregation: ``seq-mean-token-mean``, ``seq-mean-token-sum`` and
``seq-mean-token-sum-norm`` divide by a number of sequences or a constant and
are safe (:data:`SAFE_LOSS_AGG_MODES`). verl's ``token-mean`` divides by the
tokens of the drawn (mini- or micro-) batch, which cost-aware draws shrink, so
it is biased; :func:`token_mean_weights` corrects it when the groups sharing a
denominator are contiguous and known (see its docstring).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from costsgd._validate import check_positive_int
from costsgd.torch.plan import UpdatePlan, plan_update

__all__ = [
    "SAFE_LOSS_AGG_MODES",
    "apply_plan",
    "check_loss_agg_mode",
    "plan_verl_batch",
    "token_mean_weights",
]

SAFE_LOSS_AGG_MODES = ("seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
"""verl ``loss_agg_mode`` values that stay unbiased under cost-aware draws."""
_VERL_MODES = (*SAFE_LOSS_AGG_MODES, "token-mean")


def check_loss_agg_mode(mode: str, *, token_mean_corrected: bool = False) -> str:
    """Refuse a verl ``loss_agg_mode`` that would bias cost-aware updates.

    ``token-mean`` is accepted only with ``token_mean_corrected=True`` (weights
    from :func:`token_mean_weights`).
    """
    if mode not in _VERL_MODES:
        raise ValueError(f"loss_agg_mode must be one of {_VERL_MODES}, got {mode!r}")
    if mode == "token-mean" and not token_mean_corrected:
        raise ValueError(
            "loss_agg_mode='token-mean' divides by the tokens actually drawn; cost-aware sampling "
            "over-draws short rollouts, so the step is biased. Use one of "
            f"{SAFE_LOSS_AGG_MODES}, or weights from token_mean_weights()"
        )
    return mode


def plan_verl_batch(
    batch: Mapping[str, torch.Tensor],
    mini_batch_size: int,
    *,
    alpha: float = 0.0,
    proxy: str = "advantage",
    generator: torch.Generator | None = None,
    normalize: str = "draws",
) -> UpdatePlan:
    r"""Algorithm 2's draws for a verl batch (a mapping of its tensors, e.g. ``data.batch``).

    Args:
      batch: needs ``advantages`` and ``response_mask`` ``(N, R)`` and
        ``attention_mask`` ``(N, P+R)`` (its row sums are the costs :math:`c_u`).
      mini_batch_size: rollouts per mini-batch, i.e. verl's
        ``ppo_mini_batch_size × rollout.n``; it must divide :math:`N` (so the
        actor sees :math:`T = N/B` mini-batches, as without sampling).
      alpha: as in :func:`plan_update`.
      proxy: as in :func:`plan_update`.
      generator: as in :func:`plan_update`.
      normalize: as in :func:`plan_update`.

    Returns:
      An :class:`UpdatePlan` with ``indices`` / ``weights`` of shape ``(T, B)``.

    Examples:
      >>> import torch
      >>> adv = torch.tensor([1.0, 0.0, -2.0, 0.5])[:, None].expand(4, 3)
      >>> batch = {"advantages": adv, "response_mask": torch.ones(4, 3),
      ...          "attention_mask": torch.ones(4, 5)}
      >>> plan = plan_verl_batch(batch, 2, generator=torch.Generator().manual_seed(0))
      >>> tuple(plan.indices.shape), bool((plan.indices != 1).all())
      ((2, 2), True)
    """
    for key in ("advantages", "response_mask", "attention_mask"):
        if key not in batch:
            raise ValueError(f"batch has no {key!r} tensor")
    n = batch["advantages"].shape[0]
    B = check_positive_int(mini_batch_size, "mini_batch_size")
    if n % B:
        raise ValueError(f"mini_batch_size {B} must divide the batch size {n}")
    return plan_update(
        batch["advantages"],
        batch["attention_mask"].sum(-1),
        B,
        num_batches=n // B,
        alpha=alpha,
        mask=batch["response_mask"].bool() if batch["advantages"].ndim == 2 else None,
        proxy=proxy,
        generator=generator,
        normalize=normalize,
    )


def apply_plan(
    batch: Mapping[str, Any], plan: UpdatePlan, weights: torch.Tensor | None = None
) -> dict[str, Any]:
    """Re-index a verl batch by the plan's draws and fold the weights into ``rollout_is_weights``.

    Every tensor (or numpy array) whose first dimension is :math:`N` is indexed
    by ``plan.indices`` flattened in mini-batch order; ``rollout_is_weights``
    ``(N, R)`` becomes the drawn rows' existing weights (1 if absent) times the
    importance weight broadcast over the response. With a ``DataProto`` apply
    the same indices to ``non_tensor_batch`` (``data.select_idxs``/``data[idx]``).

    Args:
      batch: mapping of per-rollout arrays (``data.batch`` of a ``DataProto``).
      plan: from :func:`plan_verl_batch`.
      weights: per-draw weights to use instead of ``plan.weights`` (e.g. from
        :func:`token_mean_weights`), same shape.
    """
    idx = plan.indices.reshape(-1)
    w = (plan.weights if weights is None else weights).reshape(-1)
    n = plan.probs.shape[0]
    out = {}
    for key, value in batch.items():
        if hasattr(value, "shape") and len(value.shape) >= 1 and value.shape[0] == n:
            rows = idx.to(value.device) if isinstance(value, torch.Tensor) else idx.cpu().numpy()
            out[key] = value[rows]
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
    :math:`\bar L` = mean response tokens per rollout over the pool) turns every
    group's loss into :math:`\sum_{k\in g} w_k\sum_t\ell_{k,t}/(g\bar L)`, the
    unbiased ``token-mean`` of :mod:`costsgd.torch.loss`. Valid only when the
    groups are contiguous in the re-indexed batch: verl's legacy actor without
    dynamic batch size (``group_size`` = ``ppo_micro_batch_size_per_gpu``, after
    the batch is chunked over data-parallel ranks in order), or the new engine
    with ``shuffle=False`` (``group_size`` = the global mini-batch).

    Args:
      plan: from :func:`plan_verl_batch`.
      response_mask: the **pool's** ``(N, R)`` response mask (before re-indexing).
      group_size: draws sharing one token denominator; must divide :math:`N`.

    Returns:
      Weights shaped like ``plan.weights``.
    """
    g = check_positive_int(group_size, "group_size")
    idx = plan.indices.reshape(-1)
    if idx.numel() % g:
        raise ValueError(f"group_size {g} must divide the number of draws {idx.numel()}")
    tokens = response_mask.to(torch.float64).sum(-1)
    mean_len = tokens.mean()
    if not float(mean_len) > 0:
        raise ValueError("response_mask has no token: token-mean is undefined")
    D = tokens[idx.to(tokens.device)].reshape(-1, g).sum(-1, keepdim=True).expand(-1, g)
    factor = (D / (g * mean_len)).reshape(-1).to(plan.weights.device)
    return (
        (plan.weights.reshape(-1).double() * factor)
        .to(plan.weights.dtype)
        .reshape(plan.weights.shape)
    )
