"""The mini Cost-Aware GRPO study: task, policy, trainer, study, report, CLI."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

import costsgd.torch as adapter
from costsgd.experiments.grpo import report, study, trainer
from costsgd.experiments.grpo.diagnostics import rollout_diagnostics
from costsgd.experiments.grpo.policy import (
    GRUPolicy,
    correct_probability,
    generate,
    reference_sequences,
    response_logprobs,
    warm_start,
)
from costsgd.experiments.grpo.task import (
    BOS,
    EOS,
    PAD,
    SEP,
    SortTask,
    WalkTask,
    reference_lengths,
    references,
    rewards,
    sample_prompts,
)
from costsgd.experiments.grpo.trainer import (
    GRPOConfig,
    Method,
    collect,
    group_advantages,
    micro_batches,
    minibatch_plan,
    pstar_cost_ratio,
    sampling_probs,
    token_objective,
    train,
)
from tests.helpers import rendered_markdown

SMALL = SortTask(num_symbols=3, min_len=1, max_len=5)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _policy(task=SMALL, seed=0):
    torch.manual_seed(seed)
    return GRUPolicy(task.vocab_size, 16, 32)


# --- task -------------------------------------------------------------------------------


def test_prompts_and_references_are_well_formed():
    task = SortTask()
    p = sample_prompts(task, 200, torch.Generator().manual_seed(0))
    L = p.lengths - 2
    assert int(L.min()) >= task.min_len and int(L.max()) <= task.max_len
    ref = references(task, p)
    for i in range(20):
        body = p.tokens[i, 1 : L[i] + 1]
        assert p.tokens[i, 0] == BOS and p.tokens[i, L[i] + 1] == SEP
        assert bool((p.tokens[i, L[i] + 2 :] == PAD).all())
        assert ref[i, : L[i]].tolist() == sorted(body.tolist())
        assert ref[i, L[i]] == EOS and bool((ref[i, L[i] + 1 :] == PAD).all())


def test_default_task_lengths_vary_at_least_4x_within_a_batch():
    task = SortTask()
    p = sample_prompts(task, 128, torch.Generator().manual_seed(1))
    response = p.lengths - 1  # L symbols + EOS
    assert int(response.max()) >= 4 * int(response.min())
    assert int(p.lengths.max()) >= 3 * int(p.lengths.min())


def test_reward_is_one_only_for_the_exact_sorted_response():
    task = SortTask()
    p = sample_prompts(task, 64, torch.Generator().manual_seed(2))
    ref = references(task, p)
    assert rewards(task, p, ref).tolist() == [1.0] * 64
    wrong = ref.clone()
    wrong[:, 0] = torch.where(wrong[:, 0] == 4, 5, 4)  # change the first symbol
    assert rewards(task, p, wrong).sum() == 0
    no_eos = ref.clone()
    no_eos[no_eos == EOS] = 4
    assert rewards(task, p, no_eos).sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_symbols": 1}, "num_symbols"),
        ({"min_len": 0}, "min_len"),
        ({"max_len": 1, "min_len": 2}, "max_len"),
    ],
)
def test_bad_task_raises_naming_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sample_prompts(SortTask(**kwargs), 2, torch.Generator())


def test_walk_references_follow_the_walk_to_its_first_zero():
    task = WalkTask(modulus=31, max_stride=5, max_steps=30, max_response_len=40)
    p = sample_prompts(task, 100, torch.Generator().manual_seed(0))
    ref, n = references(task, p), reference_lengths(task, p)
    assert p.tokens.shape == (100, 4) and bool((p.lengths == 4).all())
    for row in range(100):
        x0, b = int(p.tokens[row, 1]) - 4, int(p.tokens[row, 2]) - 4
        walk = []
        x = x0
        while True:
            x = (x + b) % 31
            walk.append(x + 4)
            if x == 0:
                break
        assert ref[row].tolist() == [*walk, EOS] + [PAD] * (40 - len(walk) - 1)
        assert int(n[row]) == len(walk) + 1
        assert 1 <= int(p.tokens[row, 2]) - 4 <= 5
    assert rewards(task, p, ref).tolist() == [1.0] * 100


def test_walks_longer_than_the_cap_cannot_be_solved():
    task = WalkTask(modulus=31, max_stride=1, max_steps=30, max_response_len=10)
    p = sample_prompts(task, 200, torch.Generator().manual_seed(1))
    ref, n = references(task, p), reference_lengths(task, p)
    steps = 31 - (p.tokens[:, 1] - 4)  # stride 1: the walk from x0 reaches 0 after 31 - x0 steps
    solvable = steps + 1 <= 10
    assert bool(solvable.any()) and bool((~solvable).any())
    # the truncated reference itself scores 0: no response can solve a walk past the cap
    assert rewards(task, p, ref).tolist() == solvable.float().tolist()
    assert bool((n[~solvable] == 10).all()) and bool((n[solvable] == steps[solvable] + 1).all())


def test_default_walk_costs_span_more_than_10x_within_a_batch():
    task = study.DEFAULT_WALK
    p = sample_prompts(task, 128, torch.Generator().manual_seed(2))
    c = p.lengths + reference_lengths(task, p)  # a correct (or cap-truncated) response's cost
    assert int(c.max()) >= 10 * int(c.min())
    unsolvable = (references(task, p) == EOS).sum(1) == 0
    assert 0.25 < float(unsolvable.float().mean()) < 0.75  # long failing groups in every batch


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"modulus": 12}, "modulus"),
        ({"max_stride": 0}, "max_stride"),
        ({"min_steps": 0}, "min_steps"),
        ({"max_steps": 61}, "max_steps"),
        ({"max_response_len": 1}, "max_response_len"),
    ],
)
def test_bad_walk_task_raises_naming_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sample_prompts(WalkTask(**kwargs), 2, torch.Generator())


def test_rewards_rejects_wrong_shape():
    p = sample_prompts(SMALL, 3, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="responses"):
        rewards(SMALL, p, torch.zeros(3, 2, dtype=torch.long))


# --- policy -----------------------------------------------------------------------------


def test_generate_respects_layout_and_cap():
    pol = _policy()
    p = sample_prompts(SMALL, 50, torch.Generator().manual_seed(0))
    r = generate(pol, p, SMALL.max_response_len, torch.Generator().manual_seed(1))
    assert bool((r.response_lengths >= 1).all()) and bool(
        (r.response_lengths <= SMALL.max_response_len).all()
    )
    for i in range(50):
        n = int(r.response_lengths[i])
        resp = r.responses[i]
        assert bool((resp[:n] >= EOS).all())  # only EOS and symbols are generated
        assert bool((resp[n:] == PAD).all())
        assert (resp[n - 1] == EOS) or n == SMALL.max_response_len
        assert bool((resp[: n - 1] != EOS).all())
        assert r.sequences[i, : p.lengths[i]].tolist() == p.tokens[i, : p.lengths[i]].tolist()
    assert r.costs.tolist() == (p.lengths + r.response_lengths).tolist()


def test_generate_is_reproducible_from_the_generator():
    pol = _policy()
    p = sample_prompts(SMALL, 20, torch.Generator().manual_seed(0))
    a = generate(pol, p, SMALL.max_response_len, torch.Generator().manual_seed(7))
    b = generate(pol, p, SMALL.max_response_len, torch.Generator().manual_seed(7))
    assert torch.equal(a.sequences, b.sequences)


def test_response_logprobs_match_a_step_by_step_evaluation():
    pol = _policy()
    p = sample_prompts(SMALL, 6, torch.Generator().manual_seed(0))
    r = generate(pol, p, SMALL.max_response_len, torch.Generator().manual_seed(1))
    lp, mask = response_logprobs(pol, r.sequences, r.prompt_lengths, r.response_lengths)
    assert mask.sum(1).tolist() == r.response_lengths.tolist()
    for i in range(6):
        P, n = int(r.prompt_lengths[i]), int(r.response_lengths[i])
        with torch.no_grad():
            logits = pol(r.sequences[i : i + 1, : P + n - 1])[0]
        expected = torch.log_softmax(logits, -1)[
            torch.arange(P - 1, P + n - 1), r.sequences[i, P : P + n]
        ]
        torch.testing.assert_close(lp[i, :n], expected, rtol=1e-5, atol=1e-5)


def test_warm_start_lowers_the_loss():
    pol = _policy()
    losses = warm_start(
        pol, SMALL, steps=40, batch_size=32, generator=torch.Generator().manual_seed(0)
    )
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_default_warm_start_leaves_a_middling_accuracy():
    cfg = study.default_config(eval_prompts=256)
    pol = study.warm_policy(cfg, 0)
    acc = trainer.evaluate(pol, cfg.task, study.eval_prompts(cfg), 2, 0)
    assert 0.1 < acc < 0.6, acc


def test_correct_probability_is_the_expected_reward_of_a_sampled_response():
    task = WalkTask(
        modulus=11, max_stride=2, max_steps=6, max_response_len=8, unsolvable_fraction=0.3
    )
    pol = _policy(task)
    warm_start(pol, task, steps=60, batch_size=32, generator=torch.Generator().manual_seed(0))
    p = sample_prompts(task, 12, torch.Generator().manual_seed(1))
    exact = correct_probability(pol, task, p)
    unsolvable = ~(references(task, p) == EOS).any(dim=1)
    assert bool(unsolvable.any()) and bool((exact[unsolvable] == 0).all())
    assert bool((exact[~unsolvable] > 0).all()) and 0.1 < float(exact.max()) < 1
    n = 4000
    rep = trainer.Prompts(p.tokens.repeat_interleave(n, 0), p.lengths.repeat_interleave(n, 0))
    roll = generate(pol, rep, task.max_response_len, torch.Generator().manual_seed(2))
    freq = rewards(task, rep, roll.responses).view(12, n).mean(1)
    # 4000 draws: binomial sd <= 0.008; 5 sd
    torch.testing.assert_close(freq, exact, rtol=0, atol=0.04)
    ev = trainer.evaluate(pol, task, p)
    assert ev == pytest.approx(float(exact.mean()))
    assert trainer.evaluate(pol, task, p, n, 2) == pytest.approx(float(freq.mean()))


def test_reference_sequences_score_reward_one():
    task = WalkTask(modulus=11, max_stride=2, max_steps=10, max_response_len=12)
    p = sample_prompts(task, 8, torch.Generator().manual_seed(0))
    seq, rlen = reference_sequences(task, p)
    responses = seq.gather(1, p.lengths[:, None] + torch.arange(task.max_response_len))
    assert rewards(task, p, responses).tolist() == [1.0] * 8
    assert rlen.tolist() == reference_lengths(task, p).tolist()


# --- trainer ----------------------------------------------------------------------------


def test_group_advantages_are_normalised_per_group_and_zero_without_variance():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    A = group_advantages(r, 4).view(3, 4)
    assert A[1].abs().sum() == 0
    for g in (0, 2):
        assert abs(float(A[g].mean())) < 1e-6
        assert abs(float(A[g].std()) - 1.0) < 1e-4
        assert bool((A[g][r.view(3, 4)[g] == 1] > 0).all())
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.ones(5), 4)


def _batch(seed=0, zvf=False, task=SMALL):
    cfg = GRPOConfig(prompts_per_step=6, rollouts_per_prompt=4, minibatch_size=8, zvf=zvf)
    pol = _policy(task)
    warm_start(pol, task, steps=60, batch_size=32, generator=torch.Generator().manual_seed(seed))
    return pol, cfg, collect(pol, task, cfg, torch.Generator().manual_seed(seed + 1))


def test_zero_variance_filtering_keeps_only_groups_with_signal():
    _, cfg, b = _batch(zvf=True)
    groups = b.rewards.view(-1, cfg.rollouts_per_prompt)
    assert bool((groups.std(1) > 0).all())
    assert b.groups_kept == groups.shape[0] <= cfg.prompts_per_step
    assert b.generation_rounds >= 1
    assert bool((b.advantages != 0).all())


@pytest.mark.parametrize("method", [Method("none", "none"), Method("p*")])
def test_zvf_iteration_without_any_signal_takes_no_step(method):
    # every walk is longer than the cap: every group fails, ZVF keeps nothing in any round
    task = WalkTask(
        modulus=11, max_stride=2, max_steps=10, max_response_len=4, unsolvable_fraction=1.0
    )
    cfg = GRPOConfig(
        prompts_per_step=3,
        rollouts_per_prompt=4,
        minibatch_size=4,
        iterations=3,
        token_budget=None,
        eval_every=1,
        zvf=True,
        zvf_max_rounds=2,
    )
    pol = GRUPolicy(task.vocab_size, 8, 16)
    before = [p.detach().clone() for p in pol.parameters()]
    ev = sample_prompts(task, 4, torch.Generator().manual_seed(1))
    log = train(pol, task, cfg, method, seed=0, eval_prompts=ev, reference=copy.deepcopy(pol))
    assert log.iter_tokens == [0, 0, 0] and log.eval_steps == [0, 0, 0, 0]
    assert log.iter_generated_zero_adv_frac == [1.0, 1.0, 1.0]
    assert log.iter_train_reward == [0.0, 0.0, 0.0]  # the generated rollouts' mean reward
    assert all(bool(torch.equal(a, b)) for a, b in zip(before, pol.parameters(), strict=True))
    for key, values in log.as_dict().items():
        assert all(math.isfinite(v) for v in values if isinstance(v, float)), key


def test_no_sampling_uses_every_rollout_exactly_once_with_weight_one():
    _, cfg, b = _batch()
    idx, w = minibatch_plan(
        Method("none", "none"), b, cfg.minibatch_size, torch.Generator().manual_seed(0)
    )
    assert sorted(torch.cat(idx).tolist()) == list(range(len(b.advantages)))
    assert all(bool((x == 1).all()) for x in w)


def test_cost_aware_plan_skips_zero_advantages_and_recentres_weights():
    _, cfg, b = _batch()
    assert bool((b.advantages == 0).any()) and bool((b.advantages != 0).any())
    idx, w = minibatch_plan(Method("p*"), b, cfg.minibatch_size, torch.Generator().manual_seed(0))
    N = len(b.advantages)
    assert len(idx) == math.ceil(N / cfg.minibatch_size)
    drawn = torch.cat(idx)
    assert bool((b.advantages[drawn] != 0).all())
    assert abs(float(torch.cat(w).mean()) - 1.0) < 1e-5
    # weights are 1/(N p_u) up to one factor: proportional to sqrt(c_u)/|A_u|
    raw = b.rollouts.costs[drawn].double().sqrt() / b.advantages[drawn].abs().double()
    ratio = torch.cat(w).double() / raw
    torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio[0])), rtol=1e-5, atol=0)
    idx, _ = minibatch_plan(
        Method("len", "length"), b, cfg.minibatch_size, torch.Generator().manual_seed(0)
    )
    assert bool((b.advantages[torch.cat(idx)] == 0).any())  # p_LEN ignores the advantages


def _seq(tok, mask):
    return tok.sum(1) / mask.sum(1)


def test_token_objective_is_the_advantage_at_ratio_one_and_clips():
    cfg = GRPOConfig(kl_coef=0.0)
    lp = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    A = torch.tensor([2.0, -1.0])
    torch.testing.assert_close(_seq(token_objective(lp, mask, lp, A, cfg), mask), A)
    far = token_objective(lp + 1.0, mask, lp, A, cfg)  # ratio e: clipped at 1.28 for A > 0
    torch.testing.assert_close(_seq(far, mask), torch.tensor([2.0 * 1.28, -1.0 * math.e]))
    assert bool((far[~mask] == 0).all())


def test_kl_term_is_zero_at_the_reference_and_positive_away_from_it():
    cfg = GRPOConfig(kl_coef=0.5)
    lp = torch.tensor([[-1.0, -2.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    A = torch.zeros(1)
    assert float(token_objective(lp, mask, lp, A, cfg, logp_ref=lp).abs().sum()) == 0
    assert float(token_objective(lp, mask, lp, A, cfg, logp_ref=lp - 0.3).sum()) < 0


def test_cispo_gradient_equals_the_policy_gradient_at_ratio_one():
    cfg = GRPOConfig(kl_coef=0.0, loss="cispo")
    logits = torch.randn(2, 3, requires_grad=True)
    mask = torch.ones(2, 3, dtype=torch.bool)
    A = torch.tensor([1.5, -0.5])
    lp = torch.log_softmax(logits, -1)
    (g1,) = torch.autograd.grad(
        _seq(token_objective(lp, mask, lp.detach(), A, cfg), mask).sum(), logits
    )
    lp = torch.log_softmax(logits, -1)
    (g2,) = torch.autograd.grad(((A[:, None] * lp).mean(1)).sum(), logits)
    torch.testing.assert_close(g1, g2)


def _train_small(method, monkeypatch=None, record=None, **overrides):
    task = SMALL
    overrides = {"iterations": 3, **overrides}
    cfg = GRPOConfig(
        prompts_per_step=4, rollouts_per_prompt=4, minibatch_size=8, eval_every=1, **overrides
    )
    pol = _policy(task)
    warm_start(pol, task, steps=60, batch_size=32, generator=torch.Generator().manual_seed(0))
    ref = copy.deepcopy(pol)
    ev = sample_prompts(task, 16, torch.Generator().manual_seed(99))
    if record is not None:
        real_plan, real_collect = trainer.minibatch_plan, trainer.collect

        def plan(*a, **k):
            out = real_plan(*a, **k)
            record["plans"].append(out)
            return out

        def coll(*a, **k):
            out = real_collect(*a, **k)
            record["batches"].append(out)
            return out

        monkeypatch.setattr(trainer, "minibatch_plan", plan)
        monkeypatch.setattr(trainer, "collect", coll)
    before = [p.detach().clone() for p in pol.parameters()]
    log = train(pol, task, cfg, method, seed=3, eval_prompts=ev, eval_samples=2, reference=ref)
    changed = any(not torch.equal(a, b) for a, b in zip(before, pol.parameters(), strict=True))
    return log, changed


@pytest.mark.parametrize("method", [Method("none", "none"), Method("p*"), Method("s", alpha=0.05)])
def test_tokens_are_the_prompt_plus_response_tokens_of_every_drawn_sequence(monkeypatch, method):
    record = {"plans": [], "batches": []}
    log, _ = _train_small(method, monkeypatch, record)
    per_iter = [
        sum(int(b.rollouts.costs[i].sum()) for i in plan[0])
        for b, plan in zip(record["batches"], record["plans"], strict=True)
    ]
    assert log.iter_tokens == per_iter
    assert log.eval_tokens == [0, *np.cumsum(per_iter).tolist()]
    assert len(log.eval_accuracy) == 4 and all(0 <= a <= 1 for a in log.eval_accuracy)
    if method.sampling == "none":  # every rollout exactly once
        assert log.iter_tokens == log.iter_all_tokens


def test_importance_weights_reach_the_loss(monkeypatch):
    import costsgd.torch as ct

    _, changed = _train_small(Method("p*"), weight_decay=0.0)
    assert changed
    # Each draw gets its own recognisable weight; the loss of every gradient step must
    # receive exactly the weights of its own draws, in order, and apply them linearly.
    drawn, seen = [], []
    real_sample, real_loss = ct.sample_minibatches, ct.weighted_policy_loss

    def sample(*a, **k):
        idx = real_sample(*a, **k)
        drawn.extend(idx)
        return idx

    def loss(token_loss, mask, weights, **k):
        seen.append(weights.clone())
        out = real_loss(token_loss, mask, weights, **k)
        per_seq = (token_loss * mask).sum(1) / mask.sum(1).clamp(min=1)
        torch.testing.assert_close(out, (weights * per_seq).sum() / k["num_sequences"])
        return out

    monkeypatch.setattr(ct, "sample_minibatches", sample)
    monkeypatch.setattr(ct, "importance_weights", lambda probs, idx: 1.0 + idx.float() / 100)
    monkeypatch.setattr(ct, "weighted_policy_loss", loss)
    _train_small(Method("p*"), weight_decay=0.0)
    # one loss call per length-grouped micro-batch (micro_batch_size=8 = B here: one per step)
    assert len(seen) == len(drawn) > 0
    for idx, w in zip(drawn, seen, strict=True):
        assert sorted(w.tolist()) == pytest.approx(sorted((1.0 + idx.float() / 100).tolist()))
    monkeypatch.setattr(ct, "importance_weights", lambda probs, idx: torch.zeros(idx.shape))
    _, changed = _train_small(Method("p*"), weight_decay=0.0)
    assert not changed  # zero weights: zero gradient, Adam moves nothing


def test_token_budget_stops_training_once_reached():
    full, _ = _train_small(Method("none", "none"), iterations=6, token_budget=None)
    budget = int(np.cumsum(full.iter_tokens)[2])  # reached after exactly 3 iterations
    log, _ = _train_small(Method("none", "none"), iterations=6, token_budget=budget)
    assert len(log.iter_tokens) == 3 and log.eval_tokens[-1] == budget
    assert log.eval_iteration[-1] == 3  # evaluated at the stop
    with pytest.raises(ValueError, match="token_budget"):
        GRPOConfig(token_budget=0).validate()


def test_training_is_deterministic_given_the_seed():
    a, _ = _train_small(Method("p*"))
    b, _ = _train_small(Method("p*"))
    assert a.eval_accuracy == b.eval_accuracy and a.eval_tokens == b.eval_tokens


def test_micro_batches_group_by_length_and_cover_every_draw():
    costs = torch.tensor([7, 3, 9, 3, 5, 1])
    idx = torch.tensor([0, 2, 2, 4, 5, 1, 3])
    mbs = micro_batches(costs, idx, 3)
    assert sorted(torch.cat(mbs).tolist()) == sorted(idx.tolist())
    assert [len(m) for m in mbs] == [3, 3, 1]
    flat = costs[torch.cat(mbs)].tolist()
    assert flat == sorted(flat)  # grouped by length: padding only up to each group's longest


def test_micro_batching_changes_the_processed_tokens_not_the_update():
    one, _ = _train_small(Method("p*"), micro_batch_size=8, iterations=2, kl_coef=0.0)
    pol_a = _policy()
    many, _ = _train_small(Method("p*"), micro_batch_size=2, iterations=2, kl_coef=0.0)
    assert one.iter_tokens == many.iter_tokens
    # same draws and the same accumulated gradient: the same training curve
    assert one.eval_accuracy == many.eval_accuracy
    assert all(p >= d for p, d in zip(many.iter_processed_tokens, many.iter_tokens, strict=True))
    assert all(
        a >= b for a, b in zip(one.iter_processed_tokens, many.iter_processed_tokens, strict=True)
    )
    del pol_a


def test_one_pass_gradient_equals_the_micro_batch_accumulation():
    pol, cfg, b = _batch()
    idx, w = (x[0] for x in minibatch_plan(Method("p*"), b, cfg.minibatch_size, torch.Generator()))
    roll = b.rollouts

    def grads(parts):
        pol.zero_grad(set_to_none=True)
        for pos in parts:
            mi = idx[pos]
            lp, mask = response_logprobs(
                pol, roll.sequences[mi], roll.prompt_lengths[mi], roll.response_lengths[mi]
            )
            tok = token_objective(lp, mask, lp.detach(), b.advantages[mi], cfg)
            adapter.weighted_policy_loss(
                -tok, mask, w[pos], mode="seq-mean-token-mean", num_sequences=len(idx)
            ).backward()
        return [q.grad.clone() for q in pol.parameters()]

    one = grads([torch.arange(len(idx))])
    many = grads(micro_batches(roll.costs[idx], torch.arange(len(idx)), 3))
    for a, c in zip(one, many, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-6)


def test_processed_tokens_are_micro_batch_size_times_its_longest(monkeypatch):
    record = {"plans": [], "batches": []}
    log, _ = _train_small(Method("p*"), monkeypatch, record, micro_batch_size=3)
    expected = []
    for b, (idx_list, _) in zip(record["batches"], record["plans"], strict=True):
        c = b.rollouts.costs
        expected.append(
            sum(len(m) * int(c[m].max()) for idx in idx_list for m in micro_batches(c, idx, 3))
        )
    assert log.iter_processed_tokens == expected
    assert log.eval_processed_tokens == [0, *np.cumsum(expected).tolist()]


def test_controls_draw_uniformly_or_only_nonzero_advantages():
    _, cfg, b = _batch()
    nz = b.advantages != 0
    assert bool(nz.any()) and bool((~nz).any())
    g = torch.Generator().manual_seed(0)
    p = sampling_probs(Method("u", "uniform"), b, g)
    torch.testing.assert_close(p, torch.full_like(p, 1 / len(p)))
    p = sampling_probs(Method("z", "nonzero"), b, g)
    assert bool((p[~nz] == 0).all()) and float(p[nz].min()) == float(p[nz].max())
    idx, w = minibatch_plan(Method("z", "nonzero"), b, cfg.minibatch_size, g)
    assert bool((b.advantages[torch.cat(idx)] != 0).all())
    torch.testing.assert_close(torch.cat(w), torch.ones(len(torch.cat(w))))  # equal p: weight 1
    idx, _ = minibatch_plan(Method("u", "uniform"), b, cfg.minibatch_size, g)
    assert len(torch.cat(idx)) == math.ceil(len(p) / cfg.minibatch_size) * cfg.minibatch_size


def test_pstar_cost_ratio_is_the_expected_drawn_cost_over_the_mean_cost():
    _, _, b = _batch()
    c = b.rollouts.costs.double()
    w = b.advantages.abs().double() / c.sqrt()
    expected = float((w / w.sum() * c).sum() / c.mean())
    assert pstar_cost_ratio(b) == pytest.approx(expected, rel=1e-12)
    log, _ = _train_small(Method("none", "none"))
    assert len(log.iter_pstar_cost_ratio) == len(log.iter_zero_adv_frac) == 3
    assert all(0 < r for r in log.iter_pstar_cost_ratio)


def test_expected_ratios_are_the_audits_and_match_the_runs_record():
    _, _, b = _batch()
    r = trainer.expected_ratios(b)
    assert r["p*"] == pytest.approx(pstar_cost_ratio(b), rel=1e-9)
    c = b.rollouts.costs.double()
    nz = b.advantages != 0
    assert r["nonzero"] == pytest.approx(float(c[nz].mean() / c.mean()), rel=1e-12)
    log, _ = _train_small(Method("none", "none"))
    assert len(log.iter_expected_ratio_smooth) == len(log.iter_cost_spread) == 3
    assert all(x >= 1 for x in log.iter_cost_spread)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"micro_batch_size": 0}, "micro_batch_size"),
        ({"diagnose_every": 0}, "diagnose_every"),
        ({"rollouts_per_prompt": 1}, "rollouts_per_prompt"),
        ({"minibatch_size": 0}, "minibatch_size"),
        ({"lr": 0.0}, "lr"),
        ({"loss": "ppo"}, "loss"),
        ({"clip_low": -0.1}, "clip_low"),
    ],
)
def test_bad_grpo_config_raises_naming_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GRPOConfig(**kwargs).validate()


def test_bad_method_raises():
    with pytest.raises(ValueError, match="sampling"):
        Method("x", "bogus").validate()
    with pytest.raises(ValueError, match="alpha"):
        Method("x", alpha=1.5).validate()
    with pytest.raises(ValueError, match="sigma2"):
        Method("x", sigma2=-1.0).validate()


# --- diagnostics ------------------------------------------------------------------------


def test_rollout_diagnostics_use_true_gradient_norms():
    from costsgd.experiments.grpo.diagnostics import policy_gradient_loss
    from costsgd.torch.diagnostics import sequence_gradient_norms

    pol, cfg, b = _batch()
    rows = {**b.rollouts._asdict(), "advantages": b.advantages}
    G = sequence_gradient_norms(pol, rows, policy_gradient_loss(cfg)).numpy()
    assert bool((G[(b.advantages == 0).numpy()] == 0).all())
    u = int(torch.nonzero(b.advantages)[0])
    r = b.rollouts
    pol.zero_grad()
    lp, mask = response_logprobs(
        pol, r.sequences[u : u + 1], r.prompt_lengths[u : u + 1], r.response_lengths[u : u + 1]
    )
    (b.advantages[u] * lp.sum() / mask.sum()).backward()
    direct = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in pol.parameters()))
    assert abs(G[u] - direct) <= 1e-5 * direct
    d = rollout_diagnostics(cfg)(pol, b, None)
    A = b.advantages.abs().numpy()
    nz = A > 0
    assert d["pearson_nonzero"] == pytest.approx(np.corrcoef(A[nz], G[nz])[0, 1], rel=1e-6)
    assert d["pearson"] == pytest.approx(np.corrcoef(A, G)[0, 1], rel=1e-6)
    assert 0 <= d["chi2_gap"] < math.inf and d["chi2_gap_uniform"] > 0
    assert d["nonzero_fraction"] == pytest.approx(nz.mean())


def test_noise_terms_match_per_sequence_gradient_vectors():
    from costsgd.experiments.grpo.diagnostics import policy_gradient_loss

    pol, cfg, b = _batch()
    loss_fn = policy_gradient_loss(cfg)
    rows = {**b.rollouts._asdict(), "advantages": b.advantages}
    params = list(pol.parameters())
    vecs = []
    for u in range(len(b.advantages)):
        row = {k: v[u : u + 1] for k, v in rows.items()}
        grads = torch.autograd.grad(loss_fn(pol, row), params, allow_unused=True)
        vecs.append(torch.cat([g.reshape(-1) for g in grads]).double())
    g = torch.stack(vecs)
    N = g.shape[0]
    mean = g.mean(0)
    tr = float(((g - mean) ** 2).sum() / (N - 1))
    d = rollout_diagnostics(cfg)(pol, b, None)
    assert d["S_u"] == pytest.approx(tr / N, rel=1e-6)
    g2 = float(mean @ mean) - tr / N
    assert d["noise_scale"] == pytest.approx(tr / g2 if g2 > 0 else math.inf, rel=1e-6)
    import costsgd.torch as ct

    p = ct.cost_aware_probs(b.advantages, b.rollouts.costs)
    live = p > 0
    second = float(((g[live] ** 2).sum(1) / p[live]).sum()) / N**2
    draws = math.ceil(N / cfg.minibatch_size) * cfg.minibatch_size
    assert d["S_p"] == pytest.approx((second - float(mean @ mean)) / draws, rel=1e-6)
    assert d["cost_ratio"] == pytest.approx(pstar_cost_ratio(b))


def test_rollout_diagnostics_are_nan_without_signal():
    pol, cfg, b = _batch()
    flat = b._replace(advantages=torch.zeros_like(b.advantages))
    d = rollout_diagnostics(cfg)(pol, flat, None)
    assert d["nonzero_fraction"] == 0 and math.isnan(d["pearson"]) and math.isnan(d["chi2_gap"])


# --- study, report, CLI -----------------------------------------------------------------


def test_tokens_to_threshold_interpolates_the_first_crossing():
    t, a = [0, 10, 20, 30], [0.2, 0.4, 0.3, 0.6]
    assert report.tokens_to_threshold(t, a, 0.3) == pytest.approx(5.0)
    assert report.tokens_to_threshold(t, a, 0.5) == pytest.approx(20 + 10 * 2 / 3)
    assert report.tokens_to_threshold(t, a, 0.1) == 0.0
    assert report.tokens_to_threshold(t, a, 0.7) == math.inf


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((0.30, 0.25, (0.05, 0.4), -1.0), "reproduced"),
        ((0.30, 0.25, (0.05, 0.4), -2.0), "inconclusive"),  # accuracy loss: not covered
        ((0.30, 0.25, (-0.05, 0.4), 0.0), "not reproduced"),  # interval includes 0
        ((0.30, 0.10, (0.02, 0.2), 0.0), "not reproduced"),  # under half the expected
        ((0.20, 0.25, (0.05, 0.4), 0.0), "inconclusive"),  # expected between 15% and 25%
        ((0.20, 0.05, (0.01, 0.1), 0.0), "not reproduced"),
        ((0.14, 0.40, (0.3, 0.5), 0.0), "inconclusive"),  # no mechanism
    ],
)
def test_verdict_rule_cases(args, expected):
    assert report.verdict(*args)["verdict"] == expected


def test_choose_lr_takes_the_best_mean_accuracy_and_the_smaller_on_ties():
    runs = [
        {"stage": "sweep", "lr": lr, "eval_accuracy": acc}
        for lr, acc in ((1e-3, [0.1, 0.5]), (2e-3, [0.1, 0.4]), (4e-4, [0.2, 0.3]))
    ]
    assert report.choose_lr(runs) == 1e-3
    runs.append({"stage": "sweep", "lr": 3e-4, "eval_accuracy": [0.2, 0.4]})  # ties with 1e-3
    runs.append({"stage": "main", "lr": 5e-3, "eval_accuracy": [0.9, 0.9]})  # not a sweep run
    assert report.choose_lr(runs) == 3e-4


def _fake_results(scale: float, seeds=(0, 1, 2, 3), noise=0.0):
    """Baseline curves and a method whose curve is the baseline's at ``scale`` x the tokens."""
    rng = np.random.default_rng(0)
    runs = []
    for s in seeds:
        for m, f in (("no sampling", 1.0), ("p*", scale)):
            base_t = np.arange(0, 1000 / f + 1, 50.0)  # every run spends the budget of 1000
            acc = 0.2 + 0.3 * (1 - np.exp(-base_t / 150)) + 0.01 * s
            jitter = noise * rng.standard_normal(len(acc)) if m == "p*" else 0.0
            a = (acc + jitter).tolist()
            a[0] = float(acc[0])
            t = (f * base_t).tolist()
            runs.append(
                {
                    "stage": "main",
                    "seed": s,
                    "method": m,
                    "eval_tokens": t,
                    "eval_processed_tokens": [1.2 * x for x in t],
                    "eval_accuracy": a,
                    "iter_tokens": [100 * f] * 20,
                    "iter_processed_tokens": [120 * f] * 20,
                    "iter_pstar_cost_ratio": [scale] * 20,
                    "iter_zero_adv_frac": [0.4] * 20,
                    "diagnostics": [],
                }
            )
    cfg = {
        "seeds": list(seeds),
        "methods": ["no sampling", "p*"],
        "regime_seeds": [],
        "eval_prompts": 512,
        "eval_samples": None,
        "grpo": {"token_budget": 1000, "minibatch_size": 32, "eval_every": 5},
    }
    return {"config": cfg, "runs": runs, "lr": 1e-3}


def test_summary_measures_a_known_token_saving_and_applies_the_rule():
    s = study.summary(_fake_results(0.6))
    row = {r["method"]: r for r in s["rows"]}["p*"]
    # the method's curve is the baseline's at 0.6x the tokens: a 40% saving at every threshold
    assert row["drawn"]["saving"] == pytest.approx(0.4, abs=1e-9)
    assert row["processed"]["saving"] == pytest.approx(0.4, abs=1e-9)
    assert all(x["saving"] == pytest.approx(0.4) for x in row["drawn"]["per_threshold"])
    assert row["drawn"]["ci"][0] == pytest.approx(0.4) and row["drawn"]["censored"]["other"] == 0
    assert row["drawn_per_iteration_vs_baseline"] == pytest.approx(0.6)
    assert s["verdicts"]["p*"]["verdict"] == "reproduced"
    assert s["baseline_plateaued"]
    same = study.summary(_fake_results(1.0, noise=0.02))
    assert same["verdicts"]["p*"]["verdict"] == "inconclusive"  # expected saving 0 < 15%
    r = {x["method"]: x for x in same["rows"]}["p*"]["drawn"]
    assert r["ci"][0] < 0 < r["ci"][1]


def test_summary_censors_a_run_that_never_reaches_the_threshold():
    res = _fake_results(0.6)
    for run in res["runs"]:
        if run["method"] == "p*" and run["seed"] == 0:
            run["eval_accuracy"] = [run["eval_accuracy"][0]] * len(run["eval_accuracy"])
    row = {r["method"]: r for r in study.summary(res)["rows"]}["p*"]
    assert row["drawn"]["censored"]["other"] == len(report.FRACTIONS)
    assert row["drawn"]["saving"] < 0.4  # censored at its final tokens, not dropped


def test_study_config_validation():
    with pytest.raises(ValueError, match="unknown method"):
        study.default_config(methods=("no sampling", "p**"))
    with pytest.raises(ValueError, match="'no sampling' first"):
        study.default_config(methods=("p*",))
    with pytest.raises(ValueError, match="setting"):
        study.default_config(setting="PPO")
    with pytest.raises(ValueError, match="seeds"):
        study.default_config(seeds=(1, 1))
    with pytest.raises(ValueError, match="at least 2 seeds"):
        study.default_config(seeds=(1,), regime_seeds=())
    with pytest.raises(ValueError, match="sweep_seeds"):
        study.default_config(sweep_seeds=(0,))
    with pytest.raises(ValueError, match="regime_seeds"):
        study.default_config(regime_seeds=(99,))
    with pytest.raises(ValueError, match="lrs"):
        study.default_config(lrs=())


def test_smoke_study_end_to_end_through_the_cli(tmp_path):
    from costsgd.cli import main

    assert main(["grpo-study", "--smoke", "--out", str(tmp_path), "--no-progress"]) == 0
    results = study.load_results(tmp_path / "grpo_study.json")
    cfg = study.config_from_dict(results["config"])
    assert cfg == study.smoke_config()
    assert set(results["versions"]) >= {"costsgd", "torch", "numpy"}
    stages = [r["stage"] for r in results["runs"]]
    assert stages.count("sweep") == len(cfg.sweep_jobs())
    assert len(results["runs"]) == len(cfg.sweep_jobs()) + len(cfg.main_jobs())
    assert results["lr"] == report.choose_lr(results["runs"])
    assert {r["lr"] for r in results["runs"] if r["stage"] == "main"} == {results["lr"]}
    n_evals = cfg.grpo.iterations // cfg.grpo.eval_every + 1
    for run in results["runs"]:
        assert len(run["eval_accuracy"]) == n_evals
        assert np.all(np.diff(run["eval_tokens"]) > 0)
        assert run["eval_tokens"][-1] == sum(run["iter_tokens"])
        assert run["eval_processed_tokens"][-1] == sum(run["iter_processed_tokens"])
        assert len(run["iter_pstar_cost_ratio"]) == cfg.grpo.iterations
        diagnosed = run["stage"] == "main" and run["method"] in ("no sampling", "p*")
        diagnosed = diagnosed and run["seed"] in cfg.regime_seeds
        assert bool(run["diagnostics"]) == diagnosed
    # every method of a seed starts from the same warm start and evaluation draws
    for seed in cfg.seeds:
        first = {r["eval_accuracy"][0] for r in results["runs"] if r["seed"] == seed}
        assert len(first) == 1
    summary = json.loads((tmp_path / "grpo_study_summary.json").read_text())
    assert {r["method"] for r in summary["rows"]} == set(cfg.methods)
    assert summary["verdicts"]["p*"]["verdict"] in ("reproduced", "not reproduced", "inconclusive")
    assert set(summary["regime"]["runs"]) == set(study.REGIMES)
    assert (tmp_path / "grpo_study.png").stat().st_size > 10_000
    text = (tmp_path / "grpo_study.md").read_text()
    assert "## Verdict" in text and report.VERDICT_RULE in text and "| p\\* |" in text
    # redraw from the file alone
    (tmp_path / "grpo_study.png").unlink()
    argv = ["grpo-study", "--replot", str(tmp_path / "grpo_study.json"), "--out", str(tmp_path)]
    assert main(argv) == 0
    assert (tmp_path / "grpo_study.png").exists()


def test_cli_selects_task_methods_and_budget(tmp_path, capsys):
    from costsgd.cli import main

    argv = ["grpo-study", "--smoke", "--out", str(tmp_path), "--no-progress", "--task", "sort"]
    argv += ["--methods", "p*", "--token-budget", "300", "--iterations", "6", "--seeds", "0", "1"]
    assert main(argv) == 0
    results = study.load_results(tmp_path / "grpo_study.json")
    cfg = study.config_from_dict(results["config"])
    assert cfg.task == SortTask() and cfg.methods == ("no sampling", "p*")
    assert results["config"]["grpo"]["token_budget"] == 300
    for run in results["runs"]:
        tokens = np.cumsum(run["iter_tokens"])
        assert tokens[-1] >= 300 and (len(tokens) == 6 or bool((tokens[:-1] < 300).all()))
    assert main(["grpo-study", "--smoke", "--out", str(tmp_path), "--seeds", "100", "1"]) == 2
    assert "sweep_seeds" in capsys.readouterr().err


def test_cli_with_other_seeds_runs_the_regime_on_them(tmp_path):
    from costsgd.cli import main

    argv = ["grpo-study", "--smoke", "--out", str(tmp_path), "--no-progress", "--seeds", "7", "8"]
    assert main(argv) == 0
    results = study.load_results(tmp_path / "grpo_study.json")
    assert {(r["seed"], r["method"]) for r in results["runs"] if r["stage"] == "regime"} == {
        (7, v) for v in study.REGIMES
    }
    text = (tmp_path / "grpo_study.md").read_text()
    assert "nan" not in text.lower() and "unknown" not in text and " 0 points" not in text
    import markdown

    items = markdown.markdown(text).count("<li>baseline ")
    assert items == len(study.REGIMES), "the regime runs render as a list"


def test_infinite_noise_scales_give_quartiles_never_nan(tmp_path):
    from costsgd.cli import main

    argv = ["grpo-study", "--smoke", "--out", str(tmp_path), "--no-progress", "--seeds", "7", "8"]
    assert main(argv) == 0
    results = study.load_results(tmp_path / "grpo_study.json")
    diags = [d for r in results["runs"] for d in r.get("diagnostics") or []]
    assert len(diags) >= 4
    for d in diags:  # every pool gradient 0: tr Σ/‖g‖² = inf, as an all-zero-advantage pool gives
        d["noise_scale"] = float("inf")
    g = study.summary(results)["regime"]  # RuntimeWarning (an error in the suite) before the fix
    assert g["noise_scale_quartiles"] == [float("inf")] * 2
    assert "nan" not in report.format_report(study.summary(results)).lower()


def test_report_states_a_missing_regime_as_a_gap_never_nan():
    s = study.summary(_fake_results(0.6))  # no regime seeds, no diagnosed iteration
    text = report.format_report(s)
    assert "nan" not in text.lower() and "unknown" not in text
    assert "Regime: not measured" in text


def _tiny_study(**overrides):
    kw = {"methods": ("no sampling", "p*"), "lrs": (1e-3,), "regime_seeds": (), **overrides}
    return study.smoke_config(**kw)


def test_a_resumed_study_runs_only_what_is_missing(tmp_path, monkeypatch):
    cfg = _tiny_study()
    path = tmp_path / "r.json"
    full = study.run(cfg, progress=False, checkpoint=path)
    assert full["complete"] and full["sessions"] == 1
    interrupted = dict(full, runs=full["runs"][:3], complete=False)
    study.save_results(interrupted, path)
    ran = []
    real = study._run_job
    monkeypatch.setattr(
        study, "_run_job", lambda c, lr, job, **k: ran.append(job) or real(c, lr, job, **k)
    )
    again = study.run(cfg, progress=False, checkpoint=path)
    assert sorted(ran) == sorted(study.job_key(r) for r in full["runs"][3:])
    assert again["runs"][:3] == json.loads(json.dumps(full["runs"][:3]))
    assert sorted(map(study.job_key, again["runs"])) == sorted(map(study.job_key, full["runs"]))
    assert again["complete"] and again["sessions"] == 2 and again["lr"] == full["lr"]
    ran.clear()
    study.run(cfg, progress=False, checkpoint=path)  # complete: nothing to run
    assert ran == []
    # interrupted during the sweep: no learning rate yet, no baseline run
    sweep_only = dict(full, runs=full["runs"][:1], lr=None, complete=False)
    study.save_results(sweep_only, path)
    with pytest.raises(ValueError, match="lr"):
        study.load_results(path)  # not a file to summarise...
    again = study.run(cfg, progress=False, checkpoint=path)  # ...but one to resume
    assert sorted(ran) == sorted(study.job_key(r) for r in full["runs"][1:])
    assert again["lr"] == full["lr"]


def test_a_resumed_study_with_another_configuration_is_refused_naming_the_keys(tmp_path):
    path = tmp_path / "r.json"
    study.run(_tiny_study(), progress=False, checkpoint=path)
    other = _tiny_study(seeds=(0, 2), grpo=dataclasses.replace(_tiny_study().grpo, iterations=5))
    with pytest.raises(ValueError, match=r"differs in: grpo\.iterations, seeds\)"):
        study.run(other, progress=False, checkpoint=path)
    assert study.run(other, progress=False, checkpoint=path, resume=False)["sessions"] == 1


def test_cli_refuses_to_resume_another_configuration(tmp_path, capsys):
    from costsgd.cli import main

    argv = ["grpo-study", "--smoke", "--out", str(tmp_path), "--no-progress", "--methods", "p*"]
    argv += ["--lrs", "1e-3", "--iterations", "2"]
    assert main(argv) == 0
    ran = study.load_results(tmp_path / "grpo_study.json")["runs"]
    assert main([*argv, "--seeds", "0", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "differs in: seeds)" in err
    assert study.load_results(tmp_path / "grpo_study.json")["runs"] == ran  # untouched


def test_save_results_is_atomic_and_load_rejects_other_files(tmp_path):
    path = tmp_path / "r.json"
    run = {"stage": "main", "method": "no sampling", "seed": 0, "lr": 1e-3}
    run |= {k: [1.0] for k in ("eval_tokens", "eval_processed_tokens", "eval_accuracy")}
    run |= {k: [1.0] for k in ("iter_tokens", "iter_processed_tokens")}
    run |= {k: [1.0] for k in ("iter_pstar_cost_ratio", "iter_zero_adv_frac")}
    grpo = {"token_budget": None, "eval_every": 1}
    config = {"methods": ["no sampling"], "seeds": [0], "regime_seeds": [], "grpo": grpo}
    study.save_results({"config": config, "runs": [run], "lr": 1e-3, "x": float("nan")}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert math.isnan(study.load_results(path)["x"])
    (tmp_path / "r.json").write_text(path.read_text().replace('"seed": 0', '"seed": "0"'))
    with pytest.raises(ValueError, match=r"runs'\]\[0\]\['seed'\] must be an integer"):
        study.load_results(path)  # checked against study.SCHEMA
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not a grpo-study"):
        study.load_results(tmp_path / "other.json")


def test_report_renders_method_names_literally():
    s = study.summary(_fake_results(0.6))
    root = rendered_markdown(report.format_report(s))
    bold = ["".join(e.itertext()) for e in root.iter("strong")]
    assert [b.split(":")[0] for b in bold if b.endswith(tuple(("reproduced", "inconclusive")))] == [
        m for m in s["verdicts"]
    ]
    table = next(root.iter("table"))
    names = ["".join(r.find("td").itertext()) for r in table.findall("./tbody/tr")]
    assert names == [r["method"] for r in s["rows"]]
    assert not [e for e in root.iter("em") if "p" in "".join(e.itertext())]
