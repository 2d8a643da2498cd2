"""Step: load one segment into its own staging schema (runbook: "COPY segment N into staging").

The schema is recreated pristine in the same transaction that fills it, so a failed load
leaves the previous content and one segment can be retried without touching the others. The
schema records the extract it loaded (``_etl_staged``: extract id, data-schema fingerprint,
split), which publish compares with the segment's manifest.
"""

from __future__ import annotations

import time
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg
import psycopg

from etl_platform.core import s3_layout
from etl_platform.core import warehouse as warehouse_sql
from etl_platform.core.dynamo import DataSchemaSet
from etl_platform.core.s3_layout import s3_uri
from etl_platform.core.table_spec import TableSpec
from etl_platform.resources import ObjectSettings, ObjectStoreResource, WarehouseResource

from ..progress import StepProgress
from ..run_policy import step_failure_policy
from . import manifests
from .metadata import per_second

if TYPE_CHECKING:
    from .component import DynamoTableEtl


@step_failure_policy(
    "staging load of segment {segment} of {day} of DynamoDB table {config.table_name!r}"
)
def load_segment_staging(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    s3: ObjectStoreResource,
    day: date,
    segment: int,
) -> dg.MaterializeResult:
    """The segment's rows in the warehouse, in a staging schema of its own
    (``<target>__staging__<date>_<segment>``), recreated pristine on every run so one
    segment can be retried without touching the others. Loaded by COPY with explicit
    column lists; the load commits only if every table has the rows the extract wrote."""
    started = time.monotonic()
    manifest = manifests.read(config, s3, day, segment)
    schema_set = DataSchemaSet.from_dict(manifest["data_schema"])
    schema = config.staging_schema(day, segment)
    dialect = warehouse.sql_dialect
    specs = [table.to_table_spec() for table in schema_set.tables]
    statements = warehouse_sql.recreate_owned_schema(dialect, schema) + [
        statement
        for spec in specs
        for statement in warehouse_sql.create_table(dialect, schema, spec, primary_key=False)
    ]
    total = sum(entry["rows"] for entry in manifest["objects"].values())
    reporter = StepProgress(context, f"staging load of segment {segment} of {day}", "rows", total)
    *record, insert_record = warehouse_sql.create_staging_record(dialect, schema)
    extract = manifests.extract_of(manifest)
    with warehouse.transaction() as conn:
        warehouse.run_statements(statements + record, conn=conn)
        # what this schema holds: publish compares it with the segment's manifest
        conn.execute(
            insert_record,
            (extract, schema_set.fingerprint, segment, int(manifest["total_segments"])),
        )
        loaded = {
            spec.name: reporter.tick(
                load_table(config, context, warehouse, s3, conn, manifest, spec, schema)
            )
            for spec in specs
        }
    seconds = time.monotonic() - started
    rows = sum(loaded.values())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "staging_schema": schema,
            "rows_per_table": dg.MetadataValue.json(loaded),
            "rows_per_second": per_second(rows, seconds),
            "data_schema_fingerprint": schema_set.fingerprint,
            "extract_id": extract,
            "duration_s": round(seconds, 3),
        }
    )


def load_table(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    s3: ObjectStoreResource,
    conn: psycopg.Connection,
    manifest: dict[str, Any],
    spec: TableSpec,
    schema: str,
) -> int:
    """COPY one table's CSV object into ``schema``; a non-retried failure when the loaded row
    count differs from the one the extract wrote."""
    entry = manifest["objects"][spec.name]
    if entry["rows"] == 0:
        return 0
    day, segment = date.fromisoformat(manifest["date"]), int(manifest["segment"])
    extract = manifests.extract_of(manifest) or "legacy"
    copy_manifest = s3_layout.copy_manifest_key(
        config.data_prefix, config.instance, day, segment, extract, spec.name
    )
    result = warehouse.load_csv_objects(
        conn,
        schema,
        spec.name,
        spec.column_names,
        [entry["uri"]],
        s3,
        manifest_uri=s3_uri(config.data_bucket, copy_manifest),
        settings=ObjectSettings(objects="data_bucket", manifest="data_bucket"),
    )
    if result.rows != entry["rows"]:
        raise dg.Failure(
            description=f"staging {schema}.{spec.name}: loaded {result.rows} rows but the "
            f"extract wrote {entry['rows']} ({entry['uri']})",
            allow_retries=False,
        )
    context.log.info(f"loaded {result.rows} rows into {schema}.{spec.name}")
    return result.rows
