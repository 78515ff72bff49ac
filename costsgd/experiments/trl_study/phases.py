r"""Timing TRL's phases from outside: generation and scoring vs the policy update.

TRL's ``GRPOTrainer`` interleaves the two phases of Algorithm 2 inside
``transformers.Trainer``'s loop: the first micro-step of each generation batch
calls ``_generate_and_score_completions`` (generation, rewards, advantages,
the old log-probabilities' forward pass), and every micro-step then runs the
forward and backward pass of its micro-batch; the optimizer step follows the
last micro-step. :func:`instrumented` wraps a trainer class without changing
TRL:

* **Update phase** of optimizer step :math:`t`: the wall time (and process
  CPU time) from ``on_step_begin`` to ``on_step_end`` — every micro-step's
  ``training_step``, gradient clipping, the optimizer and scheduler step —
  minus the generation and scoring that fell inside it. The cost-aware
  trainer's draws (:meth:`~costsgd.integrations.trl.CostAwareGRPOTrainer.resample_rollouts`)
  run inside ``_generate_and_score_completions`` but belong to Algorithm 2's
  update: their time is moved to the update phase.
* **Generation and scoring**: the rest of ``_generate_and_score_completions``.
* Logging, the data loader and the held-out evaluation (run in ``on_step_end``
  after the clock stops) are in neither.

Tokens, per optimizer step, the same way for every trainer: *drawn* = prompt +
completion tokens of the rows trained on (:func:`~costsgd.integrations.trl.rollout_costs`,
a row drawn twice counts twice); *processed* = rows × padded width of every
micro-batch (:func:`~costsgd.torch.microbatch.padded_tokens`). Per generation
batch, on the pool before any draw: its tokens, the zero-advantage fraction,
and the expected drawn tokens per iteration relative to one uniform pass of
:math:`p^* \propto |A|/\sqrt c` (:math:`\mathbb E_{p^*}[c]/\bar c`) and of
:math:`p \propto \mathbb 1[A \ne 0]` (1 when every advantage is zero: the
adapter then draws uniformly).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainerCallback

from costsgd.integrations.trl import rollout_costs
from costsgd.torch import cost_aware_probs
from costsgd.torch.microbatch import padded_tokens

__all__ = ["PhaseLog", "instrumented", "pool_statistics"]


def pool_statistics(advantages: torch.Tensor, costs: torch.Tensor) -> dict[str, float]:
    r"""Zero-advantage fraction and expected drawn tokens (relative to :math:`\bar c`) of a pool.

    Examples:
      >>> import torch
      >>> s = pool_statistics(torch.tensor([1.0, -1.0, 0.0, 0.0]), torch.tensor([4.0, 4.0, 16.0, 16.0]))
      >>> s["zero_advantage_fraction"], s["pstar_cost_ratio"], s["nonzero_cost_ratio"]
      (0.5, 0.4, 0.4)
    """
    a = advantages.detach().double().reshape(-1).cpu()
    c = costs.detach().double().reshape(-1).cpu()
    mean = float(c.mean())
    expected = {
        name: float((cost_aware_probs(a, c, proxy=proxy) * c).sum()) / mean
        for name, proxy in (("pstar_cost_ratio", "advantage"), ("nonzero_cost_ratio", "nonzero"))
    }
    return {"zero_advantage_fraction": float((a == 0).double().mean()), **expected}


class PhaseLog:
    """What an instrumented trainer records (plain lists; :meth:`as_dict` for a results file).

    Per optimizer step: ``update_seconds``, ``update_cpu_seconds``,
    ``drawn_tokens``, ``processed_tokens``. Per generation batch:
    ``generation_seconds``, ``generation_cpu_seconds``, ``pool_tokens``,
    ``zero_advantage_fraction``, ``pstar_cost_ratio``, ``nonzero_cost_ratio``.
    Per evaluation: ``eval_step`` (optimizer steps done) and ``eval_accuracy``.
    """

    STEP_KEYS = ("update_seconds", "update_cpu_seconds", "drawn_tokens", "processed_tokens")
    POOL_KEYS = (
        "generation_seconds",
        "generation_cpu_seconds",
        "pool_tokens",
        "zero_advantage_fraction",
        "pstar_cost_ratio",
        "nonzero_cost_ratio",
    )
    EVAL_KEYS = ("eval_step", "eval_accuracy")

    def __init__(self) -> None:
        for key in (*self.STEP_KEYS, *self.POOL_KEYS, *self.EVAL_KEYS):
            setattr(self, key, [])

    def as_dict(self) -> dict[str, list]:
        return {
            k: list(getattr(self, k)) for k in (*self.STEP_KEYS, *self.POOL_KEYS, *self.EVAL_KEYS)
        }


def _synchronize() -> None:
    # CUDA kernels run asynchronously: wait for them before reading the clock.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class _Clock:
    """Wall and process-CPU seconds since :meth:`start` (GPU work finished at both ends)."""

    def start(self) -> None:
        _synchronize()
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        _synchronize()
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


class _PhaseCallback(TrainerCallback):
    def __init__(self, trainer: Any, evaluate: Callable[[Any], float] | None, eval_every: int):
        self.trainer, self.evaluate, self.eval_every = trainer, evaluate, eval_every
        self.clock = _Clock()

    def _eval(self, step: int) -> None:
        if self.evaluate is not None:
            log = self.trainer.phase_log
            log.eval_step.append(step)
            log.eval_accuracy.append(float(self.evaluate(self.trainer.model)))

    def on_train_begin(self, args, state, control, **kwargs):
        self._eval(0)

    def on_step_begin(self, args, state, control, **kwargs):
        self.trainer.outside_update = [0.0, 0.0]
        self.clock.start()

    def on_step_end(self, args, state, control, **kwargs):
        wall, cpu = self.clock.read()
        t = self.trainer
        log = t.phase_log
        log.update_seconds.append(wall - t.outside_update[0])
        log.update_cpu_seconds.append(cpu - t.outside_update[1])
        log.drawn_tokens.append(t.step_tokens[0])
        log.processed_tokens.append(t.step_tokens[1])
        t.step_tokens = [0.0, 0]
        if state.global_step % self.eval_every == 0 or state.global_step == state.max_steps:
            self._eval(state.global_step)


class _Instrumented:
    """Mixin placed first in the MRO of a ``GRPOTrainer`` subclass (see :func:`instrumented`)."""

    def __init__(
        self,
        *args: Any,
        evaluate: Callable[[Any], float] | None = None,
        eval_every: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.phase_log = PhaseLog()
        self.outside_update = [0.0, 0.0]  # generation and scoring inside the current step
        self.step_tokens = [0.0, 0]  # drawn, processed of the current optimizer step
        self._draw_time = [0.0, 0.0]
        self._pool_recorded = False
        self.add_callback(_PhaseCallback(self, evaluate, eval_every))

    def _record_pool(self, batch: dict[str, Any]) -> None:
        pad = getattr(self.processing_class, "pad_token_id", None)
        costs = rollout_costs(batch, pad)
        advantages = batch["advantages"]
        if advantages.ndim == 1:
            advantages = advantages * (batch["completion_mask"].sum(1) > 0)
        else:
            advantages = (advantages * batch["completion_mask"]).sum(1)
        log = self.phase_log
        log.pool_tokens.append(float(costs.sum()))
        for key, value in pool_statistics(advantages, costs).items():
            getattr(log, key).append(value)
        self._pool_recorded = True

    def _generate_and_score_completions(self, inputs):
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        clock = _Clock()
        clock.start()
        self._pool_recorded = False
        self._draw_time = [0.0, 0.0]
        batch = super()._generate_and_score_completions(inputs)
        if not self._pool_recorded:
            self._record_pool(batch)
        wall, cpu = clock.read()
        wall, cpu = wall - self._draw_time[0], cpu - self._draw_time[1]
        self.phase_log.generation_seconds.append(wall)
        self.phase_log.generation_cpu_seconds.append(cpu)
        self.outside_update[0] += wall
        self.outside_update[1] += cpu
        return batch

    def resample_rollouts(self, batch: dict[str, Any]) -> dict[str, Any]:
        self._record_pool(batch)
        clock = _Clock()
        clock.start()
        out = super().resample_rollouts(batch)
        self._draw_time = list(clock.read())
        return out

    def _compute_loss(self, model, inputs):
        if model.training:
            pad = getattr(self.processing_class, "pad_token_id", None)
            self.step_tokens[0] += float(rollout_costs(inputs, pad).sum())
            self.step_tokens[1] += padded_tokens(inputs)
        return super()._compute_loss(model, inputs)


def instrumented(trainer_cls: type) -> type:
    """``trainer_cls`` (a ``trl.GRPOTrainer`` subclass) with :class:`PhaseLog` timing and token counts.

    The returned class takes ``trainer_cls``'s arguments plus ``evaluate``
    (``model -> accuracy``, called before training, every ``eval_every``
    optimizer steps and after the last one, outside the timed phases) and
    ``eval_every``; after ``train()`` its ``phase_log`` holds the records.
    """
    return type(f"Instrumented{trainer_cls.__name__}", (_Instrumented, trainer_cls), {})
