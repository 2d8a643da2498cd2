"""The platform CSV writer for one data-schema table's rows."""

from __future__ import annotations

from typing import IO, Any

from ..csv_encoding import CsvGzipWriter
from ..table_spec import ColumnKind
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


def csv_plain_columns(table: DataTable) -> tuple[bool, ...]:
    """Per column, whether its encoded values never need CSV quoting and are never empty
    (the ``plain`` argument of :class:`~etl_platform.core.csv_encoding.CsvGzipWriter`)."""
    return tuple(c.kind in _PLAIN_KINDS for c in table.columns)


def open_csv_writer(table: DataTable, fileobj: IO[bytes], **options: Any) -> CsvGzipWriter:
    """The platform CSV writer for ``table``'s rows (no header: ``COPY`` lists the columns);
    ``options`` go to :class:`~etl_platform.core.csv_encoding.CsvGzipWriter`."""
    return CsvGzipWriter(
        fileobj, columns=table.column_names, plain=csv_plain_columns(table), **options
    )
