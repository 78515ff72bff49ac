"""The generic rollout format: JSONL, CSV or Parquet, one row per rollout.

Columns (docs/audit.md; extra columns are ignored):

==================== ======================================================
``step``             integer; the rows of one step form one pool and are contiguous
``group``            string or integer id of the prompt's group of rollouts, unique to its step
``advantage``        the advantage the trainer used (finite number), **or**
``reward``           the rollout's reward; advantages then come from the group normalisation
``prompt_tokens``    number >= 0
``completion_tokens`` number >= 0; prompt + completion tokens > 0
``truncated``        optional boolean (absent: false): the rollout's loss is masked out
==================== ======================================================

If both ``advantage`` and ``reward`` are present, ``advantage`` is used.
Every reader validates each value and raises
:class:`~costsgd.audit._errors.AuditInputError` at the first bad one, naming
the file, line (Parquet: row) and column. Blank JSONL lines are counted as
excluded rows, never an error and never silently dropped.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from costsgd.audit._errors import AuditInputError
from costsgd.audit._stream import Rows

__all__ = [
    "REQUIRED",
    "SUFFIXES",
    "Located",
    "finish_rows",
    "json_column",
    "json_numbers",
    "json_typed",
    "parse_json_lines",
    "read_rows",
    "value_column",
]

#: Columns every file needs, besides ``advantage`` or ``reward``.
REQUIRED = ("step", "group", "prompt_tokens", "completion_tokens")
#: File suffix -> format of the generic reader.
SUFFIXES = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_CHUNK_BYTES = 1 << 22
_CHUNK_ROWS = 1 << 16
_INT64 = 2**63


def value_column(path: str | Path, names: Sequence[str]) -> str:
    """``"advantage"`` or ``"reward"``, whichever the columns ``names`` offer (advantage first)."""
    for name in ("advantage", "reward"):
        if name in names:
            return name
    raise AuditInputError(
        str(path),
        None,
        None,
        "needs a column 'advantage' or 'reward' (found: " + ", ".join(map(repr, names)) + ")",
    )


class Located:
    """Turns a row index of a chunk into a located error."""

    def __init__(self, path: str, lines: np.ndarray, unit: str = "line"):
        self.path, self.lines, self.unit = path, lines, unit

    def __call__(self, i: int, column: str | None, what: str) -> AuditInputError:
        return AuditInputError(self.path, int(self.lines[i]), column, what, unit=self.unit)


def finish_rows(where: Located, cols: dict[str, Any], value: str) -> Rows:
    """Checks shared by every format, on numpy columns; returns the chunk."""
    for name in (value, "prompt_tokens", "completion_tokens"):
        x = cols[name]
        bad = ~np.isfinite(x)
        if bad.any():
            i = int(np.argmax(bad))
            raise where(i, name, f"{float(x[i]):g} is not finite")
    for name in ("prompt_tokens", "completion_tokens"):
        x = cols[name]
        if (x < 0).any():
            i = int(np.argmax(x < 0))
            raise where(i, name, f"{float(x[i]):g} is negative: a token count is >= 0")
    c = cols["prompt_tokens"] + cols["completion_tokens"]
    if (c <= 0).any():
        i = int(np.argmax(c <= 0))
        raise where(
            i, "completion_tokens", "prompt_tokens + completion_tokens is 0: a rollout costs > 0"
        )
    return Rows(
        path=where.path,
        lines=where.lines,
        step=cols["step"],
        group=cols["group"],
        value=cols[value],
        prompt_tokens=cols["prompt_tokens"],
        completion_tokens=cols["completion_tokens"],
        truncated=cols.get("truncated"),
        unit=where.unit,
    )


# ---- JSONL -------------------------------------------------------------------------


def json_column(rows: list, name: str, where: Located) -> list:
    try:
        return [r[name] for r in rows]
    except KeyError:
        pass
    for i, r in enumerate(rows):
        if name not in r:
            raise where(i, name, "missing")
    raise AssertionError("unreachable")


def json_typed(vals: list, name: str, where: Located, kinds: tuple, what: str) -> list:
    if not set(map(type, vals)) <= set(kinds):
        i = next(i for i, v in enumerate(vals) if type(v) not in kinds)
        raise where(i, name, f"{json.dumps(vals[i])} is not {what}")
    return vals


def json_numbers(vals: list, name: str, where: Located, integer: bool = False) -> np.ndarray:
    kinds = (int,) if integer else (int, float)
    json_typed(vals, name, where, kinds, "an integer" if integer else "a number")
    try:
        return np.array(vals, dtype=np.int64 if integer else np.float64)
    except OverflowError:
        i = next(i for i, v in enumerate(vals) if type(v) is int and abs(v) >= _INT64)
        raise where(i, name, f"{vals[i]} is out of range") from None


def parse_json_lines(lines: list[str], where: Located, excluded: dict) -> tuple[list, np.ndarray]:
    """The objects of ``lines`` and the line number of each; one call to ``json.loads`` if clean."""
    try:
        rows = json.loads("[" + ",".join(lines) + "]")
        if len(rows) == len(lines) and all(type(r) is dict for r in rows):
            return rows, where.lines
    except json.JSONDecodeError:
        pass
    rows, keep = [], []
    for i, line in enumerate(lines):
        if not line.strip():
            excluded["blank lines"] = excluded.get("blank lines", 0) + 1
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise where(i, None, f"not valid JSON ({err.msg} at column {err.colno})") from None
        if type(obj) is not dict:
            raise where(i, None, f"a JSON {type(obj).__name__}, not an object")
        rows.append(obj)
        keep.append(i)
    return rows, where.lines[keep]


def _jsonl(path: str, value: str | None, excluded: dict) -> Iterator[tuple[str, Rows]]:
    start = 1
    with open(path, encoding="utf-8") as fh:
        while True:
            lines = fh.readlines(_CHUNK_BYTES)
            if not lines:
                return
            where = Located(path, np.arange(start, start + len(lines)))
            start += len(lines)
            rows, kept = parse_json_lines(lines, where, excluded)
            if not rows:
                continue
            where = Located(path, kept)
            if value is None:
                value = value_column(path, list(rows[0]))
            cols: dict[str, Any] = {}
            for name in (*REQUIRED, value):
                vals = json_column(rows, name, where)
                if name == "group":
                    cols[name] = json_typed(vals, name, where, (str, int), "a string or integer")
                else:
                    cols[name] = json_numbers(vals, name, where, integer=name == "step")
            vals = json_typed(
                [r.get("truncated", False) for r in rows],
                "truncated",
                where,
                (bool,),
                "true or false",
            )
            if any(vals):
                cols["truncated"] = np.array(vals, dtype=bool)
            yield value, finish_rows(where, cols, value)


# ---- CSV ---------------------------------------------------------------------------


def _csv_numbers(vals: list, name: str, where: Located, integer: bool = False) -> np.ndarray:
    try:
        return np.array(vals).astype(np.int64 if integer else np.float64)
    except (ValueError, OverflowError):
        pass
    parse: Callable[[str], Any] = int if integer else float
    for i, v in enumerate(vals):
        try:
            x = parse(v)
        except ValueError:
            raise where(
                i, name, f"{v!r} is not {'an integer' if integer else 'a number'}"
            ) from None
        if integer and abs(x) >= _INT64:
            raise where(i, name, f"{v} is out of range")
    raise AssertionError("unreachable")


_TRUE, _FALSE = {"true", "1"}, {"false", "0"}


def _csv_bools(vals: list, where: Located) -> np.ndarray:
    low = [v.strip().lower() for v in vals]
    out = np.array([v in _TRUE for v in low], dtype=bool)
    bad = [i for i, v in enumerate(low) if v not in _TRUE and v not in _FALSE]
    if bad:
        raise where(bad[0], "truncated", f"{vals[bad[0]]!r} is not true/false/1/0")
    return out


def _csv(path: str, value: str | None, excluded: dict) -> Iterator[tuple[str, Rows]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise AuditInputError(path, 1, None, f"not valid CSV ({err})") from None
        if value is None:
            value = value_column(path, header)
        wanted = [*REQUIRED, value] + (["truncated"] if "truncated" in header else [])
        missing = [c for c in wanted if c not in header]
        if missing:
            raise AuditInputError(path, 1, missing[0], "missing from the header")
        index = {c: header.index(c) for c in wanted}
        width = len(header)
        while True:
            rows, lines = [], []
            try:
                for row in reader:
                    if len(row) != width:
                        if not row:
                            excluded["blank lines"] = excluded.get("blank lines", 0) + 1
                            continue
                        raise AuditInputError(
                            path,
                            reader.line_num,
                            None,
                            f"{len(row)} fields, the header has {width}",
                        )
                    rows.append(row)
                    lines.append(reader.line_num)
                    if len(rows) == _CHUNK_ROWS:
                        break
            except csv.Error as err:
                raise AuditInputError(
                    path, reader.line_num, None, f"not valid CSV ({err})"
                ) from None
            if not rows:
                return
            where = Located(path, np.array(lines, dtype=np.int64))
            cols: dict[str, Any] = {}
            for name, j in index.items():
                vals = [r[j] for r in rows]
                if name == "group":
                    if not all(vals):
                        raise where(vals.index(""), name, "empty")
                    cols[name] = vals
                elif name == "truncated":
                    cols[name] = _csv_bools(vals, where)
                else:
                    cols[name] = _csv_numbers(vals, name, where, integer=name == "step")
            yield value, finish_rows(where, cols, value)


# ---- Parquet -----------------------------------------------------------------------


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "reading Parquet needs pyarrow: pip install 'costsgd[audit]' (or pyarrow)",
            name="pyarrow",
        ) from None
    return pa, pq


def _parquet(path: str, value: str | None, excluded: dict) -> Iterator[tuple[str, Rows]]:
    pa, pq = _pyarrow()
    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise AuditInputError(path, None, None, f"not a readable Parquet file ({err})") from None
    schema = file.schema_arrow
    names = schema.names
    if value is None:
        value = value_column(path, names)
    wanted = [*REQUIRED, value] + (["truncated"] if "truncated" in names else [])
    for name in wanted:
        if name not in names:
            raise AuditInputError(path, None, name, "missing")
        t = schema.field(name).type
        ok = {
            "step": pa.types.is_integer(t),
            "group": pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t),
            "truncated": pa.types.is_boolean(t),
        }.get(name, pa.types.is_integer(t) or pa.types.is_floating(t))
        if not ok:
            raise AuditInputError(path, None, name, f"has type {t}, which this column cannot take")
    start = 1
    batches = file.iter_batches(batch_size=_CHUNK_ROWS, columns=wanted)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as err:
            raise AuditInputError(path, start, None, f"unreadable ({err})", unit="row") from None
        if batch is None:
            return
        n = batch.num_rows
        where = Located(path, np.arange(start, start + n), unit="row")
        start += n
        cols: dict[str, Any] = {}
        for name in wanted:
            arr = batch.column(name)
            if arr.null_count:
                i = int(np.argmax(np.asarray(arr.is_null())))
                raise where(i, name, "null")
            if name == "group":
                cols[name] = arr.to_pylist()
            elif name == "truncated":
                cols[name] = arr.to_numpy(zero_copy_only=False).astype(bool)
            else:
                dtype = np.int64 if name == "step" else np.float64
                cols[name] = arr.to_numpy(zero_copy_only=False).astype(dtype)
        yield value, finish_rows(where, cols, value)


_READERS = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}


def read_rows(
    paths: Sequence[str | Path], excluded: dict[str, int], rows_per_file: dict[str, int]
) -> tuple[str | None, Iterator[Rows]]:
    """The value column of the first non-empty file and a stream of validated chunks.

    Args:
      paths: generic-format files (suffix ``.jsonl``, ``.csv`` or ``.parquet``), in order.
      excluded: filled with ``{reason: count}`` of rows left out on purpose.
      rows_per_file: filled with the rows read from each file.

    Returns:
      ``(value, chunks)``: ``value`` is ``"advantage"`` or ``"reward"``, chosen
      by the first non-empty file (``None`` if every file is empty); the other
      files must have that column too.
    """
    stream = _chunks([str(p) for p in paths], excluded, rows_per_file)
    first = next(stream, None)
    if first is None:
        return None, iter(())
    value = first[0]

    def chunks() -> Iterator[Rows]:
        yield first[1]
        for _, rows in stream:
            yield rows

    return value, chunks()


def _chunks(paths: list[str], excluded: dict, rows_per_file: dict) -> Iterator[tuple[str, Rows]]:
    value = None
    for path in paths:
        fmt = SUFFIXES.get(Path(path).suffix.lower())
        if fmt is None:
            raise AuditInputError(
                path, None, None, f"unknown suffix: the generic format reads {', '.join(SUFFIXES)}"
            )
        rows_per_file[path] = 0
        try:
            for v, rows in _READERS[fmt](path, value, excluded):
                value = v
                rows_per_file[path] += rows.step.size
                yield v, rows
        except UnicodeDecodeError as err:
            raise AuditInputError(path, None, None, f"not UTF-8 text ({err.reason})") from None
