r"""``costsgd grpo-study --suite paper``: every §5 claim and the task mixes, in one resumable run.

A suite is a shared learning-rate sweep plus *parts*, each a
:class:`~costsgd.experiments.grpo.study.StudyConfig` (task mix, training
setting, methods, seeds) with its own results file ``<part>.json``:

* ``grpo``, ``zvf``, ``cispo``: the default mix in the three settings of §5.3
  and §5.5 with every method a claim of :mod:`~costsgd.experiments.grpo.section5`
  needs (α, proxy noise, p_LEN, zero-advantage removal);
* ``mix-<name>-grpo`` and ``mix-<name>-zvf`` for every other mix of
  :data:`~costsgd.experiments.grpo.mixes.MIXES`: no sampling, p*,
  p*_smooth(0.01) and p ∝ 1[A≠0] in GRPO and GRPO+ZVF (the default mix's rows
  come from ``grpo`` and ``zvf``).

Every run of every part goes through one pool of worker processes; each
results file is rewritten (atomically) after each of its runs finishes, so an
interrupted suite resumes where it stopped (:func:`run_suite`): finished runs
are kept, a part saved with another configuration is refused with the keys
that differ, before anything runs. :func:`summarize_suite` turns the files into
the claims table (:func:`section5.evaluate <costsgd.experiments.grpo.section5.evaluate>`),
the mix table, and the time spent; :func:`format_suite_report` and
:func:`plot_mixes` write them.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from costsgd.experiments.grpo import mixes, report, section5, study
from costsgd.experiments.grpo.study import BASELINE, StudyConfig

__all__ = [
    "MIX_METHODS",
    "SUITES",
    "Part",
    "SuiteConfig",
    "format_suite_report",
    "headline_suite",
    "load_all",
    "load_suite",
    "paper_suite",
    "plot_mixes",
    "run_suite",
    "smoke_suite",
    "summarize_suite",
]

#: The methods every mix runs, in both settings.
MIX_METHODS = (BASELINE, "p*", "p*_smooth(0.01)", "p ∝ 1[A≠0]")
_GRPO_METHODS = (
    *MIX_METHODS,
    "p*_smooth(0.05)",
    "p*_smooth(0.1)",
    "p_LEN",
    "p*_noisy(σ²=0.1)",
    "p*_noisy(σ²=1.0)",
)
_ZVF_METHODS = (*MIX_METHODS, "p*_smooth(0.05)", "p*_smooth(0.1)", "p_LEN")
_CISPO_METHODS = (BASELINE, "p*", "p*_smooth(0.01)")
#: Seeds a mix part runs at least (the first of the suite's seeds).
MIX_SEEDS = 4


@dataclass(frozen=True)
class Part:
    """One results file of a suite.

    Attributes:
      name: the file's stem (``<name>.json``).
      mix: the task mix's name (a key of :data:`~costsgd.experiments.grpo.mixes.MIXES`).
      config: what runs (``fixed_lr`` unset: the suite's sweep sets the rate).
    """

    name: str
    mix: str
    config: StudyConfig


@dataclass(frozen=True)
class SuiteConfig:
    """A sweep and the parts that use its learning rate.

    Attributes:
      name: the suite's name (``"paper"``, ``"smoke"``).
      sweep: the baseline-only sweep (only its sweep jobs run; ``sweep.json``).
      parts: the parts, in the order their runs are started.
      workers: processes running the runs (1 = in this process).
    """

    name: str
    sweep: StudyConfig
    parts: tuple[Part, ...]
    workers: int = 2

    def validate(self) -> SuiteConfig:
        """Check every part before any run (``ValueError`` naming the part and the field)."""
        if not (isinstance(self.workers, int) and self.workers >= 1):
            raise ValueError(f"workers must be an int >= 1, got {self.workers!r}")
        self.sweep.validate()
        names = [p.name for p in self.parts]
        if len(set(names)) != len(names) or "sweep" in names:
            raise ValueError(f"part names must be distinct and not 'sweep', got {names}")
        for p in self.parts:
            try:
                p.config.validate()
            except (ValueError, TypeError) as err:
                raise type(err)(f"part {p.name!r}: {err}") from err
            if p.config.fixed_lr is not None:
                raise ValueError(f"part {p.name!r}: the learning rate comes from the suite's sweep")
        return self

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)


def _parts(base: StudyConfig, tasks: dict, seeds: tuple[int, ...], zvf_budget) -> tuple[Part, ...]:
    """The parts of a suite over ``tasks`` (mix name -> task; the first is the default mix).

    ``zvf_budget(mix)`` is the token budget of a mix's GRPO+ZVF runs (``None``: the base's).
    """

    def config(task, setting, methods, part_seeds, mix):
        grpo = base.grpo
        if setting == "GRPO+ZVF" and zvf_budget is not None:
            grpo = dataclasses.replace(grpo, token_budget=zvf_budget(mix))
        return dataclasses.replace(
            base, task=task, setting=setting, methods=methods, seeds=part_seeds, grpo=grpo
        )

    default, *others = tasks
    task = tasks[default]
    parts = [
        Part("grpo", default, config(task, "GRPO", _GRPO_METHODS, seeds, default)),
        Part("zvf", default, config(task, "GRPO+ZVF", _ZVF_METHODS, seeds, default)),
    ]
    for name in others:
        for setting, suffix in (("GRPO", "grpo"), ("GRPO+ZVF", "zvf")):
            parts.append(
                Part(
                    f"mix-{name}-{suffix}",
                    name,
                    config(tasks[name], setting, MIX_METHODS, seeds[:MIX_SEEDS], name),
                )
            )
    parts.append(Part("cispo", default, config(task, "CISPO", _CISPO_METHODS, seeds, default)))
    return tuple(parts)


def paper_suite(
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5),
    sweep_seeds: tuple[int, ...] = (100, 101),
    workers: int = 2,
) -> SuiteConfig:
    """The suite ``costsgd grpo-study --suite paper`` runs (module doc).

    The default mix's parts run every seed of ``seeds``; the other mixes the
    first :data:`MIX_SEEDS` (at least 4 seeds are needed). Every part has the
    default study's settings (:func:`~costsgd.experiments.grpo.study.default_config`)
    except ``regime_seeds`` (none: the regime runs belong to the default
    study) and, under GRPO+ZVF, the token budget
    :func:`~costsgd.experiments.grpo.mixes.zvf_token_budget` of the mix.
    """
    seeds = tuple(seeds)
    if len(seeds) < MIX_SEEDS:
        raise ValueError(
            f"seeds must hold at least {MIX_SEEDS} seeds (the mixes run 4), got {seeds!r}"
        )
    base = study.default_config(regime_seeds=(), seeds=seeds, sweep_seeds=tuple(sweep_seeds))
    sweep = dataclasses.replace(base, methods=(BASELINE,))
    parts = _parts(base, mixes.MIXES, seeds, mixes.zvf_token_budget)
    return SuiteConfig("paper", sweep, parts, workers).validate()


def smoke_suite(workers: int = 1) -> SuiteConfig:
    """Every part of the paper suite at seconds of CPU (tests, ``--suite smoke``)."""
    base = study.smoke_config(
        regime_seeds=(),
        lrs=(3e-3,),
        warm_start_steps=20,
        grpo=dataclasses.replace(study.smoke_config().grpo, iterations=3, eval_every=1),
    )
    sweep = dataclasses.replace(base, methods=(BASELINE,))
    tasks = {"default": base.task, "no-cap": mixes.SMOKE_MIX}
    parts = _parts(base, tasks, base.seeds, None)
    return SuiteConfig("smoke", sweep, parts, workers).validate()


def headline_suite(
    seeds: tuple[int, ...] = (10, 11, 12, 13, 14, 15),
    sweep_seeds: tuple[int, ...] = (110, 111),
    workers: int = 2,
) -> SuiteConfig:
    """The paper suite's headline comparisons only, for a rerun on other seeds.

    Its ``grpo`` and ``zvf`` parts with no sampling, p*, p*_smooth(0.01) and
    p ∝ 1[A≠0] on the default mix, and its own sweep (by default on seeds the
    paper suite never uses): do the headline verdicts survive another seed set?
    """
    paper = paper_suite(seeds, sweep_seeds, workers)
    parts = tuple(
        dataclasses.replace(p, config=dataclasses.replace(p.config, methods=MIX_METHODS))
        for p in paper.parts
        if p.name in ("grpo", "zvf")
    )
    return SuiteConfig("headline", paper.sweep, parts, workers).validate()


#: Suites by the name ``--suite`` takes.
SUITES = {"paper": paper_suite, "headline": headline_suite, "smoke": smoke_suite}


def _tier(suite: SuiteConfig, part: str, method: str) -> int:
    """Run order: the default mix's four mix methods in GRPO and GRPO+ZVF (the headline rows)
    first, then the other mixes, then the remaining claims' methods (an interrupted suite
    has its headline comparisons first)."""
    p = suite.part(part)
    if method not in MIX_METHODS or p.config.setting not in ("GRPO", "GRPO+ZVF"):
        return 2
    return 0 if p.mix == suite.parts[0].mix else 1


def _part_results(suite: SuiteConfig, part: Part, lr: float | None) -> dict:
    r = study.new_results(part.config)
    r.update(lr=lr, lr_from="sweep.json", part=part.name, mix=part.mix, suite=suite.name)
    return r


def load_all(suite: SuiteConfig, out: Path, restart: bool) -> dict[str, dict]:
    """Every file of the suite: resumed (its configuration checked) or new."""
    files = {"sweep": (suite.sweep, None)} | {p.name: (p.config, p) for p in suite.parts}
    loaded = {}
    for name, (config, part) in files.items():
        path = out / f"{name}.json"
        if restart or not path.exists():
            loaded[name] = (
                study.new_results(config) if part is None else _part_results(suite, part, None)
            )
        else:
            loaded[name] = study.resume_results(config, path)
    return loaded


def run_suite(
    suite: SuiteConfig, out: str | os.PathLike, *, progress: bool = True, restart: bool = False
) -> dict[str, dict]:
    """Run (or resume) ``suite`` into the folder ``out``; returns ``part name -> results``.

    Every configuration is checked before the first run: a saved file whose
    configuration differs is refused (``ValueError`` naming the file and the
    keys) unless ``restart``. Runs already in a file are not run again. The
    sweep runs first; every other run then goes through one pool of
    ``suite.workers`` processes, the headline runs first (the default mix's
    no sampling, p*, p*_smooth(0.01) and p ∝ 1[A≠0] in GRPO and GRPO+ZVF),
    then the other mixes, then the remaining methods (method-major within a
    part), and its file is rewritten after each.
    """
    from tqdm.auto import tqdm

    suite.validate()
    out = Path(out)
    results = load_all(suite, out, restart)
    todo_sweep = [
        ("sweep", suite.sweep, suite.sweep.lrs[0], j)
        for j in suite.sweep.sweep_jobs()
        if j not in {study.job_key(r) for r in results["sweep"]["runs"]}
    ]
    todo = []
    for p in suite.parts:
        finished = {study.job_key(r) for r in results[p.name]["runs"]}
        todo += [(p.name, p.config, None, j) for j in p.config.main_jobs() if j not in finished]
    todo.sort(key=lambda t: _tier(suite, t[0], t[3][2]))  # stable: part, then method-major
    total = len(suite.sweep.sweep_jobs()) + sum(len(p.config.main_jobs()) for p in suite.parts)
    bar = tqdm(
        total=total,
        initial=total - len(todo_sweep) - len(todo),
        desc=f"grpo suite {suite.name}",
        unit="run",
        disable=not progress,
    )
    t0 = time.perf_counter()
    before = {k: r["seconds"] for k, r in results.items()}
    before_suite = results["sweep"].get("suite_seconds", 0.0)
    for r in results.values():
        r["sessions"] = r.get("sessions", 0) + 1

    def done(name: str, run: dict) -> None:
        res = results[name]
        res["runs"].append(run)
        res["seconds"] = before[name] + time.perf_counter() - t0
        results["sweep"]["suite_seconds"] = before_suite + time.perf_counter() - t0
        study.save_results(res, out / f"{name}.json")
        if name != "sweep":
            study.save_results(results["sweep"], out / "sweep.json")
        bar.set_postfix_str(f"{name} {run['seed']} {run['method']}")
        bar.update(1)

    def finish(name: str) -> None:
        results[name]["complete"] = True
        study.save_results(results[name], out / f"{name}.json")

    study.run_jobs(todo_sweep, suite.workers, done, bar, per_iteration=False)
    lr = report.choose_lr(results["sweep"]["runs"])
    results["sweep"]["lr"] = lr
    finish("sweep")
    for p in suite.parts:
        saved = results[p.name]["lr"]
        if saved is not None and saved != lr:
            raise ValueError(
                f"{p.name}.json was run at learning rate {saved}, the sweep now gives {lr}"
            )
        results[p.name]["lr"] = lr
    study.run_jobs(
        [(n, c, lr, j) for n, c, _, j in todo], suite.workers, done, bar, per_iteration=False
    )
    results["sweep"]["suite_seconds"] = before_suite + time.perf_counter() - t0
    for name in ("sweep", *(p.name for p in suite.parts)):
        finish(name)
    bar.close()
    return results


def load_suite(out: str | os.PathLike, suite: SuiteConfig) -> dict[str, dict]:
    """The results files of ``suite`` found in ``out`` (a missing part is left out)."""
    out = Path(out)
    names = ["sweep", *(p.name for p in suite.parts)]
    return {
        n: study.load_results(out / f"{n}.json", checkpoint=True)
        for n in names
        if (out / f"{n}.json").exists()
    }


def _baseline_runs(results: dict) -> list[dict]:
    return [r for r in results["runs"] if r["stage"] == "main" and r["method"] == BASELINE]


def _mix_row(suite: SuiteConfig, parts: dict[str, dict], mix: str, summaries: dict) -> dict:
    """What one mix shows: its pools, the expected and the realised savings in both settings."""
    names = {
        p.config.setting: p.name
        for p in suite.parts
        if p.mix == mix and p.config.setting in ("GRPO", "GRPO+ZVF")
    }
    row: dict[str, Any] = {"mix": mix, "task": None, "settings": {}}
    for setting, name in names.items():
        res = parts.get(name)
        if res is None or not _baseline_runs(res):
            row["settings"][setting] = {"gap": f"{name}.json has no finished baseline run"}
            continue
        row["task"] = res["config"]["task"]
        base = _baseline_runs(res)
        entry = {
            "part": name,
            "zero_adv_fraction": float(
                np.mean([np.mean(r["iter_generated_zero_adv_frac"]) for r in base])
            ),
            "cost_spread_median": float(
                np.median(np.concatenate([r["iter_cost_spread"] for r in base]))
            ),
            "expected_saving": {
                "p*": 1 - float(np.mean([np.mean(r["iter_pstar_cost_ratio"]) for r in base])),
                "p*_smooth(0.01)": 1
                - float(np.mean([np.mean(r["iter_expected_ratio_smooth"]) for r in base])),
                "p ∝ 1[A≠0]": 1
                - float(np.mean([np.mean(r["iter_expected_ratio_nonzero"]) for r in base])),
            },
            "realised": {},
        }
        for m in MIX_METHODS[1:]:
            try:
                entry["realised"][m] = report.compare(res, m, BASELINE)
            except ValueError as err:
                entry["realised"][m] = {"gap": str(err)}
        try:
            entry["p* vs 1[A≠0]"] = report.compare(res, "p*", "p ∝ 1[A≠0]")
        except ValueError as err:
            entry["p* vs 1[A≠0]"] = {"gap": str(err)}
        if name not in summaries:
            summaries[name] = report.summarize(res)
        s = summaries[name]
        entry["baseline_plateaued"] = s["baseline_plateaued"]
        entry["baseline_gain_pp"] = 100 * s["baseline_gain"]
        row["settings"][setting] = entry
    return row


def _timing(parts: dict[str, dict]) -> dict:
    per = {}
    for name, res in parts.items():
        runs = res["runs"]
        loads = [r["load_average"][0] for r in runs if "load_average" in r]
        per[name] = {
            "runs": len(runs),
            "cpu_seconds": float(sum(r["cpu_seconds"] for r in runs)),
            "run_seconds": float(sum(r["seconds"] for r in runs)),
            "load_average_1min": [min(loads), max(loads)] if loads else None,
        }
    cpu = sum(p["cpu_seconds"] for p in per.values())
    sweep = parts.get("sweep", {})
    return {
        "parts": per,
        "cpu_seconds": cpu,
        "idle_2core_minutes": cpu / 2 / 60,
        "wall_seconds": float(sweep.get("suite_seconds", 0.0)),
        "sessions": int(sweep.get("sessions", 0)),
    }


def _planned(suite: SuiteConfig) -> dict[str, tuple[str, ...]]:
    return {p.name: p.config.methods for p in suite.parts}


def summarize_suite(
    suite: SuiteConfig, parts: dict[str, dict], summaries: dict[str, dict] | None = None
) -> dict:
    """Claims, mixes and time of a suite's results (``part name -> results``; missing parts are gaps).

    ``summaries`` caches :func:`report.summarize` per part (filled as needed).
    """
    mix_names = list(dict.fromkeys(p.mix for p in suite.parts))
    planned = 1 + len(suite.parts)
    summaries = {} if summaries is None else summaries
    return {
        "suite": suite.name,
        "claims": section5.evaluate(parts, summaries, planned=_planned(suite)),
        "mixes": [_mix_row(suite, parts, m, summaries) for m in mix_names],
        "time": _timing(parts),
        "lr": parts["sweep"]["lr"] if "sweep" in parts else None,
        "complete": len(parts) == planned and all(r.get("complete") for r in parts.values()),
        "parts_found": sorted(parts),
    }


def _cell(cmp: dict) -> str:
    if "gap" in cmp and "drawn" not in cmp:
        return f"n/a ({report.markdown_literal(cmp['gap'])})"
    return report.saving_text(cmp["drawn"])


def format_suite_report(s: dict) -> str:
    """The combined report (markdown): the claims table first, then the mixes and the time."""
    L = [f"# Cost-Aware GRPO suite `{s['suite']}`", ""]
    if not s["complete"]:
        L += [f"**Partial suite**: results found for {', '.join(s['parts_found'])}.", ""]
    lr = "not chosen yet (the sweep has not finished)" if s["lr"] is None else f"{s['lr']:g}"
    L += [
        f"Learning rate {lr} (the baseline-only sweep, `sweep.json`), shared by every part.",
        "",
        "## §5 claims",
        "",
        section5.format_table(s["claims"]),
        "",
        "## Task mixes",
        "",
        "Zero-advantage fraction (of every generated group, before any filtering) and cost "
        "spread (max/min cost within a pool, median over iterations) on the baseline's pools of "
        "that setting; *expected* = the per-iteration saving 1 − E_p\\*[c]/mean c on those pools; "
        "*realised* = tokens to the baseline's thresholds against no sampling, paired by seed "
        "[95%]; *p\\* vs 1[A≠0]*: the same, p\\* against zero-advantage removal.",
        "",
        "| mix | setting | zero-adv. | cost spread | expected p\\* | p\\* | p\\*_smooth(0.01) | "
        "p ∝ 1[A≠0] | p\\* vs 1[A≠0] | baseline gain, plateaued |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in s["mixes"]:
        for setting, e in row["settings"].items():
            if "gap" in e:
                gap = report.markdown_literal(e["gap"])
                L.append(f"| {row['mix']} | {setting} | n/a ({gap}) | | | | | | | |")
                continue
            r = e["realised"]
            L.append(
                f"| {row['mix']} | {setting} | {e['zero_adv_fraction']:.2f} | "
                f"{e['cost_spread_median']:.1f} | {e['expected_saving']['p*']:+.1%} | "
                f"{_cell(r['p*'])} | {_cell(r['p*_smooth(0.01)'])} | {_cell(r['p ∝ 1[A≠0]'])} | "
                f"{_cell(e['p* vs 1[A≠0]'])} | {e['baseline_gain_pp']:+.1f} pp, "
                f"{'yes' if e['baseline_plateaued'] else 'no'} |"
            )
    t = s["time"]
    L += [
        "",
        "## Time",
        "",
        f"{t['cpu_seconds']:,.0f} CPU-seconds in all runs: {t['idle_2core_minutes']:.0f} minutes "
        "on 2 idle cores (CPU-seconds / 2; the report, figures and process start-up not counted). "
        f"Wall time {t['wall_seconds']:,.0f} s over {t['sessions']} session(s) on a shared "
        "machine (load averages below).",
        "",
        "| part | runs | CPU-s | run wall-s (summed) | 1-min load average at run ends |",
        "|---|---|---|---|---|",
    ]
    for name, p in t["parts"].items():
        load = (
            "n/a"
            if p["load_average_1min"] is None
            else "{:.1f}–{:.1f}".format(*p["load_average_1min"])
        )
        L.append(
            f"| {name} | {p['runs']} | {p['cpu_seconds']:,.0f} | {p['run_seconds']:,.0f} | {load} |"
        )
    return "\n".join(L)


def plot_mixes(s: dict, path: str | os.PathLike) -> None:
    """Realised saving against the mix's zero-advantage fraction, with the expected saving of p*.

    One panel per setting; per method the paired saving and its 95% interval,
    and the expected per-iteration saving of p* on the baseline's pools (hollow).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from costsgd.experiments.results import write_atomic

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    x_of = {
        row["mix"]: row["settings"]["GRPO"].get("zero_adv_fraction")
        for row in s["mixes"]
        if "GRPO" in row["settings"]
    }
    for ax, setting in zip(axes, ("GRPO", "GRPO+ZVF"), strict=True):
        for k, m in enumerate(MIX_METHODS[1:]):
            xs, ys, lo, hi = [], [], [], []
            for row in s["mixes"]:
                e = row["settings"].get(setting, {})
                c = e.get("realised", {}).get(m, {})
                x = x_of.get(row["mix"])
                if x is None or "drawn" not in c or c["drawn"]["saving"] is None:
                    continue
                xs.append(100 * x + (k - 1) * 0.8)
                ys.append(100 * c["drawn"]["saving"])
                lo.append(100 * (c["drawn"]["saving"] - c["drawn"]["ci"][0]))
                hi.append(100 * (c["drawn"]["ci"][1] - c["drawn"]["saving"]))
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, label=f"{m} (realised)")
        pts = sorted(
            (
                100 * x_of[row["mix"]],
                100 * row["settings"][setting]["expected_saving"]["p*"],
                row["mix"],
            )
            for row in s["mixes"]
            if x_of.get(row["mix"]) is not None
            and "expected_saving" in row["settings"].get(setting, {})
        )
        if pts:
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                "k--",
                marker="o",
                mfc="none",
                label="p* (expected per iteration)",
            )
            for x, y, name in pts:
                ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 6), fontsize=7)
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_title(setting)
        ax.set_xlabel("zero-advantage fraction of the GRPO baseline's pools (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("tokens-to-threshold saving vs no sampling (%)")
    fig.tight_layout()
    try:
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
