"""Merge (micro-batch loader): keep one row per primary key, the latest by a timestamp column."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec

from .ddl import require_columns, validate_table_spec
from .dialect import Dialect, MergeStyle, parse_dialect
from .identifiers import column_list, qualified_name

__all__ = ["MERGE_BATCH_TABLE", "MERGE_RANK_COLUMN", "merge_plan"]

#: Name of the rank column the merge adds to staging rows; refused as a data column name.
MERGE_RANK_COLUMN = "__etl_merge_rank"
#: Temporary table holding one (the latest) batch row per key during a merge.
MERGE_BATCH_TABLE = "__etl_merge_batch"


def _order_expr(dialect: Dialect, column: ColumnSpec, table_alias: str) -> sql.Composable:
    ref = sql.Identifier(table_alias, column.name)
    if ColumnKind(column.kind) is ColumnKind.JSON:
        # jsonb orders, but SUPER does not: compare the serialized text on both dialects
        return sql.SQL(dialect.json_as_text).format(ref)
    return ref


def merge_plan(
    dialect: Dialect | str,
    spec: TableSpec,
    *,
    target_schema: str | None,
    staging_schema: str | None,
    timestamp_column: str,
    staging_table: str | None = None,
    tie_break: Sequence[str] | None = None,
    lock_target: bool = True,
) -> list[sql.Composed]:
    """Statements (ONE transaction) that merge a staging batch into ``target_schema.<spec.name>``
    keeping one row per primary key, the latest by ``timestamp_column``:

    1. With ``lock_target``, where the dialect has a :attr:`~Dialect.merge_lock_mode`
       (PostgreSQL): ``LOCK TABLE target IN SHARE ROW EXCLUSIVE MODE``, so
       concurrent merges into one table queue instead of racing (readers are not blocked).
       Redshift runs SERIALIZABLE and reports such conflicts as serialization failures: retry
       them (``etl_platform.core.retry``); its ``LOCK`` would block readers as well.
    2. ``CREATE TEMP TABLE __etl_merge_batch AS`` the batch's latest row per key:
       ``ROW_NUMBER() OVER (PARTITION BY key ORDER BY ts DESC NULLS LAST, tie_break... DESC
       NULLS LAST) = 1``. ``tie_break`` defaults to every other column in spec order (JSON
       compared as text), so equal timestamps resolve the same way whatever order files came in.
    3. ``DELETE FROM target USING batch`` where the key matches and the batch row is
       newer-or-equal: ``batch.ts >= target.ts OR target.ts IS NULL``.
    4. ``INSERT INTO target`` every batch row whose key the target no longer has (a target row
       newer than the batch stays; that batch row is dropped).
    5. ``DROP TABLE __etl_merge_batch`` (a failed transaction rolls its creation back anyway).

    A NULL timestamp ranks as the oldest value, never as "absent": a key whose rows all have a
    NULL ts still gets a row, and a NULL-ts batch row replaces a NULL-ts target row (the later
    load wins, as for equal timestamps). This is the portable staging-table merge: Redshift's
    ``DELETE ... USING`` takes table names, and its ``DELETE`` no alias for the target, so the
    target's columns are qualified by full name. ``staging_schema=None`` names a temporary
    staging table (unqualified ``staging_table``).
    """
    dialect = parse_dialect(dialect)
    if dialect.merge_style is not MergeStyle.DELETE_USING_INSERT:
        raise ValueError(f"merge style {dialect.merge_style.value!r} has no plan yet")
    tie = _check_merge(
        dialect, spec, target_schema, staging_schema, staging_table, timestamp_column, tie_break
    )
    target = qualified_name(dialect, target_schema, spec.name)
    staging = qualified_name(dialect, staging_schema, staging_table or spec.name)
    batch = sql.Identifier(MERGE_BATCH_TABLE)
    statements: list[sql.Composed] = []
    if lock_target and dialect.merge_lock_mode is not None:
        statements.append(
            sql.SQL("LOCK TABLE {} IN {} MODE").format(target, sql.SQL(dialect.merge_lock_mode))
        )
    return [
        *statements,
        _latest_batch_rows(dialect, spec, staging, [timestamp_column, *tie]),
        _delete_replaced_rows(spec, target_schema, target, timestamp_column),
        _insert_absent_keys(dialect, spec, target),
        sql.SQL("DROP TABLE {}").format(batch),
    ]


def _check_merge(
    dialect: Dialect,
    spec: TableSpec,
    target_schema: str | None,
    staging_schema: str | None,
    staging_table: str | None,
    timestamp_column: str,
    tie_break: Sequence[str] | None,
) -> list[str]:
    """Refuse a merge that cannot keep one latest row per key; the tie-break columns."""
    validate_table_spec(dialect, spec)
    if not spec.primary_key:
        raise ValueError(f"merge into {spec.name!r} needs a primary key")
    require_columns(spec, [timestamp_column], "merge timestamp column")
    if timestamp_column in spec.primary_key:
        raise ValueError(f"merge timestamp column {timestamp_column!r} is part of the key")
    if MERGE_RANK_COLUMN in spec.column_names:
        raise ValueError(f"column name {MERGE_RANK_COLUMN!r} is reserved by the merge")
    if spec.name == MERGE_BATCH_TABLE:
        raise ValueError(f"table name {MERGE_BATCH_TABLE!r} is reserved by the merge")
    if (target_schema, spec.name) == (staging_schema, staging_table or spec.name):
        raise ValueError(f"merge of {spec.name!r}: staging and target are the same table")
    if tie_break is None:
        return [n for n in spec.column_names if n not in spec.primary_key and n != timestamp_column]
    require_columns(spec, tie_break, "merge tie-break")
    return list(tie_break)


def _latest_batch_rows(
    dialect: Dialect, spec: TableSpec, staging: sql.Identifier, order_by: Sequence[str]
) -> sql.Composed:
    """``CREATE TEMP TABLE __etl_merge_batch AS`` the staging rows ranked first per key."""
    by_name = {c.name: c for c in spec.columns}
    rank = sql.Identifier(MERGE_RANK_COLUMN)
    order = [
        sql.SQL("{} DESC NULLS LAST").format(_order_expr(dialect, by_name[n], "s"))
        for n in order_by
    ]
    return sql.SQL(
        "CREATE TEMP TABLE {} AS SELECT {} FROM (SELECT {}, ROW_NUMBER() OVER (PARTITION BY {} "
        "ORDER BY {}) AS {} FROM {} AS s) AS ranked WHERE ranked.{} = 1"
    ).format(
        sql.Identifier(MERGE_BATCH_TABLE),
        column_list(dialect, spec.column_names, "ranked"),
        column_list(dialect, spec.column_names, "s"),
        column_list(dialect, spec.primary_key, "s"),
        sql.SQL(", ").join(order),
        rank,
        staging,
        rank,
    )


def _delete_replaced_rows(
    spec: TableSpec, target_schema: str | None, target: sql.Identifier, timestamp_column: str
) -> sql.Composed:
    """``DELETE FROM target USING batch`` where the key matches and the batch row is
    newer-or-equal (Redshift's ``DELETE`` takes no alias: target columns by full name)."""

    def target_col(name: str) -> sql.Identifier:
        if target_schema is None:
            return sql.Identifier(spec.name, name)
        return sql.Identifier(target_schema, spec.name, name)

    def batch_col(name: str) -> sql.Identifier:
        return sql.Identifier(MERGE_BATCH_TABLE, name)

    key_match = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(target_col(k), batch_col(k)) for k in spec.primary_key
    )
    ts_t, ts_b = target_col(timestamp_column), batch_col(timestamp_column)
    return sql.SQL("DELETE FROM {} USING {} WHERE {} AND ({} >= {} OR {} IS NULL)").format(
        target, sql.Identifier(MERGE_BATCH_TABLE), key_match, ts_b, ts_t, ts_t
    )


def _insert_absent_keys(dialect: Dialect, spec: TableSpec, target: sql.Identifier) -> sql.Composed:
    """``INSERT INTO target`` every batch row whose key the target no longer has."""
    batch = sql.Identifier(MERGE_BATCH_TABLE)
    absent = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("t", k), sql.Identifier("b", k))
        for k in spec.primary_key
    )
    return sql.SQL(
        "INSERT INTO {} ({}) SELECT {} FROM {} AS b WHERE NOT EXISTS (SELECT 1 FROM {} AS t "
        "WHERE {})"
    ).format(
        target,
        column_list(dialect, spec.column_names),
        column_list(dialect, spec.column_names, "b"),
        batch,
        target,
        absent,
    )
