r"""The mini Cost-Aware GRPO study: every setting x method x seed, one results file.

:func:`run_study` warm-starts one policy per seed (supervised, see
:func:`~costsgd.experiments.grpo.policy.warm_start`), then trains a copy of it
with every (setting, method) pair of §5.3 and §5.5 by
:func:`~costsgd.experiments.grpo.trainer.train`, records held-out accuracy
against cumulative policy-optimization tokens, and Figure 3's proxy
diagnostics on the baseline runs. Within a seed every method starts from the
same weights and is evaluated on the same held-out prompts with the same
sampling seed (common random numbers), so differences between methods are not
differences in luck at the start.

Results are plain data (:func:`save_results` writes JSON atomically); tables,
token savings and figures are computed from the file by
:mod:`costsgd.experiments.grpo.report`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from costsgd.experiments import results as results_file
from costsgd.experiments.grpo.diagnostics import rollout_diagnostics
from costsgd.experiments.grpo.policy import GRUPolicy, warm_start
from costsgd.experiments.grpo.task import SortTask, sample_prompts
from costsgd.experiments.grpo.trainer import GRPOConfig, Method, evaluate, train

__all__ = [
    "EXPERIMENT",
    "METHODS",
    "SETTINGS",
    "StudyConfig",
    "default_config",
    "load_results",
    "run_study",
    "save_results",
    "smoke_config",
]

#: The name results files record (``costsgd plot`` dispatches on it).
EXPERIMENT = "grpo-study"

#: Sampling methods by name (§5.3, §5.5, Appendix G.6).
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("no sampling", "none"),
        Method("p*"),
        Method("p*_smooth(0.01)", alpha=0.01),
        Method("p*_smooth(0.05)", alpha=0.05),
        Method("p*_smooth(0.1)", alpha=0.1),
        Method("p_LEN", "length"),
        Method("p*_noisy(σ²=0.1)", noise_var=0.1),
        Method("p*_noisy(σ²=1.0)", noise_var=1.0),
    )
}

#: Training settings: GRPO, GRPO + zero-variance filtering (§5.3), GRPO with the CISPO loss (§5.5).
SETTINGS: dict[str, dict[str, Any]] = {
    "GRPO": {"zvf": False, "loss": "grpo"},
    "GRPO+ZVF": {"zvf": True, "loss": "grpo"},
    "CISPO": {"zvf": False, "loss": "cispo"},
}

_ALL = tuple(METHODS)
_DEFAULT_RUNS = (
    ("GRPO", _ALL),
    (
        "GRPO+ZVF",
        ("no sampling", "p*", "p*_smooth(0.01)", "p*_smooth(0.05)", "p*_smooth(0.1)", "p_LEN"),
    ),
    ("CISPO", ("no sampling", "p*", "p*_smooth(0.01)")),
)


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study (stored in the results file).

    Attributes:
      runs: ``(setting, methods)`` pairs; settings are keys of :data:`SETTINGS`,
        methods keys of :data:`METHODS`. The first method of each setting is
        its baseline for token savings (``"no sampling"``).
      seeds: one warm start and one run of every pair per seed.
      task: the sorting task.
      embed_dim, hidden_dim: policy size.
      warm_start_steps, warm_start_batch: supervised warm start.
      grpo: shared hyper-parameters (``zvf`` and ``loss`` are set per setting).
      eval_prompts, eval_samples: held-out set size and draws per prompt.
      diagnostics: ``(setting, method)`` pairs whose runs record Figure 3's
        proxy diagnostics at every evaluation.
      workers: processes running jobs in parallel (1 = in this process).
    """

    runs: tuple[tuple[str, tuple[str, ...]], ...] = _DEFAULT_RUNS
    seeds: tuple[int, ...] = (0, 1, 2)
    task: SortTask = field(default_factory=SortTask)
    embed_dim: int = 32
    hidden_dim: int = 96
    warm_start_steps: int = 170
    warm_start_batch: int = 64
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    eval_prompts: int = 256
    eval_samples: int = 4
    diagnostics: tuple[tuple[str, str], ...] = (("GRPO", "no sampling"), ("GRPO", "p*"))
    workers: int = 2

    def validate(self) -> StudyConfig:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be non-empty and distinct, got {self.seeds!r}")
        for setting, methods in self.runs:
            if setting not in SETTINGS:
                raise ValueError(f"runs: unknown setting {setting!r}; choose from {list(SETTINGS)}")
            for m in methods:
                if m not in METHODS:
                    raise ValueError(f"runs: unknown method {m!r}; choose from {list(METHODS)}")
            if not methods or methods[0] != "no sampling":
                raise ValueError(
                    f"runs: setting {setting!r} must list 'no sampling' first (the baseline)"
                )
        for name in (
            "embed_dim",
            "hidden_dim",
            "warm_start_steps",
            "warm_start_batch",
            "eval_prompts",
            "eval_samples",
            "workers",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.task.validate()
        self.grpo.validate()
        return self

    def jobs(self) -> list[tuple[int, str, str]]:
        """``(seed, setting, method)`` for every run, seed-major."""
        return [(s, st, m) for s in self.seeds for st, ms in self.runs for m in ms]


def default_config(**overrides: Any) -> StudyConfig:
    """The study ``costsgd grpo-study`` runs (17 runs per seed, 3 seeds)."""
    return dataclasses.replace(StudyConfig(), **overrides).validate()


def smoke_config(**overrides: Any) -> StudyConfig:
    """A seconds-long configuration that exercises the whole pipeline (tests, ``--smoke``)."""
    base = StudyConfig(
        runs=(("GRPO", ("no sampling", "p*", "p_LEN")), ("GRPO+ZVF", ("no sampling", "p*"))),
        seeds=(0,),
        task=SortTask(num_symbols=3, min_len=1, max_len=5),
        embed_dim=16,
        hidden_dim=32,
        warm_start_steps=60,
        warm_start_batch=32,
        grpo=GRPOConfig(
            prompts_per_step=4,
            rollouts_per_prompt=4,
            minibatch_size=8,
            iterations=4,
            token_budget=None,
            lr=1e-3,
            eval_every=2,
        ),
        eval_prompts=32,
        eval_samples=2,
        diagnostics=(("GRPO", "no sampling"), ("GRPO", "p*")),
        workers=1,
    )
    return dataclasses.replace(base, **overrides).validate()


def _config_dict(config: StudyConfig) -> dict:
    d = dataclasses.asdict(config)
    d["task"] = config.task._asdict()
    d["runs"] = [[s, list(ms)] for s, ms in config.runs]
    d["diagnostics"] = [list(p) for p in config.diagnostics]
    return d


def config_from_dict(d: dict) -> StudyConfig:
    """Rebuild a :class:`StudyConfig` from a results file's ``"config"``."""
    return StudyConfig(
        runs=tuple((s, tuple(ms)) for s, ms in d["runs"]),
        seeds=tuple(d["seeds"]),
        task=SortTask(**d["task"]),
        grpo=GRPOConfig(**d["grpo"]),
        diagnostics=tuple(tuple(p) for p in d["diagnostics"]),
        **{
            k: d[k]
            for k in (
                "embed_dim",
                "hidden_dim",
                "warm_start_steps",
                "warm_start_batch",
                "eval_prompts",
                "eval_samples",
                "workers",
            )
        },
    ).validate()


def _warm_policy(config: StudyConfig, seed: int) -> tuple[GRUPolicy, list[float]]:
    torch.manual_seed(seed)
    policy = GRUPolicy(config.task.vocab_size, config.embed_dim, config.hidden_dim)
    losses = warm_start(
        policy,
        config.task,
        steps=config.warm_start_steps,
        batch_size=config.warm_start_batch,
        generator=torch.Generator().manual_seed(seed),
    )
    return policy, losses


def _eval_prompts(config: StudyConfig):
    # One held-out set for the whole study, disjoint in seed from every training stream.
    return sample_prompts(
        config.task, config.eval_prompts, torch.Generator().manual_seed(2**31 - 1)
    )


def _run_job(
    config: StudyConfig, state: dict, seed: int, setting: str, method: str, progress=None
) -> dict:
    torch.set_num_threads(1)
    policy = GRUPolicy(config.task.vocab_size, config.embed_dim, config.hidden_dim)
    policy.load_state_dict(state)
    reference = copy.deepcopy(policy).requires_grad_(False)
    grpo = dataclasses.replace(config.grpo, **SETTINGS[setting])
    diagnose = rollout_diagnostics(grpo) if (setting, method) in config.diagnostics else None
    t0, cpu0 = time.perf_counter(), time.process_time()
    log = train(
        policy,
        config.task,
        grpo,
        METHODS[method],
        seed=1000 * seed + 1,
        eval_prompts=_eval_prompts(config),
        eval_samples=config.eval_samples,
        reference=reference,
        diagnose=diagnose,
        on_iteration=progress,
    )
    return {
        "seed": seed,
        "setting": setting,
        "method": method,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - cpu0,
        **log.as_dict(),
    }


def _job_in_worker(args) -> dict:
    return _run_job(*args)


def run_study(config: StudyConfig, *, progress: bool = True) -> dict:
    """Run every job of ``config`` and return the results (JSON-ready dict).

    Args:
      config: the study.
      progress: show a tqdm progress bar (over training iterations).

    Returns:
      ``{"config", "versions", "hardware", "warm_start", "runs", "seconds"}``;
      each run holds its :class:`~costsgd.experiments.grpo.trainer.RunLog` fields.
    """
    from tqdm.auto import tqdm

    config.validate()
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    jobs = config.jobs()
    bar = tqdm(
        total=len(jobs) * config.grpo.iterations, desc="grpo-study", unit="it", disable=not progress
    )
    states, warm = {}, {}
    for seed in config.seeds:
        bar.set_postfix_str(f"warm start seed {seed}")
        policy, losses = _warm_policy(config, seed)
        states[seed] = policy.state_dict()
        acc = evaluate(
            policy,
            config.task,
            _eval_prompts(config),
            config.eval_samples,
            10_000 + 1000 * seed + 1,
        )
        warm[str(seed)] = {"final_loss": losses[-1], "accuracy": acc}
    runs = []
    if config.workers == 1:
        for seed, setting, method in jobs:
            bar.set_postfix_str(f"seed {seed} {setting} {method}")
            run = _run_job(config, states[seed], seed, setting, method, progress=bar.update)
            bar.update(config.grpo.iterations - len(run["iter_tokens"]))  # stopped at the budget
            runs.append(run)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        args = [(config, states[s], s, st, m) for s, st, m in jobs]
        with ctx.Pool(config.workers) as pool:
            for run in pool.imap_unordered(_job_in_worker, args):
                runs.append(run)
                bar.set_postfix_str(f"done seed {run['seed']} {run['setting']} {run['method']}")
                bar.update(config.grpo.iterations)
        order = {j: i for i, j in enumerate(jobs)}
        runs.sort(key=lambda r: order[(r["seed"], r["setting"], r["method"])])
    bar.close()
    return {
        "config": _config_dict(config),
        "versions": results_file.versions("torch"),
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
        "warm_start": warm,
        "runs": runs,
        "seconds": time.perf_counter() - t0,
    }


def save_results(results: dict, path: str | os.PathLike) -> None:
    """Write ``results`` as JSON atomically (see :mod:`costsgd.experiments.results`)."""
    results_file.save_json_results(results, path, experiment=EXPERIMENT)


def load_results(path: str | os.PathLike) -> dict:
    """Read a results file written by :func:`save_results`.

    Raises:
      ValueError: naming the file, when it is missing, corrupt or not a study's results.
    """
    results = results_file.load_results(path, experiment=EXPERIMENT)
    if not {"config", "runs"} <= set(results):
        raise ValueError(f"{str(path)!r} is not a grpo-study results file (no 'config'/'runs')")
    return results
