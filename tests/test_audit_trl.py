"""TRL shadow mode: a shadowed GRPOTrainer trains bit-for-bit as a plain one, and audits its pools."""

import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_DISABLED"] = "true"

import numpy as np
import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from costsgd.audit import SAMPLERS, audit_files
from costsgd.integrations.trl_shadow import cost_aware_shadow
from tests.helpers import char_tokenizer, tiny_llama

B, GENERATIONS, STEPS = 4, 4, 3

torch.set_num_threads(1)


def _reward(completions, **kwargs):
    # about half the groups all-equal (zero advantage), lengths vary
    return [float(completion.count("a") > 1) for completion in completions]


class Recorded(GRPOTrainer):
    """Records every scored batch TRL hands on to training."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches = []

    def _generate_and_score_completions(self, inputs):
        batch = super()._generate_and_score_completions(inputs)
        if self.model.training:
            self.batches.append({k: v for k, v in batch.items() if torch.is_tensor(v)})
        return batch


def _train(tmp_path, shadow_pools=None, shadow=False):
    tokenizer = char_tokenizer()
    args = GRPOConfig(
        output_dir=str(tmp_path),
        max_completion_length=8,
        gradient_accumulation_steps=2,
        max_steps=STEPS,
        learning_rate=1e-2,
        per_device_train_batch_size=B,
        num_generations=GENERATIONS,
        mask_truncated_completions=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    data = Dataset.from_dict({"prompt": ["abc", "de", "fghij", "i", "bb", "jjj"] * 4})
    trainer = Recorded(
        model=tiny_llama(len(tokenizer)),
        reward_funcs=_reward,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
    )
    handle = cost_aware_shadow(trainer, pools=shadow_pools) if shadow else None
    trainer.train()
    return trainer, handle


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shadow")
    plain, _ = _train(tmp / "plain")
    shadowed, handle = _train(tmp / "shadow", shadow_pools=tmp / "pools.jsonl", shadow=True)
    return plain, shadowed, handle, tmp / "pools.jsonl"


def test_shadow_run_trains_bit_for_bit_like_a_plain_run(runs):
    plain, shadowed, _, _ = runs
    clock = ("step_time", "train_runtime", "train_samples_per_second", "train_steps_per_second")
    for a, b in zip(plain.state.log_history, shadowed.state.log_history, strict=True):
        trl = {k: v for k, v in b.items() if not k.startswith("cost_aware/") and k not in clock}
        assert {k: v for k, v in a.items() if k not in clock} == trl
    assert [h["loss"] for h in plain.state.log_history if "loss" in h] == [
        h["loss"] for h in shadowed.state.log_history if "loss" in h
    ]
    for (name, p), (_, q) in zip(
        plain.model.named_parameters(), shadowed.model.named_parameters(), strict=True
    ):
        assert torch.equal(p, q), name
    for x, y in zip(plain.batches, shadowed.batches, strict=True):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_shadow_logs_expected_ratios_next_to_trl(runs):
    _, shadowed, handle, _ = runs
    logged = [h for h in shadowed.state.log_history if "loss" in h]
    for name in [*SAMPLERS, "zero_advantage_fraction"]:
        assert all(f"cost_aware/expected/{name}" in h for h in logged), name
    assert handle.generations == len(shadowed.batches)


def test_shadow_pools_are_trl_pools_in_the_generic_format(runs):
    _, shadowed, handle, path = runs
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == sum(b["advantages"].numel() for b in shadowed.batches)
    for g, batch in enumerate(shadowed.batches):
        mine = [r for r in rows if r["step"] == g]
        np.testing.assert_array_equal([r["advantage"] for r in mine], batch["advantages"].double())
        np.testing.assert_array_equal(
            [r["prompt_tokens"] for r in mine], batch["prompt_mask"].sum(1)
        )
        # groups are TRL's: num_generations consecutive rollouts
        assert [r["group"] for r in mine] == [f"{g}-{i // GENERATIONS}" for i in range(len(mine))]
        masked = (batch["completion_mask"].sum(1) == 0).tolist()
        assert [r["truncated"] for r in mine] == masked
    result = audit_files([path])
    assert result["advantages_from"] == "advantage" and result["summary"]["pools"] == len(
        shadowed.batches
    )
    last = result["steps"][-1]["expected_drawn_ratio"]
    assert last == pytest.approx(handle.last.expected_drawn_ratio)


def test_shadow_refuses_what_is_not_a_grpo_trainer():
    with pytest.raises(TypeError, match=r"needs a trl\.GRPOTrainer"):
        cost_aware_shadow(object())
