"""PostgreSQL tables → daily Parquet partitions on S3, registered in Glue (one component per lake).

Replaces the hand-run lake export (pandas, MSCK REPAIR, an interactive backfill script) with one
daily-partitioned asset per table. Each partition is one table's rows whose date column falls in
the half-open UTC window ``[day 00:00Z, day+1 00:00Z)``, streamed with bounded memory to
``s3://BUCKET/PREFIX/TABLE/year=YYYY/month=MM/day=DD/part-NNNNN.parquet`` and added to Glue as an
explicit partition.

Shape of one instance ``I`` (all names derive from it, so two instances never collide):

* ``["postgres", I, TABLE]``: the source table (external, never materialized here).
* ``["lake", I, TABLE]``: the Parquet partitions, ``DailyPartitionsDefinition(start_date)`` in
  UTC, ``BackfillPolicy.single_run()``: a range backfill is ONE run whose step loops over the
  range's days (:mod:`.export`). Every day gets its own ``AssetMaterialization`` and its own check
  evaluations (:mod:`.checks`), so the UI shows per-partition results for ranges too.
* ``lake_I_daily`` job + schedule (``schedule_cron``, default 02:00 UTC, previous day);
  ``lake_I_dry_run`` job (run tag ``etl_platform/lake_dry_run=true``, checks not selected).
  Failed runs reach SNS through the platform's one alert sensor (``components/alerts.py``).
* Pool ``lake_export/<glue_database>.<table>`` (``components/pools.py``): one export per table
  at a time, so never two writers of one (table, day).

Why per-partition events rather than ``MaterializeResult``: a single-run backfill step has a
partition key *range*; a ``MaterializeResult`` there stamps the same metadata on every partition
of the range and an ``AssetCheckResult`` can be emitted once per check with no partition. The
asset is declared ``can_subset=True`` so that the check outputs are optional and the per-day
events are the results. Materializing only the checks re-validates existing partitions.
"""

import re
from collections.abc import Iterator
from datetime import date
from typing import Any, Literal

import dagster as dg
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from etl_platform.core import lake, s3_layout
from etl_platform.resources import (
    CatalogResource,
    GlueSettings,
    ObjectStoreResource,
    SourcePostgresResource,
)
from etl_platform.resources.source_database import SourceDatabase

from .. import pools
from ..config_rules import check_bucket_name, check_cron
from ..run_policy import step_failure_policy, step_retry_policy
from . import export, specs
from .export import LakeResources

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class LakeTable(dg.Model):
    """One source table of a lake instance."""

    name: str = Field(
        description="PostgreSQL table, optionally schema-qualified (`orders`, `sales.orders`)."
    )
    date_column: str = Field(
        description="timestamptz, timestamp (read as UTC) or date column that assigns a row to "
        "its day."
    )
    columns: list[str] | None = Field(
        default=None, description="Columns to export, in this order (default: all)."
    )
    primary_key: list[str] | None = Field(
        default=None,
        description="Key columns (documentation: Glue table parameter and column constraints).",
    )
    as_text: list[str] = Field(
        default_factory=list,
        description="Columns exported as their PostgreSQL text form (e.g. numeric(50,2)).",
    )
    lake_name: str | None = Field(
        default=None,
        description="Name in S3, Glue and the asset key (default: the table name without "
        "schema, lowercased).",
    )

    @property
    def lake_table(self) -> str:
        return self.lake_name or self.name.rsplit(".", 1)[-1].lower()


class LakeExport(dg.Component, dg.Model, dg.Resolvable):
    """PostgreSQL tables exported day by day to a Parquet lake on S3, registered in Glue.

    Each table is a daily-partitioned asset: one partition is one UTC day of rows by the table's
    own date column. Backfill any range (one run per range); the schedule exports yesterday at
    02:00 UTC; checks compare every exported day with the source.
    """

    instance: str = Field(description="Name of this lake instance; part of every key and name.")
    source_dsn_env: str = Field(
        default="ETL_SOURCE_DSN",
        description="Environment variable holding the source PostgreSQL DSN (read at run time "
        "by the `source_postgres` resource, never logged).",
    )
    bucket: str = Field(description="S3 bucket of the lake.")
    prefix: str = Field(default="lake", description="Key prefix of the lake's tables.")
    glue_database: str = Field(description="Glue database the tables are registered in.")
    compression: Literal["zstd", "snappy"] = Field(default="zstd")
    start_date: str = Field(description="First daily partition, YYYY-MM-DD (UTC).")
    tables: list[LakeTable] = Field(min_length=1)
    min_fraction_of_median: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Warn when a day has fewer rows than this fraction of the median of the "
        "7 days before it.",
    )
    schedule_cron: str = Field(
        default="0 2 * * *",
        description="When the daily job runs (UTC); it exports the last complete day.",
    )
    part_mb: int = Field(default=128, ge=1, description="Target size of one Parquet part.")
    statement_timeout_seconds: int | None = Field(
        default=3600,
        ge=1,
        description="Source statement timeout for one day's query and counts (None: no "
        "limit); a stuck source query fails the run instead of hanging it.",
    )

    _bucket = field_validator("bucket")(check_bucket_name)
    _cron = field_validator("schedule_cron")(check_cron)

    @field_validator("start_date")
    @classmethod
    def _iso_date(cls, v: str) -> str:
        try:
            date.fromisoformat(v)
        except ValueError as exc:
            raise ValueError(f"start_date {v!r} is not YYYY-MM-DD") from exc
        return v

    @model_validator(mode="after")
    def _names(self) -> "LakeExport":
        if not _NAME.match(self.instance):
            raise ValueError(f"instance {self.instance!r}: use lowercase letters, digits and _")
        seen: set[str] = set()
        for t in self.tables:
            name = t.lake_table
            if not _NAME.match(name):
                raise ValueError(
                    f"lake instance {self.instance!r}: table {t.name!r} gives lake name "
                    f"{name!r}; set lake_name to lowercase letters, digits and _"
                )
            if name in seen:
                raise ValueError(
                    f"lake instance {self.instance!r}: two tables named {name!r}; set lake_name"
                )
            seen.add(name)
            if t.columns is not None:
                missing = [c for c in (t.primary_key or []) if c not in t.columns]
                if missing:
                    raise ValueError(f"{t.name}: primary key columns {missing} are not exported")
        return self

    # -- names -----------------------------------------------------------------------------
    @property
    def group(self) -> str:
        return f"lake_{self.instance}"

    def source_key(self, table: LakeTable) -> dg.AssetKey:
        return dg.AssetKey(["postgres", self.instance, table.lake_table])

    def lake_key(self, table: LakeTable) -> dg.AssetKey:
        return dg.AssetKey(["lake", self.instance, table.lake_table])

    def op_name(self, table: LakeTable) -> str:
        return f"lake_{self.instance}_{table.lake_table}"

    @property
    def daily_job_name(self) -> str:
        return f"lake_{self.instance}_daily"

    @property
    def dry_run_job_name(self) -> str:
        return f"lake_{self.instance}_dry_run"

    def partitions(self) -> dg.DailyPartitionsDefinition:
        return dg.DailyPartitionsDefinition(start_date=self.start_date, timezone="UTC")

    def table_location(self, table: LakeTable) -> str:
        return s3_layout.lake_table_uri(self.bucket, self.prefix, table.lake_table)

    def partition_location(self, table: LakeTable, day: date) -> str:
        return s3_layout.lake_partition_uri(self.bucket, self.prefix, table.lake_table, day)

    @property
    def statement_timeout_ms(self) -> int | None:
        s = self.statement_timeout_seconds
        return None if s is None else s * 1000

    def source_database(self, source: SourcePostgresResource) -> SourceDatabase:
        """This instance's source database, with its statement timeout."""
        return source.database(self.source_dsn_env, statement_timeout_ms=self.statement_timeout_ms)

    def glue_settings(self, table: LakeTable) -> GlueSettings:
        """The settings holding the table's Glue database and table names, for errors."""
        name = "lake_name" if table.lake_name else "name"
        return GlueSettings("glue_database", f"tables[{self.tables.index(table)}].{name}")

    def glue_table_input(self, table: LakeTable, schema: pa.Schema) -> dict[str, Any]:
        table_input = lake.glue_table_input(
            table.lake_table,
            schema,
            self.table_location(table),
            compression=self.compression,
            description=f"{table.name} by UTC day of {table.date_column} "
            f"(etl_platform lake {self.instance})",
        )
        if table.primary_key:
            table_input["Parameters"]["primary_key"] = ",".join(table.primary_key)
        table_input["Parameters"]["source_date_column"] = table.date_column
        return table_input

    # -- definitions -----------------------------------------------------------------------
    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        daily = self.partitions()
        lake_keys = [self.lake_key(t) for t in self.tables]
        daily_job = dg.define_asset_job(
            name=self.daily_job_name,
            selection=dg.AssetSelection.assets(*lake_keys),
            partitions_def=daily,
            description=f"Export one UTC day of every table of lake {self.instance!r}, with "
            "its checks.",
        )
        # The dry-run job is marked by a run tag, not by a run config preset: partitioned jobs
        # apply preset config only where a partition's config is resolved (UI launchpad,
        # schedules), while `dg launch --job` passes the CLI's (empty) config as is. Job run
        # tags reach every run of the job, however it is launched.
        dry_run_job = dg.define_asset_job(
            name=self.dry_run_job_name,
            selection=dg.AssetSelection.assets(*lake_keys).without_checks(),
            partitions_def=daily,
            run_tags={export.DRY_RUN_TAG: "true"},
            description=f"Dry run of lake {self.instance!r}: logs and observes the days and "
            "source row counts it would export; writes nothing (no S3, no Glue).",
        )
        return dg.Definitions(
            assets=[
                *(specs.source_spec(self, t) for t in self.tables),
                *(self.lake_asset(t, daily) for t in self.tables),
            ],
            jobs=[daily_job, dry_run_job],
            schedules=[specs.daily_schedule(self, daily_job)],
        )

    def lake_asset(
        self, table: LakeTable, daily: dg.DailyPartitionsDefinition
    ) -> dg.AssetsDefinition:
        component = self

        @dg.multi_asset(
            name=self.op_name(table),
            specs=[specs.lake_spec(self, table, daily)],
            check_specs=specs.check_specs(self, table, daily),
            can_subset=True,
            backfill_policy=dg.BackfillPolicy.single_run(),
            retry_policy=step_retry_policy(),
            pool=pools.lake_export(self.glue_database, table.lake_table),
        )
        def _lake(
            context: dg.AssetExecutionContext,
            config: export.LakeExportRunConfig,
            s3: ObjectStoreResource,
            glue: CatalogResource,
            source_postgres: SourcePostgresResource,
        ) -> Iterator[dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckEvaluation]:
            step = step_failure_policy(f"lake {component.instance}: {table.name}")(export.run_table)
            resources = LakeResources(s3, glue, source_postgres)
            yield from step(component, table, context, config, resources)

        return _lake
