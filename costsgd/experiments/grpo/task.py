r"""A synthetic sorting task with a verifiable 0/1 reward (the mini study's "math").

A prompt is ``[BOS, x_1, ..., x_L, SEP]`` with ``L`` symbols drawn uniformly
from an alphabet of ``num_symbols``; the correct response is the symbols in
sorted order followed by ``EOS``. The reward is 1 when the response (up to and
including its first ``EOS``) equals that exactly, and 0 otherwise, as with the
verifiable math rewards of §5.2.

``L`` is drawn uniformly from ``[min_len, max_len]``, so prompts
(``L + 2`` tokens) and correct responses (``L + 1`` tokens) vary in length
within every batch (3 to 15 response tokens, a factor of 5, with the
defaults), and long prompts are harder: every response token must be right.
That is the regime of §5.2 where the per-rollout cost :math:`c_u` (prompt
plus response tokens) varies and cost-aware sampling has something to save.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "SEP",
    "Prompts",
    "SortTask",
    "references",
    "rewards",
    "sample_prompts",
]

PAD, BOS, SEP, EOS = 0, 1, 2, 3
_FIRST_SYMBOL = 4


class SortTask(NamedTuple):
    """Sizes of the sorting task.

    Attributes:
      num_symbols: alphabet size (symbols are token ids ``4 .. 3 + num_symbols``).
      min_len, max_len: range of the number ``L`` of symbols in a prompt.
    """

    num_symbols: int = 4
    min_len: int = 2
    max_len: int = 14

    @property
    def vocab_size(self) -> int:
        """PAD, BOS, SEP, EOS and the symbols."""
        return _FIRST_SYMBOL + self.num_symbols

    @property
    def max_prompt_len(self) -> int:
        return self.max_len + 2

    @property
    def max_response_len(self) -> int:
        """Generation cap: two tokens past the longest correct response."""
        return self.max_len + 3

    def validate(self) -> SortTask:
        if not (isinstance(self.num_symbols, int) and self.num_symbols >= 2):
            raise ValueError(f"num_symbols must be an int >= 2, got {self.num_symbols!r}")
        if not (isinstance(self.min_len, int) and self.min_len >= 1):
            raise ValueError(f"min_len must be an int >= 1, got {self.min_len!r}")
        if not (isinstance(self.max_len, int) and self.max_len >= self.min_len):
            raise ValueError(f"max_len must be an int >= min_len, got {self.max_len!r}")
        return self


class Prompts(NamedTuple):
    """A batch of prompts, right-padded with ``PAD``.

    Attributes:
      tokens: ``LongTensor[n, max_len + 2]``.
      lengths: ``LongTensor[n]``, prompt lengths ``L + 2``.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor


def sample_prompts(task: SortTask, n: int, generator: torch.Generator) -> Prompts:
    """Draw ``n`` prompts.

    Examples:
      >>> import torch
      >>> p = sample_prompts(SortTask(), 3, torch.Generator().manual_seed(0))
      >>> p.tokens.shape, bool((p.tokens[:, 0] == BOS).all())
      (torch.Size([3, 16]), True)
    """
    task.validate()
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    L = torch.randint(task.min_len, task.max_len + 1, (n,), generator=generator)
    symbols = torch.randint(
        _FIRST_SYMBOL, _FIRST_SYMBOL + task.num_symbols, (n, task.max_len), generator=generator
    )
    pos = torch.arange(task.max_len)
    body = torch.where(pos < L[:, None], symbols, PAD)
    tokens = torch.full((n, task.max_prompt_len), PAD, dtype=torch.long)
    tokens[:, 0] = BOS
    tokens[:, 1 : task.max_len + 1] = body
    tokens[torch.arange(n), L + 1] = SEP
    return Prompts(tokens, L + 2)


def references(task: SortTask, prompts: Prompts) -> torch.Tensor:
    """Correct responses, ``LongTensor[n, max_response_len]`` right-padded with ``PAD``.

    Examples:
      >>> import torch
      >>> p = Prompts(torch.tensor([[BOS, 6, 4, 5, SEP] + [PAD] * 11]), torch.tensor([5]))
      >>> references(SortTask(), p)[0, :5].tolist()
      [4, 5, 6, 3, 0]
    """
    n = prompts.tokens.shape[0]
    L = prompts.lengths - 2
    body = prompts.tokens[:, 1 : task.max_len + 1]
    body = torch.where(torch.arange(task.max_len) < L[:, None], body, PAD)
    # PAD (0) sorts first: move it to the end by sorting with PAD mapped above every symbol.
    big = task.vocab_size
    ordered = torch.sort(torch.where(body == PAD, big, body), dim=1).values
    ordered = torch.where(ordered == big, PAD, ordered)
    out = torch.full((n, task.max_response_len), PAD, dtype=torch.long)
    out[:, : task.max_len] = ordered
    out[torch.arange(n), L] = EOS
    return out


def rewards(task: SortTask, prompts: Prompts, responses: torch.Tensor) -> torch.Tensor:
    """Verifiable 0/1 rewards: 1 where ``responses`` equals :func:`references` exactly.

    ``responses`` is ``LongTensor[n, max_response_len]`` with ``PAD`` after the
    first ``EOS`` (as :func:`costsgd.experiments.grpo.policy.generate` returns).

    Examples:
      >>> import torch
      >>> task = SortTask()
      >>> p = sample_prompts(task, 4, torch.Generator().manual_seed(1))
      >>> rewards(task, p, references(task, p)).tolist()
      [1.0, 1.0, 1.0, 1.0]
    """
    if responses.shape != (prompts.tokens.shape[0], task.max_response_len):
        raise ValueError(
            f"responses must have shape {(prompts.tokens.shape[0], task.max_response_len)}, "
            f"got {tuple(responses.shape)}"
        )
    return (responses == references(task, prompts)).all(dim=1).to(torch.float32)
