"""The platform CSV writer for one data-schema table's rows."""

from __future__ import annotations

from typing import IO, Any

from ..csv_encoding import CsvGzipWriter
from ..table_spec import ColumnKind
from ..warehouse.dialect import Dialect
from .data_schema import DataTable

_PLAIN_KINDS = frozenset(
    {
        ColumnKind.BIGINT,
        ColumnKind.DECIMAL,
        ColumnKind.BOOLEAN,
        ColumnKind.BINARY,
        ColumnKind.TIMESTAMPTZ,
    }
)


def csv_plain_columns(table: DataTable, dialect: Dialect = Dialect.POSTGRES) -> tuple[bool, ...]:
    """Per column, whether its encoded values never need CSV quoting and are never empty
    (the ``plain`` argument of :class:`~etl_platform.core.csv_encoding.CsvGzipWriter`). Binary
    is plain only with a hex prefix: plain hex of an empty value is empty."""
    plain = _PLAIN_KINDS if dialect.csv_binary_prefix else _PLAIN_KINDS - {ColumnKind.BINARY}
    return tuple(c.kind in plain for c in table.columns)


def open_csv_writer(
    table: DataTable, fileobj: IO[bytes], *, dialect: Dialect = Dialect.POSTGRES, **options: Any
) -> CsvGzipWriter:
    """The platform CSV writer for ``table``'s rows (no header: ``COPY`` lists the columns)
    in the warehouse ``dialect``'s CSV (its NULL marker); ``options`` go to
    :class:`~etl_platform.core.csv_encoding.CsvGzipWriter`."""
    return CsvGzipWriter(
        fileobj,
        columns=table.column_names,
        plain=csv_plain_columns(table, dialect),
        dialect=dialect,
        **options,
    )
