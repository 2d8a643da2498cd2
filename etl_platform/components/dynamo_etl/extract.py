"""Step: extract one scan segment to S3 (runbook: "scan segment N, write its CSVs, upload").

The segment's items are transformed with the cached data-schemas into one gzip CSV per
warehouse table (local temp files); then the old manifest is withdrawn, the CSVs uploaded
under deterministic keys, stale objects of an earlier run removed, and the new manifest written
last. A terminal error anywhere fails the step once: no retry rescans the segment into the same
wall.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import dagster as dg

from etl_platform.core import s3_layout
from etl_platform.core.dynamo import (
    DataSchemaSet,
    SegmentExtract,
    extract_segment,
    merge_schema_sets,
)
from etl_platform.core.s3_layout import s3_uri
from etl_platform.core.warehouse import Dialect
from etl_platform.resources import DynamoDBResource, ObjectStoreResource

from ..run_policy import step_failure_policy
from . import manifests, schema_cache
from .metadata import per_second

if TYPE_CHECKING:
    from .component import DynamoTableEtl

PROGRESS_EVERY_PAGES = 50


@step_failure_policy(
    "extract of segment {segment} of {day} from DynamoDB table {config.table_name!r} "
    "to s3://{config.data_bucket}/{config.data_prefix}"
)
def extract_segment_csv(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    dynamodb: DynamoDBResource,
    s3: ObjectStoreResource,
    day: date,
    segment: int,
    dialect: Dialect = Dialect.POSTGRES,
) -> dg.MaterializeResult:
    """One parallel-scan segment of the table, transformed with the cached data-schemas
    into one gzip CSV per warehouse table on S3. Keys are deterministic per
    (date, segment): a re-run replaces the objects, never adds to them. A manifest
    written last lists the objects, their row counts and the data-schema used."""
    started = time.monotonic()
    schema_set = schema_cache.load_latest(config, s3)
    if schema_set is None:
        raise dg.Failure(
            description=f"no cached data-schema for {config.table_name!r}: materialize "
            f"{config.key('dynamodb', 'data_schemas').to_user_string()} first",
            allow_retries=False,
        )
    with tempfile.TemporaryDirectory(prefix="segment_csv_") as tmp:
        result = scan_to_files(
            config, context, dynamodb, schema_set, day, segment, Path(tmp), dialect
        )
        # Until the new manifest is written the segment has none: staging refuses a segment
        # whose objects are being replaced instead of loading a mix of old and new ones.
        manifests.withdraw(config, s3, day, segment)
        objects = upload_tables(config, s3, result, day, segment, Path(tmp))
    stale = remove_stale_objects(config, s3, day, segment, objects)
    if result.evolved:
        widen_cached_schema(config, context, s3, schema_set, result, day, segment)
    manifest_uri = manifests.write(
        config, s3, day, segment, segment_manifest(config, result, day, segment, objects)
    )
    seconds = time.monotonic() - started
    prefix = s3_layout.segment_prefix(config.data_prefix, config.instance, day, segment)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.rows,
            "items_scanned": result.items,
            "items_per_second": per_second(result.items, seconds),
            "rows_per_table": dg.MetadataValue.json({t: o["rows"] for t, o in objects.items()}),
            "gzip_bytes": sum(o["gzip_bytes"] for o in objects.values()),
            "csv_bytes": sum(o["csv_bytes"] for o in objects.values()),
            "s3_prefix": dg.MetadataValue.path(s3_uri(config.data_bucket, prefix)),
            "manifest_uri": dg.MetadataValue.path(manifest_uri),
            "data_schema_fingerprint": result.schema_set.fingerprint,
            "data_schema_evolved": result.evolved,
            "scan_passes": result.passes,
            "stale_objects_removed": len(stale),
            "duration_s": round(seconds, 3),
        }
    )


def scan_to_files(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    dynamodb: DynamoDBResource,
    schema_set: DataSchemaSet,
    day: date,
    segment: int,
    directory: Path,
    dialect: Dialect = Dialect.POSTGRES,
) -> SegmentExtract:
    """Scan the segment into ``directory/<table>.csv.gz`` files for the warehouse ``dialect``
    (rewritten from the start when the extract takes another pass after widening the
    data-schema)."""
    files: dict[str, IO[bytes]] = {}
    started = time.monotonic()

    def open_output(table: str) -> IO[bytes]:
        if table in files:
            files[table].close()
        files[table] = open(directory / f"{table}.csv.gz", "wb")
        return files[table]

    def progress(items: int, pages: int) -> None:
        if pages % PROGRESS_EVERY_PAGES == 0:
            rate = items / max(time.monotonic() - started, 1e-9)
            context.log.info(
                f"segment {segment} of {day}: {items} items in {pages} pages ({rate:.0f} items/s)"
            )

    try:
        result = extract_segment(
            lambda: dynamodb.scan_segment(
                config.table_name, segment, config.total_segments, page_size=config.scan_page_size
            ),
            schema_set,
            open_output,
            on_unfit=config.unknown_attributes,
            progress=progress,
            dialect=dialect,
        )
    finally:
        for handle in files.values():
            handle.close()
    context.log.info(
        f"segment {segment} of {day}: scanned {result.items} items in {result.passes} "
        f"pass(es), {result.rows} rows for {len(result.tables)} tables"
    )
    return result


def upload_tables(
    config: DynamoTableEtl,
    s3: ObjectStoreResource,
    result: SegmentExtract,
    day: date,
    segment: int,
    directory: Path,
) -> dict[str, dict[str, Any]]:
    """Upload each table's CSV to its deterministic key; the manifest's ``objects`` entry."""
    objects: dict[str, dict[str, Any]] = {}
    for table, output in sorted(result.tables.items()):
        key = s3_layout.segment_csv_key(config.data_prefix, config.instance, day, segment, table)
        with open(directory / f"{table}.csv.gz", "rb") as body:
            s3.upload_stream(body, config.data_bucket, key, "application/gzip")
        objects[table] = {
            "uri": s3_uri(config.data_bucket, key),
            "rows": output.rows,
            "csv_bytes": output.csv_bytes,
            "gzip_bytes": output.gzip_bytes,
        }
    return objects


def remove_stale_objects(
    config: DynamoTableEtl,
    s3: ObjectStoreResource,
    day: date,
    segment: int,
    objects: dict[str, dict[str, Any]],
) -> list[str]:
    """Delete objects under the segment's prefix this run did not write (tables an earlier
    run had); returns their keys."""
    prefix = s3_layout.segment_prefix(config.data_prefix, config.instance, day, segment)
    current = {manifests.manifest_key(config, day, segment)} | {
        s3_layout.segment_csv_key(config.data_prefix, config.instance, day, segment, table)
        for table in objects
    }
    stale = [o["Key"] for o in s3.list_objects(config.data_bucket, prefix)]
    stale = [key for key in stale if key not in current]
    s3.delete_keys(config.data_bucket, stale)
    return stale


def widen_cached_schema(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    s3: ObjectStoreResource,
    used: DataSchemaSet,
    result: SegmentExtract,
    day: date,
    segment: int,
) -> None:
    """Merge the widened data-schema of this segment into the latest cached version (another
    segment may have widened it meanwhile) and store it."""
    latest = schema_cache.load_latest(config, s3) or used
    evolved = merge_schema_sets(latest, result.schema_set)
    schema_cache.store(config, s3, evolved)
    context.log.warning(
        f"segment {segment} of {day}: the data-schema widened "
        f"({json.dumps(result.evolution)}); cached as {evolved.fingerprint}"
    )


def segment_manifest(
    config: DynamoTableEtl,
    result: SegmentExtract,
    day: date,
    segment: int,
    objects: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    return {
        "instance": config.instance,
        "table": config.table_name,
        "date": day.isoformat(),
        "segment": segment,
        "total_segments": config.total_segments,
        "items": result.items,
        "fingerprint": result.schema_set.fingerprint,
        "data_schema": result.schema_set.to_dict(),
        "objects": objects,
        "extracted_at": datetime.now(UTC).isoformat(),
    }
