r"""Cost-Aware GRPO in TRL: a ``GRPOTrainer`` that resamples rollouts from :math:`p`.

TRL's ``GRPOTrainer`` (tested with TRL 1.16) generates a *generation batch* of
:math:`N_r` rollouts per process, computes their advantages in
``_generate_and_score_completions``, then shuffles the batch and splits it
into ``steps_per_generation`` micro-batches of ``per_device_train_batch_size``
rollouts. :class:`CostAwareGRPOTrainer` changes two things (Algorithm 2):

1. **Draws.** After the advantages are computed it replaces the generation
   batch by :math:`N_r` draws *with replacement* from
   :math:`p_u \propto |A_u|/\sqrt{c_u}` (cost :math:`c_u` = prompt + completion
   tokens), i.e. :math:`T = \lceil N/B\rceil` mini-batches of :math:`B` draws, via
   :func:`costsgd.torch.distributed.stratified_plan` (each process draws its
   own rollouts; weights are normalised over all processes' draws). TRL's
   shuffle and split then act on the draws, which are i.i.d., so nothing changes.
2. **Weights.** Each drawn rollout carries its importance weight
   ``cost_aware_weights``; in ``_compute_loss`` the advantage is multiplied by
   it. For :math:`w > 0` this is exactly the weighted policy loss:
   :math:`-\min(rwA, \mathrm{clip}(r)wA) = -w\min(rA, \mathrm{clip}(r)A)`.

**Denominators stay fixed.** The loss types whose denominator does not count
the drawn tokens are accepted: ``"dapo"`` (TRL's default; token sum over the
pool's token count ``num_items_in_batch``, computed before the draws: the
``token-mean`` row of :mod:`costsgd.torch.loss`), ``"grpo"`` and ``"sapo"``
(seq-mean-token-mean), ``"dr_grpo"`` (token sum over
:math:`b \times` ``max_completion_length``), ``"luspo"`` (seq-mean-token-sum) and
``"cispo"`` (as dapo). ``"bnpo"`` divides by the tokens of the micro-batch,
which cost-aware draws shrink (short rollouts are over-drawn), so it is refused:
use ``"dapo"``, its fixed-denominator counterpart. ``"vespo"`` is refused too.

**Scope.** Only the advantage term is weighted: with ``beta > 0`` the KL
penalty (and an entropy bonus) is averaged over the drawn rollouts without
weights, i.e. it regularises towards the reference on the :math:`p`-tilted
batch. With ``num_iterations > 1`` every pass reuses the same draws.
Multimodal inputs are not supported. Evaluation is unchanged.

Logged metrics (``cost_aware/...``): the :meth:`UpdatePlan.summary` fields
(weights, effective sample size, tokens selected vs. the pool).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from trl import GRPOTrainer

from costsgd._validate import check_alpha
from costsgd.torch._core import NORMALIZATIONS, PROXIES
from costsgd.torch.distributed import stratified_plan
from costsgd.torch.plan import UpdatePlan

__all__ = ["SUPPORTED_LOSS_TYPES", "CostAwareGRPOTrainer", "rollout_costs"]

SUPPORTED_LOSS_TYPES = ("cispo", "dapo", "dr_grpo", "grpo", "luspo", "sapo")
"""TRL ``loss_type`` values whose denominators do not depend on the draws (``bnpo`` is refused)."""
_IMAGE_KEYS = ("pixel_values", "image_grid_thw", "num_images")


def rollout_costs(batch: dict[str, Any], pad_token_id: int | None) -> torch.Tensor:
    """Tokens each rollout costs in the policy update: prompt + generated completion.

    TRL's ``mask_truncated_completions`` zeroes the completion mask of truncated
    rollouts, which would make the longest rollouts look the cheapest; their
    cost is then read from the completion's non-pad tokens.

    Examples:
      >>> import torch
      >>> batch = {"prompt_mask": torch.ones(2, 3), "completion_mask": torch.tensor([[1, 1, 0], [0, 0, 0]]),
      ...          "completion_ids": torch.tensor([[5, 2, 0], [7, 8, 9]])}
      >>> rollout_costs(batch, pad_token_id=0).tolist()
      [5.0, 6.0]
    """
    generated = batch["completion_mask"].sum(1)
    if pad_token_id is not None:
        unmasked = (batch["completion_ids"] != pad_token_id).sum(1)
        generated = torch.where(generated > 0, generated, unmasked)
    return batch["prompt_mask"].sum(1) + generated


class CostAwareGRPOTrainer(GRPOTrainer):
    r"""``trl.GRPOTrainer`` with Algorithm 2's cost-aware mini-batches.

    Takes every argument of ``GRPOTrainer``, plus (keyword-only):

    Args:
      alpha: smoothing :math:`\alpha` of :math:`p^*_{\mathrm{smooth}}` (§5.3).
      proxy: ``"advantage"`` or ``"length"`` (:func:`cost_aware_probs`).
      sigma2: noisy-proxy variance (ablation).
      normalize: weight normalisation (:func:`importance_weights`).
      seed: seed of the draws (default ``args.seed``); process ``r`` uses ``seed + r``.

    After each generation, :attr:`cost_aware_plan` holds the latest
    :class:`UpdatePlan` (indices into that process's generation batch).
    """

    def __init__(
        self,
        *args: Any,
        alpha: float = 0.0,
        proxy: str = "advantage",
        sigma2: float = 0.0,
        normalize: str = "draws",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        if proxy not in PROXIES:
            raise ValueError(f"proxy must be one of {PROXIES}, got {proxy!r}")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        alpha = check_alpha(alpha)
        if not (isinstance(sigma2, (int, float)) and math.isfinite(sigma2) and sigma2 >= 0):
            raise ValueError(f"sigma2 must be finite and >= 0, got {sigma2!r}")
        super().__init__(*args, **kwargs)
        if self.loss_type not in SUPPORTED_LOSS_TYPES:
            raise ValueError(
                f"loss_type {self.loss_type!r} is not supported by cost-aware sampling: use one of "
                f"{SUPPORTED_LOSS_TYPES} ('bnpo' divides by the drawn tokens, which biases the "
                "step; 'dapo' is its fixed-denominator counterpart)"
            )
        self.cost_aware_options = {
            "alpha": alpha,
            "proxy": proxy,
            "sigma2": sigma2,
            "normalize": normalize,
        }
        seed = self.args.seed if seed is None else seed
        self.cost_aware_generator = torch.Generator(device=self.accelerator.device)
        self.cost_aware_generator.manual_seed(seed + self.accelerator.process_index)
        self.cost_aware_plan: UpdatePlan | None = None

    def _generate_and_score_completions(self, inputs):
        batch = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return batch
        return self.resample_rollouts(batch)

    def resample_rollouts(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Replace a scored generation batch by cost-aware draws carrying their weights."""
        if any(key in batch for key in _IMAGE_KEYS):
            raise ValueError("CostAwareGRPOTrainer does not support multimodal inputs")
        loss_mask = batch["completion_mask"]
        if "tool_mask" in batch:
            loss_mask = loss_mask * batch["tool_mask"]
        pad_id = getattr(self.processing_class, "pad_token_id", None)
        lengths = rollout_costs(batch, pad_id)
        n = lengths.shape[0]
        advantages = batch["advantages"]
        if advantages.ndim == 1:
            # A rollout whose loss mask is empty (mask_truncated_completions) has no
            # gradient: give it no probability rather than draws that train nothing.
            advantages = advantages * (loss_mask.sum(1) > 0)
        plan = stratified_plan(
            advantages,
            lengths,
            self.args.per_device_train_batch_size,
            num_batches=n // self.args.per_device_train_batch_size,
            mask=loss_mask if advantages.ndim == 2 else None,
            generator=self.cost_aware_generator,
            **self.cost_aware_options,
        )
        self.cost_aware_plan = plan
        for name, value in plan.summary().items():
            self._metrics["train"][f"cost_aware/{name}"].append(value)
        idx = plan.indices.reshape(-1)
        rows = idx.tolist()
        out = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == n:
                out[key] = value[idx.to(value.device)]
            elif isinstance(value, list) and len(value) == n:
                out[key] = [value[i] for i in rows]
            else:  # scalars such as num_items_in_batch: pool-level, kept fixed
                out[key] = value
        out["cost_aware_weights"] = plan.weights.reshape(-1).to(advantages.device)
        return out

    def _compute_loss(self, model, inputs):
        weights = inputs.get("cost_aware_weights")
        if weights is not None:
            adv = inputs["advantages"]
            w = weights.to(adv.dtype).reshape(-1, *([1] * (adv.ndim - 1)))
            inputs = {**inputs, "advantages": adv * w}
        return super()._compute_loss(model, inputs)
