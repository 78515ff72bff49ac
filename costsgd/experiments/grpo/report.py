r"""Tables, token savings and figures from a grpo-study results file.

The paper's two savings measures (§5.4), computed per seed against the same
seed's "no sampling" run of the same setting, then summarised over seeds:

* ``to_baseline_peak``: :math:`1 - T_m(a^{base}_{peak}) / T_{base}(a^{base}_{peak})`,
  the fraction of tokens saved in reaching the baseline's peak accuracy
  ("p* matches the baseline's peak accuracy using 28% fewer tokens");
* ``to_own_peak``: :math:`1 - T_m(a^{m}_{peak}) / T_{base}(0.98\,a^{m}_{peak})`,
  the method's tokens to its own peak against the baseline's tokens to come
  within 2% (relative) of it (the paper's asymmetric comparison for 4B/8B).

:math:`T_x(a)` is the cumulative policy-optimization tokens at the first
evaluation where run :math:`x` reaches accuracy :math:`a`; a saving is NaN
(reported as "not reached") when the method never gets there. The same
measures are also computed on seed-averaged curves (:func:`mean_curve`),
which are less noisy than one seed's.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict

import numpy as np

from costsgd.experiments.results import write_atomic

__all__ = [
    "curves",
    "format_report",
    "mean_curve",
    "plot",
    "savings",
    "summarize",
    "tokens_to_reach",
]

WITHIN = 0.98


def tokens_to_reach(tokens, accuracy, target: float) -> float:
    """Tokens at the first evaluation with ``accuracy >= target`` (NaN if never).

    Examples:
      >>> tokens_to_reach([0, 10, 20], [0.1, 0.5, 0.4], 0.45)
      10.0
      >>> tokens_to_reach([0, 10], [0.1, 0.2], 0.5)
      nan
    """
    acc = np.asarray(accuracy, dtype=float)
    hit = np.flatnonzero(acc >= target - 1e-12)
    return float(np.asarray(tokens, dtype=float)[hit[0]]) if hit.size else float("nan")


def savings(base_tokens, base_acc, tokens, acc) -> dict[str, float]:
    """Both savings measures of one method run against its baseline run (see module doc).

    Examples:
      >>> s = savings([0, 10, 20, 30], [0.2, 0.3, 0.4, 0.5], [0, 5, 10, 15], [0.2, 0.3, 0.4, 0.5])
      >>> s["to_baseline_peak"], s["to_own_peak"]
      (0.5, 0.5)
    """
    base_peak = float(np.max(base_acc))
    own_peak = float(np.max(acc))
    t_base = tokens_to_reach(base_tokens, base_acc, base_peak)
    t_m = tokens_to_reach(tokens, acc, base_peak)
    t_own = tokens_to_reach(tokens, acc, own_peak)
    t_base_own = tokens_to_reach(base_tokens, base_acc, WITHIN * own_peak)

    def ratio(a: float, b: float) -> float:
        return 1.0 - a / b if (math.isfinite(a) and math.isfinite(b) and b > 0) else float("nan")

    return {"to_baseline_peak": ratio(t_m, t_base), "to_own_peak": ratio(t_own, t_base_own)}


def curves(results: dict) -> dict[tuple[str, str], list[dict[str, np.ndarray]]]:
    """Per (setting, method), one dict per seed: ``tokens``, ``accuracy`` (per evaluation), ``iter_tokens``.

    Runs stopped by a token budget may have different numbers of evaluations.
    """
    out: dict[tuple[str, str], list[dict[str, np.ndarray]]] = defaultdict(list)
    for run in sorted(results["runs"], key=lambda r: r["seed"]):
        out[(run["setting"], run["method"])].append(
            {
                "seed": run["seed"],
                "tokens": np.asarray(run["eval_tokens"], dtype=float),
                "accuracy": np.asarray(run["eval_accuracy"], dtype=float),
                "iter_tokens": np.asarray(run["iter_tokens"], dtype=float),
            }
        )
    return dict(out)


def mean_curve(runs: list[dict[str, np.ndarray]], points: int = 41) -> dict[str, np.ndarray]:
    """Seed-mean accuracy on a common tokens grid (linear interpolation between evaluations).

    The grid runs from 0 to the smallest final token count over the seeds.
    Returns ``tokens``, ``mean``, ``min`` and ``max`` arrays of length ``points``.

    Examples:
      >>> runs = [{"tokens": np.array([0.0, 10.0]), "accuracy": np.array([0.0, 1.0])},
      ...         {"tokens": np.array([0.0, 20.0]), "accuracy": np.array([0.0, 1.0])}]
      >>> c = mean_curve(runs, points=3)
      >>> c["tokens"].tolist(), c["mean"].tolist()
      ([0.0, 5.0, 10.0], [0.0, 0.375, 0.75])
    """
    grid = np.linspace(0.0, min(float(r["tokens"][-1]) for r in runs), points)
    acc = np.stack([np.interp(grid, r["tokens"], r["accuracy"]) for r in runs])
    return {"tokens": grid, "mean": acc.mean(0), "min": acc.min(0), "max": acc.max(0)}


def _mean_sd(x) -> dict[str, float]:
    x = np.asarray(x, dtype=float)
    ok = x[np.isfinite(x)]
    return {
        "mean": float(ok.mean()) if ok.size else float("nan"),
        "sd": float(ok.std(ddof=1)) if ok.size > 1 else float("nan"),
        "reached": int(ok.size),
        "of": int(x.size),
    }


def summarize(results: dict) -> dict:
    """Table 1 and the token savings, per setting and method, with spread over seeds.

    Returns:
      ``{"table": [...], "warm_start_accuracy": ..., "diagnostics": ...}``; each
      table row has the peak/final accuracy, tokens per iteration relative to
      the baseline, and both savings measures per seed (mean, sd, seeds
      reaching) and on the seed-averaged curve.
    """
    cv = curves(results)
    rows = []
    for setting, methods in results["config"]["runs"]:
        base = cv[(setting, methods[0])]
        base_mean = mean_curve(base)
        for method in methods:
            runs = cv[(setting, method)]
            per_seed = [
                savings(b["tokens"], b["accuracy"], m["tokens"], m["accuracy"])
                for b, m in zip(base, runs, strict=True)
            ]
            mc = mean_curve(runs)
            avg = savings(base_mean["tokens"], base_mean["mean"], mc["tokens"], mc["mean"])
            rows.append(
                {
                    "setting": setting,
                    "method": method,
                    "peak_accuracy": _mean_sd([m["accuracy"].max() for m in runs]),
                    "final_accuracy": _mean_sd([m["accuracy"][-1] for m in runs]),
                    "peak_of_mean_curve": float(mc["mean"].max()),
                    "iterations": _mean_sd([len(m["iter_tokens"]) for m in runs]),
                    "tokens_total": _mean_sd([m["tokens"][-1] for m in runs]),
                    "tokens_per_iteration_vs_baseline": _mean_sd(
                        [
                            m["iter_tokens"].mean() / b["iter_tokens"].mean()
                            for b, m in zip(base, runs, strict=True)
                        ]
                    ),
                    "saving_to_baseline_peak": _mean_sd([s["to_baseline_peak"] for s in per_seed]),
                    "saving_to_own_peak": _mean_sd([s["to_own_peak"] for s in per_seed]),
                    "mean_curve_saving_to_baseline_peak": avg["to_baseline_peak"],
                    "mean_curve_saving_to_own_peak": avg["to_own_peak"],
                }
            )
    diag = defaultdict(list)
    for run in results["runs"]:
        for d in run.get("diagnostics", []):
            diag[(run["setting"], run["method"])].append(d)
    diagnostics = []
    for (setting, method), ds in diag.items():
        keys = [k for k in ds[0] if k != "iteration"]
        diagnostics.append(
            {
                "setting": setting,
                "method": method,
                "evaluations": len(ds),
                **{k: _mean_sd([d[k] for d in ds]) for k in keys},
            }
        )
    return {
        "table": rows,
        "warm_start_accuracy": _mean_sd([w["accuracy"] for w in results["warm_start"].values()]),
        "diagnostics": diagnostics,
        "seconds": results.get("seconds"),
    }


def _pct(s: dict) -> str:
    if s["reached"] == 0:
        return "not reached"
    sd = "" if not math.isfinite(s["sd"]) else f" ± {100 * s['sd']:.0f}"
    miss = "" if s["reached"] == s["of"] else f" ({s['reached']}/{s['of']} seeds)"
    return f"{100 * s['mean']:+.0f}%{sd}{miss}"


def _acc(s: dict) -> str:
    sd = "" if not math.isfinite(s["sd"]) else f" ± {100 * s['sd']:.1f}"
    return f"{100 * s['mean']:.1f}{sd}"


def _num(s: dict) -> str:
    return f"{s['mean']:.3f} ± {s['sd']:.3f}" if math.isfinite(s["sd"]) else f"{s['mean']:.3f}"


def format_report(summary: dict) -> str:
    """Plain-text (Markdown) tables of a :func:`summarize` result."""
    ws = summary["warm_start_accuracy"]
    lines = [
        f"Warm-start accuracy: {_acc(ws)} % (mean ± sd over {ws['of']} seeds)",
        "",
        "| setting | method | peak acc. % | final acc. % | iterations | tokens/iteration vs baseline | "
        "saving to baseline peak | saving to own peak (baseline within 2%) | same, seed-mean curves |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["table"]:
        if r["method"] == "no sampling":  # the baseline (StudyConfig.validate puts it first)
            lines.append(
                f"| {r['setting']} | {r['method']} (baseline) | {_acc(r['peak_accuracy'])} | "
                f"{_acc(r['final_accuracy'])} | {r['iterations']['mean']:.0f} | 1.00 | — | — | — |"
            )
            continue
        mc = [r["mean_curve_saving_to_baseline_peak"], r["mean_curve_saving_to_own_peak"]]
        mc_s = " / ".join("n.r." if not math.isfinite(v) else f"{100 * v:+.0f}%" for v in mc)
        lines.append(
            f"| {r['setting']} | {r['method']} | {_acc(r['peak_accuracy'])} | {_acc(r['final_accuracy'])} | "
            f"{r['iterations']['mean']:.0f} | {r['tokens_per_iteration_vs_baseline']['mean']:.2f} | "
            f"{_pct(r['saving_to_baseline_peak'])} | "
            f"{_pct(r['saving_to_own_peak'])} | {mc_s} |"
        )
    if summary["diagnostics"]:
        lines += [
            "",
            "Figure 3 diagnostics (mean ± sd over evaluations and seeds):",
            "",
            "| setting | method | Pearson(|A|, G) | same, A≠0 only | χ² gap p* proxy | χ² gap p_LEN | χ² gap uniform |",
            "|---|---|---|---|---|---|---|",
        ]
        for d in summary["diagnostics"]:
            lines.append(
                f"| {d['setting']} | {d['method']} | {_num(d['pearson'])} | {_num(d['pearson_nonzero'])} | "
                f"{_num(d['chi2_gap'])} | {_num(d['chi2_gap_length'])} | {_num(d['chi2_gap_uniform'])} |"
            )
    return "\n".join(lines)


def plot(results: dict, path: str | os.PathLike) -> None:
    """Accuracy vs cumulative policy-optimization tokens per method (like Figure 4), plus Figure 3.

    One panel per setting: the seed-mean curve of every method
    (:func:`mean_curve`), with a band from the seeds' min to max accuracy. A last panel shows the diagnostics over training.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cv = curves(results)
    settings = results["config"]["runs"]
    has_diag = any(run.get("diagnostics") for run in results["runs"])
    ncols = len(settings) + int(has_diag)
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 4), squeeze=False)
    for ax, (setting, methods) in zip(axes[0][: len(settings)], settings, strict=True):
        for method in methods:
            mc = mean_curve(cv[(setting, method)])
            lw = 2 if method in ("no sampling", "p*") else 1
            ax.plot(mc["tokens"], 100 * mc["mean"], label=method, lw=lw)
            ax.fill_between(mc["tokens"], 100 * mc["min"], 100 * mc["max"], alpha=0.1)
        ax.set_title(f"{setting} ({len(cv[(setting, methods[0])])} seeds)")
        ax.set_xlabel("cumulative policy-optimization tokens")
        ax.set_ylabel("held-out accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if has_diag:
        ax = axes[0][-1]
        by_pair = defaultdict(list)
        for run in results["runs"]:
            if run.get("diagnostics"):
                by_pair[(run["setting"], run["method"])].append(run["diagnostics"])
        styles = {
            "pearson_nonzero": ("o-", "Pearson(|A|, G), A≠0"),
            "chi2_gap": ("s--", "χ² gap, p* proxy"),
            "chi2_gap_uniform": ("^:", "χ² gap, uniform"),
        }
        for (setting, method), seeds in by_pair.items():
            k = min(len(ds) for ds in seeds)
            it = [d["iteration"] for d in seeds[0][:k]]
            for key, (style, name) in styles.items():
                v = np.asarray([[d[key] for d in ds[:k]] for ds in seeds], dtype=float)
                ok = np.isfinite(v)
                y = np.where(ok, v, 0.0).sum(0) / np.where(ok.any(0), ok.sum(0), np.nan)
                ax.plot(it, y, style, ms=3, label=f"{name} ({setting}, {method})")
        ax.set_title(f"Figure 3: |A| as a proxy for G (mean of {len(seeds)} seeds)")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    try:
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))
    finally:
        plt.close(fig)
