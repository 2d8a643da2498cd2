"""Why a Redshift COPY failed: the query reading its ``stl_load_errors`` rows, and the error
message made from them (pure: tested with recorded rows).

A Redshift COPY that rejects a value fails with "Load into table 'x' failed. Check
'stl_load_errors' system table for details." The details (the S3 object, line, column and
reason) are rows of ``stl_load_errors`` for the COPY's query id, which ``pg_last_copy_id()``
returns on the same session, also after a COPY that failed on invalid data
(https://docs.aws.amazon.com/redshift/latest/dg/PG_LAST_COPY_ID.html). The session's
transaction must be ended (rolled back) first: an aborted transaction answers no query.
Columns of ``stl_load_errors`` are blank-padded CHARs
(https://docs.aws.amazon.com/redshift/latest/dg/r_STL_LOAD_ERRORS.html); the formatter trims
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from .dialect import Dialect, LoadMethod, parse_dialect

__all__ = ["LOAD_ERROR_COLUMNS", "LoadErrorRow", "copy_failure_message", "load_errors_query"]

#: the ``stl_load_errors`` columns :func:`load_errors_query` selects, in order
LOAD_ERROR_COLUMNS = (
    "query",
    "filename",
    "line_number",
    "colname",
    "type",
    "position",
    "err_code",
    "err_reason",
    "raw_field_value",
)

_VALUE_CLIP = 60


def load_errors_query(dialect: Dialect | str, *, limit: int = 10) -> sql.Composed:
    """``SELECT <LOAD_ERROR_COLUMNS> FROM stl_load_errors WHERE query = pg_last_copy_id()``:
    the rejected values of the session's last COPY, first lines first. Run it on the session
    that ran the COPY, after ending its aborted transaction; takes no parameters."""
    dialect = parse_dialect(dialect)
    if dialect.load_method is not LoadMethod.COPY_FROM_S3_MANIFEST:
        raise ValueError(
            f"stl_load_errors exists on Redshift only; the {dialect.name} dialect loads with "
            f"{dialect.load_method}"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"load errors limit must be an int >= 1, got {limit!r}")
    return sql.SQL(
        "SELECT {} FROM stl_load_errors WHERE query = pg_last_copy_id() "
        "ORDER BY line_number, colname LIMIT {}"
    ).format(sql.SQL(", ").join(sql.Identifier(c) for c in LOAD_ERROR_COLUMNS), sql.Literal(limit))


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


@dataclass(frozen=True)
class LoadErrorRow:
    """One ``stl_load_errors`` row, trimmed: the S3 object, its line, the column and why."""

    query: int | None
    filename: str
    line_number: int | None
    column: str
    column_type: str
    position: int | None
    err_code: int | None
    reason: str
    raw_field_value: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> LoadErrorRow:
        """From a row in :data:`LOAD_ERROR_COLUMNS` order (blank-padded as Redshift returns)."""
        if len(row) != len(LOAD_ERROR_COLUMNS):
            raise ValueError(
                f"a stl_load_errors row has {len(LOAD_ERROR_COLUMNS)} columns "
                f"{LOAD_ERROR_COLUMNS}, got {len(row)}"
            )
        query, filename, line, column, kind, position, code, reason, raw = row
        return cls(
            query=None if query is None else int(query),
            filename=_text(filename),
            line_number=None if line is None else int(line),
            column=_text(column),
            column_type=_text(kind),
            position=None if position is None else int(position),
            err_code=None if code is None else int(code),
            reason=_text(reason),
            raw_field_value=_text(raw),
        )

    def describe(self) -> str:
        """``s3://b/k line 17, column "name" (varchar(10)): <reason> [code 1204], value '...'``."""
        where = self.filename or "(unknown file)"
        if self.line_number is not None:
            where += f" line {self.line_number}"
        if self.column:
            kind = f" ({self.column_type})" if self.column_type else ""
            where += f', column "{self.column}"{kind}'
        text = f"{where}: {self.reason or 'no reason recorded'}"
        if self.err_code is not None:
            text += f" [code {self.err_code}]"
        if self.raw_field_value:
            value = self.raw_field_value
            if len(value) > _VALUE_CLIP:
                value = value[:_VALUE_CLIP] + "..."
            text += f", value {value!r}"
        return text


def copy_failure_message(
    table: str, rows: Sequence[Sequence[Any] | LoadErrorRow], cause: str
) -> str:
    """The error a user sees for a failed Redshift COPY into ``table``: each recorded
    ``stl_load_errors`` row (file, line, column, reason), then the COPY's own error ``cause``.
    Without rows (the COPY failed before loading: access, manifest, syntax; or the lookup
    itself failed) it says so and gives ``cause`` alone."""
    errors = [r if isinstance(r, LoadErrorRow) else LoadErrorRow.from_row(r) for r in rows]
    cause = cause.strip()
    if not errors:
        return (
            f"Redshift COPY into {table} failed before loading any row (stl_load_errors has "
            f"nothing for it: check the IAM role, the manifest and the S3 objects): {cause}"
        )
    details = "; ".join(e.describe() for e in errors)
    return f"Redshift COPY into {table} failed: {details} (COPY said: {cause})"
