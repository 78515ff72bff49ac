"""The mini Cost-Aware GRPO study: task, policy, trainer, study, report, CLI."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from costsgd.experiments.grpo import report, study, trainer
from costsgd.experiments.grpo.diagnostics import rollout_diagnostics
from costsgd.experiments.grpo.policy import GRUPolicy, generate, response_logprobs, warm_start
from costsgd.experiments.grpo.task import (
    BOS,
    EOS,
    PAD,
    SEP,
    SortTask,
    references,
    rewards,
    sample_prompts,
)
from costsgd.experiments.grpo.trainer import (
    GRPOConfig,
    Method,
    collect,
    group_advantages,
    minibatch_plan,
    token_objective,
    train,
)

SMALL = SortTask(num_symbols=3, min_len=1, max_len=5)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: intra-op threads only add contention (the study runs with one, too).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    cfg = study.default_config()
    pol, _ = study._warm_policy(cfg, 0)
    acc = trainer.evaluate(pol, cfg.task, study._eval_prompts(cfg), cfg.eval_samples, 0)
    assert 0.15 < acc < 0.75, acc


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
    assert len(seen) == len(drawn) > 0
    for idx, w in zip(drawn, seen, strict=True):
        torch.testing.assert_close(w, 1.0 + idx.float() / 100)
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


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
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


def test_rollout_diagnostics_are_nan_without_signal():
    pol, cfg, b = _batch()
    flat = b._replace(advantages=torch.zeros_like(b.advantages))
    d = rollout_diagnostics(cfg)(pol, flat, None)
    assert d["nonzero_fraction"] == 0 and math.isnan(d["pearson"]) and math.isnan(d["chi2_gap"])


# --- study, report, CLI -----------------------------------------------------------------


def test_savings_on_hand_made_curves():
    base_t, base_a = [0, 10, 20, 30, 40], [0.2, 0.3, 0.4, 0.5, 0.45]
    same = report.savings(base_t, base_a, base_t, base_a)
    assert same == {"to_baseline_peak": 0.0, "to_own_peak": 0.0}
    half = report.savings(base_t, base_a, [0, 5, 10, 15, 20], base_a)
    assert half == {"to_baseline_peak": 0.5, "to_own_peak": 0.5}
    better = report.savings(base_t, base_a, [0, 10, 20, 30, 40], [0.2, 0.5, 0.6, 0.6, 0.6])
    # reaches 0.5 at 10 vs 30; its own peak 0.6 at 20, baseline never within 2% of 0.6
    assert better["to_baseline_peak"] == pytest.approx(1 - 10 / 30)
    assert math.isnan(better["to_own_peak"])
    worse = report.savings(base_t, base_a, base_t, [0.2, 0.2, 0.3, 0.3, 0.3])
    assert math.isnan(worse["to_baseline_peak"])
    # own peak 0.3, reached at 20; baseline reaches 0.98 * 0.3 at 10
    assert worse["to_own_peak"] == pytest.approx(1 - 20 / 10)


def test_study_config_validation():
    with pytest.raises(ValueError, match="unknown method"):
        study.default_config(runs=(("GRPO", ("no sampling", "p**")),))
    with pytest.raises(ValueError, match="'no sampling' first"):
        study.default_config(runs=(("GRPO", ("p*",)),))
    with pytest.raises(ValueError, match="unknown setting"):
        study.default_config(runs=(("PPO", ("no sampling",)),))
    with pytest.raises(ValueError, match="seeds"):
        study.default_config(seeds=(1, 1))


def test_default_config_covers_the_papers_settings_and_methods():
    cfg = study.default_config()
    runs = dict(cfg.runs)
    assert set(runs) == {"GRPO", "GRPO+ZVF", "CISPO"}
    assert set(runs["GRPO"]) == set(study.METHODS)
    assert {"p*_smooth(0.01)", "p*_smooth(0.05)", "p*_smooth(0.1)", "p_LEN"} <= set(
        runs["GRPO+ZVF"]
    )
    assert len(cfg.seeds) >= 3
    assert cfg.grpo.clip_low == 0.2 and cfg.grpo.clip_high == 0.28 and cfg.grpo.kl_coef == 0.001
    n, m, B = cfg.grpo.prompts_per_step, cfg.grpo.rollouts_per_prompt, cfg.grpo.minibatch_size
    assert n * m // B == 4  # Table 2: 256 prompts / 64-prompt mini-batches


def test_smoke_study_end_to_end_through_the_cli(tmp_path):
    from costsgd.cli import main

    assert main(["grpo-study", "--smoke", "--out", str(tmp_path), "--no-progress"]) == 0
    results = study.load_results(tmp_path / "grpo_study.json")
    cfg = study.config_from_dict(results["config"])
    assert cfg == study.smoke_config()
    assert set(results["versions"]) >= {"costsgd", "torch", "numpy"}
    assert len(results["runs"]) == len(cfg.jobs())
    n_evals = cfg.grpo.iterations // cfg.grpo.eval_every + 1
    for run in results["runs"]:
        assert len(run["eval_accuracy"]) == n_evals
        assert np.all(np.diff(run["eval_tokens"]) > 0)
        assert run["eval_tokens"][-1] == sum(run["iter_tokens"])
        has_diag = (run["setting"], run["method"]) in cfg.diagnostics
        assert bool(run["diagnostics"]) == has_diag
    # every method of a seed starts from the same warm start and evaluation draws
    first = {run["eval_accuracy"][0] for run in results["runs"]}
    assert len(first) == 1
    summary = json.loads((tmp_path / "grpo_study_summary.json").read_text())
    assert {r["method"] for r in summary["table"]} == {"no sampling", "p*", "p_LEN"}
    base = [r for r in summary["table"] if r["method"] == "no sampling"]
    assert all(r["tokens_per_iteration_vs_baseline"]["mean"] == 1.0 for r in base)
    assert (tmp_path / "grpo_study.png").stat().st_size > 10_000
    text = (tmp_path / "grpo_study.md").read_text()
    assert "| GRPO | p* |" in text and "Pearson" in text
    # redraw from the file alone
    (tmp_path / "grpo_study.png").unlink()
    assert (
        main(["grpo-study", "--replot", str(tmp_path / "grpo_study.json"), "--out", str(tmp_path)])
        == 0
    )
    assert (tmp_path / "grpo_study.png").exists()


def test_cli_filters_settings_and_methods_and_sets_the_budget(tmp_path):
    from costsgd.cli import main

    argv = ["grpo-study", "--smoke", "--out", str(tmp_path), "--no-progress", "--settings", "GRPO"]
    argv += ["--methods", "p*", "--token-budget", "300", "--iterations", "6"]
    assert main(argv) == 0
    results = study.load_results(tmp_path / "grpo_study.json")
    assert results["config"]["runs"] == [["GRPO", ["no sampling", "p*"]]]
    assert results["config"]["grpo"]["token_budget"] == 300
    for run in results["runs"]:
        tokens = np.cumsum(run["iter_tokens"])
        assert tokens[-1] >= 300 and (len(tokens) == 6 or tokens[-2] < 300)


def test_save_results_is_atomic_and_load_rejects_other_files(tmp_path):
    path = tmp_path / "r.json"
    study.save_results({"config": {}, "runs": [], "x": float("nan")}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not a grpo-study"):
        study.load_results(tmp_path / "other.json")
