r"""Phase 3 of Algorithm 2: mini-batches drawn with replacement from :math:`p`.

Mini-batch :math:`t` is :math:`\mathrm{Multinomial}(\mathcal D_{\mathrm{step}}, p, B)`,
and by default there are :math:`T = \lceil N/B \rceil` of them (as many as one
uniform pass over the pool).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from costsgd._validate import check_positive_int, check_probabilities
from costsgd.torch.inputs import as_tensor, check_generator

__all__ = ["draw_indices", "num_minibatches", "sample_minibatches"]


def num_minibatches(num_batches: Any, n: int, draws_per_batch: int) -> int:
    r"""``num_batches``, by default :math:`\lceil n/B \rceil`: as many as one uniform pass over ``n`` rollouts.

    Raises:
      ValueError: naming ``num_batches`` when it is given and not a positive integer.
    """
    if num_batches is None:
        num_batches = math.ceil(n / draws_per_batch)
    return check_positive_int(num_batches, "num_batches")


def sample_minibatches(
    probs: torch.Tensor,
    batch_size: int,
    *,
    num_batches: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Draw ``num_batches`` mini-batches of ``batch_size`` rollouts, with replacement.

    Phase 3 of Algorithm 2: mini-batch :math:`t` is
    :math:`\mathrm{Multinomial}(\mathcal D_{\mathrm{step}}, p, B)`, and by default
    there are :math:`T = \lceil N/B \rceil` of them (as many as a uniform pass).

    The draw is an inverse-CDF search over a float64 cumulative sum on the
    device of ``probs``: O(log N) per draw, no category limit (unlike
    ``torch.multinomial``'s 2^24), and components with :math:`p_u = 0` are
    never drawn. Reproducible given a ``torch.Generator`` on the same device
    (the same seed on CPU and CUDA gives different draws).

    Args:
      probs: ``(N,)`` distribution (non-negative, sums to 1).
      batch_size: rollouts per mini-batch, :math:`B \ge 1`.
      num_batches: number of mini-batches; default :math:`\lceil N/B \rceil`.
      generator: optional ``torch.Generator`` on ``probs``' device.

    Returns:
      int64 tensor of shape ``(num_batches, batch_size)`` on ``probs``' device.

    Examples:
      >>> import torch
      >>> from costsgd.torch import sample_minibatches
      >>> g = torch.Generator().manual_seed(0)
      >>> idx = sample_minibatches(torch.tensor([0.0, 0.5, 0.5]), 2, generator=g)
      >>> tuple(idx.shape), bool((idx > 0).all())
      ((2, 2), True)
    """
    p = as_tensor(probs, "probs").to(torch.float64)
    if p.ndim != 1:
        raise ValueError(f"probs must be 1-D, got shape {tuple(p.shape)}")
    check_probabilities(p, "probs")
    batch_size = check_positive_int(batch_size, "batch_size")
    num_batches = num_minibatches(num_batches, p.shape[0], batch_size)
    check_generator(generator, p.device)
    return draw_indices(p, batch_size, num_batches, generator)


def draw_indices(p: torch.Tensor, batch_size: int, num_batches: int, generator) -> torch.Tensor:
    """The inverse-CDF draw of :func:`sample_minibatches` for a validated float64 ``p``
    (no host synchronisation)."""
    cdf = torch.cumsum(p, dim=0)
    u = torch.rand((num_batches, batch_size), generator=generator, dtype=p.dtype, device=p.device)
    idx = torch.searchsorted(cdf, u * cdf[-1], right=True)
    # u * total can round up to total: fall back to the last component with mass.
    positions = torch.arange(p.shape[0], device=p.device)
    last = torch.where(p > 0, positions, torch.zeros_like(positions)).max()
    return torch.minimum(idx, last)
