"""costsgd.torch.distributed: global and stratified draws on 2 gloo processes (CPU)."""

import math

import pytest
import torch
import torch.multiprocessing as mp

from costsgd.torch import cost_aware_probs, importance_weights, sample_minibatches
from costsgd.torch.distributed import global_plan, stratified_plan

SIZES = (12, 20)  # unequal local pools
B, SEED = 3, 123


def _local_pool(rank):
    g = torch.Generator().manual_seed(rank)
    adv = torch.randn(SIZES[rank], generator=g)
    adv[::4] = 0.0
    lengths = torch.randint(5, 300, (SIZES[rank],), generator=g).double()
    return adv, lengths


def _worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        adv, lengths = _local_pool(rank)
        shard = global_plan(adv, lengths, B, seed=SEED)
        strat = stratified_plan(
            adv, lengths, B, generator=torch.Generator().manual_seed(100 + rank)
        )
        try:
            global_plan(adv, lengths, B, seed=rank)  # ranks disagree on the seed
            mismatch_caught = False
        except ValueError:
            mismatch_caught = True
        # Bad input on rank 1 only: every rank must raise (none may hang in a collective).
        bad = adv.clone()
        if rank == 1:
            bad[0] = float("nan")
        raised = {}
        for name, plan in (
            ("global", lambda: global_plan(bad, lengths, B, seed=SEED)),
            ("stratified", lambda: stratified_plan(bad, lengths, B)),
        ):
            try:
                plan()
                raised[name] = ""
            except ValueError as err:
                raised[name] = str(err)
        torch.save(
            {
                "global": shard._asdict() | {"plan": shard.plan._asdict()},
                "strat": strat._asdict(),
                "mismatch_caught": mismatch_caught,
                "raised": raised,
            },
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(2, str(tmp / "init"), str(tmp)), nprocs=2, join=True)
    return [torch.load(tmp / f"rank{r}.pt") for r in range(2)]


def test_global_strategy_shards_one_shared_draw(results):
    pools = [_local_pool(r) for r in range(2)]
    adv = torch.cat([p[0] for p in pools])
    lengths = torch.cat([p[1] for p in pools])
    probs = cost_aware_probs(adv, lengths)
    T = math.ceil(sum(SIZES) / (B * 2))
    everyone = sample_minibatches(
        probs, 2 * B, num_batches=T, generator=torch.Generator().manual_seed(SEED)
    )
    weights = importance_weights(probs, everyone)
    got = [r["global"] for r in results]
    assert all(tuple(g["plan"]["indices"].shape) == (T, B) for g in got)  # same micro-steps
    torch.testing.assert_close(got[0]["plan"]["probs"], probs)
    assert torch.equal(torch.cat([g["plan"]["indices"] for g in got], dim=1), everyone)
    torch.testing.assert_close(torch.cat([g["plan"]["weights"] for g in got], dim=1), weights)
    for g in got:  # owner / local_index locate each draw in the ranks' pools
        idx, owner, local = g["plan"]["indices"], g["owner"], g["local_index"]
        assert torch.equal(idx, local + torch.tensor([0, SIZES[0]])[owner])
        assert bool((local < torch.tensor(SIZES)[owner]).all())


def test_stratified_strategy_draws_locally_with_global_normalisation(results):
    N, W = sum(SIZES), 2
    T = math.ceil(N / (B * W))
    raws = []
    for rank, r in enumerate(results):
        plan = r["strat"]
        adv, lengths = _local_pool(rank)
        p = cost_aware_probs(adv, lengths)
        torch.testing.assert_close(plan["probs"], p)
        assert tuple(plan["indices"].shape) == (T, B)  # same micro-steps on both ranks
        assert bool((p[plan["indices"]] > 0).all())  # local rollouts with mass only
        expected = torch.Generator().manual_seed(100 + rank)
        assert torch.equal(
            plan["indices"], sample_minibatches(p, B, num_batches=T, generator=expected)
        )
        raws.append(W / (N * p[plan["indices"]]))  # = 1/(N_r p) * W N_r / N
    mean = torch.cat([x.reshape(-1) for x in raws]).mean()
    for raw, r in zip(raws, results, strict=True):
        torch.testing.assert_close(r["strat"]["weights"].double(), raw / mean, rtol=1e-6, atol=0)


def test_ranks_with_different_seeds_are_refused(results):
    assert [r["mismatch_caught"] for r in results] == [True, True]


def test_stratified_weights_make_the_rank_average_unbiased():
    # E over each rank's draw of W/(N p_r) * loss, averaged over ranks (what DDP does), is the
    # global pool mean, even with unequal shards. Exact, by summing over each rank's support.
    N, W = sum(SIZES), 2
    losses, per_rank = [], []
    for rank in range(2):
        adv, lengths = _local_pool(rank)
        loss = adv.double() * 3.0 + adv.double() ** 2  # zero where the advantage is zero
        p = cost_aware_probs(adv, lengths)
        per_rank.append(float((p * torch.where(p > 0, W / (N * p), 0.0) * loss).sum()))
        losses.append(loss)
    assert sum(per_rank) / W == pytest.approx(float(torch.cat(losses).mean()), rel=1e-12)


def test_without_a_process_group_both_strategies_are_the_single_process_plan():
    adv, lengths = _local_pool(0)
    shard = global_plan(adv, lengths, 4, seed=5)
    p = cost_aware_probs(adv, lengths)
    idx = sample_minibatches(p, 4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(shard.plan.indices, idx) and bool((shard.owner == 0).all())
    strat = stratified_plan(adv, lengths, 4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(strat.indices, idx)
    torch.testing.assert_close(strat.weights, importance_weights(p, idx))


def test_bad_input_on_one_rank_raises_on_every_rank(results):
    for name in ("global", "stratified"):
        assert "finite" in results[1]["raised"][name]  # the rank with the NaN names the problem
        assert "another rank" in results[0]["raised"][name]  # the other one is told, not hung
