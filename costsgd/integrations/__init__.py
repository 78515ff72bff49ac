"""Cost-Aware GRPO inside the RL trainers people run: TRL and verl.

Each module imports its framework when it is imported, never before:

* :mod:`costsgd.integrations.trl` — ``CostAwareGRPOTrainer`` and
  ``LengthGroupedGRPOTrainer``, subclasses of TRL's ``GRPOTrainer``
  (``pip install "costsgd[trl]"``);
* :mod:`costsgd.integrations.verl` — Algorithm 2's draws on verl's batch layout
  (torch only, no verl import);
* :mod:`costsgd.integrations.verl_trainer` — verl's PPO trainers with cost-aware
  actor updates (``pip install "costsgd[verl]"``).
* :mod:`costsgd.integrations.trl_shadow` — ``cost_aware_shadow``: what
  Cost-Aware GRPO would save, audited on a plain ``GRPOTrainer``'s pools while it
  trains unchanged (docs/audit.md).

They build on the framework-free adapter :mod:`costsgd.torch`.
"""
