"""costsgd.integrations.verl against the real verl package: its DataProto, compute_advantage and losses.

Runs where verl is installed (``make test`` builds ``.venv-verl`` from
requirements/verl.txt and runs this file there); the main environment skips it.
"""

import warnings

import numpy as np
import pytest
import torch

with warnings.catch_warnings():
    # verl's engine package announces every optional backend it cannot import, ray its
    # moved state API: import-time notices about packages these tests do not use.
    warnings.filterwarnings("ignore", message=r".*engine is not available", category=UserWarning)
    warnings.filterwarnings("ignore", message=r"Ray state API", category=DeprecationWarning)
    pytest.importorskip(
        "verl", reason="verl is not installed here; `make test` runs this file in .venv-verl"
    )
    from verl.protocol import DataProto
    from verl.trainer.ppo.core_algos import AdvantageEstimator, agg_loss, get_policy_loss_fn
    from verl.trainer.ppo.ray_trainer import compute_advantage
    from verl.utils import tensordict_utils as tu
    from verl.workers.config import ActorConfig, PolicyLossConfig
    from verl.workers.engine.utils import prepare_micro_batches
    from verl.workers.utils.losses import ppo_loss
    from verl.workers.utils.padding import left_right_2_no_padding

from costsgd.integrations.verl import (
    LOSS_AGG_MODES,
    apply_plan,
    check_loss_agg_mode,
    dispatch_order,
    plan_metrics,
    plan_verl_batch,
    token_mean_weights,
)
from costsgd.torch import SamplingOptions, cost_aware_probs, weighted_policy_loss

N_PROMPTS, ROLLOUT_N, P, R = 4, 4, 5, 9
N = N_PROMPTS * ROLLOUT_N  # 16 rollouts
B = 8  # ppo_mini_batch_size 2 x rollout.n 4
SCALE = 4.0  # loss_scale_factor for seq-mean-token-sum-norm
# verl's policy losses that multiply the per-token loss by rollout_is_weights before agg_loss.
# (geo_mean takes log(weights); bypass_mode recomputes its own weights; dro needs dro_beta.)
LINEAR_LOSSES = (
    "vanilla",
    "dppo_tv",
    "dppo_kl",
    "gspo",
    "sapo",
    "gpg",
    "clip_cov",
    "cispo",
)
# kl_cov picks the tokens it penalises by their covariance within the batch, so its
# per-token loss depends on which rollouts were drawn together: not tested as linear.


def grpo_pool(seed=0):
    """A verl rollout pool as the driver holds it, with GRPO advantages from verl itself."""
    g = torch.Generator().manual_seed(seed)
    prompt_len = torch.randint(2, P + 1, (N_PROMPTS,), generator=g).repeat_interleave(ROLLOUT_N)
    resp_len = torch.randint(1, R + 1, (N,), generator=g)
    prompt_mask = (torch.arange(P)[None] >= P - prompt_len[:, None]).long()  # left-padded
    response_mask = (torch.arange(R)[None] < resp_len[:, None]).long()  # right-padded
    attention_mask = torch.cat([prompt_mask, response_mask], 1)
    input_ids = torch.randint(3, 50, (N, P + R), generator=g) * attention_mask
    score = torch.randint(0, 2, (N,), generator=g).float()
    score[:ROLLOUT_N] = 1.0  # the first prompt's group all correct: zero advantage
    rewards = torch.zeros(N, R)
    rewards[torch.arange(N), resp_len - 1] = score
    data = DataProto.from_dict(
        tensors={
            "prompts": input_ids[:, :P],
            "responses": input_ids[:, P:],
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": (attention_mask.cumsum(1) - 1).clamp(min=0),
            "response_mask": response_mask,
            "token_level_rewards": rewards,
            "old_log_probs": -torch.rand(N, R, generator=g),
        },
        non_tensors={
            "uid": np.array([f"prompt-{i // ROLLOUT_N}" for i in range(N)], dtype=object),
            "multi_modal_inputs": np.array([{"pixel_values": i} for i in range(N)], dtype=object),
        },
    )
    return compute_advantage(
        data, AdvantageEstimator.GRPO, num_repeat=ROLLOUT_N, norm_adv_by_std_in_grpo=True
    )


def actor_config(mode="seq-mean-token-mean", **overrides):
    return ActorConfig(
        strategy="fsdp",
        rollout_n=ROLLOUT_N,
        ppo_mini_batch_size=B // ROLLOUT_N,
        ppo_micro_batch_size_per_gpu=2,
        loss_agg_mode=mode,
        loss_scale_factor=SCALE if mode == "seq-mean-token-sum-norm" else None,
        **overrides,
    )


def current_log_probs(data, seed=1):
    g = torch.Generator().manual_seed(seed)
    return data.batch["old_log_probs"] + 0.3 * torch.randn(N, R, generator=g)


def per_token_loss(loss_fn, data, log_prob, config):
    """The per-token policy loss verl aggregates: d(token-sum loss)/d(rollout_is_weights)."""
    ones = torch.ones(N, R, dtype=torch.float32, requires_grad=True)
    cfg = actor_config("token-sum", policy_loss=config.policy_loss)
    loss, _ = loss_fn(
        old_log_prob=data.batch["old_log_probs"],
        log_prob=log_prob,
        advantages=data.batch["advantages"],
        response_mask=data.batch["response_mask"].bool(),
        loss_agg_mode="token-sum",
        config=cfg,
        rollout_is_weights=ones,
    )
    (grad,) = torch.autograd.grad(loss, ones)
    if config.policy_loss.loss_mode == "sapo":  # SAPO aggregates by seq-mean-token-mean always
        lengths = data.batch["response_mask"].double().sum(-1, keepdim=True)
        return grad.double() * lengths * int((lengths > 0).sum())
    return grad.double()


def expected_loss(token_loss, mask, weights, mode, mean_len):
    """costsgd's weighted_policy_loss for one mini-batch in verl's mode names."""
    if mode == "seq-mean-token-sum-norm":
        return weighted_policy_loss(token_loss, mask, weights, mode="seq-mean-token-sum") / SCALE
    return weighted_policy_loss(token_loss, mask, weights, mode=mode, mean_pool_length=mean_len)


def test_compute_advantage_pool_gives_the_plan_its_sequence_advantages_and_costs():
    data = grpo_pool()
    adv = data.batch["advantages"]
    mask = data.batch["response_mask"].bool()
    # verl broadcasts the GRPO sequence advantage over the response tokens
    assert torch.equal(adv * mask, adv[:, :1] * mask)
    plan = plan_verl_batch(data.batch, B, generator=torch.Generator().manual_seed(0))
    p = cost_aware_probs(adv[:, 0], data.batch["attention_mask"].sum(-1))
    torch.testing.assert_close(plan.probs, p)
    assert bool((plan.probs[:ROLLOUT_N] == 0).all())  # the zero-advantage group is never drawn
    assert tuple(plan.indices.shape) == (N // B, B)


@pytest.mark.parametrize("dp_size", [1, 2, 4])
def test_dataproto_reindex_moves_non_tensor_columns_with_the_draws(dp_size):
    data = grpo_pool()
    plan = plan_verl_batch(data.batch, B, generator=torch.Generator().manual_seed(1))
    rows, w = dispatch_order(plan, dp_size)
    drawn = data[rows]  # the documented hook: DataProto.select_idxs
    rows_np = rows.numpy()
    for key in ("input_ids", "attention_mask", "response_mask", "advantages", "old_log_probs"):
        assert torch.equal(drawn.batch[key], data.batch[key][rows]), key
    assert list(drawn.non_tensor_batch["uid"]) == list(data.non_tensor_batch["uid"][rows_np])
    pixels = [m["pixel_values"] for m in drawn.non_tensor_batch["multi_modal_inputs"]]
    assert pixels == rows.tolist()
    is_w = apply_plan(dict(data.batch.items()), plan, dp_size=dp_size)["rollout_is_weights"]
    torch.testing.assert_close(is_w, w[:, None].expand(N, R))


@pytest.mark.parametrize("dp_size", [1, 2, 4])
def test_dispatch_order_makes_verls_global_mini_batches_the_plans(dp_size):
    data = grpo_pool()
    plan = plan_verl_batch(data.batch, B, generator=torch.Generator().manual_seed(2))
    rows, _ = dispatch_order(plan, dp_size)
    td = data[rows].to_tensordict()
    td["slot"] = torch.arange(N)
    chunks = tu.chunk_tensordict(td, dp_size)  # verl's split over data-parallel ranks
    per_rank = [
        [mb["slot"] for mb in tu.make_iterator(c, B // dp_size, epochs=1, seed=0)] for c in chunks
    ]
    for t in range(N // B):
        slots = torch.cat([mbs[t] for mbs in per_rank])
        assert sorted(rows[slots].tolist()) == sorted(plan.indices[t].tolist())


@pytest.mark.parametrize("loss_mode", LINEAR_LOSSES)
@pytest.mark.parametrize("mode", [m for m in LOSS_AGG_MODES if m != "token-mean"])
def test_verl_policy_losses_with_plan_weights_match_weighted_policy_loss(loss_mode, mode):
    data = grpo_pool()
    config = actor_config(mode, policy_loss=PolicyLossConfig(loss_mode=loss_mode))
    # what ppo_loss puts there before calling the policy loss
    config.global_batch_info["loss_scale_factor"] = config.loss_scale_factor
    loss_fn = get_policy_loss_fn(loss_mode)
    effective = "seq-mean-token-mean" if loss_mode == "sapo" else mode  # SAPO fixes its mode
    log_prob = current_log_probs(data)
    token_loss = per_token_loss(loss_fn, data, log_prob, config)
    plan = plan_verl_batch(data.batch, B, generator=torch.Generator().manual_seed(3))
    drawn = apply_plan({**data.batch, "log_prob": log_prob, "token_loss": token_loss}, plan)
    for t in range(N // B):
        rows = slice(t * B, (t + 1) * B)
        verl_loss, _ = loss_fn(
            old_log_prob=drawn["old_log_probs"][rows],
            log_prob=drawn["log_prob"][rows],
            advantages=drawn["advantages"][rows],
            response_mask=drawn["response_mask"][rows].bool(),
            loss_agg_mode=mode,
            config=config,
            rollout_is_weights=drawn["rollout_is_weights"][rows],
        )
        ours = expected_loss(
            drawn["token_loss"][rows],
            drawn["response_mask"][rows],
            plan.weights[t],
            effective,
            None,
        )
        torch.testing.assert_close(verl_loss.double(), ours, rtol=1e-5, atol=1e-6)


def test_token_mean_matches_only_with_the_correction():
    data = grpo_pool()
    config = actor_config("token-mean")
    loss_fn = get_policy_loss_fn("vanilla")
    log_prob = current_log_probs(data)
    token_loss = per_token_loss(loss_fn, data, log_prob, config)
    mean_len = float(data.batch["response_mask"].double().sum(-1).mean())
    plan = plan_verl_batch(data.batch, B, generator=torch.Generator().manual_seed(4))
    corrected = token_mean_weights(plan, data.batch["response_mask"], B)
    for weights, matches in ((plan.weights, False), (corrected, True)):
        drawn = apply_plan({**data.batch, "log_prob": log_prob}, plan, weights)
        for t in range(N // B):
            rows = slice(t * B, (t + 1) * B)
            verl_loss, _ = loss_fn(
                old_log_prob=drawn["old_log_probs"][rows],
                log_prob=drawn["log_prob"][rows],
                advantages=drawn["advantages"][rows],
                response_mask=drawn["response_mask"][rows].bool(),
                loss_agg_mode="token-mean",
                config=config,
                rollout_is_weights=drawn["rollout_is_weights"][rows],
            )
            target = weighted_policy_loss(
                token_loss[plan.indices[t]],
                data.batch["response_mask"][plan.indices[t]],
                plan.weights[t].double(),
                mode="token-mean",
                mean_pool_length=mean_len,
            )
            assert torch.allclose(verl_loss.double(), target, rtol=1e-5, atol=1e-6) is matches


def nested_log_probs(td, log_prob):
    """A model output as verl's engine returns it: one value per token of each unpadded sequence."""
    prompt_len = td["attention_mask"][:, :P].sum(-1)
    resp_len = td["attention_mask"][:, P:].sum(-1)
    seqs = []
    for i in range(td.shape[0]):
        seq = torch.zeros(int(prompt_len[i] + resp_len[i]))
        # verl's no_padding_2_padding reads response token k at position prompt_len - 1 + k
        seq[prompt_len[i] - 1 : prompt_len[i] - 1 + resp_len[i]] = log_prob[i, : resp_len[i]]
        seqs.append(seq)
    return torch.nested.as_nested_tensor(seqs, layout=torch.jagged)


@pytest.mark.parametrize("mode", LOSS_AGG_MODES)
def test_new_engine_ppo_loss_matches_weighted_policy_loss(mode):
    data = grpo_pool()
    log_prob = current_log_probs(data)
    config = actor_config(mode)
    token_loss = per_token_loss(get_policy_loss_fn("vanilla"), data, log_prob, config)
    mean_len = float(data.batch["response_mask"].double().sum(-1).mean())
    plan = plan_verl_batch(data.batch, B, generator=torch.Generator().manual_seed(5))
    weights = token_mean_weights(plan, data.batch["response_mask"], B)
    if mode != "token-mean":
        weights = plan.weights
    rows, w = dispatch_order(plan, 1, weights)
    drawn = data[rows]
    drawn.batch["rollout_is_weights"] = (w[:, None] * drawn.batch["response_mask"]).float()
    for t in range(N // B):
        mini = left_right_2_no_padding(drawn[t * B : (t + 1) * B].to_tensordict())
        mask = mini["response_mask"]
        # what FSDPEngine.forward_backward_batch attaches before calling the loss (dp_size 1)
        tu.assign_non_tensor(mini, dp_size=1, batch_num_tokens=int(mask.sum()), global_batch_size=B)
        model_output = {"log_probs": nested_log_probs(mini, log_prob[rows[t * B : (t + 1) * B]])}
        loss, metrics = ppo_loss(config, model_output, mini)
        ours = expected_loss(
            token_loss[plan.indices[t]],
            data.batch["response_mask"][plan.indices[t]],
            plan.weights[t].double(),
            mode,
            mean_len,
        )
        torch.testing.assert_close(loss.double(), ours, rtol=1e-5, atol=1e-6)
        assert "actor/pg_loss" in metrics


@pytest.mark.parametrize(
    ("mode", "micro"),
    [
        ("seq-mean-token-mean", {"use_dynamic_bsz": False, "micro_batch_size_per_gpu": 2}),
        ("token-mean", {"use_dynamic_bsz": False, "micro_batch_size_per_gpu": 2}),
        ("token-mean", {"use_dynamic_bsz": True, "max_token_len_per_gpu": 24}),
    ],
)
def test_micro_batching_keeps_the_mini_batch_loss(mode, micro):
    # FSDPEngine.forward_backward_batch: the mini-batch's token count, then verl's micro-batches
    data = grpo_pool()
    log_prob = current_log_probs(data)
    config = actor_config(mode)
    token_loss = per_token_loss(get_policy_loss_fn("vanilla"), data, log_prob, config)
    mean_len = float(data.batch["response_mask"].double().sum(-1).mean())
    plan = plan_verl_batch(data.batch, B, generator=torch.Generator().manual_seed(10))
    weights = token_mean_weights(plan, data.batch["response_mask"], B)
    rows, w = dispatch_order(plan, 1, weights if mode == "token-mean" else None)
    drawn = data[rows]
    drawn.batch["rollout_is_weights"] = (w[:, None] * drawn.batch["response_mask"]).float()
    drawn.batch["log_prob"] = log_prob[rows]
    mini = left_right_2_no_padding(drawn[:B].to_tensordict())
    tu.assign_non_tensor(
        mini,
        dp_size=1,
        batch_num_tokens=int(mini["loss_mask"].sum()),
        global_batch_size=B,
        **micro,
    )
    micro_batches, _ = prepare_micro_batches(mini)
    assert len(micro_batches) > 1
    total = torch.zeros((), dtype=torch.float64)
    for mb in micro_batches:
        lp = mb["log_prob"]
        loss, _ = ppo_loss(config, {"log_probs": nested_log_probs(mb, lp)}, mb)
        total = total + loss.double()
    expected = expected_loss(
        token_loss[plan.indices[0]],
        data.batch["response_mask"][plan.indices[0]],
        plan.weights[0].double(),
        mode,
        mean_len,
    )
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-6)


def monte_carlo(mode, weights_fn, plans=1500):
    """Mean and standard error over plans of one step's summed mini-batch losses (verl's agg_loss)."""
    data = grpo_pool(seed=7)
    log_prob = current_log_probs(data, seed=8)
    token_loss = per_token_loss(get_policy_loss_fn("vanilla"), data, log_prob, actor_config())
    mask = data.batch["response_mask"]
    g = torch.Generator().manual_seed(9)
    totals = []
    for _ in range(plans):
        plan = plan_verl_batch(
            data.batch, B, generator=g, sampling=SamplingOptions(normalize="none")
        )
        drawn = apply_plan(
            {"response_mask": mask, "token_loss": token_loss}, plan, weights_fn(plan)
        )
        total = 0.0
        for t in range(N // B):
            rows = slice(t * B, (t + 1) * B)
            total += float(
                agg_loss(
                    loss_mat=drawn["token_loss"][rows] * drawn["rollout_is_weights"][rows],
                    loss_mask=drawn["response_mask"][rows],
                    loss_agg_mode=mode,
                    loss_scale_factor=SCALE,
                )
            )
        totals.append(total)
    totals = torch.tensor(totals, dtype=torch.float64)
    # The target: a uniform pass's step with fixed denominators (B sequences; B·L̄ tokens).
    uniform = [
        expected_loss(
            token_loss[s : s + B], mask[s : s + B], None, mode, mask.double().sum(-1).mean()
        )
        for s in range(0, N, B)
    ]
    return float(totals.mean()), float(totals.std() / len(totals) ** 0.5), float(sum(uniform))


@pytest.mark.parametrize("mode", [m for m in LOSS_AGG_MODES if m != "token-mean"])
def test_monte_carlo_safe_modes_are_unbiased(mode):
    mean, se, target = monte_carlo(mode, lambda plan: plan.weights)
    assert abs(mean - target) < 4 * se, (mean, target, se)


def test_monte_carlo_token_mean_biased_unless_corrected():
    mask = grpo_pool(seed=7).batch["response_mask"]
    plain, se_plain, target = monte_carlo("token-mean", lambda plan: plan.weights, plans=6000)
    corrected, se_corr, _ = monte_carlo(
        "token-mean", lambda plan: token_mean_weights(plan, mask, B), plans=6000
    )
    assert abs(plain - target) > 5 * se_plain, (plain, target, se_plain)  # about 7% off here
    assert abs(corrected - target) < 4 * se_corr, (corrected, target, se_corr)


def test_token_sum_is_accepted_and_token_mean_needs_the_correction():
    for mode in LOSS_AGG_MODES:
        assert check_loss_agg_mode(mode, token_mean_corrected=True) == mode
    assert check_loss_agg_mode("token-sum") == "token-sum"
    with pytest.raises(ValueError, match="token-mean"):
        check_loss_agg_mode("token-mean")
    # every verl mode is known here, and nothing else
    for mode in LOSS_AGG_MODES:
        agg_loss(torch.ones(2, 3), torch.ones(2, 3), mode)
    with pytest.raises(ValueError, match="loss_agg_mode"):
        check_loss_agg_mode("seq-mean")


def test_plan_metrics_separate_the_pool_from_the_draws():
    data = grpo_pool()
    plan = plan_verl_batch(data.batch, B, generator=torch.Generator().manual_seed(6))
    m = plan_metrics(plan)
    costs = data.batch["attention_mask"].sum(-1).double()
    assert m["cost_aware/pool/tokens"] == float(costs.sum())
    assert m["cost_aware/pool/zero_prob_fraction"] == ROLLOUT_N / N
    assert m["cost_aware/draws/tokens"] == float(costs[plan.indices.reshape(-1)].sum())
    assert m["cost_aware/draws/token_fraction"] == pytest.approx(
        m["cost_aware/draws/tokens"] / m["cost_aware/pool/tokens"]
    )
    w = plan.weights.double().reshape(-1)
    assert m["cost_aware/draws/ess"] == pytest.approx(float(w.sum() ** 2 / (w * w).sum()))
    assert m["cost_aware/draws/weight_max"] == pytest.approx(float(w.max()))
