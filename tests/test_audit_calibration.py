"""benchmarks/audit_calibration.py: the audit of a study's baseline pools, from pools or per-iteration ratios."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from costsgd.audit import Pool, analyse_pool

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location(
        "audit_calibration", ROOT / "benchmarks" / "audit_calibration.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(rng, seed, method="no sampling", iterations=5, n=16, zero=0.6):
    pools, ratios = [], {k: [] for k in ("p*", "p*_smooth(0.01)", "nonzero")}
    for _ in range(iterations):
        A = np.where(rng.random(n) < zero, 0.0, rng.normal(size=n))
        c = rng.integers(5, 80, n).astype(float)
        pools.append((A.tolist(), c.tolist()))
        r = analyse_pool(Pool(0, A, np.zeros(n), c)).expected_drawn_ratio
        for k in ratios:
            ratios[k].append(r[k])
    return {
        "stage": "main",
        "seed": seed,
        "method": method,
        "iter_advantages": [a for a, _ in pools],
        "iter_costs": [c for _, c in pools],
        "iter_all_tokens": [int(sum(c)) for _, c in pools],
        "iter_zero_adv_frac": [float(np.mean(np.asarray(a) == 0)) for a, _ in pools],
        "iter_pstar_cost_ratio": ratios["p*"],
        "iter_expected_ratio_smooth": ratios["p*_smooth(0.01)"],
        "iter_expected_ratio_nonzero": ratios["nonzero"],
    }


def test_pools_and_per_iteration_ratios_give_one_audit(calibration):
    rng = np.random.default_rng(0)
    runs = [_run(rng, s) for s in (0, 1)] + [_run(rng, 2, zero=0.1), _run(rng, 0, "p*", zero=0.1)]
    results = {"config": {"methods": ["no sampling", "p*"]}, "runs": runs}
    from_pools = calibration.audit_baseline(results, [0, 1])
    for r in runs:
        del r["iter_advantages"], r["iter_costs"]
    from_ratios = calibration.audit_baseline(results, [0, 1])
    assert from_pools["source"] != from_ratios["source"]
    for k in ("p*", "p*_smooth(0.01)", "nonzero"):
        assert from_ratios["expected_saving"][k] == pytest.approx(
            from_pools["expected_saving"][k], rel=1e-12
        )
    # seed 2 and the p* run are not the baseline's pools of seeds 0-1
    want = np.mean([f for r in runs[:2] for f in r["iter_zero_adv_frac"]])
    assert from_pools["zero_advantage_fraction"] == pytest.approx(want)
    assert from_ratios["zero_advantage_fraction"] == pytest.approx(want)


def test_default_study_calibrates(calibration):
    mix = calibration.calibrate(str(ROOT / "docs/results/grpo_study.json"), "default")
    row = mix["methods"]["p*"]
    assert 0 < row["expected_saving"] < 1
    assert row["tokens_to_threshold_ci"][0] <= row["tokens_to_threshold_saving"]
    text = calibration.rule([mix])
    assert (
        f"expected {row['expected_saving']:+.0%} → {row['tokens_to_threshold_saving']:+.0%}" in text
    )
    assert "expected sign on 1 of 1 mix(es)" in text
