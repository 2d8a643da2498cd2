"""The lake step of one table: for every day of the run's partition range, export the day
(stream the source rows into Parquet parts uploaded under a prefix of this export's own, point
the Glue partition at it, delete the day's superseded parts: :mod:`.day_publish`), then
evaluate the day's checks.

A range backfill is one run: every day still gets its own materialization and check
evaluations. A retried step skips the days an earlier attempt of the same run exported (their
checks are evaluated again). A dry run only counts the source rows of each day.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from pyarrow import fs as pafs
from pydantic import Field

from etl_platform.core import lake, s3_layout
from etl_platform.resources import CatalogResource, ObjectStoreResource, SourcePostgresResource
from etl_platform.resources.source_database import SourceDatabase, SourceTableMissingError

from ..progress import StepProgress
from . import checks, day_export, day_publish
from .materialization import MeasuringSink, day_metadata

if TYPE_CHECKING:
    from .component import LakeExport, LakeTable

DRY_RUN_TAG = "etl_platform/lake_dry_run"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"

LakeEvent = dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckEvaluation


class LakeExportRunConfig(dg.Config):
    """Run config of a lake asset."""

    dry_run: bool = Field(
        default=False,
        description="Report the days and source row counts that would be exported; write "
        "nothing (no S3 object, no Glue call).",
    )


@dataclass(frozen=True)
class LakeResources:
    """The resources the lake step uses."""

    s3: ObjectStoreResource
    glue: CatalogResource
    source_postgres: SourcePostgresResource


@dataclass
class TableRun:
    """One table's step: the instance, the resources, and what the run selected."""

    lake: LakeExport
    table: LakeTable
    context: dg.AssetExecutionContext
    resources: LakeResources
    source: SourceDatabase
    counts: dict[date, int] = field(default_factory=dict)

    @property
    def key(self) -> dg.AssetKey:
        return self.lake.lake_key(self.table)

    def source_count(self, day: date) -> int:
        """The source's rows of ``day`` (the export's predicate), counted once per run."""
        if day not in self.counts:
            ref = lake.parse_table_name(self.table.name)
            self.counts[day] = self.source.count_window(
                ref, self.table.date_column, lake.day_window(day)
            )
        return self.counts[day]


def run_table(
    lake_: LakeExport,
    table: LakeTable,
    context: dg.AssetExecutionContext,
    config: LakeExportRunConfig,
    resources: LakeResources,
) -> Iterator[LakeEvent]:
    """Export (or only check) every day of the run's partitions; one materialization and the
    selected check evaluations per day."""
    source = lake_.source_database(resources.source_postgres)
    run = TableRun(lake_, table, context, resources, source)
    days = [date.fromisoformat(k) for k in context.partition_keys]
    if config.dry_run or context.run.tags.get(DRY_RUN_TAG, "").lower() in ("true", "1"):
        yield from dry_run(run, days)
        return
    exporting = run.key in context.selected_asset_keys
    selected = {ck.name for ck in context.selected_asset_check_keys if ck.asset_key == run.key}
    expected = planned_schema(run)
    if exporting:
        settings = lake_.glue_settings(table)
        resources.glue.ensure_database(lake_.glue_database, settings=settings)
        table_input = lake_.glue_table_input(table, expected)
        resources.glue.ensure_table(lake_.glue_database, table_input, settings=settings)
    filesystem = (
        checks.arrow_s3_filesystem(resources.s3)
        if selected & {checks.COUNT_CHECK, checks.READ_BACK_CHECK}
        else None
    )
    context.log.info(
        f"{table.name}: {'exporting' if exporting else 'checking'} {len(days)} day(s) "
        f"{days[0]}..{days[-1]} to {lake_.table_location(table)}"
    )
    total_rows, started = 0, time.monotonic()
    for day in days:
        keys, written_rows = yield from _export_or_find(run, day, expected, exporting)
        total_rows += written_rows or 0
        if selected:
            yield from _check_day(run, day, keys, written_rows, expected, filesystem, selected)
    if exporting:
        seconds = time.monotonic() - started
        context.log.info(
            f"{table.name}: {len(days)} day(s), {total_rows} rows in {seconds:.1f}s "
            f"({total_rows / max(seconds, 1e-9):.0f} rows/s)"
        )


def planned_schema(run: TableRun) -> pa.Schema:
    """The schema every part of the table will carry, from the source catalog. A missing table
    or column is an error naming the setting that holds it (``tables[2].date_column``)."""
    table = run.table
    where = f"lake {run.lake.instance}, tables[{run.lake.tables.index(table)}]"
    try:
        return day_export.plan_table(
            run.source, table.name, table.date_column, columns=table.columns, as_text=table.as_text
        ).schema
    except SourceTableMissingError as exc:
        raise SourceTableMissingError(f"{exc} (setting {where}.name)") from exc
    except lake.LakeExportError as exc:
        if exc.setting is None:
            raise
        raise type(exc)(f"{exc} (setting {where}.{exc.setting})", setting=exc.setting) from exc


def _export_or_find(
    run: TableRun, day: date, expected: pa.Schema, exporting: bool
) -> Iterator[LakeEvent]:
    """Export the day (yielding its materialization) or find its existing parts; returns the
    day's part keys and the rows written (None when nothing was exported)."""
    pk = day.isoformat()
    if exporting and run.context.retry_number > 0 and _done_in_this_run(run, pk):
        # a retry of this step: the day was exported by an earlier attempt; its checks are
        # evaluated again (the attempt may have failed between export and checks)
        run.context.log.info(f"{run.table.name} {day}: exported by an earlier attempt")
        return existing_parts(run, day), None
    if not exporting:
        return existing_parts(run, day), None
    metadata, keys, rows = export_one_day(run, day, expected)
    yield dg.AssetMaterialization(asset_key=run.key, partition=pk, metadata=metadata)
    return keys, rows


def _progress_logger(run: TableRun, day: date, started: float) -> Callable[[int], None]:
    what = f"export of {run.table.name} {day}"
    return StepProgress(run.context, what, "rows").at


def export_one_day(
    run: TableRun, day: date, expected: pa.Schema
) -> tuple[dict[str, Any], list[str], int]:
    """Export the day under a prefix of its own, point the Glue partition at it, delete the
    day's superseded parts; returns the materialization metadata, the day's part keys and the
    rows written."""
    lake_, table, s3 = run.lake, run.table, run.resources.s3
    prefix = day_publish.export_prefix(run, day)

    def upload(part: lake.FinishedPart) -> str:
        key = prefix + part.name
        s3.upload_stream(part.file, lake_.bucket, key, PARQUET_CONTENT_TYPE, setting="bucket")
        return key

    sink = MeasuringSink(upload)
    started = time.monotonic()
    result = day_export.export_day(
        run.source,
        table.name,
        table.date_column,
        lake.day_window(day),
        sink=sink,
        columns=table.columns,
        as_text=table.as_text,
        compression=lake_.compression,
        part_bytes=lake_.part_mb * 1024 * 1024,
        progress=_progress_logger(run, day, started),
    )
    superseded = day_publish.publish_day(run, day, prefix, result, expected)
    seconds = time.monotonic() - started
    run.context.log.info(
        f"{table.name} {day}: {result.rows} rows, {len(result.parts)} file(s), "
        f"{result.bytes} bytes in {seconds:.2f}s"
    )
    location = s3_layout.s3_uri(lake_.bucket, prefix)
    metadata = day_metadata(lake_, table, day, result, sink.stats, seconds, superseded, location)
    return metadata, list(result.locations), result.rows


def existing_parts(run: TableRun, day: date) -> list[str]:
    """The day's part keys as readers see them (under the Glue partition's location)."""
    return day_publish.registered_parts(run, day)


def _check_day(
    run: TableRun,
    day: date,
    keys: list[str],
    written_rows: int | None,
    expected: pa.Schema,
    filesystem: pafs.S3FileSystem | None,
    selected: set[str],
) -> Iterator[dg.AssetCheckEvaluation]:
    pk = day.isoformat()
    target = _latest_materialization(run, pk)
    exported_location = (
        s3_layout.s3_uri(run.lake.bucket, day_publish.export_prefix(run, day))
        if written_rows is not None
        else None
    )
    results = checks.day_checks(
        run.lake,
        run.table,
        day,
        keys,
        written_rows,
        expected,
        filesystem,
        run.resources.glue,
        run.source_count,
        selected,
        exported_location,
    )
    for r in results:
        yield dg.AssetCheckEvaluation(
            asset_key=run.key,
            check_name=r.name,
            passed=r.passed,
            metadata=r.metadata,
            severity=r.severity,
            description=r.description,
            blocking=r.name != checks.MEDIAN_CHECK,
            partition=pk,
            target_materialization_data=target,
        )
        if not r.passed:
            warn = r.severity == dg.AssetCheckSeverity.WARN
            log = run.context.log.warning if warn else run.context.log.error
            log(f"{run.table.name} {day}: check {r.name} failed: {r.description}")


def _latest_record(run: TableRun, partition: str) -> Any:
    records = run.context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=run.key, asset_partitions=[partition]), limit=1
    ).records
    return records[0] if records else None


def _latest_materialization(
    run: TableRun, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    r = _latest_record(run, partition)
    if r is None:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp
    )


def _done_in_this_run(run: TableRun, partition: str) -> bool:
    r = _latest_record(run, partition)
    return r is not None and r.run_id == run.context.run.run_id


def dry_run(run: TableRun, days: list[date]) -> Iterator[dg.AssetObservation]:
    """Counts only: no S3 or Glue call. Each day is reported as an observation (it does not
    mark the partition materialized) and in the run log."""
    total = 0
    for day in days:
        n = run.source_count(day)
        total += n
        target = run.lake.partition_location(run.table, day)
        run.context.log.info(f"[dry run] {run.table.name} {day}: {n} rows would go to {target}")
        yield dg.AssetObservation(
            asset_key=run.key,
            partition=day.isoformat(),
            metadata={
                "dry_run": True,
                "source_rows": n,
                "would_write_to": dg.MetadataValue.path(target),
            },
        )
    run.context.log.info(
        f"[dry run] {run.table.name}: {len(days)} day(s) {days[0]}..{days[-1]}, {total} rows; "
        "nothing written"
    )
