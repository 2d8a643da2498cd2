"""The one-statement merge of a micro-batch stage on PostgreSQL: ``INSERT ... ON CONFLICT`` with
data-modifying CTEs, the same rules and counts as :func:`.merge_load.merge_statements`' portable
delete-insert, in about half its round trips and scans. It needs a unique index on exactly the
key (the loader checks the catalog) and runs in the load's transaction like the rest."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from .dialect import Dialect, parse_dialect
from .identifiers import qualified_name
from .merge_load import (
    LOAD_ORDER_COLUMN,
    STAGE_TABLE,
    MergeKeys,
    check_columns,
    column_names,
    key_match,
)

__all__ = ["upsert_statement"]


def upsert_statement(
    schema: str,
    table: str,
    columns: Sequence[str],
    keys: MergeKeys,
    dialect: Dialect | str = Dialect.POSTGRES,
) -> sql.Composed:
    """The one-statement merge (same rules as :func:`.merge_load.merge_statements`) where the
    dialect :attr:`~Dialect.supports_on_conflict_upsert` (PostgreSQL), needing a unique index on
    the key. Returns one row, the counts :func:`.merge_load.merge_statements` reports
    (``merge_outcomes.UPSERT_COUNTS``; its insert excludes the replaced rows). Without a delete
    flag the statement has no ``DELETE`` part and reads the target only in its upsert (delete
    is then 0)."""
    dialect = parse_dialect(dialect)
    if not dialect.supports_on_conflict_upsert:
        raise ValueError(f"{dialect.title} has no INSERT ... ON CONFLICT: use merge_statements")
    label = f"{schema}.{table}"
    check_columns(label, columns)
    keys.check(label, columns)
    target = qualified_name(dialect, schema, table)
    ts = sql.Identifier(keys.timestamp_column)
    key_list = column_names(dialect, keys.primary_key)
    non_key = [c for c in columns if c not in keys.primary_key] or [keys.primary_key[0]]
    parts = {
        "keys": key_list,
        "cols": column_names(dialect, columns),
        "src_cols": column_names(dialect, columns, "src"),
        "stage": sql.Identifier(STAGE_TABLE),
        "ts": ts,
        "order": sql.Identifier(LOAD_ORDER_COLUMN),
        "target": target,
        "updates": sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in non_key
        ),
    }
    src = sql.SQL(
        "WITH src AS MATERIALIZED (SELECT DISTINCT ON ({keys}) {cols} FROM {stage} "
        "ORDER BY {keys}, {ts} DESC NULLS LAST, {order} DESC), "
    ).format(**parts)
    upsert = sql.SQL(
        "up AS (INSERT INTO {target} AS t ({cols}) SELECT {src_cols} FROM src{keep} "
        "ON CONFLICT ({keys}) DO UPDATE SET {updates} "
        "WHERE t.{ts} IS NULL OR EXCLUDED.{ts} >= t.{ts} RETURNING (t.xmax = 0) AS fresh) "
    )
    # the winners counted in one pass over src: all of them, and those the upsert takes; the
    # kept winners it does not take are older than their stored row
    counts = sql.SQL(
        "SELECT n.batch, {deleted}, u.inserted, u.replaced, "
        "n.kept - u.inserted - u.replaced{older_deletes} "
        "FROM (SELECT count(*) AS batch, {kept} AS kept FROM src) AS n, "
        "(SELECT count(*) FILTER (WHERE fresh) AS inserted, "
        "count(*) FILTER (WHERE NOT fresh) AS replaced FROM up) AS u"
    )
    if not keys.delete_column:
        return sql.Composed(
            [
                src,
                upsert.format(keep=sql.SQL(""), **parts),
                counts.format(
                    deleted=sql.SQL("0"), kept=sql.SQL("count(*)"), older_deletes=sql.SQL("")
                ),
            ]
        )
    return _upsert_with_deletes(keys.delete_column, keys.primary_key, parts, src, upsert, counts)


def _upsert_with_deletes(
    delete_column: str,
    primary_key: Sequence[str],
    parts: dict[str, sql.Composable],
    src: sql.Composed,
    upsert: sql.SQL,
    counts: sql.SQL,
) -> sql.Composed:
    """:func:`upsert_statement` with a delete-flag column: a ``del`` part removes the stored
    rows whose winning version is flagged (and not older), the upsert skips flagged winners.
    A flagged winner older than its stored row counts as ``drop_older``, as in
    :func:`.merge_load.merge_statements`: a lookup of the flagged winners in the target, which
    every part of the statement sees as it was before the statement."""
    flag = sql.Identifier(delete_column)
    match = key_match(primary_key, sql.Composed([sql.SQL("t")]), sql.Composed([sql.SQL("src")]))
    delete = sql.SQL(
        "del AS (DELETE FROM {target} AS t USING src WHERE {match} AND src.{flag} IS TRUE "
        "AND (t.{ts} IS NULL OR src.{ts} >= t.{ts}) RETURNING 1), "
    ).format(match=match, flag=flag, **parts)
    older_deletes = sql.SQL(
        " + (SELECT count(*) FROM src JOIN {target} AS t ON {match} WHERE src.{flag} IS TRUE "
        "AND t.{ts} IS NOT NULL AND (src.{ts} IS NULL OR src.{ts} < t.{ts}))"
    ).format(match=match, flag=flag, **parts)
    return sql.Composed(
        [
            src,
            delete,
            upsert.format(keep=sql.SQL(" WHERE src.{} IS NOT TRUE").format(flag), **parts),
            counts.format(
                deleted=sql.SQL("(SELECT count(*) FROM del)"),
                kept=sql.SQL("count(*) FILTER (WHERE src.{} IS NOT TRUE)").format(flag),
                older_deletes=older_deletes,
            ),
        ]
    )
