"""Pools out in the generic format (JSONL), for trainers that log them (TRL shadow mode, studies)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

__all__ = ["write_pool_jsonl"]


def write_pool_jsonl(
    fh: IO[str],
    step: int,
    groups: Sequence[Any],
    advantages: Any,
    prompt_tokens: Any,
    completion_tokens: Any,
    truncated: Any = None,
    **extra: Any,
) -> int:
    """Append one pool to an open text file as generic-format JSONL rows; returns the rows written.

    ``extra`` holds scalar columns written on every row (ignored by the audit).

    Examples:
      >>> import io
      >>> fh = io.StringIO()
      >>> write_pool_jsonl(fh, 3, ["g0", "g0"], [0.5, -0.5], [4, 4], [10, 2], [False, True])
      2
      >>> fh.getvalue().splitlines()[1]
      '{"step": 3, "group": "g0", "advantage": -0.5, "prompt_tokens": 4, "completion_tokens": 2, "truncated": true}'
    """
    A = np.asarray(advantages, dtype=np.float64).tolist()
    P = np.asarray(prompt_tokens).tolist()
    C = np.asarray(completion_tokens).tolist()
    T = [False] * len(A) if truncated is None else np.asarray(truncated, dtype=bool).tolist()
    if not (len(groups) == len(A) == len(P) == len(C) == len(T)):
        raise ValueError(
            "groups, advantages, prompt_tokens, completion_tokens, truncated: one length"
        )
    fh.writelines(
        json.dumps(
            {
                "step": int(step),
                "group": g,
                "advantage": a,
                "prompt_tokens": p,
                "completion_tokens": c,
                "truncated": t,
                **extra,
            }
        )
        + "\n"
        for g, a, p, c, t in zip(groups, A, P, C, T, strict=True)
    )
    return len(A)
