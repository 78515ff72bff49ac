r"""Rollout-pool inputs on torch tensors: conversion and checks shared by the adapter.

Algorithm 2 reads two numbers per rollout :math:`u` of the pool: the advantage
magnitude :math:`|A_u|`, the proxy for the gradient norm :math:`G_u` (§5.2), and
the cost :math:`c_u` (prompt plus response tokens). These functions turn what a
trainer holds (per-sequence or per-token advantages, a response mask, token
counts) into validated float64 tensors on the data's device, with as few host
synchronisations as a check allows.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "as_tensor",
    "check_generator",
    "check_lengths",
    "pool_inputs",
    "sequence_advantages",
]


def as_tensor(x: Any, name: str, device: torch.device | None = None) -> torch.Tensor:
    """``x`` as a detached real floating tensor (integers become float64; floats keep their dtype).

    Raises:
      ValueError: naming ``name`` when ``x`` is not numeric, complex or boolean.
    """
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

    Examples:
      >>> import torch
      >>> sequence_advantages(torch.tensor([[0.5, 0.5, 9.0], [-2.0, -2.0, -2.0]]),
      ...                     mask=torch.tensor([[1, 1, 0], [1, 1, 1]])).tolist()
      [0.5, 2.0]
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
    """Validate rollout costs: shape ``(n,)``, finite, strictly positive; float64 on ``device``.

    Raises:
      ValueError: naming ``lengths`` and the first bad entries.
    """
    c = as_tensor(lengths, "lengths", device).to(device=device, dtype=torch.float64)
    if c.ndim != 1 or c.shape[0] != n:
        raise ValueError(f"lengths must have shape ({n},), got {tuple(c.shape)}")
    bad = ~torch.isfinite(c) | (c <= 0)
    if bool(bad.any()):
        raise ValueError(f"lengths must be finite and > 0 (token counts); {_first_bad(c, bad)}")
    return c


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


def pool_inputs(
    advantages: Any, lengths: Any, mask: Any, generator: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """The checked float64 :math:`(|A_u|, c_u)` of a pool (``generator`` checked against its device)."""
    G = sequence_advantages(advantages, mask)
    check_generator(generator, G.device)
    return G, check_lengths(lengths, G.shape[0], G.device)
