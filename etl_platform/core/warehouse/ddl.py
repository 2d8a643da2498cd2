"""DDL: column types, table specs, the schemas the platform owns, CREATE/DROP statements.

Primary keys: Redshift does not enforce them and its planner *trusts* them (a declared but
violated key can make ``DISTINCT``/``GROUP BY`` results wrong), so tables are created without
the key, the blocking checks run on plain tables, and :func:`add_primary_key` declares it
afterwards (PostgreSQL then enforces it once more).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from psycopg import sql

from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec

from .dialect import Dialect, parse_dialect
from .identifiers import (
    checked_identifier,
    column_list,
    identifier,
    qualified_name,
    require_folded,
)

__all__ = [
    "SchemaRole",
    "add_primary_key",
    "check_published",
    "column_type",
    "create_schema",
    "create_table",
    "drop_owned_schema",
    "is_owned_schema",
    "new_schema_name",
    "previous_schema_name",
    "publish_lock_schema_name",
    "recreate_owned_schema",
    "require_columns",
    "staging_schema_name",
    "swap_schema_name",
    "type_notes",
    "validate_table_spec",
]


# --------------------------------------------------------------------------------------------
# types
# --------------------------------------------------------------------------------------------


def _check_column(column: ColumnSpec) -> None:
    kind = ColumnKind(column.kind)
    if kind is not ColumnKind.DECIMAL:
        if column.precision is not None or column.scale is not None:
            raise ValueError(
                f"column {column.name!r}: precision/scale are only for DECIMAL, not {kind.value}"
            )
        return
    p, s = column.precision, column.scale
    if p is None:
        if s is not None:
            raise ValueError(f"column {column.name!r}: DECIMAL scale {s} without a precision")
        return
    if p < 1:
        raise ValueError(f"column {column.name!r}: DECIMAL precision must be >= 1, got {p}")
    if s is not None and not 0 <= s <= p:
        raise ValueError(f"column {column.name!r}: DECIMAL scale must be within 0..{p}, got {s}")


def _decimal_fits(dialect: Dialect, column: ColumnSpec) -> bool:
    limit = dialect.max_numeric_precision
    return limit is None or (column.precision is not None and column.precision <= limit)


def column_type(dialect: Dialect | str, column: ColumnSpec) -> sql.SQL:
    """The SQL type of ``column`` in ``dialect`` (:attr:`Dialect.types`).

    PostgreSQL: text, bigint, numeric (always unconstrained: exact and keeps the input scale),
    boolean, bytea, timestamptz, jsonb. Redshift: VARCHAR(65535), BIGINT, NUMERIC(p,s) when the
    precision is known and at most 38 (else VARCHAR(65535): exact digits, no arithmetic; see
    :func:`type_notes`), BOOLEAN, VARBYTE, TIMESTAMPTZ, SUPER.
    """
    dialect = parse_dialect(dialect)
    _check_column(column)
    kind = ColumnKind(column.kind)
    if kind is ColumnKind.DECIMAL and dialect.max_numeric_precision is not None:
        if _decimal_fits(dialect, column):
            precision, scale = int(column.precision or 0), int(column.scale or 0)
            return sql.SQL(f"{dialect.types[kind]}({precision},{scale})")
        return sql.SQL(dialect.types[ColumnKind.TEXT])
    return sql.SQL(dialect.types[kind])


def type_notes(dialect: Dialect | str, spec: TableSpec) -> dict[str, str]:
    """Per column, what the dialect's type cannot do that the logical kind promises (for asset
    metadata and docs). Empty on PostgreSQL, whose types hold every kind exactly."""
    dialect = parse_dialect(dialect)
    notes: dict[str, str] = {}
    for column in spec.columns:
        kind = ColumnKind(column.kind)
        if kind is ColumnKind.DECIMAL and not _decimal_fits(dialect, column):
            why = (
                "precision unknown"
                if column.precision is None
                else f"precision {column.precision} > {dialect.max_numeric_precision}"
            )
            notes[column.name] = (
                f"DECIMAL stored as {dialect.types[ColumnKind.TEXT]} on {dialect.title} ({why}): "
                "digits exact, cast before arithmetic"
            )
        elif kind in dialect.column_notes:
            notes[column.name] = dialect.column_notes[kind]
    return notes


def validate_table_spec(dialect: Dialect | str, spec: TableSpec) -> None:
    """Refuse a spec the dialect cannot hold faithfully: bad names, no columns, duplicate
    columns (case-insensitively where the dialect folds identifiers), key columns missing."""
    dialect = parse_dialect(dialect)
    checked_identifier(dialect, spec.name, "table name")
    if not spec.columns:
        raise ValueError(f"table {spec.name!r} has no columns")
    seen: dict[str, str] = {}
    for column in spec.columns:
        checked_identifier(dialect, column.name, f"column name in table {spec.name!r}")
        _check_column(column)
        key = column.name.lower() if dialect.folds_identifiers_to_lower_case else column.name
        if key in seen:
            extra = (
                f" ({dialect.title} folds identifiers to lower case)"
                if seen[key] != column.name
                else ""
            )
            raise ValueError(
                f"table {spec.name!r}: columns {seen[key]!r} and {column.name!r} collide{extra}"
            )
        seen[key] = column.name
    names = set(spec.column_names)
    missing = [k for k in spec.primary_key if k not in names]
    if missing:
        raise ValueError(f"table {spec.name!r}: primary key columns {missing} are not columns")
    if len(set(spec.primary_key)) != len(spec.primary_key):
        raise ValueError(f"table {spec.name!r}: primary key {spec.primary_key} repeats a column")


def require_columns(spec: TableSpec, columns: Iterable[str], what: str) -> None:
    """``ValueError`` naming ``what`` and the table when a name in ``columns`` is no column."""
    names = set(spec.column_names)
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"{what}: {missing} are not columns of table {spec.name!r}")


# --------------------------------------------------------------------------------------------
# schemas the platform owns
# --------------------------------------------------------------------------------------------


class SchemaRole(StrEnum):
    """Schemas the platform creates and may drop; published schemas are never dropped."""

    STAGING = "staging"
    NEW = "new"
    PREVIOUS = "previous"


_OWNED_SCHEMA = re.compile(r"^.+__(?:new|previous|swap|staging__[a-z0-9_]+)$", re.DOTALL)
_SLUG = re.compile(r"[^a-z0-9]+")


def check_published(dialect: Dialect, published: str) -> None:
    """Refuse a published schema name that is invalid, looks platform-owned, or whose longest
    derived name would not fit the dialect."""
    require_folded(dialect, published, "published schema name")
    if is_owned_schema(published) or published.endswith(LOCK_SCHEMA_SUFFIX):
        raise ValueError(
            f"published schema name {published!r} ends like a platform-owned schema "
            "(__new, __previous, __swap, __staging__*, __lock); pick another name"
        )
    # the longest derived name must fit, or PostgreSQL would truncate it
    checked_identifier(dialect, previous_schema_name(published), "derived schema name")


def staging_schema_name(published: str, partition: str) -> str:
    """``<published>__staging__<partition slug>``: one staging schema per extract partition
    (e.g. ``"2024-01-02|7"`` → ``analytics__staging__2024_01_02_7``)."""
    slug = _SLUG.sub("_", partition.lower()).strip("_")
    if not slug:
        raise ValueError(f"partition {partition!r} has no letters or digits for a schema name")
    return f"{published}__{SchemaRole.STAGING.value}__{slug}"


def new_schema_name(published: str) -> str:
    """``<published>__new``: where ``centralize`` builds the next version."""
    return f"{published}__{SchemaRole.NEW.value}"


def previous_schema_name(published: str) -> str:
    """``<published>__previous``: the version a swap replaced, kept for rollback."""
    return f"{published}__{SchemaRole.PREVIOUS.value}"


#: suffix of the schema holding a target's publish lock table (never renamed or dropped)
LOCK_SCHEMA_SUFFIX = "__lock"


def publish_lock_schema_name(published: str) -> str:
    """``<published>__lock``: where the publish lock table of ``published`` lives. Not the
    published schema itself: the swap renames that, and a publish waiting on the lock table
    would then hold the lock of a table that moved to ``__previous`` while the next publish
    locks a fresh one."""
    return f"{published}{LOCK_SCHEMA_SUFFIX}"


def swap_schema_name(published: str) -> str:
    """``<published>__swap``: the temporary name a rollback passes through."""
    return f"{published}__swap"


def is_owned_schema(name: str) -> bool:
    """True for names this package derives (staging/new/previous/swap), i.e. droppable ones."""
    return bool(_OWNED_SCHEMA.match(name))


def create_schema(dialect: Dialect | str, schema: str) -> sql.Composed:
    """``CREATE SCHEMA IF NOT EXISTS "schema"``."""
    return sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(identifier(dialect, schema))


def drop_owned_schema(dialect: Dialect | str, schema: str) -> sql.Composed:
    """``DROP SCHEMA IF EXISTS "schema" CASCADE`` for a platform-owned schema only
    (:func:`is_owned_schema`); ``ValueError`` for any other name, published ones included."""
    if not is_owned_schema(schema):
        raise ValueError(
            f"refusing to DROP ... CASCADE schema {schema!r}: not a platform-owned "
            "staging/new/previous schema"
        )
    return sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(identifier(dialect, schema))


def recreate_owned_schema(dialect: Dialect | str, schema: str) -> list[sql.Composed]:
    """Drop (cascade) and create a schema the platform owns: a pristine staging or new schema.
    Run in the transaction that fills it, so a failure leaves the previous content."""
    return [drop_owned_schema(dialect, schema), create_schema(dialect, schema)]


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


def create_table(
    dialect: Dialect | str, schema: str | None, spec: TableSpec, *, primary_key: bool = True
) -> list[sql.Composed]:
    """Create-or-replace ``schema.table`` from ``spec``: ``DROP TABLE IF EXISTS`` (no CASCADE: a
    dependent view makes it fail instead of vanishing) then ``CREATE TABLE``. Key columns are
    always ``NOT NULL``; ``primary_key=False`` leaves the constraint for :func:`add_primary_key`
    (informational only on Redshift)."""
    dialect = parse_dialect(dialect)
    validate_table_spec(dialect, spec)
    table = qualified_name(dialect, schema, spec.name)
    keys = set(spec.primary_key)
    elements: list[sql.Composable] = []
    for column in spec.columns:
        not_null = (not column.nullable) or column.name in keys
        elements.append(
            sql.SQL("{} {}{}").format(
                sql.Identifier(column.name),
                column_type(dialect, column),
                sql.SQL(" NOT NULL") if not_null else sql.SQL(""),
            )
        )
    if primary_key and spec.primary_key:
        elements.append(sql.SQL("PRIMARY KEY ({})").format(column_list(dialect, spec.primary_key)))
    return [
        sql.SQL("DROP TABLE IF EXISTS {}").format(table),
        sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(elements)),
    ]


def add_primary_key(dialect: Dialect | str, schema: str | None, spec: TableSpec) -> sql.Composed:
    """``ALTER TABLE ... ADD PRIMARY KEY (...)`` after the checks passed (PostgreSQL validates
    it again; Redshift records it for the planner)."""
    dialect = parse_dialect(dialect)
    validate_table_spec(dialect, spec)
    if not spec.primary_key:
        raise ValueError(f"table {spec.name!r} has no primary key to add")
    return sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
        qualified_name(dialect, schema, spec.name), column_list(dialect, spec.primary_key)
    )
