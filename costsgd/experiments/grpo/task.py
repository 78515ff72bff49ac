r"""Synthetic tasks with verifiable 0/1 rewards (the mini study's "math").

Two tasks share one layout: a prompt ``[BOS, ..., SEP]``, a response of
symbols ended by ``EOS``, reward 1 when the response (up to and including its
first ``EOS``) equals the reference exactly, 0 otherwise, as with the
verifiable math rewards of §5.2.

* :class:`WalkTask` (the default, the "modular walk"): a prompt ``x0 b``;
  the reference is the walk :math:`x_i = (x_0 + i\,b) \bmod m` up to and
  including the first :math:`x_k = 0`, then ``EOS``. The *policy* chooses the
  response length (it decides when it has reached 0), a generation cap
  truncates runaway responses, every token must be right so long walks are
  harder, and the walk length :math:`k` is drawn from a difficulty mix. The
  per-rollout cost :math:`c_u` (prompt + response tokens) then spans more than
  10x within a batch, and long, all-failing groups (zero advantage, high cost)
  persist: the regime of §5.2 where :math:`p^* \propto |A|/\sqrt{c}` saves
  tokens.
* :class:`SortTask`: sort ``L`` symbols; the response length is fixed by the
  prompt (``L + 1``), so costs span only about 5x.

:func:`sample_prompts`, :func:`references` and :func:`rewards` accept either task.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "SEP",
    "TASKS",
    "Prompts",
    "SortTask",
    "Task",
    "WalkTask",
    "reference_lengths",
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


class WalkTask(NamedTuple):
    r"""Sizes of the modular-walk task (the study's default).

    A prompt is ``[BOS, x0, b, SEP]`` (4 tokens); the reference response is
    :math:`x_1, \dots, x_k, \mathrm{EOS}` with :math:`x_i = (x_0 + i\,b) \bmod m`
    and :math:`k` the first step with :math:`x_k = 0` (``k + 1`` tokens). With
    :math:`m` prime and :math:`b \ne 0`, every :math:`k \in [1, m-1]` occurs:
    prompts are drawn by choosing :math:`k` and :math:`b \ne 0`, then
    :math:`x_0 = -k\,b \bmod m`.

    Attributes:
      modulus: :math:`m`, a prime (symbols are token ids ``4 .. 3 + m`` for ``0 .. m-1``).
      max_stride: :math:`b` is uniform on ``[1, max_stride]``.
      min_steps, max_steps: :math:`k` is uniform on ``[min_steps, max_steps]``...
      unsolvable_fraction: ...except for this fraction of prompts, whose
        :math:`k` is uniform on ``[max_response_len, modulus - 1]``: walks that
        do not fit under the cap (the difficulty mix; 0 = none).
      max_response_len: generation cap; a longer response is truncated there
        (reward 0). A walk with ``k + 1 > max_response_len`` cannot be solved:
        its groups always fail, typically at the cap's cost (the long failing
        groups that stay in every batch).
    """

    modulus: int = 61
    max_stride: int = 60
    min_steps: int = 1
    max_steps: int = 60
    max_response_len: int = 72
    unsolvable_fraction: float = 0.0

    @property
    def vocab_size(self) -> int:
        """PAD, BOS, SEP, EOS and the ``modulus`` residues."""
        return _FIRST_SYMBOL + self.modulus

    @property
    def max_prompt_len(self) -> int:
        return 4

    def validate(self) -> WalkTask:
        m = self.modulus
        if not (isinstance(m, int) and m >= 3 and all(m % d for d in range(2, int(m**0.5) + 1))):
            raise ValueError(f"modulus must be a prime int >= 3, got {m!r}")
        if not (isinstance(self.min_steps, int) and self.min_steps >= 1):
            raise ValueError(f"min_steps must be an int >= 1, got {self.min_steps!r}")
        if not (isinstance(self.max_steps, int) and self.min_steps <= self.max_steps < m):
            raise ValueError(
                f"max_steps must be an int in [min_steps, modulus - 1], got {self.max_steps!r}"
            )
        if not (isinstance(self.max_stride, int) and 1 <= self.max_stride < m):
            raise ValueError(
                f"max_stride must be an int in [1, modulus - 1], got {self.max_stride!r}"
            )
        if not (isinstance(self.max_response_len, int) and self.max_response_len >= 2):
            raise ValueError(f"max_response_len must be an int >= 2, got {self.max_response_len!r}")
        if not 0.0 <= self.unsolvable_fraction <= 1.0:
            raise ValueError(
                f"unsolvable_fraction must lie in [0, 1], got {self.unsolvable_fraction!r}"
            )
        if self.unsolvable_fraction > 0 and self.max_response_len > m - 1:
            raise ValueError(
                "unsolvable_fraction > 0 needs max_response_len <= modulus - 1 "
                "(room for walks longer than the cap)"
            )
        return self


#: Tasks by the name the CLI's ``--task`` takes.
TASKS = {"walk": WalkTask, "sort": SortTask}

Task = SortTask | WalkTask


class Prompts(NamedTuple):
    """A batch of prompts, right-padded with ``PAD``.

    Attributes:
      tokens: ``LongTensor[n, max_len + 2]``.
      lengths: ``LongTensor[n]``, prompt lengths ``L + 2``.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor


def sample_prompts(task: Task, n: int, generator: torch.Generator) -> Prompts:
    """Draw ``n`` prompts of ``task``.

    Examples:
      >>> import torch
      >>> p = sample_prompts(SortTask(), 3, torch.Generator().manual_seed(0))
      >>> p.tokens.shape, bool((p.tokens[:, 0] == BOS).all())
      (torch.Size([3, 16]), True)
      >>> sample_prompts(WalkTask(), 2, torch.Generator().manual_seed(0)).tokens.shape
      torch.Size([2, 4])
    """
    task.validate()
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if isinstance(task, WalkTask):
        m = task.modulus
        k = torch.randint(task.min_steps, task.max_steps + 1, (n,), generator=generator)
        if task.unsolvable_fraction > 0:
            hard = torch.rand(n, generator=generator) < task.unsolvable_fraction
            long = torch.randint(task.max_response_len, m, (n,), generator=generator)
            k = torch.where(hard, long, k)
        b = torch.randint(1, task.max_stride + 1, (n,), generator=generator)
        x0 = (-k * b) % m
        tokens = torch.stack(
            [torch.full((n,), BOS), x0 + _FIRST_SYMBOL, b + _FIRST_SYMBOL, torch.full((n,), SEP)],
            dim=1,
        )
        return Prompts(tokens, torch.full((n,), 4, dtype=torch.long))
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


def references(task: Task, prompts: Prompts) -> torch.Tensor:
    """Correct responses, ``LongTensor[n, max_response_len]`` right-padded with ``PAD``.

    Examples:
      >>> import torch
      >>> p = Prompts(torch.tensor([[BOS, 6, 4, 5, SEP] + [PAD] * 11]), torch.tensor([5]))
      >>> references(SortTask(), p)[0, :5].tolist()
      [4, 5, 6, 3, 0]
      >>> walk = Prompts(torch.tensor([[BOS, 4 + 5, 4 + 3, SEP]]), torch.tensor([4]))
      >>> [t - 4 for t in references(WalkTask(modulus=7, max_steps=6), walk)[0, :3].tolist()]
      [1, 4, 0]
    """
    n = prompts.tokens.shape[0]
    if isinstance(task, WalkTask):
        return _walk_references(task, prompts)
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


def _walk_references(task: WalkTask, prompts: Prompts) -> torch.Tensor:
    # Laid out over modulus + 1 positions (every walk fits), then cut to the cap: a
    # reference longer than the cap has no EOS and no response of the policy can match it.
    m, n = task.modulus, prompts.tokens.shape[0]
    x0 = prompts.tokens[:, 1] - _FIRST_SYMBOL
    b = prompts.tokens[:, 2] - _FIRST_SYMBOL
    i = torch.arange(1, m + 1)
    walk = (x0[:, None] + i * b[:, None]) % m
    k = torch.argmax((walk == 0).to(torch.int8), dim=1)  # index of the first 0 (k - 1)
    out = torch.where(i[None, :] - 1 <= k[:, None], walk + _FIRST_SYMBOL, PAD)
    out[torch.arange(n), k + 1] = EOS
    R = task.max_response_len
    if R <= m:
        return out[:, :R]
    return torch.cat([out, torch.full((n, R - m), PAD, dtype=torch.long)], dim=1)


def reference_lengths(task: Task, prompts: Prompts) -> torch.Tensor:
    """Lengths of the :func:`references` (``EOS`` included), ``LongTensor[n]``.

    Examples:
      >>> import torch
      >>> p = Prompts(torch.tensor([[BOS, 6, 4, 5, SEP] + [PAD] * 11]), torch.tensor([5]))
      >>> reference_lengths(SortTask(), p).tolist()
      [4]
    """
    return (references(task, prompts) != PAD).sum(dim=1)


def rewards(task: Task, prompts: Prompts, responses: torch.Tensor) -> torch.Tensor:
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
    ref = references(task, prompts)
    solvable = (ref == EOS).any(dim=1)  # a walk longer than the cap cannot be answered
    return ((responses == ref).all(dim=1) & solvable).to(torch.float32)
