"""costsgd.integrations.trl: real GRPO steps in TRL with a tiny local model (CPU, offline)."""

import os
import subprocess
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_DISABLED"] = "true"

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from costsgd.integrations.trl import CostAwareGRPOTrainer, LengthGroupedGRPOTrainer
from costsgd.torch import cost_aware_probs, importance_weights, sample_minibatches
from costsgd.torch.microbatch import completion_widths
from tests.helpers import char_tokenizer, tiny_llama

B, SPG, GENERATIONS, STEPS, SEED = 4, 2, 4, 3, 11

torch.set_num_threads(1)


def _reward(completions, **kwargs):
    return [completion.count("a") + 0.3 * len(completion) for completion in completions]


class Recording:
    """Records each scored pool, its plan and draws, and every micro-batch's loss."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pools, self.micro = [], []

    def resample_rollouts(self, batch):
        out = super().resample_rollouts(batch)
        self.pools.append((batch, self.cost_aware_plan, out))
        return out

    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        self.micro.append((inputs, loss.detach()))
        return loss


class RecordingTrainer(Recording, CostAwareGRPOTrainer):
    pass


class RecordingGrouped(Recording, LengthGroupedGRPOTrainer):
    pass


class RecordingPlain(Recording, GRPOTrainer):
    pass


def _trainer(tmp_path, loss_type="grpo", cls=RecordingTrainer, config=None, **kwargs):
    tokenizer = char_tokenizer()
    config = {
        "max_completion_length": 8,
        "gradient_accumulation_steps": SPG,  # steps_per_generation defaults to this
        "max_steps": STEPS,
        "learning_rate": 1e-2,
        **(config or {}),
    }
    args = GRPOConfig(
        **config,
        output_dir=str(tmp_path),
        per_device_train_batch_size=B,
        num_generations=GENERATIONS,
        loss_type=loss_type,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    data = Dataset.from_dict({"prompt": ["abc", "de", "fghij", "i", "bb", "jjj"] * 4})
    if issubclass(cls, CostAwareGRPOTrainer):
        kwargs.setdefault("seed", SEED)
    return cls(
        model=tiny_llama(len(tokenizer)),
        reward_funcs=_reward,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        **kwargs,
    )


def _rows(batch, weights=True):
    """Rows of a batch as hashable tuples, completion padding stripped."""
    widths = completion_widths(batch["completion_mask"]).tolist()
    w = batch["cost_aware_weights"] if weights else torch.ones(len(widths))
    return sorted(
        (tuple(ids[:n].tolist()), float(a), float(x))
        for ids, n, a, x in zip(
            batch["completion_ids"], widths, batch["advantages"], w, strict=True
        )
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    trainer = _trainer(tmp_path_factory.mktemp("grpo"))
    trainer.train()
    return trainer


@pytest.fixture(scope="module")
def two_steps(tmp_path_factory):
    # The paper's regime: 2 optimizer steps per generation batch (steps_per_generation=4,
    # gradient_accumulation_steps=2). learning_rate=0 keeps the ratio at 1 on the second step.
    trainer = _trainer(
        tmp_path_factory.mktemp("two"),
        config={"steps_per_generation": 4, "max_steps": 4, "learning_rate": 0.0},
    )
    trainer.train()
    return trainer


def test_trained_rollouts_are_draws_from_p(trained):
    assert len(trained.pools) == STEPS
    replay = torch.Generator().manual_seed(SEED)
    nonzero = 0
    for pool, plan, out in trained.pools:
        lengths = pool["prompt_mask"].sum(1) + pool["completion_mask"].sum(1)
        p = cost_aware_probs(pool["advantages"], lengths)
        torch.testing.assert_close(plan.probs, p)
        idx = sample_minibatches(p, B, num_batches=SPG, generator=replay)
        assert torch.equal(plan.indices, idx)  # exactly the draws of Algorithm 2
        flat = idx.reshape(-1)
        assert bool((p[flat] > 0).all())
        assert torch.equal(out["completion_ids"], pool["completion_ids"][flat])
        assert torch.equal(out["advantages"], pool["advantages"][flat])
        assert out["num_items_in_batch"] is pool["num_items_in_batch"]  # pool-level denominator
        torch.testing.assert_close(out["cost_aware_weights"], importance_weights(p, flat))
        nonzero += int((pool["advantages"] != 0).sum())
    assert nonzero > 0  # the run carried a signal, so p was not the all-zero fallback


def test_every_draw_is_trained_on_once_with_its_weight(trained):
    per_generation = [trained.micro[i : i + SPG] for i in range(0, len(trained.micro), SPG)]
    assert len(per_generation) == STEPS
    for (_, _, out), micro in zip(trained.pools, per_generation, strict=True):
        trained_rows = sorted(r for inputs, _ in micro for r in _rows(inputs))
        assert trained_rows == _rows(out)


def test_weights_reach_the_loss(trained):
    # loss_type="grpo", beta=0, on-policy first pass: the ratio is exactly 1, so the micro-batch
    # loss is -mean_k(w_k A_k) / gradient_accumulation_steps.
    for inputs, loss in trained.micro:
        w, adv = inputs["cost_aware_weights"], inputs["advantages"]
        assert not torch.allclose(w, torch.ones_like(w)) or bool((adv == 0).all())
        expected = -(w * adv).mean() / SPG
        torch.testing.assert_close(loss, expected.to(loss.dtype), rtol=1e-5, atol=1e-7)


def test_each_optimizer_step_is_the_weighted_estimate_from_its_own_plan_rows(two_steps):
    ga, per_generation = 2, 4
    assert len(two_steps.micro) == 4 * ga
    for g, (pool, plan, _) in enumerate(two_steps.pools):
        for t in range(per_generation // ga):
            micro = two_steps.micro[g * per_generation + t * ga : g * per_generation + (t + 1) * ga]
            rows = plan.indices[t * ga : (t + 1) * ga].reshape(-1)  # this step's B = 8 draws
            w = plan.weights[t * ga : (t + 1) * ga].reshape(-1)
            adv = pool["advantages"][rows]
            step_pool = {
                k: pool[k][rows] for k in ("completion_ids", "completion_mask", "advantages")
            }
            trained_rows = sorted(r for inputs, _ in micro for r in _rows(inputs, weights=False))
            assert trained_rows == _rows(step_pool, weights=False)  # no draw crosses a step
            step_loss = sum(loss for _, loss in micro)
            estimate = -(w * adv).mean()  # Eq. 22: (1/B) sum_k w_k A_k over the step's draws
            torch.testing.assert_close(
                step_loss, estimate.to(step_loss.dtype), rtol=1e-5, atol=1e-7
            )
            for inputs, _ in micro:  # each micro-batch trimmed to its own longest completion
                width = int(completion_widths(inputs["completion_mask"]).max())
                assert inputs["completion_ids"].shape[1] == max(width, 1)
                assert inputs["completion_mask"].shape[1] == inputs["completion_ids"].shape[1]


def test_token_metrics_are_in_log_history_per_step_and_cumulatively(two_steps):
    logs = [h for h in two_steps.state.log_history if "tokens/processed" in h]
    assert len(logs) == 4
    pools = [float(pool["rollout_tokens"].sum()) for pool, _, _ in two_steps.pools]
    drawn, processed = [], []
    for g in range(2):
        for t in range(2):
            micro = [inputs for inputs, _ in two_steps.micro[4 * g + 2 * t : 4 * g + 2 * t + 2]]
            drawn.append(sum(float(m["rollout_tokens"].sum()) for m in micro))
            processed.append(
                sum(
                    m["prompt_ids"].shape[0]
                    * (m["prompt_ids"].shape[1] + m["completion_ids"].shape[1])
                    for m in micro
                )
            )
    assert [h["tokens/drawn"] for h in logs] == pytest.approx(drawn)
    assert [h["tokens/processed"] for h in logs] == pytest.approx(processed)
    assert [h.get("tokens/pool", 0.0) for h in logs] == pytest.approx([pools[0], 0, pools[1], 0])
    cumulative = torch.tensor(processed).cumsum(0).tolist()
    assert [h["tokens/processed_total"] for h in logs] == pytest.approx(cumulative)
    assert logs[-1]["tokens/drawn_total"] == pytest.approx(sum(drawn))
    assert logs[-1]["tokens/pool_total"] == pytest.approx(sum(pools))
    for h, (_, plan, _) in zip(logs[::2], two_steps.pools, strict=True):
        w = plan.weights.double().reshape(-1)
        assert h["cost_aware/ess"] == pytest.approx(float(w.sum() ** 2 / (w * w).sum()), rel=1e-6)
        assert h["cost_aware/weight_min"] == pytest.approx(float(w.min()), rel=1e-6)
        assert h["cost_aware/weight_max"] == pytest.approx(float(w.max()), rel=1e-6)
        assert h["cost_aware/weight_mean"] == pytest.approx(1.0, abs=1e-6)
    untrimmed = [
        8 * (pool["prompt_ids"].shape[1] + pool["completion_ids"].shape[1])
        for pool, _, _ in two_steps.pools
        for _ in range(2)
    ]
    assert all(p <= u for p, u in zip(processed, untrimmed, strict=True))
    assert processed != untrimmed


def test_grouped_uniform_steps_equal_plain_grpo_steps(tmp_path):
    # Same seed: TRL's shuffle puts the same rollouts in each optimizer step; grouping and
    # trimming only change the micro-batches, so each step's loss is unchanged (learning_rate=0
    # keeps the second step's ratio at 1, so rounding in the first update cannot move it).
    config = {
        "steps_per_generation": 4,
        "max_steps": 2,
        "max_completion_length": 12,
        "learning_rate": 0.0,
    }
    plain = _trainer(tmp_path / "plain", cls=RecordingPlain, config=config)
    plain.train()
    grouped = _trainer(tmp_path / "grouped", cls=RecordingGrouped, config=config)
    grouped.train()
    assert len(plain.micro) == len(grouped.micro) == 4
    narrower = 0
    for t in range(2):
        a, b = plain.micro[2 * t : 2 * t + 2], grouped.micro[2 * t : 2 * t + 2]
        assert sorted(r for m, _ in a for r in _rows(m, False)) == sorted(
            r for m, _ in b for r in _rows(m, False)
        )
        torch.testing.assert_close(sum(x for _, x in b), sum(x for _, x in a), rtol=1e-5, atol=1e-6)
        narrower += sum(m["completion_ids"].shape[1] for m, _ in b) < sum(
            m["completion_ids"].shape[1] for m, _ in a
        )
    assert narrower > 0  # the trimming did remove padding
    processed = [
        h["tokens/processed"] for h in grouped.state.log_history if "tokens/processed" in h
    ]
    drawn = [h["tokens/drawn"] for h in grouped.state.log_history if "tokens/drawn" in h]
    assert all(d <= p for d, p in zip(drawn, processed, strict=True))


def test_bnpo_loss_is_refused_because_it_divides_by_drawn_tokens(tmp_path):
    for cls in (CostAwareGRPOTrainer, LengthGroupedGRPOTrainer):
        with pytest.raises(ValueError, match="loss_type 'bnpo'"):
            _trainer(tmp_path, loss_type="bnpo", cls=cls)


def test_vespo_weighted_gradient_is_dapos_on_policy(trained, monkeypatch):
    # vespo: -phi(r, sign A) * w A * log p / num_items_in_batch. Its gamma weight depends on the
    # sign of the advantage only, so w > 0 scales each rollout's term by w; on-policy phi = 1
    # and the gradient is dapo's weighted one (same pool-token denominator).
    inputs, _ = trained.micro[-1]
    assert "old_per_token_logps" not in inputs  # on-policy: the ratio is exactly 1

    def gradient(loss_type):
        monkeypatch.setattr(trained, "loss_type", loss_type)
        trained.model.zero_grad()
        trained._compute_loss(trained.model, inputs).backward()
        return torch.cat(
            [p.grad.flatten() for p in trained.model.parameters() if p.grad is not None]
        )

    dapo = gradient("dapo")
    assert dapo.abs().max() > 0
    torch.testing.assert_close(gradient("vespo"), dapo, rtol=1e-5, atol=1e-7)


def test_a_mini_batch_that_does_not_divide_the_generation_batch_is_refused(tmp_path):
    config = {"steps_per_generation": 3, "gradient_accumulation_steps": 2}
    with pytest.raises(ValueError, match=r"steps_per_generation.*gradient_accumulation_steps"):
        _trainer(tmp_path, cls=CostAwareGRPOTrainer, config=config)


def test_a_trl_without_an_overridden_internal_is_refused_with_its_version(tmp_path, monkeypatch):
    import trl

    monkeypatch.delattr(GRPOTrainer, "_prepare_inputs")
    with pytest.raises(RuntimeError, match=f"_prepare_inputs.*TRL {trl.__version__}"):
        _trainer(tmp_path, cls=CostAwareGRPOTrainer)


def test_bad_input_names_the_argument(trained, tmp_path):
    pool = dict(trained.pools[0][0])
    with pytest.raises(ValueError, match="advantages"):
        trained.resample_rollouts({**pool, "advantages": pool["advantages"] * float("nan")})
    with pytest.raises(ValueError, match="lengths"):
        trained.resample_rollouts({**pool, "rollout_tokens": pool["rollout_tokens"] * 0})
    for alpha in (-0.1, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            _trainer(tmp_path, cls=CostAwareGRPOTrainer, alpha=alpha)
    with pytest.raises(ValueError, match=r"^proxy must be one of \['advantage', 'nonzero', "):
        _trainer(tmp_path, cls=CostAwareGRPOTrainer, proxy="median")


def test_nonzero_proxy_trains_on_draws_with_signal_only(tmp_path):
    trainer = _trainer(tmp_path, proxy="nonzero")
    trainer.train()
    assert trainer.cost_aware_sampling.proxy == "nonzero"
    signal = 0
    for pool, plan, out in trainer.pools:
        lengths = pool["prompt_mask"].sum(1) + pool["completion_mask"].sum(1)
        torch.testing.assert_close(
            plan.probs, cost_aware_probs(pool["advantages"], lengths, proxy="nonzero")
        )
        if bool((pool["advantages"] != 0).any()):
            signal += 1
            assert bool((out["advantages"] != 0).all())
    assert signal > 0


def test_importing_without_trl_names_the_extra():
    code = "import sys; sys.modules['trl'] = None; import costsgd.integrations.trl"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode != 0
    assert "ImportError: costsgd.integrations.trl needs TRL and transformers" in run.stderr
    assert 'pip install "costsgd[trl]"' in run.stderr


def test_default_dapo_loss_keeps_the_pool_token_count_as_denominator(tmp_path):
    # TRL's default loss: sum_k w_k sum_t l_kt / num_items_in_batch, where num_items_in_batch
    # counts the pool's completion tokens (fixed), not the drawn ones: the token-mean row of
    # costsgd.torch.loss with B * mean_pool_length = pool tokens.
    trainer = _trainer(tmp_path, loss_type="dapo")
    trainer.train()
    assert len(trainer.micro) == STEPS * SPG
    for (pool, _, _), start in zip(trainer.pools, range(0, len(trainer.micro), SPG), strict=True):
        pool_tokens = pool["completion_mask"].sum()
        for inputs, loss in trainer.micro[start : start + SPG]:
            assert inputs["num_items_in_batch"] == pool_tokens
            tokens = inputs["completion_mask"].sum(1)
            w, adv = inputs["cost_aware_weights"], inputs["advantages"]
            expected = -(w * adv * tokens).sum() / pool_tokens
            torch.testing.assert_close(loss, expected.to(loss.dtype), rtol=1e-5, atol=1e-7)


def test_truncated_completions_keep_their_cost_and_get_no_draws(tmp_path):
    # mask_truncated_completions zeroes the loss mask of truncated rollouts; they
    # still cost their generated tokens, and since they carry no gradient they
    # must get p = 0 instead of being over-drawn as "cheap".
    trainer = _trainer(
        tmp_path, config={"mask_truncated_completions": True, "max_completion_length": 3}
    )
    trainer.train()
    masked_rows = 0
    for pool, plan, _ in trainer.pools:
        empty = pool["completion_mask"].sum(1) == 0
        masked_rows += int(empty.sum())
        assert bool((plan.probs[empty] == 0).all())
        generated = (pool["completion_ids"] != 0).sum(1)  # pad id 0; truncated rows have none
        expected = pool["prompt_mask"].sum(1) + torch.where(
            empty, generated, pool["completion_mask"].sum(1)
        )
        torch.testing.assert_close(plan.lengths.to(expected.dtype), expected)
    assert masked_rows > 0  # the configuration does truncate


def test_the_documented_table_2_configuration_has_algorithm_2s_n_b_and_t(tmp_path):
    # docs/trl.md: 256 prompts x 16 rollouts, mini-batches of 64 prompts, one process.
    args = GRPOConfig(
        output_dir=str(tmp_path),
        num_generations=16,
        per_device_train_batch_size=16,
        gradient_accumulation_steps=64,
        steps_per_generation=256,
        use_cpu=True,
        report_to="none",
    )
    N = args.generation_batch_size
    B = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    T = args.steps_per_generation // args.gradient_accumulation_steps
    assert (N // args.num_generations, N, B, T) == (256, 4096, 1024, 4)


def test_rollout_costs_count_tokens_exactly_and_check_shapes():
    """A bf16 mask summed in bf16 gave 1000 for 1003 tokens, an fp16 one overflowed past
    65 504; mismatched rows or columns were accepted."""
    from costsgd.integrations.trl import rollout_costs

    for dtype, width in [(torch.bfloat16, 1003), (torch.float16, 70_000)]:
        batch = {
            "prompt_mask": torch.ones(2, 5, dtype=dtype),
            "completion_mask": torch.ones(2, width, dtype=dtype),
            "completion_ids": torch.ones(2, width, dtype=torch.long),
        }
        costs = rollout_costs(batch, pad_token_id=0)
        assert costs.tolist() == [width + 5.0] * 2 and costs.dtype == torch.float64
    good = {
        "prompt_mask": torch.ones(2, 3),
        "completion_mask": torch.ones(2, 4),
        "completion_ids": torch.ones(2, 4, dtype=torch.long),
    }
    for key, bad in [
        ("prompt_mask", torch.ones(3, 3)),
        ("completion_ids", torch.ones(2, 5, dtype=torch.long)),
        ("completion_mask", torch.ones(2)),
    ]:
        with pytest.raises(ValueError, match=key):
            rollout_costs({**good, key: bad}, pad_token_id=0)
