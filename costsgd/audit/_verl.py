"""verl's rollout dumps: ``trainer.rollout_data_dir``'s ``{step}.jsonl`` files.

verl 0.9.1's ``_write_generations`` (``RayPPOTrainer`` and the v1 trainer)
writes one object per rollout with ``input``, ``output``, ``gts``, ``score``,
``step``, and on the v1 trainer ``uid`` = ``{prompt uid}_{session}_{output}``
(``agent_loop_tq``), text only. Token counts come from the user's tokenizer;
groups from the prompt uid (or, without ``uid``, the ``input`` text within the
step); the
v1 trainer's synthetic padding rows (``uid`` ``pad<32 hex>_{i}_0``,
``padding_utils.upsample_batch_to_divisible_size``) are excluded and counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from costsgd.audit._errors import AuditInputError
from costsgd.audit._generic import (
    Located,
    finish_rows,
    json_column,
    json_numbers,
    json_typed,
    parse_json_lines,
)
from costsgd.audit._stream import Rows

__all__ = ["PADDING", "read_verl_rows", "token_counts"]

#: The uid of a row verl's v1 trainer adds to pad a batch (not a rollout).
PADDING = re.compile(r"pad[0-9a-f]{32}_\d+_\d+")
_KEY = re.compile(r"(.+)_(\d+)_(\d+)")
_CHUNK_BYTES = 1 << 22


def token_counts(tokenizer: Any, texts: list[str]) -> np.ndarray:
    """Tokens of each text under a Hugging Face tokenizer, without special tokens added."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return np.fromiter(map(len, ids), dtype=np.float64, count=len(texts))


def read_verl_rows(
    paths: Sequence[str], tokenizer: Any, excluded: dict[str, int], rows_per_file: dict[str, int]
) -> Iterator[Rows]:
    """Validated chunks of verl dump files (the value column is ``score``, a reward).

    Args:
      paths: ``{step}.jsonl`` files, in order.
      tokenizer: a Hugging Face tokenizer (callable on a list of texts, returning ``input_ids``).
      excluded: filled with ``{"verl padding": rows}``.
      rows_per_file: filled with the rollouts read from each file.
    """
    if tokenizer is None:
        raise ValueError(
            "format='verl' needs a tokenizer: verl's dumps hold text, not token counts"
        )
    return _chunks(list(paths), tokenizer, excluded, rows_per_file)


def _chunks(paths, tokenizer, excluded, rows_per_file) -> Iterator[Rows]:
    for path in paths:
        rows_per_file[path] = 0
        start, has_uid = 1, None
        with open(path, encoding="utf-8") as fh:
            while lines := _lines(fh, path):
                where = Located(path, np.arange(start, start + len(lines)))
                start += len(lines)
                rows, kept = parse_json_lines(lines, where, excluded)
                if not rows:
                    continue
                where = Located(path, kept)
                if has_uid is None:
                    has_uid = "uid" in rows[0]
                chunk = _chunk(rows, where, has_uid, tokenizer, excluded)
                if chunk is not None:
                    rows_per_file[path] += chunk.step.size
                    yield chunk


def _lines(fh, path: str) -> list[str]:
    try:
        return fh.readlines(_CHUNK_BYTES)
    except UnicodeDecodeError as err:
        raise AuditInputError(path, None, None, f"not UTF-8 text ({err.reason})") from None


def _chunk(rows: list, where: Located, has_uid: bool, tokenizer, excluded: dict) -> Rows | None:
    inputs = json_typed(json_column(rows, "input", where), "input", where, (str,), "a string")
    outputs = json_typed(json_column(rows, "output", where), "output", where, (str,), "a string")
    cols: dict[str, Any] = {
        "step": json_numbers(json_column(rows, "step", where), "step", where, integer=True),
        "reward": json_numbers(json_column(rows, "score", where), "score", where),
    }
    if has_uid:
        uids = json_typed(json_column(rows, "uid", where), "uid", where, (str,), "a string")
        keep = np.array([PADDING.fullmatch(u) is None for u in uids], dtype=bool)
        groups = []
        for i, u in enumerate(uids):
            m = _KEY.fullmatch(u)
            if m is None:
                raise where(i, "uid", f"{u!r} is not verl's '{{uid}}_{{session}}_{{index}}'")
            groups.append(m.group(1))
    else:
        if any("uid" in r for r in rows):
            i = next(i for i, r in enumerate(rows) if "uid" in r)
            raise where(i, "uid", "present here but not in the file's first row")
        keep = np.ones(len(rows), dtype=bool)
        # a prompt recurs in later epochs: its group is scoped to the step
        groups = [f"step {s}: {t}" for s, t in zip(cols["step"].tolist(), inputs, strict=True)]
    padding = int((~keep).sum())
    if padding:
        excluded["verl padding"] = excluded.get("verl padding", 0) + padding
        idx = np.flatnonzero(keep)
        inputs, outputs, groups = ([x[i] for i in idx] for x in (inputs, outputs, groups))
        cols = {k: v[keep] for k, v in cols.items()}
        where = Located(where.path, where.lines[keep])
        if not idx.size:
            return None
    cols["group"] = groups
    cols["prompt_tokens"] = token_counts(tokenizer, inputs)
    cols["completion_tokens"] = token_counts(tokenizer, outputs)
    try:
        return finish_rows(where, cols, "reward")
    except AuditInputError as err:
        if err.column == "completion_tokens" and "is 0" in str(err):
            raise AuditInputError(
                err.path, err.line, "output", "input and output have no tokens: a rollout costs > 0"
            ) from None
        raise
