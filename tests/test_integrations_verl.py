"""costsgd.integrations.verl on hand-made tensors of verl's layout (runs without verl; see test_integrations_verl_package.py)."""

import numpy as np
import pytest
import torch

from costsgd.integrations.verl import (
    apply_plan,
    check_loss_agg_mode,
    dispatch_order,
    plan_verl_batch,
    token_mean_weights,
)
from costsgd.torch import (
    cost_aware_probs,
    importance_weights,
    sample_minibatches,
    weighted_policy_loss,
)

N_PROMPTS, N_ROLLOUTS, P, R = 4, 4, 5, 9  # 16 rollouts
N = N_PROMPTS * N_ROLLOUTS


def _verl_batch(seed=0):
    """A batch as verl's driver holds it after compute_advantage (GRPO)."""
    g = torch.Generator().manual_seed(seed)
    prompt_len = torch.randint(2, P + 1, (N_PROMPTS,), generator=g).repeat_interleave(N_ROLLOUTS)
    resp_len = torch.randint(1, R + 1, (N,), generator=g)
    prompts = torch.randint(3, 50, (N, P), generator=g)
    responses = torch.randint(3, 50, (N, R), generator=g)
    prompt_mask = torch.arange(P)[None] >= (P - prompt_len[:, None])  # left-padded prompts
    response_mask = torch.arange(R)[None] < resp_len[:, None]  # right-padded responses
    scores = torch.randint(0, 2, (N,), generator=g).double()
    scores[:N_ROLLOUTS] = 1.0  # first group all correct: zero advantage
    grouped = scores.view(N_PROMPTS, N_ROLLOUTS)
    adv = ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-6)).view(
        -1
    )
    return {
        "prompts": prompts,
        "responses": responses,
        "input_ids": torch.cat([prompts, responses], 1),
        "attention_mask": torch.cat([prompt_mask, response_mask], 1).long(),
        "response_mask": response_mask.float(),
        "advantages": adv.float()[:, None] * response_mask,  # token-level broadcast
        "old_log_probs": torch.randn(N, R, generator=g),
        "uid_array": np.arange(N),  # stands for a non-tensor column
    }


def test_plan_uses_sequence_advantages_and_prompt_plus_response_cost():
    batch = _verl_batch()
    plan = plan_verl_batch(batch, 8, generator=torch.Generator().manual_seed(0))
    seq_adv = batch["advantages"][:, 0]
    lengths = batch["attention_mask"].sum(-1)
    p = cost_aware_probs(seq_adv, lengths)
    torch.testing.assert_close(plan.probs, p)
    assert bool((plan.probs[:N_ROLLOUTS] == 0).all())  # zero-advantage group is never drawn
    expected = sample_minibatches(p, 8, num_batches=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(plan.indices, expected)
    torch.testing.assert_close(plan.weights, importance_weights(p, expected))


def test_apply_plan_reindexes_rows_and_fills_rollout_is_weights():
    batch = _verl_batch()
    batch["rollout_is_weights"] = torch.rand(N, R, generator=torch.Generator().manual_seed(1))
    plan = plan_verl_batch(batch, 4, generator=torch.Generator().manual_seed(2))
    out = apply_plan(batch, plan)
    idx = plan.indices.reshape(-1)
    for key in (
        "prompts",
        "responses",
        "input_ids",
        "attention_mask",
        "response_mask",
        "advantages",
    ):
        assert torch.equal(out[key], batch[key][idx]), key
    assert np.array_equal(out["uid_array"], batch["uid_array"][idx.numpy()])
    expected = batch["rollout_is_weights"][idx] * plan.weights.reshape(-1)[:, None]
    torch.testing.assert_close(out["rollout_is_weights"], expected)
    fresh = apply_plan({k: v for k, v in batch.items() if k != "rollout_is_weights"}, plan)
    assert torch.equal(fresh["rollout_is_weights"], plan.weights.reshape(-1, 1).expand(N, R))


def _verl_style_seq_mean_token_mean(pg_losses, mask, is_weights):
    # The documented aggregation: each sequence's token mean of weighted pg losses, then the
    # mean over the sequences of the mini-batch.
    seq = ((pg_losses * is_weights) * mask).sum(-1) / mask.sum(-1)
    return seq.mean()


def test_seq_mean_token_mean_with_rollout_is_weights_is_the_unbiased_estimator():
    batch = _verl_batch()
    plan = plan_verl_batch(batch, 8, generator=torch.Generator().manual_seed(3))
    out = apply_plan(batch, plan)
    pg = torch.randn(N, R, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for t in range(2):  # the actor's mini-batches: consecutive blocks of 8 rows
        rows = slice(8 * t, 8 * (t + 1))
        verl_loss = _verl_style_seq_mean_token_mean(
            pg[rows], out["response_mask"][rows].double(), out["rollout_is_weights"][rows].double()
        )
        ours = weighted_policy_loss(
            pg[rows],
            out["response_mask"][rows],
            plan.weights[t].double(),
            mode="seq-mean-token-mean",
        )
        torch.testing.assert_close(verl_loss, ours)


def test_token_mean_correction_recovers_the_fixed_denominator_over_micro_batches():
    batch = _verl_batch()
    plan = plan_verl_batch(batch, 8, generator=torch.Generator().manual_seed(5))
    micro = 2  # ppo_micro_batch_size_per_gpu; gradient accumulation = 8 / 2 = 4
    w_corr = token_mean_weights(plan, batch["response_mask"], micro)
    out = apply_plan(batch, plan, weights=w_corr)
    plain = apply_plan(batch, plan)
    pg = torch.randn(N, R, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    mean_len = float(batch["response_mask"].sum(-1).double().mean())
    for t in range(2):
        target = weighted_policy_loss(
            pg[8 * t : 8 * (t + 1)],
            plain["response_mask"][8 * t : 8 * (t + 1)],
            plan.weights[t].double(),
            mode="token-mean",
            mean_pool_length=mean_len,
        )

        def legacy_token_mean(data, block=t):
            # Each micro-batch: weighted token sum over its own token count, scaled by 1/GA.
            total = torch.zeros((), dtype=torch.float64)
            for start in range(8 * block, 8 * (block + 1), micro):
                s = slice(start, start + micro)
                m = data["response_mask"][s].double()
                loss = (pg[s] * data["rollout_is_weights"][s].double() * m).sum() / m.sum()
                total = total + loss / (8 // micro)
            return total

        torch.testing.assert_close(legacy_token_mean(out), target)
        assert not torch.allclose(legacy_token_mean(plain), target)


def test_loss_agg_mode_check():
    for mode in (
        "seq-mean-token-mean",
        "seq-mean-token-sum",
        "seq-mean-token-sum-norm",
        "token-sum",
    ):
        assert check_loss_agg_mode(mode) == mode
    with pytest.raises(ValueError, match="token-mean"):
        check_loss_agg_mode("token-mean")
    assert check_loss_agg_mode("token-mean", token_mean_corrected=True) == "token-mean"
    with pytest.raises(ValueError, match="loss_agg_mode"):
        check_loss_agg_mode("token-avg")


def test_valid_rows_are_never_drawn_and_weights_refer_to_the_valid_pool():
    batch = _verl_batch()
    valid = torch.ones(N, dtype=torch.bool)
    valid[-2:] = False  # verl's padding samples
    costs = batch["attention_mask"].sum(-1)
    plan = plan_verl_batch(
        batch, 8, costs=costs, valid=valid, generator=torch.Generator().manual_seed(8)
    )
    assert bool((plan.probs[-2:] == 0).all()) and bool((plan.indices < N - 2).all())
    p_valid = cost_aware_probs(batch["advantages"][:-2, 0], costs[:-2])
    torch.testing.assert_close(plan.probs[:-2], p_valid)
    raw = 1.0 / ((N - 2) * p_valid[plan.indices])
    torch.testing.assert_close(plan.weights.double(), raw / raw.mean())


def test_dispatch_order_puts_each_mini_batch_across_the_ranks_in_order():
    batch = _verl_batch()
    plan = plan_verl_batch(batch, 8, generator=torch.Generator().manual_seed(9))
    rows, w = dispatch_order(plan, 4)
    # rank r holds rows [4r, 4r+4); its local mini-batch t is rows [4r+2t, 4r+2t+2)
    for t in range(2):
        got = torch.cat([rows[4 * r + 2 * t : 4 * r + 2 * t + 2] for r in range(4)])
        assert torch.equal(got, plan.indices[t])
        wt = torch.cat([w[4 * r + 2 * t : 4 * r + 2 * t + 2] for r in range(4)])
        assert torch.equal(wt, plan.weights[t])
    assert torch.equal(dispatch_order(plan, 1)[0], plan.indices.reshape(-1))


def test_bad_batches_raise():
    batch = _verl_batch()
    with pytest.raises(ValueError, match="batch_size"):
        plan_verl_batch(batch, 5)
    with pytest.raises(ValueError, match="costs"):
        plan_verl_batch(batch, 4, costs=torch.ones(3))
    with pytest.raises(ValueError, match="valid"):
        plan_verl_batch(batch, 4, valid=torch.zeros(N, dtype=torch.bool))
    with pytest.raises(ValueError, match="dp_size"):
        dispatch_order(plan_verl_batch(batch, 4), 3)
    with pytest.raises(ValueError, match="response_mask"):
        apply_plan({"advantages": batch["advantages"]}, plan_verl_batch(batch, 4))
    with pytest.raises(ValueError, match="advantages"):
        plan_verl_batch({k: v for k, v in batch.items() if k != "advantages"}, 4)
    with pytest.raises(ValueError, match="group_size"):
        token_mean_weights(plan_verl_batch(batch, 4), batch["response_mask"], 3)


def test_docs_recipe_pattern_weights_then_reindex_matches_apply_plan():
    # docs/verl.md passes apply_plan only the two tensors it needs, then indexes the DataProto.
    batch = _verl_batch()
    plan = plan_verl_batch(batch, 8, generator=torch.Generator().manual_seed(7))
    is_w = apply_plan({"response_mask": batch["response_mask"]}, plan)["rollout_is_weights"]
    full = apply_plan(batch, plan)
    assert torch.equal(is_w, full["rollout_is_weights"])
    assert torch.equal(batch["response_mask"][plan.indices.reshape(-1)], full["response_mask"])
