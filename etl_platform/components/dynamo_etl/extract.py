"""Step: extract one scan segment to S3 (runbook: "scan segment N, write its CSVs, upload").

The segment's items are transformed with the cached data-schemas into one gzip CSV per
warehouse table (local temp files), uploaded under a prefix of this run's own (its extract id);
the segment manifest, the only pointer to the current extract, is replaced last, and objects of
older extracts are removed after it flips. A terminal error anywhere fails the step once: no
retry rescans the segment into the same wall.
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

from ..progress import StepProgress
from ..run_policy import step_failure_policy
from . import manifests, schema_cache
from .metadata import per_second

if TYPE_CHECKING:
    from .component import DynamoTableEtl


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
    into one gzip CSV per warehouse table on S3, under a prefix of the run's own. The
    segment manifest, replaced last, points at it: it lists the objects, their row
    counts, the extract id and the data-schema used. A load reading the previous extract
    keeps reading complete objects; older extracts are removed."""
    started = time.monotonic()
    schema_cache.ensure_buckets(config, s3)
    schema_set = schema_cache.load_latest(config, s3)
    if schema_set is None:
        raise dg.Failure(
            description=f"no cached data-schema for {config.table_name!r}: materialize "
            f"{config.key('dynamodb', 'data_schemas').to_user_string()} first",
            allow_retries=False,
        )
    extract = s3_layout.extract_id(datetime.now(UTC), context.run_id)
    with tempfile.TemporaryDirectory(prefix="segment_csv_") as tmp:
        result = scan_to_files(
            config, context, dynamodb, schema_set, day, segment, Path(tmp), dialect
        )
        objects = upload_tables(config, s3, result, day, segment, extract, Path(tmp))
    if result.evolved:
        widen_cached_schema(config, context, s3, schema_set, result, day, segment)
    replaced = manifests.read_if_present(config, s3, day, segment)
    manifest_uri = manifests.write(
        config, s3, day, segment, segment_manifest(config, result, day, segment, extract, objects)
    )
    # The manifest now points at this extract. Objects of older extracts go, except the one
    # just replaced: a staging load that read the old manifest a moment ago may be reading it.
    keep = [extract] + ([replaced["extract_id"]] if replaced and "extract_id" in replaced else [])
    stale = remove_superseded_extracts(config, s3, day, segment, keep)
    seconds = time.monotonic() - started
    prefix = s3_layout.segment_extract_prefix(
        config.data_prefix, config.instance, day, segment, extract
    )
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
            "extract_id": extract,
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
    reporter = StepProgress(context, f"extract of segment {segment} of {day}", "items")

    def open_output(table: str) -> IO[bytes]:
        if table in files:
            files[table].close()
        files[table] = open(directory / f"{table}.csv.gz", "wb")
        return files[table]

    def progress(items: int, pages: int) -> None:
        reporter.at(items)

    try:
        result = extract_segment(
            lambda: dynamodb.scan_segment(
                config.table_name,
                segment,
                config.total_segments,
                page_size=config.scan_page_size,
                setting="table_name",
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
    extract: str,
    directory: Path,
) -> dict[str, dict[str, Any]]:
    """Upload each table's CSV under this extract's own prefix; the manifest's ``objects``."""
    objects: dict[str, dict[str, Any]] = {}
    for table, output in sorted(result.tables.items()):
        key = s3_layout.segment_csv_key(
            config.data_prefix, config.instance, day, segment, extract, table
        )
        with open(directory / f"{table}.csv.gz", "rb") as body:
            s3.upload_stream(
                body, config.data_bucket, key, "application/gzip", setting="data_bucket"
            )
        objects[table] = {
            "uri": s3_uri(config.data_bucket, key),
            "rows": output.rows,
            "csv_bytes": output.csv_bytes,
            "gzip_bytes": output.gzip_bytes,
        }
    return objects


def remove_superseded_extracts(
    config: DynamoTableEtl, s3: ObjectStoreResource, day: date, segment: int, keep: list[str]
) -> list[str]:
    """Delete the segment's objects that belong to no extract in ``keep`` (older extracts,
    parts of an interrupted one, the deterministic keys of earlier versions); returns them."""
    folder = s3_layout.segment_prefix(config.data_prefix, config.instance, day, segment)
    listed = [o["Key"] for o in s3.list_objects(config.data_bucket, folder, setting="data_bucket")]
    stale = s3_layout.superseded_extract_keys(listed, folder, keep)
    s3.delete_keys(config.data_bucket, stale, setting="data_bucket")
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
    segment may have widened it meanwhile: the conditional update re-merges then)."""
    evolved, _ = schema_cache.update(
        config, s3, lambda latest: merge_schema_sets(latest or used, result.schema_set)
    )
    context.log.warning(
        f"segment {segment} of {day}: the data-schema widened "
        f"({json.dumps(result.evolution)}); cached as {evolved.fingerprint}"
    )


def segment_manifest(
    config: DynamoTableEtl,
    result: SegmentExtract,
    day: date,
    segment: int,
    extract: str,
    objects: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    return {
        "extract_id": extract,
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
