r"""Importance weights of the drawn rollouts (Eq. 22), re-centred as in Appendix G.2."""

from __future__ import annotations

import torch

from costsgd._validate import check_probabilities
from costsgd.torch._inputs import as_tensor
from costsgd.torch._kernels import draw_weights
from costsgd.torch.options import NORMALIZATIONS

__all__ = ["importance_weights"]


def importance_weights(
    probs: torch.Tensor,
    indices: torch.Tensor,
    *,
    normalize: str = "draws",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""Importance weights :math:`w = 1/(N p_u)` of the drawn rollouts (Eq. 22).

    With raw weights, :math:`\mathbb E_{u\sim p}[w_u \ell_u] = \frac1N\sum_{v:\,p_v>0}\ell_v`:
    the mini-batch objective is unbiased for the full-pool objective (exactly,
    when rollouts with :math:`p_v = 0` have zero loss, as zero-advantage
    rollouts do under a pure policy-gradient loss).

    ``normalize`` rescales all weights of the update step by one factor:

    * ``"draws"`` (default, Appendix G.2): divide by the mean over every draw in
      ``indices`` (all mini-batches of the step), so the weights average 1 and
      the gradient norm stays comparable to uniform training. The factor is
      shared by all mini-batches of the step, but it is random and depends on
      which rollouts were drawn: this is a self-normalised estimator, biased by
      O(1/(number of draws)) in scale and, slightly, in direction. It is the
      paper's choice; use ``"expected"`` for an
      exactly unbiased step;
    * ``"expected"``: divide by :math:`\mathbb E_p[w] = |\{v: p_v>0\}|/N`, a
      deterministic constant (the estimator stays exactly unbiased for the
      objective times :math:`N/|\mathrm{supp}\,p|`);
    * ``"none"``: the raw weights.

    Args:
      probs: ``(N,)`` the distribution the indices were drawn from.
      indices: int tensor of any shape with entries in ``[0, N)``.
      normalize: ``"draws"``, ``"expected"`` or ``"none"``.
      dtype: dtype of the result (float32 by default, so that multiplying a
        float32/bfloat16 loss does not promote it to float64).

    Returns:
      Tensor shaped like ``indices``.

    Raises:
      ValueError: an index out of range or with :math:`p_u = 0` (it cannot
        have been drawn from ``probs``), or an unknown ``normalize``.

    Examples:
      >>> import torch
      >>> from costsgd.torch import importance_weights
      >>> p = torch.tensor([0.5, 0.25, 0.25])
      >>> w = importance_weights(p, torch.tensor([0, 1]), normalize="none")
      >>> [round(v, 4) for v in w.tolist()]
      [0.6667, 1.3333]
      >>> importance_weights(p, torch.tensor([0, 1])).mean().item()
      1.0
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
    p = as_tensor(probs, "probs").to(torch.float64)
    if p.ndim != 1:
        raise ValueError(f"probs must be 1-D, got shape {tuple(p.shape)}")
    check_probabilities(p, "probs")
    if not isinstance(indices, torch.Tensor):
        raise TypeError(f"indices must be a torch.Tensor, got {type(indices).__name__}")
    idx = indices.to(p.device)
    if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.numel() == 0:
        raise ValueError(f"indices must be a non-empty integer tensor, got dtype {idx.dtype}")
    n = p.shape[0]
    if bool(((idx < 0) | (idx >= n)).any()):
        raise ValueError(
            f"indices must lie in [0, {n}); got min {int(idx.min())}, max {int(idx.max())}"
        )
    if bool((p[idx] <= 0).any()):
        raise ValueError("indices include components with probs == 0: they cannot have been drawn")
    w = draw_weights(p, idx, normalize, dtype)
    if not bool(torch.isfinite(w).all()):
        raise ValueError(
            f"the weights 1/(N p) overflow {dtype} (smallest drawn probs {float(p[idx].min())!r}):"
            " use normalize='draws' or a wider dtype"
        )
    return w
