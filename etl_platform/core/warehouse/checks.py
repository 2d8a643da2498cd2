"""Blocking checks: each query returns one row with one bigint (0 = the check passed, except
the row count)."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from etl_platform.core.table_spec import TableSpec

from .ddl import require_columns
from .dialect import Dialect, parse_dialect
from .identifiers import checked_identifier, column_list, qualified_name

__all__ = ["duplicate_key_count_query", "orphan_count_query", "row_count_query"]


def row_count_query(dialect: Dialect | str, schema: str | None, table: str) -> sql.Composed:
    """``SELECT count(*) FROM "schema"."table"``."""
    return sql.SQL("SELECT count(*) FROM {}").format(qualified_name(dialect, schema, table))


def duplicate_key_count_query(
    dialect: Dialect | str,
    schema: str | None,
    spec: TableSpec,
    key: Sequence[str] | None = None,
) -> sql.Composed:
    """Number of key values held by more than one row (0 = unique). ``key`` defaults to the
    spec's primary key. Run it on tables without a declared key on Redshift, whose planner
    trusts declared keys."""
    dialect = parse_dialect(dialect)
    columns = tuple(key) if key is not None else spec.primary_key
    if not columns:
        raise ValueError(f"table {spec.name!r}: no key to check for duplicates")
    require_columns(spec, columns, "duplicate-key check")
    cols = column_list(dialect, columns)
    return sql.SQL(
        "SELECT count(*) FROM (SELECT {} FROM {} GROUP BY {} HAVING count(*) > 1) AS dup"
    ).format(cols, qualified_name(dialect, schema, spec.name), cols)


def orphan_count_query(
    dialect: Dialect | str,
    schema: str | None,
    child: str,
    child_columns: Sequence[str],
    parent: str,
    parent_columns: Sequence[str],
) -> sql.Composed:
    """Number of ``child`` rows whose ``child_columns`` match no ``parent`` row on
    ``parent_columns`` (pairwise). A child row with a NULL in its parent key counts as an orphan:
    child rows always carry their parent's key."""
    dialect = parse_dialect(dialect)
    if not child_columns or len(child_columns) != len(parent_columns):
        raise ValueError(
            f"orphan check {child!r} -> {parent!r}: child columns {list(child_columns)} and "
            f"parent columns {list(parent_columns)} must be non-empty and pair up"
        )
    conditions = [
        sql.SQL("{} = {}").format(
            sql.Identifier("p", checked_identifier(dialect, pc, "column name")),
            sql.Identifier("c", checked_identifier(dialect, cc, "column name")),
        )
        for cc, pc in zip(child_columns, parent_columns, strict=True)
    ]
    return sql.SQL(
        "SELECT count(*) FROM {} AS c WHERE NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})"
    ).format(
        qualified_name(dialect, schema, child),
        qualified_name(dialect, schema, parent),
        sql.SQL(" AND ").join(conditions),
    )
