"""Where TRL's policy-update time goes, per arm of the TRL study (CPU, timed wrappers).

Runs each arm of ``benchmarks/trl_study.py`` for a few generation batches from the same warm
start (seed 0, the study's model and batch shape, learning rate ``--lr``) and splits the update
phase's CPU time (``costsgd/experiments/trl_study/phases.py``) into parts, by wrapping a few
methods with a process-time clock for this run only (TRL's source is not changed): the policy's
forward pass with gradients (TRL's ``_get_per_token_logps_and_entropies`` while grad is on: the
loss's forward; scoring calls it without grad), the rest of TRL's ``_compute_loss``, the
backward pass (``Accelerator.backward``), gradient clipping and the optimizer step, the
micro-batch regrouping (``micro_batches``) and the cost-aware draws (``resample_rollouts``);
"other" is what remains of the phase (Trainer and TRL bookkeeping between them).

    PYTHONPATH=. python benchmarks/trl_update_profile.py [--iterations 3] [--lr 2e-4] [--out FILE]
        [--hidden-size 64] [--num-layers 2]

It also fits the phase's CPU seconds per optimizer step to ``fixed + per-token x processed
tokens`` over every step of every arm (``report.update_cost_model``): the token-proportional
share of the baseline's step bounds the update-time saving a processed-token saving can buy.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from accelerate import Accelerator
from accelerate.optimizer import AcceleratedOptimizer
from transformers import Trainer
from trl import GRPOTrainer

from costsgd.experiments.results import write_text
from costsgd.experiments.trl_study import report, study
from costsgd.integrations.trl import CostAwareGRPOTrainer, LengthGroupedGRPOTrainer

# part -> [(class, method)], timed when the condition holds (None: always).
TIMED = {
    "forward": ([(GRPOTrainer, "_get_per_token_logps_and_entropies")], torch.is_grad_enabled),
    "loss": ([(GRPOTrainer, "_compute_loss")], None),
    "backward": ([(Accelerator, "backward")], None),
    "clip + optimizer": ([(Trainer, "_clip_grad_norm"), (AcceleratedOptimizer, "step")], None),
    "regroup": (
        [(LengthGroupedGRPOTrainer, "micro_batches"), (CostAwareGRPOTrainer, "micro_batches")],
        None,
    ),
    "draws": ([(CostAwareGRPOTrainer, "resample_rollouts")], None),
}


def _timed(totals, depth, part, condition, method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        if depth[part] or (condition is not None and not condition()):
            return method(*args, **kwargs)
        depth[part] += 1
        start = time.process_time()
        try:
            return method(*args, **kwargs)
        finally:
            totals[part] += time.process_time() - start
            depth[part] -= 1

    return wrapper


def profile_arm(config: study.StudyConfig, arm: str) -> tuple[dict[str, float], dict]:
    """CPU seconds of the update phase and of its parts for one arm (module doc), and the run."""
    totals, depth, saved = defaultdict(float), defaultdict(int), []
    for part, (methods, condition) in TIMED.items():
        for cls, name in methods:
            method = cls.__dict__[name]
            saved.append((cls, name, method))
            setattr(cls, name, _timed(totals, depth, part, condition, method))
    try:
        with tempfile.TemporaryDirectory() as workdir:
            run = study.run_job(config, ("main", 0, arm, config.lrs[0]), workdir)
    finally:
        for cls, name, method in saved:
            setattr(cls, name, method)
    out = {part: totals[part] for part in TIMED}
    out["loss (rest)"] = out.pop("loss") - out["forward"]
    out["update"] = float(sum(run["update_cpu_seconds"]))
    named = sum(out[k] for k in ("forward", "loss (rest)", "backward", "clip + optimizer"))
    out["other"] = out["update"] - named - out["regroup"] - out["draws"]
    out["processed tokens"] = float(sum(run["processed_tokens"]))
    out["optimizer steps"] = float(len(run["processed_tokens"]))
    return out, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trl_update_profile.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--iterations", type=int, default=3, help="generation batches per arm")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--hidden-size", type=int, default=64, help="Llama width (study: 64)")
    parser.add_argument("--num-layers", type=int, default=2, help="Llama layers (study: 2)")
    parser.add_argument("--out", type=Path, help="write the table (Markdown) here too")
    args = parser.parse_args(argv)
    if args.iterations < 1 or not args.lr > 0:
        parser.error("--iterations must be >= 1 and --lr > 0")
    torch.set_num_threads(1)
    try:
        config = dataclasses.replace(
            study.default_config(),
            iterations=args.iterations,
            lrs=(args.lr,),
            hidden_size=args.hidden_size,
            num_layers=args.num_layers,
            workers=1,
        ).validate()
    except ValueError as err:
        parser.error(str(err))
    rows, runs = {}, []
    for arm in config.arms:
        rows[arm], run = profile_arm(config, arm)
        runs.append(run)
    fit = report.update_cost_model(runs, study.BASELINE)["cpu"]
    cols = ("forward", "loss (rest)", "backward", "clip + optimizer", "regroup", "draws", "other")
    lines = [
        f"Update-phase CPU seconds per optimizer step, by part: Llama {args.num_layers} x "
        f"{args.hidden_size}, {args.iterations} generation batches per arm, lr {args.lr:g}, "
        f"timed wrappers; load average {os.getloadavg()[0]:.1f}.",
        "",
        "| arm | processed tokens/step | update | " + " | ".join(cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for arm, r in rows.items():
        n = r["optimizer steps"]
        lines.append(
            f"| {arm} | {r['processed tokens'] / n:.0f} | {r['update'] / n:.3f} | "
            + " | ".join(f"{r[c] / n:.3f}" for c in cols)
            + " |"
        )
    lines += [
        "",
        f"Fit over every step of every arm: CPU seconds per step = "
        f"{fit['fixed_seconds_per_step']:.3g} + {fit['seconds_per_token']:.3g} x processed tokens "
        f"(R² {fit['r2']:.2f}); token-proportional share of GRPOTrainer's step: "
        f"{fit['token_share']:.0%}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
