"""DynamoDB table → S3 CSV → warehouse, as partitioned assets (one component per table).

Replaces the hand-run segment ETL: data-schema determination, per-segment extract to S3, a
pristine staging schema per segment, and an atomic publish of each date.
"""

import json
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import reduce
from pathlib import Path
from typing import IO, Any, Literal

import dagster as dg
from dagster import AssetExecutionContext, OpExecutionContext
from pydantic import Field

from etl_platform.core import s3_layout
from etl_platform.core import warehouse as warehouse_sql
from etl_platform.core.dynamo import (
    ColumnRole,
    DataSchemaSet,
    DataTable,
    EntityRule,
    ListMode,
    SchemaConfig,
    build_schema_set,
    diff,
    extract_segment,
    merge_observations,
    merge_schema_sets,
    observe,
)
from etl_platform.core.s3_layout import s3_uri
from etl_platform.resources import DynamoDBResource, ObjectStoreResource, WarehouseResource

from .run_policy import step_retry_policy, terminal_errors_fail_fast

MAX_PARTITIONS = 100_000
SCHEMA_SCAN_THREADS = 8
ROW_COUNT_CHECK = "row_counts_match_extract"
UNIQUE_KEY_CHECK = "primary_keys_unique"
ORPHAN_CHECK = "no_orphan_child_rows"


class EntityRuleConfig(dg.Model):
    """Split a single-table design into one data-schema per entity type: the entity of an item
    is the part of string attribute ``attribute`` before the first ``separator``."""

    attribute: str
    separator: str = "#"


class DynamoTableEtl(dg.Component, dg.Model, dg.Resolvable):
    """One DynamoDB table loaded into a warehouse schema, partitioned by date × scan segment.

    Assets: the source table (external), its inferred data-schemas (cached in S3), the
    segment CSV objects, the per-segment staging tables and the published schema.
    """

    instance: str = Field(description="Name of this pipeline instance; part of every asset key.")
    table_name: str = Field(description="DynamoDB table to extract.")
    total_segments: int = Field(default=4, ge=1, le=1000, description="Parallel-scan segments.")
    target_schema: str = Field(description="Warehouse schema the table set is published to.")
    start_date: str = Field(description="First date partition, YYYY-MM-DD.")
    data_bucket: str = Field(description="Bucket for the segment CSV objects.")
    data_prefix: str = Field(default="dynamodb", description="Key prefix for segment CSVs.")
    schema_cache_bucket: str = Field(description="Bucket of the data-schema cache.")
    schema_cache_prefix: str = Field(default="data-schemas")
    entity_rule: EntityRuleConfig | None = Field(
        default=None, description="Optional entity-type rule for single-table designs."
    )
    list_handling: Literal["child_tables", "json"] = "child_tables"
    unknown_attributes: Literal["evolve", "fail"] = Field(
        default="evolve",
        description="Attributes missing from the cached data-schema: widen it, or fail naming "
        "the item key and attribute.",
    )
    scan_page_size: int | None = Field(default=None, description="DynamoDB scan Limit per page.")
    schema_refresh_cron: str = Field(default="0 4 * * 1", description="Weekly data-schema run.")
    daily_extract_cron: str | None = Field(
        default=None,
        description="When set, extracts every segment of the latest date on this cron; "
        "staging and publish follow automatically.",
    )

    # -- keys ------------------------------------------------------------------------------
    def key(self, system: str, thing: str) -> dg.AssetKey:
        return dg.AssetKey([system, self.instance, thing])

    @property
    def group(self) -> str:
        return f"dynamodb_{self.instance}"

    def partitions(self) -> tuple[dg.DailyPartitionsDefinition, dg.MultiPartitionsDefinition]:
        try:
            start = date.fromisoformat(self.start_date)
        except ValueError as exc:
            raise ValueError(
                f"dynamodb instance {self.instance!r}: start_date {self.start_date!r} is not "
                "YYYY-MM-DD"
            ) from exc
        days = (datetime.now(UTC).date() - start).days + 1
        if days * self.total_segments > MAX_PARTITIONS:
            raise ValueError(
                f"dynamodb instance {self.instance!r}: start_date {self.start_date} and "
                f"total_segments {self.total_segments} give {days} days x "
                f"{self.total_segments} segments = {days * self.total_segments} partitions, "
                f"over Dagster's practical bound of {MAX_PARTITIONS}: move start_date later "
                "or use fewer segments (see docs/dynamo-etl.md, 'Sizing')"
            )
        daily = dg.DailyPartitionsDefinition(start_date=self.start_date, end_offset=1)
        segments = dg.StaticPartitionsDefinition([str(i) for i in range(self.total_segments)])
        return daily, dg.MultiPartitionsDefinition({"date": daily, "segment": segments})

    def schema_config(self, hash_key: str, range_key: str | None) -> SchemaConfig:
        rule = self.entity_rule
        return SchemaConfig(
            table=self.table_name,
            hash_key=hash_key,
            range_key=range_key,
            entity_rule=None if rule is None else EntityRule(rule.attribute, rule.separator),
            list_mode=ListMode(self.list_handling),
        )

    # -- data-schema cache -----------------------------------------------------------------
    def load_cached_schema(self, s3: ObjectStoreResource) -> DataSchemaSet | None:
        latest = s3.get_bytes(
            self.schema_cache_bucket,
            s3_layout.data_schema_latest_key(self.schema_cache_prefix, self.instance),
        )
        if latest is None:
            return None
        version_key = json.loads(latest)["key"]
        body = s3.get_bytes(self.schema_cache_bucket, version_key)
        if body is None:
            raise RuntimeError(
                f"data-schema cache pointer names s3://{self.schema_cache_bucket}/{version_key}, "
                "which does not exist: re-materialize the data_schemas asset"
            )
        return DataSchemaSet.from_json(body)

    def store_schema(self, s3: ObjectStoreResource, schema_set: DataSchemaSet) -> str:
        """Write the version (immutable, by fingerprint) then move the ``latest`` pointer."""
        key = s3_layout.data_schema_version_key(
            self.schema_cache_prefix, self.instance, schema_set.fingerprint
        )
        s3.put_bytes(schema_set.to_json().encode(), self.schema_cache_bucket, key)
        pointer = {
            "key": key,
            "fingerprint": schema_set.fingerprint,
            "written_at": datetime.now(UTC).isoformat(),
        }
        s3.put_bytes(
            json.dumps(pointer).encode(),
            self.schema_cache_bucket,
            s3_layout.data_schema_latest_key(self.schema_cache_prefix, self.instance),
        )
        return s3_uri(self.schema_cache_bucket, key)

    # -- segment manifests -----------------------------------------------------------------
    def read_manifest(self, s3: ObjectStoreResource, day: date, segment: int) -> dict[str, Any]:
        key = s3_layout.segment_manifest_key(self.data_prefix, self.instance, day, segment)
        body = s3.get_bytes(self.data_bucket, key)
        if body is None:
            raise dg.Failure(
                description=f"segment {segment} of {day} has no extract manifest at "
                f"{s3_uri(self.data_bucket, key)}: materialize segment_csv for partition "
                f"{day}|{segment} first",
                allow_retries=False,
            )
        return json.loads(body)

    # -- definitions -----------------------------------------------------------------------
    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        daily, date_segment = self.partitions()
        table_key = self.key("dynamodb", "table")
        schemas_key = self.key("dynamodb", "data_schemas")
        csv_key = self.key("s3", "segment_csv")
        staging_key = self.key("warehouse", "staging")
        published_key = self.key("warehouse", "published")
        component = self
        retry = step_retry_policy()

        source = dg.AssetSpec(
            key=table_key,
            description=f"The DynamoDB table `{self.table_name}`, read by parallel scan. "
            "External: it is the source of truth, never materialized here.",
            group_name=self.group,
            kinds={"dynamodb"},
        )

        @dg.asset(
            key=schemas_key,
            deps=[table_key],
            group_name=self.group,
            kinds={"dynamodb", "s3", "json"},
            retry_policy=retry,
        )
        def data_schemas(
            context: AssetExecutionContext, dynamodb: DynamoDBResource, s3: ObjectStoreResource
        ) -> dg.MaterializeResult:
            """What the table's items look like as warehouse tables: one data-schema per entity
            (columns, exact types, child tables for lists), inferred from a full parallel scan
            and cached, versioned, in S3. Segment extracts transform items with it. Refreshed
            weekly and on demand; names of existing columns never change between versions."""
            started = time.monotonic()
            with terminal_errors_fail_fast(f"data-schema scan of {component.table_name!r}"):
                hash_key, range_key = dynamodb.key_attributes(component.table_name)
                config = component.schema_config(hash_key, range_key)
                previous = component.load_cached_schema(s3)

                def scan(segment: int) -> Any:
                    observed = observe(
                        (
                            item
                            for page in dynamodb.scan_segment(
                                component.table_name,
                                segment,
                                component.total_segments,
                                page_size=component.scan_page_size,
                            )
                            for item in page
                        ),
                        config,
                    )
                    context.log.info(
                        f"data-schema scan: segment {segment}/{component.total_segments} done, "
                        f"{observed.item_count} items"
                    )
                    return observed

                threads = min(SCHEMA_SCAN_THREADS, component.total_segments)
                with ThreadPoolExecutor(threads) as pool:
                    observations = list(pool.map(scan, range(component.total_segments)))
                merged = reduce(merge_observations, observations)
                if previous is not None and previous.config != config:
                    context.log.warning(
                        "data-schema configuration changed (keys, entity rule or list "
                        "handling): inferring afresh instead of evolving the cached version"
                    )
                    previous = None
                if previous is not None:
                    merged = merge_observations(previous.observations, merged)
                schema_set = build_schema_set(merged, previous)
                uri = component.store_schema(s3, schema_set)
            changes = diff(previous, schema_set)
            seconds = time.monotonic() - started
            return dg.MaterializeResult(
                metadata={
                    "items_scanned": merged.item_count,
                    "tables": len(schema_set.tables),
                    "columns": sum(len(t.columns) for t in schema_set.tables),
                    "fingerprint": schema_set.fingerprint,
                    "previous_fingerprint": previous.fingerprint if previous else None,
                    "diff": dg.MetadataValue.json(changes.to_dict()),
                    "data_schema_uri": dg.MetadataValue.path(uri),
                    "items_per_second": round(merged.item_count / max(seconds, 1e-9), 1),
                    "duration_s": round(seconds, 3),
                    "table_schemas": dg.MetadataValue.md(_schemas_markdown(schema_set)),
                }
            )

        @dg.asset(
            key=csv_key,
            deps=[schemas_key],
            partitions_def=date_segment,
            group_name=self.group,
            kinds={"dynamodb", "s3", "csv"},
            retry_policy=retry,
            automation_condition=(
                dg.AutomationCondition.cron_tick_passed(self.daily_extract_cron)
                & dg.AutomationCondition.in_latest_time_window()
                & ~dg.AutomationCondition.in_progress()
                if self.daily_extract_cron
                else None
            ),
        )
        def segment_csv(
            context: AssetExecutionContext, dynamodb: DynamoDBResource, s3: ObjectStoreResource
        ) -> dg.MaterializeResult:
            """One parallel-scan segment of the table, transformed with the cached data-schemas
            into one gzip CSV per warehouse table on S3. Keys are deterministic per
            (date, segment): a re-run replaces the objects, never adds to them. A manifest
            written last lists the objects, their row counts and the data-schema used."""
            day, segment = _date_segment(context.partition_key)
            started = time.monotonic()
            schema_set = component.load_cached_schema(s3)
            if schema_set is None:
                raise dg.Failure(
                    description=f"no cached data-schema for {component.table_name!r}: "
                    f"materialize {schemas_key.to_user_string()} first",
                    allow_retries=False,
                )
            prefix = s3_layout.segment_prefix(
                component.data_prefix, component.instance, day, segment
            )
            manifest_key = s3_layout.segment_manifest_key(
                component.data_prefix, component.instance, day, segment
            )
            # No manifest while the segment is being rewritten: staging refuses a half-written
            # segment instead of loading a mix of old and new objects.
            s3.delete_keys(component.data_bucket, [manifest_key])
            with tempfile.TemporaryDirectory(prefix="segment_csv_") as tmp:
                files: dict[str, IO[bytes]] = {}

                def open_output(table: str) -> IO[bytes]:
                    if table in files:
                        files[table].close()
                    files[table] = open(Path(tmp) / f"{table}.csv.gz", "wb")
                    return files[table]

                def progress(items: int, pages: int) -> None:
                    if pages % 50 == 0:
                        rate = items / max(time.monotonic() - started, 1e-9)
                        context.log.info(
                            f"segment {segment} of {day}: {items} items in {pages} pages "
                            f"({rate:.0f} items/s)"
                        )

                with terminal_errors_fail_fast(
                    f"extract of segment {segment} of table {component.table_name!r}"
                ):
                    result = extract_segment(
                        lambda: dynamodb.scan_segment(
                            component.table_name,
                            segment,
                            component.total_segments,
                            page_size=component.scan_page_size,
                        ),
                        schema_set,
                        open_output,
                        on_unfit=component.unknown_attributes,
                        progress=progress,
                    )
                for handle in files.values():
                    handle.close()
                objects: dict[str, dict[str, Any]] = {}
                for table, output in sorted(result.tables.items()):
                    key = s3_layout.segment_csv_key(
                        component.data_prefix, component.instance, day, segment, table
                    )
                    with open(Path(tmp) / f"{table}.csv.gz", "rb") as body:
                        s3.upload_stream(body, component.data_bucket, key, "application/gzip")
                    objects[table] = {
                        "uri": s3_uri(component.data_bucket, key),
                        "rows": output.rows,
                        "csv_bytes": output.csv_bytes,
                        "gzip_bytes": output.gzip_bytes,
                    }
            current = {manifest_key} | {
                s3_layout.segment_csv_key(
                    component.data_prefix, component.instance, day, segment, t
                )
                for t in objects
            }
            stale = [
                o["Key"]
                for o in s3.list_objects(component.data_bucket, prefix)
                if o["Key"] not in current
            ]
            s3.delete_keys(component.data_bucket, stale)
            if result.evolved:
                latest = component.load_cached_schema(s3) or schema_set
                evolved = merge_schema_sets(latest, result.schema_set)
                component.store_schema(s3, evolved)
                context.log.warning(
                    f"segment {segment} of {day}: the data-schema widened "
                    f"({json.dumps(result.evolution)}); cached as {evolved.fingerprint}"
                )
            manifest = {
                "instance": component.instance,
                "table": component.table_name,
                "date": day.isoformat(),
                "segment": segment,
                "total_segments": component.total_segments,
                "items": result.items,
                "fingerprint": result.schema_set.fingerprint,
                "data_schema": result.schema_set.to_dict(),
                "objects": objects,
                "extracted_at": datetime.now(UTC).isoformat(),
            }
            s3.put_bytes(json.dumps(manifest).encode(), component.data_bucket, manifest_key)
            seconds = time.monotonic() - started
            return dg.MaterializeResult(
                metadata={
                    "dagster/row_count": result.rows,
                    "items_scanned": result.items,
                    "items_per_second": round(result.items / max(seconds, 1e-9), 1),
                    "rows_per_table": dg.MetadataValue.json(
                        {t: o["rows"] for t, o in objects.items()}
                    ),
                    "gzip_bytes": sum(o["gzip_bytes"] for o in objects.values()),
                    "csv_bytes": sum(o["csv_bytes"] for o in objects.values()),
                    "s3_prefix": dg.MetadataValue.path(s3_uri(component.data_bucket, prefix)),
                    "manifest_uri": dg.MetadataValue.path(
                        s3_uri(component.data_bucket, manifest_key)
                    ),
                    "data_schema_fingerprint": result.schema_set.fingerprint,
                    "data_schema_evolved": result.evolved,
                    "scan_passes": result.passes,
                    "stale_objects_removed": len(stale),
                    "duration_s": round(seconds, 3),
                }
            )

        @dg.asset(
            key=staging_key,
            deps=[csv_key],
            partitions_def=date_segment,
            group_name=self.group,
            kinds={"s3", "postgres" if _is_postgres() else "redshift"},
            retry_policy=retry,
            pool="warehouse",
            automation_condition=dg.AutomationCondition.eager(),
        )
        def staging(
            context: AssetExecutionContext, warehouse: WarehouseResource, s3: ObjectStoreResource
        ) -> dg.MaterializeResult:
            """The segment's rows in the warehouse, in a staging schema of its own
            (``<target>__staging__<date>_<segment>``), recreated pristine on every run so one
            segment can be retried without touching the others. Loaded by COPY with explicit
            column lists; the load commits only if every table has the rows the extract wrote."""
            day, segment = _date_segment(context.partition_key)
            started = time.monotonic()
            manifest = component.read_manifest(s3, day, segment)
            schema_set = DataSchemaSet.from_dict(manifest["data_schema"])
            schema = component.staging_schema(day, segment)
            dialect = warehouse.sql_dialect
            loaded: dict[str, int] = {}
            with terminal_errors_fail_fast(f"staging load of segment {segment} of {day}"):
                with warehouse.transaction() as conn:
                    for statement in warehouse_sql.recreate_owned_schema(dialect, schema):
                        conn.execute(statement)
                    for table in schema_set.tables:
                        spec = table.to_table_spec()
                        for statement in warehouse_sql.create_table(
                            dialect, schema, spec, primary_key=False
                        ):
                            conn.execute(statement)
                        entry = manifest["objects"][table.name]
                        if entry["rows"] == 0:
                            loaded[table.name] = 0
                            continue
                        result = warehouse.load_csv_objects(
                            conn,
                            schema,
                            table.name,
                            spec.column_names,
                            [entry["uri"]],
                            s3,
                            manifest_uri=s3_uri(
                                component.data_bucket,
                                s3_layout.copy_manifest_key(
                                    component.data_prefix,
                                    component.instance,
                                    day,
                                    segment,
                                    table.name,
                                ),
                            ),
                        )
                        if result.rows != entry["rows"]:
                            raise dg.Failure(
                                description=f"staging {schema}.{table.name}: loaded "
                                f"{result.rows} rows but the extract wrote {entry['rows']} "
                                f"({entry['uri']})",
                                allow_retries=False,
                            )
                        loaded[table.name] = result.rows
                        context.log.info(f"loaded {result.rows} rows into {schema}.{table.name}")
            seconds = time.monotonic() - started
            rows = sum(loaded.values())
            return dg.MaterializeResult(
                metadata={
                    "dagster/row_count": rows,
                    "staging_schema": schema,
                    "rows_per_table": dg.MetadataValue.json(loaded),
                    "rows_per_second": round(rows / max(seconds, 1e-9), 1),
                    "data_schema_fingerprint": schema_set.fingerprint,
                    "duration_s": round(seconds, 3),
                }
            )

        @dg.asset(
            key=published_key,
            ins={
                "staging": dg.AssetIn(
                    key=staging_key,
                    partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
                        partition_dimension_name="date"
                    ),
                    dagster_type=dg.Nothing,
                )
            },
            partitions_def=daily,
            group_name=self.group,
            kinds={"postgres" if _is_postgres() else "redshift"},
            retry_policy=retry,
            pool="warehouse",
            backfill_policy=dg.BackfillPolicy.multi_run(1),
            automation_condition=dg.AutomationCondition.eager(),
            check_specs=[
                dg.AssetCheckSpec(
                    ROW_COUNT_CHECK,
                    asset=published_key,
                    blocking=True,
                    description="Every published table has exactly the rows the segment "
                    "extracts wrote for it.",
                ),
                dg.AssetCheckSpec(
                    UNIQUE_KEY_CHECK,
                    asset=published_key,
                    blocking=True,
                    description="No primary key value appears twice in a published table.",
                ),
                dg.AssetCheckSpec(
                    ORPHAN_CHECK,
                    asset=published_key,
                    blocking=True,
                    description="Every child-table row (list elements) has its parent row.",
                ),
            ],
        )
        def published(
            context: AssetExecutionContext, warehouse: WarehouseResource, s3: ObjectStoreResource
        ) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
            """The table set as readers query it: every segment of the date centralized into a
            new schema, checked (row counts equal what was extracted, keys unique, no orphan
            child rows), then swapped into place in one transaction. The replaced version is
            kept as ``<target>__previous`` for rollback; readers never see an empty or
            half-loaded schema."""
            day = date.fromisoformat(context.partition_key)
            started = time.monotonic()
            with _publish_lock(warehouse, component.target_schema, context.log):
                yield from component.publish(context, warehouse, s3, day, started)

        rollback = self.rollback_job()
        schedules = [
            dg.ScheduleDefinition(
                name=f"dynamodb_{self.instance}_data_schemas_weekly",
                target=dg.AssetSelection.assets(schemas_key),
                cron_schedule=self.schema_refresh_cron,
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description=f"Weekly data-schema refresh of {self.table_name!r}.",
            )
        ]
        return dg.Definitions(
            assets=[source, data_schemas, segment_csv, staging, published],
            jobs=[rollback],
            schedules=schedules,
        )

    # -- staging and publish ---------------------------------------------------------------
    def staging_schema(self, day: date, segment: int) -> str:
        return warehouse_sql.staging_schema_name(
            self.target_schema, f"{day.strftime('%Y%m%d')}_{segment:04d}"
        )

    def publish(
        self,
        context: AssetExecutionContext,
        warehouse: WarehouseResource,
        s3: ObjectStoreResource,
        day: date,
        started: float,
    ) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
        dialect = warehouse.sql_dialect
        manifests = [self.read_manifest(s3, day, seg) for seg in range(self.total_segments)]
        segment_sets = [DataSchemaSet.from_dict(m["data_schema"]) for m in manifests]
        merged = reduce(merge_schema_sets, segment_sets)
        segment_schemas = [self.staging_schema(day, seg) for seg in range(self.total_segments)]
        new_schema = warehouse_sql.new_schema_name(self.target_schema)
        expected: dict[str, int] = {t.name: 0 for t in merged.tables}
        for manifest in manifests:
            for table, entry in manifest["objects"].items():
                expected[table] = expected.get(table, 0) + entry["rows"]
        with terminal_errors_fail_fast(f"centralize of {day} into {new_schema}"):
            with warehouse.transaction() as conn:
                for statement in warehouse_sql.recreate_owned_schema(dialect, new_schema):
                    conn.execute(statement)
                for table in merged.tables:
                    spec = table.to_table_spec()
                    per_segment = {}
                    for schema, segment_set in zip(segment_schemas, segment_sets, strict=True):
                        if segment_set.fingerprint != merged.fingerprint:
                            per_segment[schema] = (
                                segment_set.table(table.name).to_table_spec()
                                if table.name in segment_set.table_names
                                else None
                            )
                    for statement in warehouse_sql.centralize(
                        dialect, spec, segment_schemas, new_schema, segment_specs=per_segment
                    ):
                        conn.execute(statement)
                context.log.info(
                    f"centralized {self.total_segments} segments of {day} into {new_schema}"
                )
        checks = self.run_checks(warehouse, merged, new_schema, expected)
        failed = [c for c in checks if not c.passed]
        if failed:
            yield from checks
            raise dg.Failure(
                description=f"publish of {day} stopped before the swap: "
                + "; ".join(f"{c.check_name}: {c.metadata.get('problems')}" for c in failed)
                + f". {self.target_schema} is unchanged; {new_schema} is left for inspection.",
                allow_retries=False,
            )
        previous = warehouse_sql.previous_schema_name(self.target_schema)
        with terminal_errors_fail_fast(f"swap of {new_schema} into {self.target_schema}"):
            with warehouse.transaction() as conn:
                live = _publish_marker(conn, dialect, self.target_schema)
                if live is not None and (
                    live[0] > day or (live[0] == day and live[1] == context.run_id)
                ):
                    # A newer date is live (a backfill of older dates must not roll readers
                    # back), or this run's earlier attempt already swapped before a retry.
                    conn.execute(warehouse_sql.drop_owned_schema(dialect, new_schema))
                    swapped = False
                else:
                    for table in merged.tables:
                        if table.primary_key:
                            conn.execute(
                                warehouse_sql.add_primary_key(
                                    dialect, new_schema, table.to_table_spec()
                                )
                            )
                    for statement in warehouse_sql.create_publish_marker(dialect, new_schema):
                        conn.execute(statement)
                    conn.execute(
                        warehouse_sql.insert_publish_marker(dialect, new_schema),
                        (day, merged.fingerprint, context.run_id),
                    )
                    views = conn.execute(
                        warehouse_sql.dependent_views_query(dialect, previous), (previous,)
                    ).fetchall()
                    if views:
                        raise dg.Failure(
                            description=f"swap refused: views outside {previous} depend on it "
                            f"and would be dropped: {views}. Recreate them on "
                            f"{self.target_schema}.",
                            allow_retries=False,
                        )
                    following = conn.execute(
                        warehouse_sql.dependent_views_query(dialect, self.target_schema),
                        (self.target_schema,),
                    ).fetchall()
                    if following:
                        context.log.warning(
                            f"views bound to {self.target_schema}'s tables will follow them into "
                            f"{previous} and show the replaced version: {following}"
                        )
                    for statement in warehouse_sql.swap_statements(
                        dialect, self.target_schema, new_schema
                    ):
                        conn.execute(statement)
                    swapped = True
        if not swapped:
            assert live is not None
            context.log.warning(
                f"{day} passed its checks but was not swapped in: {self.target_schema} holds "
                f"{live[0]} (published by run {live[1]})"
            )
        seconds = time.monotonic() - started
        rows = sum(expected.values())
        main = [t for t in merged.tables if t.parent is None]
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "published_schema": self.target_schema,
                "previous_schema": previous,
                "swapped_in": swapped,
                "live_date": (day if swapped else live[0]).isoformat(),  # type: ignore[index]
                "rows_per_table": dg.MetadataValue.json(expected),
                "segments": self.total_segments,
                "data_schema_fingerprint": merged.fingerprint,
                "dagster/column_schema": _column_schema(main[0]) if len(main) == 1 else None,
                "table_schemas": dg.MetadataValue.md(_schemas_markdown(merged)),
                "duration_s": round(seconds, 3),
            },
            check_results=checks,
        )

    def run_checks(
        self,
        warehouse: WarehouseResource,
        schema_set: DataSchemaSet,
        schema: str,
        expected: dict[str, int],
    ) -> list[dg.AssetCheckResult]:
        dialect = warehouse.sql_dialect
        counts: dict[str, int] = {}
        duplicates: dict[str, int] = {}
        orphans: dict[str, int] = {}
        tables = {t.name: t for t in schema_set.tables}
        with warehouse.connect() as conn:
            for table in schema_set.tables:
                spec = table.to_table_spec()
                counts[table.name] = _scalar(
                    conn, warehouse_sql.row_count_query(dialect, schema, table.name)
                )
                if table.primary_key:
                    duplicates[table.name] = _scalar(
                        conn, warehouse_sql.duplicate_key_count_query(dialect, schema, spec)
                    )
                if table.parent is not None:
                    child_cols, parent_cols = _parent_link(table, tables[table.parent])
                    orphans[table.name] = _scalar(
                        conn,
                        warehouse_sql.orphan_count_query(
                            dialect, schema, table.name, child_cols, table.parent, parent_cols
                        ),
                    )
        mismatched = {
            t: {"published": counts.get(t), "extracted": n}
            for t, n in expected.items()
            if counts.get(t) != n
        }
        return [
            dg.AssetCheckResult(
                check_name=ROW_COUNT_CHECK,
                passed=not mismatched,
                metadata={"rows": dg.MetadataValue.json(counts), "problems": str(mismatched)},
            ),
            dg.AssetCheckResult(
                check_name=UNIQUE_KEY_CHECK,
                passed=not any(duplicates.values()),
                metadata={
                    "duplicate_keys": dg.MetadataValue.json(duplicates),
                    "problems": str({t: n for t, n in duplicates.items() if n}),
                },
            ),
            dg.AssetCheckResult(
                check_name=ORPHAN_CHECK,
                passed=not any(orphans.values()),
                metadata={
                    "orphan_rows": dg.MetadataValue.json(orphans),
                    "problems": str({t: n for t, n in orphans.items() if n}),
                },
            ),
        ]

    def rollback_job(self) -> dg.JobDefinition:
        component = self

        @dg.op(name=f"dynamodb_{self.instance}_rollback_publish_op")
        def rollback_publish(context: OpExecutionContext, warehouse: WarehouseResource) -> None:
            """Swap the published schema with its kept previous version, in one transaction.
            Running it again rolls forward."""
            dialect = warehouse.sql_dialect
            with (
                _publish_lock(warehouse, component.target_schema, context.log),
                warehouse.transaction() as conn,
            ):
                for statement in warehouse_sql.rollback_statements(
                    dialect, component.target_schema
                ):
                    conn.execute(statement)
            context.log.info(
                f"{component.target_schema} and "
                f"{warehouse_sql.previous_schema_name(component.target_schema)} swapped"
            )

        @dg.job(
            name=f"dynamodb_{self.instance}_rollback_publish",
            description=f"Restore the previous published version of {self.target_schema} "
            "(run again to roll forward).",
        )
        def rollback() -> None:
            rollback_publish()

        return rollback


@contextmanager
def _publish_lock(warehouse: WarehouseResource, target: str, log: Any) -> Iterator[None]:
    """One publish or rollback of ``target`` at a time. Publishes of two dates (a backfill
    launches them in the same tick) both build ``<target>__new``: run together, one fails on
    the schema name or drops/swaps the other's schema. PostgreSQL: a session advisory lock on
    a connection of its own, held until the block ends and released by the server if the
    worker dies. Redshift has no advisory locks: not guarded here (give the ``published``
    runs of one target a concurrency limit of 1)."""
    if warehouse.sql_dialect.publish_lock is not warehouse_sql.PublishLock.ADVISORY_LOCK:
        yield
        return
    dialect = warehouse.sql_dialect
    key = warehouse_sql.advisory_lock_key(f"publish:{target}")
    with warehouse.connect() as conn:
        conn.autocommit = True
        # Waiting for the running publish is expected: no timeouts on this connection.
        for statement in warehouse_sql.session_timeouts(dialect, 0, 0):
            conn.execute(statement)
        if not conn.execute(warehouse_sql.advisory_lock(dialect, wait=False), (key,)).fetchone()[0]:
            log.info(f"another publish or rollback of {target} is running: waiting for it")
            conn.execute(warehouse_sql.advisory_lock(dialect, wait=True), (key,))
        yield  # closing the connection releases the lock


def _publish_marker(conn: Any, dialect: warehouse_sql.Dialect, schema: str) -> Any:
    """``(partition_date, run_id)`` of the version published in ``schema``, or None."""
    if not conn.execute(warehouse_sql.publish_marker_exists_query(dialect), (schema,)).fetchone():
        return None
    return conn.execute(warehouse_sql.publish_marker_query(dialect, schema)).fetchone()


def _is_postgres() -> bool:
    import os

    return os.environ.get("ETL_WAREHOUSE_DIALECT", "postgres") == "postgres"


def _date_segment(partition_key: str | dg.MultiPartitionKey) -> tuple[date, int]:
    keys = (
        partition_key.keys_by_dimension
        if isinstance(partition_key, dg.MultiPartitionKey)
        else dict(zip(("date", "segment"), str(partition_key).split("|"), strict=True))
    )
    return date.fromisoformat(keys["date"]), int(keys["segment"])


def _scalar(conn: Any, statement: Any) -> int:
    row = conn.execute(statement).fetchone()
    return int(row[0])


def _parent_link(child: DataTable, parent: DataTable) -> tuple[list[str], list[str]]:
    """Child parent-key columns and the parent columns they reference, pairwise."""
    child_cols = [c.name for c in child.columns if c.role is ColumnRole.PARENT_KEY]
    return child_cols, list(parent.primary_key[: len(child_cols)])


def _column_schema(table: DataTable) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.type_label,
                description=".".join(c.path) or None,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in table.columns
        ]
    )


def _schemas_markdown(schema_set: DataSchemaSet) -> str:
    lines = []
    for table in schema_set.tables:
        parent = f" (child of `{table.parent}`)" if table.parent else ""
        lines.append(f"**{table.name}**{parent}: key {', '.join(table.primary_key) or '-'}")
        lines.append("")
        lines.append("| column | type | attribute path |")
        lines.append("|---|---|---|")
        for c in table.columns:
            lines.append(f"| {c.name} | {c.type_label} | {'.'.join(c.path)} |")
        lines.append("")
    return "\n".join(lines)
