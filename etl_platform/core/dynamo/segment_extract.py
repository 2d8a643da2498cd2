"""One parallel-scan segment of a DynamoDB table → one gzip CSV per data-schema table.

The scan is given as a callable that starts it afresh (``scan()`` yields pages of wire-format
items), so this module needs no AWS client and is tested on plain lists. With the unknown
attribute policy ``evolve``, items that do not fit the cached data-schema widen it page by page
while the scan goes on; if it widened, the segment is scanned again with the final data-schema,
so every CSV of the segment is written with one data-schema (at most ``max_passes`` scans: a
table still changing under the scan fails instead of looping). With ``fail`` the first unfit
item raises :class:`~etl_platform.core.dynamo.unfit.DataSchemaMismatch` naming its key and
attribute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from ..csv_encoding import CsvStats
from ..warehouse.dialect import Dialect
from .csv_output import open_csv_writer
from .data_schema import DataSchemaSet
from .schema_diff import diff
from .transformer import ItemTransformer
from .unfit import UnfitPolicy

Page = list[Mapping[str, Any]]


class SegmentSchemaUnstable(RuntimeError):
    """The data-schema kept widening over ``max_passes`` scans of the segment."""


@dataclass(frozen=True)
class TableOutput:
    table: str
    rows: int
    csv_bytes: int
    gzip_bytes: int


@dataclass
class SegmentExtract:
    """What a segment extract produced: the data-schema its CSVs follow and their sizes."""

    schema_set: DataSchemaSet
    items: int
    tables: dict[str, TableOutput]
    passes: int
    evolved: bool
    seconds: float
    evolution: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


def extract_segment(
    scan: Callable[[], Iterable[Page]],
    schema_set: DataSchemaSet,
    open_output: Callable[[str], IO[bytes]],
    *,
    on_unfit: UnfitPolicy | str = UnfitPolicy.EVOLVE,
    max_passes: int = 3,
    progress: Callable[[int, int], None] | None = None,
    dialect: Dialect = Dialect.POSTGRES,
) -> SegmentExtract:
    """Scan, transform and write the segment. ``open_output(table)`` returns a fresh binary
    file for that table's CSV (truncated on each pass); the caller uploads the files after
    this returns. ``progress(items, pages)`` is called after every page. The CSVs are written
    for the warehouse ``dialect`` (its NULL marker and binary text)."""
    policy = UnfitPolicy(on_unfit)
    started = time.monotonic()
    original = schema_set
    for attempt in range(1, max_passes + 1):
        schema_set, items, stats = _scan_pass(
            scan, schema_set, open_output, policy, progress, dialect
        )
        if stats is None:
            continue
        changes = diff(original, schema_set)
        return SegmentExtract(
            schema_set=schema_set,
            items=items,
            tables={
                name: TableOutput(name, s.rows, s.csv_bytes, s.bytes_written)
                for name, s in stats.items()
            },
            passes=attempt,
            evolved=not changes.is_empty,
            seconds=time.monotonic() - started,
            evolution=changes.to_dict(),
        )
    raise SegmentSchemaUnstable(
        f"the data-schema of table {schema_set.config.table!r} still widened after "
        f"{max_passes} scans of the segment: the table is changing faster than it can be read"
    )


def _scan_pass(
    scan: Callable[[], Iterable[Page]],
    schema_set: DataSchemaSet,
    open_output: Callable[[str], IO[bytes]],
    policy: UnfitPolicy,
    progress: Callable[[int, int], None] | None,
    dialect: Dialect,
) -> tuple[DataSchemaSet, int, dict[str, CsvStats] | None]:
    """One scan of the segment: ``(final data-schema, items, CSV stats)``, the stats None (and
    every CSV aborted) when the data-schema widened during the scan."""
    transformer = ItemTransformer(schema_set, on_unfit=policy, dialect=dialect)
    writers = {
        table.name: open_csv_writer(table, open_output(table.name), dialect=dialect)
        for table in schema_set.tables
    }
    widened = False
    items = pages = 0
    try:
        for page in scan():
            batch = transformer.transform(page)
            items += batch.items
            pages += 1
            if batch.unfit:
                schema_set = transformer.evolved_schema_set(batch.unfit)
                transformer = ItemTransformer(schema_set, on_unfit=policy, dialect=dialect)
                widened = True
            elif not widened:
                for name, rows in batch.rows.items():
                    if rows:
                        writers[name].write_rows(rows)
            if progress is not None:
                progress(items, pages)
        if widened:
            for writer in writers.values():
                writer.abort()
            return schema_set, items, None
        stats: dict[str, CsvStats] = {name: w.close() for name, w in writers.items()}
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    return schema_set, items, stats


__all__ = [
    "SegmentExtract",
    "SegmentSchemaUnstable",
    "TableOutput",
    "extract_segment",
]
