"""SQL of a micro-batch load: files into a temporary stage, then one merge into the target.

Builders only (``psycopg.sql``), for PostgreSQL and Redshift; the loader runs them in ONE
transaction, so a failure anywhere (a bad file, a serialization failure) leaves the target as
it was.

1. :func:`begin_load`: PostgreSQL runs the load ``REPEATABLE READ`` (a concurrent writer that
   changed a row the merge touches makes it fail with SQLSTATE 40001, to be retried, instead of
   silently losing that write) and first takes ``SHARE UPDATE EXCLUSIVE`` on the target: it
   conflicts with itself, so two loads of one table queue, but not with readers or other
   writers; it is taken before any snapshot, so the queued load sees what the first committed.
   Redshift is always serializable and reports conflicts as serialization failures.
2. :func:`create_stage`: a temporary table like the target plus a load-order column. On
   PostgreSQL an identity numbers rows as COPY reads them, file after file in manifest order; on
   Redshift :func:`number_stage_file` stamps each file's ordinal after its COPY (Redshift keeps
   no row order within a file, so ties inside one file are broken arbitrarily there); a Parquet
   file reaches the stage through a file stage instead (:mod:`.columnar_stage`).
3. :func:`merge_statements`, in order (each row count is a metric):

   * ``batch``: per primary key the staged row with the latest timestamp; a NULL timestamp is the
     oldest; ties go to the later load order (later file, then later row).
   * ``drop_older``: batch rows older than the stored row of their key, delete rows included
     (a replayed old file never rolls a key back). NULL is older than any time; equal is not
     older.
   * ``delete``: stored rows whose batch row carries a true delete flag.
   * ``replace``: stored rows the batch replaces (deleted here, inserted next).
   * ``insert``: the batch rows without a true delete flag.

   What is left of ``batch`` are delete rows of keys the table did not hold
   (``merge_outcomes.py`` turns these counts into the load's outcomes).

   This is delete-insert on both dialects (Redshift's ``DELETE ... USING``; its ``MERGE`` needs
   the same deduplicated source and reports no per-action counts).
   On PostgreSQL, when the target has a unique index on exactly the key,
   :func:`.merge_upsert.upsert_statement` does the same in ONE statement: ``DISTINCT ON`` the key, a
   ``DELETE`` of the winning delete flags and an ``INSERT ... ON CONFLICT DO UPDATE WHERE not
   older`` as data-modifying CTEs (about half the round trips and scans of step 3).
4. Merge off: :func:`append_statement`, a plain ``INSERT ... SELECT`` of every staged row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from etl_platform.core.table_spec import ColumnKind, TableSpec

from .ddl import column_type, validate_table_spec
from .dialect import Dialect, parse_dialect
from .identifiers import identifier, qualified_name

__all__ = [
    "BATCH_TABLE",
    "LOAD_ORDER_COLUMN",
    "STAGE_TABLE",
    "MergeKeys",
    "append_statement",
    "begin_load",
    "check_columns",
    "column_names",
    "columns_query",
    "count_query",
    "create_stage",
    "create_target_if_missing",
    "key_match",
    "merge_statements",
    "number_stage_file",
]

STAGE_TABLE = "__etl_mb_stage"
BATCH_TABLE = "__etl_mb_batch"
LOAD_ORDER_COLUMN = "__etl_load_order"
_RANK = "__etl_rank"
_RESERVED = {STAGE_TABLE, BATCH_TABLE, LOAD_ORDER_COLUMN, _RANK}


@dataclass(frozen=True)
class MergeKeys:
    """What the merge compares: the primary key, the timestamp, the optional delete flag."""

    primary_key: tuple[str, ...]
    timestamp_column: str
    delete_column: str | None = None

    def check(self, table: str, columns: Sequence[str]) -> None:
        """Refuse settings that do not fit the table's columns; errors name table and column."""
        if not self.primary_key:
            raise ValueError(f"merge into {table}: the primary key needs at least one column")
        wanted = [*self.primary_key, self.timestamp_column]
        if self.delete_column:
            wanted.append(self.delete_column)
        for name in wanted:
            if name not in columns:
                raise ValueError(f"merge into {table}: column {name!r} is not in {list(columns)}")
        if self.timestamp_column in self.primary_key:
            raise ValueError(
                f"merge into {table}: timestamp column {self.timestamp_column!r} is in the key"
            )
        if self.delete_column and self.delete_column in (*self.primary_key, self.timestamp_column):
            raise ValueError(f"merge into {table}: delete flag {self.delete_column!r} is reused")


def check_columns(table: str, columns: Sequence[str]) -> None:
    if not columns:
        raise ValueError(f"load into {table}: no columns")
    clash = _RESERVED.intersection(columns)
    if clash:
        raise ValueError(f"load into {table}: column names {sorted(clash)} are reserved")


def column_names(
    dialect: Dialect, columns: Sequence[str], alias: str | None = None
) -> sql.Composed:
    """``a, b, c`` (or ``alias.a, ...``), each name checked against the dialect's rules."""
    for c in columns:
        identifier(dialect, c)
    ids = [sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in columns]
    return sql.SQL(", ").join(ids)


def columns_query(
    dialect: Dialect, schema: str, table: str, unique_key: Sequence[str] = ()
) -> sql.Composed:
    """The target's columns in table order, one row each: the name, and whether the table has
    a unique index on exactly ``unique_key`` (the same on every row; false when ``unique_key``
    is empty or the dialect has no ``ON CONFLICT``). Redshift folds names to lower case, so the
    lookup does too there. Parameterless (literals), so it shares a round trip with the load's
    first statements. Read from the system catalog (both engines have ``pg_attribute``):
    ``information_schema.columns`` is a view that costs about as much as the rest of a small
    load's fixed statements together."""
    dialect = parse_dialect(dialect)
    schema, table = dialect.fold_identifier(schema), dialect.fold_identifier(table)
    unique = sql.SQL("false")
    if unique_key and dialect.supports_on_conflict_upsert:
        unique = sql.SQL(
            "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique "
            "AND i.indpred IS NULL AND i.indexprs IS NULL AND ARRAY(SELECT k.attname::text "
            "FROM pg_attribute k WHERE k.attrelid = c.oid AND k.attnum = ANY(i.indkey) "
            "ORDER BY k.attname) = ARRAY[{}]::text[])"
        ).format(sql.SQL(", ").join(sql.Literal(k) for k in sorted(unique_key)))
    return sql.SQL(
        "SELECT a.attname, {} FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relname = {} "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
    ).format(unique, sql.Literal(schema), sql.Literal(table))


def create_target_if_missing(dialect: Dialect, schema: str, spec: TableSpec) -> list[sql.Composed]:
    """``CREATE SCHEMA IF NOT EXISTS`` and ``CREATE TABLE IF NOT EXISTS`` with the primary key
    (key columns ``NOT NULL``; informational on Redshift). An existing table is left as it is."""
    dialect = parse_dialect(dialect)
    validate_table_spec(dialect, spec)
    check_columns(spec.name, spec.column_names)
    keys = set(spec.primary_key)
    elements: list[sql.Composable] = [
        sql.SQL("{} {}{}").format(
            identifier(dialect, c.name),
            column_type(dialect, c),
            sql.SQL(" NOT NULL") if (not c.nullable or c.name in keys) else sql.SQL(""),
        )
        for c in spec.columns
    ]
    if spec.primary_key:
        elements.append(sql.SQL("PRIMARY KEY ({})").format(column_names(dialect, spec.primary_key)))
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(identifier(dialect, schema)),
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
            qualified_name(dialect, schema, spec.name), sql.SQL(", ").join(elements)
        ),
    ]


def begin_load(dialect: Dialect, schema: str, table: str) -> list[sql.Composed]:
    """The first statements of a load's transaction (see the module docstring, step 1)."""
    dialect = parse_dialect(dialect)
    statements: list[sql.Composed] = []
    if dialect.load_isolation_level is not None:
        statements.append(
            sql.SQL("SET TRANSACTION ISOLATION LEVEL {}").format(
                sql.SQL(dialect.load_isolation_level)
            )
        )
    if dialect.load_lock_mode is not None:
        statements.append(
            sql.SQL("LOCK TABLE {} IN {} MODE").format(
                qualified_name(dialect, schema, table), sql.SQL(dialect.load_lock_mode)
            )
        )
    return statements


def create_stage(dialect: Dialect, schema: str, table: str) -> list[sql.Composed]:
    """The temporary stage: the target's columns plus the load order (step 2)."""
    dialect = parse_dialect(dialect)
    stage, order = sql.Identifier(STAGE_TABLE), sql.Identifier(LOAD_ORDER_COLUMN)
    target = qualified_name(dialect, schema, table)
    numbering = "GENERATED ALWAYS AS IDENTITY"
    if not dialect.identity_numbers_copied_rows:
        numbering = "DEFAULT NULL"  # stamped per file by number_stage_file
    column = sql.SQL("{} {} {}").format(
        order, sql.SQL(dialect.types[ColumnKind.BIGINT]), sql.SQL(numbering)
    )
    if dialect.create_like_takes_columns:
        return [
            sql.SQL("CREATE TEMP TABLE {} (LIKE {}, {}){}").format(
                stage, target, column, _on_commit(dialect)
            )
        ]
    return [
        sql.SQL("CREATE TEMP TABLE {} (LIKE {}){}").format(stage, target, _on_commit(dialect)),
        sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(stage, column),
    ]


def _on_commit(dialect: Dialect) -> sql.SQL:
    """`` ON COMMIT DROP`` where temporary tables take it: the load's tables end with it."""
    return sql.SQL(" ON COMMIT DROP" if dialect.temp_table_on_commit_drop else "")


def number_stage_file(dialect: Dialect, ordinal: int) -> sql.Composed:
    """Where an identity does not number rows in COPY order (Redshift): stamp the rows the
    last COPY added with the file's manifest ordinal."""
    dialect = parse_dialect(dialect)
    if dialect.identity_numbers_copied_rows:
        raise ValueError(f"stage rows are numbered by an identity on {dialect.title}")
    if isinstance(ordinal, bool) or not isinstance(ordinal, int) or ordinal < 0:
        raise ValueError(f"file ordinal must be an int >= 0, got {ordinal!r}")
    order = sql.Identifier(LOAD_ORDER_COLUMN)
    return sql.SQL("UPDATE {} SET {} = {} WHERE {} IS NULL").format(
        sql.Identifier(STAGE_TABLE), order, sql.Literal(ordinal), order
    )


def count_query(table: str) -> sql.Composed:
    """``SELECT count(*)`` of the stage or the batch (temporary tables, unqualified)."""
    if table not in (STAGE_TABLE, BATCH_TABLE):
        raise ValueError(f"count_query counts the load's own tables, not {table!r}")
    return sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))


def key_match(keys: Sequence[str], left: sql.Composable, right: sql.Composable) -> sql.Composed:
    def col(prefix: sql.Composable, name: str) -> sql.Composed:
        return sql.Composed([prefix, sql.SQL("."), sql.Identifier(name)])

    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(col(left, k), col(right, k)) for k in keys
    )


def _batch_statement(dialect: Dialect, columns: Sequence[str], keys: MergeKeys) -> sql.Composed:
    """``CREATE TEMP TABLE batch AS`` the winning staged row of each key."""
    batch = sql.Identifier(BATCH_TABLE)
    ts, order, rank = (
        sql.Identifier(keys.timestamp_column),
        sql.Identifier(LOAD_ORDER_COLUMN),
        sql.Identifier(_RANK),
    )
    create_batch = sql.SQL(
        "CREATE TEMP TABLE {batch}{on_commit} AS SELECT {ranked_cols} FROM (SELECT {s_cols}, "
        "ROW_NUMBER() OVER (PARTITION BY {s_keys} ORDER BY s.{ts} DESC NULLS LAST, "
        "s.{order} DESC) AS {rank} FROM {stage} AS s) AS ranked WHERE ranked.{rank} = 1"
    ).format(
        batch=batch,
        on_commit=_on_commit(dialect),
        ranked_cols=column_names(dialect, columns, "ranked"),
        s_cols=column_names(dialect, columns, "s"),
        s_keys=column_names(dialect, keys.primary_key, "s"),
        ts=ts,
        order=order,
        rank=rank,
        stage=sql.Identifier(STAGE_TABLE),
    )
    return create_batch


def merge_statements(
    dialect: Dialect, schema: str, table: str, columns: Sequence[str], keys: MergeKeys
) -> list[tuple[str, sql.Composed]]:
    """``(action, statement)`` pairs of the merge (step 3), to run in order in the load's
    transaction; the row count of ``drop_older``, ``delete``, ``replace`` and ``insert`` is the
    number of rows that action took."""
    dialect = parse_dialect(dialect)
    label = f"{schema}.{table}"
    check_columns(label, columns)
    keys.check(label, columns)
    target = qualified_name(dialect, schema, table)
    # Redshift's DELETE takes no alias for its target: refer to it by its qualified name
    target_ref = sql.Composed([target])
    batch, batch_ref = sql.Identifier(BATCH_TABLE), sql.Composed([sql.Identifier(BATCH_TABLE)])
    ts = sql.Identifier(keys.timestamp_column)
    create_batch = _batch_statement(dialect, columns, keys)
    t_alias = sql.Composed([sql.Identifier("t")])
    drop_older = sql.SQL(
        "DELETE FROM {batch} USING {target} AS t WHERE {match} AND t.{ts} IS NOT NULL "
        "AND ({batch}.{ts} IS NULL OR {batch}.{ts} < t.{ts})"
    ).format(
        batch=batch,
        target=target,
        match=key_match(keys.primary_key, batch_ref, t_alias),
        ts=ts,
    )
    statements: list[tuple[str, sql.Composed]] = [
        ("batch", create_batch),
        ("drop_older", drop_older),
    ]
    match = key_match(keys.primary_key, target_ref, batch_ref)
    keep = sql.SQL("")
    if keys.delete_column:
        flag = sql.Identifier(keys.delete_column)
        statements.append(
            (
                "delete",
                sql.SQL("DELETE FROM {} USING {} WHERE {} AND {}.{} IS TRUE").format(
                    target, batch, match, batch, flag
                ),
            )
        )
        keep = sql.SQL(" WHERE {} IS NOT TRUE").format(flag)
    statements.append(
        ("replace", sql.SQL("DELETE FROM {} USING {} WHERE {}").format(target, batch, match))
    )
    statements.append(
        (
            "insert",
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}{}").format(
                target, column_names(dialect, columns), column_names(dialect, columns), batch, keep
            ),
        )
    )
    return statements


def append_statement(
    dialect: Dialect, schema: str, table: str, columns: Sequence[str]
) -> sql.Composed:
    """Merge off: every staged row appended, in load order."""
    dialect = parse_dialect(dialect)
    check_columns(f"{schema}.{table}", columns)
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY {}").format(
        qualified_name(dialect, schema, table),
        column_names(dialect, columns),
        column_names(dialect, columns),
        sql.Identifier(STAGE_TABLE),
        sql.Identifier(LOAD_ORDER_COLUMN),
    )
