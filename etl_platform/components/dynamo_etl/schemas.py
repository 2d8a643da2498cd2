"""Step: determine the data-schemas (runbook: "scan the table, decide the warehouse tables").

A full parallel scan observes every item; the observations are merged with the cached version's
so existing column names never change, and the result is stored as a new cache version.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import reduce
from typing import TYPE_CHECKING

import dagster as dg

from etl_platform.core.dynamo import (
    DataSchemaSet,
    SchemaConfig,
    SchemaObservations,
    build_schema_set,
    diff,
    merge_observations,
    observe,
)
from etl_platform.resources import DynamoDBResource, ObjectStoreResource

from ..progress import StepProgress
from ..run_policy import step_failure_policy
from . import schema_cache
from .metadata import per_second, schemas_markdown

if TYPE_CHECKING:
    from .component import DynamoTableEtl

SCHEMA_SCAN_THREADS = 8


@step_failure_policy("data-schema scan of DynamoDB table {config.table_name!r}")
def infer_data_schemas(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    dynamodb: DynamoDBResource,
    s3: ObjectStoreResource,
) -> dg.MaterializeResult:
    """What the table's items look like as warehouse tables: one data-schema per entity
    (columns, exact types, child tables for lists), inferred from a full parallel scan
    and cached, versioned, in S3. Segment extracts transform items with it. Refreshed
    weekly and on demand; names of existing columns never change between versions."""
    started = time.monotonic()
    hash_key, range_key = dynamodb.key_attributes(config.table_name, setting="table_name")
    schema_config = config.schema_config(hash_key, range_key)
    schema_cache.ensure_buckets(config, s3)
    previous = schema_cache.load_latest(config, s3)
    if previous is not None and previous.config != schema_config:
        context.log.warning(
            "data-schema configuration changed (keys, entity rule or list handling): "
            "inferring afresh instead of evolving the cached version"
        )
        previous = None
    scanned = scan_all_segments(config, context, dynamodb, schema_config)
    observed = scanned

    def evolve(latest: DataSchemaSet | None) -> DataSchemaSet:
        # the latest version, re-read if an extract widened it during the scan
        nonlocal observed
        base = latest if latest is not None and latest.config == schema_config else None
        observed = scanned if base is None else merge_observations(base.observations, scanned)
        return build_schema_set(observed, base)

    schema_set, uri = schema_cache.update(config, s3, evolve)
    seconds = time.monotonic() - started
    return dg.MaterializeResult(
        metadata={
            "items_scanned": observed.item_count,
            "tables": len(schema_set.tables),
            "columns": sum(len(t.columns) for t in schema_set.tables),
            "fingerprint": schema_set.fingerprint,
            "previous_fingerprint": previous.fingerprint if previous else None,
            "diff": dg.MetadataValue.json(diff(previous, schema_set).to_dict()),
            "data_schema_uri": dg.MetadataValue.path(uri),
            "items_per_second": per_second(observed.item_count, seconds),
            "duration_s": round(seconds, 3),
            "table_schemas": schemas_markdown(schema_set),
        }
    )


def scan_all_segments(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    dynamodb: DynamoDBResource,
    schema_config: SchemaConfig,
) -> SchemaObservations:
    """Observe every item, segments scanned in parallel (up to ``SCHEMA_SCAN_THREADS``)."""

    reporter = StepProgress(context, "data-schema scan", "items")

    def scan(segment: int) -> SchemaObservations:
        pages = reporter.pages(
            dynamodb.scan_segment(
                config.table_name,
                segment,
                config.total_segments,
                page_size=config.scan_page_size,
                setting="table_name",
            )
        )
        observed = observe((item for page in pages for item in page), schema_config)
        context.log.info(
            f"data-schema scan: segment {segment}/{config.total_segments} done, "
            f"{observed.item_count} items"
        )
        return observed

    with ThreadPoolExecutor(min(SCHEMA_SCAN_THREADS, config.total_segments)) as pool:
        return reduce(merge_observations, pool.map(scan, range(config.total_segments)))
