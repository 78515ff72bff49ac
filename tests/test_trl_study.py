"""The TRL training study: walk task adapter, phase timing, report arithmetic, smoke pipeline."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_DISABLED"] = "true"

import copy
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GenerationConfig, PrinterCallback
from trl import GRPOConfig, GRPOTrainer

from costsgd.experiments.grpo.study import DEFAULT_WALK
from costsgd.experiments.grpo.task import EOS, PAD, WalkTask, references, rewards, sample_prompts
from costsgd.experiments.trl_study import phases, report, study, walk
from costsgd.integrations.trl import CostAwareGRPOTrainer, LengthGroupedGRPOTrainer
from costsgd.torch import cost_aware_probs

TASK = WalkTask(modulus=7, max_stride=2, max_steps=6, max_response_len=5)
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_tokenizer_ids_are_the_tasks_ids():
    task = DEFAULT_WALK
    prompts = sample_prompts(task, 64, torch.Generator().manual_seed(0))
    tok = walk.walk_tokenizer(task)
    ids = tok(walk.prompt_texts(prompts))["input_ids"]
    assert torch.equal(torch.tensor(ids), prompts.tokens)
    assert len(tok) == task.vocab_size
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, EOS)


def test_reward_is_the_tasks_exact_match():
    g = torch.Generator().manual_seed(1)
    prompts = sample_prompts(TASK, 200, g)
    ref = references(TASK, prompts)
    # Corrupt some references: a wrong token, a missing EOS (truncated), EOS moved early.
    responses = ref.clone()
    which = torch.randint(0, 4, (200,), generator=g)
    responses[which == 1, 0] = 4 + (responses[which == 1, 0] - 4 + 1) % TASK.modulus
    responses[which == 2] = torch.where(responses[which == 2] == EOS, 4, responses[which == 2])
    responses[which == 3, 0] = EOS
    responses[which == 3, 1:] = PAD
    expected = rewards(TASK, prompts, responses).tolist()
    completion_ids = [[t for t in row if t != PAD] for row in responses.tolist()]
    x0 = (prompts.tokens[:, 1] - 4).tolist()
    stride = (prompts.tokens[:, 2] - 4).tolist()
    got = walk.walk_reward(TASK)(completion_ids=completion_ids, x0=x0, stride=stride)
    assert got == expected
    assert 0 < sum(got) < 200


def test_dataset_columns_rebuild_the_prompts():
    data = walk.prompt_dataset(TASK, 32, torch.Generator().manual_seed(3))
    prompts = sample_prompts(TASK, 32, torch.Generator().manual_seed(3))
    assert data["prompt"] == walk.prompt_texts(prompts)
    assert data["x0"] == (prompts.tokens[:, 1] - 4).tolist()
    assert data["stride"] == (prompts.tokens[:, 2] - 4).tolist()


def test_exact_accuracy_is_the_probability_that_a_sample_is_correct():
    # TRL samples with do_sample, temperature 1, top_k 0, top_p 1 (its defaults).
    task = WalkTask(modulus=5, max_stride=2, max_steps=4, max_response_len=4)
    model = walk.build_policy(task, hidden_size=16, num_layers=1, num_heads=2, seed=0)
    walk.warm_start(
        model, task, steps=15, batch_size=16, lr=1e-2, generator=torch.Generator().manual_seed(0)
    )
    prompts = sample_prompts(task, 4, torch.Generator().manual_seed(5))
    exact = walk.correct_probability(model, task, prompts)
    k = 3000
    config = GenerationConfig(
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=task.max_response_len,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    torch.manual_seed(0)
    ids = prompts.tokens.repeat_interleave(k, 0)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
        )
    completions = out[:, 4:]
    completions = torch.nn.functional.pad(
        completions, (0, task.max_response_len - completions.shape[1])
    )
    after_eos = (completions == EOS).long().cumsum(1) - (completions == EOS).long() > 0
    completions = torch.where(after_eos, PAD, completions)
    sampled = rewards(task, ids_prompts(prompts, k), completions).reshape(4, k).mean(1)
    assert bool(((exact > 0.02) & (exact < 0.98)).any())  # a non-trivial check
    assert torch.allclose(sampled, exact, atol=4 * math.sqrt(0.25 / k))


def ids_prompts(prompts, k):
    return type(prompts)(*(x.repeat_interleave(k, 0) for x in prompts))


def test_pool_statistics_match_the_adapters_probabilities():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, generator=g) * (torch.rand(64, generator=g) < 0.4)
    c = torch.randint(5, 80, (64,), generator=g).double()
    s = phases.pool_statistics(a, c)
    p = cost_aware_probs(a, c)
    assert s["pstar_cost_ratio"] == pytest.approx(float((p * c).sum() / c.mean()))
    assert s["nonzero_cost_ratio"] == pytest.approx(float(c[a != 0].mean() / c.mean()))
    assert s["zero_advantage_fraction"] == pytest.approx(float((a == 0).double().mean()))


def _trainer(cls, tmp_path, *, lr=0.0, evaluate=None, **kwargs):
    torch.manual_seed(0)
    task = study.smoke_config().task
    model = walk.build_policy(task, hidden_size=16, num_layers=1, num_heads=2, seed=0)
    walk.warm_start(
        model, task, steps=30, batch_size=16, lr=1e-2, generator=torch.Generator().manual_seed(0)
    )
    args = GRPOConfig(
        output_dir=str(tmp_path / cls.__name__),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        steps_per_generation=4,
        num_generations=4,
        max_completion_length=task.max_response_len,
        max_steps=4,
        learning_rate=lr,
        report_to="none",
        save_strategy="no",
        logging_steps=100,
        use_cpu=True,
        bf16=False,
        seed=7,
        disable_tqdm=True,
        log_level="error",
    )
    trainer = phases.instrumented(cls)(
        model=model,
        reward_funcs=walk.walk_reward(task),
        args=args,
        train_dataset=walk.prompt_dataset(task, 8, torch.Generator().manual_seed(1)),
        processing_class=walk.walk_tokenizer(task),
        evaluate=evaluate,
        eval_every=2,
        **kwargs,
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def test_token_counts_of_every_arm_on_the_same_pools(tmp_path):
    # With learning rate 0 the policy does not move: every arm generates the same pools.
    logs = {}
    for cls in (GRPOTrainer, LengthGroupedGRPOTrainer, CostAwareGRPOTrainer):
        trainer = _trainer(cls, tmp_path)
        trainer.train()
        logs[cls.__name__] = trainer.phase_log
        if cls is LengthGroupedGRPOTrainer:
            # The trainer's own running totals agree with the instrumentation's.
            assert trainer.token_totals["drawn"] == sum(trainer.phase_log.drawn_tokens)
            assert trainer.token_totals["processed"] == sum(trainer.phase_log.processed_tokens)
        if cls is CostAwareGRPOTrainer:
            assert sum(trainer.phase_log.drawn_tokens[-2:]) == pytest.approx(
                float(trainer.cost_aware_draws["rollout_tokens"].sum())
            )
    plain, grouped, aware = (
        logs[k] for k in ("GRPOTrainer", "LengthGroupedGRPOTrainer", "CostAwareGRPOTrainer")
    )
    assert plain.pool_tokens == grouped.pool_tokens == aware.pool_tokens
    assert len(plain.drawn_tokens) == 4 and len(plain.pool_tokens) == 2
    # Every rollout once: the two optimizer steps of a generation batch draw the pool.
    for log in (plain, grouped):
        per_batch = np.add.reduceat(log.drawn_tokens, [0, 2])
        assert per_batch.tolist() == log.pool_tokens
    assert sum(grouped.processed_tokens) < sum(plain.processed_tokens)
    assert all(p >= d for p, d in zip(aware.processed_tokens, aware.drawn_tokens, strict=True))
    assert plain.pstar_cost_ratio == aware.pstar_cost_ratio


class FakeTime:
    """A clock that moves only when a test advances it (wall and CPU alike)."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    process_time = perf_counter


def test_update_time_excludes_generation_and_includes_the_draws(tmp_path, monkeypatch):
    clock = FakeTime()
    monkeypatch.setattr(phases, "time", clock)
    generate = GRPOTrainer._generate_single_turn
    resample = CostAwareGRPOTrainer.resample_rollouts

    def slow_generation(self, *args, **kwargs):
        clock.now += 100.0
        return generate(self, *args, **kwargs)

    def slow_draws(self, batch):
        clock.now += 10.0
        return resample(self, batch)

    def slow_loss(self, model, inputs):
        clock.now += 1.0
        return compute_loss(self, model, inputs)

    compute_loss = GRPOTrainer._compute_loss
    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", slow_generation)
    monkeypatch.setattr(CostAwareGRPOTrainer, "resample_rollouts", slow_draws)
    monkeypatch.setattr(GRPOTrainer, "_compute_loss", slow_loss)
    trainer = _trainer(CostAwareGRPOTrainer, tmp_path, evaluate=lambda m: clock.now)
    trainer.train()
    log = trainer.phase_log
    assert log.generation_seconds == [100.0, 100.0]
    assert log.generation_cpu_seconds == [100.0, 100.0]
    # Two micro-batches per optimizer step; the draws at the first step of each generation batch.
    assert log.update_seconds == [12.0, 2.0, 12.0, 2.0]
    assert log.update_cpu_seconds == log.update_seconds


def test_evaluation_runs_before_training_every_few_steps_and_outside_the_clock(
    tmp_path, monkeypatch
):
    clock = FakeTime()
    monkeypatch.setattr(phases, "time", clock)

    def evaluate(model):
        clock.now += 1000.0
        return 0.5

    trainer = _trainer(GRPOTrainer, tmp_path, evaluate=evaluate)
    trainer.train()
    log = trainer.phase_log
    assert log.eval_step == [0, 2, 4]
    assert log.eval_accuracy == [0.5, 0.5, 0.5]
    assert log.update_seconds == [0.0] * 4


def _fake_run(arm, seed, accuracy, processed, seconds, *, drawn=None):
    """A run of 10 optimizer steps (5 generation batches of 2), evaluated every 2 steps."""
    steps = 10
    drawn = processed if drawn is None else drawn
    return {
        "stage": "main",
        "seed": seed,
        "arm": arm,
        "lr": 1e-3,
        "seconds": 1.0,
        "cpu_seconds": 1.0,
        "load_average": [1.0, 1.0],
        "update_seconds": [seconds] * steps,
        "update_cpu_seconds": [seconds] * steps,
        "drawn_tokens": [drawn] * steps,
        "processed_tokens": [processed] * steps,
        "generation_seconds": [1.0] * 5,
        "generation_cpu_seconds": [1.0] * 5,
        "pool_tokens": [2 * drawn] * 5,
        "zero_advantage_fraction": [0.5] * 5,
        "pstar_cost_ratio": [0.5] * 5,
        "nonzero_cost_ratio": [0.6] * 5,
        "eval_step": [0, 2, 4, 6, 8, 10],
        "eval_accuracy": accuracy,
    }


def _fake_results(arms):
    cfg = study.config_dict(study.smoke_config(arms=tuple(arms), seeds=(0, 1, 2)))
    return {"config": json.loads(json.dumps(cfg)), "lr": 1e-3, "runs": [], "complete": True}


def test_report_savings_on_constructed_runs():
    curve = [0.1, 0.2, 0.3, 0.4, 0.4, 0.4]
    results = _fake_results(["GRPOTrainer", "CostAwareGRPOTrainer(p*)"])
    for s in (0, 1, 2):
        results["runs"] += [
            _fake_run("GRPOTrainer", s, curve, processed=100, seconds=2.0),
            # Half the processed tokens per step, 40% less update time, same curve.
            _fake_run("CostAwareGRPOTrainer(p*)", s, curve, processed=50, seconds=1.2, drawn=60),
        ]
    s = report.summarize(results)
    row = s["rows"][1]
    # plateau = mean over the last 20% of steps (steps 8 and 10): 0.4; gain 0.3.
    assert s["baseline_gain"] == pytest.approx(0.3)
    assert row["processed"]["saving"] == pytest.approx(0.5)
    assert row["drawn"]["saving"] == pytest.approx(0.4)
    assert row["update_seconds"]["saving"] == pytest.approx(0.4)
    assert row["plateau_vs_baseline"]["pp"] == pytest.approx(0.0)
    assert row["expected_saving"] == pytest.approx(0.5)
    assert row["target"]["ratio"] == pytest.approx(0.8)
    assert row["target"]["met"]
    assert row["verdict"]["verdict"] == "reproduced"
    text = report.format_report(s)
    assert "CostAwareGRPOTrainer(p\\*): reproduced" in text


def test_report_target_fails_when_time_does_not_follow_tokens_or_plateau_drops():
    curve = [0.1, 0.2, 0.3, 0.4, 0.4, 0.4]
    low = [0.1, 0.2, 0.3, 0.35, 0.37, 0.37]
    results = _fake_results(["GRPOTrainer", "CostAwareGRPOTrainer(p*)"])
    for s in (0, 1, 2):
        results["runs"] += [
            _fake_run("GRPOTrainer", s, curve, processed=100, seconds=2.0),
            _fake_run("CostAwareGRPOTrainer(p*)", s, curve, processed=50, seconds=1.8),
        ]
    assert not report.summarize(results)["rows"][1]["target"]["met"]
    for r in results["runs"]:
        if r["arm"] != "GRPOTrainer":
            r["update_seconds"] = [1.0] * 10
            r["eval_accuracy"] = low
    row = report.summarize(results)["rows"][1]
    assert row["plateau_vs_baseline"]["pp"] == pytest.approx(-3.0)
    assert not row["target"]["met"]


def _benchmark():
    spec = importlib.util.spec_from_file_location(
        "trl_study_bench", ROOT / "benchmarks" / "trl_study.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_study_runs_the_whole_pipeline_and_resumes(tmp_path, capsys):
    bench = _benchmark()
    out = tmp_path / "smoke"
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    for name in ("trl_study.json", "trl_study.md", "trl_study_summary.json", "trl_study.png"):
        assert (out / name).stat().st_size > 0
    results = study.load_results(out / "trl_study.json")
    cfg = study.smoke_config()
    assert results["complete"]
    assert results["lr"] in cfg.lrs
    assert len(results["runs"]) == len(cfg.sweep_jobs()) + len(cfg.main_jobs(results["lr"]))
    T = cfg.steps_per_iteration
    for r in results["runs"]:
        assert len(r["update_seconds"]) == cfg.iterations * T
        assert len(r["pool_tokens"]) == cfg.iterations
        assert r["eval_step"] == [T * i for i in range(cfg.iterations + 1)]
    summary = json.loads((out / "trl_study_summary.json").read_text())
    assert [row["arm"] for row in summary["rows"]] == list(study.ARMS)
    assert "## Verdict and target" in (out / "trl_study.md").read_text()
    # A second invocation finds every run done: nothing is rerun.
    before = (out / "trl_study.json").read_text()
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    after = json.loads((out / "trl_study.json").read_text())
    assert after["runs"] == json.loads(before)["runs"]
    # A file written before the device options existed resumes too (they take their defaults).
    older = study.load_results(out / "trl_study.json")
    del older["config"]["device"], older["config"]["use_vllm"]
    study.save_results(older, out / "trl_study.json")
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    assert study.load_results(out / "trl_study.json")["runs"] == after["runs"]
    # An interrupted study resumes: drop two runs, run again, they come back.
    partial = copy.deepcopy(after)
    partial["runs"] = partial["runs"][:-2]
    partial["complete"] = False
    study.save_results(partial, out / "trl_study.json")
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    resumed = study.load_results(out / "trl_study.json")
    assert len(resumed["runs"]) == len(after["runs"]) and resumed["complete"]
    assert resumed["runs"][:-2] == after["runs"][:-2]


def test_another_configuration_in_the_output_folder_is_refused(tmp_path, capsys):
    bench = _benchmark()
    out = tmp_path / "other"
    results = _fake_results(["GRPOTrainer"])
    results["config"]["iterations"] = 99
    study.save_results(results, out / "trl_study.json")
    with pytest.raises(SystemExit) as err:
        bench.main(["--smoke", "--out", str(out)])
    assert err.value.code == 2
    assert "another configuration" in capsys.readouterr().err


def test_bad_configuration_names_the_field():
    with pytest.raises(ValueError, match="minibatch_size"):
        study.smoke_config(minibatch_size=6)
    with pytest.raises(ValueError, match="arms"):
        study.smoke_config(arms=("CostAwareGRPOTrainer(p*)",))
    with pytest.raises(ValueError, match="sweep_seeds"):
        study.smoke_config(sweep_seeds=(0,))
    with pytest.raises(ValueError, match="device"):
        study.smoke_config(device="tpu")
    with pytest.raises(ValueError, match="use_vllm needs device='cuda'"):
        study.smoke_config(use_vllm=True)
    assert (
        study.config_from_dict(json.loads(json.dumps(study.config_dict(study.default_config()))))
        == study.default_config()
    )
