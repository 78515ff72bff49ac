r"""Algorithm 2's sampling core on torch tensors: probabilities, draws, weights.

Phase 2 of Cost-Aware GRPO (Algorithm 2, Appendix B.2) turns the rollout pool
:math:`\mathcal D_{\mathrm{step}}` of size :math:`N` into the distribution

.. math:: p_u \propto |A_u| / \sqrt{c_u},

with :math:`|A_u|` the advantage magnitude standing in for the gradient norm
:math:`G_u` (§5.2) and :math:`c_u` the rollout's token count (prompt plus
response). Phase 3 draws :math:`T = \lceil N/B \rceil` mini-batches of
:math:`B` rollouts with replacement and weights each drawn rollout by
:math:`1/(Np_u)` (Eq. 22), re-centred to mean 1 over the draws of the update
step (Appendix G.2).

The probabilities are computed by :mod:`costsgd.samplers` (which accepts torch
tensors) in float64 on the tensors' device.

The kernels the plan functions share (:func:`as_tensor`, :func:`probs_and_costs`,
:func:`draw_indices`, :func:`draw_weights`) and their one argument check
(:func:`check_plan_options`) are public here for :mod:`costsgd.torch.plan` and
:mod:`costsgd.torch.distributed`; the kernels skip validation and host
synchronisation, so they take inputs the public functions have checked.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import torch

from costsgd import samplers
from costsgd._numerics import optimal_weights
from costsgd._validate import check_alpha, check_positive_int, check_probabilities

__all__ = [
    "as_tensor",
    "check_generator",
    "check_plan_options",
    "cost_aware_probs",
    "draw_indices",
    "draw_weights",
    "importance_weights",
    "plan_num_batches",
    "probs_and_costs",
    "sample_minibatches",
]

PROXIES = ("advantage", "length")
NORMALIZATIONS = ("draws", "expected", "none")


def as_tensor(x: Any, name: str, device: torch.device | None = None) -> torch.Tensor:
    """``x`` as a detached real floating tensor (integers become float64; floats keep their dtype)."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x, device=device)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} must be a tensor of numbers, got {type(x).__name__}") from err
    if x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    x = x.detach()
    if not x.is_floating_point() or torch.finfo(x.dtype).bits < 32:
        return x.to(torch.float64)  # integers, and float16/bfloat16 at a safe precision
    return x


def _first_bad(x: torch.Tensor, bad: torch.Tensor) -> str:
    idx = torch.nonzero(bad.reshape(-1)).reshape(-1)[:5].tolist()
    vals = x.reshape(-1)[idx].tolist()
    return f"{int(bad.sum())} entries, e.g. flat indices {idx} = {vals}"


def sequence_advantages(advantages: Any, mask: Any = None) -> torch.Tensor:
    r"""Per-sequence advantage magnitudes :math:`|A_u|`, float64, shape ``(N,)``.

    Per-token advantages ``(N, T)`` are reduced to the mean of :math:`|A_{u,t}|`
    over the tokens where ``mask`` is true; under GRPO the advantage is
    broadcast over the response, so this is exactly :math:`|A_u|`. A row with
    no valid token gets 0.

    Raises:
      ValueError: non-finite advantages, a rank other than 1 or 2, or a mask
        whose shape differs from ``advantages``.
    """
    adv = as_tensor(advantages, "advantages")
    if adv.ndim == 0 or adv.shape[0] == 0:
        raise ValueError(f"advantages must hold at least one rollout, got shape {tuple(adv.shape)}")
    # One reduction is enough when all is well: any NaN/inf makes the sum non-finite
    # (the elementwise check then runs, also ruling out a mere overflow of the sum).
    if not bool(torch.isfinite(adv.sum())) and not bool(torch.isfinite(adv).all()):
        raise ValueError(f"advantages must be finite; {_first_bad(adv, ~torch.isfinite(adv))}")
    if adv.ndim == 1:
        if mask is not None:
            raise ValueError("mask is only meaningful with per-token advantages of shape (N, T)")
        return adv.abs().to(torch.float64)
    if adv.ndim != 2:
        raise ValueError(f"advantages must have shape (N,) or (N, T), got {tuple(adv.shape)}")
    if mask is None:
        return adv.abs().to(torch.float64).mean(dim=1)
    m = torch.as_tensor(mask, device=adv.device)
    if tuple(m.shape) != tuple(adv.shape):
        raise ValueError(f"mask has shape {tuple(m.shape)}, advantages {tuple(adv.shape)}")
    m = m.to(adv.dtype)
    # Row sums in the input dtype (at most T terms), then float64 for the division.
    count = m.sum(dim=1).to(torch.float64)
    total = (adv.abs() * m).sum(dim=1).to(torch.float64)
    return torch.where(count > 0, total / count.clamp(min=1.0), torch.zeros_like(total))


def check_lengths(lengths: Any, n: int, device: torch.device) -> torch.Tensor:
    """Validate rollout costs: shape ``(n,)``, finite, strictly positive; float64."""
    c = as_tensor(lengths, "lengths", device).to(device=device, dtype=torch.float64)
    if c.ndim != 1 or c.shape[0] != n:
        raise ValueError(f"lengths must have shape ({n},), got {tuple(c.shape)}")
    bad = ~torch.isfinite(c) | (c <= 0)
    if bool(bad.any()):
        raise ValueError(f"lengths must be finite and > 0 (token counts); {_first_bad(c, bad)}")
    return c


def cost_aware_probs(
    advantages: Any,
    lengths: Any,
    *,
    alpha: float = 0.0,
    mask: Any = None,
    proxy: str = "advantage",
    sigma2: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The sampling distribution of Algorithm 2 over a rollout pool.

    .. math:: p_u = (1-\alpha)\,\frac{|A_u|/\sqrt{c_u}}{\sum_v |A_v|/\sqrt{c_v}} + \frac{\alpha}{N}

    the proxy form of Theorem 4.1's :math:`p^*` (§5.2) smoothed as in §5.3.

    Degenerate pools (documented behaviour):

    * a rollout with :math:`A_u = 0` gets :math:`p_u = 0` unless ``alpha > 0``
      (it carries no policy-gradient signal);
    * if **every** advantage is zero the step has no signal; the distribution
      is then uniform, so the draws are ordinary uniform mini-batches with
      importance weight exactly 1 and the loop keeps its usual number of
      micro-steps (on every rank, which distributed training needs).

    Args:
      advantages: ``(N,)`` per-sequence or ``(N, T)`` per-token advantages.
      lengths: ``(N,)`` rollout costs :math:`c_u > 0` (prompt + response tokens).
      alpha: smoothing weight in ``[0, 1]``.
      mask: ``(N, T)`` response mask for per-token advantages (see
        :func:`sequence_advantages`).
      proxy: ``"advantage"`` (:math:`|A_u|/\sqrt{c_u}`) or ``"length"`` (the
        length-only ablation :math:`p^*_{\mathrm{LEN}} \propto 1/\sqrt{c_u}` of
        Appendix G.6, which ignores the advantages except for validation).
      sigma2: noise variance of the noisy-proxy ablation (§5.5): the proxy is
        :math:`|A_u| + \sigma\xi_u`, clipped at 0 (:func:`costsgd.noisy_proxy`).
      generator: ``torch.Generator`` for the noise draws (``sigma2 > 0``).

    Returns:
      float64 tensor of shape ``(N,)`` on the device of ``advantages``.

    Raises:
      ValueError: non-finite advantages, non-positive or non-finite lengths,
        mismatched shapes, ``alpha`` outside ``[0, 1]``, unknown ``proxy``.

    Examples:
      >>> import torch
      >>> from costsgd.torch import cost_aware_probs
      >>> p = cost_aware_probs(torch.tensor([1.0, -1.0, 0.0]), torch.tensor([1.0, 4.0, 1.0]))
      >>> [round(v, 4) for v in p.tolist()]
      [0.6667, 0.3333, 0.0]
      >>> cost_aware_probs(torch.zeros(4), torch.ones(4)).tolist()  # no signal: uniform
      [0.25, 0.25, 0.25, 0.25]
    """
    return probs_and_costs(advantages, lengths, alpha, mask, proxy, sigma2, generator)[0]


def check_generator(generator: Any, device: torch.device) -> None:
    """``generator`` is ``None`` or a ``torch.Generator`` on ``device``'s type.

    Raises:
      TypeError: naming ``generator`` when it is not a ``torch.Generator``.
      ValueError: when it lives on another device.
    """
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator.device.type != device.type:
        raise ValueError(
            f"generator is on {generator.device}, the data on {device}: use one device"
        )


def check_plan_options(batch_size: Any, normalize: str) -> int:
    """The argument check every plan function shares: ``normalize`` and ``batch_size``.

    Returns:
      ``batch_size`` as an int.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    return check_positive_int(batch_size, "batch_size")


def plan_num_batches(num_batches: Any, n: int, draws_per_batch: int) -> int:
    """``num_batches``, by default as many as one uniform pass over ``n`` rollouts."""
    if num_batches is None:
        num_batches = math.ceil(n / draws_per_batch)
    return check_positive_int(num_batches, "num_batches")


def probs_and_costs(advantages, lengths, alpha, mask, proxy, sigma2, generator):
    """:func:`cost_aware_probs` and the validated float64 costs, with few host syncs."""
    alpha = check_alpha(alpha)
    if proxy not in PROXIES:
        raise ValueError(f"proxy must be one of {PROXIES}, got {proxy!r}")
    G = sequence_advantages(advantages, mask)
    check_generator(generator, G.device)
    c = check_lengths(lengths, G.shape[0], G.device)
    if proxy == "length":
        p = samplers.length_only(None, c)
    elif not bool((G > 0).any()):
        p = torch.full_like(G, 1.0 / G.shape[0])
    elif sigma2:
        noise = torch.randn(G.shape, generator=generator, dtype=G.dtype, device=G.device)
        p = samplers.noisy_proxy(G, c, sigma2, noise=noise)
    else:  # G and c are validated above: the samplers' kernel, without re-checking
        w = optimal_weights(G, c, array_api_compat.array_namespace(G))
        p = w / w.sum()
    return ((1.0 - alpha) * p + alpha / p.shape[0] if alpha > 0 else p), c


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
    num_batches = plan_num_batches(num_batches, p.shape[0], batch_size)
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


def draw_weights(p: torch.Tensor, idx: torch.Tensor, normalize: str, dtype) -> torch.Tensor:
    """The weights of :func:`importance_weights` for validated draws (no host sync).

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
