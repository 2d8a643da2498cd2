"""What a staging schema holds, and which staging schemas retention drops.

Every staging schema records the extract it loaded in ``_etl_staged`` (extract id, data-schema
fingerprint, segment and the scan's total segments), written in the transaction that fills it,
so a publish can refuse a segment whose staging is older than its manifest or was staged under
another split. Staging schemas are named ``<published>__staging__<YYYYMMDD>_<segment>``; after a
publish, those of dates ``keep_days`` or more before the live date are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta

from psycopg import sql

from etl_platform.core.table_spec import ColumnKind, ColumnSpec

from .ddl import SchemaRole, column_type
from .dialect import Dialect, parse_dialect
from .identifiers import qualified_name, require_folded

__all__ = [
    "STAGING_RECORD_TABLE",
    "create_staging_record",
    "expired_staging_schemas",
    "staging_prefix_pattern",
    "staging_record_query",
    "staging_schemas_query",
    "table_exists_query",
]

#: The table in each staging schema naming the extract it holds.
STAGING_RECORD_TABLE = "_etl_staged"

_STAGING_DATE = re.compile(r"^(\d{8})_\d+$")


def create_staging_record(dialect: Dialect | str, schema: str) -> list[sql.Composed]:
    """``CREATE TABLE schema._etl_staged`` and the ``INSERT`` of its one row, for the
    transaction that loads the schema; execute the INSERT (the last statement) with
    ``(extract_id, data_schema_fingerprint, segment, total_segments)``."""
    dialect = parse_dialect(dialect)
    table = qualified_name(dialect, schema, STAGING_RECORD_TABLE)
    text = column_type(dialect, ColumnSpec("t", ColumnKind.TEXT))
    return [
        sql.SQL(
            "CREATE TABLE {} (extract_id {} NOT NULL, data_schema_fingerprint {} NOT NULL, "
            "segment integer NOT NULL, total_segments integer NOT NULL, "
            "staged_at timestamptz NOT NULL)"
        ).format(table, text, text),
        sql.SQL(
            "INSERT INTO {} (extract_id, data_schema_fingerprint, segment, total_segments, "
            "staged_at) VALUES (%s, %s, %s, %s, CURRENT_TIMESTAMP)"
        ).format(table),
    ]


def staging_record_query(dialect: Dialect | str, schema: str) -> sql.Composed:
    """``(extract_id, data_schema_fingerprint, total_segments)`` of the staging schema."""
    return sql.SQL("SELECT extract_id, data_schema_fingerprint, total_segments FROM {}").format(
        qualified_name(parse_dialect(dialect), schema, STAGING_RECORD_TABLE)
    )


def table_exists_query(dialect: Dialect | str) -> sql.Composed:
    """One row when table ``%s.%s`` exists; execute with ``(schema, table)`` as the catalog
    stores them (see :func:`~.identifiers.catalog_name`)."""
    parse_dialect(dialect)
    return sql.SQL(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s"
    ).format()


def staging_schemas_query(dialect: Dialect | str, published: str) -> sql.Composed:
    """The names of schemas that may be staging schemas of ``published``; execute with
    ``(staging_prefix_pattern(published),)`` and filter with :func:`expired_staging_schemas`
    (the LIKE is a coarse pre-filter)."""
    dialect = parse_dialect(dialect)
    require_folded(dialect, published, "published schema name")
    return sql.SQL("SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname LIKE %s").format()


def staging_prefix_pattern(published: str) -> str:
    """The LIKE pattern of ``published``'s staging schemas (``_`` and ``%`` escaped)."""
    prefix = f"{published}__{SchemaRole.STAGING.value}__"
    escaped = prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return escaped + "%"


def expired_staging_schemas(
    names: Iterable[str], published: str, live: date, keep_days: int
) -> list[str]:
    """The staging schemas of ``published`` among ``names`` whose date is ``keep_days`` or
    more days before ``live`` (the published date): with ``keep_days=2`` and live 2026-11-05,
    the staging of 11-04 and 11-05 stays. Names that are not staging schemas of ``published``
    (another target, a malformed date) are never returned."""
    if keep_days < 1:
        raise ValueError(f"keep_staging_days must be at least 1, got {keep_days}")
    prefix = f"{published}__{SchemaRole.STAGING.value}__"
    oldest_kept = live - timedelta(days=keep_days - 1)
    expired = []
    for name in names:
        match = _STAGING_DATE.match(name[len(prefix) :]) if name.startswith(prefix) else None
        if match is None:
            continue
        try:
            day = date(int(match[1][:4]), int(match[1][4:6]), int(match[1][6:]))
        except ValueError:
            continue
        if day < oldest_kept:
            expired.append(name)
    return sorted(expired)
