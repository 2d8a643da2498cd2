"""Redshift: staging a Parquet file for a micro-batch merge, where COPY takes no column list.

AWS's "COPY from columnar data formats" page: "COPY inserts values into the target table's
columns in the same order as the columns occur in the columnar data files. The number of
columns in the target table and the number of columns in the data file must match." A column
list is not among the parameters it lists for columnar COPY. The micro-batch stage has one
column more than the files (the load order, :data:`.merge_load.LOAD_ORDER_COLUMN`), so a file
cannot be COPYed into it. Each file goes through a table of its own instead:

1. :func:`create_file_stage`: ``CREATE TEMP TABLE <file stage> AS SELECT <the file's columns,
   in the file's order> FROM <stage> WHERE 1 = 0``: exactly the file's columns (read from its
   footer) with the target's types (CTAS keeps the query's column types; it drops NOT NULL
   and defaults, which the stage still enforces), so the positional COPY puts each file column
   into the column of the same name: columns match by name, as on PostgreSQL;
2. ``COPY <file stage> FROM <manifest> ... FORMAT AS PARQUET MANIFEST`` (no column list);
3. :func:`file_stage_into_stage`: ``INSERT INTO <stage> (<target columns>, <load order>)
   SELECT <target columns>, <file ordinal> FROM <file stage>``, then ``DROP TABLE`` of the
   file stage (both transactional on Redshift, unlike ``TRUNCATE``).
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from .dialect import Dialect, parse_dialect
from .merge_load import LOAD_ORDER_COLUMN, STAGE_TABLE, column_names

__all__ = ["FILE_STAGE_TABLE", "create_file_stage", "file_stage_into_stage"]

FILE_STAGE_TABLE = "__etl_mb_file"


def _names(dialect: Dialect, columns: Sequence[str]) -> sql.Composed:
    if not columns:
        raise ValueError("a Parquet file stage needs at least one column")
    return column_names(dialect, columns)


def create_file_stage(dialect: Dialect | str, file_columns: Sequence[str]) -> sql.Composed:
    """The empty file stage: the stage's columns named by ``file_columns``, in that (the
    file's) order, with the stage's types (step 1)."""
    dialect = parse_dialect(dialect)
    return sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {} WHERE 1 = 0").format(
        sql.Identifier(FILE_STAGE_TABLE),
        _names(dialect, file_columns),
        sql.Identifier(STAGE_TABLE),
    )


def file_stage_into_stage(
    dialect: Dialect | str, columns: Sequence[str], ordinal: int
) -> list[sql.Composed]:
    """Move the file stage's rows into the stage, stamped with the file's manifest
    ``ordinal``, and drop the file stage (step 3). ``columns``: the target's, by name."""
    dialect = parse_dialect(dialect)
    if isinstance(ordinal, bool) or not isinstance(ordinal, int) or ordinal < 0:
        raise ValueError(f"file ordinal must be an int >= 0, got {ordinal!r}")
    names = _names(dialect, columns)
    return [
        sql.SQL("INSERT INTO {} ({}, {}) SELECT {}, {} FROM {}").format(
            sql.Identifier(STAGE_TABLE),
            names,
            sql.Identifier(LOAD_ORDER_COLUMN),
            names,
            sql.Literal(ordinal),
            sql.Identifier(FILE_STAGE_TABLE),
        ),
        sql.SQL("DROP TABLE {}").format(sql.Identifier(FILE_STAGE_TABLE)),
    ]
