r"""The task mixes of the suite: where does cost-aware sampling pay, and where not?

Each mix is a :class:`~costsgd.experiments.grpo.task.WalkTask` (prompt
``x0 b``, response the walk to its first 0, 0/1 reward; costs
:math:`c_u` = prompt + response tokens) that differs from the default only in
its difficulty mix: the share of *unsolvable* prompts (walks longer than the
generation cap: all-failing groups at the cap's cost, the long zero-advantage
rollouts of a DAPO-style pool) and the range of solvable walk lengths (short
solved walks are the cheap zero-advantage groups, long ones the hard groups
with signal). They were fixed, with their targets, before any suite run, from
one-seed calibration probes of the GRPO baseline (docs/grpo.md, "Task mixes"):

=======  ======================  ==========================================================
mix      zero-advantage fraction  what differs from the default (modulus 127, cap 72)
         of the GRPO baseline's
         pools (calibration)
=======  ======================  ==========================================================
low      ≈ 27%                   no unsolvable prompt; strides 1–4, walks of 1–70 steps:
                                 most groups stay mixed, the cheap short walks are solved
mid      ≈ 50%                   20% unsolvable; walks of 1–60 steps
high     ≈ 69%                   40% unsolvable; walks of 1–30 steps
default  ≈ 80%                   the default study's task: 60% unsolvable, walks of 1–20 steps
=======  ======================  ==========================================================

The calibration (GRPO baseline, seed 0, learning rate 2e-3, 120–160
iterations, before any suite run) also gave the expected per-iteration saving
of p*, :math:`1 - \mathbb E_{p^*}[c]/\bar c` on those pools: +7% (low), +10%
(mid), +34% (high), +54% (default); and the median over iterations of the
cost spread (max/min cost within a pool): 10.9x (low, high, default) and 9.5x
(mid, whose pools reach 12.7x when they hold a one-step walk). Zero-advantage
rollouts are cheap in ``low`` (solved short walks) and expensive in
``default`` (unsolvable walks at the cap), so the zero-advantage fraction
alone does not fix the saving.

Costs run from 6 to 76 tokens in every mix.
"""

from __future__ import annotations

from costsgd.experiments.grpo.study import DEFAULT_WALK
from costsgd.experiments.grpo.task import WalkTask

__all__ = [
    "GRPO_TOKEN_BUDGET",
    "MIXES",
    "SMOKE_MIX",
    "TARGET_ZERO_ADVANTAGE",
    "zvf_token_budget",
]

#: Mix name -> task; the first is the default study's task.
MIXES: dict[str, WalkTask] = {
    "default": DEFAULT_WALK,
    "low": DEFAULT_WALK._replace(max_stride=4, max_steps=70, unsolvable_fraction=0.0),
    "mid": DEFAULT_WALK._replace(max_steps=60, unsolvable_fraction=0.2),
    "high": DEFAULT_WALK._replace(max_steps=30, unsolvable_fraction=0.4),
}

#: The zero-advantage fraction each mix was chosen to give on the GRPO baseline's pools.
TARGET_ZERO_ADVANTAGE: dict[str, float] = {"default": 0.80, "low": 0.27, "mid": 0.50, "high": 0.69}

#: The GRPO budget (drawn tokens) of every mix's runs: the default study's.
GRPO_TOKEN_BUDGET = 700_000


def zvf_token_budget(mix: str) -> int:
    """Drawn-token budget of a mix's GRPO+ZVF runs: the GRPO budget times the mix's target
    share of groups with signal, rounded to 10 000.

    A ZVF iteration draws only groups with signal, which under GRPO are that
    share of the pool: the rule gives ZVF about the signal GRPO's baseline sees
    in its budget. (A first budget of 400 000 on every mix was dropped after
    two default-mix ZVF baseline runs: they reached the 1 000-iteration cap at
    about 290 000 tokens, 8 generation rounds an iteration, 430 CPU-seconds
    each, on a plateau from about 130 000 tokens.)

    Examples:
      >>> zvf_token_budget("default"), zvf_token_budget("low")
      (140000, 510000)
    """
    share = 1.0 - TARGET_ZERO_ADVANTAGE[mix]
    return int(round(GRPO_TOKEN_BUDGET * share, -4))


#: The smoke suite's second mix: the smoke task without unsolvable prompts.
SMOKE_MIX = WalkTask(modulus=11, max_stride=2, max_steps=6, max_response_len=8)
