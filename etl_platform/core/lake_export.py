"""Postgres → date-partitioned Parquet lake: the core (no Dagster, no S3 client of its own).

One lake partition is one table's rows whose date column falls in a half-open UTC window
``[day 00:00Z, next day 00:00Z)``. The rows are streamed from PostgreSQL as Arrow record batches
(ADBC PostgreSQL driver, which reads ``COPY (SELECT ...) TO STDOUT (FORMAT binary)``), converted
to the exact lake types, and encoded into Parquet parts of bounded size. Memory is bounded by one
row group plus a few record batches, whatever the size of the day.

Public API, in the order a daily asset uses it::

    window = day_window(day)
    key_prefix = partition_prefix(prefix, lake_table, day)    # PREFIX/TABLE/year=/month=/day=/
    result = export_day(uri, "public.orders", "created_at", window,
                        sink=upload_part)   # e.g. ObjectStoreResource.upload_stream
    stale = stale_part_keys(keys_listed_under(key_prefix), result.locations)  # delete these
    location = s3_uri(bucket, table_location(prefix, lake_table))
    glue_table_input(lake_table, result.schema, location)      # create_table / update_table
    glue_partition_input(location, result.schema, day)         # batch_create_partition
    count_rows(uri, "public.orders", "created_at", window) == result.rows   # the check
    read_back_check([f"{bucket}/{k}" for k in result.locations], result.rows, result.schema,
                    filesystem=pyarrow.fs.S3FileSystem(...))  # footers only

Decisions (documented here because they change what lands in the lake):

* Window bounds are formatted as exact SQL literals typed like the date column, never bound as
  parameters: with parameters the ADBC driver executes a prepared statement and materializes the
  whole result in libpq (measured: one 1M-row batch, 630 MB RSS) instead of streaming COPY. The
  literals are produced from ``datetime``/``date`` objects only (ISO format, checked by a regex).
* The session time zone is set to UTC. ``timestamptz`` rows are compared as instants, so rows
  stored with any offset land in the right day. A ``timestamp`` (without time zone) date column
  is read as UTC wall-clock time; a ``date`` column's day D is the instant D 00:00Z.
* Types: ``numeric(p,s)`` → ``decimal128(p,s)`` (p ≤ 38); unconstrained ``numeric`` →
  ``decimal128(38, 10)`` by default (``unconstrained_numeric=``); a value that does not fit
  (too many digits, more fractional digits than the scale, NaN, ±Infinity) fails the export
  naming the column and the value; it is never rounded. ``numeric`` with p > 38 is refused at
  planning time (Parquet/Glue decimals stop at 38 digits): export it with ``as_text=``.
  ``timestamptz`` → ``timestamp[us, tz=UTC]``, ``timestamp`` → ``timestamp[us]``, ``date`` →
  ``date32``, ``json``/``jsonb`` → string (the JSON text), ``uuid`` → string (canonical form),
  ``bytea`` → binary, arrays of bool/ints/floats/text/date/timestamps/numeric/bytea → lists of the
  element type, arrays of other element types → ``list<string>``. Multi-dimensional arrays (which
  the driver would silently flatten) and ±infinity dates/timestamps fail the export naming the
  column. Every other type (enum, interval, time, inet, money, range, composite, ...) is exported
  as its PostgreSQL text form (string): lossless, and readable by every engine.
* A day without rows still produces one Parquet part with zero rows, so a partition always has
  a readable file whose schema is the table's.
* ``NOT NULL`` columns are non-nullable fields (Parquet ``required``); every field carries its
  PostgreSQL type in the field metadata (``postgres.type``), which Glue column comments repeat.
  Glue column names are lowercased (Hive folds case; Athena matches Parquet names that way);
  names colliding once lowercased, or with ``year``/``month``/``day``, are refused. Array lower
  bounds other than 1 are not kept (the elements and their order are).
* ``count_rows`` runs the export's exact predicate, in its own snapshot: a day that is still
  receiving rows will (rightly) fail the equality check.
* Parts are named ``part-00000.parquet`` upwards. A rerun rewrites the same names; parts of an
  earlier run beyond the new count must be deleted (``stale_part_keys``).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import IO, Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "DEFAULT_PART_BYTES",
    "DEFAULT_ROW_GROUP_BYTES",
    "DEFAULT_UNCONSTRAINED_NUMERIC",
    "ColumnPlan",
    "ExportResult",
    "ExportedPart",
    "FinishedPart",
    "LakeExportError",
    "LocalDirectorySink",
    "PartSink",
    "PgColumn",
    "ReadBackError",
    "ReadBackReport",
    "TableRef",
    "UnsupportedColumnError",
    "ValueOutOfRangeError",
    "build_count_sql",
    "build_select_sql",
    "count_rows",
    "day_window",
    "export_schema",
    "export_day",
    "glue_columns",
    "glue_partition_input",
    "glue_table_input",
    "hive_type",
    "parse_table_name",
    "part_key",
    "part_name",
    "partition_location",
    "partition_prefix",
    "partition_values",
    "plan_column",
    "read_back_check",
    "s3_uri",
    "stale_part_keys",
    "table_location",
    "window_predicate_literals",
]

DEFAULT_PART_BYTES = 128 * 1024 * 1024
"""Target size of one Parquet part on disk (a part is closed at the first row group past it)."""
DEFAULT_ROW_GROUP_BYTES = 64 * 1024 * 1024
"""Arrow bytes buffered per row group: the main term of the export's peak memory."""
DEFAULT_ROW_GROUP_ROWS = 1_000_000
DEFAULT_BATCH_SIZE_HINT_BYTES = 4 * 1024 * 1024
DEFAULT_UNCONSTRAINED_NUMERIC = (38, 10)
COMPRESSIONS = ("zstd", "snappy")
PARTITION_KEYS = ("year", "month", "day")
PG_TYPE_METADATA_KEY = b"postgres.type"

_MAX_DECIMAL128_PRECISION = 38
# Smallest finite PostgreSQL timestamp (4713-11-24 BC 00:00) in µs since 1970 and date (Julian day
# 0) in days since 1970. The driver turns ±infinity into values far below these.
_PG_MIN_TIMESTAMP_US = -211_813_488_000_000_000 + 946_684_800_000_000
_PG_MIN_DATE_DAYS = -2_440_588
_ISO_LITERAL = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(\+00:00)?)?$")
_PART_NAME = re.compile(r"^part-(\d{5,})\.parquet$")


# --------------------------------------------------------------------------------------------
# Errors


class LakeExportError(Exception):
    """Any failure of the lake export; messages name the table and, where known, the column."""


class UnsupportedColumnError(LakeExportError):
    """A column whose type cannot be represented exactly in the lake."""


class ValueOutOfRangeError(LakeExportError):
    """A value that does not fit the column's lake type (it would otherwise be rounded or lost)."""


class ReadBackError(LakeExportError):
    """Written Parquet parts do not match the expected row count or schema."""


# --------------------------------------------------------------------------------------------
# Windows and keys


def day_window(day: date) -> tuple[datetime, datetime]:
    """The half-open UTC window of one day: ``[day 00:00Z, next day 00:00Z)``."""
    if isinstance(day, datetime):
        raise TypeError(f"day_window takes a date, not a datetime: {day!r}")
    lo = datetime.combine(day, dtime(0), tzinfo=UTC)
    return lo, lo + timedelta(days=1)


def partition_values(day: date) -> tuple[str, str, str]:
    """The Hive partition values of a day, zero-padded as in the keys: ``("2024", "03", "01")``."""
    return f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"


def _clean_prefix(prefix: str) -> str:
    return prefix.strip("/")


def _check_table_segment(table: str) -> None:
    if not table or "/" in table or table != table.strip() or table in (".", ".."):
        raise ValueError(f"invalid lake table name for an S3 key: {table!r}")


def table_location(prefix: str, table: str) -> str:
    """The key prefix of a lake table: ``PREFIX/TABLE/`` (``TABLE/`` when prefix is empty)."""
    _check_table_segment(table)
    p = _clean_prefix(prefix)
    return f"{p}/{table}/" if p else f"{table}/"


def partition_prefix(prefix: str, table: str, day: date) -> str:
    """The one key scheme of lake partitions: ``PREFIX/TABLE/year=YYYY/month=MM/day=DD/``."""
    y, m, d = partition_values(day)
    return f"{table_location(prefix, table)}year={y}/month={m}/day={d}/"


def part_name(index: int) -> str:
    """File name of part ``index``: ``part-00000.parquet``."""
    if index < 0:
        raise ValueError(f"part index must be >= 0, got {index}")
    return f"part-{index:05d}.parquet"


def part_key(prefix: str, table: str, day: date, index: int) -> str:
    """Full key of one part: ``partition_prefix(...) + part_name(index)``."""
    return partition_prefix(prefix, table, day) + part_name(index)


def s3_uri(bucket: str, key: str) -> str:
    """``s3://bucket/key``."""
    if not bucket or "/" in bucket:
        raise ValueError(f"invalid bucket name: {bucket!r}")
    return f"s3://{bucket}/{key.lstrip('/')}"


def partition_location(bucket: str, prefix: str, table: str, day: date) -> str:
    """S3 URI of one day's partition (the Glue partition location)."""
    return s3_uri(bucket, partition_prefix(prefix, table, day))


def stale_part_keys(existing: Iterable[str], written: Iterable[str]) -> list[str]:
    """Part objects under a partition prefix that a rerun did not rewrite (delete them).

    ``existing``: keys listed under the partition prefix after the export; ``written``: the
    keys the export produced. Only ``part-NNNNN.parquet`` names are considered, so unrelated
    objects (markers, manifests) are left alone.
    """
    keep = set(written)
    return sorted(k for k in existing if k not in keep and _PART_NAME.match(k.rsplit("/", 1)[-1]))


# --------------------------------------------------------------------------------------------
# Tables, columns, type mapping (pure)


@dataclass(frozen=True)
class TableRef:
    """A possibly schema-qualified table name (unquoted parts)."""

    schema: str | None
    name: str

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def identifier(self) -> Any:
        """The quoted identifier (``psycopg.sql.Identifier``)."""
        from psycopg import sql

        return sql.Identifier(self.schema, self.name) if self.schema else sql.Identifier(self.name)


def parse_table_name(table: str) -> TableRef:
    """``"orders"`` or ``"sales.orders"`` → :class:`TableRef`. Names are taken literally (case
    kept, no quote characters expected); a name with more than one dot is refused."""
    if not isinstance(table, str) or not table.strip():
        raise ValueError(f"table name must be a non-empty string, got {table!r}")
    parts = table.split(".")
    if len(parts) > 2 or any(not p for p in parts) or '"' in table:
        raise ValueError(f"invalid table name {table!r}: expected 'table' or 'schema.table'")
    if len(parts) == 2:
        return TableRef(parts[0], parts[1])
    return TableRef(None, parts[0])


@dataclass(frozen=True)
class PgColumn:
    """One column as the catalog describes it (domains resolved to their base type)."""

    name: str
    declared: str  # format_type(): "numeric(18,4)", "timestamp with time zone", "text[]"
    type_name: str  # base pg_type.typname: "numeric", "_text", "timestamptz"
    typmod: int = -1
    element_type: str | None = None  # arrays: element typname ("text", "int4", ...)
    not_null: bool = False
    is_domain_chain: bool = False  # a domain over a domain: exported as text


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is selected and converted."""

    name: str
    declared: str
    arrow_type: pa.DataType
    cast_sql: str | None  # None: select the column as is; else a SQL type to cast to ("text")
    check_ndims: bool = False
    nullable: bool = True

    @property
    def field(self) -> pa.Field:
        return pa.field(
            self.name,
            self.arrow_type,
            nullable=self.nullable,
            metadata={PG_TYPE_METADATA_KEY: self.declared.encode()},
        )


_SCALAR_TYPES: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "bytea": pa.binary(),
    "json": pa.string(),
    "jsonb": pa.string(),
}
# Element types the driver reads natively inside arrays.
_NATIVE_ARRAY_ELEMENTS = frozenset(
    {
        "bool",
        "int2",
        "int4",
        "int8",
        "float4",
        "float8",
        "text",
        "varchar",
        "bpchar",
        "name",
        "date",
        "timestamp",
        "timestamptz",
        "bytea",
    }
)


def _numeric_type(
    table: str, col: str, typmod: int, unconstrained: tuple[int, int]
) -> pa.Decimal128Type:
    if typmod < 0:
        p, s = unconstrained
    else:
        p = ((typmod - 4) >> 16) & 0xFFFF
        s = (((typmod - 4) & 0x7FF) ^ 1024) - 1024  # PostgreSQL 15+ allows negative scales
        if s < 0:  # numeric(5,-2): integers with up to p - s digits
            p, s = p - s, 0
        elif s > p:  # numeric(2,5): 0.000xx
            p = s
    if p > _MAX_DECIMAL128_PRECISION:
        raise UnsupportedColumnError(
            f"{table}.{col}: numeric precision {p} exceeds the {_MAX_DECIMAL128_PRECISION} digits "
            f"of Parquet decimal128 / Glue decimal; export it as text (as_text=[{col!r}])"
        )
    return pa.decimal128(p, s)


def plan_column(
    table: str,
    col: PgColumn,
    *,
    as_text: bool = False,
    unconstrained_numeric: tuple[int, int] = DEFAULT_UNCONSTRAINED_NUMERIC,
) -> ColumnPlan:
    """The lake type and select expression of one column (see the module docstring)."""
    nullable = not col.not_null

    def plan(arrow_type: pa.DataType, cast_sql: str | None, ndims: bool = False) -> ColumnPlan:
        return ColumnPlan(col.name, col.declared, arrow_type, cast_sql, ndims, nullable)

    if as_text or col.is_domain_chain:
        return plan(pa.string(), "text")
    t = col.type_name
    if col.element_type is not None:
        e = col.element_type
        if e == "numeric":
            elem = _numeric_type(table, col.name, col.typmod, unconstrained_numeric)
            return plan(pa.list_(elem), "text[]", True)
        if e in _NATIVE_ARRAY_ELEMENTS:
            return plan(pa.list_(_SCALAR_TYPES[e]), None, True)
        return plan(pa.list_(pa.string()), "text[]", True)
    if t == "numeric":
        return plan(_numeric_type(table, col.name, col.typmod, unconstrained_numeric), None)
    if t in _SCALAR_TYPES:
        return plan(_SCALAR_TYPES[t], None)
    return plan(pa.string(), "text")  # uuid, enums, interval, time, inet, money, ...


DATE_COLUMN_TYPES = ("timestamptz", "timestamp", "date")


def window_predicate_literals(date_type: str, window: tuple[datetime, datetime]) -> tuple[str, str]:
    """Exact SQL literals ``(lo, hi)`` for ``col >= lo AND col < hi`` with a date column of type
    ``timestamptz``, ``timestamp`` (UTC wall clock) or ``date`` (day D = instant D 00:00Z)."""
    lo, hi = _check_window(window)
    if date_type == "timestamptz":
        vals = (lo.isoformat(timespec="microseconds"), hi.isoformat(timespec="microseconds"))
    elif date_type == "timestamp":
        vals = tuple(v.replace(tzinfo=None).isoformat(timespec="microseconds") for v in (lo, hi))
    elif date_type == "date":
        vals = tuple(_ceil_date(v).isoformat() for v in (lo, hi))
    else:
        raise UnsupportedColumnError(
            f"date column type {date_type!r} is not one of {', '.join(DATE_COLUMN_TYPES)}"
        )
    for v in vals:
        if not _ISO_LITERAL.match(v):  # defence in depth: only digits and ISO punctuation
            raise ValueError(f"refusing window literal {v!r}")
    return f"'{vals[0]}'::{date_type}", f"'{vals[1]}'::{date_type}"


def _ceil_date(v: datetime) -> date:
    d = v.date()
    return d if v.timetz().replace(tzinfo=None) == dtime(0) else d + timedelta(days=1)


def _check_window(window: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
    lo, hi = window
    for v in (lo, hi):
        if not isinstance(v, datetime) or v.tzinfo is None or v.utcoffset() is None:
            raise ValueError(f"window bounds must be timezone-aware datetimes, got {v!r}")
    lo, hi = lo.astimezone(UTC), hi.astimezone(UTC)
    if not lo < hi:
        raise ValueError(f"empty window: {lo.isoformat()} >= {hi.isoformat()}")
    return lo, hi


def _ndims_alias(i: int) -> str:
    return f"__lake_ndims_{i}"


def build_select_sql(
    table: TableRef,
    plans: Sequence[ColumnPlan],
    date_column: str,
    date_type: str,
    window: tuple[datetime, datetime],
) -> Any:
    """The streaming query (``psycopg.sql.Composed``): the planned columns, one boolean
    ``array_ndims(c) > 1`` helper per array column, and the half-open window predicate."""
    from psycopg import sql

    items = []
    for p in plans:
        ident = sql.Identifier(p.name)
        if p.cast_sql is None:
            items.append(ident)
        else:
            items.append(sql.SQL("{}::{} AS {}").format(ident, sql.SQL(p.cast_sql), ident))
    for i, p in enumerate(plans):
        if p.check_ndims:
            items.append(
                sql.SQL("array_ndims({}) > 1 AS {}").format(
                    sql.Identifier(p.name), sql.Identifier(_ndims_alias(i))
                )
            )
    lo, hi = window_predicate_literals(date_type, window)
    dc = sql.Identifier(date_column)
    return sql.SQL("SELECT {} FROM {} WHERE {} >= {} AND {} < {}").format(
        sql.SQL(", ").join(items), table.identifier(), dc, sql.SQL(lo), dc, sql.SQL(hi)
    )


def build_count_sql(
    table: TableRef, date_column: str, date_type: str, window: tuple[datetime, datetime]
) -> Any:
    """``SELECT count(*)`` with exactly the export's window predicate."""
    from psycopg import sql

    lo, hi = window_predicate_literals(date_type, window)
    dc = sql.Identifier(date_column)
    return sql.SQL("SELECT count(*) FROM {} WHERE {} >= {} AND {} < {}").format(
        table.identifier(), dc, sql.SQL(lo), dc, sql.SQL(hi)
    )


# --------------------------------------------------------------------------------------------
# Catalog (psycopg)

_CATALOG_SQL = """
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod),
       bt.typname,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       et.typname,
       a.attnotnull OR (t.typtype = 'd' AND t.typnotnull),
       bt.typtype = 'd' OR et.typtype = 'd'
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_catalog.pg_type et ON bt.typcategory = 'A' AND et.oid = bt.typelem
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def _connect_psycopg(uri: str, statement_timeout_ms: int | None, table: TableRef) -> Any:
    import psycopg

    try:
        conn = psycopg.connect(uri, autocommit=True)
    except psycopg.Error as e:
        raise LakeExportError(f"{table.display}: cannot connect to the source: {e}") from e
    conn.execute("SET TIME ZONE 'UTC'")
    if statement_timeout_ms is not None:
        conn.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
    return conn


def _read_catalog(conn: Any, table: TableRef) -> list[PgColumn]:
    qualified = table.identifier().as_string(conn)
    row = conn.execute("SELECT to_regclass(%s)::oid", (qualified,)).fetchone()
    if row is None or row[0] is None:
        raise LakeExportError(f"table {table.display} not found (looked up as {qualified})")
    rows = conn.execute(_CATALOG_SQL, (row[0],)).fetchall()
    return [
        PgColumn(
            name=r[0],
            declared=r[1],
            type_name=r[2],
            typmod=r[3],
            element_type=r[4],
            not_null=bool(r[5]),
            is_domain_chain=bool(r[6]),
        )
        for r in rows
    ]


def _select_columns(
    table: TableRef, catalog: Sequence[PgColumn], columns: Sequence[str] | None
) -> list[PgColumn]:
    by_name = {c.name: c for c in catalog}
    if columns is None:
        return list(catalog)
    if isinstance(columns, str):
        raise TypeError("columns must be a sequence of column names, not a string")
    seen: set[str] = set()
    out = []
    for name in columns:
        if name in seen:
            raise LakeExportError(f"{table.display}: column {name!r} listed twice")
        seen.add(name)
        if name not in by_name:
            raise LakeExportError(
                f"{table.display}: no column {name!r} (columns: {', '.join(by_name)})"
            )
        out.append(by_name[name])
    if not out:
        raise LakeExportError(f"{table.display}: empty column list")
    return out


def _plan(
    table: TableRef,
    catalog: Sequence[PgColumn],
    columns: Sequence[str] | None,
    date_column: str,
    as_text: Collection[str],
    unconstrained_numeric: tuple[int, int],
) -> tuple[list[ColumnPlan], str]:
    by_name = {c.name: c for c in catalog}
    if date_column not in by_name:
        raise LakeExportError(
            f"{table.display}: no date column {date_column!r} (columns: {', '.join(by_name)})"
        )
    dcol = by_name[date_column]
    if dcol.element_type is not None or dcol.type_name not in DATE_COLUMN_TYPES:
        raise UnsupportedColumnError(
            f"{table.display}.{date_column}: date column has type {dcol.declared}; "
            f"expected timestamptz, timestamp or date"
        )
    unknown = set(as_text) - set(by_name)
    if unknown:
        raise LakeExportError(f"{table.display}: as_text names unknown columns {sorted(unknown)}")
    selected = _select_columns(table, catalog, columns)
    plans = [
        plan_column(
            table.display,
            c,
            as_text=c.name in as_text,
            unconstrained_numeric=unconstrained_numeric,
        )
        for c in selected
    ]
    reserved = {_ndims_alias(i) for i in range(len(plans))} & {p.name for p in plans}
    if reserved:
        raise LakeExportError(f"{table.display}: column names {sorted(reserved)} are reserved")
    return plans, dcol.type_name


def export_schema(
    uri: str,
    table: str,
    date_column: str,
    *,
    columns: Sequence[str] | None = None,
    as_text: Collection[str] = (),
    unconstrained_numeric: tuple[int, int] = DEFAULT_UNCONSTRAINED_NUMERIC,
) -> pa.Schema:
    """The Arrow schema an export of ``table`` would write (catalog only; no rows read).

    Lets a component create the Glue table or validate config before exporting anything."""
    ref = parse_table_name(table)
    with _connect_psycopg(uri, None, ref) as conn:
        catalog = _read_catalog(conn, ref)
    plans, _ = _plan(ref, catalog, columns, date_column, as_text, unconstrained_numeric)
    return pa.schema([p.field for p in plans])


def count_rows(
    uri: str,
    table: str,
    date_column: str,
    window: tuple[datetime, datetime],
    *,
    statement_timeout_ms: int | None = None,
) -> int:
    """Rows of ``table`` whose ``date_column`` is in the half-open window: the same predicate as
    :func:`export_day`, so the validation check compares like with like."""
    ref = parse_table_name(table)
    with _connect_psycopg(uri, statement_timeout_ms, ref) as conn:
        catalog = _read_catalog(conn, ref)
        _, date_type = _plan(ref, catalog, [date_column], date_column, (), (38, 10))
        row = conn.execute(build_count_sql(ref, date_column, date_type, window)).fetchone()
    return int(row[0])


# --------------------------------------------------------------------------------------------
# Sinks


@dataclass(frozen=True)
class FinishedPart:
    """A closed Parquet part in the spool directory, handed to the sink."""

    index: int
    name: str  # part-00000.parquet
    path: Path  # local file; the sink may move or delete it
    rows: int
    bytes: int


class PartSink(Protocol):
    """Where finished parts go. Called once per part, in index order, from the export's writer
    thread (``threaded=True``) or the caller's thread. Returns the part's location (an S3 key, a
    path). After it returns, the export deletes ``part.path`` if it still exists."""

    def __call__(self, part: FinishedPart) -> str: ...


class LocalDirectorySink:
    """Moves parts into a directory as ``part-NNNNN.parquet``; locations are the file paths."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, part: FinishedPart) -> str:
        target = self.directory / part.name
        shutil.move(str(part.path), target)
        return str(target)


# --------------------------------------------------------------------------------------------
# Export


@dataclass(frozen=True)
class ExportedPart:
    index: int
    name: str
    location: str  # what the sink returned
    rows: int
    bytes: int


@dataclass(frozen=True)
class ExportResult:
    """What one ``export_day`` wrote."""

    table: str
    window: tuple[datetime, datetime]
    rows: int
    parts: tuple[ExportedPart, ...]
    bytes: int
    schema: pa.Schema
    duration_s: float
    query: str = field(repr=False, default="")

    @property
    def locations(self) -> list[str]:
        """The sink's location of every part (S3 keys with an S3 uploading sink)."""
        return [p.location for p in self.parts]

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.duration_s if self.duration_s > 0 else 0.0


def _unwrap(arr: pa.Array) -> pa.Array:
    while isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    return arr


def _first_bad_value(arr: pa.Array, target: pa.DataType) -> Any:
    for v in arr.to_pylist():
        if v is None:
            continue
        try:
            pc.cast(pa.array([v], type=arr.type), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return v
    return None


class _Converter:
    """Turns the driver's record batches into batches of the planned schema, checking every
    value that could otherwise be lost (decimal overflow/rescale, infinity, nested arrays)."""

    def __init__(self, table: str, plans: Sequence[ColumnPlan]) -> None:
        self.table = table
        self.plans = list(plans)
        self.schema = pa.schema([p.field for p in plans])
        self.ndims_index = {
            i: len(plans) + k for k, i in enumerate(i for i, p in enumerate(plans) if p.check_ndims)
        }

    def _fail(self, plan: ColumnPlan, what: str) -> ValueOutOfRangeError:
        return ValueOutOfRangeError(
            f"{self.table}.{plan.name} ({plan.declared} → {plan.arrow_type}): {what}"
        )

    def convert(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        n_expected = len(self.plans) + len(self.ndims_index)
        if batch.num_columns != n_expected:
            raise LakeExportError(
                f"{self.table}: driver returned {batch.num_columns} columns, expected {n_expected}"
            )
        out = []
        for i, plan in enumerate(self.plans):
            arr = self._convert_column(plan, _unwrap(batch.column(i)))
            if i in self.ndims_index:
                flag = batch.column(self.ndims_index[i])
                if pc.any(flag).as_py():
                    raise self._fail(
                        plan,
                        "multi-dimensional array value (the lake holds one-dimensional lists);"
                        f" export it as text (as_text=[{plan.name!r}])",
                    )
            out.append(arr)
        return pa.RecordBatch.from_arrays(out, schema=self.schema)

    def _convert_column(self, plan: ColumnPlan, arr: pa.Array) -> pa.Array:
        target = plan.arrow_type
        if arr.type != target:
            try:
                arr = pc.cast(arr, target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                values = arr.flatten() if pa.types.is_list(arr.type) else arr
                vtarget = target.value_type if pa.types.is_list(target) else target
                bad = _first_bad_value(values, vtarget)
                shown = repr(bad)[:80] if bad is not None else "?"
                hint = f"export it as text (as_text=[{plan.name!r}])"
                if plan.declared in ("numeric", "numeric[]"):
                    hint = f"widen unconstrained_numeric or {hint}"
                raise self._fail(plan, f"value {shown} does not fit ({e}); {hint}") from e
        self._check_range(plan, arr)
        return arr

    def _check_range(self, plan: ColumnPlan, arr: pa.Array) -> None:
        vt = arr.type.value_type if pa.types.is_list(arr.type) else arr.type
        if not (pa.types.is_timestamp(vt) or pa.types.is_date32(vt)):
            return
        values = arr.flatten() if pa.types.is_list(arr.type) else arr
        if len(values) == 0 or values.null_count == len(values):
            return
        storage = pa.int64() if pa.types.is_timestamp(vt) else pa.int32()
        lo = pc.min(values.view(storage)).as_py()
        bound = _PG_MIN_TIMESTAMP_US if pa.types.is_timestamp(vt) else _PG_MIN_DATE_DAYS
        if lo is not None and lo < bound:
            raise self._fail(
                plan,
                "infinite or out-of-range value (±infinity has no Parquet representation); "
                f"export it as text (as_text=[{plan.name!r}])",
            )


_SENTINEL = object()


class _PartWriter:
    """Accumulates converted batches into row groups and row groups into size-bounded parts."""

    def __init__(
        self,
        schema: pa.Schema,
        spool: Path,
        sink: PartSink,
        *,
        compression: str,
        compression_level: int | None,
        part_bytes: int | None,
        part_rows: int | None,
        row_group_bytes: int,
        row_group_rows: int,
        use_dictionary: bool | Sequence[str],
    ) -> None:
        self.schema = schema
        self.spool = spool
        self.sink = sink
        self.compression = compression
        self.compression_level = compression_level
        self.part_bytes = part_bytes
        self.part_rows = part_rows
        self.row_group_bytes = row_group_bytes
        self.row_group_rows = row_group_rows
        self.use_dictionary = use_dictionary
        self.parts: list[ExportedPart] = []
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._file: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._part_rows = 0
        self._path: Path | None = None

    def _open(self) -> None:
        index = len(self.parts)
        self._path = self.spool / part_name(index)
        self._file = pa.OSFile(str(self._path), "wb")
        self._writer = pq.ParquetWriter(
            self._file,
            self.schema,
            compression=self.compression,
            compression_level=self.compression_level,
            use_dictionary=self.use_dictionary,
            write_statistics=True,
            version="2.6",
            store_schema=True,
        )
        self._part_rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            room = self.row_group_rows - self._pending_rows
            if self.part_rows is not None:
                room = min(room, self.part_rows - self._part_rows - self._pending_rows)
            head = batch if batch.num_rows <= room else batch.slice(0, room)
            batch = batch.slice(head.num_rows) if head is not batch else batch.slice(0, 0)
            self._pending.append(head)
            self._pending_rows += head.num_rows
            self._pending_bytes += head.nbytes
            if (
                self._pending_rows >= self.row_group_rows
                or self._pending_bytes >= self.row_group_bytes
                or (
                    self.part_rows is not None
                    and self._part_rows + self._pending_rows >= self.part_rows
                )
            ):
                self._flush_row_group()

    def _flush_row_group(self) -> None:
        if not self._pending_rows:
            return
        if self._writer is None:
            self._open()
        assert self._writer is not None
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._part_rows += table.num_rows
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        del table
        full_rows = self.part_rows is not None and self._part_rows >= self.part_rows
        full_bytes = self.part_bytes is not None and self._file.tell() >= self.part_bytes
        if full_rows or full_bytes:
            self._close_part()

    def _close_part(self) -> None:
        assert self._writer is not None and self._path is not None
        self._writer.close()
        self._file.close()
        self._writer = None
        path, self._path = self._path, None
        index = len(self.parts)
        # the part must read back (footer only) before anyone uploads it
        read_back_check([path], self._part_rows, self.schema)
        finished = FinishedPart(index, path.name, path, self._part_rows, path.stat().st_size)
        self._part_rows = 0
        location = self.sink(finished)
        if path.exists():
            path.unlink()
        self.parts.append(
            ExportedPart(index, finished.name, str(location), finished.rows, finished.bytes)
        )

    def finish(self) -> None:
        self._flush_row_group()
        if self._writer is None and not self.parts:
            self._open()  # a day without rows: one empty part carrying the schema
        if self._writer is not None:
            self._close_part()

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._file.close()
            self._writer = None
        self._pending = []


class _ThreadedWriter:
    """Runs a :class:`_PartWriter` on its own thread so that fetching/converting (caller thread)
    overlaps Parquet encoding, compression and the sink (pyarrow releases the GIL). The queue
    bounds how many converted batches wait."""

    def __init__(self, writer: _PartWriter, depth: int) -> None:
        self.writer = writer
        self.q: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self.error: BaseException | None = None
        self._abort = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lake-export-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                item = self.q.get()
                if self._abort.is_set() or item is None:
                    return
                if item is _SENTINEL:
                    self.writer.finish()
                    return
                self.writer.add(item)
        except BaseException as e:  # handed to the caller thread
            self.error = e
            self.writer.abort()

    def _put(self, item: Any) -> None:
        while True:
            if self.error is not None:
                raise self.error
            if not self.thread.is_alive():
                raise LakeExportError("lake export writer thread stopped unexpectedly")
            try:
                self.q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def add(self, batch: pa.RecordBatch) -> None:
        self._put(batch)

    def finish(self) -> None:
        self._put(_SENTINEL)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self._abort.set()
        while True:  # drop what is queued and wake the writer
            try:
                self.q.get_nowait()
            except queue.Empty:
                break
        try:
            self.q.put_nowait(None)
        except queue.Full:
            pass
        self.thread.join(timeout=120)  # a sink call in progress finishes first
        if not self.thread.is_alive():
            self.writer.abort()


class _AdbcSession:
    """A low-level ADBC connection (``adbc_driver_manager`` objects, not its DB-API module, which
    imports pandas and polars: ~70 MB of RSS for nothing)."""

    def __init__(self, uri: str, statement_timeout_ms: int | None) -> None:
        import adbc_driver_manager
        import adbc_driver_postgresql

        self._mgr = adbc_driver_manager
        self.db = adbc_driver_postgresql.connect(uri)
        try:
            self.conn = adbc_driver_manager.AdbcConnection(self.db)
        except BaseException:
            self.db.close()
            raise
        self.execute_update("SET TIME ZONE 'UTC'")
        if statement_timeout_ms is not None:
            self.execute_update(f"SET statement_timeout = {int(statement_timeout_ms)}")

    def execute_update(self, query: str) -> None:
        with self._mgr.AdbcStatement(self.conn) as stmt:
            stmt.set_sql_query(query)
            stmt.execute_update()

    def stream(self, query: str, options: Mapping[str, str]) -> Iterator[pa.RecordBatch]:
        with self._mgr.AdbcStatement(self.conn) as stmt:
            if options:
                stmt.set_options(**options)
            stmt.set_sql_query(query)
            handle, _ = stmt.execute_query()
            reader = pa.RecordBatchReader._import_from_c(handle.address)
            try:
                while True:
                    try:
                        yield reader.read_next_batch()
                    except StopIteration:
                        return
            finally:
                reader.close()

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.db.close()


def export_day(
    uri: str,
    table: str,
    date_column: str,
    window: tuple[datetime, datetime],
    *,
    sink: PartSink,
    columns: Sequence[str] | None = None,
    as_text: Collection[str] = (),
    compression: str = "zstd",
    compression_level: int | None = None,
    part_bytes: int | None = DEFAULT_PART_BYTES,
    part_rows: int | None = None,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    unconstrained_numeric: tuple[int, int] = DEFAULT_UNCONSTRAINED_NUMERIC,
    batch_size_hint_bytes: int | None = DEFAULT_BATCH_SIZE_HINT_BYTES,
    use_dictionary: bool | Sequence[str] = True,
    progress: Callable[[int], None] | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    threaded: bool = True,
    queue_depth: int = 4,
    statement_timeout_ms: int | None = None,
) -> ExportResult:
    """Stream the rows of ``table`` whose ``date_column`` is in ``window`` (half-open, UTC) into
    Parquet parts handed one by one to ``sink``; memory stays bounded by one row group.

    ``table``: ``"name"`` or ``"schema.name"``. ``columns``: names to export (default: all, in
    table order). ``as_text``: columns exported as their PostgreSQL text form. ``compression``:
    ``"zstd"`` (default) or ``"snappy"``. A part is closed once it reaches ``part_bytes`` on disk
    (checked after each row group) or exactly ``part_rows`` rows. ``row_group_bytes`` /
    ``row_group_rows`` bound a row group (and the memory). ``progress(rows_so_far)`` is called
    from the caller's thread after each record batch. Parts are written to ``spool_dir`` (a
    temporary directory by default, removed at the end; if given, a directory of its own, not the
    sink's) before the sink takes them; at most one part is on local disk at a time.

    On failure no part is left in the spool; parts already handed to the sink stay where the sink
    put them (a rerun overwrites them; see :func:`stale_part_keys`).
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    for name, v in (("part_bytes", part_bytes), ("part_rows", part_rows)):
        if v is not None and v <= 0:
            raise ValueError(f"{name} must be positive or None, got {v}")
    if row_group_bytes <= 0 or row_group_rows <= 0:
        raise ValueError("row_group_bytes and row_group_rows must be positive")
    window = _check_window(window)
    ref = parse_table_name(table)
    started = time.perf_counter()

    with _connect_psycopg(uri, statement_timeout_ms, ref) as pconn:
        catalog = _read_catalog(pconn, ref)
        plans, date_type = _plan(ref, catalog, columns, date_column, as_text, unconstrained_numeric)
        query = build_select_sql(ref, plans, date_column, date_type, window).as_string(pconn)
    converter = _Converter(ref.display, plans)

    own_spool = spool_dir is None
    spool = Path(tempfile.mkdtemp(prefix="lake-export-")) if spool_dir is None else Path(spool_dir)
    spool.mkdir(parents=True, exist_ok=True)
    part_writer = _PartWriter(
        converter.schema,
        spool,
        sink,
        compression=compression,
        compression_level=compression_level,
        part_bytes=part_bytes,
        part_rows=part_rows,
        row_group_bytes=row_group_bytes,
        row_group_rows=row_group_rows,
        use_dictionary=use_dictionary,
    )
    writer: _PartWriter | _ThreadedWriter = (
        _ThreadedWriter(part_writer, queue_depth) if threaded else part_writer
    )
    rows = 0
    batches = _stream(uri, ref.display, query, batch_size_hint_bytes, statement_timeout_ms)
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            writer.add(converter.convert(batch))
            rows += batch.num_rows
            if progress is not None:
                progress(rows)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        try:
            batches.close()  # closes the driver's stream and connection now, also on errors
        finally:
            if own_spool:
                shutil.rmtree(spool, ignore_errors=True)
            else:
                for leftover in spool.glob("part-*.parquet"):
                    if leftover.name not in {p.name for p in part_writer.parts}:
                        leftover.unlink(missing_ok=True)

    parts = tuple(part_writer.parts)
    written_rows = sum(p.rows for p in parts)
    if written_rows != rows:  # cannot happen unless the writer is broken; never publish it
        raise LakeExportError(f"{ref.display}: read {rows} rows but wrote {written_rows}")
    return ExportResult(
        table=ref.display,
        window=window,
        rows=rows,
        parts=parts,
        bytes=sum(p.bytes for p in parts),
        schema=converter.schema,
        duration_s=time.perf_counter() - started,
        query=query,
    )


def _stream(
    uri: str,
    table: str,
    query: str,
    batch_size_hint_bytes: int | None,
    statement_timeout_ms: int | None,
) -> Iterator[pa.RecordBatch]:
    try:
        session = _AdbcSession(uri, statement_timeout_ms)
    except Exception as e:
        raise LakeExportError(f"{table}: cannot connect for the export: {e}") from e
    options = {}
    if batch_size_hint_bytes is not None:
        options["adbc.postgresql.batch_size_hint_bytes"] = str(int(batch_size_hint_bytes))
    batches = session.stream(query, options)
    try:
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except Exception as e:
                raise LakeExportError(f"{table}: export query failed: {e}") from e
            yield batch
    finally:
        try:
            batches.close()  # reader, then statement: an unfinished COPY is abandoned here
        finally:
            session.close()


# --------------------------------------------------------------------------------------------
# Glue (pure)

PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def hive_type(t: pa.DataType) -> str:
    """The Hive/Glue type of an Arrow type: ``decimal(18,4)``, ``timestamp``, ``array<string>``."""
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t):
        return "tinyint"
    if pa.types.is_int16(t):
        return "smallint"
    if pa.types.is_int32(t):
        return "int"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_float32(t):
        return "float"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_decimal(t):
        if t.precision > _MAX_DECIMAL128_PRECISION:
            raise UnsupportedColumnError(f"decimal precision {t.precision} exceeds Hive's 38")
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_struct(t):
        inner = ",".join(f"{f.name}:{hive_type(f.type)}" for f in t)
        return f"struct<{inner}>"
    if pa.types.is_map(t):
        return f"map<{hive_type(t.key_type)},{hive_type(t.item_type)}>"
    raise UnsupportedColumnError(f"no Hive type for Arrow type {t}")


def glue_columns(schema: pa.Schema) -> list[dict[str, str]]:
    """Glue ``Columns`` of a schema; comments carry the PostgreSQL type. Names must stay distinct
    once lowercased (Hive folds case) and must not collide with the partition keys."""
    seen: dict[str, str] = {}
    cols = []
    for f in schema:
        low = f.name.lower()
        if low in PARTITION_KEYS:
            raise UnsupportedColumnError(
                f"column {f.name!r} collides with the partition key {low!r}"
            )
        if low in seen:
            raise UnsupportedColumnError(
                f"columns {seen[low]!r} and {f.name!r} collide once lowercased"
            )
        seen[low] = f.name
        col = {"Name": low, "Type": hive_type(f.type)}
        pg = (f.metadata or {}).get(PG_TYPE_METADATA_KEY)
        if pg:
            col["Comment"] = f"postgres: {pg.decode()}"[:255]
        cols.append(col)
    return cols


def _storage_descriptor(schema: pa.Schema, location: str, compression: str) -> dict[str, Any]:
    return {
        "Columns": glue_columns(schema),
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "Compressed": True,
        "SerdeInfo": {
            "SerializationLibrary": PARQUET_SERDE,
            "Parameters": {"serialization.format": "1"},
        },
        "Parameters": {"classification": "parquet", "parquet.compression": compression.upper()},
        "StoredAsSubDirectories": False,
    }


def _location_dir(location: str) -> str:
    if not location.startswith("s3://"):
        raise ValueError(f"Glue locations are s3:// URIs, got {location!r}")
    return location if location.endswith("/") else location + "/"


def glue_table_input(
    name: str,
    schema: pa.Schema,
    location: str,
    *,
    compression: str = "zstd",
    description: str | None = None,
) -> dict[str, Any]:
    """Glue ``TableInput`` for a lake table (``create_table``/``update_table``): an external
    Parquet table at ``location`` (``s3://bucket/PREFIX/TABLE/``) partitioned by string keys
    ``year``/``month``/``day``."""
    if not name or name != name.lower() or "." in name:
        raise ValueError(f"Glue table names are lowercase without dots, got {name!r}")
    table_input: dict[str, Any] = {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "EXTERNAL": "TRUE",
            "classification": "parquet",
            "parquet.compression": compression.upper(),
        },
        "StorageDescriptor": _storage_descriptor(schema, _location_dir(location), compression),
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in PARTITION_KEYS],
    }
    if description:
        table_input["Description"] = description
    return table_input


def glue_partition_input(
    table_location: str, schema: pa.Schema, day: date, *, compression: str = "zstd"
) -> dict[str, Any]:
    """Glue ``PartitionInput`` of one day (``batch_create_partition``; not MSCK): values
    ``["YYYY", "MM", "DD"]``, location ``table_location + year=YYYY/month=MM/day=DD/``."""
    y, m, d = partition_values(day)
    location = f"{_location_dir(table_location)}year={y}/month={m}/day={d}/"
    return {
        "Values": [y, m, d],
        "StorageDescriptor": _storage_descriptor(schema, location, compression),
        "Parameters": {},
    }


# --------------------------------------------------------------------------------------------
# Read-back check (footers only)


@dataclass(frozen=True)
class ReadBackReport:
    rows: int
    parts: int
    row_groups: int
    schema: pa.Schema


ParquetSource = str | os.PathLike[str] | bytes | pa.Buffer | pa.NativeFile | IO[bytes]


def read_back_check(
    sources: Iterable[ParquetSource],
    expected_rows: int,
    expected_schema: pa.Schema,
    *,
    filesystem: Any = None,
) -> ReadBackReport:
    """Check written parts from their Parquet footers only (no data pages are read): they open,
    their rows add up to ``expected_rows`` and each part's schema equals ``expected_schema``
    (names, types, nullability; metadata ignored). Sources: paths (with ``filesystem``, e.g.
    ``pyarrow.fs.S3FileSystem``, for ``bucket/key`` paths), bytes/buffers of whole files, or
    open binary files. Raises :class:`ReadBackError`."""
    total = 0
    n_parts = 0
    row_groups = 0
    problems: list[str] = []
    for i, src in enumerate(sources):
        label = str(src) if isinstance(src, str | os.PathLike) else f"part #{i}"
        try:
            if isinstance(src, bytes | bytearray | memoryview):
                src = pa.BufferReader(pa.py_buffer(src))
            elif isinstance(src, pa.Buffer):
                src = pa.BufferReader(src)
            if isinstance(src, os.PathLike):
                src = os.fspath(src)
            pf = pq.ParquetFile(src, filesystem=filesystem)
            md = pf.metadata
            schema = pf.schema_arrow
        except Exception as e:
            problems.append(f"{label}: unreadable Parquet ({e})")
            continue
        n_parts += 1
        total += md.num_rows
        row_groups += md.num_row_groups
        if not schema.equals(expected_schema, check_metadata=False):
            problems.append(f"{label}: schema differs: {_schema_diff(schema, expected_schema)}")
    if n_parts == 0 and not problems:
        problems.append("no parts to check")
    if total != expected_rows and not problems:
        problems.append(f"row count {total} != expected {expected_rows}")
    elif total != expected_rows:
        problems.append(f"row count {total} (readable parts) != expected {expected_rows}")
    if problems:
        raise ReadBackError("; ".join(problems))
    return ReadBackReport(total, n_parts, row_groups, expected_schema)


def _schema_diff(got: pa.Schema, want: pa.Schema) -> str:
    diffs = []
    got_f = {f.name: f for f in got}
    want_f = {f.name: f for f in want}
    for name in want.names:
        if name not in got_f:
            diffs.append(f"missing {name}")
        elif not got_f[name].equals(want_f[name], check_metadata=False):
            g, w = got_f[name], want_f[name]
            diffs.append(
                f"{name}: {g.type}{'' if g.nullable else ' not null'} != "
                f"{w.type}{'' if w.nullable else ' not null'}"
            )
    diffs += [f"unexpected {n}" for n in got.names if n not in want_f]
    if not diffs and got.names != want.names:
        diffs.append(f"column order {got.names} != {want.names}")
    return ", ".join(diffs) or "metadata only"
