r"""The TRL training study: Cost-Aware GRPO trained end to end in TRL's ``GRPOTrainer``.

:func:`run` executes two stages, every run a TRL training of a small Llama
(:func:`~costsgd.experiments.trl_study.walk.build_policy`) from the
supervised warm start of its seed, on the GRPO study's modular walk
(:data:`~costsgd.experiments.grpo.study.DEFAULT_WALK`: the policy chooses its
response length, a 72-token cap truncates, costs span 6 to 76 tokens, the
unsolvable walks fail long):

1. *Learning-rate sweep*, baseline only: ``GRPOTrainer`` at every rate of
   ``lrs`` on the ``sweep_seeds`` (not study seeds); the rate with the highest
   mean held-out accuracy over the run's evaluations is used for every arm
   (:func:`costsgd.experiments.grpo.report.choose_lr`; ties to the smaller).
2. *Arms* (:data:`ARMS`), every seed of ``seeds``, same hyper-parameters:
   ``GRPOTrainer``; ``LengthGroupedGRPOTrainer`` (every rollout once,
   micro-batches grouped by length and trimmed); ``CostAwareGRPOTrainer`` with
   :math:`p^* \propto |A|/\sqrt c`; ``CostAwareGRPOTrainer(proxy="nonzero")``
   (:math:`p \propto \mathbb 1[A \ne 0]`, importance-weighted). Within a seed
   every arm starts from the same weights, sees the same prompts in the same
   order and is evaluated on the same held-out prompts (paired).

Every run has the same number of generation batches (``iterations``), so every
arm generates and scores the same number of rollouts; what differs is the
policy update. :mod:`~costsgd.experiments.trl_study.phases` times the phases
and counts the tokens; :mod:`~costsgd.experiments.trl_study.report` turns the
results file into the measurement and the verdict.

The public surface: :class:`StudyConfig` (with :func:`default_config` and
:func:`smoke_config`), :func:`run`, :func:`save_results` and :func:`load_results`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from costsgd.experiments import results as results_file
from costsgd.experiments.grpo.report import choose_lr
from costsgd.experiments.grpo.study import DEFAULT_WALK
from costsgd.experiments.grpo.task import WalkTask, sample_prompts
from costsgd.experiments.trl_study import walk

__all__ = [
    "ARMS",
    "BASELINE",
    "EXPERIMENT",
    "RESULTS_NAME",
    "StudyConfig",
    "config_dict",
    "config_from_dict",
    "default_config",
    "load_results",
    "run",
    "run_job",
    "save_results",
    "smoke_config",
]

#: The name results files record.
EXPERIMENT = "trl-study"
#: File name of the results inside the output folder.
RESULTS_NAME = "trl_study.json"

BASELINE = "GRPOTrainer"

#: Arms by name: the trainer class in :mod:`costsgd.integrations.trl` (or TRL) and its options.
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    BASELINE: ("GRPOTrainer", {}),
    "LengthGroupedGRPOTrainer": ("LengthGroupedGRPOTrainer", {}),
    "CostAwareGRPOTrainer(p*)": ("CostAwareGRPOTrainer", {"proxy": "advantage"}),
    "CostAwareGRPOTrainer(nonzero)": ("CostAwareGRPOTrainer", {"proxy": "nonzero"}),
}


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study (stored in the results file).

    Attributes:
      task: the walk task.
      arms: keys of :data:`ARMS`; the first is the baseline (``GRPOTrainer``).
      seeds: one warm start and one run of every arm per seed (paired).
      lrs: the baseline-only learning-rate sweep.
      sweep_seeds: seeds of the sweep (distinct from ``seeds``).
      hidden_size, num_layers, num_heads: the Llama policy.
      warm_start_steps, warm_start_batch, warm_start_lr: supervised warm start.
      prompts_per_iteration, rollouts_per_prompt: a generation batch of
        ``N = prompts x rollouts`` rollouts (TRL's ``num_generations`` = rollouts).
      minibatch_size: ``B``, rollouts per optimizer step (``N / B`` steps per
        generation batch).
      micro_batch_size: rows per forward/backward pass (TRL's
        ``per_device_train_batch_size``).
      iterations: generation batches per run.
      eval_every: held-out evaluation every this many generation batches.
      eval_prompts: held-out set size (exact accuracy, no sampling).
      loss_type: TRL's ``loss_type`` (its default ``"dapo"``).
      device: ``"cpu"`` (float32) or ``"cuda"`` (one GPU, bf16 where supported).
      use_vllm: generate with vLLM colocated on the GPU (``device="cuda"`` only; the warm
        start is saved to a folder, which vLLM loads).
      workers: processes running runs in parallel (1 = in this process).
    """

    task: WalkTask = DEFAULT_WALK
    arms: tuple[str, ...] = tuple(ARMS)
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    lrs: tuple[float, ...] = (2e-4, 4e-4, 8e-4)
    sweep_seeds: tuple[int, ...] = (100, 101)
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    warm_start_steps: int = 50
    warm_start_batch: int = 64
    warm_start_lr: float = 3e-3
    prompts_per_iteration: int = 16
    rollouts_per_prompt: int = 8
    minibatch_size: int = 32
    micro_batch_size: int = 8
    iterations: int = 120
    eval_every: int = 5
    eval_prompts: int = 512
    loss_type: str = "dapo"
    device: str = "cpu"
    use_vllm: bool = False
    workers: int = 2

    @property
    def pool_size(self) -> int:
        """``N``, rollouts per generation batch."""
        return self.prompts_per_iteration * self.rollouts_per_prompt

    @property
    def steps_per_iteration(self) -> int:
        """``T = N / B``, optimizer steps per generation batch."""
        return self.pool_size // self.minibatch_size

    def validate(self) -> StudyConfig:
        if not isinstance(self.task, WalkTask):
            raise TypeError(f"task must be a WalkTask, got {type(self.task).__name__}")
        self.task.validate()
        for a in self.arms:
            if a not in ARMS:
                raise ValueError(f"arms: unknown arm {a!r}; choose from {list(ARMS)}")
        if not self.arms or self.arms[0] != BASELINE or len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arms must be distinct and list {BASELINE!r} first (the baseline)")
        for name in ("seeds", "sweep_seeds"):
            v = getattr(self, name)
            if not v or len(set(v)) != len(v) or not all(isinstance(s, int) for s in v):
                raise ValueError(f"{name} must be non-empty, distinct ints, got {v!r}")
        if set(self.sweep_seeds) & set(self.seeds):
            raise ValueError("sweep_seeds must be disjoint from seeds")
        if not self.lrs or not all(isinstance(x, float) and x > 0 for x in self.lrs):
            raise ValueError(f"lrs must be non-empty positive floats, got {self.lrs!r}")
        for name in (
            "hidden_size",
            "num_layers",
            "num_heads",
            "warm_start_steps",
            "warm_start_batch",
            "prompts_per_iteration",
            "rollouts_per_prompt",
            "minibatch_size",
            "micro_batch_size",
            "iterations",
            "eval_every",
            "eval_prompts",
            "workers",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.rollouts_per_prompt < 2:
            raise ValueError(f"rollouts_per_prompt must be >= 2, got {self.rollouts_per_prompt}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_heads ({self.num_heads})"
            )
        if self.pool_size % self.minibatch_size or self.minibatch_size % self.micro_batch_size:
            raise ValueError(
                "minibatch_size must divide prompts_per_iteration x rollouts_per_prompt "
                f"({self.pool_size}) and be a multiple of micro_batch_size "
                f"({self.micro_batch_size}), got {self.minibatch_size}"
            )
        if not self.warm_start_lr > 0:
            raise ValueError(f"warm_start_lr must be > 0, got {self.warm_start_lr!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.use_vllm not in (False, True) or (self.use_vllm and self.device != "cuda"):
            raise ValueError(f"use_vllm needs device='cuda', got use_vllm={self.use_vllm!r}")
        return self

    def sweep_jobs(self) -> list[tuple[str, int, str, float]]:
        """``(stage, seed, arm, lr)`` of the sweep, seed-major."""
        return [("sweep", s, BASELINE, lr) for s in self.sweep_seeds for lr in self.lrs]

    def main_jobs(self, lr: float) -> list[tuple[str, int, str, float]]:
        """``(stage, seed, arm, lr)`` of the arms, seed-major.

        Every arm of a seed before the next seed: an interrupted study has
        complete pairs, and the arms of a seed run close together in time
        (under the same machine load).
        """
        return [("main", s, a, lr) for s in self.seeds for a in self.arms]


def default_config(**overrides: Any) -> StudyConfig:
    """The study ``benchmarks/trl_study.py`` runs: 4 arms x 4 seeds, a 3-rate sweep on 2 seeds."""
    return dataclasses.replace(StudyConfig(), **overrides).validate()


def smoke_config(**overrides: Any) -> StudyConfig:
    """A seconds-long configuration that runs the whole pipeline (tests, ``--smoke``)."""
    base = StudyConfig(
        task=WalkTask(modulus=11, max_stride=2, max_steps=10, max_response_len=8),
        seeds=(0, 1),
        lrs=(1e-3, 3e-3),
        sweep_seeds=(100,),
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        warm_start_steps=30,
        warm_start_batch=16,
        warm_start_lr=1e-2,
        prompts_per_iteration=4,
        rollouts_per_prompt=4,
        minibatch_size=8,
        micro_batch_size=4,
        iterations=3,
        eval_every=1,
        eval_prompts=32,
        workers=1,
    )
    return dataclasses.replace(base, **overrides).validate()


def config_dict(config: StudyConfig) -> dict:
    """``config`` as plain data (the results file's ``"config"``)."""
    d = dataclasses.asdict(config)
    d["task"] = config.task._asdict()
    return d


def config_from_dict(d: dict) -> StudyConfig:
    """Rebuild a :class:`StudyConfig` from a results file's ``"config"``."""
    tuples = ("arms", "seeds", "lrs", "sweep_seeds")
    rest = {k: v for k, v in d.items() if k not in ("task", *tuples)}
    return StudyConfig(
        task=WalkTask(**d["task"]), **{k: tuple(d[k]) for k in tuples}, **rest
    ).validate()


def eval_prompts(config: StudyConfig):
    """The held-out prompts: one fixed set for the whole study (a seed no training stream uses)."""
    return sample_prompts(
        config.task, config.eval_prompts, torch.Generator().manual_seed(2**31 - 1)
    )


def warm_policy(config: StudyConfig, seed: int):
    """The supervised warm start of ``seed`` (every arm of that seed starts from it)."""
    model = walk.build_policy(
        config.task,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        seed=seed,
    ).to(config.device)
    walk.warm_start(
        model,
        config.task,
        steps=config.warm_start_steps,
        batch_size=config.warm_start_batch,
        lr=config.warm_start_lr,
        generator=torch.Generator().manual_seed(seed),
    )
    return model


def _trainer_class(arm: str) -> tuple[type, dict[str, Any]]:
    from trl import GRPOTrainer

    from costsgd.experiments.trl_study.phases import instrumented
    from costsgd.integrations import trl as integration

    name, options = ARMS[arm]
    base = GRPOTrainer if name == "GRPOTrainer" else getattr(integration, name)
    return instrumented(base), dict(options)


def run_job(config: StudyConfig, job: tuple[str, int, str, float], workdir: str) -> dict:
    """One TRL training run: warm start of ``seed``, then ``config.iterations`` generation batches.

    Returns:
      ``{"stage", "seed", "arm", "lr", "seconds", "cpu_seconds", "load_average",
      "warm_start_seconds"}`` and the fields of
      :class:`~costsgd.experiments.trl_study.phases.PhaseLog`.
    """
    from transformers import PrinterCallback
    from trl import GRPOConfig

    torch.set_num_threads(1)
    stage, seed, arm, lr = job
    load_before = os.getloadavg()
    t0, cpu0 = time.perf_counter(), time.process_time()
    model = warm_policy(config, seed)
    tokenizer = walk.walk_tokenizer(config.task)
    warm_seconds = time.perf_counter() - t0
    on_gpu = config.device == "cuda"
    if config.use_vllm:  # vLLM loads the policy from a folder
        model.save_pretrained(Path(workdir) / "warm_start")
        tokenizer.save_pretrained(Path(workdir) / "warm_start")
        model = str(Path(workdir) / "warm_start")
    T = config.steps_per_iteration
    args = GRPOConfig(
        output_dir=workdir,
        per_device_train_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=config.minibatch_size // config.micro_batch_size,
        steps_per_generation=config.pool_size // config.micro_batch_size,
        num_generations=config.rollouts_per_prompt,
        max_completion_length=config.task.max_response_len,
        max_steps=config.iterations * T,
        learning_rate=lr,
        lr_scheduler_type="constant",
        loss_type=config.loss_type,
        report_to="none",
        save_strategy="no",
        logging_steps=config.eval_every * T,
        use_cpu=not on_gpu,
        bf16=on_gpu and torch.cuda.is_bf16_supported(),
        use_vllm=config.use_vllm,
        seed=1000 * seed + 1,
        disable_tqdm=True,
        log_level="error",
    )
    dataset = walk.prompt_dataset(
        config.task,
        config.prompts_per_iteration * config.iterations,
        torch.Generator().manual_seed(1000 * seed + 2),
    )
    held_out = eval_prompts(config)
    cls, options = _trainer_class(arm)
    trainer = cls(
        model=model,
        reward_funcs=walk.walk_reward(config.task),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        evaluate=lambda m: float(walk.correct_probability(m, config.task, held_out).mean()),
        eval_every=config.eval_every * T,
        **options,
    )
    trainer.remove_callback(PrinterCallback)  # TRL's console log of every logging step
    trainer.train()
    return {
        "stage": stage,
        "seed": seed,
        "arm": arm,
        "lr": lr,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - cpu0,
        "warm_start_seconds": warm_seconds,
        "load_average": [load_before[0], os.getloadavg()[0]],
        **trainer.phase_log.as_dict(),
    }


def _job_in_worker(args) -> dict:
    config, job = args
    with tempfile.TemporaryDirectory(prefix="trl_study_") as workdir:
        return run_job(config, job, workdir)


def _run_all(config: StudyConfig, jobs, done) -> None:
    if not jobs:
        return
    if config.workers == 1:
        for job in jobs:
            done(_job_in_worker((config, job)))
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(min(config.workers, len(jobs))) as pool:
        for r in pool.imap_unordered(_job_in_worker, [(config, j) for j in jobs]):
            done(r)


def _key(r: dict) -> tuple:
    return (r["stage"], r["seed"], r["arm"], float(r["lr"]))


def _fresh(config: StudyConfig) -> dict:
    import transformers
    import trl

    return {
        "config": config_dict(config),
        "versions": {
            **results_file.versions("torch"),
            "trl": trl.__version__,
            "transformers": transformers.__version__,
        },
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
        "lr": None,
        "runs": [],
        "seconds": 0.0,
        "complete": False,
    }


def run(config: StudyConfig, out_dir: str | os.PathLike, *, log=None) -> dict:
    """Run (or resume) the study of ``config``; the results file is ``out_dir/trl_study.json``.

    The file is rewritten atomically after every finished run. If it already
    holds runs of the same configuration, those are kept and only the missing
    runs are run (an interrupted study resumes where it stopped).

    Args:
      config: the study.
      out_dir: output folder (created if missing).
      log: ``str -> None`` for one line per finished run (default: stderr).

    Returns:
      ``{"config", "versions", "hardware", "lr", "runs", "seconds", "complete"}``.

    Raises:
      ValueError: if ``out_dir`` holds results of another configuration.
    """
    config.validate()
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    path = Path(out_dir) / RESULTS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    results = _fresh(config)
    if path.exists():
        previous = load_results(path)
        if _comparable(previous["config"]) != _comparable(results["config"]):
            raise ValueError(
                f"{str(path)!r} holds a study of another configuration; "
                "choose another output folder (or delete the file)"
            )
        results["runs"] = previous["runs"]
        results["seconds"] = previous.get("seconds", 0.0)
    have = {_key(r) for r in results["runs"]}
    t0 = time.perf_counter() - results["seconds"]

    def done(r: dict) -> None:
        results["runs"].append(r)
        results["seconds"] = time.perf_counter() - t0
        save_results(results, path)
        log(
            f"{r['stage']} seed {r['seed']} {r['arm']} lr {r['lr']:g}: {r['seconds']:.0f} s "
            f"({r['cpu_seconds']:.0f} CPU-s), accuracy {r['eval_accuracy'][0]:.3f} -> "
            f"{r['eval_accuracy'][-1]:.3f}, load {r['load_average'][0]:.1f}/{r['load_average'][1]:.1f}"
        )

    _run_all(config, [j for j in config.sweep_jobs() if _key(_job_dict(j)) not in have], done)
    results["lr"] = choose_lr(results["runs"])
    main = [j for j in config.main_jobs(results["lr"]) if _key(_job_dict(j)) not in have]
    _run_all(config, main, done)
    results["complete"] = True
    results["seconds"] = time.perf_counter() - t0
    save_results(results, path)
    return results


def _comparable(config: dict) -> StudyConfig:
    """A configuration as JSON reads it back (fields it lacks at their defaults), any ``workers``."""
    return dataclasses.replace(config_from_dict(json.loads(json.dumps(config))), workers=1)


def _job_dict(job: tuple) -> dict:
    return dict(zip(("stage", "seed", "arm", "lr"), job, strict=True))


def save_results(results: dict, path: str | os.PathLike) -> None:
    """Write ``results`` as JSON atomically (see :mod:`costsgd.experiments.results`)."""
    results_file.save_json_results(results, path, experiment=EXPERIMENT)


def load_results(path: str | os.PathLike) -> dict:
    """Read a results file written by :func:`save_results`.

    Raises:
      ValueError: naming the file, when it is missing, corrupt or not this study's results.
    """
    results = results_file.load_results(path, experiment=EXPERIMENT)
    if not {"config", "runs", "lr"} <= set(results):
        raise ValueError(f"{str(path)!r} is not a trl-study results file (no 'config'/'runs'/'lr')")
    return results
