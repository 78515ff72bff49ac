r"""The measurement, verdict and figure of a TRL-study results file.

Per run, at every held-out evaluation (after ``k`` optimizer steps), the
cumulative *drawn* and *processed* tokens and the cumulative wall and CPU
seconds of the *policy-update phase*
(:mod:`~costsgd.experiments.trl_study.phases`). Per arm, paired with the same
seed's ``GRPOTrainer`` run:

* *Thresholds.* Seed :math:`s`'s baseline starts at :math:`a_{0,s}` (every
  arm of a seed shares the warm start) and plateaus at :math:`\bar a_s`, its
  mean held-out accuracy over the last 20% of the run's optimizer steps. With
  :math:`\Delta` the seed-mean gain, the thresholds are
  :math:`a_{0,s} + f\Delta`, :math:`f \in \{0.5, 0.75, 0.9\}`.
* *To threshold* (:func:`~costsgd.experiments.grpo.report.tokens_to_threshold`):
  drawn tokens, processed tokens, update seconds and update CPU-seconds at the
  first crossing, interpolated linearly; a run that never crosses is censored
  at its final value (counted, never dropped).
* *Saving* :math:`1 - \sum T_{arm} / \sum T_{base}` over seeds and the three
  thresholds (and per threshold), with a paired bootstrap 95% interval over
  seeds (:func:`~costsgd.experiments.grpo.report.paired_bootstrap`).
* *Plateau accuracy*: the arm's minus the baseline's, in percentage points.
* *Expected per-iteration saving* of a cost-aware arm:
  :math:`1 - \mathbb E_p[c]/\bar c` averaged over its own pools.

Verdict: the GRPO study's rule (:data:`~costsgd.experiments.grpo.report.VERDICT_RULE`,
:func:`~costsgd.experiments.grpo.report.verdict`), fixed before the run, on
drawn tokens, for both cost-aware arms.

Target (:data:`TARGET_RULE`): at equal plateau accuracy (within 1.5 pp), the
cost-aware arm's update-time saving to threshold is at least 0.8 times its
processed-token saving to threshold.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict

import numpy as np

from costsgd.experiments.grpo.report import (
    FRACTIONS,
    VERDICT_RULE,
    markdown_literal,
    paired_bootstrap,
    sweep_summary,
    tokens_to_threshold,
    verdict,
)
from costsgd.experiments.results import write_atomic, write_text

__all__ = [
    "MEASURES",
    "PLATEAU_WINDOW",
    "TARGET_RULE",
    "format_report",
    "plot",
    "run_curves",
    "summarize",
    "target",
    "update_cost_model",
    "write_report",
]

#: The plateau window: the last 20% of a run's optimizer steps.
PLATEAU_WINDOW = 0.2
_BOOT = 4000

#: Cumulative measures at each evaluation: name -> the per-step list they sum.
MEASURES = {
    "drawn": "drawn_tokens",
    "processed": "processed_tokens",
    "update_seconds": "update_seconds",
    "update_cpu_seconds": "update_cpu_seconds",
}

TARGET_RULE = (
    "met when the cost-aware arm's plateau accuracy is within 1.5 pp of GRPOTrainer's and its "
    "update-phase wall-time saving to threshold is at least 0.8 x its processed-token saving to "
    "threshold"
)

_COST_AWARE = {
    "CostAwareGRPOTrainer(p*)": "pstar_cost_ratio",
    "CostAwareGRPOTrainer(nonzero)": "nonzero_cost_ratio",
}


def run_curves(run: dict) -> dict[str, np.ndarray]:
    """Accuracy and each cumulative measure of :data:`MEASURES` at the run's evaluations.

    Examples:
      >>> r = {"eval_step": [0, 2], "eval_accuracy": [0.1, 0.3], "drawn_tokens": [5, 7],
      ...      "processed_tokens": [8, 8], "update_seconds": [1.0, 2.0],
      ...      "update_cpu_seconds": [1.0, 1.0]}
      >>> run_curves(r)["processed"].tolist()
      [0.0, 16.0]
    """
    steps = np.asarray(run["eval_step"], dtype=int)
    out = {"step": steps, "accuracy": np.asarray(run["eval_accuracy"], dtype=float)}
    for name, key in MEASURES.items():
        total = np.concatenate([[0.0], np.cumsum(np.asarray(run[key], dtype=float))])
        out[name] = total[steps]
    return out


def _plateau(run: dict) -> float:
    c = run_curves(run)
    window = c["step"] >= (1 - PLATEAU_WINDOW) * c["step"][-1]
    return float(c["accuracy"][window].mean())


def _comparison(base: list[dict], other: list[dict], measure: str) -> dict:
    """To-threshold savings of ``other`` vs ``base`` (lists paired by seed) on ``measure``."""
    a0 = np.array([r["eval_accuracy"][0] for r in base])
    gain = float(np.mean([_plateau(r) for r in base] - a0))
    T, final = {}, {}
    for name, runs in (("base", base), ("other", other)):
        curves = [run_curves(r) for r in runs]
        T[name] = np.array(
            [
                [
                    tokens_to_threshold(c[measure], c["accuracy"], a0[s] + f * gain)
                    for f in FRACTIONS
                ]
                for s, c in enumerate(curves)
            ]
        )
        final[name] = np.array([float(c[measure][-1]) for c in curves])[:, None]
    censored = {k: int(np.isinf(T[k]).sum()) for k in T}
    Tc = {k: np.where(np.isinf(T[k]), final[k], T[k]) for k in T}
    # Paired bootstrap over seeds (one index draw for the arm and its baseline), vectorised:
    # the percentile interval of paired_bootstrap, with its seed and number of resamples.
    idx = np.random.default_rng(0).integers(0, len(base), (_BOOT, len(base)))

    def saving(cols: list[int]) -> dict:
        b, o = Tc["base"][:, cols].sum(1), Tc["other"][:, cols].sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            boot = 1.0 - o[idx].sum(1) / b[idx].sum(1)
        boot = boot[np.isfinite(boot)]
        ci = (
            (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975)))
            if boot.size
            else (math.nan, math.nan)
        )
        return {"saving": 1.0 - o.sum() / b.sum() if b.sum() > 0 else math.nan, "ci": ci}

    return {
        "gain": gain,
        **saving([0, 1, 2]),
        "per_threshold": [{"fraction": f, **saving([j])} for j, f in enumerate(FRACTIONS)],
        "censored": censored,
        "to_threshold": {k: Tc[k].tolist() for k in Tc},
    }


def _diff_pp(base: list[dict], other: list[dict], fn) -> dict:
    d = np.array([fn(o) - fn(b) for b, o in zip(base, other, strict=True)])
    lo, hi = paired_bootstrap(lambda i: float(d[i].mean()), len(d))
    return {"pp": 100 * float(d.mean()), "ci_pp": (100 * lo, 100 * hi)}


def _per_iteration(base: list[dict], runs: list[dict], key: str) -> float:
    """Mean over seeds of the arm's total ``key`` over the baseline's (same iterations)."""
    return float(
        np.mean([np.sum(r[key]) / np.sum(b[key]) for b, r in zip(base, runs, strict=True)])
    )


def target(row: dict) -> dict:
    """:data:`TARGET_RULE` applied to one arm's row of :func:`summarize`.

    Returns:
      ``{"met": bool, "ratio": float, "ratio_cpu": float, "reason": str}``; the
      ratios are the update-time (wall, CPU) saving over the processed-token saving.

    Examples:
      >>> row = {"plateau_vs_baseline": {"pp": -0.4}, "processed": {"saving": 0.5},
      ...        "update_seconds": {"saving": 0.45}, "update_cpu_seconds": {"saving": 0.4}}
      >>> target(row)["met"], round(target(row)["ratio"], 2)
      (True, 0.9)
    """
    tokens = row["processed"]["saving"]
    wall, cpu = row["update_seconds"]["saving"], row["update_cpu_seconds"]["saving"]
    ratio = wall / tokens if tokens > 0 else math.nan
    ratio_cpu = cpu / tokens if tokens > 0 else math.nan
    plateau = row["plateau_vs_baseline"]["pp"]
    equal = abs(plateau) <= 1.5
    met = bool(equal and tokens > 0 and ratio >= 0.8)
    why = (
        f"plateau {plateau:+.1f} pp ({'within' if equal else 'NOT within'} 1.5 pp); processed-token "
        f"saving {tokens:+.1%}, update wall-time saving {wall:+.1%} (ratio {ratio:.2f}), "
        f"update CPU-time saving {cpu:+.1%} (ratio {ratio_cpu:.2f})"
    )
    return {"met": met, "ratio": ratio, "ratio_cpu": ratio_cpu, "reason": why}


def _row(arm: str, seeds: list, base: list[dict], runs: list[dict]) -> dict:
    row = {"arm": arm, "seeds": seeds}
    for measure in MEASURES:
        row[measure] = _comparison(base, runs, measure)
    row.update(
        plateau_accuracy=float(np.mean([_plateau(r) for r in runs])),
        plateau_vs_baseline=_diff_pp(base, runs, _plateau),
        peak_vs_baseline=_diff_pp(base, runs, lambda r: float(np.max(r["eval_accuracy"]))),
        per_iteration_vs_baseline={
            k: _per_iteration(base, runs, k)
            for k in (
                "drawn_tokens",
                "processed_tokens",
                "update_seconds",
                "update_cpu_seconds",
                "generation_seconds",
                "generation_cpu_seconds",
            )
        },
        update_seconds_per_iteration=float(
            np.mean([np.sum(r["update_seconds"]) / len(r["pool_tokens"]) for r in runs])
        ),
        update_cpu_seconds_per_iteration=float(
            np.mean([np.sum(r["update_cpu_seconds"]) / len(r["pool_tokens"]) for r in runs])
        ),
        generation_seconds_per_iteration=float(
            np.mean([np.sum(r["generation_seconds"]) / len(r["pool_tokens"]) for r in runs])
        ),
        generation_cpu_seconds_per_iteration=float(
            np.mean([np.sum(r["generation_cpu_seconds"]) / len(r["pool_tokens"]) for r in runs])
        ),
        zero_advantage_fraction=float(
            np.mean([np.mean(r["zero_advantage_fraction"]) for r in runs])
        ),
        pstar_cost_ratio=float(np.mean([np.mean(r["pstar_cost_ratio"]) for r in runs])),
        nonzero_cost_ratio=float(np.mean([np.mean(r["nonzero_cost_ratio"]) for r in runs])),
    )
    if arm in _COST_AWARE:
        expected = 1 - float(np.mean([np.mean(r[_COST_AWARE[arm]]) for r in runs]))
        row["expected_saving"] = expected
        row["verdict"] = verdict(
            expected,
            row["drawn"]["saving"],
            tuple(row["drawn"]["ci"]),
            row["plateau_vs_baseline"]["pp"],
        )
        row["target"] = target(row)
    return row


def _last_window_gain(runs: list[dict]) -> float:
    """Gain of the baseline's seed-mean curve over the last 20% of its steps (least-squares line)."""
    last = min(int(r["eval_step"][-1]) for r in runs)
    grid = np.linspace((1 - PLATEAU_WINDOW) * last, last, 21)
    mean = np.mean([np.interp(grid, r["eval_step"], r["eval_accuracy"]) for r in runs], axis=0)
    return float(np.polyfit(grid, mean, 1)[0] * PLATEAU_WINDOW * last)


def update_cost_model(runs: list[dict], baseline: str) -> dict:
    r"""Where the update time goes: per optimizer step, seconds :math:`= \alpha + \beta \times` processed tokens.

    Least squares over every optimizer step of ``runs`` (every arm: the
    processed tokens of a step vary across arms and steps), on CPU and on wall
    seconds. ``token_share`` is :math:`\beta\bar t/(\alpha + \beta\bar t)` at
    the baseline's mean step :math:`\bar t`: the update-time saving a
    processed-token saving can buy, as a fraction of it, when the fixed part
    :math:`\alpha` (micro-batch launches, TRL's loss bookkeeping, the
    optimizer step) stays.

    Examples:
      >>> runs = [{"arm": "b", "processed_tokens": [100, 100], "update_cpu_seconds": [3.0, 3.0],
      ...          "update_seconds": [3.0, 3.0]},
      ...         {"arm": "o", "processed_tokens": [50, 0], "update_cpu_seconds": [2.0, 1.0],
      ...          "update_seconds": [2.0, 1.0]}]
      >>> m = update_cost_model(runs, "b")
      >>> round(m["cpu"]["fixed_seconds_per_step"], 6), round(m["cpu"]["token_share"], 6)
      (1.0, 0.666667)
    """
    tokens = np.concatenate([np.asarray(r["processed_tokens"], float) for r in runs])
    base = np.mean([np.mean(r["processed_tokens"]) for r in runs if r["arm"] == baseline])
    out = {"baseline_tokens_per_step": float(base)}
    for name, key in (("cpu", "update_cpu_seconds"), ("wall", "update_seconds")):
        y = np.concatenate([np.asarray(r[key], float) for r in runs])
        A = np.stack([np.ones_like(tokens), tokens], axis=1)
        (alpha, beta), *_ = np.linalg.lstsq(A, y, rcond=None)
        resid = y - A @ np.array([alpha, beta])
        r2 = (
            1 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())
            if y.size > 1
            else math.nan
        )
        out[name] = {
            "fixed_seconds_per_step": float(alpha),
            "seconds_per_token": float(beta),
            "r2": r2,
            "token_share": float(beta * base / (alpha + beta * base)),
        }
    return out


def summarize(results: dict) -> dict:
    """Everything the report prints, as plain data (see the module doc)."""
    cfg = results["config"]
    main = defaultdict(dict)
    for r in results["runs"]:
        if r["stage"] == "main":
            main[r["arm"]][r["seed"]] = r
    baseline = cfg["arms"][0]
    seeds = [s for s in cfg["seeds"] if s in main[baseline]]
    if not seeds:
        raise ValueError("results have no baseline run")
    rows = {}
    for arm in cfg["arms"]:
        paired = [s for s in seeds if s in main.get(arm, {})]
        if paired:
            base = [main[baseline][s] for s in paired]
            rows[arm] = _row(arm, paired, base, [main[arm][s] for s in paired])
    base = [main[baseline][s] for s in seeds]
    runs = results["runs"]
    loads = [x for r in runs for x in r["load_average"]]
    return {
        "verdict_rule": VERDICT_RULE,
        "target_rule": TARGET_RULE,
        "lr": results["lr"],
        "sweep": sweep_summary(results),
        "baseline_start": float(np.mean([r["eval_accuracy"][0] for r in base])),
        "baseline_gain": rows[baseline]["drawn"]["gain"],
        "baseline_last_window_gain": _last_window_gain(base),
        "baseline_plateaued": _last_window_gain(base) < 0.01,
        "rows": list(rows.values()),
        "update_cost_model": update_cost_model(
            [r for arm in main.values() for s, r in arm.items() if s in seeds], baseline
        ),
        "seeds": seeds,
        "seeds_planned": list(cfg["seeds"]),
        "arms_planned": list(cfg["arms"]),
        "complete": bool(results.get("complete", True)),
        "seconds": results.get("seconds"),
        "cpu_seconds": float(sum(r["cpu_seconds"] for r in runs)),
        "cpu_seconds_by_stage": {
            stage: float(sum(r["cpu_seconds"] for r in runs if r["stage"] == stage))
            for stage in ("sweep", "main")
        },
        "load_average_range": [min(loads), max(loads)] if loads else [],
        "runs": len(runs),
        "config": cfg,
        "versions": results.get("versions", {}),
    }


def _ci(c) -> str:
    return f"[{c[0]:+.1%}, {c[1]:+.1%}]"


def format_report(s: dict) -> str:
    """Markdown report of a :func:`summarize` result (verdict and target first)."""
    cfg = s["config"]
    T = cfg["prompts_per_iteration"] * cfg["rollouts_per_prompt"] // cfg["minibatch_size"]
    L = []
    if not s["complete"]:
        per = ", ".join(f"{markdown_literal(r['arm'])} {len(r['seeds'])}" for r in s["rows"])
        L += [
            f"**Partial study** (interrupted; {len(s['seeds_planned'])} seeds x "
            f"{len(s['arms_planned'])} arms planned). Seeds per arm: {per}; each comparison "
            "uses the seeds it shares with the baseline.",
            "",
        ]
    L += ["## Verdict and target", ""]
    for r in s["rows"]:
        if "verdict" in r:
            v, t = r["verdict"], r["target"]
            L.append(f"- **{markdown_literal(r['arm'])}: {v['verdict']}** — {v['reason']}.")
            L.append(
                f"  Target (update time follows processed tokens): **{'met' if t['met'] else 'not met'}** "
                f"— {t['reason']}."
            )
    L += [
        "",
        f"Verdict rule (the GRPO study's, fixed in code before the run; drawn tokens): {s['verdict_rule']}",
        "",
        f"Target rule: {s['target_rule']}.",
        "",
        "## Setup",
        "",
        f"Seeds: {len(s['seeds'])}; learning rate {s['lr']:g} chosen by the baseline-only sweep "
        + ", ".join(f"{x['lr']:g} → {100 * x['mean_accuracy']:.1f}%" for x in s["sweep"])
        + " (mean held-out accuracy over the run, "
        + f"{s['sweep'][0]['seeds'] if s['sweep'] else 0} sweep seeds).",
        f"Per run: {cfg['iterations']} generation batches of {cfg['prompts_per_iteration']} prompts x "
        f"{cfg['rollouts_per_prompt']} rollouts, {T} optimizer steps of {cfg['minibatch_size']} "
        f"rollouts each (micro-batches of {cfg['micro_batch_size']}), loss `{cfg['loss_type']}`; "
        f"Llama {cfg['num_layers']} layers x {cfg['hidden_size']} wide; warm start "
        f"{cfg['warm_start_steps']} supervised steps.",
        f"Held-out accuracy: {cfg['eval_prompts']} fixed prompts, exact (teacher-forced probability "
        f"of the one correct answer), every {cfg['eval_every']} generation batches.",
        f"Baseline accuracy {100 * s['baseline_start']:.1f}% → gain {100 * s['baseline_gain']:.1f} pp; "
        f"gain over the last 20% of the run {100 * s['baseline_last_window_gain']:+.2f} pp "
        f"({'plateaued' if s['baseline_plateaued'] else 'NOT plateaued'}: criterion < 1 pp).",
        "",
        "## To threshold (paired with the same seed's GRPOTrainer run; 50/75/90% of its gain)",
        "",
        "| arm | seeds | drawn | processed | update wall s | update CPU s | censored | plateau Δ pp | peak Δ pp |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        cells = " | ".join(f"{r[m]['saving']:+.1%} {_ci(r[m]['ci'])}" for m in MEASURES)
        pl, pk = r["plateau_vs_baseline"], r["peak_vs_baseline"]
        L.append(
            f"| {markdown_literal(r['arm'])} | {len(r['seeds'])} | {cells} | {r['processed']['censored']['other']} | "
            f"{pl['pp']:+.1f} [{pl['ci_pp'][0]:+.1f}, {pl['ci_pp'][1]:+.1f}] | "
            f"{pk['pp']:+.1f} [{pk['ci_pp'][0]:+.1f}, {pk['ci_pp'][1]:+.1f}] |"
        )
    L += [
        "",
        "Savings per threshold (50/75/90%), processed tokens and update wall seconds: "
        + "; ".join(
            f"{markdown_literal(r['arm'])} "
            + "/".join(f"{x['saving']:+.0%}" for x in r["processed"]["per_threshold"])
            + " and "
            + "/".join(f"{x['saving']:+.0%}" for x in r["update_seconds"]["per_threshold"])
            for r in s["rows"][1:]
        )
        + ".",
        "",
        "## Per generation batch (whole runs, relative to GRPOTrainer)",
        "",
        "| arm | zero-adv. | E_p*[c]/mean c | drawn | processed | update wall | update CPU | "
        "update s/it (wall, CPU) | generation+scoring s/it (wall, CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        p = r["per_iteration_vs_baseline"]
        L.append(
            f"| {markdown_literal(r['arm'])} | {r['zero_advantage_fraction']:.2f} | {r['pstar_cost_ratio']:.3f} | "
            f"{p['drawn_tokens']:.3f} | {p['processed_tokens']:.3f} | {p['update_seconds']:.3f} | "
            f"{p['update_cpu_seconds']:.3f} | {r['update_seconds_per_iteration']:.2f}, "
            f"{r['update_cpu_seconds_per_iteration']:.2f} | {r['generation_seconds_per_iteration']:.2f}, "
            f"{r['generation_cpu_seconds_per_iteration']:.2f} |"
        )
    m = s["update_cost_model"]
    L += [
        "",
        "## Where the update time goes",
        "",
        "Per optimizer step, least squares over every step of every arm: "
        + "; ".join(
            f"{what} seconds = {m[k]['fixed_seconds_per_step']:.3g} + "
            f"{m[k]['seconds_per_token']:.3g} x processed tokens (R² {m[k]['r2']:.2f})"
            for k, what in (("cpu", "CPU"), ("wall", "wall"))
        )
        + f". At GRPOTrainer's mean step ({m['baseline_tokens_per_step']:.0f} processed tokens) "
        f"the token-proportional part is {m['cpu']['token_share']:.0%} of the CPU time and "
        f"{m['wall']['token_share']:.0%} of the wall time: the largest update-time saving a "
        "processed-token saving can buy, as a fraction of it, while the fixed part stays.",
    ]
    lo, hi = s["load_average_range"] or [math.nan, math.nan]
    L += [
        "",
        "## Machine",
        "",
        f"{s['runs']} runs; wall time {s['seconds'] or 0:.0f} s; {s['cpu_seconds']:.0f} CPU-seconds "
        f"(sweep {s['cpu_seconds_by_stage']['sweep']:.0f}, arms {s['cpu_seconds_by_stage']['main']:.0f}); "
        f"1-minute load average between {lo:.1f} and {hi:.1f} at the runs' starts and ends "
        f"(the machine has {os.cpu_count()} cores). Versions: "
        + ", ".join(f"{k} {v}" for k, v in s["versions"].items() if k != "platform")
        + ".",
    ]
    return "\n".join(L)


def plot(results: dict, path: str | os.PathLike) -> None:
    """Held-out accuracy against processed tokens and against update seconds, per arm.

    Seed mean with a 95% t-interval band (normal approximation), each run's
    curve interpolated onto a common grid up to the shortest run's end;
    a third panel against drawn tokens.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = results["config"]
    main = defaultdict(list)
    for r in results["runs"]:
        if r["stage"] == "main":
            main[r["arm"]].append(run_curves(r))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    panels = (
        ("processed", "processed tokens (rows x padded width)"),
        ("update_seconds", "policy-update wall seconds"),
        ("drawn", "drawn tokens (prompt + completion)"),
    )
    for ax, (key, label) in zip(axes, panels, strict=True):
        for arm in cfg["arms"]:
            curves = main.get(arm, [])
            if not curves:
                continue
            grid = np.linspace(0, min(float(c[key][-1]) for c in curves), 60)
            acc = 100 * np.stack([np.interp(grid, c[key], c["accuracy"]) for c in curves])
            mean = acc.mean(0)
            half = (
                1.96 * acc.std(0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1 else 0 * mean
            )
            ax.plot(grid, mean, label=f"{arm} ({len(curves)} seeds)")
            ax.fill_between(grid, mean - half, mean + half, alpha=0.15)
        ax.set_xlabel(label)
        ax.set_ylabel("held-out accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[0].set_title("TRL GRPO on the walk task: seed mean ± 95% interval")
    fig.tight_layout()
    try:
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)


def write_report(results: dict, out_dir: str | os.PathLike) -> dict:
    """``trl_study.md``, ``trl_study_summary.json`` and ``trl_study.png`` into ``out_dir``.

    Returns:
      the :func:`summarize` result.
    """
    import json
    from pathlib import Path

    out = Path(out_dir)
    summary = summarize(results)
    write_text(out / "trl_study.md", "# TRL study\n\n" + format_report(summary) + "\n")
    write_text(out / "trl_study_summary.json", json.dumps(summary, indent=1, default=float))
    plot(results, out / "trl_study.png")
    return summary
