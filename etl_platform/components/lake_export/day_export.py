"""One table's rows of one window → Parquet parts handed to a sink: the source read (through
the ``SourcePostgresResource``), the pure core's plan, conversion and part writer, and the local
spool and writer thread that make it fast. Memory stays bounded by one row group."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from typing import Any

import pyarrow as pa

from etl_platform.core import lake
from etl_platform.resources.source_database import SourceDatabase

from .part_spool import SpoolFiles, write_parts_in_background

DEFAULT_BATCH_SIZE_HINT_BYTES = 4 * 1024 * 1024


def plan_table(
    source: SourceDatabase,
    table: str,
    date_column: str,
    *,
    columns: Sequence[str] | None = None,
    as_text: Collection[str] = (),
    unconstrained_numeric: tuple[int, int] = lake.DEFAULT_UNCONSTRAINED_NUMERIC,
) -> lake.ExportPlan:
    """The export plan of ``table`` from the source catalog (no rows read): its ``schema`` is
    what every part will carry, so the Glue table can be registered before any export."""
    ref = lake.parse_table_name(table)
    return lake.plan_export(
        ref,
        source.catalog(ref),
        date_column,
        columns=columns,
        as_text=as_text,
        unconstrained_numeric=unconstrained_numeric,
    )


class _Rows:
    """Converts the driver's batches in the caller's thread, counting rows for ``progress``."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.count = 0
        self.progress = progress

    def converted(
        self, batches: Iterator[pa.RecordBatch], converter: lake.BatchConverter
    ) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            out = converter.convert(batch)
            self.count += batch.num_rows
            yield out
            if self.progress is not None:
                self.progress(self.count)


def export_day(
    source: SourceDatabase,
    table: str,
    date_column: str,
    window: lake.Window,
    *,
    sink: lake.PartSink,
    columns: Sequence[str] | None = None,
    as_text: Collection[str] = (),
    unconstrained_numeric: tuple[int, int] = lake.DEFAULT_UNCONSTRAINED_NUMERIC,
    batch_size_hint_bytes: int | None = DEFAULT_BATCH_SIZE_HINT_BYTES,
    progress: Callable[[int], None] | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    threaded: bool = True,
    queue_depth: int = 4,
    **part_options: Any,
) -> lake.ExportResult:
    """Stream the rows of ``table`` whose ``date_column`` is in ``window`` (half-open, UTC) into
    Parquet parts handed one by one to ``sink``.

    ``part_options`` are :class:`~etl_platform.core.lake.PartSettings` (``compression``,
    ``part_bytes``, ``part_rows``, ``row_group_bytes``, ...). ``progress(rows_so_far)`` is
    called from the caller's thread after each record batch. Parts are spooled to ``spool_dir``
    (a temporary directory by default) before the sink takes them. On failure no part is left
    in the spool; parts already handed to the sink stay where the sink put them (the lake step's
    next export of the day deletes them: :mod:`.day_publish`).
    """
    settings = lake.PartSettings(**part_options)
    window = lake.check_window(window)
    started = time.perf_counter()
    plan = plan_table(
        source,
        table,
        date_column,
        columns=columns,
        as_text=as_text,
        unconstrained_numeric=unconstrained_numeric,
    )
    query = lake.build_select_sql(plan.table, plan.plans, date_column, plan.date_type, window)
    converter = lake.BatchConverter(plan.table.display, plan.plans)
    rows = _Rows(progress)
    write = partial(write_parts_in_background, depth=queue_depth) if threaded else lake.write_parts
    stream = source.record_batches(
        plan.table.display, query, batch_size_hint_bytes=batch_size_hint_bytes
    )
    with SpoolFiles.opened(spool_dir) as spool:
        try:
            parts = write(
                rows.converted(stream, converter),
                converter.schema,
                sink,
                settings=settings,
                files=spool,
            )
        finally:
            stream.close()  # the driver's stream and connection end now, also on errors
    return _result(plan, window, rows.count, parts, started, query.as_string(None))


def _result(
    plan: lake.ExportPlan,
    window: lake.Window,
    rows: int,
    parts: list[lake.ExportedPart],
    started: float,
    query: str,
) -> lake.ExportResult:
    written = sum(p.rows for p in parts)
    if written != rows:  # cannot happen unless the writer is broken; never publish it
        raise lake.LakeExportError(f"{plan.table.display}: read {rows} rows but wrote {written}")
    return lake.ExportResult(
        table=plan.table.display,
        window=window,
        rows=rows,
        parts=tuple(parts),
        bytes=sum(p.bytes for p in parts),
        schema=plan.schema,
        duration_s=time.perf_counter() - started,
        query=query,
    )
