r"""Cost-Aware GRPO in TRL: draws from :math:`p`, and micro-batches that shrink with them.

TRL's ``GRPOTrainer`` (TRL 1.16) generates a *generation batch* of
``per_device_train_batch_size × steps_per_generation`` rollouts per process,
scores them in ``_generate_and_score_completions``, pads every completion to
the widest one, shuffles, and splits the batch into ``steps_per_generation``
micro-batches; an optimizer step accumulates ``gradient_accumulation_steps`` of
them. Two trainers change that:

* :class:`LengthGroupedGRPOTrainer` keeps which rollouts form each optimizer
  step, but within the step sorts them by completion length into equal
  micro-batches and trims each to its own longest completion
  (:mod:`costsgd.torch.microbatch`). The step's gradient is unchanged; the
  forward and backward passes process fewer padding tokens. Use it alone to
  measure the padding effect of a uniform (no-sampling) run.
* :class:`CostAwareGRPOTrainer` (Algorithm 2) adds the draws: after the
  advantages are computed, the generation batch is replaced by draws *with
  replacement* from :math:`p_u \propto |A_u|/\sqrt{c_u}` (cost :math:`c_u` =
  prompt + completion tokens), via
  :func:`costsgd.torch.stratified_plan` (each process draws its own
  rollouts; weights normalised over all processes' draws, Eq. 22). Optimizer
  step :math:`t` trains on rows ``t·G … (t+1)·G − 1`` of the plan
  (:math:`G` = ``gradient_accumulation_steps``), so each step is an unbiased
  estimate from its own i.i.d. draws; in ``_compute_loss`` the advantage is
  multiplied by the weight: for :math:`w > 0`,
  :math:`-\min(rwA, \mathrm{clip}(r)wA) = -w\min(rA, \mathrm{clip}(r)A)`.

**Denominators stay fixed.** Accepted loss types (:data:`SUPPORTED_LOSS_TYPES`)
divide by a number that neither the draws nor the grouping change: ``"dapo"``
(TRL's default) and ``"cispo"`` divide by ``num_items_in_batch``, the pool's
loss-token count gathered before the draws (the ``token-mean`` row of
:mod:`costsgd.torch.loss`), and so does ``"vespo"``, whose gamma weight depends
on the advantage's sign only (so :math:`w` scales each rollout's term);
``"grpo"`` and ``"sapo"`` by the rows
(seq-mean-token-mean); ``"dr_grpo"`` by rows × ``max_completion_length``;
``"luspo"`` by the rows (seq-mean-token-sum). ``"bnpo"`` divides each
micro-batch by its own loss tokens, which cost-aware draws shrink (short
rollouts are over-drawn) and length grouping redistributes; it is refused
(``"dapo"`` is its fixed-denominator counterpart), as is any loss type
added by a later TRL.

**Not weighted.** Only the advantage term is importance-weighted. With
``beta > 0`` the KL penalty, and an entropy bonus (``entropy_coef``), are
averaged over the drawn rollouts without weights: they regularise on the
:math:`p`-tilted batch. TRL's entropy bonus is a token mean per micro-batch, so
grouping changes how its rows are weighted; with ``top_entropy_quantile < 1``
TRL takes the entropy quantile per micro-batch, so grouping changes which
tokens pass it. With
``num_iterations > 1`` every pass reuses the same draws and micro-batches.
Multimodal inputs are not supported. Evaluation is unchanged.

**Logged** through TRL's metrics (console, ``state.log_history``, any
``report_to``): ``tokens/pool`` (once per generation batch),
``tokens/drawn`` and ``tokens/processed`` (per optimizer step: real tokens of
the step's rows, and rows × padded width of its micro-batches), their running
totals ``tokens/pool_total``, ``tokens/drawn_total``,
``tokens/processed_total``, all summed over processes; the cost-aware trainer
adds ``cost_aware/ess``, ``cost_aware/ess_fraction`` and
``cost_aware/weight_{min,max,mean,std}`` over all processes' draws.
"""

from __future__ import annotations

from typing import Any

import torch

try:
    import trl
    from transformers import Trainer
    from trl import GRPOTrainer
except ImportError as err:
    raise ImportError(
        f'costsgd.integrations.trl needs TRL and transformers ({err}): pip install "costsgd[trl]"'
    ) from err

from costsgd.torch.distributed import stratified_plan
from costsgd.torch.microbatch import concat_rows, padded_tokens, step_micro_batches, take_rows
from costsgd.torch.options import SamplingOptions
from costsgd.torch.plan import UpdatePlan

__all__ = [
    "SUPPORTED_LOSS_TYPES",
    "CostAwareGRPOTrainer",
    "LengthGroupedGRPOTrainer",
    "rollout_costs",
]

SUPPORTED_LOSS_TYPES = ("cispo", "dapo", "dr_grpo", "grpo", "luspo", "sapo", "vespo")
"""TRL ``loss_type`` values whose denominators do not depend on the draws (``bnpo`` is refused)."""
# GRPOTrainer methods and attributes these trainers override or read (TRL 1.16).
TRL_METHODS = (
    "_generate_and_score_completions",
    "_prepare_inputs",
    "_compute_loss",
    "training_step",
    "log",
)
TRL_ATTRIBUTES = ("_buffered_inputs", "_metrics", "_step", "pad_to_multiple_of", "loss_type")
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

    Tokens are counted (non-zero mask entries), so a bf16 or fp16 mask gives the exact
    count as float64, whatever its length.

    Raises:
      ValueError: a mask or the ids not 2-D, or of other rows (or the ids of other
        columns than the completion mask).
    """
    prompt, mask, ids = batch["prompt_mask"], batch["completion_mask"], batch["completion_ids"]
    for key, value in (("prompt_mask", prompt), ("completion_mask", mask), ("completion_ids", ids)):
        if value.ndim != 2:
            raise ValueError(f"batch[{key!r}] must be 2-D (rows, tokens), got {tuple(value.shape)}")
    if prompt.shape[0] != mask.shape[0] or ids.shape != mask.shape:
        raise ValueError(
            f"prompt_mask {tuple(prompt.shape)}, completion_mask {tuple(mask.shape)} and "
            f"completion_ids {tuple(ids.shape)} must have the same rows, and the completions "
            "the same columns"
        )
    generated = (mask != 0).sum(1)
    if pad_token_id is not None:
        unmasked = (ids != pad_token_id).sum(1)
        generated = torch.where(generated > 0, generated, unmasked)
    return ((prompt != 0).sum(1) + generated).to(torch.float64)


def _require_trl_internals(obj: Any, names: tuple[str, ...], kind: str) -> None:
    if kind == "methods":  # a method only transformers.Trainer defines is not GRPOTrainer's own
        missing = [n for n in names if getattr(obj, n, None) in (None, getattr(Trainer, n, None))]
    else:
        missing = [name for name in names if not hasattr(obj, name)]
    if missing:
        raise RuntimeError(
            f"costsgd.integrations.trl relies on GRPOTrainer {kind} {missing}, which the installed "
            f"TRL {trl.__version__} lacks; it supports TRL >= 1.16, < 2 "
            "(pip install 'costsgd[trl]')"
        )


class LengthGroupedGRPOTrainer(GRPOTrainer):
    r"""``trl.GRPOTrainer`` whose micro-batches are grouped by length within each optimizer step.

    Takes every argument of ``GRPOTrainer``, plus (keyword-only):

    Args:
      group_by_length: sort each optimizer step's rollouts by completion length
        into its ``gradient_accumulation_steps`` micro-batches and trim each to
        its longest completion (default). ``False`` keeps TRL's micro-batches
        (the token metrics are still logged).

    Raises:
      ValueError: if ``steps_per_generation`` is not a multiple of
        ``gradient_accumulation_steps`` (an optimizer step would span two
        generation batches), or ``loss_type`` is not in
        :data:`SUPPORTED_LOSS_TYPES`.
      RuntimeError: if the installed TRL lacks an internal overridden here.
    """

    def __init__(self, *args: Any, group_by_length: bool = True, **kwargs: Any) -> None:
        if not isinstance(group_by_length, bool):
            raise TypeError(f"group_by_length must be a bool, got {group_by_length!r}")
        _require_trl_internals(GRPOTrainer, TRL_METHODS, "methods")
        super().__init__(*args, **kwargs)
        _require_trl_internals(self, TRL_ATTRIBUTES, "attributes")
        args_ = self.args
        if args_.steps_per_generation % args_.gradient_accumulation_steps:
            raise ValueError(
                "the mini-batch must divide the generation batch: steps_per_generation "
                f"({args_.steps_per_generation}; generation_batch_size "
                f"{args_.generation_batch_size} / (per_device_train_batch_size "
                f"{args_.per_device_train_batch_size} x {self.accelerator.num_processes} "
                "processes)) must be a multiple of gradient_accumulation_steps "
                f"({args_.gradient_accumulation_steps})"
            )
        if self.loss_type not in SUPPORTED_LOSS_TYPES:
            raise ValueError(
                f"loss_type {self.loss_type!r} is not supported: use one of "
                f"{SUPPORTED_LOSS_TYPES} ('bnpo' divides each micro-batch by its own drawn "
                "tokens, which biases the step; 'dapo' is its fixed-denominator counterpart)"
            )
        self.group_by_length = group_by_length
        self.token_totals = {"pool": 0.0, "drawn": 0.0, "processed": 0.0}
        # drawn (a device tensor: no host sync per micro-batch) and processed tokens of the
        # current optimizer step
        self._window_drawn, self._window_processed = 0, 0

    def _generate_and_score_completions(self, inputs):
        batch = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return batch
        if any(key in batch for key in _IMAGE_KEYS):
            raise ValueError(f"{type(self).__name__} does not support multimodal inputs")
        pad_id = getattr(self.processing_class, "pad_token_id", None)
        batch["rollout_tokens"] = rollout_costs(batch, pad_id).double()
        pool = float(self.accelerator.reduce(batch["rollout_tokens"].sum(), reduction="sum"))
        self.token_totals["pool"] += pool
        self._metrics["train"]["tokens/pool"].append(pool)
        return batch

    def micro_batches(self, buffered: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """This generation batch's micro-batches, grouped by length within each optimizer step.

        ``buffered`` is TRL's list of ``steps_per_generation`` micro-batches
        (already shuffled); consecutive ``gradient_accumulation_steps`` of them
        form one optimizer step, and they still do afterwards.
        """
        accumulation = self.args.gradient_accumulation_steps
        return step_micro_batches(
            concat_rows(buffered),
            len(buffered) // accumulation,
            accumulation,
            multiple_of=self.pad_to_multiple_of,
        )

    def _prepare_inputs(self, generation_batch):
        if not self.model.training:
            return super()._prepare_inputs(generation_batch)
        previous = self._buffered_inputs
        inputs = super()._prepare_inputs(generation_batch)
        if self.group_by_length and self._buffered_inputs is not previous:
            self._buffered_inputs = self.micro_batches(self._buffered_inputs)
            inputs = self._buffered_inputs[self._step % self.args.steps_per_generation]
        self._window_drawn = self._window_drawn + inputs["rollout_tokens"].sum()
        self._window_processed += padded_tokens(inputs)
        return inputs

    def training_step(self, model, inputs, num_items_in_batch):
        output = super().training_step(model, inputs, num_items_in_batch)
        if self._step % self.current_gradient_accumulation_steps == 0:
            device = self.accelerator.device
            window = torch.stack(
                [
                    torch.as_tensor(self._window_drawn, device=device).to(torch.float64),
                    torch.tensor(float(self._window_processed), device=device, dtype=torch.float64),
                ]
            )
            drawn, processed = self.accelerator.reduce(window, reduction="sum").tolist()
            self._window_drawn, self._window_processed = 0, 0
            self.token_totals["drawn"] += drawn
            self.token_totals["processed"] += processed
            self._metrics["train"]["tokens/drawn"].append(drawn)
            self._metrics["train"]["tokens/processed"].append(processed)
        return output

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training:
            logs.update(
                {f"tokens/{name}_total": value for name, value in self.token_totals.items()}
            )
        super().log(logs, start_time)


class CostAwareGRPOTrainer(LengthGroupedGRPOTrainer):
    r"""``trl.GRPOTrainer`` with Algorithm 2's cost-aware mini-batches, grouped by length.

    Takes every argument of ``GRPOTrainer`` and ``group_by_length`` of
    :class:`LengthGroupedGRPOTrainer`, plus (keyword-only):

    Args:
      proxy: the distribution over the generation batch, a name of
        :data:`costsgd.torch.PROXIES` or a function ``(G, c) -> p``:
        ``"advantage"`` (default, :math:`p^* \propto |A_u|/\sqrt{c_u}`),
        ``"nonzero"`` (:math:`p \propto \mathbf 1[A_u \ne 0]`: zero-advantage
        removal, importance-weighted), ``"length"``, ``"variance"``, ``"uniform"``.
      alpha: smoothing :math:`\alpha` of :math:`p^*_{\mathrm{smooth}}` (§5.3), in [0, 1].
      sigma2: noisy-proxy variance (ablation, §5.5).
      normalize: weight normalisation (:func:`costsgd.torch.importance_weights`).
      seed: seed of the draws (default ``args.seed``); process ``r`` uses ``seed + r``.

    The four options form one :class:`costsgd.torch.SamplingOptions`,
    :attr:`cost_aware_sampling`, checked before TRL builds anything.

    Raises:
      ValueError: for an invalid option above (naming it and the accepted
        values), or a configuration refused by :class:`LengthGroupedGRPOTrainer`.

    After each generation, :attr:`cost_aware_draws` holds the drawn batch (with
    ``cost_aware_weights``) and :attr:`cost_aware_plan` the latest
    :class:`UpdatePlan` (indices into that process's generation batch, shaped
    ``(steps_per_generation, per_device_train_batch_size)``). With
    ``group_by_length`` optimizer step :math:`t` trains on plan rows
    :math:`tG \ldots (t+1)G-1` (:math:`G` = ``gradient_accumulation_steps``),
    regrouped by length among themselves; without it TRL's shuffle spreads the
    (i.i.d.) draws over the steps.
    """

    def __init__(
        self,
        *args: Any,
        proxy: Any = "advantage",
        alpha: float = 0.0,
        sigma2: float = 0.0,
        normalize: str = "draws",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.cost_aware_sampling = SamplingOptions(
            proxy=proxy, alpha=alpha, sigma2=sigma2, normalize=normalize
        )
        super().__init__(*args, **kwargs)
        seed = self.args.seed if seed is None else seed
        self.cost_aware_generator = torch.Generator(device=self.accelerator.device)
        self.cost_aware_generator.manual_seed(seed + self.accelerator.process_index)
        self.cost_aware_plan: UpdatePlan | None = None
        self.cost_aware_draws: dict[str, Any] | None = None

    def _generate_and_score_completions(self, inputs):
        batch = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return batch
        return self.resample_rollouts(batch)

    def resample_rollouts(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Replace a scored generation batch by cost-aware draws carrying their weights.

        Raises:
          ValueError: on every process, if any process's advantages are not
            finite or its rollout lengths are not positive.
        """
        loss_mask = batch["completion_mask"]
        if "tool_mask" in batch:
            loss_mask = loss_mask * batch["tool_mask"]
        lengths = batch.get("rollout_tokens")
        if lengths is None:
            lengths = rollout_costs(batch, getattr(self.processing_class, "pad_token_id", None))
        advantages = batch["advantages"]
        if advantages.ndim == 1:
            # A rollout whose loss mask is empty (mask_truncated_completions) has no
            # gradient: give it no probability rather than draws that train nothing.
            advantages = advantages * (loss_mask.sum(1) > 0)
        micro = self.args.per_device_train_batch_size
        plan = stratified_plan(
            advantages,
            lengths,
            micro,
            num_batches=lengths.shape[0] // micro,
            mask=loss_mask if advantages.ndim == 2 else None,
            sampling=self.cost_aware_sampling,
            generator=self.cost_aware_generator,
        )
        self.cost_aware_plan = plan
        weights = plan.weights.reshape(-1).to(batch["advantages"].device)
        everyone = self.accelerator.gather(weights).double()
        ess = everyone.sum() ** 2 / (everyone * everyone).sum()
        stats = torch.stack(
            [
                ess,
                ess / everyone.numel(),
                everyone.min(),
                everyone.max(),
                everyone.mean(),
                everyone.std(unbiased=False),
            ]
        ).tolist()
        for name, value in zip(
            ("ess", "ess_fraction", "weight_min", "weight_max", "weight_mean", "weight_std"),
            stats,
            strict=True,
        ):
            self._metrics["train"][f"cost_aware/{name}"].append(value)
        out = take_rows(batch, plan.indices.reshape(-1))  # pool-level scalars kept fixed
        out["cost_aware_weights"] = weights
        self.cost_aware_draws = out
        return out

    def micro_batches(self, buffered: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Micro-batches of the draws in plan order: step ``t`` holds plan rows ``tG … (t+1)G − 1``."""
        accumulation = self.args.gradient_accumulation_steps
        return step_micro_batches(
            self.cost_aware_draws,
            len(buffered) // accumulation,
            accumulation,
            multiple_of=self.pad_to_multiple_of,
        )

    def _compute_loss(self, model, inputs):
        weights = inputs.get("cost_aware_weights")
        if weights is not None:
            adv = inputs["advantages"]
            w = weights.to(adv.dtype).reshape(-1, *([1] * (adv.ndim - 1)))
            inputs = {**inputs, "advantages": adv * w}
        return super()._compute_loss(model, inputs)
