"""Column plans: the exact lake (Arrow) type of each PostgreSQL column, and how it is selected.

``numeric(p,s)`` → ``decimal128(p,s)`` (p ≤ 38); unconstrained ``numeric`` → ``decimal128(38, 10)``
by default; ``numeric`` with p > 38 is refused (export it with ``as_text``). ``timestamptz`` →
``timestamp[us, tz=UTC]``, ``timestamp`` → ``timestamp[us]``, ``date`` → ``date32``,
``json``/``jsonb`` → string (the JSON text), ``bytea`` → binary, arrays of the natively read
element types → lists of that type, other arrays → ``list<string>``. Every other type (uuid, enum,
interval, time, inet, money, range, composite, ...) is its PostgreSQL text form: lossless, and
readable by every engine. ``NOT NULL`` columns are non-nullable fields; every field carries its
PostgreSQL type in the field metadata (``postgres.type``), and a field whose lake name differs
from the source column's (:mod:`.column_names`) carries the source name (``postgres.column``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .errors import UnsupportedColumnError

DEFAULT_UNCONSTRAINED_NUMERIC = (38, 10)
MAX_DECIMAL128_PRECISION = 38
PG_TYPE_METADATA_KEY = b"postgres.type"
PG_COLUMN_METADATA_KEY = b"postgres.column"
"""Field metadata naming the source column, on fields whose lake name differs from it."""
DATE_COLUMN_TYPES = ("timestamptz", "timestamp", "date")


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
    lake_name: str | None = None  # the column's name in the lake when it differs from ``name``

    @property
    def field(self) -> pa.Field:
        metadata = {PG_TYPE_METADATA_KEY: self.declared.encode()}
        if self.lake_name is not None and self.lake_name != self.name:
            metadata[PG_COLUMN_METADATA_KEY] = self.name.encode()
        return pa.field(
            self.lake_name or self.name, self.arrow_type, nullable=self.nullable, metadata=metadata
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
# Element types the driver reads natively inside arrays (json is not one of them).
_NATIVE_ARRAY_ELEMENTS = frozenset(_SCALAR_TYPES) - {"json", "jsonb"}


def numeric_type(
    table: str, col: str, typmod: int, unconstrained: tuple[int, int]
) -> pa.Decimal128Type:
    """The decimal of a ``numeric`` column from its typmod; refuses more than 38 digits."""
    if typmod < 0:
        p, s = unconstrained
    else:
        p = ((typmod - 4) >> 16) & 0xFFFF
        s = (((typmod - 4) & 0x7FF) ^ 1024) - 1024  # PostgreSQL 15+ allows negative scales
        if s < 0:  # numeric(5,-2): integers with up to p - s digits
            p, s = p - s, 0
        elif s > p:  # numeric(2,5): 0.000xx
            p = s
    if p > MAX_DECIMAL128_PRECISION:
        raise UnsupportedColumnError(
            f"{table}.{col}: numeric precision {p} exceeds the {MAX_DECIMAL128_PRECISION} digits "
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
            elem = numeric_type(table, col.name, col.typmod, unconstrained_numeric)
            return plan(pa.list_(elem), "text[]", True)
        if e in _NATIVE_ARRAY_ELEMENTS:
            return plan(pa.list_(_SCALAR_TYPES[e]), None, True)
        return plan(pa.list_(pa.string()), "text[]", True)
    if t == "numeric":
        return plan(numeric_type(table, col.name, col.typmod, unconstrained_numeric), None)
    if t in _SCALAR_TYPES:
        return plan(_SCALAR_TYPES[t], None)
    return plan(pa.string(), "text")  # uuid, enums, interval, time, inet, money, ...
