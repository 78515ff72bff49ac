"""Tokens drawn vs. tokens processed in TRL's GRPO update: plain, cost-aware, length-grouped.

Four trainers run the same GRPO configuration on CPU, offline, with a tiny local Llama and a
character tokenizer built in code (``tests/helpers.py``):

* ``plain``: ``trl.GRPOTrainer``;
* ``cost_aware_untrimmed``: ``CostAwareGRPOTrainer(group_by_length=False)`` (draws from p, TRL's
  micro-batches padded to the widest completion of the generation batch);
* ``uniform_grouped``: ``LengthGroupedGRPOTrainer`` (every rollout once, as plain, micro-batches
  grouped by length within each optimizer step and trimmed);
* ``cost_aware``: ``CostAwareGRPOTrainer`` (draws from p, grouped and trimmed).

How the lengths arise: the policy is an untrained, randomly initialised model sampled at
temperature 1, so each token is the end-of-sequence token with probability about 1/vocabulary;
completion lengths are roughly geometric, from 1 token to ``--max-completion`` (the run prints
their spread). Generation is seeded, so the rollouts are reproducible. The reward (does the
completion start with one of ``abcde``?) does not depend on the length, so p ~ |A|/sqrt(c)
favours short rollouts only through the cost. With ``--lr 0`` (default) the policy does not move,
so every arm sees exactly the same rollout pools (TRL's generation and shuffle draw from the same
global RNG stream in every arm; the cost-aware draws use their own generator) and the token
counts compare like for like; the update phase still runs forward, backward and optimizer step.

Per generation batch: drawn tokens (prompt + completion tokens of the rows trained on),
processed tokens (rows x padded width of every training micro-batch, prompt + completion), and
the wall time of the update phase (training steps minus generation and scoring). The shape
follows the paper's Table 2 scaled down: ``--prompts`` prompts x ``--rollouts`` rollouts per
generation batch, mini-batches of ``--prompts / 4`` prompts, so 4 optimizer steps per
generation batch.

    PYTHONPATH=. python benchmarks/bench_trl.py [--quick] [--out results/bench_trl.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import transformers
import trl
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from costsgd.integrations.trl import (
    CostAwareGRPOTrainer,
    LengthGroupedGRPOTrainer,
    rollout_costs,
)
from costsgd.torch.microbatch import padded_tokens
from tests.helpers import char_tokenizer, tiny_llama

ARMS = ("plain", "cost_aware_untrimmed", "uniform_grouped", "cost_aware")


class Measured:
    """Per generation batch: drawn and processed tokens, update and generation wall time."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches = []
        self.completion_lengths = []

    def _generate_and_score_completions(self, inputs):
        start = time.perf_counter()
        batch = super()._generate_and_score_completions(inputs)
        if self.model.training:
            self.completion_lengths += batch["completion_mask"].sum(1).tolist()
            self.batches.append(
                {"drawn": 0.0, "processed": 0, "micro": 0, "generation_s": 0.0, "step_s": 0.0}
            )
            self.batches[-1]["generation_s"] = time.perf_counter() - start
        return batch

    def _compute_loss(self, model, inputs):
        record = self.batches[-1]
        pad = self.processing_class.pad_token_id
        cost = (
            inputs["rollout_tokens"] if "rollout_tokens" in inputs else rollout_costs(inputs, pad)
        )
        record["drawn"] += float(cost.sum())
        record["processed"] += padded_tokens(inputs)
        record["micro"] += 1
        return super()._compute_loss(model, inputs)

    def training_step(self, model, inputs, num_items_in_batch):
        start = time.perf_counter()
        out = super().training_step(model, inputs, num_items_in_batch)
        self.batches[-1]["step_s"] += time.perf_counter() - start
        return out


def _classes():
    def measured(base):
        return type(f"Measured{base.__name__}", (Measured, base), {})

    return {
        "plain": (measured(GRPOTrainer), {}),
        "cost_aware_untrimmed": (measured(CostAwareGRPOTrainer), {"group_by_length": False}),
        "uniform_grouped": (measured(LengthGroupedGRPOTrainer), {}),
        "cost_aware": (measured(CostAwareGRPOTrainer), {}),
    }


def _reward(completions, **kwargs):
    return [float(c[:1] in set("abcde")) if c else 0.0 for c in completions]


def run_arm(arm, args, workdir):
    cls, extra = _classes()[arm]
    tokenizer = char_tokenizer()
    micro = args.micro_batch
    mini_batch = args.prompts // 4 * args.rollouts  # rollouts per optimizer step (4 per batch)
    config = GRPOConfig(
        output_dir=str(workdir / arm),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=mini_batch // micro,
        steps_per_generation=4 * mini_batch // micro,
        num_generations=args.rollouts,
        max_completion_length=args.max_completion,
        max_steps=4 * args.generations,
        learning_rate=args.lr,
        loss_type="dapo",
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        seed=args.seed,
        disable_tqdm=True,
        log_level="error",
    )
    prompts = ["abc", "de", "fghij", "i", "bb", "jjj", "hg", "a", "cc", "ehd"]
    data = Dataset.from_dict({"prompt": prompts * (args.prompts * args.generations)})
    if isinstance(cls, type) and issubclass(cls, CostAwareGRPOTrainer):
        extra = {**extra, "seed": args.seed}
    trainer = cls(
        model=tiny_llama(len(tokenizer), hidden_size=args.hidden, max_positions=128, seed=0),
        reward_funcs=_reward,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        **extra,
    )
    trainer.remove_callback(transformers.PrinterCallback)
    trainer.train()
    for record in trainer.batches:
        record["update_s"] = record["step_s"] - record["generation_s"]
    return trainer.batches, trainer.completion_lengths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=32, help="prompts per generation batch")
    ap.add_argument("--rollouts", type=int, default=8, help="rollouts per prompt")
    ap.add_argument("--micro-batch", type=int, default=4, help="per_device_train_batch_size")
    ap.add_argument("--generations", type=int, default=3, help="generation batches per run")
    ap.add_argument("--max-completion", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128, help="model width")
    ap.add_argument("--lr", type=float, default=0.0)
    ap.add_argument("--rounds", type=int, default=3, help="runs per arm, arms interleaved")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="16 prompts x 4, 2 batches, 1 round")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    if args.quick:
        args.prompts, args.rollouts, args.generations, args.rounds = 16, 4, 2, 1
    if args.prompts % 4 or (args.prompts // 4 * args.rollouts) % args.micro_batch:
        ap.error("--prompts must be a multiple of 4 and a mini-batch a multiple of --micro-batch")
    torch.set_num_threads(args.threads)
    runs = {arm: [] for arm in ARMS}
    lengths = None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for arm in ARMS:
                batches, arm_lengths = run_arm(arm, args, Path(tmp))
                runs[arm].append(batches)
                lengths = lengths or arm_lengths
    summary = {}
    for arm in ARMS:
        first = runs[arm][0]
        summary[arm] = {
            "drawn_tokens": [b["drawn"] for b in first],
            "processed_tokens": [b["processed"] for b in first],
            "micro_batches": [b["micro"] for b in first],
            "update_s_median": statistics.median(b["update_s"] for r in runs[arm] for b in r),
            "drawn_per_batch": statistics.mean(b["drawn"] for b in first),
            "processed_per_batch": statistics.mean(b["processed"] for b in first),
        }

    def saving(arm, base, key):
        return 1.0 - summary[arm][key] / summary[base][key]

    comparisons = {
        "cost_aware vs uniform_grouped (sampling effect)": ("cost_aware", "uniform_grouped"),
        "cost_aware vs plain (sampling + padding)": ("cost_aware", "plain"),
        "uniform_grouped vs plain (padding effect)": ("uniform_grouped", "plain"),
        "cost_aware_untrimmed vs plain (draws without trimming)": ("cost_aware_untrimmed", "plain"),
    }
    savings = {
        name: {
            "drawn": saving(a, b, "drawn_per_batch"),
            "processed": saving(a, b, "processed_per_batch"),
            "update_time": saving(a, b, "update_s_median"),
        }
        for name, (a, b) in comparisons.items()
    }
    sorted_lengths = sorted(lengths)
    spread = {
        "min": sorted_lengths[0],
        "p10": sorted_lengths[len(lengths) // 10],
        "median": statistics.median(lengths),
        "p90": sorted_lengths[9 * len(lengths) // 10],
        "max": sorted_lengths[-1],
    }
    print(f"completion lengths (first run): {spread}")
    print("| arm | drawn tokens / batch | processed tokens / batch | update s / batch (median) |")
    print("|---|---|---|---|")
    for arm in ARMS:
        s = summary[arm]
        print(
            f"| {arm} | {s['drawn_per_batch']:.0f} | {s['processed_per_batch']:.0f} | "
            f"{s['update_s_median']:.3f} |"
        )
    print("\n| comparison | drawn saving | processed saving | update-time saving |")
    print("|---|---|---|---|")
    for name, s in savings.items():
        print(f"| {name} | {s['drawn']:.1%} | {s['processed']:.1%} | {s['update_time']:.1%} |")
    gap = savings["cost_aware vs uniform_grouped (sampling effect)"]
    print(f"\nprocessed - drawn saving (sampling effect): {gap['processed'] - gap['drawn']:+.1%}")
    if args.out:
        result = {
            "config": vars(args),
            "completion_lengths": spread,
            "arms": summary,
            "runs": runs,
            "savings": savings,
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "trl": trl.__version__,
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
            },
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
