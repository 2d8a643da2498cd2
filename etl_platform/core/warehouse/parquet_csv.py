"""Parquet as the platform's CSV, for engines whose COPY reads CSV only (PostgreSQL).

A Parquet object's columns are matched **by name** to the target's columns (a missing or an
extra column fails, naming the file and the column) and written in the target's order, one
record batch at a time, by Arrow's CSV writer: RFC-4180, every string quoted (so ``""`` is the
empty string) and NULL an unquoted empty field, which is what ``copy_from_stdin``'s default
options read. Values keep their exact text: timestamps with time zone as UTC ISO-8601 with
microseconds and ``Z``, decimals in full, booleans ``true``/``false``, integers in full.

Types without a CSV text PostgreSQL reads back exactly (binary, nested, durations) are refused
with the file and column named. Pure: takes the object's bytes, yields CSV chunks.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pyarrow.types as pat

__all__ = [
    "PARQUET_TRAILER_BYTES",
    "parquet_column_order",
    "parquet_csv_chunks",
    "parquet_file_columns",
    "parquet_footer_size",
]

BATCH_ROWS = 64 * 1024
#: a Parquet file ends with its footer's length (4 bytes, little-endian) and ``PAR1``
PARQUET_TRAILER_BYTES = 8
_MAGIC = b"PAR1"


def _has_exact_text(kind: pa.DataType) -> bool:
    return (
        pat.is_null(kind)
        or pat.is_boolean(kind)
        or pat.is_integer(kind)
        or pat.is_floating(kind)
        or pat.is_decimal(kind)
        or pat.is_string(kind)
        or pat.is_large_string(kind)
        or pat.is_date(kind)
        or pat.is_time(kind)
        or pat.is_timestamp(kind)
    )


def _check_names(names: Sequence[str], columns: Sequence[str], uri: str) -> None:
    """The file's column ``names`` are the target's ``columns`` (exact case), each once."""
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"Parquet file {uri}: column {name!r} appears twice")
        if name not in columns:
            raise ValueError(
                f"Parquet file {uri}: column {name!r} is not a column of the target {list(columns)}"
            )
    for name in columns:
        if name not in names:
            raise ValueError(f"Parquet file {uri}: target column {name!r} is missing from the file")


def parquet_column_order(schema: pa.Schema, columns: Sequence[str], uri: str) -> list[str]:
    """The target's ``columns``, checked against the file's: the same names (exact case), each
    once, of a type with an exact CSV text. ``ValueError`` names the file and the column."""
    _check_names(list(schema.names), columns, uri)
    for name in columns:
        kind = schema.field(name).type
        if not _has_exact_text(kind):
            raise ValueError(
                f"Parquet file {uri}: column {name!r} has type {kind}, which does not load "
                "exactly through CSV (scalars, strings, decimals, dates and timestamps do)"
            )
    return list(columns)


def parquet_csv_chunks(data: bytes, columns: Sequence[str], uri: str) -> Iterator[bytes]:
    """The Parquet object ``data`` as CSV chunks (no header) of the target's ``columns`` in
    order, one record batch at a time."""
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"Parquet file {uri} cannot be read: {exc}") from exc
    order = parquet_column_order(parquet.schema_arrow, columns, uri)
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=order):
        out = io.BytesIO()
        pa_csv.write_csv(batch.select(order), out, options)
        yield out.getvalue()


def parquet_footer_size(trailer: bytes, uri: str) -> int:
    """How many bytes at the end of the object hold its footer and trailer, from its last
    :data:`PARQUET_TRAILER_BYTES` (``trailer``)."""
    if len(trailer) != PARQUET_TRAILER_BYTES or trailer[4:] != _MAGIC:
        raise ValueError(f"Parquet file {uri} cannot be read: it does not end with PAR1")
    return int.from_bytes(trailer[:4], "little") + PARQUET_TRAILER_BYTES


def parquet_file_columns(tail: bytes, columns: Sequence[str], uri: str) -> list[str]:
    """The file's column names **in the file's order**, from the object's last
    :func:`parquet_footer_size` bytes (``tail``: footer and trailer; the data pages are not
    needed), checked to be exactly the target's ``columns`` (exact case, each once).
    ``ValueError`` names the file and the column."""
    try:
        schema = pq.read_schema(pa.BufferReader(_MAGIC + tail))
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"Parquet file {uri} cannot be read: {exc}") from exc
    names = list(schema.names)
    _check_names(names, columns, uri)
    return names
