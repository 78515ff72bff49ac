r"""The sampling options of Algorithm 2's policy update, in one validated carrier.

Every entry point of the adapter that draws mini-batches — :func:`costsgd.torch.plan_update`,
:func:`costsgd.torch.stratified_plan`, :func:`costsgd.torch.global_plan`, the TRL trainer
and the verl recipe — takes one :class:`SamplingOptions`. It says which distribution
:math:`p` is formed from the pool's advantage magnitudes :math:`|A_u|` (the proxy for
:math:`G_u`, §5.2) and costs :math:`c_u`, how it is smoothed (§5.3), whether the
proxy is made noisy (§5.5's ablation) and how the importance weights are normalised
(Appendix G.2).

The distribution is any sampler ``(G, c) -> p`` of :mod:`costsgd.samplers` applied to
:math:`(|A_u|, c_u)`, named or passed as a function:

========== ======================================= =====================================
proxy      sampler                                 :math:`p_u \propto`
========== ======================================= =====================================
advantage  :func:`costsgd.optimal` (Theorem 4.1)   :math:`|A_u|/\sqrt{c_u}`
nonzero    :func:`costsgd.nonzero`                 :math:`\mathbf 1[A_u \ne 0]`
length     :func:`costsgd.length_only` (App. G.6)  :math:`1/\sqrt{c_u}`
variance   :func:`costsgd.variance` (Eq. 9)        :math:`|A_u|`
uniform    :func:`costsgd.uniform`                 :math:`1`
========== ======================================= =====================================
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any

from costsgd import samplers
from costsgd._validate import check_alpha

__all__ = ["NORMALIZATIONS", "PROXIES", "SamplingOptions"]

PROXIES: dict[str, Callable[[Any, Any], Any]] = {
    "advantage": samplers.optimal,
    "nonzero": samplers.nonzero,
    "length": samplers.length_only,
    "variance": samplers.variance,
    "uniform": samplers.uniform,
}
"""The named samplers ``proxy`` accepts, applied to :math:`(|A_u|, c_u)`."""

NORMALIZATIONS = ("draws", "expected", "none")
"""Normalisations of the importance weights (:func:`costsgd.torch.importance_weights`)."""


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    r"""How one policy update draws its mini-batches (validated when built).

    Attributes:
      proxy: a name of :data:`PROXIES` (default ``"advantage"``: Theorem 4.1's
        :math:`p^* \propto |A_u|/\sqrt{c_u}`), or any function ``(G, c) -> p``
        taking float64 tensors of the pool's :math:`|A_u|` and :math:`c_u` and
        returning a distribution over the pool (checked after each call).
      alpha: smoothing towards uniform, :math:`(1-\alpha)p + \alpha/N`
        (:math:`p^*_{\mathrm{smooth}}(\alpha)`, §5.3), in ``[0, 1]``.
      sigma2: variance :math:`\sigma^2` of the noisy-proxy ablation (§5.5): the
        sampler sees :math:`\max(|A_u| + \sigma\xi_u, 0)`, :math:`\xi_u\sim\mathcal N(0,1)`.
      normalize: ``"draws"`` (mean weight 1 over the step's draws, Appendix G.2),
        ``"expected"`` or ``"none"`` (:func:`costsgd.torch.importance_weights`).

    A pool with no signal (every :math:`|A_u| = 0`) is drawn uniformly with
    weight 1, whatever the proxy, except ``"length"``, which never reads the
    advantages.

    Raises:
      ValueError: naming the field, for an unknown proxy or normalisation, an
        ``alpha`` outside ``[0, 1]``, or a ``sigma2`` that is not a finite number >= 0.

    Examples:
      >>> from costsgd.torch import SamplingOptions
      >>> SamplingOptions(proxy="nonzero", alpha=0.01)
      SamplingOptions(proxy='nonzero', alpha=0.01, sigma2=0.0, normalize='draws')
      >>> SamplingOptions(proxy="median")
      Traceback (most recent call last):
      ...
      ValueError: proxy must be one of ['advantage', 'nonzero', 'length', 'variance', 'uniform'] or a function (G, c) -> p, got 'median'
    """

    proxy: str | Callable[[Any, Any], Any] = "advantage"
    alpha: float = 0.0
    sigma2: float = 0.0
    normalize: str = "draws"

    def __post_init__(self) -> None:
        if not (callable(self.proxy) or (isinstance(self.proxy, str) and self.proxy in PROXIES)):
            raise ValueError(
                f"proxy must be one of {list(PROXIES)} or a function (G, c) -> p, "
                f"got {self.proxy!r}"
            )
        if not _is_real(self.alpha):
            raise ValueError(f"alpha must be a number in [0, 1], got {self.alpha!r}")
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        sigma2 = self.sigma2
        if not (_is_real(sigma2) and math.isfinite(sigma2) and sigma2 >= 0):
            raise ValueError(f"sigma2 must be a finite number >= 0, got {sigma2!r}")
        object.__setattr__(self, "sigma2", float(sigma2))
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")

    @property
    def sampler(self) -> Callable[[Any, Any], Any]:
        """The function ``(G, c) -> p`` that ``proxy`` names (or is)."""
        return PROXIES[self.proxy] if isinstance(self.proxy, str) else self.proxy

    @property
    def reads_advantages(self) -> bool:
        """Whether the distribution depends on the advantages (all but ``"length"``)."""
        return self.proxy != "length"

    @classmethod
    def of(cls, sampling: Any) -> SamplingOptions:
        """``sampling`` as options: ``None`` gives the defaults.

        Raises:
          TypeError: naming ``sampling`` when it is not ``None`` or a :class:`SamplingOptions`.
        """
        if sampling is None:
            return cls()
        if not isinstance(sampling, cls):
            raise TypeError(
                f"sampling must be a costsgd.torch.SamplingOptions or None, "
                f"got {type(sampling).__name__}"
            )
        return sampling
