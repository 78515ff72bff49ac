r"""Phase 3 of Algorithm 2: mini-batches drawn with replacement from :math:`p`.

Mini-batch :math:`t` is :math:`\mathrm{Multinomial}(\mathcal D_{\mathrm{step}}, p, B)`,
and by default there are :math:`T = \lceil N/B \rceil` of them (as many as one
uniform pass over the pool).
"""

from __future__ import annotations

import torch

from costsgd._validate import check_positive_int, check_probabilities
from costsgd.torch._inputs import as_tensor, check_generator
from costsgd.torch._kernels import draw_indices, num_minibatches

__all__ = ["sample_minibatches"]


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
