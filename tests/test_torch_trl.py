"""costsgd.torch.trl: a few real GRPO steps in TRL with a tiny local model (CPU, offline)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_DISABLED"] = "true"

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import GRPOConfig

from costsgd.torch import cost_aware_probs, importance_weights, sample_minibatches
from costsgd.torch.trl import CostAwareGRPOTrainer

B, SPG, GENERATIONS, STEPS, SEED = 4, 2, 4, 3, 11


def _tokenizer():
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2}
    for ch in "abcdefghij ":
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")  # one token per character
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>"
    )


def _model(vocab_size):
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    return LlamaForCausalLM(cfg)


def _reward(completions, **kwargs):
    return [completion.count("a") + 0.3 * len(completion) for completion in completions]


class RecordingTrainer(CostAwareGRPOTrainer):
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


def _trainer(tmp_path, loss_type="grpo", cls=RecordingTrainer, config=None, **kwargs):
    tokenizer = _tokenizer()
    config = dict(config or {})
    max_completion_length = config.pop("max_completion_length", 8)
    args = GRPOConfig(
        **config,
        output_dir=str(tmp_path),
        per_device_train_batch_size=B,
        gradient_accumulation_steps=SPG,  # steps_per_generation defaults to this
        num_generations=GENERATIONS,
        max_completion_length=max_completion_length,
        max_steps=STEPS,
        learning_rate=1e-2,
        loss_type=loss_type,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    data = Dataset.from_dict({"prompt": ["abc", "de", "fghij", "i", "bb", "jjj"] * 4})
    return cls(
        model=_model(len(tokenizer)),
        reward_funcs=_reward,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        seed=SEED,
        **kwargs,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    trainer = _trainer(tmp_path_factory.mktemp("grpo"))
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

        def rows(batch):
            return sorted(
                (tuple(ids.tolist()), float(a), float(w))
                for ids, a, w in zip(
                    batch["completion_ids"],
                    batch["advantages"],
                    batch["cost_aware_weights"],
                    strict=True,
                )
            )

        trained_rows = sorted(r for inputs, _ in micro for r in rows(inputs))
        assert trained_rows == rows(out)


def test_weights_reach_the_loss(trained):
    # loss_type="grpo", beta=0, on-policy first pass: the ratio is exactly 1, so the micro-batch
    # loss is -mean_k(w_k A_k) / gradient_accumulation_steps.
    for inputs, loss in trained.micro:
        w, adv = inputs["cost_aware_weights"], inputs["advantages"]
        assert not torch.allclose(w, torch.ones_like(w)) or bool((adv == 0).all())
        expected = -(w * adv).mean() / SPG
        torch.testing.assert_close(loss, expected.to(loss.dtype), rtol=1e-5, atol=1e-7)


def test_plan_summary_is_logged(trained):
    logged = [h for h in trained.state.log_history if "cost_aware/token_fraction" in h]
    assert len(logged) == STEPS
    assert all(h["cost_aware/weight_mean"] == pytest.approx(1.0, abs=1e-5) for h in logged)


def test_bnpo_loss_is_refused_because_it_divides_by_drawn_tokens(tmp_path):
    with pytest.raises(ValueError, match="bnpo"):
        _trainer(tmp_path, loss_type="bnpo", cls=CostAwareGRPOTrainer)


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
