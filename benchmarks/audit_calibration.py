"""Calibrate ``costsgd audit`` against outcomes: the audit of the baseline's pools vs p*'s realised saving.

For each GRPO-study results file (one task mix each, written by
``costsgd grpo-study``), the audit prices the **baseline's ("no sampling")
pools** — what a user would audit before changing anything — and the study's
report (``costsgd.experiments.grpo.report.summarize``) gives what p* then
realised: tokens to threshold (paired over seeds, 95% interval) and drawn
tokens per iteration, both against the baseline. Writes a table (Markdown), a
JSON file and a plot to ``--out``.

The audit reads the baseline runs' per-iteration pools (``iter_advantages``
and ``iter_costs``) when the study recorded them, and runs ``costsgd.audit``
on them. Otherwise it uses the ratios the study computed per iteration with
``costsgd.audit.analyse_pool`` (:data:`PER_ITERATION`; results files before
the suite hold p*'s only), token-weighted by the pool's tokens
(``iter_all_tokens``) exactly as the audit's summary is; the table says which
source each row used.

    python benchmarks/audit_calibration.py docs/results/grpo_study.json=default \\
        --out docs/results/audit_calibration
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from costsgd.audit import Audit, Pool
from costsgd.experiments.grpo.report import summarize

#: the audit's sampler -> the study's per-iteration record of its ratio on the run's pools
#: (``costsgd.audit.analyse_pool`` per iteration, token-weighted here by ``iter_all_tokens``).
PER_ITERATION = {
    "p*": "iter_pstar_cost_ratio",
    "p*_smooth(0.01)": "iter_expected_ratio_smooth",
    "nonzero": "iter_expected_ratio_nonzero",
}
#: study method -> the audit's sampler that prices it.
PRICED = {"p*": "p*", "p*_smooth(0.01)": "p*_smooth(0.01)", "p ∝ 1[A≠0]": "nonzero"}


def audit_baseline(results: dict, seeds: list) -> dict:
    """The audit of the baseline runs' pools over ``seeds`` (one run, token-weighted)."""
    baseline = results["config"]["methods"][0]
    runs = [
        r
        for r in results["runs"]
        if r["stage"] == "main" and r["method"] == baseline and r["seed"] in seeds
    ]
    if runs and all("iter_advantages" in r and "iter_costs" in r for r in runs):
        run = Audit()
        for r in runs:
            for t, (A, c) in enumerate(zip(r["iter_advantages"], r["iter_costs"], strict=True)):
                if not len(c):
                    continue
                c = np.asarray(c, dtype=np.float64)
                run.add(Pool(t, np.asarray(A, dtype=np.float64), np.zeros_like(c), c))
        s = run.result()["summary"]
        return {
            "source": "pools (iter_advantages, iter_costs)",
            "expected_saving": s["expected_saving"],
            "zero_advantage_fraction": s["zero_advantage_fraction"],
            "Sp_over_Su_median": s["regime"]["Sp_over_Su_median"],
        }
    tokens = np.concatenate([r["iter_all_tokens"] for r in runs]).astype(float)
    saving = {}
    for sampler, key in PER_ITERATION.items():
        if all(key in r for r in runs):
            ratio = np.concatenate([r[key] for r in runs])
            saving[sampler] = float(1 - ratio @ tokens / tokens.sum())
    zero = np.concatenate([r["iter_zero_adv_frac"] for r in runs])
    return {
        "source": "the study's per-iteration audit ratios × iter_all_tokens",
        "expected_saving": saving,
        "zero_advantage_fraction": float(zero.mean()),
        "Sp_over_Su_median": None,
    }


def calibrate(path: str, label: str) -> dict:
    """One mix: the audit's expectation and each priced method's realised saving."""
    results = json.loads(Path(path).read_text())
    summary = summarize(results)
    rows = {r["method"]: r for r in summary["rows"]}
    expected = audit_baseline(results, summary["seeds"])
    methods = {}
    for method, sampler in PRICED.items():
        if method not in rows or sampler not in expected["expected_saving"]:
            continue
        r = rows[method]
        methods[method] = {
            "expected_saving": expected["expected_saving"][sampler],
            "tokens_to_threshold_saving": r["drawn"]["saving"],
            "tokens_to_threshold_ci": list(r["drawn"]["ci"]),
            "drawn_per_iteration_saving": 1 - r["drawn_per_iteration_vs_baseline"],
            "own_pools_expected_saving": 1 - r["pstar_cost_ratio"] if method == "p*" else None,
            "plateau_vs_baseline_pp": r["plateau_vs_baseline"]["pp"],
        }
    return {
        "mix": label,
        "results": path,
        "task": results["config"].get("task"),
        "setting": results["config"].get("setting"),
        "seeds": summary["seeds"],
        "audit": expected,
        "methods": methods,
    }


def rule(mixes: list[dict]) -> str:
    """The rule a user can apply, read off the p* rows (every mix listed, ranges said plainly)."""
    rows = [(m["mix"], m["methods"]["p*"]) for m in mixes if "p*" in m["methods"]]
    if not rows:
        return "no mix has a p* run: no rule"
    each = "; ".join(
        f"{name}: expected {r['expected_saving']:+.0%} → {r['tokens_to_threshold_saving']:+.0%} "
        f"[{r['tokens_to_threshold_ci'][0]:+.0%}, {r['tokens_to_threshold_ci'][1]:+.0%}] to "
        f"threshold, {r['drawn_per_iteration_saving']:+.0%} drawn per iteration"
        for name, r in rows
    )
    gap = max(abs(r["drawn_per_iteration_saving"] - r["expected_saving"]) for _, r in rows)
    same = sum(
        np.sign(r["tokens_to_threshold_saving"]) == np.sign(r["expected_saving"]) for _, r in rows
    )
    big = [r for _, r in rows if abs(r["expected_saving"]) >= 0.05]
    scale = [r["tokens_to_threshold_saving"] / r["expected_saving"] for r in big]
    text = (
        f"p* over {len(rows)} mix(es), the audit of the baseline's pools against what p* "
        f"realised — {each}. Per iteration the realised saving was within "
        f"{gap * 100:.1f} percentage points of the expected one on every mix; to threshold it "
        f"had the expected sign on {same} of {len(rows)} mix(es)"
    )
    if scale:
        text += (
            f" and was {min(scale):.1f}–{max(scale):.1f}× the expected saving (mixes with an "
            "expected saving of at least 5% in size)"
        )
    return text + "."


def table(mixes: list[dict]) -> str:
    head = (
        "| mix | zero-adv. fraction (baseline pools) | method | expected saving (audit) | "
        "realised: tokens to threshold [95% CI] | realised: drawn tokens / iteration | "
        "expected on its own pools | plateau vs baseline | audit source |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for m in mixes:
        for method, r in m["methods"].items():
            own = r["own_pools_expected_saving"]
            lines.append(
                f"| {m['mix']} | {m['audit']['zero_advantage_fraction']:.0%} | {method} | "
                f"{r['expected_saving']:.1%} | {r['tokens_to_threshold_saving']:.1%} "
                f"[{r['tokens_to_threshold_ci'][0]:.1%}, {r['tokens_to_threshold_ci'][1]:.1%}] | "
                f"{r['drawn_per_iteration_saving']:.1%} | "
                + ("—" if own is None else f"{own:.1%}")
                + f" | {r['plateau_vs_baseline_pp']:+.1f} pp | {m['audit']['source']} |"
            )
    return "\n".join(lines)


def plot(mixes: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4.4))
    values = [0.0, 1.0]
    for k, method in enumerate(PRICED):
        pts = [(m["mix"], m["methods"][method]) for m in mixes if method in m["methods"]]
        if not pts:
            continue
        x = np.array([r["expected_saving"] for _, r in pts])
        y = np.array([r["tokens_to_threshold_saving"] for _, r in pts])
        per = np.array([r["drawn_per_iteration_saving"] for _, r in pts])
        ci = np.array([r["tokens_to_threshold_ci"] for _, r in pts]).T
        values += [*x, *ci.ravel(), *per]
        ax[0].errorbar(x, y, yerr=[y - ci[0], ci[1] - y], fmt="o", color=f"C{k}", label=method)
        ax[1].plot(x, per, "o", color=f"C{k}")
        for (name, _), xi, yi, pi in zip(pts, x, y, per, strict=True):
            for a, v in ((ax[0], yi), (ax[1], pi)):
                a.annotate(name, (xi, v), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lim = (min(values) - 0.1, max(values) + 0.05)
    for a, what in zip(ax, ("tokens to threshold", "drawn tokens per iteration"), strict=True):
        a.plot(lim, lim, "k:", lw=1, label="realised = expected")
        a.axhline(0, color="0.8", lw=0.8)
        a.axvline(0, color="0.8", lw=0.8)
        a.set(
            xlabel="expected saving: audit of the baseline's pools",
            ylabel=f"realised saving: {what}",
            xlim=lim,
            ylim=lim,
        )
    ax[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("studies", nargs="+", metavar="RESULTS.json[=LABEL]")
    ap.add_argument("--out", default="results/audit_calibration", help="output prefix")
    ap.add_argument("--label", default="", help="a line printed above the table (e.g. 'reduced')")
    args = ap.parse_args(argv)
    mixes = []
    for spec in args.studies:
        path, _, label = spec.partition("=")
        mixes.append(calibrate(path, label or Path(path).stem))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join(
        x
        for x in (
            "# Calibration of `costsgd audit` against the GRPO study",
            args.label,
            table(mixes),
            rule(mixes),
            f"Command: `python benchmarks/audit_calibration.py {' '.join(args.studies)}` "
            f"at commit {commit}.",
        )
        if x
    )
    out.with_suffix(".md").write_text(text + "\n")
    out.with_suffix(".json").write_text(
        json.dumps({"mixes": mixes, "rule": rule(mixes), "commit": commit}, indent=1)
    )
    plot(mixes, out.with_suffix(".png"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
