r"""The adapter's kernels: Algorithm 2's Phase 2–3 on checked float64 tensors.

No validation and no host synchronisation beyond what the distribution itself needs:
the public functions (:func:`costsgd.torch.plan_update`, the distributed plans) check
their inputs once, then call these.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from costsgd._validate import check_positive_int, check_probabilities
from costsgd.torch.options import SamplingOptions

__all__ = ["draw_indices", "draw_weights", "num_minibatches", "pool_probs"]


def pool_probs(
    G: torch.Tensor,
    c: torch.Tensor,
    sampling: SamplingOptions,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The distribution ``sampling`` gives the pool with proxies ``G`` and costs ``c``.

    ``G`` and ``c`` are float64 tensors already checked (:func:`pool_inputs`):
    the named samplers' outputs are not checked again; a user-supplied sampler's are.

    Raises:
      ValueError: a user-supplied sampler returned no distribution over the pool.
    """
    n = G.shape[0]
    signal = not sampling.reads_advantages or bool((G > 0).any())
    if signal and sampling.reads_advantages and sampling.sigma2 > 0:
        noise = torch.randn(G.shape, generator=generator, dtype=G.dtype, device=G.device)
        G = (G + sampling.sigma2**0.5 * noise).clamp(min=0.0)
        signal = bool((G > 0).any())
    if not signal:
        p = torch.full_like(G, 1.0 / n)  # no signal: uniform draws, weight 1
    else:
        p = sampling.sampler(G if sampling.reads_advantages else None, c)
        if not isinstance(sampling.proxy, str):
            p = torch.as_tensor(p, dtype=torch.float64, device=G.device)
            if tuple(p.shape) != (n,):
                raise ValueError(
                    f"the sampler {sampling.proxy!r} returned shape {tuple(p.shape)} for a pool of {n}"
                )
            check_probabilities(p, "the sampler's output")
    if sampling.alpha > 0:
        p = (1.0 - sampling.alpha) * p + sampling.alpha / n
    return p


def num_minibatches(num_batches: Any, n: int, draws_per_batch: int) -> int:
    r"""``num_batches``, by default :math:`\lceil n/B \rceil`: as many as one uniform pass over ``n`` rollouts.

    Raises:
      ValueError: naming ``num_batches`` when it is given and not a positive integer.
    """
    if num_batches is None:
        num_batches = math.ceil(n / draws_per_batch)
    return check_positive_int(num_batches, "num_batches")


def draw_indices(p: torch.Tensor, batch_size: int, num_batches: int, generator) -> torch.Tensor:
    """The inverse-CDF draw of :func:`costsgd.torch.sample_minibatches` for a validated float64 ``p``
    (no host synchronisation)."""
    cdf = torch.cumsum(p, dim=0)
    u = torch.rand((num_batches, batch_size), generator=generator, dtype=p.dtype, device=p.device)
    idx = torch.searchsorted(cdf, u * cdf[-1], right=True)
    # u * total can round up to total: fall back to the last component with mass.
    positions = torch.arange(p.shape[0], device=p.device)
    last = torch.where(p > 0, positions, torch.zeros_like(positions)).max()
    return torch.minimum(idx, last)


def draw_weights(p: torch.Tensor, idx: torch.Tensor, normalize: str, dtype) -> torch.Tensor:
    """The weights of :func:`costsgd.torch.importance_weights` for validated draws (no host sync).

    With ``normalize="draws"`` the ratios ``min p / p_u`` are formed first, so
    the result is finite whenever it is in float64 (``p_u = 1e-310`` included).
    """
    n = p.shape[0]
    if normalize == "draws":
        drawn = p[idx]
        w = drawn.min() / drawn
        return (w / w.mean()).to(dtype)
    w = 1.0 / (n * p[idx])
    if normalize == "expected":
        w = w * (n / (p > 0).sum())
    return w.to(dtype)
