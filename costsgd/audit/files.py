"""Files and folders in, pools out: :func:`read_pools` and :func:`audit_files`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from costsgd.audit._errors import AuditInputError
from costsgd.audit._generic import SUFFIXES, read_rows
from costsgd.audit._stream import pools
from costsgd.audit.pool import NORMALIZATIONS, Pool
from costsgd.audit.summary import Audit, batches

__all__ = ["FORMATS", "PoolSource", "audit_files", "read_pools"]

#: Input formats: the documented generic one and verl's rollout dumps.
FORMATS = ("generic", "verl")


def _natural(path: Path) -> list:
    """Sort key: ``9.jsonl`` before ``10.jsonl``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def expand(paths: Sequence[str | Path], suffixes: Sequence[str]) -> tuple[list[str], list[str]]:
    """Files of ``paths`` in order (a folder: its files with ``suffixes``, in natural order).

    Returns:
      ``(files, skipped)``: the files to read and a folder's other files (reported, not read).
    """
    if not paths:
        raise ValueError("paths is empty: give at least one file or folder")
    files, skipped = [], []
    for p in map(Path, paths):
        if p.is_dir():
            inside = sorted((q for q in p.iterdir() if q.is_file()), key=_natural)
            take = [q for q in inside if q.suffix.lower() in suffixes]
            if not take:
                raise AuditInputError(
                    str(p), None, None, f"a folder without {', '.join(suffixes)} files"
                )
            files += [str(q) for q in take]
            skipped += [str(q) for q in inside if q.suffix.lower() not in suffixes]
        elif p.is_file():
            files.append(str(p))
        else:
            raise AuditInputError(str(p), None, None, "no such file or folder")
    return files, skipped


class PoolSource:
    """The pools of a set of rollout files, one per step, read lazily and once.

    Attributes (complete once iteration has finished):
      files: ``{path: rows read}`` for every file read.
      skipped: other files found in the given folders (not read).
      excluded: ``{reason: rows}`` left out on purpose (blank lines, verl's padding rows).
      value: ``"advantage"`` or ``"reward"``: the column the advantages come from.
      reward_normalization: the normalisation applied (``None`` when advantages are given).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        format: str = "generic",
        tokenizer: Any = None,
        reward_normalization: str | None = None,
    ):
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
        if reward_normalization is not None and reward_normalization not in NORMALIZATIONS:
            raise ValueError(
                f"reward_normalization must be one of {NORMALIZATIONS}, got {reward_normalization!r}"
            )
        self.format = format
        self.files: dict[str, int] = {}
        self.excluded: dict[str, int] = {}
        suffixes = tuple(SUFFIXES) if format == "generic" else (".jsonl",)
        self._paths, self.skipped = expand(paths, suffixes)
        if format == "verl":
            from costsgd.audit._verl import read_verl_rows

            self.value, self._chunks = (
                "reward",
                read_verl_rows(self._paths, tokenizer, self.excluded, self.files),
            )
        else:
            if tokenizer is not None:
                raise ValueError(
                    "tokenizer applies to format='verl' only (the generic format has token counts)"
                )
            self.value, self._chunks = read_rows(self._paths, self.excluded, self.files)
        if self.value == "advantage" and reward_normalization is not None:
            first = next(p for p, n in self.files.items() if n)
            raise AuditInputError(
                first,
                None,
                "advantage",
                "the files give advantages: reward_normalization (--reward-normalization) "
                "applies only to rewards",
            )
        self.reward_normalization = (
            (reward_normalization or "group") if self.value == "reward" else None
        )

    def __iter__(self) -> Iterator[Pool]:
        if self.value is None:
            return iter(())
        return pools(
            self._chunks, value=self.value, normalization=self.reward_normalization or "group"
        )


def read_pools(paths: Sequence[str | Path], **options: Any) -> PoolSource:
    """The pools of rollout files or folders (``options``: see :class:`PoolSource`).

    Examples:
      >>> import json, tempfile, pathlib
      >>> f = pathlib.Path(tempfile.mkdtemp()) / "rollouts.jsonl"
      >>> rows = [{"step": 0, "group": "a", "reward": r, "prompt_tokens": 10,
      ...          "completion_tokens": n} for r, n in [(1, 20), (0, 90)]]
      >>> _ = f.write_text("".join(json.dumps(r) + "\\n" for r in rows))
      >>> [p.advantages.round(3).tolist() for p in read_pools([f])]
      [[0.707, -0.707]]
    """
    return PoolSource(paths, **options)


def audit_files(
    paths: Sequence[str | Path],
    *,
    format: str = "generic",
    tokenizer: Any = None,
    reward_normalization: str | None = None,
    noise_scale: float | None = None,
    minibatch_size: int | None = None,
) -> dict[str, Any]:
    """The whole audit of rollout files: what ``costsgd audit`` writes to ``audit.json``.

    Returns:
      ``{"inputs", "skipped_files", "format", "advantages_from", "reward_normalization",
      "excluded", "steps", "summary"}`` (every key: docs/audit.md).

    Raises:
      AuditInputError: bad input, naming the file, line and column.
      ValueError: bad options, or no rollouts at all.
    """
    source = read_pools(
        paths, format=format, tokenizer=tokenizer, reward_normalization=reward_normalization
    )
    run = Audit(noise_scale=noise_scale, minibatch_size=minibatch_size)
    for batch in batches(source):
        run.add_many(batch)
    if not run.steps:
        raise AuditInputError(
            ", ".join(source.files) or ", ".join(map(str, paths)),
            None,
            None,
            "no rollouts: every file is empty",
        )
    body = run.result()
    return {
        "inputs": [{"path": p, "rows": n} for p, n in source.files.items()],
        "skipped_files": source.skipped,
        "format": source.format,
        "advantages_from": source.value,
        "reward_normalization": source.reward_normalization,
        "excluded": dict(source.excluded),
        **body,
    }
