r"""The measurement, regime diagnostic and verdict of a grpo-study results file.

Measurement (per method, paired with the same seed's "no sampling" run):

* *Thresholds.* For seed :math:`s`, the baseline starts at :math:`a_{0,s}`
  (every method of a seed shares it) and reaches a plateau accuracy
  :math:`\bar a_s` (its mean held-out accuracy over the last 20% of the token
  budget). With :math:`\Delta` the seed-mean gain :math:`\overline{\bar a_s - a_{0,s}}`,
  the thresholds are :math:`a_{0,s} + f\Delta` for :math:`f \in \{0.5, 0.75, 0.9\}`.
* *Tokens to threshold* :math:`T` (:func:`tokens_to_threshold`): the first
  crossing, interpolated linearly between evaluations; a run that never
  crosses is censored at its final token count (counted and reported, never
  dropped).
* *Saving*: :math:`1 - \sum T_{m} / \sum T_{base}` over seeds (per threshold)
  and over seeds and thresholds (the primary number), on drawn tokens (§5.4's
  count) and on processed tokens (length-grouped micro-batches with padding).
  95% intervals: paired bootstrap over seeds (:func:`paired_bootstrap`).
* *Plateau accuracy* difference to the baseline in percentage points (peak
  accuracy is reported too, as a secondary number).

Mechanism: the expected per-iteration saving :math:`1 - \mathbb E_{p^*}[c]/\bar c`,
averaged over the p* runs' iterations, and the zero-advantage fraction.

Regime: the median gradient-noise scale :math:`B_{noise}` over the diagnosed
points against the mini-batch size ``B``: above it the run is
variance-limited and the predicted token ratio is :math:`(1+S_p/S_u)\,C_p/C_u`,
below it step-limited and the prediction is :math:`C_p/C_u`. The baseline at 2x
learning rate and with a 2x pool corroborate it (a step-limited run gains
from 2x lr; a variance-limited one does not, and its 2x pool costs no extra
tokens).

Verdict (:func:`verdict`), fixed before any run, exactly as issue 12 states it.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict

import numpy as np

from costsgd.experiments.results import write_atomic

__all__ = [
    "FRACTIONS",
    "NO_GAIN",
    "VERDICT_RULE",
    "choose_lr",
    "compare",
    "format_report",
    "markdown_literal",
    "paired_bootstrap",
    "plot",
    "saving_text",
    "summarize",
    "sweep_summary",
    "tokens_to_threshold",
    "verdict",
]

#: Thresholds as fractions of the baseline's seed-mean gain.
FRACTIONS = (0.5, 0.75, 0.9)
#: The plateau window: the last 20% of the token budget.
PLATEAU_WINDOW = 0.2
_BOOT = 4000

VERDICT_RULE = (
    "reproduced: expected per-iteration saving >= 25%, paired tokens-to-threshold saving >= 20% "
    "with its 95% interval excluding 0, and plateau accuracy no more than 1.5 pp below the "
    "baseline; not reproduced: the mechanism is present (expected saving >= 15%) but the interval "
    "includes 0 or the saving is under half the expected one; inconclusive: expected saving "
    "under 15% (or a case the rule does not cover, said so)."
)


def markdown_literal(text: str) -> str:
    """``text`` for a markdown report, read literally: ``*`` (as in p*) and ``|`` (as in |A|)
    escaped, so a method's name starts no emphasis and a statement splits no table cell."""
    return str(text).replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|")


def tokens_to_threshold(tokens, accuracy, threshold: float) -> float:
    """Tokens at the first crossing of ``threshold``, interpolated linearly (inf if never).

    Examples:
      >>> tokens_to_threshold([0, 10, 20], [0.1, 0.3, 0.5], 0.4)
      15.0
      >>> tokens_to_threshold([0, 10], [0.5, 0.6], 0.2)
      0.0
      >>> tokens_to_threshold([0, 10], [0.1, 0.2], 0.5)
      inf
    """
    t = np.asarray(tokens, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    hit = np.flatnonzero(a >= threshold)
    if not hit.size:
        return math.inf
    i = int(hit[0])
    if i == 0:
        return float(t[0])
    frac = (threshold - a[i - 1]) / (a[i] - a[i - 1])
    return float(t[i - 1] + frac * (t[i] - t[i - 1]))


def paired_bootstrap(
    stat, n: int, *, resamples: int = _BOOT, seed: int = 0, vectorized: bool = False
) -> tuple[float, float]:
    """95% percentile interval of ``stat(idx)`` over seeds resampled with replacement.

    ``stat`` takes an index array into the ``n`` seeds (the same indices for
    the method and its baseline: a paired bootstrap); with ``vectorized`` it
    takes all resamples at once, an array ``(resamples, n)``, and returns one
    value per row (the same draws, so the same interval).

    Examples:
      >>> lo, hi = paired_bootstrap(lambda i: float(np.mean(np.array([1.0, 2.0, 3.0])[i])), 3)
      >>> 1.0 <= lo <= 2.0 <= hi <= 3.0
      True
    """
    rng = np.random.default_rng(seed)
    if vectorized:
        vals = np.asarray(stat(rng.integers(0, n, (resamples, n))), dtype=float)
    else:
        vals = np.array([stat(rng.integers(0, n, n)) for _ in range(resamples)], dtype=float)
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return (math.nan, math.nan)
    return (float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975)))


def choose_lr(runs: list[dict]) -> float:
    """The sweep's learning rate: highest mean held-out accuracy over evaluations, mean over seeds.

    Ties go to the smaller rate.

    Examples:
      >>> runs = [{"stage": "sweep", "lr": 1e-3, "eval_accuracy": [0.1, 0.3]},
      ...         {"stage": "sweep", "lr": 2e-3, "eval_accuracy": [0.1, 0.2]}]
      >>> choose_lr(runs)
      0.001
    """
    by_lr = defaultdict(list)
    for r in runs:
        if r["stage"] == "sweep":
            by_lr[r["lr"]].append(float(np.mean(r["eval_accuracy"])))
    if not by_lr:
        raise ValueError("runs has no sweep run")
    return max(sorted(by_lr), key=lambda lr: (np.mean(by_lr[lr]), -lr))


def _plateau(run: dict, budget: float) -> float:
    t = np.asarray(run["eval_tokens"], dtype=float)
    a = np.asarray(run["eval_accuracy"], dtype=float)
    window = t >= (1 - PLATEAU_WINDOW) * budget
    return float(a[window].mean() if window.any() else a[-1])


def _mean_curve(runs: list[dict], key: str, grid: np.ndarray) -> np.ndarray:
    return np.stack(
        [np.interp(grid, np.asarray(r[key], float), np.asarray(r["eval_accuracy"])) for r in runs]
    )


def _last_window_gain(runs: list[dict], budget: float) -> float:
    """Gain of the baseline's seed-mean curve over the last 20% of the budget (least-squares line)."""
    grid = np.linspace((1 - PLATEAU_WINDOW) * budget, budget, 21)
    mean = _mean_curve(runs, "eval_tokens", grid).mean(0)
    slope = np.polyfit(grid, mean, 1)[0]
    return float(slope * PLATEAU_WINDOW * budget)


#: What a comparison holds when the baseline gained nothing (no threshold above its start).
NO_GAIN = "the baseline did not rise above its start (gain <= 0): no threshold to reach"


def _comparison(
    base: list[dict], other: list[dict], budget: float, key: str, against: list[dict] | None = None
) -> dict:
    """Tokens-to-threshold savings of ``other`` vs ``against`` (default ``base``) on ``key``.

    The lists are paired by seed; the thresholds are always the baseline's
    (``base``). When the baseline gained nothing, ``saving`` and ``ci`` are
    ``None`` and ``gap`` says why (never NaN).
    """
    ref = base if against is None else against
    a0 = np.array([r["eval_accuracy"][0] for r in base])
    gain = float(np.mean([_plateau(r, budget) for r in base] - a0))
    if not gain > 0:
        return {
            "gain": gain,
            "saving": None,
            "ci": None,
            "gap": NO_GAIN,
            "per_threshold": [],
            "censored": {"base": 0, "other": 0},
        }
    T = {}
    for name, runs in (("base", ref), ("other", other)):
        T[name] = np.array(
            [
                [
                    tokens_to_threshold(r[key], r["eval_accuracy"], a0[s] + f * gain)
                    for f in FRACTIONS
                ]
                for s, r in enumerate(runs)
            ]
        )
    final = {
        name: np.array([float(r[key][-1]) for r in runs])[:, None]
        for name, runs in (("base", ref), ("other", other))
    }
    censored = {k: int(np.isinf(T[k]).sum()) for k in T}
    Tc = {k: np.where(np.isinf(T[k]), final[k], T[k]) for k in T}

    def saving(idx, cols=slice(None)):
        # idx: (n,) or (resamples, n) seed indices; sums over the resampled seeds' thresholds
        b = Tc["base"][:, cols].sum(1)[idx].sum(-1)
        o = Tc["other"][:, cols].sum(1)[idx].sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, 1.0 - o / np.where(b > 0, b, 1.0), math.nan)

    n = len(base)
    allidx = np.arange(n)
    per = []
    for j, f in enumerate(FRACTIONS):
        per.append(
            {
                "fraction": f,
                "saving": float(saving(allidx, [j])),
                "ci": paired_bootstrap(lambda i, j=j: saving(i, [j]), n, vectorized=True),
            }
        )
    return {
        "gain": gain,
        "saving": float(saving(allidx)),
        "ci": paired_bootstrap(saving, n, vectorized=True),
        "per_threshold": per,
        "censored": censored,
        "tokens_to_threshold": {k: Tc[k].tolist() for k in Tc},
    }


def compare(results: dict, method: str, against: str, key: str = "eval_tokens") -> dict:
    r"""``method`` against ``against`` (both of one results file), paired by seed.

    Tokens to the baseline's thresholds (module doc) of ``method`` relative to
    those of ``against``: ``saving`` = :math:`1 - \sum T_{method}/\sum T_{against}`
    with its paired 95% interval, and the plateau-accuracy difference in pp;
    on the seeds where the baseline and both methods finished.

    Raises:
      ValueError: when the file has no seed with all three runs.
    """
    main = _main_runs(results)
    baseline = results["config"]["methods"][0]
    seeds = [
        s
        for s in results["config"]["seeds"]
        if all(s in main[m] for m in {baseline, method, against})
    ]
    if not seeds:
        names = " and ".join(map(repr, dict.fromkeys((baseline, method, against))))
        raise ValueError(f"no seed has finished runs of {names}")
    budget = _budget(results["config"], main[baseline], seeds)
    base = [main[baseline][s] for s in seeds]
    ref = [main[against][s] for s in seeds]
    other = [main[method][s] for s in seeds]
    return {
        "method": method,
        "against": against,
        "seeds": seeds,
        "drawn": _comparison(base, other, budget, key, against=ref),
        "plateau_vs_against": _accuracy_diff(ref, other, budget, _plateau),
    }


def _main_runs(results: dict) -> dict[str, dict[int, dict]]:
    main: dict[str, dict[int, dict]] = defaultdict(dict)
    for r in results["runs"]:
        if r["stage"] == "main":
            main[r["method"]][r["seed"]] = r
    return main


def _budget(cfg: dict, baseline_runs: dict, seeds: list) -> float:
    return cfg["grpo"]["token_budget"] or min(
        float(baseline_runs[s]["eval_tokens"][-1]) for s in seeds
    )


def _accuracy_diff(base, other, budget, fn) -> dict:
    d = np.array([fn(o, budget) - fn(b, budget) for b, o in zip(base, other, strict=True)])
    lo, hi = paired_bootstrap(lambda i: d[i].mean(-1), len(d), vectorized=True)
    return {"pp": 100 * float(d.mean()), "ci_pp": (100 * lo, 100 * hi)}


def _peak(run, budget):
    return float(np.max(run["eval_accuracy"]))


def _mean_iter(runs, key) -> float:
    return float(np.mean([np.mean(r[key]) for r in runs]))


def verdict(
    expected: float, saving: float | None, ci: tuple[float, float] | None, plateau_pp: float
) -> dict:
    """Issue 12's verdict rule (:data:`VERDICT_RULE`), applied to one method.

    Args:
      expected: expected per-iteration saving :math:`1 - \\mathbb E_{p}[c]/\\bar c`.
      saving, ci: paired tokens-to-threshold saving and its 95% interval
        (``None`` when the baseline gained nothing: inconclusive).
      plateau_pp: plateau accuracy minus the baseline's, percentage points.

    Returns:
      ``{"verdict": "reproduced" | "not reproduced" | "inconclusive", "reason": str}``.

    Examples:
      >>> verdict(0.35, 0.3, (0.1, 0.45), -0.5)["verdict"]
      'reproduced'
      >>> verdict(0.35, 0.05, (-0.1, 0.2), 0.0)["verdict"]
      'not reproduced'
      >>> verdict(0.10, 0.3, (0.1, 0.45), 0.0)["verdict"]
      'inconclusive'
    """
    if saving is None or ci is None:
        return {"verdict": "inconclusive", "reason": NO_GAIN}
    if not expected >= 0.15:
        return {"verdict": "inconclusive", "reason": f"expected saving {expected:.1%} < 15%"}
    if expected >= 0.25 and saving >= 0.20 and ci[0] > 0 and plateau_pp >= -1.5:
        return {
            "verdict": "reproduced",
            "reason": f"expected {expected:.1%} >= 25%, saving {saving:.1%} >= 20% with "
            f"interval [{ci[0]:.1%}, {ci[1]:.1%}] excluding 0, plateau {plateau_pp:+.1f} pp",
        }
    if ci[0] <= 0 <= ci[1] or saving < expected / 2:
        why = (
            f"interval [{ci[0]:.1%}, {ci[1]:.1%}] includes 0"
            if ci[0] <= 0 <= ci[1]
            else f"saving {saving:.1%} < half the expected {expected:.1%}"
        )
        return {"verdict": "not reproduced", "reason": f"mechanism present; {why}"}
    reasons = []
    if expected < 0.25:
        reasons.append(f"expected saving {expected:.1%} between 15% and 25%")
    if saving < 0.20:
        reasons.append(f"saving {saving:.1%} under 20% but at least half the expected")
    if plateau_pp < -1.5:
        reasons.append(f"plateau accuracy {plateau_pp:+.1f} pp below the baseline")
    return {"verdict": "inconclusive", "reason": "not covered by the rule: " + "; ".join(reasons)}


def _controls_text(rows: dict) -> str:
    parts = []
    for name, what in (
        ("uniform draws", "resampling noise alone"),
        ("p ∝ 1[A≠0]", "zero-advantage removal alone"),
        ("p_LEN", "length weighting alone"),
    ):
        if name in rows:
            parts.append(f"{name} ({what}): {saving_text(rows[name]['drawn'])}")
    return "; ".join(parts)


def saving_text(d: dict) -> str:
    """``+12.3% [+4.5%, +20.1%]``, or why there is no number (a comparison's ``gap``)."""
    if d["saving"] is None:
        return f"n/a ({d['gap']})"
    return f"{d['saving']:+.1%} {_ci(d['ci'])}"


def _explain(rows: dict, target: str) -> str:
    """Which control explains a failure of ``target`` (the controls' savings, read plainly)."""
    u = rows.get("uniform draws", {}).get("drawn", {})
    if u.get("ci") is not None and u["ci"][1] < 0:
        u = rows["uniform draws"]["drawn"]["saving"]
        return (
            f"resampling noise: uniform draws with replacement alone cost {-u:.1%} more tokens "
            f"than no sampling, which offsets {target}'s cheaper iterations"
        )
    if "p ∝ 1[A≠0]" in rows:
        z = rows["p ∝ 1[A≠0]"]["drawn"]
        return (
            f"the cheaper iterations do not turn into fewer tokens to threshold: zero-advantage "
            f"removal alone saves {saving_text(z)}"
        )
    return "no control run to separate the effects"


def _per_iteration_ratio(base: list, runs: list, key: str) -> float:
    """Mean over seeds of a method's mean per-iteration ``key`` over the baseline's."""
    return float(
        np.mean([np.mean(r[key]) / np.mean(b[key]) for b, r in zip(base, runs, strict=True)])
    )


def _method_row(method: str, paired: list, base: list, runs: list, budget: float) -> dict:
    """One method against the baseline on the seeds both ran (paired)."""
    return {
        "method": method,
        "seeds": paired,
        "drawn": _comparison(base, runs, budget, "eval_tokens"),
        "processed": _comparison(base, runs, budget, "eval_processed_tokens"),
        "plateau_accuracy": float(np.mean([_plateau(r, budget) for r in runs])),
        "plateau_vs_baseline": _accuracy_diff(base, runs, budget, _plateau),
        "peak_accuracy": float(np.mean([_peak(r, budget) for r in runs])),
        "peak_vs_baseline": _accuracy_diff(base, runs, budget, _peak),
        "pstar_cost_ratio": _mean_iter(runs, "iter_pstar_cost_ratio"),
        "zero_adv_fraction": _mean_iter(runs, "iter_zero_adv_frac"),
        "drawn_per_iteration_vs_baseline": _per_iteration_ratio(base, runs, "iter_tokens"),
        "processed_per_iteration_vs_baseline": _per_iteration_ratio(
            base, runs, "iter_processed_tokens"
        ),
        "iterations": float(np.mean([len(r["iter_tokens"]) for r in runs])),
    }


def _regime_summary(cfg, main, regime, rows, baseline, seeds, budget) -> dict:
    """The gradient-noise regime, the prediction that applies, and the 2x-LR/2x-pool runs.

    Without a diagnosed point (no regime seeds, or their runs not finished)
    the regime is not measured: ``regime`` is ``None`` and ``gap`` says why.
    """
    diags = [
        d
        for m in (baseline, "p*")
        for s in seeds
        for d in main.get(m, {}).get(s, {}).get("diagnostics", [])
    ]
    B = cfg["grpo"]["minibatch_size"]
    noise = [d["noise_scale"] for d in diags if not math.isnan(d["noise_scale"])]
    ratio_s = [d["S_p"] / d["S_u"] for d in diags if d["S_u"] > 0 and math.isfinite(d["S_p"])]
    expected_ratio = (
        rows["p*"]["pstar_cost_ratio"] if "p*" in rows else rows[baseline]["pstar_cost_ratio"]
    )
    reg = {"minibatch_size": B, "points": len(noise), "Cp_over_Cu": expected_ratio, "runs": {}}
    if not cfg["regime_seeds"]:
        reg.update(regime=None, gap="the configuration has no regime seeds")
    elif not noise or not ratio_s:
        reg.update(
            regime=None,
            gap=f"no diagnosed iteration with signal on seeds {cfg['regime_seeds']} "
            f"({baseline} and p* runs; an interrupted study, or p* not among the methods)",
        )
    else:
        reg["noise_scale_median"] = float(np.median(noise))
        # a pool whose gradient is 0 has an infinite noise scale: the quartiles are sample
        # values (interpolating between two infinities gives NaN)
        quartiles = np.quantile(noise, [0.25, 0.75], method="inverted_cdf")
        reg["noise_scale_quartiles"] = [float(q) for q in quartiles]
        reg["Sp_over_Su_median"] = float(np.median(ratio_s))
        reg["regime"] = "variance-limited" if reg["noise_scale_median"] > B else "step-limited"
        reg["prediction_step_limited"] = expected_ratio
        reg["prediction_variance_limited"] = (1 + reg["Sp_over_Su_median"]) * expected_ratio
        reg["prediction"] = (
            reg["prediction_variance_limited"]
            if reg["regime"] == "variance-limited"
            else expected_ratio
        )
    for v, by_seed in regime.items():
        rseeds = [s for s in cfg["regime_seeds"] if s in by_seed and s in seeds]
        if not rseeds:
            continue
        b = [main[baseline][s] for s in rseeds]
        o = [by_seed[s] for s in rseeds]
        reg["runs"][v] = {
            "drawn": _comparison(b, o, budget, "eval_tokens"),
            "plateau_vs_baseline": _accuracy_diff(b, o, budget, _plateau),
        }
    return reg


def _verdicts(rows: dict) -> dict:
    """The fixed verdict rule applied to p* and p*_smooth(0.01), where they ran."""
    verdicts = {}
    for m in ("p*", "p*_smooth(0.01)"):
        if m in rows:
            r = rows[m]
            v = verdict(
                1 - r["pstar_cost_ratio"]
                if m == "p*"
                else 1 - r["drawn_per_iteration_vs_baseline"],
                r["drawn"]["saving"],
                None if r["drawn"]["ci"] is None else tuple(r["drawn"]["ci"]),
                r["plateau_vs_baseline"]["pp"],
            )
            if v["verdict"] == "not reproduced":
                v["explained_by"] = _explain(rows, m)
            verdicts[m] = v
    return verdicts


def _held_out(cfg: dict) -> str:
    k = cfg.get("eval_samples")
    every = cfg["grpo"]["eval_every"]
    how = "the exact expected reward of a sampled response" if k is None else f"{k} samples each"
    return f"{cfg['eval_prompts']} fixed prompts, {how}, every {every} iterations"


def summarize(results: dict) -> dict:
    """Everything the report prints, as plain data (see the module doc)."""
    cfg = results["config"]
    main = _main_runs(results)
    regime = defaultdict(dict)
    for r in results["runs"]:
        if r["stage"] == "regime":
            regime[r["method"]][r["seed"]] = r
    baseline = cfg["methods"][0]
    # An interrupted study (a checkpoint) compares each method on the seeds it shares
    # with the baseline; a method with none is left out.
    methods = [m for m in cfg["methods"] if any(s in main[baseline] for s in main.get(m, {}))]
    if not methods:
        raise ValueError("results have no baseline run")
    seeds = [s for s in cfg["seeds"] if s in main[baseline]]
    budget = _budget(cfg, main[baseline], seeds)
    rows = {}
    for m in methods:
        paired = [s for s in seeds if s in main[m]]
        base = [main[baseline][s] for s in paired]
        rows[m] = _method_row(m, paired, base, [main[m][s] for s in paired], budget)
    base = [main[baseline][s] for s in seeds]
    return {
        "verdict_rule": VERDICT_RULE,
        "verdicts": _verdicts(rows),
        "controls": _controls_text(rows),
        "lr": results["lr"],
        "fixed_lr": cfg.get("fixed_lr") is not None,
        "lr_from": results.get("lr_from"),
        "sweep": sweep_summary(results),
        "budget": budget,
        "held_out": _held_out(cfg),
        "baseline_gain": rows[baseline]["drawn"]["gain"],
        "baseline_start": float(np.mean([r["eval_accuracy"][0] for r in base])),
        "baseline_last_window_gain": _last_window_gain(base, budget),
        "baseline_plateaued": _last_window_gain(base, budget) < 0.01,
        "rows": list(rows.values()),
        "regime": _regime_summary(cfg, main, regime, rows, baseline, seeds, budget),
        "seeds": seeds,
        "seeds_planned": list(cfg["seeds"]),
        "methods_planned": list(cfg["methods"]),
        "complete": bool(results.get("complete", True)),
        "seconds": results.get("seconds"),
    }


def sweep_summary(results: dict) -> list[dict]:
    """The baseline-only sweep's runs by learning rate: mean held-out accuracy over each run,
    averaged over the sweep seeds (what :func:`choose_lr` ranks)."""
    by_lr = defaultdict(list)
    for r in results["runs"]:
        if r["stage"] == "sweep":
            by_lr[r["lr"]].append(float(np.mean(r["eval_accuracy"])))
    return [
        {"lr": lr, "mean_accuracy": float(np.mean(v)), "seeds": len(v)}
        for lr, v in sorted(by_lr.items())
    ]


def _ci(c) -> str:
    return f"[{c[0]:+.1%}, {c[1]:+.1%}]"


def format_report(s: dict, *, verdicts: bool = True) -> str:
    """Markdown report of a :func:`summarize` result (the verdict first, unless ``verdicts=False``)."""
    L = []
    if not s["complete"]:
        per = ", ".join(f"{r['method']} {len(r['seeds'])}" for r in s["rows"])
        L += [
            f"**Partial study** (interrupted; {len(s['seeds_planned'])} seeds x "
            f"{len(s['methods_planned'])} methods planned). Seeds per method: {per}; each "
            "comparison uses the seeds it shares with the baseline.",
            "",
        ]
    if verdicts:
        L += ["## Verdict", ""]
        for m, v in s["verdicts"].items():
            L.append(
                f"- **{markdown_literal(m)}: {v['verdict']}** — {markdown_literal(v['reason'])}."
            )
            if "explained_by" in v:
                L.append(f"  Explained by: {markdown_literal(v['explained_by'])}.")
        L += ["", f"Rule (fixed in code before the run): {markdown_literal(s['verdict_rule'])}", ""]
    if s["controls"]:
        L.append(
            "Controls (drawn tokens, 95% paired bootstrap interval): "
            f"{markdown_literal(s['controls'])}."
        )
    if s.get("lr_from"):
        lr_text = f"learning rate {s['lr']:g} from the suite's baseline-only sweep ({s['lr_from']})"
    elif s["fixed_lr"]:
        lr_text = f"learning rate {s['lr']:g} (fixed: the suite's baseline-only sweep)"
    else:
        lr_text = (
            f"learning rate {s['lr']:g} chosen by the baseline-only sweep "
            + ", ".join(f"{x['lr']:g} → {100 * x['mean_accuracy']:.1f}%" for x in s["sweep"])
            + " (mean held-out accuracy over the run)"
        )
    L += [
        "",
        "## Setup",
        "",
        f"Seeds: {len(s['seeds'])}; {lr_text}.",
        f"Held-out accuracy: {s['held_out']}.",
        f"Token budget {s['budget']:,.0f} drawn tokens; baseline accuracy {100 * s['baseline_start']:.1f}% → "
        f"gain {100 * s['baseline_gain']:.1f} pp; gain over the last 20% of the budget "
        f"{100 * s['baseline_last_window_gain']:+.2f} pp "
        f"({'plateaued' if s['baseline_plateaued'] else 'NOT plateaued'}: criterion < 1 pp).",
        "",
        "## Tokens to threshold (paired with the same seed's baseline)",
        "",
        "| method | seeds | E_p\\*[c]/mean c | zero-adv. | drawn/it vs base | processed/it vs base | "
        "saving, drawn (50/75/90% mean) | 50% | 75% | 90% | saving, processed | censored | "
        "plateau Δ pp | peak Δ pp |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        d, p = r["drawn"], r["processed"]
        per = " | ".join(f"{x['saving']:+.1%}" for x in d["per_threshold"]) or "n/a | n/a | n/a"
        pl, pk = r["plateau_vs_baseline"], r["peak_vs_baseline"]
        L.append(
            f"| {markdown_literal(r['method'])} | {len(r['seeds'])} | {r['pstar_cost_ratio']:.3f} | {r['zero_adv_fraction']:.2f} | "
            f"{r['drawn_per_iteration_vs_baseline']:.3f} | {r['processed_per_iteration_vs_baseline']:.3f} | "
            f"{saving_text(d)} | {per} | {saving_text(p)} | "
            f"{d['censored']['other']} | {pl['pp']:+.1f} [{pl['ci_pp'][0]:+.1f}, {pl['ci_pp'][1]:+.1f}] | "
            f"{pk['pp']:+.1f} [{pk['ci_pp'][0]:+.1f}, {pk['ci_pp'][1]:+.1f}] |"
        )
    g = s["regime"]
    L += ["", "## Regime", ""]
    if g["regime"] is None:
        L.append(f"Regime: not measured — {g['gap']}.")
    else:
        L += [
            f"Gradient noise scale tr Σ/‖g‖² (per-sequence gradients, {g['points']} points on the "
            f"baseline and p\\* runs): median {g['noise_scale_median']:.3g}, quartiles "
            + ", ".join(f"{q:.3g}" for q in g["noise_scale_quartiles"])
            + f", against mini-batch B = {g['minibatch_size']}: **{g['regime']}**.",
            f"S_p/S_u (median) = {g['Sp_over_Su_median']:.3g}; C_p/C_u = {g['Cp_over_Cu']:.3f}. "
            f"Predicted token ratio of p\\* vs no sampling: step-limited C_p/C_u = "
            f"{g['prediction_step_limited']:.3f}, variance-limited (1+S_p/S_u)·C_p/C_u = "
            f"{g['prediction_variance_limited']:.3f}; the one that applies predicts a saving of "
            f"{1 - g['prediction']:+.1%}.",
        ]
    if g["runs"]:
        L.append("")  # a list needs a blank line before it
    for v, x in g["runs"].items():
        d = x["drawn"]
        L.append(
            f"- baseline {v}: tokens-to-threshold saving {saving_text(d)} "
            f"(censored {d['censored']['other']}), plateau Δ {x['plateau_vs_baseline']['pp']:+.1f} pp."
        )
    if s.get("seconds") is not None:
        L += ["", f"Wall time {s['seconds']:.0f} s."]
    return "\n".join(L)


def plot(results: dict, path: str | os.PathLike) -> None:
    """Accuracy vs drawn and processed tokens per method (seed mean, 95% interval), and the mechanism.

    Panels: held-out accuracy against cumulative drawn tokens and against
    processed tokens (band: t-interval of the seed mean); the mechanism,
    :math:`\\mathbb E_{p^*}[c]/\\bar c` and the zero-advantage fraction per
    iteration (seed mean, 5-iteration running mean) on the baseline and p* runs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = results["config"]
    main = defaultdict(list)
    for r in results["runs"]:
        if r["stage"] == "main":
            main[r["method"]].append(r)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for ax, key, label in (
        (axes[0], "eval_tokens", "drawn policy-optimization tokens"),
        (axes[1], "eval_processed_tokens", "processed tokens (padded micro-batches)"),
    ):
        for m in cfg["methods"]:
            runs = main[m]
            if not runs:  # an interrupted study
                continue
            grid = np.linspace(0, min(float(r[key][-1]) for r in runs), 60)
            acc = 100 * _mean_curve(runs, key, grid)
            mean = acc.mean(0)
            half = 1.96 * acc.std(0, ddof=1) / math.sqrt(len(runs)) if len(runs) > 1 else 0 * mean
            lw = 2 if m in (cfg["methods"][0], "p*") else 1
            ax.plot(grid, mean, label=m, lw=lw)
            ax.fill_between(grid, mean - half, mean + half, alpha=0.12)
        ax.set_xlabel(label)
        ax.set_ylabel("held-out accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title(f"{len(cfg['seeds'])} seeds, mean ± 95% interval")
    ax = axes[2]
    for m, style in ((cfg["methods"][0], "-"), ("p*", "--")):
        if m not in main:
            continue
        for key, color, name in (
            ("iter_pstar_cost_ratio", "C0", "E_p*[c]/mean c"),
            ("iter_zero_adv_frac", "C3", "zero-advantage fraction"),
        ):
            k = min(len(r[key]) for r in main[m])
            y = np.mean([r[key][:k] for r in main[m]], axis=0)
            y = np.convolve(y, np.ones(5) / 5, mode="valid")
            ax.plot(np.arange(len(y)) + 3, y, style, color=color, label=f"{name} ({m})")
    ax.axhline(0.75, color="gray", lw=0.8, ls=":")
    ax.set_title("mechanism (seed mean, 5-iteration running mean)")
    ax.set_xlabel("iteration")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
