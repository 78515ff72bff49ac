r"""The mini Cost-Aware GRPO study: does p* save policy-optimization tokens (§5.4)?

:func:`run` executes one study in three stages, every run a
:func:`~costsgd.experiments.grpo.trainer.train` from a supervised warm start
(:func:`~costsgd.experiments.grpo.policy.warm_start`):

1. *Learning-rate sweep* (baseline only): "no sampling" at every rate of
   ``lrs`` on the ``sweep_seeds`` (their own warm starts, not the study's
   seeds). The rate with the highest mean held-out accuracy over the run's
   evaluations (the area under the accuracy-vs-tokens curve, every run having
   the same token budget) is used for every method; ties go to the smaller rate.
2. *Methods*: every method of ``methods`` on every seed of ``seeds``, at that
   rate, with the same optimizer and token budget. Within a seed every method
   starts from the same weights and is evaluated on the same held-out prompts
   with the same sampling seed (paired, common random numbers).
3. *Regime*: the baseline at twice the rate and with twice the pool (twice the
   prompts per iteration and twice the mini-batch, so the same number of steps
   per iteration) on the ``regime_seeds``; the gradient-noise diagnostics of
   :mod:`~costsgd.experiments.grpo.diagnostics` are recorded on the baseline
   and p* runs every ``grpo.diagnose_every`` iterations.

The public surface: :class:`StudyConfig` (with :func:`default_config` and
:func:`smoke_config`), :func:`run`, :func:`summary` and :func:`plot_results`;
:func:`save_results` / :func:`load_results` write and read the JSON results
file (atomically). The measurement and the verdict rule live in
:mod:`~costsgd.experiments.grpo.report`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from costsgd.experiments import results as results_file
from costsgd.experiments.grpo import report
from costsgd.experiments.grpo.diagnostics import rollout_diagnostics
from costsgd.experiments.grpo.policy import GRUPolicy, warm_start
from costsgd.experiments.grpo.task import TASKS, SortTask, Task, WalkTask, sample_prompts
from costsgd.experiments.grpo.trainer import GRPOConfig, Method, train
from costsgd.experiments.schema import Array, ListOf, Number, Record, Text

__all__ = [
    "BASELINE",
    "CHECKPOINT_SCHEMA",
    "DEFAULT_WALK",
    "EXPERIMENT",
    "METHODS",
    "REGIMES",
    "SETTINGS",
    "StudyConfig",
    "config_dict",
    "config_differences",
    "config_from_dict",
    "default_config",
    "eval_prompts",
    "job_key",
    "load_results",
    "new_results",
    "plot_results",
    "resume_results",
    "run",
    "run_jobs",
    "save_results",
    "smoke_config",
    "summary",
    "warm_policy",
]

#: The name results files record (``costsgd plot`` dispatches on it).
EXPERIMENT = "grpo-study"

BASELINE = "no sampling"

#: Sampling methods by name (§5.3, §5.5, Appendix G.6, and the two controls).
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(BASELINE, "none"),
        Method("p*"),
        Method("p*_smooth(0.01)", alpha=0.01),
        Method("p*_smooth(0.05)", alpha=0.05),
        Method("p*_smooth(0.1)", alpha=0.1),
        Method("uniform draws", "uniform"),
        Method("p ∝ 1[A≠0]", "nonzero"),
        Method("p_LEN", "length"),
        Method("p*_noisy(σ²=0.1)", sigma2=0.1),
        Method("p*_noisy(σ²=1.0)", sigma2=1.0),
    )
}

#: Training settings: GRPO, GRPO + zero-variance filtering (§5.3), GRPO with the CISPO loss (§5.5).
SETTINGS: dict[str, dict[str, Any]] = {
    "GRPO": {"zvf": False, "loss": "grpo"},
    "GRPO+ZVF": {"zvf": True, "loss": "grpo"},
    "CISPO": {"zvf": False, "loss": "cispo"},
}

#: The regime runs: the baseline with one change each.
REGIMES = ("2x lr", "2x pool")

_DEFAULT_METHODS = (BASELINE, "p*", "p*_smooth(0.01)", "uniform draws", "p ∝ 1[A≠0]", "p_LEN")

#: The default task: a modular walk; 60% of its prompts are walks that do not fit
#: under the generation cap, the others are short (at most 20 steps), so the
#: groups with signal are cheap and the zero-advantage ones long
#: (see :class:`~costsgd.experiments.grpo.task.WalkTask`).
DEFAULT_WALK = WalkTask(
    modulus=127,
    max_stride=2,
    min_steps=1,
    max_steps=20,
    max_response_len=72,
    unsolvable_fraction=0.6,
)


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study (stored in the results file).

    Attributes:
      task: the task (:class:`WalkTask` or :class:`SortTask`).
      setting: a key of :data:`SETTINGS`.
      methods: keys of :data:`METHODS`; the first is the baseline ("no sampling").
      seeds: one warm start and one run of every method per seed (paired).
      lrs: the baseline-only learning-rate sweep.
      sweep_seeds: seeds of the sweep (distinct from ``seeds``).
      regime_seeds: seeds (a subset of ``seeds``) of the 2x-lr and 2x-pool runs.
      embed_dim, hidden_dim: policy size.
      warm_start_steps, warm_start_batch, warm_start_lr: supervised warm start.
      grpo: shared hyper-parameters (``lr`` is replaced by the sweep's choice;
        ``zvf`` and ``loss`` come from ``setting``).
      eval_prompts: held-out set size.
      eval_samples: ``None``: held-out accuracy is the exact expected reward of a
        sampled response (:func:`~costsgd.experiments.grpo.trainer.evaluate`);
        an int: its estimate from that many sampled responses per prompt.
      workers: processes running jobs in parallel (1 = in this process).
      fixed_lr: ``None``: the learning rate comes from the sweep (stage 1);
        a rate: no sweep, every run uses it (the parts of a suite share one
        sweep, :mod:`~costsgd.experiments.grpo.suite`).
    """

    task: Task = DEFAULT_WALK
    setting: str = "GRPO"
    methods: tuple[str, ...] = _DEFAULT_METHODS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    lrs: tuple[float, ...] = (1e-3, 2e-3, 4e-3)
    sweep_seeds: tuple[int, ...] = (100, 101)
    regime_seeds: tuple[int, ...] = (0, 1)
    embed_dim: int = 32
    hidden_dim: int = 64
    warm_start_steps: int = 100
    warm_start_batch: int = 64
    warm_start_lr: float = 1e-2
    grpo: GRPOConfig = field(
        default_factory=lambda: GRPOConfig(
            prompts_per_step=16,
            rollouts_per_prompt=8,
            minibatch_size=32,
            micro_batch_size=8,
            iterations=1000,
            token_budget=700_000,
            weight_decay=0.01,
            eval_every=5,
            diagnose_every=40,
        )
    )
    eval_prompts: int = 512
    eval_samples: int | None = None
    workers: int = 2
    fixed_lr: float | None = None

    def validate(self) -> StudyConfig:
        if not isinstance(self.task, (WalkTask, SortTask)):
            raise TypeError(f"task must be a WalkTask or SortTask, got {type(self.task).__name__}")
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {list(SETTINGS)}, got {self.setting!r}")
        for m in self.methods:
            if m not in METHODS:
                raise ValueError(f"methods: unknown method {m!r}; choose from {list(METHODS)}")
        if (
            not self.methods
            or self.methods[0] != BASELINE
            or len(set(self.methods)) != len(self.methods)
        ):
            raise ValueError(f"methods must be distinct and list {BASELINE!r} first (the baseline)")
        for name in ("seeds", "sweep_seeds"):
            v = getattr(self, name)
            if not v or len(set(v)) != len(v):
                raise ValueError(f"{name} must be non-empty and distinct, got {v!r}")
        if len(self.seeds) < 2:
            raise ValueError(
                f"seeds must hold at least 2 seeds (the 95% intervals resample seeds), got {self.seeds!r}"
            )
        if set(self.sweep_seeds) & set(self.seeds):
            raise ValueError("sweep_seeds must be disjoint from seeds")
        if not set(self.regime_seeds) <= set(self.seeds):
            raise ValueError(f"regime_seeds must be a subset of seeds, got {self.regime_seeds!r}")
        if not self.lrs or not all(isinstance(x, float) and x > 0 for x in self.lrs):
            raise ValueError(f"lrs must be non-empty positive floats, got {self.lrs!r}")
        for name in (
            "embed_dim",
            "hidden_dim",
            "warm_start_steps",
            "warm_start_batch",
            "eval_prompts",
            "workers",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.eval_samples is not None and not (
            isinstance(self.eval_samples, int) and self.eval_samples >= 1
        ):
            raise ValueError(f"eval_samples must be None or an int >= 1, got {self.eval_samples!r}")
        if self.fixed_lr is not None and not (
            isinstance(self.fixed_lr, float) and math.isfinite(self.fixed_lr) and self.fixed_lr > 0
        ):
            raise ValueError(f"fixed_lr must be None or a float > 0, got {self.fixed_lr!r}")
        if not self.warm_start_lr > 0:
            raise ValueError(f"warm_start_lr must be > 0, got {self.warm_start_lr!r}")
        self.task.validate()
        self.grpo.validate()
        return self

    def main_jobs(self) -> list[tuple[str, int, str]]:
        """``(stage, seed, variant)`` of stages 2 and 3, method-major.

        Every seed of the baseline and of ``methods[1]`` first, then the next
        method, then the regime runs: an interrupted study has its first
        comparison on as many seeds as possible.
        """
        jobs = [("main", s, m) for m in self.methods for s in self.seeds]
        return jobs + [("regime", s, r) for s in self.regime_seeds for r in REGIMES]

    def sweep_jobs(self) -> list[tuple[str, int, str]]:
        """``(stage, seed, variant)`` of stage 1 (none with a ``fixed_lr``)."""
        if self.fixed_lr is not None:
            return []
        return [("sweep", s, repr(lr)) for s in self.sweep_seeds for lr in self.lrs]


def default_config(**overrides: Any) -> StudyConfig:
    """The study ``costsgd grpo-study`` runs (6 methods x 6 seeds, 6 sweep runs, 4 regime runs)."""
    return dataclasses.replace(StudyConfig(), **overrides).validate()


def smoke_config(**overrides: Any) -> StudyConfig:
    """A seconds-long configuration that exercises the whole pipeline (tests, ``--smoke``)."""
    base = StudyConfig(
        task=WalkTask(modulus=11, max_stride=2, max_steps=10, max_response_len=8),
        methods=(BASELINE, "p*", "uniform draws", "p ∝ 1[A≠0]"),
        seeds=(0, 1),
        lrs=(1e-3, 3e-3),
        sweep_seeds=(100,),
        regime_seeds=(0,),
        embed_dim=16,
        hidden_dim=32,
        warm_start_steps=40,
        warm_start_batch=32,
        grpo=GRPOConfig(
            prompts_per_step=4,
            rollouts_per_prompt=4,
            minibatch_size=8,
            micro_batch_size=4,
            iterations=6,
            token_budget=None,
            eval_every=2,
            diagnose_every=3,
        ),
        eval_prompts=24,
        workers=1,
    )
    return dataclasses.replace(base, **overrides).validate()


def config_dict(config: StudyConfig) -> dict:
    """``config`` as the JSON-ready dict a results file stores (the task with its name)."""
    d = dataclasses.asdict(config)
    name = next(k for k, v in TASKS.items() if isinstance(config.task, v))
    d["task"] = {"name": name, **config.task._asdict()}
    return d


def config_from_dict(d: dict) -> StudyConfig:
    """Rebuild a :class:`StudyConfig` from a results file's ``"config"``."""
    task = dict(d["task"])
    cls = TASKS[task.pop("name")]
    tuples = ("methods", "seeds", "lrs", "sweep_seeds", "regime_seeds")
    rest = {k: v for k, v in d.items() if k not in ("task", "grpo", *tuples)}
    return StudyConfig(
        task=cls(**task),
        grpo=GRPOConfig(**d["grpo"]),
        **{k: tuple(d[k]) for k in tuples},
        **rest,
    ).validate()


def warm_policy(config: StudyConfig, seed: int) -> GRUPolicy:
    """The supervised warm start of ``seed`` (every method of that seed starts from it)."""
    torch.manual_seed(seed)
    policy = GRUPolicy(config.task.vocab_size, config.embed_dim, config.hidden_dim)
    warm_start(
        policy,
        config.task,
        steps=config.warm_start_steps,
        batch_size=config.warm_start_batch,
        lr=config.warm_start_lr,
        generator=torch.Generator().manual_seed(seed),
    )
    return policy


def eval_prompts(config: StudyConfig):
    """The held-out prompts: one fixed set for the whole study (a seed no training stream uses)."""
    return sample_prompts(
        config.task, config.eval_prompts, torch.Generator().manual_seed(2**31 - 1)
    )


def _job_config(config: StudyConfig, stage: str, variant: str, lr: float) -> GRPOConfig:
    grpo = dataclasses.replace(config.grpo, lr=lr, **SETTINGS[config.setting])
    if stage == "sweep":
        return dataclasses.replace(grpo, lr=float(variant))
    if variant == "2x lr":
        return dataclasses.replace(grpo, lr=2 * lr)
    if variant == "2x pool":
        return dataclasses.replace(
            grpo,
            prompts_per_step=2 * grpo.prompts_per_step,
            minibatch_size=2 * grpo.minibatch_size,
        )
    return grpo


def _run_job(config: StudyConfig, lr: float, job: tuple[str, int, str], progress=None) -> dict:
    torch.set_num_threads(1)
    stage, seed, variant = job
    policy = warm_policy(config, seed)
    reference = copy.deepcopy(policy).requires_grad_(False)
    grpo = _job_config(config, stage, variant, lr)
    method = METHODS[variant] if stage == "main" else METHODS[BASELINE]
    diagnosed = stage == "main" and variant in (BASELINE, "p*") and seed in config.regime_seeds
    t0, cpu0 = time.perf_counter(), time.process_time()
    log = train(
        policy,
        config.task,
        grpo,
        method,
        seed=1000 * seed + 1,
        eval_prompts=eval_prompts(config),
        eval_samples=config.eval_samples,
        reference=reference,
        diagnose=rollout_diagnostics(grpo) if diagnosed else None,
        on_iteration=progress,
    )
    return {
        "stage": stage,
        "seed": seed,
        "method": variant,
        "lr": grpo.lr,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - cpu0,
        "load_average": list(os.getloadavg()),
        **log.as_dict(),
    }


def _job_in_worker(args) -> tuple[Any, dict]:
    key, config, lr, job = args
    return key, _run_job(config, lr, job)


def run_jobs(tasks: list, workers: int, done, bar, *, per_iteration: bool = True) -> None:
    """Run ``tasks`` = ``[(key, config, lr, job), ...]``; ``done(key, run)`` as each finishes.

    With ``workers == 1`` in this process (with ``per_iteration`` the bar
    advances by one every training iteration), otherwise in a pool of spawned
    processes, ``done`` called in the order runs finish (``done`` advances
    the bar).
    """
    if workers == 1:
        for key, config, lr, job in tasks:
            bar.set_postfix_str(" ".join(map(str, job)))
            tick = (lambda: bar.update(1)) if per_iteration else None
            done(key, _run_job(config, lr, job, progress=tick))
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(min(workers, len(tasks)) or 1) as pool:
        for key, r in pool.imap_unordered(_job_in_worker, tasks):
            bar.set_postfix_str(f"done {r['stage']} {r['seed']} {r['method']}")
            done(key, r)


def job_key(run: dict) -> tuple[str, int, str]:
    """The ``(stage, seed, variant)`` a finished run answers (what a resumed study skips)."""
    return (run["stage"], run["seed"], run["method"])


def config_differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configuration dicts (a key missing on one side counts).

    Examples:
      >>> config_differences({"a": 1, "g": {"lr": 1, "k": 2}}, {"a": 1, "g": {"lr": 2, "k": 2}, "b": 0})
      ['b', 'g.lr']
    """
    out = []
    for k in sorted(set(saved) | set(current)):
        a, b = saved.get(k, _MISSING), current.get(k, _MISSING)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{k}.")
        elif _as_json(a) != _as_json(b):
            out.append(prefix + k)
    return out


_MISSING = object()


def _as_json(value):
    return value if value is _MISSING else json.loads(json.dumps(value))


def new_results(config: StudyConfig) -> dict:
    """An empty results record for ``config`` (see :func:`run`)."""
    return {
        "config": config_dict(config),
        "versions": results_file.versions("torch"),
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
        "lr": config.fixed_lr,
        "runs": [],
        "seconds": 0.0,
        "sessions": 0,
        "complete": False,
    }


def resume_results(config: StudyConfig, path: str | os.PathLike) -> dict:
    """The results saved at ``path`` if it exists and was run with ``config``, else a new record.

    Raises:
      ValueError: naming the file and the differing configuration keys, when
        the saved study was run with another configuration.
    """
    if not os.path.exists(path):
        return new_results(config)
    saved = load_results(path, checkpoint=True)
    diff = config_differences(saved["config"], config_dict(config))
    if diff:
        raise ValueError(
            f"{str(path)!r} holds a study run with another configuration (differs in: "
            f"{', '.join(diff)}); resume it with the same options, restart it, or choose another output file"
        )
    return saved


def _estimated_iterations(config: StudyConfig) -> int:
    # Runs stop at the token budget; 2x pool runs take half the iterations.
    per_run = config.grpo.iterations
    if config.grpo.token_budget is not None:
        per_run = min(
            per_run,
            config.grpo.token_budget
            // (config.grpo.prompts_per_step * config.grpo.rollouts_per_prompt * 20)
            + 1,
        )
    return per_run


def run(
    config: StudyConfig,
    *,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
) -> dict:
    """Run the three stages of ``config`` (module doc) and return the results (JSON-ready).

    Args:
      config: the study.
      progress: show a tqdm progress bar (over training iterations; a run that
        reaches its token budget early advances it by the iterations it ran).
      checkpoint: if given, the results so far are written there (atomically,
        ``"complete": false``) after every finished run, so an interrupted
        study leaves a file :func:`summary` can read (it uses the seeds whose
        runs are all there, and says so).
      resume: with a ``checkpoint`` that exists, continue the study saved
        there: its finished runs are kept and not run again (a file saved
        with another configuration is refused, naming the differing keys).

    Returns:
      ``{"config", "versions", "hardware", "lr", "runs", "seconds", "sessions",
      "complete"}``; ``lr`` is the sweep's choice (or ``fixed_lr``), each run
      holds ``stage``, ``seed``, ``method``, ``lr``, its CPU seconds and load
      average and its :class:`~costsgd.experiments.grpo.trainer.RunLog` fields;
      ``seconds`` is the wall time summed over the sessions that ran it.
    """
    from tqdm.auto import tqdm

    config.validate()
    torch.set_num_threads(1)
    use = checkpoint is not None and resume
    results = resume_results(config, checkpoint) if use else new_results(config)
    results["sessions"] = results.get("sessions", 0) + 1
    finished = {job_key(r) for r in results["runs"]}
    sweep = [j for j in config.sweep_jobs() if j not in finished]
    main = [j for j in config.main_jobs() if j not in finished]
    per_run = _estimated_iterations(config)
    bar = tqdm(
        total=(len(sweep) + len(main)) * per_run,
        desc="grpo-study",
        unit="it",
        disable=not progress,
    )
    t0, before = time.perf_counter(), results["seconds"]

    def done(_key, r: dict) -> None:
        results["runs"].append(r)
        results["seconds"] = before + time.perf_counter() - t0
        if config.workers > 1:
            bar.update(len(r["iter_tokens"]))
        if checkpoint is not None:
            save_results(results, checkpoint)

    run_jobs([(None, config, config.lrs[0], j) for j in sweep], config.workers, done, bar)
    results["lr"] = config.fixed_lr or report.choose_lr(results["runs"])
    run_jobs([(None, config, results["lr"], j) for j in main], config.workers, done, bar)
    bar.close()
    results["seconds"] = before + time.perf_counter() - t0
    results["complete"] = True
    if checkpoint is not None:
        save_results(results, checkpoint)
    return results


def summary(results: dict) -> dict:
    """The measurement, regime diagnostic and verdict of a results file (:func:`report.summarize`)."""
    return report.summarize(results)


def plot_results(results: dict, path: str | os.PathLike) -> None:
    """Accuracy vs tokens per method with intervals, and the mechanism panel (:func:`report.plot`)."""
    report.plot(results, path)


def save_results(results: dict, path: str | os.PathLike) -> None:
    """Write ``results`` as JSON atomically (see :mod:`costsgd.experiments.results`)."""
    results_file.save_json_results(results, path, experiment=EXPERIMENT)


def _has_a_baseline_run(results: dict) -> str | None:
    baseline = results["config"]["methods"][0]
    if not any(r["stage"] == "main" and r["method"] == baseline for r in results["runs"]):
        return f"has no 'main' run of the baseline method {baseline!r} (config['methods'][0])"
    return None


_EVAL, _ITER = Array(("eval",), minimum=0.0), Array(("iteration",), minimum=0.0)

#: What a study's results file must hold to be summarised and plotted.
SCHEMA = Record(
    {
        "config": Record(
            {
                "methods": ListOf(Text()),
                "seeds": ListOf(Number(integer=True)),
                "regime_seeds": ListOf(Number(integer=True), nonempty=False),
                "grpo": Record(
                    {
                        "token_budget": Number(minimum=0.0, nullable=True),
                        "eval_every": Number(integer=True, minimum=1),
                    }
                ),
            }
        ),
        "lr": Number(minimum=0.0),
        "runs": ListOf(
            Record(
                {
                    "stage": Text(),
                    "method": Text(),
                    "seed": Number(integer=True),
                    "lr": Number(minimum=0.0),
                    "eval_tokens": _EVAL,
                    "eval_processed_tokens": _EVAL,
                    "eval_accuracy": _EVAL,
                    "iter_tokens": _ITER,
                    "iter_processed_tokens": _ITER,
                    "iter_pstar_cost_ratio": _ITER,
                    "iter_zero_adv_frac": _ITER,
                },
                optional={"diagnostics": ListOf(Record({}), nonempty=False)},
                local=("eval", "iteration"),
            )
        ),
    },
    rules=(_has_a_baseline_run,),
)


#: A checkpoint to resume (an interrupted study, a suite's files): :data:`SCHEMA` without the
#: baseline-run rule, and no learning rate yet while the sweep runs (``"lr": null``).
CHECKPOINT_SCHEMA = SCHEMA._replace(
    fields={**SCHEMA.fields, "lr": Number(minimum=0.0, nullable=True)}, rules=()
)


def load_results(path: str | os.PathLike, *, checkpoint: bool = False) -> dict:
    """Read a results file written by :func:`save_results`, checked against :data:`SCHEMA`.

    With ``checkpoint``, against :data:`CHECKPOINT_SCHEMA`: a file saved before
    the first comparison can be summarised (what :func:`run` resumes, and a
    suite's ``sweep.json``).

    Raises:
      ValueError: naming the file, when it is missing, corrupt or not a study's results.
    """
    schema = CHECKPOINT_SCHEMA if checkpoint else SCHEMA
    return results_file.load_results(path, experiment=EXPERIMENT, schema=schema)
