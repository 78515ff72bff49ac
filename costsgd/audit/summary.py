r"""An audit over training: per-step numbers, their token-weighted summary, the regime.

Pools arrive one step at a time (:meth:`Audit.add`), so memory grows with the
number of steps, not of rollouts. The summary's ratios are token-weighted
means over pools,

.. math:: \bar r(p) = \frac{\sum_t r_t(p)\,\sum_u c_{t,u}}{\sum_t \sum_u c_{t,u}}
   = \frac{\sum_t N_t\,\mathbb E_{p_t}[c]}{\sum_t \sum_u c_{t,u}},

the expected drawn tokens of the whole run under :math:`p` over those of no
sampling. The predicted token ratio of :math:`p^*` to no sampling is
:math:`C_p/C_u = \bar r(p^*)` when training is step-limited and
:math:`(1 + S_p/S_u)\,C_p/C_u` when it is variance-limited, with the median
:math:`S_p/S_u` over pools, as the GRPO study's report computes them
(:data:`REGIME_RULE` says which one to read).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from costsgd.audit.batch import analyse_pools
from costsgd.audit.pool import SAMPLERS, Pool, PoolAudit

__all__ = ["REGIME_RULE", "Audit", "audit", "batches", "regime"]

#: Which predicted token ratio of p* to read (docs/audit.md), in words.
REGIME_RULE = (
    "Read the step-limited prediction C_p/C_u when your mini-batch B is at or above the "
    "gradient-noise scale B_noise = tr(Sigma)/|g|^2 (a larger mini-batch would not speed training "
    "per step; doubling the learning rate does); read the variance-limited prediction "
    "(1 + S_p/S_u)·C_p/C_u when B is below B_noise (noise dominates each step: doubling the "
    "learning rate does not help, and doubling the pool costs no extra tokens to threshold). "
    "Given --noise-scale and --minibatch-size the audit applies the GRPO study's rule: "
    "variance-limited if B_noise > B, else step-limited."
)

# Cost histogram: 8 bins per octave from 1 to 2^24 tokens, plus under/overflow.
_EDGES = np.concatenate(([0.0], 2.0 ** np.arange(0, 24.001, 1 / 8), [np.inf]))


def regime(noise_scale: float | None, minibatch_size: int | None) -> str:
    """``"variance-limited"`` if ``noise_scale > minibatch_size``, ``"step-limited"`` if not, else ``"unknown"``.

    Examples:
      >>> regime(968.0, 32), regime(10.0, 32), regime(None, 32)
      ('variance-limited', 'step-limited', 'unknown')
    """
    if noise_scale is None or minibatch_size is None:
        return "unknown"
    if not (math.isfinite(noise_scale) and noise_scale > 0):
        raise ValueError(f"noise_scale must be finite and > 0, got {noise_scale!r}")
    if int(minibatch_size) != minibatch_size or minibatch_size < 1:
        raise ValueError(f"minibatch_size must be a positive integer, got {minibatch_size!r}")
    return "variance-limited" if noise_scale > minibatch_size else "step-limited"


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


class Audit:
    """Accumulates :func:`~costsgd.audit.analyse_pool` over a run's pools.

    Args:
      noise_scale: the user's gradient-noise scale :math:`B_{noise}`, if known.
      minibatch_size: their mini-batch size :math:`B`, if known.

    Examples:
      >>> import numpy as np
      >>> from costsgd.audit import Pool
      >>> run = Audit()
      >>> _ = run.add(Pool(0, np.array([1.0, 0.0]), np.ones(2), np.array([1.0, 5.0])))
      >>> _ = run.add(Pool(1, np.array([0.0, 0.0]), np.ones(2), np.array([1.0, 1.0])))
      >>> out = run.result()
      >>> out["summary"]["expected_drawn_ratio"]["p*"]  # (2 * 2 + 4) / (8 + 4)
      0.6666666666666666
    """

    def __init__(self, *, noise_scale: float | None = None, minibatch_size: int | None = None):
        self.regime = regime(noise_scale, minibatch_size)
        self.noise_scale = noise_scale
        self.minibatch_size = minibatch_size
        self.steps: list[dict[str, Any]] = []
        self._weighted = dict.fromkeys(SAMPLERS, 0.0)
        self._ess = dict.fromkeys(SAMPLERS, 0.0)
        self._tokens = 0.0
        self._rows = 0
        self._zero = 0.0
        self._masked = 0.0
        self._no_signal = 0
        self._s_ratios: list[float] = []
        self._hist = np.zeros(_EDGES.size - 1, dtype=np.int64)
        self._cmin, self._cmax = math.inf, 0.0

    def add(self, pool: Pool) -> PoolAudit:
        """Analyse one pool and add it to the run; returns its :class:`PoolAudit`."""
        return self.add_many([pool])[0]

    def add_many(self, pools: Sequence[Pool]) -> list[PoolAudit]:
        """Analyse pools in one batch (:func:`~costsgd.audit.batch.analyse_pools`) and add them."""
        analyses = analyse_pools(pools)
        for pool, a in zip(pools, analyses, strict=True):
            self._record(pool, a)
        return analyses

    def _record(self, pool: Pool, a: PoolAudit) -> None:
        c = pool.prompt_tokens + pool.completion_tokens
        for name in SAMPLERS:
            self._weighted[name] += a.expected_drawn_ratio[name] * a.tokens
            self._ess[name] += a.ess_fraction[name] * a.n
        self._tokens += a.tokens
        self._rows += a.n
        self._zero += a.zero_advantage_fraction * a.n
        self._masked += a.masked_fraction * a.n
        self._no_signal += a.no_signal
        if math.isfinite(a.Sp_over_Su):
            self._s_ratios.append(a.Sp_over_Su)
        self._hist += np.bincount(
            np.searchsorted(_EDGES, c, side="right") - 1, minlength=self._hist.size
        )[: self._hist.size]
        self._cmin = min(self._cmin, float(c.min()))
        self._cmax = max(self._cmax, a.cost["max"])
        self.steps.append(
            {
                "step": pool.step,
                "n": a.n,
                "tokens": a.tokens,
                "zero_advantage_fraction": a.zero_advantage_fraction,
                "masked_fraction": a.masked_fraction,
                "no_signal": a.no_signal,
                "expected_drawn_ratio": a.expected_drawn_ratio,
                "ess_fraction": a.ess_fraction,
                "Sp_over_Su": _finite_or_none(a.Sp_over_Su),
                "cost": a.cost,
            }
        )

    def result(self) -> dict[str, Any]:
        """``{"steps": [...], "summary": {...}}``: the body of ``audit.json`` (docs/audit.md)."""
        if not self._rows:
            raise ValueError("no rollouts to audit: every input was empty")
        ratio = {k: v / self._tokens for k, v in self._weighted.items()}
        cp_cu = ratio["p*"]
        s_med = float(np.median(self._s_ratios)) if self._s_ratios else math.nan
        step_limited = cp_cu
        variance_limited = (1 + s_med) * cp_cu if self._s_ratios else math.nan
        chosen = {"step-limited": step_limited, "variance-limited": variance_limited}
        per_step = {
            k: [
                float(q)
                for q in np.quantile(
                    [s["expected_drawn_ratio"][k] for s in self.steps], [0.1, 0.5, 0.9]
                )
            ]
            for k in SAMPLERS
        }
        summary = {
            "pools": len(self.steps),
            "rows": self._rows,
            "tokens": self._tokens,
            "no_signal_pools": self._no_signal,
            "expected_drawn_ratio": ratio,
            "expected_saving": {k: 1 - v for k, v in ratio.items()},
            "expected_drawn_ratio_step_quantiles": per_step,
            "zero_advantage_fraction": self._zero / self._rows,
            "masked_fraction": self._masked / self._rows,
            "ess_fraction": {k: v / self._rows for k, v in self._ess.items()},
            "cost": {
                "min": self._cmin,
                "max": self._cmax,
                "cv_median": float(np.median([s["cost"]["cv"] for s in self.steps])),
                "p90_over_p10_median": float(
                    np.median([s["cost"]["p90"] / s["cost"]["p10"] for s in self.steps])
                ),
                "histogram_edges": [float(e) for e in _EDGES[1:-1]],
                "histogram_counts": self._hist.tolist(),
            },
            "regime": {
                "Cp_over_Cu": cp_cu,
                "Sp_over_Su_median": _finite_or_none(s_med),
                "step_limited": step_limited,
                "variance_limited": _finite_or_none(variance_limited),
                "noise_scale": self.noise_scale,
                "minibatch_size": self.minibatch_size,
                "regime": self.regime,
                "prediction": _finite_or_none(chosen[self.regime])
                if self.regime in chosen
                else None,
                "rule": REGIME_RULE,
            },
        }
        return {"steps": self.steps, "summary": summary}


def audit(pools: Iterable[Pool], **options: Any) -> dict[str, Any]:
    """Audit every pool of ``pools`` (an iterable, consumed once); ``options`` go to :class:`Audit`.

    Examples:
      >>> import numpy as np
      >>> from costsgd.audit import Pool
      >>> out = audit([Pool(3, np.array([1.0, 0.0]), np.zeros(2), np.array([2.0, 6.0]))])
      >>> out["steps"][0]["step"], out["summary"]["expected_saving"]["nonzero"]
      (3, 0.5)
    """
    run = Audit(**options)
    for batch in batches(pools):
        run.add_many(batch)
    return run.result()


def batches(pools: Iterable[Pool], rows: int = 1 << 16) -> Iterator[list[Pool]]:
    """Consecutive pools grouped into lists of about ``rows`` rollouts (memory stays bounded)."""
    batch, size = [], 0
    for pool in pools:
        batch.append(pool)
        size += pool.advantages.size
        if size >= rows:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
