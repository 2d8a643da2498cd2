"""DynamoDB table → S3 CSV → warehouse, as partitioned assets (one component per table).

Replaces the hand-run segment ETL: data-schema determination, per-segment extract to S3, a
pristine staging schema per segment, and an atomic publish of each date. This module declares;
every body is a step module of this package (``schemas``, ``extract``, ``staging``,
``publish``, ``rollback``). Config errors that need no I/O are raised here, when the YAML
loads, so ``dg check yaml`` names the file and the field.
"""

import inspect
import os
import warnings
from collections.abc import Callable
from datetime import date
from typing import Any, Literal

import dagster as dg
from dagster import AssetExecutionContext, OpExecutionContext
from pydantic import Field, field_validator, model_validator

from etl_platform.core import warehouse as warehouse_sql
from etl_platform.core.dynamo import EntityRule, ListMode, SchemaConfig
from etl_platform.resources import DynamoDBResource, ObjectStoreResource, WarehouseResource

from .. import pools
from ..config_rules import check_bucket_name, check_cron
from ..run_policy import step_retry_policy
from . import checks, extract, publish, rollback, schemas, staging
from .validation import (
    DYNAMODB_MAX_SEGMENTS,
    PartitionBoundWarning,
    check_attribute_name,
    check_grants,
    check_instance_name,
    check_published_schema,
    check_schema_name,
    check_separator,
    check_start_date,
    check_table_name,
    partition_bound_note,
)

#: the published date reads every segment of its date
_BY_DATE = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="date")


class EntityRuleConfig(dg.Model):
    """Split a single-table design into one data-schema per entity type: the entity of an item
    is the part of string attribute ``attribute`` before the first ``separator``."""

    attribute: str
    separator: str = "#"

    _attribute = field_validator("attribute")(check_attribute_name)
    _separator = field_validator("separator")(check_separator)


class DynamoTableEtl(dg.Component, dg.Model, dg.Resolvable):
    """One DynamoDB table loaded into a warehouse schema, partitioned by date × scan segment.

    Assets: the source table (external), its inferred data-schemas (cached in S3), the
    segment CSV objects, the per-segment staging tables and the published schema.
    """

    instance: str = Field(
        description="Name of this pipeline instance; part of every asset key (lowercase "
        "letters, digits and _).",
    )
    table_name: str = Field(description="DynamoDB table to extract.")
    total_segments: int = Field(
        default=4,
        ge=1,
        le=DYNAMODB_MAX_SEGMENTS,
        description="Parallel-scan segments (DynamoDB allows 1 to 1,000,000).",
    )
    target_schema: str = Field(
        description="Warehouse schema the table set is published to (lower case: Redshift "
        "folds identifiers).",
    )
    start_date: str = Field(description="First date partition, YYYY-MM-DD.")
    data_bucket: str = Field(description="Bucket for the segment CSV objects.")
    data_prefix: str = Field(default="dynamodb", description="Key prefix for segment CSVs.")
    schema_cache_bucket: str = Field(description="Bucket of the data-schema cache.")
    schema_cache_prefix: str = Field(default="data-schemas")
    create_buckets: bool = Field(
        default=False,
        description="Create data_bucket and schema_cache_bucket when they do not exist "
        "(local stacks and demos; in production they are provisioned and must exist).",
    )
    entity_rule: EntityRuleConfig | None = Field(
        default=None, description="Optional entity-type rule for single-table designs."
    )
    list_handling: Literal["child_tables", "json"] = "child_tables"
    unknown_attributes: Literal["evolve", "fail"] = Field(
        default="evolve",
        description="Attributes missing from the cached data-schema: widen it, or fail naming "
        "the item key and attribute.",
    )
    scan_page_size: int | None = Field(
        default=None, ge=1, description="DynamoDB scan Limit per page."
    )
    schema_refresh_cron: str = Field(default="0 4 * * 1", description="Weekly data-schema run.")
    daily_extract_cron: str | None = Field(
        default=None,
        description="When set, extracts every segment of the latest date on this cron; "
        "staging and publish follow automatically.",
    )

    grants: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Warehouse role → table privileges (SELECT, INSERT, UPDATE, DELETE, "
        "REFERENCES, TRUNCATE) given on every published version inside the swap, with USAGE "
        "on the schema; on Redshift the roles are Redshift roles (GRANT ... TO ROLE).",
    )
    keep_staging_days: int = Field(
        default=7,
        ge=1,
        description="After a publish, staging schemas of dates this many days or more before "
        "the live date are dropped.",
    )
    keep_extract_days: int | None = Field(
        default=None,
        ge=1,
        description="After a publish, S3 extracts of dates this many days or more before the "
        "live date are deleted (default: keep_staging_days).",
    )

    # -- load-time validation (no I/O) -----------------------------------------------------
    # String rules run at load (`dg check defs`): a string field also accepts a template in
    # the YAML schema, so `dg check yaml` can only check numbers and shapes.
    _instance = field_validator("instance", mode="before")(check_instance_name)
    _table = field_validator("table_name", mode="before")(check_table_name)
    _schema = field_validator("target_schema", mode="before")(check_schema_name)
    _buckets = field_validator("data_bucket", "schema_cache_bucket", mode="before")(
        check_bucket_name
    )
    _start = field_validator("start_date")(check_start_date)
    _crons = field_validator("schema_refresh_cron", "daily_extract_cron")(check_cron)
    _grants = field_validator("grants")(check_grants)

    @model_validator(mode="after")
    def _warehouse_names_and_partition_bound(self) -> "DynamoTableEtl":
        check_published_schema(self.target_schema, self.total_segments)
        note = self.partition_bound_note()
        if note is not None:
            warnings.warn(
                f"dynamodb instance {self.instance!r}: {note}", PartitionBoundWarning, stacklevel=2
            )
        return self

    # -- names and partitions --------------------------------------------------------------
    def key(self, system: str, thing: str) -> dg.AssetKey:
        return dg.AssetKey([system, self.instance, thing])

    @property
    def group(self) -> str:
        return f"dynamodb_{self.instance}"

    @property
    def extract_retention_days(self) -> int:
        """Days of S3 extracts kept: ``keep_extract_days``, else ``keep_staging_days``."""
        return self.keep_extract_days or self.keep_staging_days

    def partition_bound_note(self) -> str | None:
        """A warning line when days × segments passes Dagster's practical partition bound
        within the horizon (see :func:`validation.partition_bound_note`), else None."""
        return partition_bound_note(date.fromisoformat(self.start_date), self.total_segments)

    def partitions(self) -> tuple[dg.DailyPartitionsDefinition, dg.MultiPartitionsDefinition]:
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

    def staging_schema(self, day: date, segment: int) -> str:
        """``<target>__staging__<YYYYMMDD>_<segment>``: one pristine schema per segment load."""
        return warehouse_sql.staging_schema_name(
            self.target_schema, f"{day.strftime('%Y%m%d')}_{segment:04d}"
        )

    def daily_extract_condition(self) -> dg.AutomationCondition | None:
        if not self.daily_extract_cron:
            return None
        return (
            dg.AutomationCondition.cron_tick_passed(self.daily_extract_cron)
            & dg.AutomationCondition.in_latest_time_window()
            & ~dg.AutomationCondition.in_progress()
        )

    # -- definitions -----------------------------------------------------------------------
    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        daily, date_segment = self.partitions()
        schemas_key = self.key("dynamodb", "data_schemas")
        csv_key, staging_key = self.key("s3", "segment_csv"), self.key("warehouse", "staging")
        published_key = self.key("warehouse", "published")
        common: dict[str, Any] = {"group_name": self.group, "retry_policy": step_retry_policy()}
        warehouse_kind = warehouse_kind_from_env()

        @dg.asset(
            key=schemas_key,
            deps=[self.key("dynamodb", "table")],
            kinds={"dynamodb", "s3", "json"},
            description=_doc(schemas.infer_data_schemas),
            pool=pools.DYNAMODB_SCAN,
            **common,
        )
        def data_schemas(
            context: AssetExecutionContext, dynamodb: DynamoDBResource, s3: ObjectStoreResource
        ) -> dg.MaterializeResult:
            return schemas.infer_data_schemas(self, context, dynamodb, s3)

        @dg.asset(
            key=csv_key,
            deps=[schemas_key],
            partitions_def=date_segment,
            kinds={"dynamodb", "s3", "csv"},
            description=_doc(extract.extract_segment_csv, self.partition_bound_note()),
            automation_condition=self.daily_extract_condition(),
            pool=pools.DYNAMODB_SCAN,
            **common,
        )
        def segment_csv(
            context: AssetExecutionContext,
            dynamodb: DynamoDBResource,
            s3: ObjectStoreResource,
            warehouse: WarehouseResource,
        ) -> dg.MaterializeResult:
            day, segment = date_and_segment(context.partition_key)
            dialect = warehouse.sql_dialect
            return extract.extract_segment_csv(self, context, dynamodb, s3, day, segment, dialect)

        @dg.asset(
            key=staging_key,
            deps=[csv_key],
            partitions_def=date_segment,
            kinds={"s3", warehouse_kind},
            description=_doc(staging.load_segment_staging, self.partition_bound_note()),
            pool=pools.WAREHOUSE_LOAD,
            automation_condition=dg.AutomationCondition.eager(),
            **common,
        )
        def staging_tables(
            context: AssetExecutionContext, warehouse: WarehouseResource, s3: ObjectStoreResource
        ) -> dg.MaterializeResult:
            day, segment = date_and_segment(context.partition_key)
            return staging.load_segment_staging(self, context, warehouse, s3, day, segment)

        @dg.asset(
            key=published_key,
            partitions_def=daily,
            kinds={warehouse_kind},
            deps=[dg.AssetDep(staging_key, partition_mapping=_BY_DATE)],
            check_specs=checks.publish_check_specs(published_key),
            pool=pools.warehouse_publish(self.target_schema),
            backfill_policy=dg.BackfillPolicy.multi_run(1),
            description=_doc(publish.publish_date),
            automation_condition=dg.AutomationCondition.eager(),
            **common,
        )
        def published(
            context: AssetExecutionContext, warehouse: WarehouseResource, s3: ObjectStoreResource
        ) -> Any:
            day = date.fromisoformat(context.partition_key)
            yield from publish.publish_date(self, context, warehouse, s3, day)

        return dg.Definitions(
            assets=[self.source_spec(), data_schemas, segment_csv, staging_tables, published],
            jobs=[self.rollback_job()],
            schedules=[self.weekly_schema_schedule(schemas_key)],
        )

    def source_spec(self) -> dg.AssetSpec:
        return dg.AssetSpec(
            key=self.key("dynamodb", "table"),
            description=f"The DynamoDB table `{self.table_name}`, read by parallel scan. "
            "External: it is the source of truth, never materialized here.",
            group_name=self.group,
            kinds={"dynamodb"},
        )

    def weekly_schema_schedule(self, schemas_key: dg.AssetKey) -> dg.ScheduleDefinition:
        return dg.ScheduleDefinition(
            name=f"{self.group}_data_schemas_weekly",
            target=dg.AssetSelection.assets(schemas_key),
            cron_schedule=self.schema_refresh_cron,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Weekly data-schema refresh of {self.table_name!r}.",
        )

    def rollback_job(self) -> dg.JobDefinition:
        @dg.op(
            name=f"{self.group}_rollback_publish_op",
            description=_doc(rollback.rollback_publish),
            pool=pools.warehouse_publish(self.target_schema),
        )
        def rollback_publish(context: OpExecutionContext, warehouse: WarehouseResource) -> None:
            rollback.rollback_publish(self, context, warehouse)

        @dg.job(
            name=f"{self.group}_rollback_publish",
            description=f"Restore the previous published version of {self.target_schema} "
            "(run again to roll forward).",
        )
        def rollback_job() -> None:
            rollback_publish()

        return rollback_job


def warehouse_kind_from_env() -> str:
    """The warehouse kind tag shown in the UI (``postgres`` or ``redshift``), from the same
    ``ETL_WAREHOUSE_DIALECT`` the warehouse resource is built from."""
    return warehouse_sql.parse_dialect(os.environ.get("ETL_WAREHOUSE_DIALECT", "postgres")).name


def date_and_segment(partition_key: str | dg.MultiPartitionKey) -> tuple[date, int]:
    """``(date, segment)`` of a date × segment partition key."""
    keys = (
        partition_key.keys_by_dimension
        if isinstance(partition_key, dg.MultiPartitionKey)
        else dict(zip(("date", "segment"), str(partition_key).split("|"), strict=True))
    )
    return date.fromisoformat(keys["date"]), int(keys["segment"])


def _doc(step: Callable[..., Any], *notes: str | None) -> str:
    """An asset's UI description: its step function's docstring (the business meaning), plus
    any warning lines."""
    return "\n\n".join([inspect.cleandoc(step.__doc__ or "")] + [n for n in notes if n])
