"""Rows in, one pool per step out: the part every reader shares.

Readers hand over validated chunks of rows (:class:`Rows`); :func:`pools`
cuts them into steps, checks that a step's rows are contiguous and that no
group spans two steps, turns rewards into advantages
(:func:`~costsgd.audit.pool.group_advantages`) and yields one
:class:`~costsgd.audit.pool.Pool` per step. Only the current step is held in
memory, plus one entry per group seen (for the mixed-steps check).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import NamedTuple

import numpy as np

from costsgd.audit._errors import AuditInputError
from costsgd.audit.pool import Pool, group_advantages

__all__ = ["Rows", "pools"]


class Rows(NamedTuple):
    """A chunk of validated rows from one file.

    Attributes:
      path: the file.
      lines: 1-based line (or row) numbers, int64 ``(n,)``.
      step: int64 ``(n,)``.
      group: group ids (``str`` or ``int``), a list of length ``n``.
      value: the advantage or reward column, float64 ``(n,)``, finite.
      prompt_tokens: float64 ``(n,)``, finite, ``>= 0``.
      completion_tokens: float64 ``(n,)``, finite, ``>= 0``, prompt + completion ``> 0``.
      truncated: bool ``(n,)`` or ``None``.
      unit: ``"line"`` or ``"row"`` (how :attr:`lines` count).
    """

    path: str
    lines: np.ndarray
    step: np.ndarray
    group: list
    value: np.ndarray
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray
    truncated: np.ndarray | None
    unit: str = "line"


class _Step(NamedTuple):
    """The rows of the step being assembled."""

    step: int
    parts: list[Rows]


def _error(rows: Rows, i: int, column: str | None, what: str) -> AuditInputError:
    return AuditInputError(rows.path, int(rows.lines[i]), column, what, unit=rows.unit)


def pools(chunks: Iterable[Rows], *, value: str, normalization: str = "group") -> Iterator[Pool]:
    """One :class:`~costsgd.audit.pool.Pool` per step of ``chunks`` (a stream, read once).

    Args:
      chunks: validated rows in file order.
      value: ``"advantage"`` (the value column is the advantage) or ``"reward"``
        (advantages by ``normalization`` within each step's groups).
      normalization: see :data:`~costsgd.audit.pool.NORMALIZATIONS`.

    Raises:
      AuditInputError: a step whose rows are not contiguous (it reappears after
        another step began), or a group id in two steps; located at the
        offending row.
    """
    seen_groups: dict = {}  # group id -> its step
    done: set[int] = set()
    current: _Step | None = None
    for rows in chunks:
        n = rows.step.size
        if n == 0:
            continue
        cuts = np.flatnonzero(np.diff(rows.step)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [n]))
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            step = int(rows.step[a])
            part = Rows(*(_slice(x, a, b) for x in rows))
            if current is not None and step == current.step:
                current.parts.append(part)
                continue
            if step in done:
                raise _error(
                    rows,
                    a,
                    "step",
                    f"step {step} reappears after other steps: the rows of one step must be "
                    "contiguous (sort the file by step)",
                )
            if current is not None:
                yield _pool(current, seen_groups, value, normalization)
                done.add(current.step)
            current = _Step(step, [part])
    if current is not None:
        yield _pool(current, seen_groups, value, normalization)


def _slice(x, a: int, b: int):
    if x is None or isinstance(x, str):
        return x
    return x[a:b]


def _pool(current: _Step, seen: dict, value: str, normalization: str) -> Pool:
    parts = current.parts
    groups = list(chain.from_iterable(p.group for p in parts))
    unique = dict.fromkeys(groups, current.step)
    if any(g in seen for g in unique):
        for p in parts:
            for i, g in enumerate(p.group):
                if g in seen:
                    raise _error(
                        p,
                        i,
                        "group",
                        f"group {g!r} is in step {current.step} and in step {seen[g]}: a "
                        "group's rollouts belong to one step; give each step's groups their own ids",
                    )
    seen.update(unique)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    masked = None
    if any(p.truncated is not None for p in parts):
        masked = np.concatenate(
            [np.zeros(p.step.size, bool) if p.truncated is None else p.truncated for p in parts]
        )
    values = cat("value")
    if value == "reward":
        code = {g: i for i, g in enumerate(unique)}
        codes = np.fromiter((code[g] for g in groups), dtype=np.int64, count=len(groups))
        advantages = group_advantages(values, codes, normalization)
    else:
        advantages = values
    return Pool(
        step=current.step,
        advantages=advantages,
        prompt_tokens=cat("prompt_tokens"),
        completion_tokens=cat("completion_tokens"),
        masked=masked,
    )
