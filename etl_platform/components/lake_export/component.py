"""PostgreSQL tables → daily Parquet partitions on S3, registered in Glue (one component per lake).

Replaces the hand-run lake export (pandas, MSCK REPAIR, an interactive backfill script) with one
daily-partitioned asset per table. Each partition is one table's rows whose date column falls in
the half-open UTC window ``[day 00:00Z, day+1 00:00Z)``, streamed with bounded memory by
:mod:`etl_platform.core.lake_export` to
``s3://BUCKET/PREFIX/TABLE/year=YYYY/month=MM/day=DD/part-NNNNN.parquet`` and added to Glue as an
explicit partition.

Shape of one instance ``I`` (all names derive from it, so two instances never collide):

* ``["postgres", I, TABLE]``: the source table (external, never materialized here).
* ``["lake", I, TABLE]``: the Parquet partitions, ``DailyPartitionsDefinition(start_date)`` in
  UTC, ``BackfillPolicy.single_run()``: a range backfill is ONE run whose step loops over the
  range's days. Every day gets its own ``AssetMaterialization`` (its own rows, files, bytes,
  URIs) and its own check evaluations, so the UI shows per-partition results for ranges too.
* Checks per partition (``AssetCheckSpec(partitions_def=...)``, one evaluation per day even in a
  range run): ``source_count_matches`` (the source's count for the window equals the Parquet
  rows), ``parquet_reads_back`` (footers open, rows add up, schema as planned from the catalog),
  ``glue_partition_registered``; all three blocking. ``count_vs_trailing_median`` is a
  non-blocking WARN when a day has fewer rows than ``min_fraction_of_median`` x the median of
  the source counts of the 7 days before it.
* ``lake_I_daily`` job + schedule (``schedule_cron``, default 02:00 UTC, previous day);
  ``lake_I_dry_run`` job (run tag ``etl_platform/lake_dry_run=true``, checks not selected); any
  run is a dry run with run config ``dry_run: true`` or that tag;
  ``lake_I_run_failure_alert`` sensor publishing failures to ``alert_topic_arn`` (when set).

Why per-partition events rather than ``MaterializeResult``: a single-run backfill step has a
partition key *range*; a ``MaterializeResult`` there stamps the same metadata on every partition
of the range and an ``AssetCheckResult`` can be emitted once per check with no partition. Dagster
1.13 stores check executions per partition (the planned event of a range run records one row per
partition) and ``AssetCheckEvaluation`` carries a ``partition``; the asset is declared
``can_subset=True`` so that the check outputs are optional and the per-day events are the
results. Materializing only the checks (the asset deselected) re-validates existing partitions
without exporting.
"""

import os
import re
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlparse

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from pyarrow import fs as pafs
from pydantic import Field, field_validator, model_validator

from etl_platform.core import lake_export as le
from etl_platform.resources import CatalogResource, NotificationResource, ObjectStoreResource

from .run_policy import step_retry_policy, terminal_errors_fail_fast

COUNT_CHECK = "source_count_matches"
READ_BACK_CHECK = "parquet_reads_back"
GLUE_CHECK = "glue_partition_registered"
MEDIAN_CHECK = "count_vs_trailing_median"
TRAILING_DAYS = 7
MIN_HISTORY_DAYS = 3
PROGRESS_LOG_SECONDS = 30.0
DRY_RUN_TAG = "etl_platform/lake_dry_run"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_ERROR_CHARS = 4000


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


class LakeExportRunConfig(dg.Config):
    """Run config of a lake asset."""

    dry_run: bool = Field(
        default=False,
        description="Report the days and source row counts that would be exported; write "
        "nothing (no S3 object, no Glue call).",
    )


@dataclass
class _PartStats:
    """Parquet footer figures of the parts of one export, read from the local spool files."""

    uncompressed: int = 0
    compressed: int = 0
    row_groups: int = 0

    @property
    def ratio(self) -> float | None:
        return round(self.uncompressed / self.compressed, 3) if self.compressed else None


@dataclass
class _MeasuringSink:
    """Uploads each part through ``upload`` after reading its local footer."""

    inner: Callable[[le.FinishedPart], str]
    stats: _PartStats = field(default_factory=_PartStats)

    def __call__(self, part: le.FinishedPart) -> str:
        md = pq.read_metadata(part.path)
        for i in range(md.num_row_groups):
            rg = md.row_group(i)
            for j in range(rg.num_columns):
                col = rg.column(j)
                self.stats.uncompressed += col.total_uncompressed_size
                self.stats.compressed += col.total_compressed_size
        self.stats.row_groups += md.num_row_groups
        return self.inner(part)


@dataclass
class _DayCheck:
    name: str
    passed: bool
    description: str
    metadata: dict[str, Any]
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR


def arrow_s3_filesystem(s3: ObjectStoreResource) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem that reaches the same endpoint and region as ``s3``'s client
    (``AWS_ENDPOINT_URL`` on the local stack; AWS's own endpoints otherwise). Credentials come
    from the resource when it names them, else from the AWS SDK default chain (which refreshes
    role credentials)."""
    client = s3.client()
    kwargs: dict[str, Any] = {"region": client.meta.region_name or "us-east-1"}
    endpoint = (
        s3.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    if s3.aws_access_key_id and s3.aws_secret_access_key:
        kwargs.update(
            access_key=s3.aws_access_key_id,
            secret_key=s3.aws_secret_access_key,
            session_token=s3.aws_session_token,
        )
    elif s3.profile_name:
        import boto3

        creds = boto3.session.Session(profile_name=s3.profile_name).get_credentials()
        if creds is not None:
            frozen = creds.get_frozen_credentials()
            kwargs.update(
                access_key=frozen.access_key,
                secret_key=frozen.secret_key,
                session_token=frozen.token,
            )
    return pafs.S3FileSystem(**kwargs)


def column_schema(schema: pa.Schema, primary_key: Sequence[str] = ()) -> dg.TableSchema:
    """``dagster/column_schema`` of a lake table: Arrow type, PostgreSQL type as description."""
    columns = []
    for f in schema:
        pg_type = (f.metadata or {}).get(le.PG_TYPE_METADATA_KEY)
        columns.append(
            dg.TableColumn(
                name=f.name,
                type=str(f.type),
                description=pg_type.decode() if pg_type else None,
                constraints=dg.TableColumnConstraints(
                    nullable=f.nullable, unique=list(primary_key) == [f.name]
                ),
            )
        )
    return dg.TableSchema(columns=columns)


class LakeExport(dg.Component, dg.Model, dg.Resolvable):
    """PostgreSQL tables exported day by day to a Parquet lake on S3, registered in Glue.

    Each table is a daily-partitioned asset: one partition is one UTC day of rows by the table's
    own date column. Backfill any range (one run per range); the schedule exports yesterday at
    02:00 UTC; checks compare every exported day with the source.
    """

    instance: str = Field(description="Name of this lake instance; part of every key and name.")
    source_dsn_env: str = Field(
        default="ETL_SOURCE_DSN",
        description="Environment variable holding the source PostgreSQL DSN (read at run time, "
        "never logged).",
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
    alert_topic_arn: str | None = Field(
        default=None, description="SNS topic for run failure alerts (no alert sensor if unset)."
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

    @property
    def alert_sensor_name(self) -> str:
        return f"lake_{self.instance}_run_failure_alert"

    def partitions(self) -> dg.DailyPartitionsDefinition:
        return dg.DailyPartitionsDefinition(start_date=self.start_date, timezone="UTC")

    def table_location(self, table: LakeTable) -> str:
        return le.s3_uri(self.bucket, le.table_location(self.prefix, table.lake_table))

    def source_dsn(self) -> str:
        value = dg.EnvVar(self.source_dsn_env).get_value()
        if not value:
            raise dg.Failure(
                description=f"lake instance {self.instance!r}: environment variable "
                f"{self.source_dsn_env} (the source DSN) is not set",
                allow_retries=False,
            )
        return value

    @property
    def statement_timeout_ms(self) -> int | None:
        s = self.statement_timeout_seconds
        return None if s is None else s * 1000

    # -- definitions -----------------------------------------------------------------------
    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        daily = self.partitions()
        sources = [self.source_spec(t) for t in self.tables]
        lakes = [self.lake_asset(t, daily) for t in self.tables]
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
            run_tags={DRY_RUN_TAG: "true"},
            description=f"Dry run of lake {self.instance!r}: logs and observes the days and "
            "source row counts it would export; writes nothing (no S3, no Glue).",
        )
        schedule = self.daily_schedule(daily_job)
        sensors = [self.failure_sensor()] if self.alert_topic_arn else []
        return dg.Definitions(
            assets=[*sources, *lakes],
            jobs=[daily_job, dry_run_job],
            schedules=[schedule],
            sensors=sensors,
        )

    def daily_schedule(self, job: Any) -> dg.ScheduleDefinition:
        """Runs the daily job on ``schedule_cron`` (UTC) for the last complete UTC day as of the
        tick: at 02:00 on D that is D-1. (``build_schedule_from_partitioned_job`` takes no cron
        for time-partitioned jobs, only hour/minute, so the partition is computed here.)"""

        @dg.schedule(
            name=f"lake_{self.instance}_daily_schedule",
            cron_schedule=self.schedule_cron,
            job=job,
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Exports the previous UTC day of lake {self.instance!r}.",
        )
        def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
            tick = context.scheduled_execution_time or datetime.now(UTC)
            day = tick.astimezone(UTC).date() - timedelta(days=1)
            if day < date.fromisoformat(self.start_date):
                return dg.SkipReason(f"no complete day since start_date {self.start_date}")
            return dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())

        return _daily

    def source_spec(self, table: LakeTable) -> dg.AssetSpec:
        return dg.AssetSpec(
            key=self.source_key(table),
            description=f"The PostgreSQL table `{table.name}` (the source of truth, read by the "
            f"`{self.source_dsn_env}` connection). A row belongs to the UTC day of its "
            f"`{table.date_column}`. External: never materialized here.",
            group_name=self.group,
            kinds={"postgres"},
            metadata={"table": table.name, "date_column": table.date_column},
        )

    def check_specs(
        self, table: LakeTable, daily: dg.DailyPartitionsDefinition
    ) -> list[dg.AssetCheckSpec]:
        key = self.lake_key(table)
        # partitions_def on a check spec is a preview feature in 1.13; it is what makes a range
        # run store one result per day, so it is used deliberately and its warning silenced.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return self._check_specs(table, key, daily)

    def _check_specs(
        self, table: LakeTable, key: dg.AssetKey, daily: dg.DailyPartitionsDefinition
    ) -> list[dg.AssetCheckSpec]:
        return [
            dg.AssetCheckSpec(
                COUNT_CHECK,
                asset=key,
                blocking=True,
                partitions_def=daily,
                description=f"The source's count of `{table.name}` rows in the day's UTC window "
                "equals the rows in the day's Parquet files (read from their footers).",
            ),
            dg.AssetCheckSpec(
                READ_BACK_CHECK,
                asset=key,
                blocking=True,
                partitions_def=daily,
                description="Every Parquet part of the day opens, the parts' rows add up, and "
                "each part's schema is the one planned from the source catalog.",
            ),
            dg.AssetCheckSpec(
                GLUE_CHECK,
                asset=key,
                blocking=True,
                partitions_def=daily,
                description=f"Glue `{self.glue_database}.{table.lake_table}` has the day's "
                "partition at the day's S3 prefix, with the table's columns.",
            ),
            dg.AssetCheckSpec(
                MEDIAN_CHECK,
                asset=key,
                blocking=False,
                partitions_def=daily,
                description=f"Warns (does not fail) when the day has fewer than "
                f"{self.min_fraction_of_median:g} x the median source count of the "
                f"{TRAILING_DAYS} days before it (needs {MIN_HISTORY_DAYS} days of history).",
            ),
        ]

    def lake_asset(
        self, table: LakeTable, daily: dg.DailyPartitionsDefinition
    ) -> dg.AssetsDefinition:
        component = self
        key = self.lake_key(table)
        location = self.table_location(table)
        spec = dg.AssetSpec(
            key=key,
            deps=[self.source_key(table)],
            description=(
                f"`{table.name}` as a Parquet lake table: one partition per UTC day of "
                f"`{table.date_column}` at `{location}year=YYYY/month=MM/day=DD/`, "
                f"{self.compression}-compressed, registered in Glue as "
                f"`{self.glue_database}.{table.lake_table}` (query it with Athena, Spark, "
                "polars). Re-running a day replaces its files exactly. Checked per day against "
                "the source's row count."
            ),
            group_name=self.group,
            kinds={"postgres", "s3", "parquet"},
            partitions_def=daily,
            skippable=True,
            metadata={
                "dagster/table_name": f"{self.glue_database}.{table.lake_table}",
                "location": dg.MetadataValue.path(location),
                "source_table": table.name,
                "date_column": table.date_column,
            },
        )

        @dg.multi_asset(
            name=self.op_name(table),
            specs=[spec],
            check_specs=self.check_specs(table, daily),
            can_subset=True,
            backfill_policy=dg.BackfillPolicy.single_run(),
            retry_policy=step_retry_policy(),
        )
        def _lake(
            context: dg.AssetExecutionContext,
            config: LakeExportRunConfig,
            s3: ObjectStoreResource,
            glue: CatalogResource,
        ) -> Iterator[dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckEvaluation]:
            yield from component.run_table(context, config, table, s3, glue)

        return _lake

    # -- the run ---------------------------------------------------------------------------
    def run_table(
        self,
        context: dg.AssetExecutionContext,
        config: LakeExportRunConfig,
        table: LakeTable,
        s3: ObjectStoreResource,
        glue: CatalogResource,
    ) -> Iterator[dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckEvaluation]:
        key = self.lake_key(table)
        days = [date.fromisoformat(k) for k in context.partition_keys]
        uri = self.source_dsn()
        counts: dict[date, int] = {}

        def source_count(day: date) -> int:
            if day not in counts:
                with terminal_errors_fail_fast(f"counting {table.name} rows of {day}"):
                    counts[day] = le.count_rows(
                        uri,
                        table.name,
                        table.date_column,
                        le.day_window(day),
                        statement_timeout_ms=self.statement_timeout_ms,
                    )
            return counts[day]

        if config.dry_run or context.run.tags.get(DRY_RUN_TAG, "").lower() in ("true", "1"):
            yield from self.dry_run(context, table, days, source_count)
            return

        exporting = key in context.selected_asset_keys
        checks = {ck.name for ck in context.selected_asset_check_keys if ck.asset_key == key}
        with terminal_errors_fail_fast(f"planning the export of {table.name}"):
            expected = le.export_schema(
                uri,
                table.name,
                table.date_column,
                columns=table.columns,
                as_text=table.as_text,
            )
        if exporting:
            with terminal_errors_fail_fast(f"registering Glue table {table.lake_table}"):
                glue.ensure_database(self.glue_database)
                glue.ensure_table(self.glue_database, self.glue_table_input(table, expected))
        filesystem = arrow_s3_filesystem(s3) if checks & {COUNT_CHECK, READ_BACK_CHECK} else None
        context.log.info(
            f"{table.name}: {'exporting' if exporting else 'checking'} {len(days)} day(s) "
            f"{days[0]}..{days[-1]} to {self.table_location(table)}"
        )
        total_rows = 0
        started = time.monotonic()
        for day in days:
            pk = day.isoformat()
            written_rows: int | None = None
            if exporting and context.retry_number > 0 and self._done_in_this_run(context, key, pk):
                # a retry of this step: the day was exported by an earlier attempt; its checks
                # are evaluated again (the attempt may have failed between export and checks)
                context.log.info(f"{table.name} {day}: exported by an earlier attempt")
                keys = self.existing_parts(s3, table, day)
            elif exporting:
                metadata, keys, written_rows = self.export_one_day(
                    context, table, day, uri, expected, s3, glue
                )
                total_rows += written_rows
                yield dg.AssetMaterialization(asset_key=key, partition=pk, metadata=metadata)
            else:
                keys = self.existing_parts(s3, table, day)
            if not checks:
                continue
            target = self._latest_materialization(context, key, pk)
            results = self.day_checks(
                table, day, keys, written_rows, expected, filesystem, glue, source_count, checks
            )
            for r in results:
                yield dg.AssetCheckEvaluation(
                    asset_key=key,
                    check_name=r.name,
                    passed=r.passed,
                    metadata=r.metadata,
                    severity=r.severity,
                    description=r.description,
                    blocking=r.name != MEDIAN_CHECK,
                    partition=pk,
                    target_materialization_data=target,
                )
                if not r.passed:
                    log = (
                        context.log.warning
                        if r.severity == dg.AssetCheckSeverity.WARN
                        else context.log.error
                    )
                    log(f"{table.name} {day}: check {r.name} failed: {r.description}")
        if exporting:
            seconds = time.monotonic() - started
            context.log.info(
                f"{table.name}: {len(days)} day(s), {total_rows} rows in {seconds:.1f}s "
                f"({total_rows / max(seconds, 1e-9):.0f} rows/s)"
            )

    def dry_run(
        self,
        context: dg.AssetExecutionContext,
        table: LakeTable,
        days: Sequence[date],
        source_count: Callable[[date], int],
    ) -> Iterator[dg.AssetObservation]:
        """Counts only: no S3 or Glue call. Each day is reported as an observation (it does
        not mark the partition materialized) and in the run log."""
        key = self.lake_key(table)
        total = 0
        for day in days:
            n = source_count(day)
            total += n
            target = le.partition_location(self.bucket, self.prefix, table.lake_table, day)
            context.log.info(f"[dry run] {table.name} {day}: {n} rows would go to {target}")
            yield dg.AssetObservation(
                asset_key=key,
                partition=day.isoformat(),
                metadata={
                    "dry_run": True,
                    "source_rows": n,
                    "would_write_to": dg.MetadataValue.path(target),
                },
            )
        context.log.info(
            f"[dry run] {table.name}: {len(days)} day(s) {days[0]}..{days[-1]}, {total} rows; "
            "nothing written"
        )

    def glue_table_input(self, table: LakeTable, schema: pa.Schema) -> dict[str, Any]:
        table_input = le.glue_table_input(
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

    def export_one_day(
        self,
        context: dg.AssetExecutionContext,
        table: LakeTable,
        day: date,
        uri: str,
        expected: pa.Schema,
        s3: ObjectStoreResource,
        glue: CatalogResource,
    ) -> tuple[dict[str, Any], list[str], int]:
        """Export, upload, delete stale parts, add the Glue partition; returns the
        materialization metadata, the day's part keys and the rows written."""
        prefix = le.partition_prefix(self.prefix, table.lake_table, day)

        def upload(part: le.FinishedPart) -> str:
            key = prefix + part.name
            with open(part.path, "rb") as body:
                s3.upload_stream(body, self.bucket, key, "application/vnd.apache.parquet")
            part.path.unlink(missing_ok=True)
            return key

        sink = _MeasuringSink(upload)
        started = time.monotonic()
        last_log = [started]

        def progress(rows: int) -> None:
            now = time.monotonic()
            if now - last_log[0] >= PROGRESS_LOG_SECONDS:
                last_log[0] = now
                context.log.info(
                    f"{table.name} {day}: {rows} rows so far "
                    f"({rows / max(now - started, 1e-9):.0f} rows/s)"
                )

        with terminal_errors_fail_fast(f"exporting {table.name} for {day}"):
            result = le.export_day(
                uri,
                table.name,
                table.date_column,
                le.day_window(day),
                sink=sink,
                columns=table.columns,
                as_text=table.as_text,
                compression=self.compression,
                part_bytes=self.part_mb * 1024 * 1024,
                progress=progress,
                statement_timeout_ms=self.statement_timeout_ms,
            )
        with terminal_errors_fail_fast(f"publishing {table.name} for {day}"):
            listed = [o["Key"] for o in s3.list_objects(self.bucket, prefix)]
            stale = le.stale_part_keys(listed, result.locations)
            if stale:
                s3.delete_keys(self.bucket, stale)
                context.log.info(f"{table.name} {day}: deleted {len(stale)} stale part(s)")
            if not result.schema.equals(expected, check_metadata=False):
                # the table changed between planning and export: the Glue table follows it
                glue.ensure_table(self.glue_database, self.glue_table_input(table, result.schema))
            glue.ensure_partition(
                self.glue_database,
                table.lake_table,
                le.glue_partition_input(
                    self.table_location(table), result.schema, day, compression=self.compression
                ),
            )
        seconds = time.monotonic() - started
        location = le.partition_location(self.bucket, self.prefix, table.lake_table, day)
        y, m, d = le.partition_values(day)
        metadata: dict[str, Any] = {
            "dagster/row_count": result.rows,
            "dagster/column_schema": column_schema(result.schema, table.primary_key or ()),
            "dagster/table_name": f"{self.glue_database}.{table.lake_table}",
            "rows": result.rows,
            "files": len(result.parts),
            "bytes": result.bytes,
            "row_groups": sink.stats.row_groups,
            "compression": self.compression,
            "compression_ratio": sink.stats.ratio,
            "duration_s": round(seconds, 3),
            "export_s": round(result.duration_s, 3),
            "rows_per_second": round(result.rows / max(seconds, 1e-9), 1),
            "location": dg.MetadataValue.path(location),
            "s3_uris": dg.MetadataValue.json([le.s3_uri(self.bucket, k) for k in result.locations]),
            "stale_parts_deleted": len(stale),
            "glue_partition": f"{self.glue_database}.{table.lake_table} year={y}/month={m}/day={d}",
            "window_utc": f"[{day.isoformat()}T00:00Z, "
            f"{(day + timedelta(days=1)).isoformat()}T00:00Z)",
        }
        context.log.info(
            f"{table.name} {day}: {result.rows} rows, {len(result.parts)} file(s), "
            f"{result.bytes} bytes in {seconds:.2f}s"
        )
        return metadata, list(result.locations), result.rows

    def existing_parts(self, s3: ObjectStoreResource, table: LakeTable, day: date) -> list[str]:
        prefix = le.partition_prefix(self.prefix, table.lake_table, day)
        with terminal_errors_fail_fast(f"listing {le.s3_uri(self.bucket, prefix)}"):
            listed = [o["Key"] for o in s3.list_objects(self.bucket, prefix)]
        return le.stale_part_keys(listed, [])  # every part-NNNNN.parquet under the prefix

    # -- checks ----------------------------------------------------------------------------
    def day_checks(
        self,
        table: LakeTable,
        day: date,
        keys: Sequence[str],
        written_rows: int | None,
        expected: pa.Schema,
        filesystem: pafs.S3FileSystem | None,
        glue: CatalogResource,
        source_count: Callable[[date], int],
        selected: set[str],
    ) -> list[_DayCheck]:
        out: list[_DayCheck] = []
        uris = [le.s3_uri(self.bucket, k) for k in keys]
        parquet_rows: int | None = None
        read_back_problem: str | None = None
        if selected & {COUNT_CHECK, READ_BACK_CHECK}:
            n_source = source_count(day)
            # What the export wrote is what must be on S3; when only checking, the source's
            # count is the expectation.
            want = written_rows if written_rows is not None else n_source
            try:
                report = le.read_back_check(
                    [f"{self.bucket}/{k}" for k in keys], want, expected, filesystem=filesystem
                )
                parquet_rows = report.rows
            except le.ReadBackError as exc:
                read_back_problem = str(exc)
            if READ_BACK_CHECK in selected:
                out.append(
                    _DayCheck(
                        READ_BACK_CHECK,
                        read_back_problem is None,
                        read_back_problem
                        or f"{len(keys)} part(s), {parquet_rows} rows, schema as planned",
                        {
                            "parts": len(keys),
                            "expected_rows": want,
                            "parquet_rows": parquet_rows,
                            "s3_uris": dg.MetadataValue.json(uris),
                        },
                    )
                )
            if COUNT_CHECK in selected:
                ok = parquet_rows is not None and parquet_rows == n_source
                out.append(
                    _DayCheck(
                        COUNT_CHECK,
                        ok,
                        f"source {n_source} rows, Parquet {parquet_rows} rows"
                        if parquet_rows is not None
                        else f"source {n_source} rows, Parquet unreadable: {read_back_problem}",
                        {"source_rows": n_source, "parquet_rows": parquet_rows},
                    )
                )
        if GLUE_CHECK in selected:
            out.append(self.glue_check(table, day, expected, glue))
        if MEDIAN_CHECK in selected:
            out.append(self.median_check(day, source_count))
        return out

    def glue_check(
        self, table: LakeTable, day: date, expected: pa.Schema, glue: CatalogResource
    ) -> _DayCheck:
        values = list(le.partition_values(day))
        want = le.partition_location(self.bucket, self.prefix, table.lake_table, day)
        with terminal_errors_fail_fast(f"reading Glue partition {table.lake_table} {values}"):
            # None also when the database or table does not exist
            partition = glue.get_partition(self.glue_database, table.lake_table, values)
        meta: dict[str, Any] = {"values": "/".join(values), "expected_location": want}
        if partition is None:
            return _DayCheck(GLUE_CHECK, False, f"no Glue partition {values}", meta)
        sd = partition.get("StorageDescriptor", {})
        got = sd.get("Location", "")
        meta["location"] = got
        problems = []
        if got.rstrip("/") != want.rstrip("/"):
            problems.append(f"location {got!r} != {want!r}")
        got_cols = [c["Name"] for c in sd.get("Columns", [])]
        want_cols = [c["Name"] for c in le.glue_columns(expected)]
        if got_cols != want_cols:
            problems.append(f"columns {got_cols} != {want_cols}")
        return _DayCheck(
            GLUE_CHECK,
            not problems,
            "; ".join(problems) or f"partition {'/'.join(values)} registered at {got}",
            meta,
        )

    def median_check(self, day: date, source_count: Callable[[date], int]) -> _DayCheck:
        start = date.fromisoformat(self.start_date)
        history = [
            day - timedelta(days=i)
            for i in range(1, TRAILING_DAYS + 1)
            if day - timedelta(days=i) >= start
        ]
        n = source_count(day)
        if len(history) < MIN_HISTORY_DAYS:
            return _DayCheck(
                MEDIAN_CHECK,
                True,
                f"{len(history)} day(s) of history (< {MIN_HISTORY_DAYS}): not compared",
                {"source_rows": n, "history_days": len(history)},
                dg.AssetCheckSeverity.WARN,
            )
        past = {d.isoformat(): source_count(d) for d in history}
        median = float(statistics.median(past.values()))
        threshold = self.min_fraction_of_median * median
        ok = n >= threshold
        return _DayCheck(
            MEDIAN_CHECK,
            ok,
            f"{n} rows vs trailing median {median:g} (threshold {threshold:g})",
            {
                "source_rows": n,
                "trailing_median": median,
                "threshold": threshold,
                "trailing_counts": dg.MetadataValue.json(past),
            },
            dg.AssetCheckSeverity.WARN,
        )

    @staticmethod
    def _latest_materialization(
        context: dg.AssetExecutionContext, key: dg.AssetKey, partition: str
    ) -> AssetCheckEvaluationTargetMaterializationData | None:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        if not records:
            return None
        r = records[0]
        return AssetCheckEvaluationTargetMaterializationData(
            storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp
        )

    @staticmethod
    def _done_in_this_run(
        context: dg.AssetExecutionContext, key: dg.AssetKey, partition: str
    ) -> bool:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        return bool(records) and records[0].run_id == context.run.run_id

    # -- alerts ----------------------------------------------------------------------------
    def run_lake_keys(
        self, run: dg.DagsterRun, instance: dg.DagsterInstance | None = None
    ) -> list[dg.AssetKey]:
        """This instance's lake assets that a run targeted (empty: not our run). From the run's
        asset (check) selection, the job name, or else the assets the run planned."""
        ours = [self.lake_key(t) for t in self.tables]
        selected = set(run.asset_selection or ())
        selected |= {ck.asset_key for ck in run.asset_check_selection or ()}
        if run.job_name in (self.daily_job_name, self.dry_run_job_name) and not selected:
            selected = set(ours)
        if not selected and instance is not None:  # e.g. an ad-hoc asset job
            planned = instance.get_records_for_run(
                run.run_id,
                of_type={
                    dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                    dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
                },
            ).records
            for record in planned:
                event = record.event_log_entry.dagster_event
                if event is None:
                    continue
                if event.asset_key is not None:
                    selected.add(event.asset_key)
                elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                    selected.add(event.asset_check_planned_data.asset_key)
        return [k for k in ours if k in selected]

    def failure_message(self, context: dg.RunFailureSensorContext) -> tuple[str, str] | None:
        run = context.dagster_run
        keys = self.run_lake_keys(run, context.instance)
        if not keys:
            return None
        tags = run.tags
        if "dagster/partition" in tags:
            partition = tags["dagster/partition"]
        elif "dagster/asset_partition_range_start" in tags:
            partition = (
                f"{tags['dagster/asset_partition_range_start']}..."
                f"{tags.get('dagster/asset_partition_range_end', '')}"
            )
        else:
            partition = "(none)"
        errors = []
        for event in context.get_step_failure_events():
            data = event.step_failure_data
            user = data.user_failure_data if data else None
            if user is not None and user.description:
                text = user.description
            elif data is not None and data.error is not None:
                text = data.error.message.strip()
            else:
                text = event.message or ""
            errors.append(f"- step {event.step_key}: {text}")
        if not errors:
            error = context.failure_event.event_specific_data
            message = getattr(getattr(error, "error", None), "message", None)
            errors.append(f"- {(message or context.failure_event.message or '').strip()}")
        error_text = "\n".join(errors)
        if len(error_text) > _MAX_ERROR_CHARS:
            error_text = error_text[:_MAX_ERROR_CHARS] + "\n[truncated]"
        subject = f"etl_platform lake {self.instance}: run {run.run_id[:8]} failed"
        body = "\n".join(
            [
                f"Lake export run failed (lake instance {self.instance!r}).",
                f"run_id: {run.run_id}",
                f"job: {run.job_name}",
                f"assets: {', '.join(k.to_user_string() for k in keys)}",
                f"partition: {partition}",
                "error:",
                error_text,
            ]
        )
        return subject, body

    def failure_sensor(self) -> dg.SensorDefinition:
        component = self
        topic = self.alert_topic_arn

        @dg.run_failure_sensor(
            name=self.alert_sensor_name,
            description=f"Publishes failed runs of lake {self.instance!r} (run id, assets, "
            f"partition, error) to SNS {topic}.",
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=30,
        )
        def _alert(context: dg.RunFailureSensorContext, sns: NotificationResource) -> None:
            message = component.failure_message(context)
            if message is None or topic is None:
                return
            subject, body = message
            message_id = sns.publish(topic, subject, body)
            context.log.info(
                f"published failure of run {context.dagster_run.run_id} to {topic} ({message_id})"
            )

        return _alert
