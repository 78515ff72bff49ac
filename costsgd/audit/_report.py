"""The audit's table and figure, drawn from an ``audit.json`` body alone (a plot can be redrawn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from costsgd.audit.pool import SAMPLERS

__all__ = ["format_table", "plot_audit"]


def _steps_range(steps: list[dict]) -> str:
    known = [s["step"] for s in steps if s["step"] is not None]
    return f"steps {min(known)}–{max(known)}" if known else "no step numbers"


def format_table(result: dict[str, Any]) -> str:
    """A short text table: per-step quantiles and the run summary of each sampler, then the regime.

    Examples:
      >>> import numpy as np
      >>> from costsgd.audit import Pool, audit
      >>> out = audit([Pool(0, np.array([1.0, 0.0]), np.zeros(2), np.array([2.0, 6.0]))])
      >>> print(format_table(out).splitlines()[4])
      p*                      0.500   0.500   0.500   0.500   50.0%     1.000
    """
    s = result["summary"]
    src = result.get("advantages_from", "advantage")
    norm = result.get("reward_normalization")
    how = f"rewards, {norm} normalisation" if src == "reward" else "logged advantages"
    excluded = result.get("excluded") or {}
    lines = [
        f"{s['pools']} pools ({_steps_range(result['steps'])}), {s['rows']:,} rollouts, "
        f"{s['tokens']:,.0f} tokens; advantages from {how}; excluded rows: "
        + (", ".join(f"{k} {v:,}" for k, v in excluded.items()) or "none"),
        "expected drawn tokens per iteration relative to no sampling (E_p[c] / mean c):",
        f"{'':20} {'per-step quantiles':^23}  {'run':>6}  {'saving':>6}  {'ESS/draw':>8}",
        f"{'sampler':20} {'p10':>7} {'p50':>7} {'p90':>7}",
    ]
    for name in SAMPLERS:
        q = s["expected_drawn_ratio_step_quantiles"][name]
        lines.append(
            f"{name:20} {q[0]:7.3f} {q[1]:7.3f} {q[2]:7.3f} {s['expected_drawn_ratio'][name]:7.3f} "
            f"{s['expected_saving'][name]:6.1%} {s['ess_fraction'][name]:9.3f}"
        )
    c, g = s["cost"], s["regime"]
    lines += [
        f"zero-advantage rollouts: {s['zero_advantage_fraction']:.1%}; masked: "
        f"{s['masked_fraction']:.1%}; pools without signal: {s['no_signal_pools']}",
        f"cost per rollout: {c['min']:g} to {c['max']:g} tokens; within a pool, median CV "
        f"{c['cv_median']:.2f} and median p90/p10 {c['p90_over_p10_median']:.1f}",
    ]
    var = "n/a" if g["variance_limited"] is None else f"{g['variance_limited']:.3f}"
    s_med = "n/a" if g["Sp_over_Su_median"] is None else f"{g['Sp_over_Su_median']:.3g}"
    lines.append(
        f"predicted token ratio of p*: step-limited C_p/C_u = {g['Cp_over_Cu']:.3f}; "
        f"variance-limited (1 + S_p/S_u)·C_p/C_u = {var} (S_p/S_u median {s_med}); "
        + (
            f"regime: {g['regime']} (noise scale {g['noise_scale']:g} vs mini-batch "
            f"{g['minibatch_size']})"
            if g["regime"] != "unknown"
            else "regime unknown: give --noise-scale and --minibatch-size, or see docs/audit.md"
        )
    )
    return "\n".join(lines)


def _thin(y: np.ndarray, points: int = 1000) -> np.ndarray:
    """At most ``points`` values: means of consecutive runs of steps (a long run stays legible)."""
    if y.size <= points:
        return y
    edges = np.linspace(0, y.size, points + 1).astype(np.int64)
    return np.add.reduceat(y, edges[:-1]) / np.diff(edges)


def plot_audit(result: dict[str, Any], png: str | Path) -> Path:
    """Expected saving per sampler over training, zero-advantage fraction, cost distribution.

    Over more than 1000 steps each curve shows means over consecutive steps (1000 points).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = result["steps"]
    x = _thin(np.array([i if s["step"] is None else s["step"] for i, s in enumerate(steps)], float))
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.14, top=0.92, wspace=0.25)
    for name in SAMPLERS:
        y = _thin(np.array([1 - s["expected_drawn_ratio"][name] for s in steps]))
        ax[0].plot(x, y, label=name, lw=1)
    ax[0].set(xlabel="step", ylabel="expected saving per iteration", title="1 - E_p[c] / mean c")
    ax[0].legend(fontsize=7, loc="best", ncols=2)
    ax[1].plot(x, _thin(np.array([s["zero_advantage_fraction"] for s in steps])), color="C3", lw=1)
    ax[1].set(xlabel="step", ylabel="fraction", title="zero-advantage rollouts", ylim=(0, 1))
    c = result["summary"]["cost"]
    edges = np.array(c["histogram_edges"])
    counts = np.array(c["histogram_counts"])[1:-1]
    used = np.flatnonzero(counts)
    if used.size:  # the occupied bins only
        lo, hi = used[0], used[-1] + 1
        counts, edges = counts[lo:hi], edges[lo : hi + 1]
    ax[2].stairs(counts, edges)
    ax[2].set(
        xscale="log",
        xlabel="tokens per rollout (prompt + completion)",
        ylabel="rollouts",
        title="cost distribution",
    )
    png = Path(png)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
