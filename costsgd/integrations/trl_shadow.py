r"""Shadow mode for TRL: audit what Cost-Aware GRPO would save, while training exactly as before.

:func:`cost_aware_shadow` attaches to a plain ``trl.GRPOTrainer`` (or any
subclass) after it is built. For every training generation batch it reads
the advantages TRL computed and each rollout's prompt and completion tokens,
gathered over processes in TRL's order (a group is ``num_generations``
consecutive rollouts), and

* logs, next to TRL's metrics, ``cost_aware/expected/{sampler}``: the expected
  drawn tokens per iteration of each sampler relative to no sampling,
  :math:`\mathbb E_p[c]/\bar c` (§5.2, :func:`costsgd.audit.analyse_pool`;
  samplers ``p*``, ``p*_smooth(0.01)``, ``p*_smooth(0.05)``, ``p*_smooth(0.1)``,
  ``nonzero``, ``length``), and ``cost_aware/expected/zero_advantage_fraction``.
  TRL averages a metric over its logging interval, so these are plain means
  of per-pool ratios; ``costsgd audit`` on the written pools gives the
  token-weighted run summary;
* optionally writes the pools in the generic format (``pools=`` a JSONL path,
  written by the main process, flushed after each pool) for ``costsgd audit``.

Training is bit-for-bit unchanged: the batch TRL returns is passed on as is;
the audit copies tensors to the host and uses no random numbers. On several
processes it adds one all-gather of four small vectors per generation batch.
A rollout whose loss mask is empty (TRL's ``mask_truncated_completions``) is
written with ``truncated: true`` and counts as having no gradient.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from costsgd.audit import Pool, analyse_pool, write_pool_jsonl
from costsgd.integrations.trl import rollout_costs

__all__ = ["ShadowAudit", "cost_aware_shadow"]

# GRPOTrainer internals the shadow reads (TRL 1.16).
_TRL_INTERNALS = ("_generate_and_score_completions", "_metrics", "num_generations")


class _CloseAtEnd(TrainerCallback):
    def __init__(self, shadow: ShadowAudit):
        self.shadow = shadow

    def on_train_end(self, args, state, control, **kwargs):
        self.shadow.close()


class ShadowAudit:
    """The state of a trainer's shadow audit (made by :func:`cost_aware_shadow`).

    Attributes:
      generations: training generation batches audited so far (the ``step``
        column of the written pools).
      pools: the JSONL path the pools go to, or ``None``.
      last: the :class:`~costsgd.audit.PoolAudit` of the latest pool.
    """

    def __init__(self, trainer: Any, pools: str | os.PathLike | None):
        missing = [name for name in _TRL_INTERNALS if not hasattr(trainer, name)]
        if missing:
            raise TypeError(
                f"trainer lacks {', '.join(missing)}: cost_aware_shadow needs a trl.GRPOTrainer "
                "(tested with TRL 1.16)"
            )
        self.trainer = trainer
        self.generations = 0
        self.last = None
        self.pools = None if pools is None else Path(pools)
        self._file = None
        if self.pools is not None and trainer.accelerator.is_main_process:
            self.pools.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.pools, "w", encoding="utf-8")
        self._generate = trainer._generate_and_score_completions
        trainer._generate_and_score_completions = self._generate_and_audit
        trainer.add_callback(_CloseAtEnd(self))

    def _generate_and_audit(self, inputs):
        batch = self._generate(inputs)
        if self.trainer.model.training:
            self.record(batch)
        return batch

    def record(self, batch: dict[str, Any]) -> None:
        """Audit one scored generation batch (all processes call it together)."""
        trainer = self.trainer
        advantages = batch["advantages"]
        if advantages.ndim != 1:
            raise ValueError(
                f"advantages of shape {tuple(advantages.shape)}: the shadow audit reads "
                "per-sequence advantages (TRL's GRPOTrainer)"
            )
        loss_mask = batch["completion_mask"]
        if "tool_mask" in batch:
            loss_mask = loss_mask * batch["tool_mask"]
        prompt = batch["prompt_mask"].sum(1)
        cost = rollout_costs(batch, getattr(trainer.processing_class, "pad_token_id", None))
        local = torch.stack(
            [
                advantages.detach().double(),
                prompt.double(),
                (cost - prompt).double(),
                (loss_mask.sum(1) == 0).double(),
            ]
        )
        gathered = trainer.accelerator.gather(local.T.contiguous()).T.cpu().numpy()
        A, P, C, masked = gathered[0], gathered[1], gathered[2], gathered[3] > 0
        self.last = analyse_pool(Pool(self.generations, A, P, C, masked))
        metrics = trainer._metrics["train"]
        for name, value in self.last.expected_drawn_ratio.items():
            metrics[f"cost_aware/expected/{name}"].append(value)
        metrics["cost_aware/expected/zero_advantage_fraction"].append(
            self.last.zero_advantage_fraction
        )
        if self._file is not None:
            n = int(trainer.num_generations)
            groups = [f"{self.generations}-{i // n}" for i in range(A.size)]
            write_pool_jsonl(
                self._file,
                self.generations,
                groups,
                A,
                P.astype(np.int64),
                C.astype(np.int64),
                masked,
                global_step=int(trainer.state.global_step),
            )
            self._file.flush()
        self.generations += 1

    def close(self) -> None:
        """Close the pools file (done at the end of training)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def cost_aware_shadow(trainer: Any, *, pools: str | os.PathLike | None = None) -> ShadowAudit:
    """Attach the shadow audit to a built ``trl.GRPOTrainer``; training itself is unchanged.

    Args:
      trainer: a ``trl.GRPOTrainer`` (or subclass), before ``train()``.
      pools: optional JSONL path; each training generation batch is appended in
        the generic format (``step`` = generation batch index, ``group``,
        ``advantage``, ``prompt_tokens``, ``completion_tokens``, ``truncated``,
        plus TRL's ``global_step``), for ``costsgd audit``.

    Returns:
      The :class:`ShadowAudit`.

    Examples:
      ``trainer = GRPOTrainer(model=..., reward_funcs=..., args=..., train_dataset=...)``,
      then ``cost_aware_shadow(trainer, pools="pools.jsonl")`` and ``trainer.train()``
      as before; ``costsgd audit pools.jsonl`` afterwards (docs/audit.md; run in
      ``tests/test_audit_trl.py``).
    """
    return ShadowAudit(trainer, pools)
