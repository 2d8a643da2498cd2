"""Step: publish one date (runbook: "centralize the segments, check, swap the schema in").

Every segment's staging schema is centralized into a new ``<target>__new`` schema, the blocking
checks run on it, and it is swapped into place in one transaction; the replaced version is kept
as ``<target>__previous`` (for one rollback: the next swap replaces it). The configured grants
are given to the new version inside the swap transaction. One publish or rollback of a target
at a time (its Dagster pool and the publish lock). After the swap, staging and extracts past
their retention are removed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from functools import reduce
from typing import TYPE_CHECKING

import dagster as dg
import psycopg

from etl_platform.core import warehouse as warehouse_sql
from etl_platform.core.dynamo import DataSchemaSet, merge_schema_sets
from etl_platform.core.table_spec import TableSpec
from etl_platform.resources import ObjectStoreResource, WarehouseResource

from ..progress import StepProgress
from ..run_policy import step_failure_policy
from . import checks, manifests, retention
from .metadata import main_table_schema, schemas_markdown

if TYPE_CHECKING:
    from .component import DynamoTableEtl


@step_failure_policy("publish of {day} into {config.target_schema!r}")
def publish_date(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    s3: ObjectStoreResource,
    day: date,
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """The table set as readers query it: every segment of the date centralized into a
    new schema, checked (row counts equal what was extracted, keys unique, no orphan
    child rows), then swapped into place in one transaction. The replaced version is
    kept as ``<target>__previous`` for rollback; readers never see an empty or
    half-loaded schema."""
    started = time.monotonic()
    with warehouse.publish_lock(config.target_schema, context.log):
        segments = [manifests.read(config, s3, day, s) for s in range(config.total_segments)]
        check_staged_extracts(config, warehouse, day, segments)
        segment_sets = [DataSchemaSet.from_dict(m["data_schema"]) for m in segments]
        merged = reduce(merge_schema_sets, segment_sets)
        expected = manifests.expected_rows(segments, merged.table_names)
        reporter = StepProgress(context, f"publish of {day}", "phases (centralize, check, swap)")
        new_schema = centralize(config, context, warehouse, day, merged, segment_sets)
        reporter.tick()
        results = checks.evaluate(warehouse, merged, new_schema, expected)
        reporter.tick()
        if not all(result.passed for result in results):
            yield from results
            raise dg.Failure(description=checks_failed(config, day, results), allow_retries=False)
        live = swap_in(config, context, warehouse, day, merged, new_schema)
        reporter.tick()
        reporter.done()
    swapped = live is None
    retained = retention.apply_retention(
        config, context, warehouse, s3, day if live is None else live[0]
    )
    previous = warehouse_sql.previous_schema_name(config.target_schema)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(expected.values()),
            "published_schema": config.target_schema,
            "previous_schema": previous,
            "swapped_in": swapped,
            "live_date": (day if live is None else live[0]).isoformat(),
            "rows_per_table": dg.MetadataValue.json(expected),
            "segments": config.total_segments,
            "data_schema_fingerprint": merged.fingerprint,
            **main_table_schema(merged),
            "table_schemas": schemas_markdown(merged),
            **retained,
            "duration_s": round(time.monotonic() - started, 3),
        },
        check_results=results,
    )


def centralize(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    day: date,
    merged: DataSchemaSet,
    segment_sets: list[DataSchemaSet],
) -> str:
    """Build ``<target>__new`` from every segment's staging schema in one transaction; tables
    of segments extracted with an older data-schema are widened on the way. Returns the name."""
    dialect = warehouse.sql_dialect
    new_schema = warehouse_sql.new_schema_name(config.target_schema)
    staged = [config.staging_schema(day, s) for s in range(config.total_segments)]
    statements = warehouse_sql.recreate_owned_schema(dialect, new_schema)
    for table in merged.tables:
        older = {
            schema: segment_table_spec(segment_set, table.name)
            for schema, segment_set in zip(staged, segment_sets, strict=True)
            if segment_set.fingerprint != merged.fingerprint
        }
        statements += warehouse_sql.centralize(
            dialect, table.to_table_spec(), staged, new_schema, segment_specs=older
        )
    warehouse.run_statements(statements)
    context.log.info(f"centralized {config.total_segments} segments of {day} into {new_schema}")
    return new_schema


def check_staged_extracts(
    config: DynamoTableEtl, warehouse: WarehouseResource, day: date, segments: list[dict]
) -> None:
    """Publish exactly what staging loaded: a non-retried failure naming the date and segment
    when a segment was extracted or staged under another ``total_segments`` (two splits
    overlap), or its staging holds another extract than its manifest points at (staged before
    a re-extract)."""
    dialect = warehouse.sql_dialect
    exists = warehouse_sql.table_exists_query(dialect)
    for segment, manifest in enumerate(segments):
        manifests.check_split(config, manifest, day, segment)
        schema, partition = config.staging_schema(day, segment), f"{day}|{segment}"
        record = None
        if warehouse.fetch_all(exists, (schema, warehouse_sql.STAGING_RECORD_TABLE)):
            rows = warehouse.fetch_all(warehouse_sql.staging_record_query(dialect, schema))
            record = rows[0] if rows else None
        refusal = staged_extract_problem(config, manifest, record, day, segment, schema)
        if refusal is not None:
            raise dg.Failure(
                description=f"publish of {day} refused: {refusal}. Materialize staging for "
                f"partition {partition}; {config.target_schema} is unchanged.",
                allow_retries=False,
            )


def staged_extract_problem(
    config: DynamoTableEtl,
    manifest: dict,
    record: tuple | None,
    day: date,
    segment: int,
    schema: str,
) -> str | None:
    """Why segment ``segment``'s staging (its ``_etl_staged`` row) is not what its manifest
    points at, or None when it is."""
    if record is None:
        return (
            f"segment {segment} of {day}: staging schema {schema} records no loaded extract "
            "(never staged, or staged before extract ids were recorded)"
        )
    extract, fingerprint, split = record
    if int(split) != config.total_segments:
        return (
            f"segment {segment} of {day} was staged with total_segments={split}, but the "
            f"instance has total_segments={config.total_segments}: segments of two splits "
            "overlap"
        )
    wanted = manifests.extract_of(manifest)
    if extract != wanted or fingerprint != manifest["fingerprint"]:
        return (
            f"segment {segment} of {day}: its staging ({schema}) holds extract {extract!r} "
            f"but the manifest points at the newer extract {wanted!r}: staging is older "
            "than the manifest"
        )
    return None


def segment_table_spec(segment_set: DataSchemaSet, table: str) -> TableSpec | None:
    """The table as one segment's data-schema has it (None: that segment has no such table)."""
    if table not in segment_set.table_names:
        return None
    return segment_set.table(table).to_table_spec()


def checks_failed(config: DynamoTableEtl, day: date, results: list[dg.AssetCheckResult]) -> str:
    problems = "; ".join(
        f"{r.check_name}: {r.metadata.get('problems')}" for r in results if not r.passed
    )
    new_schema = warehouse_sql.new_schema_name(config.target_schema)
    return (
        f"publish of {day} stopped before the swap: {problems}. {config.target_schema} is "
        f"unchanged; {new_schema} is left for inspection."
    )


def swap_in(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    day: date,
    merged: DataSchemaSet,
    new_schema: str,
) -> tuple[date, str] | None:
    """Swap ``new_schema`` into the target in one transaction, keeping the replaced version as
    ``<target>__previous``; None when swapped. Not swapped (and ``new_schema`` dropped) when a
    newer date is live (a backfill of older dates must not roll readers back) or this run's
    earlier attempt already swapped before a retry: then the live ``(date, run_id)``."""
    dialect, target = warehouse.sql_dialect, config.target_schema
    with warehouse.transaction() as conn:
        live = warehouse.publish_marker(target, conn=conn)
        if live is not None and (live[0] > day or live == (day, context.run_id)):
            warehouse.run_statements(
                [warehouse_sql.drop_owned_schema(dialect, new_schema)], conn=conn
            )
            context.log.warning(
                f"{day} passed its checks but was not swapped in: {target} holds {live[0]} "
                f"(published by run {live[1]})"
            )
            return live
        warehouse.run_statements(
            [
                warehouse_sql.add_primary_key(dialect, new_schema, table.to_table_spec())
                for table in merged.tables
                if table.primary_key
            ],
            conn=conn,
        )
        warehouse.write_publish_marker(
            new_schema, day, merged.fingerprint, context.run_id, conn=conn
        )
        # grants bind to the schema, not its name: the new version gets them before the swap
        warehouse.run_statements(
            warehouse_sql.grant_statements(dialect, new_schema, config.grants), conn=conn
        )
        refuse_views_on_previous(config, context, warehouse, conn)
        warehouse.run_statements(
            warehouse_sql.swap_statements(dialect, target, new_schema), conn=conn
        )
    return None


def refuse_views_on_previous(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    conn: psycopg.Connection,
) -> None:
    """The swap drops the old ``__previous``: refuse when views outside it depend on it, and
    warn about views that will follow the target's tables into ``__previous``."""
    dialect, target = warehouse.sql_dialect, config.target_schema
    previous = warehouse_sql.previous_schema_name(target)
    views = warehouse.fetch_all(
        warehouse_sql.dependent_views_query(dialect, previous), (previous,), conn=conn
    )
    if views:
        raise dg.Failure(
            description=f"swap refused: views outside {previous} depend on it and would be "
            f"dropped: {views}. Recreate them on {target}.",
            allow_retries=False,
        )
    following = warehouse.fetch_all(
        warehouse_sql.dependent_views_query(dialect, target), (target,), conn=conn
    )
    if following:
        context.log.warning(
            f"views bound to {target}'s tables will follow them into {previous} and show the "
            f"replaced version: {following}"
        )
