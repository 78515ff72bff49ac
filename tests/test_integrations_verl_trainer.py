"""costsgd.integrations.verl_trainer inside verl 0.9.1: the v1 trainer on a real TransferQueue, and the legacy one.

A local Ray cluster holds TransferQueue, as in verl; the actor worker group is a
recorder that fetches what verl's worker would fetch, and verl's ``ppo_loss``
is then run on it. Runs where verl is installed (``make test``: ``.venv-verl``).
"""

import warnings

import numpy as np
import pytest
import torch

with warnings.catch_warnings():
    # import-time notices about optional verl backends and ray's moved state API
    warnings.filterwarnings("ignore", message=r".*engine is not available", category=UserWarning)
    warnings.filterwarnings("ignore", message=r"Ray state API", category=DeprecationWarning)
    pytest.importorskip(
        "verl", reason="verl is not installed here; `make test` runs this file in .venv-verl"
    )
    import ray
    import transfer_queue as tq
    from omegaconf import OmegaConf
    from tensordict import TensorDict
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.utils import tensordict_utils as tu
    from verl.workers.config import ActorConfig
    from verl.workers.utils.losses import ppo_loss

    from costsgd.integrations.verl import plan_verl_batch, token_mean_weights
    from costsgd.integrations.verl_trainer import (
        CostAwarePPOTrainer,
        CostAwareRayPPOTrainer,
        cost_aware_settings,
        plan_pool,
    )
    from costsgd.torch import SamplingOptions, weighted_policy_loss

N_PROMPTS, ROLLOUT_N = 4, 4
N = N_PROMPTS * ROLLOUT_N
MINI = 2  # ppo_mini_batch_size (prompts) -> B = 8 rollouts
B = MINI * ROLLOUT_N
DP = 2
PAD = 2  # the last two rows are verl's padding samples (is_padding tags)
STEP = 3
SEED = 123


@pytest.fixture(scope="module")
def transfer_queue():
    if ray.is_initialized():
        pytest.fail("a Ray cluster is already running in this process")
    ray.init(
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        # what docs/verl.md tells users to pass as +ray_kwargs.ray_init.runtime_env...
        runtime_env={"worker_process_setup_hook": "costsgd.integrations.verl_trainer.setup_worker"},
    )
    conf = {"backend": {"storage_backend": "SimpleStorage", "SimpleStorage": {}}}
    conf["backend"]["SimpleStorage"] = {"total_storage_size": 1000, "num_data_storage_units": 1}
    tq.init(OmegaConf.create(conf))
    yield tq
    tq.close()
    ray.shutdown()


def verl_config(mode="seq-mean-token-mean", **cost_aware):
    """verl 0.9.1's default PPO config (its generated reference yaml) set up for a small GRPO step."""
    import verl.trainer.config as config_pkg

    path = f"{config_pkg.__path__[0]}/_generated_ppo_trainer.yaml"
    cfg = OmegaConf.load(path)
    actor = cfg.actor_rollout_ref.actor
    actor.ppo_mini_batch_size = MINI
    actor.loss_agg_mode = mode
    actor.data_loader_seed = SEED
    cfg.actor_rollout_ref.rollout.n = ROLLOUT_N
    cfg.algorithm.adv_estimator = "grpo"
    cfg.critic.enable = False  # GRPO: no critic (verl warns when it has to infer that)
    cfg.trainer.v1.trainer_mode = "cost_aware"
    if cost_aware:
        OmegaConf.update(cfg, "trainer.v1.cost_aware", cost_aware, force_add=True)
    return cfg


def pool_samples(seed=0):
    """Per-sample fields as verl's agent loop puts them into TransferQueue, with GRPO advantages."""
    g = torch.Generator().manual_seed(seed)
    samples, tags = [], []
    adv_by_group = torch.randn(N_PROMPTS, ROLLOUT_N, generator=g)
    adv_by_group[0] = 0.0  # one all-correct group
    for i in range(N):
        p_len = int(torch.randint(2, 6, (1,), generator=g))
        r_len = int(torch.randint(1, 10, (1,), generator=g))
        padding = i >= N - PAD
        adv = 0.0 if padding else float(adv_by_group[i // ROLLOUT_N, i % ROLLOUT_N])
        prompts = torch.randint(3, 50, (p_len,), generator=g)
        responses = torch.randint(3, 50, (r_len,), generator=g)
        scores = torch.zeros(r_len)
        scores[-1] = float(
            r_len <= 4
        )  # short answers score: the draws' scores differ from the pool's
        samples.append(
            {
                "prompts": prompts,
                "responses": responses,
                "input_ids": torch.cat([prompts, responses]),
                "response_mask": torch.ones(r_len, dtype=torch.int64),
                "loss_mask": torch.ones(r_len, dtype=torch.int64),
                "advantages": torch.full((r_len,), adv),
                "old_log_probs": -torch.rand(r_len, generator=g),
                "returns": torch.full((r_len,), adv),
                "values": torch.zeros(r_len),
                "rm_scores": scores,
                "token_level_rewards": scores,
                "num_turns": 1,
                "uid": f"pad-{i}" if padding else f"prompt-{i // ROLLOUT_N}",
                "multi_modal_inputs": {"pixel_values": i},
            }
        )
        tag = {"seq_len": p_len + r_len, "prompt_len": p_len, "response_len": r_len}
        tag |= {"global_steps": STEP, "min_global_steps": STEP - 1, "max_global_steps": STEP - 1}
        if padding:
            tag["is_padding"] = True
        tags.append(tag)
    return samples, tags


def put_pool(transfer_queue, name):
    samples, tags = pool_samples()
    keys = [f"{name}_{i}" for i in range(N)]
    transfer_queue.kv_batch_put(
        keys=keys, partition_id=name, fields=tu.list_of_dict_to_tensordict(samples), tags=tags
    )
    from transfer_queue import KVBatchMeta

    return KVBatchMeta(keys=keys, tags=tags, partition_id=name, extra_info={"temperature": 1.0})


class RecordingActorGroup:
    """Stands for verl's actor RayWorkerGroup: fetches the batch from TransferQueue, as its workers do."""

    def __init__(self, dp_size):
        self._dispatch_info = {"actor": list(range(dp_size))}
        self.calls = []
        self.metrics = {"mfu": [0.5], "pg_loss": [1.0, 2.0]}

    def update_actor(self, batch):
        if isinstance(batch, TensorDict):  # the legacy trainer sends the tensors themselves
            self.calls.append((batch, batch, None))
        else:  # the v1 trainer sends a KVBatchMeta
            data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id)
            self.calls.append((batch, data, dict(batch.extra_info)))
        # the reply of TrainingWorker.train_mini_batch
        return tu.get_tensordict(tensor_dict={}, non_tensor_dict={"metrics": self.metrics})


def v1_trainer(cfg, dp_size=DP):
    trainer = object.__new__(CostAwarePPOTrainer)  # fields _update_actor reads; no workers
    trainer.config = cfg
    trainer.global_steps = STEP
    trainer.actor_rollout_wg = RecordingActorGroup(dp_size)
    return trainer


def test_setup_hook_registers_the_trainer_mode_in_ray_workers(transfer_queue):
    # verl's TaskRunnerV1 looks the mode up with get_trainer_cls inside a Ray actor
    remote_lookup = ray.remote(get_trainer_cls)
    assert ray.get(remote_lookup.remote("cost_aware")) is CostAwarePPOTrainer


def test_v1_update_actor_trains_on_the_draws_and_hands_back_the_pool(transfer_queue):
    pool = put_pool(transfer_queue, "v1")
    cfg = verl_config()
    trainer = v1_trainer(cfg)
    metrics = {}
    out = trainer._update_actor(pool, metrics)

    assert out is pool  # verl's _compute_metrics then logs the pool's statistics
    assert set(transfer_queue.kv_list("v1")["v1"]) == set(pool.keys)  # the copies are cleared
    (drawn_meta, data, extra), *rest = trainer.actor_rollout_wg.calls
    assert not rest
    assert len(drawn_meta) == N
    assert extra["global_batch_size"] == B and extra["seed"] == SEED
    assert extra["dataloader_kwargs"] == {"shuffle": False}

    samples, tags = pool_samples()
    padded = tu.list_of_dict_to_tensordict(samples).select("advantages", "response_mask")
    padded = padded.to_padded_tensor()
    _, rows, weights = plan_pool(
        cfg,
        {"advantages": padded["advantages"], "response_mask": padded["response_mask"]},
        global_steps=STEP,
        dp_size=DP,
        costs=torch.tensor([t["seq_len"] for t in tags], dtype=torch.float64),
        valid=torch.tensor([not t.get("is_padding", False) for t in tags]),
    )
    assert bool((rows < N - PAD).all())  # padding rows are never drawn
    assert [t["seq_len"] for t in drawn_meta.tags] == [tags[r]["seq_len"] for r in rows.tolist()]
    assert list(data["uid"]) == [samples[r]["uid"] for r in rows.tolist()]
    assert [m["pixel_values"] for m in data["multi_modal_inputs"]] == rows.tolist()
    got = data.select("rollout_is_weights", "advantages").to_padded_tensor()
    for slot, row in enumerate(rows.tolist()):
        r_len = samples[row]["responses"].numel()
        torch.testing.assert_close(got["advantages"][slot, :r_len], samples[row]["advantages"])
        torch.testing.assert_close(
            got["rollout_is_weights"][slot, :r_len], weights[slot].expand(r_len)
        )
    assert metrics["cost_aware/draws/count"] == N
    assert metrics["cost_aware/pool/rollouts"] == N - PAD
    assert metrics["cost_aware/pool/zero_prob_fraction"] == ROLLOUT_N / (N - PAD)
    assert metrics["actor/pg_loss"] == 1.5
    transfer_queue.kv_clear(keys=pool.keys, partition_id="v1")


def test_v1_metrics_verl_logs_after_the_update_are_the_pools(transfer_queue):
    from verl.trainer.ppo.metric_utils import RolloutMoELoadBalanceMetricsAccumulator

    pool = put_pool(transfer_queue, "metrics")
    cfg = verl_config()
    trainer = v1_trainer(cfg)
    metrics = {}
    batch = trainer._update_actor(pool, metrics)
    # verl's own PPOTrainer._compute_metrics, as fit calls it on the batch the step returns
    trainer.use_critic = False
    trainer._rollout_moe_lb_metrics_accumulator = RolloutMoELoadBalanceMetricsAccumulator(
        model_config=cfg.actor_rollout_ref.model
    )
    trainer._get_n_gpus_for_throughput = lambda: 1
    trainer._compute_metrics(batch, metrics, {"step": 1.0}, global_steps=STEP, epoch=0)

    samples, tags = pool_samples()
    real = [i for i, t in enumerate(tags) if not t.get("is_padding", False)]
    pool_score = sum(float(samples[i]["rm_scores"].sum()) for i in real) / len(real)
    pool_length = sum(samples[i]["responses"].numel() for i in real) / len(real)
    assert metrics["critic/score/mean"] == pytest.approx(pool_score)
    assert metrics["response_length/mean"] == pytest.approx(pool_length)
    ((_, drawn, _),) = trainer.actor_rollout_wg.calls
    drawn_score = float(drawn["rm_scores"].values().sum()) / N
    assert drawn_score != pytest.approx(pool_score)  # what logging the draws would have shown
    token_fraction = metrics["cost_aware/draws/tokens"] / metrics["cost_aware/pool/tokens"]
    assert metrics["cost_aware/draws/token_fraction"] == pytest.approx(token_fraction)
    transfer_queue.kv_clear(keys=pool.keys, partition_id="metrics")


def nested_log_probs(data, log_prob):
    """A model output as verl's engine returns it: one value per token of each sequence."""
    seqs = []
    for i in range(data.shape[0]):
        p_len, r_len = data["prompts"][i].numel(), data["responses"][i].numel()
        seq = torch.zeros(p_len + r_len)
        seq[p_len - 1 : p_len - 1 + r_len] = log_prob[i, :r_len]  # no_padding_2_padding's shift
        seqs.append(seq)
    return torch.nested.as_nested_tensor(seqs, layout=torch.jagged)


@pytest.mark.parametrize(
    ("mode", "correction"),
    [("seq-mean-token-mean", False), ("token-sum", False), ("token-mean", True)],
)
def test_v1_draws_through_verls_ppo_loss_give_the_weighted_loss(transfer_queue, mode, correction):
    name = f"loss-{mode}"
    pool = put_pool(transfer_queue, name)
    cfg = verl_config(mode, token_mean_correction=True) if correction else verl_config(mode)
    trainer = v1_trainer(cfg)
    trainer._update_actor(pool, {})
    ((_, data, _),) = trainer.actor_rollout_wg.calls

    samples, tags = pool_samples()
    pool_td = tu.list_of_dict_to_tensordict(samples)
    padded = pool_td.select("advantages", "response_mask", "old_log_probs").to_padded_tensor()
    R = padded["advantages"].shape[1]
    g = torch.Generator().manual_seed(5)
    log_prob = padded["old_log_probs"] + 0.3 * torch.randn(N, R, generator=g)
    plan = plan_verl_batch(
        padded,
        B,
        costs=torch.tensor([t["seq_len"] for t in tags], dtype=torch.float64),
        valid=torch.tensor([not t.get("is_padding", False) for t in tags]),
        generator=torch.Generator().manual_seed(SEED + STEP),
    )
    # the per-token vanilla PPO loss of each pool row: ratio·A (the clip is inactive at A's sign)
    actor = ActorConfig(
        strategy="fsdp",
        rollout_n=ROLLOUT_N,
        ppo_mini_batch_size=MINI,
        ppo_micro_batch_size_per_gpu=2,
        loss_agg_mode=mode,
        clip_ratio=10.0,
        clip_ratio_low=10.0,
        clip_ratio_high=10.0,
        clip_ratio_c=100.0,
    )
    ratio = torch.exp((log_prob - padded["old_log_probs"]).clamp(-20, 20))
    token_loss = (-padded["advantages"] * ratio).double()
    mask = padded["response_mask"]
    mean_len = float(mask[: N - PAD].double().sum(-1).mean())

    # verl's split: data-parallel chunks in order, each iterated in local mini-batches
    slot_rows = [m["pixel_values"] for m in data["multi_modal_inputs"]]  # pool row of each slot
    data["slot"] = torch.arange(N)
    chunks = tu.chunk_tensordict(data, DP)
    iters = [list(tu.make_iterator(c, B // DP, epochs=1, seed=0)) for c in chunks]
    for t in range(N // B):
        total = torch.zeros((), dtype=torch.float64)
        tokens = sum(int(it[t]["response_mask"].values().sum()) for it in iters)
        for it in iters:
            mini = it[t]
            slots = mini["slot"].tolist()
            lp = log_prob[[slot_rows[s] for s in slots]]
            tu.assign_non_tensor(mini, dp_size=DP, batch_num_tokens=tokens, global_batch_size=B)
            loss, _ = ppo_loss(actor, {"log_probs": nested_log_probs(mini, lp)}, mini)
            total = total + loss.double() / DP  # FSDP averages the ranks' gradients
        rows = plan.indices[t]
        expected = weighted_policy_loss(
            token_loss[rows],
            mask[rows],
            plan.weights[t].double(),
            mode=mode,
            mean_pool_length=mean_len,
        )
        torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-6)
    transfer_queue.kv_clear(keys=pool.keys, partition_id=name)


def test_v1_trainer_refuses_biased_or_unknown_settings():
    with pytest.raises(ValueError, match="token-mean"):
        plan_pool(
            verl_config("token-mean"),
            {"advantages": torch.ones(N, 3), "response_mask": torch.ones(N, 3)},
            global_steps=1,
            dp_size=1,
            costs=torch.ones(N),
        )
    cfg = verl_config("token-mean", token_mean_correction=True)
    cfg.actor_rollout_ref.actor.shuffle = True
    with pytest.raises(ValueError, match="shuffle"):
        plan_pool(
            cfg,
            {"advantages": torch.ones(N, 3), "response_mask": torch.ones(N, 3)},
            global_steps=1,
            dp_size=1,
            costs=torch.ones(N),
        )
    with pytest.raises(ValueError, match="unknown keys"):
        cost_aware_settings(verl_config(alpha=0.1, temperature=2.0))
    assert cost_aware_settings(verl_config(alpha=0.25)).sampling.alpha == 0.25
    settings = cost_aware_settings(verl_config(proxy="nonzero", sigma2=0.1))
    assert settings.sampling == SamplingOptions(proxy="nonzero", sigma2=0.1)
    with pytest.raises(ValueError, match=r"trainer.v1.cost_aware: proxy must be one of"):
        cost_aware_settings(verl_config(proxy="median"))
    with pytest.raises(ValueError, match="token_mean_correction must be true or false"):
        cost_aware_settings(verl_config(token_mean_correction="yes"))


def test_v1_trainer_runs_verl_as_the_sync_trainer():
    cfg = verl_config()
    assert get_trainer_cls(cfg.trainer.v1.trainer_mode) is CostAwarePPOTrainer
    trainer = CostAwarePPOTrainer(cfg)
    # verl branches on the name "sync" (replay buffer, checkpoints): the mode is handed back
    assert trainer.trainer_mode == "sync" == cfg.trainer.v1.trainer_mode
    assert type(trainer.replay_buffer).__name__ == "ReplayBuffer"


def legacy_pool():
    from test_integrations_verl_package import grpo_pool

    return grpo_pool()


def test_legacy_update_actor_trains_on_the_draws_and_leaves_the_pool():
    data = legacy_pool()
    before = {k: v.clone() for k, v in data.batch.items()}
    cfg = verl_config("token-mean", token_mean_correction=True)
    trainer = object.__new__(CostAwareRayPPOTrainer)
    trainer.config = cfg
    trainer.global_steps = STEP
    trainer.actor_rollout_wg = RecordingActorGroup(DP)
    output = trainer._update_actor(data)

    for key, value in before.items():  # fit's compute_data_metrics then sees the pool
        assert torch.equal(data.batch[key], value), key
    ((_, td, _),) = trainer.actor_rollout_wg.calls
    plan, rows, weights = plan_pool(cfg, dict(data.batch.items()), global_steps=STEP, dp_size=DP)
    assert list(td["uid"]) == list(data.non_tensor_batch["uid"][rows.numpy()])
    pixels = [m["pixel_values"] for m in td["multi_modal_inputs"]]
    assert pixels == rows.tolist()
    is_w = td["rollout_is_weights"]
    mask = data.batch["response_mask"][rows]
    torch.testing.assert_close(is_w, weights[:, None] * mask.float())
    expected = token_mean_weights(plan, data.batch["response_mask"], B)
    assert np.array_equal(np.sort(weights.numpy()), np.sort(expected.reshape(-1).numpy()))
    assert td["global_batch_size"] == B
    metrics = output.meta_info["metrics"]
    assert metrics["cost_aware/draws/count"] == N and "actor/pg_loss" in metrics
