"""CostAwareGRPOTrainer on 2 gloo processes (CPU): equal micro-step counts, per-rank widths."""

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

STEPS = 2
TIMEOUT_S = 600  # a hang fails the test instead of stalling the suite


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir):
    os.environ.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "WANDB_DISABLED": "true",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "OMP_NUM_THREADS": "1",
        }
    )
    torch.set_num_threads(1)
    from datasets import Dataset
    from trl import GRPOConfig

    from costsgd.integrations.trl import CostAwareGRPOTrainer
    from tests.helpers import char_tokenizer, tiny_llama

    class Recording(CostAwareGRPOTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.shapes = []

        def _compute_loss(self, model, inputs):
            self.shapes.append(
                {k: tuple(v.shape) for k, v in inputs.items() if isinstance(v, torch.Tensor)}
            )
            return super()._compute_loss(model, inputs)

    tokenizer = char_tokenizer()
    args = GRPOConfig(
        output_dir=f"{out_dir}/run",
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        steps_per_generation=4,
        num_generations=4,
        max_completion_length=12,
        max_steps=STEPS,
        learning_rate=1e-2,
        loss_type="grpo",
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    data = Dataset.from_dict({"prompt": ["abc", "de", "fghij", "i", "bb", "jjj", "hg", "a"] * 4})
    trainer = Recording(
        model=tiny_llama(len(tokenizer)),
        reward_funcs=lambda completions, **kw: [c.count("a") + 0.3 * len(c) for c in completions],
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        seed=5,
    )
    trainer.train()
    pool = trainer.cost_aware_draws  # the latest draws, to feed bad input below
    bad = dict(pool)
    if rank == 1:
        bad["advantages"] = pool["advantages"] * float("nan")
    try:
        trainer.resample_rollouts(bad)
        raised = ""
    except ValueError as err:
        raised = str(err)
    logs = [h for h in trainer.state.log_history if "tokens/processed" in h]
    torch.save(
        {"shapes": trainer.shapes, "raised": raised, "logs": logs}, f"{out_dir}/rank{rank}.pt"
    )
    torch.distributed.destroy_process_group()
    # Leave without freeing the trainer: DDP's reducer, freed on return, can deadlock in
    # ProcessGroupGloo's destructor (it joins gloo's worker thread while holding the GIL the
    # thread waits for). The results are on disk; exit code 0 is all mp.spawn checks.
    os._exit(0)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trl_dist")
    context = mp.spawn(_worker, args=(2, _free_port(), str(tmp)), nprocs=2, join=False)
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the 2-process TRL run did not finish within {TIMEOUT_S} s")
    return [torch.load(tmp / f"rank{r}.pt") for r in range(2)]


def test_every_rank_runs_the_same_micro_steps_differing_only_in_width(results):
    a, b = (r["shapes"] for r in results)
    assert len(a) == len(b) == STEPS * 2  # 2 optimizer steps x 2 micro-batches
    widths_differ = 0
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            assert len(x[key]) == len(y[key])
            assert x[key][:1] == y[key][:1]  # same rows on every rank
            assert x[key][2:] == y[key][2:]  # (rows, width, ...): only the width may differ
        widths_differ += x["completion_ids"] != y["completion_ids"]
    assert widths_differ > 0  # each rank trims to its own rollouts


def test_token_metrics_are_global_sums_seen_alike_on_every_rank(results):
    a, b = (r["logs"] for r in results)
    assert len(a) == STEPS
    assert "cost_aware/ess" in a[0] and "tokens/pool" in a[0]
    for x, y in zip(a, b, strict=True):
        keys = [k for k in x if k.startswith(("tokens/", "cost_aware/"))]
        assert sorted(keys) == sorted(k for k in y if k.startswith(("tokens/", "cost_aware/")))
        assert [x[k] for k in keys] == pytest.approx([y[k] for k in keys])


def test_bad_input_on_one_rank_raises_on_every_rank(results):
    assert "advantages" in results[1]["raised"]
    assert "another rank" in results[0]["raised"]
