"""The one error a reader raises for bad input: names the file, the line (or row) and the column."""

from __future__ import annotations

__all__ = ["AuditInputError"]


class AuditInputError(ValueError):
    """Bad input in a rollout file, located: ``FILE:LINE: column 'x': what is wrong``.

    Attributes:
      path: the file.
      line: 1-based line (JSONL, CSV: the physical line where the row starts) or
        row (Parquet, ``unit="row"``); ``None`` when the whole file is at fault.
      column: the column, or ``None``.

    Examples:
      >>> str(AuditInputError("a.jsonl", 3, "reward", "'x' is not a number"))
      "a.jsonl:3: column 'reward': 'x' is not a number"
      >>> str(AuditInputError("a.parquet", 7, None, "no rows", unit="row"))
      'a.parquet: row 7: no rows'
    """

    def __init__(
        self, path: str, line: int | None, column: str | None, what: str, *, unit: str = "line"
    ):
        self.path, self.line, self.column = str(path), line, column
        where = self.path
        if line is not None:
            where += f":{line}" if unit == "line" else f": {unit} {line}"
        col = f" column {column!r}:" if column is not None else ""
        super().__init__(f"{where}:{col} {what}")
