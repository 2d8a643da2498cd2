"""Step: keep staging and extracts for a bounded number of days (runbook: "clean up old loads").

After a publish, the staging schemas of dates ``keep_staging_days`` or more days before the live
date are dropped (Redshift allows 9,900 schemas per database; one per date × segment runs out),
and the S3 extracts of dates ``keep_extract_days`` or more days before it are deleted. The
``__previous`` schema is not touched here: each swap replaces it, so it serves one rollback.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import dagster as dg

from etl_platform.core import s3_layout
from etl_platform.core import warehouse as warehouse_sql
from etl_platform.resources import ObjectStoreResource, WarehouseResource

if TYPE_CHECKING:
    from .component import DynamoTableEtl


def apply_retention(
    config: DynamoTableEtl,
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    s3: ObjectStoreResource,
    live: date,
) -> dict[str, int]:
    """Drop expired staging schemas and delete expired extracts, relative to the ``live``
    date; returns how many of each went (asset metadata)."""
    dialect, target = warehouse.sql_dialect, config.target_schema
    names = [
        row[0]
        for row in warehouse.fetch_all(
            warehouse_sql.staging_schemas_query(dialect, target),
            (warehouse_sql.staging_prefix_pattern(target),),
        )
    ]
    expired = warehouse_sql.expired_staging_schemas(names, target, live, config.keep_staging_days)
    for schema in expired:  # one transaction each: a schema still being read only waits itself
        warehouse.run_statements([warehouse_sql.drop_owned_schema(dialect, schema)])
    prefix = s3_layout.dynamo_instance_prefix(config.data_prefix, config.instance)
    keys = [o["Key"] for o in s3.list_objects(config.data_bucket, prefix, setting="data_bucket")]
    old_keys = s3_layout.expired_extract_keys(keys, prefix, live, config.extract_retention_days)
    s3.delete_keys(config.data_bucket, old_keys, setting="data_bucket")
    if expired or old_keys:
        context.log.info(
            f"retention before {live}: dropped {len(expired)} staging schemas, deleted "
            f"{len(old_keys)} extract objects"
        )
    return {"staging_schemas_dropped": len(expired), "extract_objects_deleted": len(old_keys)}
