"""Schemas of results files: what a file must hold before it is summarised or plotted.

A schema is a tree of a few node types. :class:`Record` is a dict with required
and optional entries, :class:`ListOf` a list, :class:`Array` an array of numbers
(an npz array or a JSON list), :class:`Number`, :class:`Text` and :class:`Flag`
scalars. Arrays name their axes; every axis with one name must have one length
through the file (and a :class:`Number` or :class:`ListOf` bound to a name
fixes it), so ``config['trials']`` has to agree with the arrays' trial axis.
:func:`validate` stops at the first mismatch and raises ``ValueError`` saying
where it is (``runs[3]['eval_accuracy']``) and what is wrong, in one line.

Examples:
  >>> schema = Record({"n": Number(integer=True, dim="item"), "x": Array(("item",))})
  >>> validate({"n": 2, "x": [0.5, 1.5]}, schema)
  >>> validate({"n": 3, "x": [0.5, 1.5]}, schema)
  Traceback (most recent call last):
  ...
  ValueError: results['x'] gives 2 for the item axis, results['n'] gives 3
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Array", "Flag", "ListOf", "Number", "Record", "Text", "validate"]


class Array(NamedTuple):
    """Numbers with named axes (``()``: a scalar); finite, every axis non-empty."""

    dims: tuple[str, ...]
    kind: str = "float"  #: "float" (any real), "int" (integers) or "bool"
    minimum: float | None = None  #: every entry >= this
    increasing: bool = False  #: strictly increasing along the last axis


class Number(NamedTuple):
    """A finite real scalar (``None`` allowed when ``nullable``)."""

    integer: bool = False
    minimum: float | None = None
    dim: str | None = None  #: the value is the length of this axis
    nullable: bool = False


class Text(NamedTuple):
    """A string."""


class Flag(NamedTuple):
    """A bool."""


class ListOf(NamedTuple):
    """A list whose items all match ``item``."""

    item: Any
    nonempty: bool = True
    dim: str | None = None  #: the list's length is the length of this axis


class Record(NamedTuple):
    """A dict with ``fields`` (required) and ``optional`` entries; others are ignored.

    ``local`` axis names are bound afresh in each record (the curves of one run);
    each of ``rules`` gets the record and returns a problem (a string) or ``None``.
    """

    fields: Mapping[str, Any]
    optional: Mapping[str, Any] = {}
    local: tuple[str, ...] = ()
    rules: tuple[Callable[[Mapping[str, Any]], str | None], ...] = ()


class _Where(NamedTuple):
    path: str
    axes: dict[str, tuple[int, str]]  #: axis name -> (length, where it was fixed)


def validate(value: Any, schema: Any, where: str = "results") -> None:
    """Check ``value`` against ``schema``.

    Raises:
      ValueError: one line, naming the first entry that does not match.
    """
    _check(value, schema, _Where(where, {}))


def _check(value: Any, schema: Any, at: _Where) -> None:
    check = {
        Record: _record,
        ListOf: _list,
        Array: _array,
        Number: _number,
        Text: _text,
        Flag: _flag,
    }[type(schema)]
    check(value, schema, at)


def _fail(at: _Where, problem: str) -> None:
    raise ValueError(f"{at.path} {problem}")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _bind(at: _Where, dim: str, length: int) -> None:
    known = at.axes.setdefault(dim, (length, at.path))
    if known[0] != length:
        raise ValueError(
            f"{at.path} gives {length} for the {dim} axis, {known[1]} gives {known[0]}"
        )


def _record(value: Any, schema: Record, at: _Where) -> None:
    if not isinstance(value, Mapping):
        _fail(at, f"must be a mapping (a JSON object), got {_kind(value)}")
    axes = {k: v for k, v in at.axes.items() if k not in schema.local}
    inner = at.axes if not schema.local else axes
    for key, sub in schema.fields.items():
        if key not in value:
            _fail(at, f"has no {key!r} entry")
        _check(value[key], sub, _Where(f"{at.path}[{key!r}]", inner))
    for key, sub in schema.optional.items():
        if key in value:
            _check(value[key], sub, _Where(f"{at.path}[{key!r}]", inner))
    for rule in schema.rules:
        problem = rule(value)
        if problem:
            _fail(at, problem)


def _list(value: Any, schema: ListOf, at: _Where) -> None:
    if not isinstance(value, (list, tuple)):
        _fail(at, f"must be a list, got {_kind(value)}")
    if schema.nonempty and not value:
        _fail(at, "is empty")
    if schema.dim is not None:
        _bind(at, schema.dim, len(value))
    for i, item in enumerate(value):
        _check(item, schema.item, _Where(f"{at.path}[{i}]", at.axes))


def _number(value: Any, schema: Number, at: _Where) -> None:
    if value is None and schema.nullable:
        return
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()  # an npz scalar
    ok = isinstance(value, numbers.Integral if schema.integer else numbers.Real)
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        what = "an integer" if schema.integer else "a finite number"
        _fail(at, f"must be {what}, got {value!r}")
    if schema.minimum is not None and value < schema.minimum:
        _fail(at, f"must be >= {schema.minimum:g}, got {value!r}")
    if schema.dim is not None:
        _bind(at, schema.dim, int(value))


def _text(value: Any, schema: Text, at: _Where) -> None:
    if not isinstance(value, str):
        _fail(at, f"must be a string, got {_kind(value)}")


def _flag(value: Any, schema: Flag, at: _Where) -> None:
    if not isinstance(value, bool):
        _fail(at, f"must be true or false, got {_kind(value)}")


_KINDS = {"float": "fiu", "int": "iu", "bool": "b"}


def _array(value: Any, schema: Array, at: _Where) -> None:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):  # a ragged list
        _fail(at, "is not a regular array (rows of different lengths?)")
    if arr.dtype.kind not in _KINDS[schema.kind] or (
        schema.kind != "bool" and arr.dtype.kind == "b"
    ):
        _fail(at, f"must hold {schema.kind} values, got dtype {arr.dtype}")
    if arr.ndim != len(schema.dims):
        axes = ", ".join(schema.dims) or "none: a scalar"
        _fail(at, f"must have {len(schema.dims)} axes ({axes}), got shape {arr.shape}")
    for dim, length in zip(schema.dims, arr.shape, strict=True):
        if length == 0:
            _fail(at, f"is empty (shape {arr.shape})")
        _bind(at, dim, length)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        _fail(at, "holds NaN or infinite values")
    if schema.minimum is not None and np.any(arr < schema.minimum):
        _fail(at, f"has entries below {schema.minimum:g}")
    if schema.increasing and arr.ndim and np.any(np.diff(arr, axis=-1) <= 0):
        _fail(at, "is not strictly increasing")
