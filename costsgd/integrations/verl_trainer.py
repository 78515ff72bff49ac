r"""Cost-aware actor updates inside verl's trainers (tested with verl 0.9.1).

Imports verl, so it is only importable where verl is installed
(``pip install verl==0.9.1``; ``make test`` builds ``.venv-verl`` for it).

* :class:`CostAwarePPOTrainer` — verl's default v1 trainer
  (``verl/trainer/ppo/v1/trainer_sync.py``, ``PPOTrainerSync``) with a
  cost-aware ``_update_actor``; registered with verl's ``register_trainer``
  as ``trainer.v1.trainer_mode=cost_aware``.
* :class:`CostAwareRayPPOTrainer` — the same for the legacy
  ``RayPPOTrainer`` (``verl/trainer/ppo/ray_trainer.py``, ``trainer.use_v1=false``).

Both run Algorithm 2's Phase 2-3 on the driver after ``compute_advantage``:
they draw :math:`N` rollouts from :math:`p_u \propto |A_u|/\sqrt{c_u}`
(Theorem 4.1), hand the drawn batch, weighted by eq. 22's :math:`1/(Np_u)` in
``rollout_is_weights``, to verl's own ``_update_actor``, and give verl back the
**pool**, so the data metrics verl logs afterwards (``critic/score/*``,
``response_length/*``) are the pool's. The draws' statistics go to
``cost_aware/draws/*``, the pool's to ``cost_aware/pool/*``
(:func:`costsgd.integrations.verl.plan_metrics`).

Settings live under ``trainer.v1.cost_aware`` (add them with Hydra's ``+``):
``proxy``, ``alpha``, ``sigma2``, ``normalize`` (:class:`costsgd.torch.SamplingOptions`)
and ``token_mean_correction``. The draws of step :math:`k` are seeded with
``actor_rollout_ref.actor.data_loader_seed`` + :math:`k` (verl's seed for the
actor's mini-batch order; verl has no ``trainer.seed``).

The trainer classes must exist in verl's ``TaskRunner`` Ray actor, so start
verl with ``+ray_kwargs.ray_init.runtime_env.worker_process_setup_hook=``
``costsgd.integrations.verl_trainer.setup_worker`` (v1) or ``...setup_legacy_worker``
(legacy), see ``docs/verl.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import torch

try:
    import transfer_queue as tq
    from omegaconf import open_dict
    from transfer_queue import KVBatchMeta
    from verl.protocol import DataProto
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer
    from verl.trainer.ppo.v1.trainer_base import register_trainer
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
    from verl.workers.utils.padding import response_to_nested
except ImportError as err:
    raise ImportError(
        f"costsgd.integrations.verl_trainer needs verl 0.9.1 and TransferQueue ({err}): "
        'pip install "costsgd[verl]"'
    ) from err

from costsgd.integrations.verl import (
    check_loss_agg_mode,
    dispatch_order,
    plan_metrics,
    plan_verl_batch,
    token_mean_weights,
)
from costsgd.torch.options import SamplingOptions
from costsgd.torch.plan import UpdatePlan

__all__ = [
    "TRAINER_MODE",
    "CostAwarePPOTrainer",
    "CostAwareRayPPOTrainer",
    "CostAwareSettings",
    "cost_aware_settings",
    "plan_pool",
    "put_draws",
    "setup_legacy_worker",
    "setup_worker",
]

TRAINER_MODE = "cost_aware"
"""The name the trainer registers under, and its settings section ``trainer.v1.cost_aware``."""


class CostAwareSettings(NamedTuple):
    """The ``trainer.v1.cost_aware`` section.

    Its keys are the fields of :class:`costsgd.torch.SamplingOptions` (``proxy``,
    ``alpha``, ``sigma2``, ``normalize``) and ``token_mean_correction``.

    Attributes:
      sampling: the draws' distribution and weight normalisation.
      token_mean_correction: use :func:`costsgd.integrations.verl.token_mean_weights`,
        which ``loss_agg_mode=token-mean`` needs (with ``actor.shuffle=false``).
    """

    sampling: SamplingOptions = SamplingOptions()
    token_mean_correction: bool = False


def cost_aware_settings(config: Any) -> CostAwareSettings:
    """Read :class:`CostAwareSettings` from a verl config (absent section: defaults).

    Raises:
      ValueError: an unknown key in ``trainer.v1.cost_aware``, or an invalid
        value (naming the key).
    """
    section = dict(config.trainer.v1.get(TRAINER_MODE, None) or {})
    options = [f.name for f in dataclasses.fields(SamplingOptions)]
    known = sorted([*options, "token_mean_correction"])
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ValueError(f"trainer.v1.cost_aware has unknown keys {unknown}; known: {known}")
    correction = section.pop("token_mean_correction", False)
    if not isinstance(correction, bool):
        raise ValueError(
            f"trainer.v1.cost_aware.token_mean_correction must be true or false, got {correction!r}"
        )
    try:
        sampling = SamplingOptions(**section)
    except ValueError as err:
        raise ValueError(f"trainer.v1.cost_aware: {err}") from err
    return CostAwareSettings(sampling, correction)


def plan_pool(
    config: Any,
    batch: dict[str, torch.Tensor],
    *,
    global_steps: int,
    dp_size: int,
    costs: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> tuple[UpdatePlan, torch.Tensor, torch.Tensor]:
    """One step's plan for a verl pool, laid out for verl's actor update.

    Args:
      config: the verl config (``actor_rollout_ref`` and ``trainer.v1.cost_aware``).
      batch: padded ``advantages`` and ``response_mask`` ``(N, R)`` (and
        ``attention_mask`` unless ``costs`` is given).
      global_steps: the trainer's step counter (seeds this step's draws).
      dp_size: the actor's data-parallel size.
      costs: as in :func:`costsgd.integrations.verl.plan_verl_batch`.
      valid: as in :func:`costsgd.integrations.verl.plan_verl_batch`.

    Returns:
      ``(plan, rows, weights)``: the plan and, from
      :func:`costsgd.integrations.verl.dispatch_order`, the pool row and weight of
      each slot of the drawn batch.

    Raises:
      ValueError: an unsafe ``loss_agg_mode``, ``token_mean_correction`` with
        ``actor.shuffle=true``, a missing ``data_loader_seed``, or as
        :func:`costsgd.integrations.verl.plan_verl_batch`.
    """
    settings = cost_aware_settings(config)
    actor = config.actor_rollout_ref.actor
    check_loss_agg_mode(actor.loss_agg_mode, token_mean_corrected=settings.token_mean_correction)
    if settings.token_mean_correction and actor.shuffle:
        raise ValueError(
            "trainer.v1.cost_aware.token_mean_correction needs actor_rollout_ref.actor.shuffle=false "
            "(the correction must know which draws share a mini-batch)"
        )
    seed = actor.data_loader_seed
    if seed is None:
        raise ValueError("actor_rollout_ref.actor.data_loader_seed must be set: it seeds the draws")
    B = actor.ppo_mini_batch_size * config.actor_rollout_ref.rollout.n
    generator = torch.Generator().manual_seed(int(seed) + int(global_steps))
    plan = plan_verl_batch(
        batch,
        B,
        costs=costs,
        valid=valid,
        sampling=settings.sampling,
        generator=generator,
    )
    weights = (
        token_mean_weights(plan, batch["response_mask"], B)
        if settings.token_mean_correction
        else plan.weights
    )
    rows, w = dispatch_order(plan, dp_size, weights)
    return plan, rows, w


def put_draws(batch: KVBatchMeta, rows: torch.Tensor, weights: torch.Tensor) -> KVBatchMeta:
    """Write the drawn rows into TransferQueue as new samples and return their metadata.

    TransferQueue refuses repeated keys in one ``KVBatchMeta``, and draws with
    replacement repeat rollouts, so every slot becomes a copy of its row's
    fields (``uid``, ``multi_modal_inputs`` and every other column included)
    under a new key, with ``rollout_is_weights`` = the row's existing weights
    (1 if absent) × the slot's importance weight. The caller clears the keys.

    Args:
      batch: the pool's metadata.
      rows: ``(M,)`` pool row of each slot (:func:`costsgd.integrations.verl.dispatch_order`).
      weights: ``(M,)`` importance weight of each slot.

    Returns:
      The drawn batch's ``KVBatchMeta`` (same partition and ``extra_info``).
    """
    rows_list = rows.tolist()
    keys = [batch.keys[i] for i in rows_list]
    data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id)
    nested_mask = data["response_mask"]
    padded = data.select(
        *[k for k in ("response_mask", "rollout_is_weights") if k in data.keys()]
    ).to_padded_tensor()
    mask = padded["response_mask"].to(torch.float32)
    base = padded["rollout_is_weights"].to(torch.float32) if "rollout_is_weights" in padded else 1.0
    is_weights = base * mask * weights.to(torch.float32)[:, None]
    data["rollout_is_weights"] = response_to_nested(is_weights, nested_mask)
    new_keys = [f"{key}/cost_aware_draw_{slot}" for slot, key in enumerate(keys)]
    tags = [dict(batch.tags[i]) for i in rows_list]
    tq.kv_batch_put(keys=new_keys, partition_id=batch.partition_id, fields=data, tags=tags)
    return KVBatchMeta(
        keys=new_keys,
        tags=tags,
        partition_id=batch.partition_id,
        fields=list(data.keys()),
        extra_info=dict(batch.extra_info or {}),
    )


def _actor_dp_size(worker_group: Any) -> int:
    """The actor mesh's data-parallel size, as verl's ``_balance_batch`` reads it."""
    if "actor" not in worker_group._dispatch_info:
        worker_group._dispatch_info["actor"] = worker_group._query_dispatch_info("actor")
    return max(worker_group._dispatch_info["actor"]) + 1


@register_trainer(TRAINER_MODE)
class CostAwarePPOTrainer(PPOTrainerSync):
    """verl's synchronous v1 trainer with Algorithm 2's cost-aware actor update.

    Selected by ``trainer.v1.trainer_mode=cost_aware``; everything except
    ``_update_actor`` is ``PPOTrainerSync``. verl branches on the mode name
    ``"sync"`` in several places (replay buffer, checkpoints, refill), so the
    constructor sets ``trainer.v1.trainer_mode`` back to ``"sync"``.
    """

    def __init__(self, config: Any):
        cost_aware_settings(config)
        with open_dict(config):
            config.trainer.v1.trainer_mode = "sync"
        super().__init__(config)

    def _update_actor(self, batch: KVBatchMeta, metrics: dict) -> KVBatchMeta:
        """Update the actor on cost-aware draws from ``batch``; return ``batch`` (the pool)."""
        pool = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=["advantages", "response_mask"],
        ).to_padded_tensor()
        costs = torch.tensor([tag["seq_len"] for tag in batch.tags], dtype=torch.float64)
        valid = torch.tensor([not tag.get("is_padding", False) for tag in batch.tags])
        plan, rows, weights = plan_pool(
            self.config,
            {"advantages": pool["advantages"], "response_mask": pool["response_mask"]},
            global_steps=self.global_steps,
            dp_size=_actor_dp_size(self.actor_rollout_wg),
            costs=costs,
            valid=valid,
        )
        drawn = put_draws(batch, rows, weights)
        try:
            super()._update_actor(drawn, metrics)
        finally:
            tq.kv_clear(keys=drawn.keys, partition_id=drawn.partition_id)
        metrics.update(plan_metrics(plan))
        return batch


class CostAwareRayPPOTrainer(RayPPOTrainer):
    """verl's legacy ``RayPPOTrainer`` with Algorithm 2's cost-aware actor update.

    ``fit`` calls ``_update_actor(batch)`` after ``compute_advantage`` and then
    computes its data metrics on its own ``batch``, which stays the pool.
    """

    def _update_actor(self, batch: DataProto) -> DataProto:
        """Update the actor on cost-aware draws from ``batch`` (a ``DataProto``), left unchanged."""
        plan, rows, weights = plan_pool(
            self.config,
            dict(batch.batch.items()),
            global_steps=self.global_steps,
            dp_size=self._get_dp_size(self.actor_rollout_wg, "actor"),
        )
        drawn = batch[rows]
        mask = drawn.batch["response_mask"].to(torch.float32)
        base = drawn.batch["rollout_is_weights"] if "rollout_is_weights" in drawn.batch else 1.0
        drawn.batch["rollout_is_weights"] = base * weights.to(torch.float32)[:, None] * mask
        drawn.meta_info["global_token_num"] = drawn.batch["attention_mask"].sum(-1).tolist()
        output = super()._update_actor(drawn)
        output.meta_info["metrics"].update(plan_metrics(plan))
        return output


def setup_worker() -> None:
    """Ray ``worker_process_setup_hook``: makes ``trainer.v1.trainer_mode=cost_aware`` known.

    Importing this module registers :class:`CostAwarePPOTrainer`; the hook
    runs in every Ray worker, including verl's ``TaskRunnerV1``, before
    ``get_trainer_cls`` looks the mode up.
    """


def setup_legacy_worker() -> None:
    """Ray ``worker_process_setup_hook`` for ``trainer.use_v1=false``.

    verl's legacy ``TaskRunner.run`` (``verl/trainer/main_ppo_v0.py``) builds
    ``RayPPOTrainer`` by that module-level name and has no option for another
    class, so this hook rebinds the name to :class:`CostAwareRayPPOTrainer`.
    """
    import verl.trainer.main_ppo_v0 as legacy_main

    legacy_main.RayPPOTrainer = CostAwareRayPPOTrainer
