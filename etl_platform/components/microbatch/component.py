"""Micro-batch loader component: one SQS queue of S3 events -> one merged warehouse table.

Declares, per instance ``I`` loading ``schema.TABLE``:

* ``["warehouse", I, TABLE]``: the target table, daily-partitioned by the day of its files
  (never one partition per file or manifest). A micro-batch run loads one manifest into its day;
  a plain materialization (UI, ``dg launch``, a backfill of a range) bulk-loads the day's prefix.
  Runs use the pool ``microbatch_load/<schema.table>`` (``components/pools.py``), exclusive
  through the instance's ``default_limit: 1``: loads of one table queue while loads of
  different tables run side by side.
* ``I_load``: the job the sensors launch.
* ``I_sqs_sensor``: S3 events -> manifests -> run requests (``sensor.py``).
* ``I_reconcile_sensor``: failed manifests re-requested under a new run key (``reconcile.py``).
"""

from datetime import date
from typing import Any

import dagster as dg
from pydantic import Field, field_validator, model_validator

from etl_platform.components import pools
from etl_platform.components.config_rules import check_bucket_name
from etl_platform.components.microbatch.load import LoadTarget, load_days
from etl_platform.components.microbatch.reconcile import reconcile_tick
from etl_platform.components.microbatch.sensor import SensorSettings, sqs_tick
from etl_platform.core.microbatch import BatchLimits, DayPattern, Manifest, ManifestFile
from etl_platform.core.retry import RetrySettings
from etl_platform.core.s3_layout import s3_uri
from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec
from etl_platform.core.warehouse import CsvOptions, FileKind
from etl_platform.core.warehouse import FileFormat as CopyFormat
from etl_platform.core.warehouse import merge_load as wml
from etl_platform.resources import ObjectStoreResource, QueueResource, WarehouseResource


class MergeSettings(dg.Model, dg.Resolvable):
    enabled: bool = Field(default=True, description="Off: every row is appended.")
    primary_key: list[str] = Field(default_factory=list, description="Key column(s).")
    timestamp_column: str | None = Field(default=None, description="Latest value wins.")
    delete_column: str | None = Field(
        default=None, description="Boolean column: a winning row with true removes its key."
    )


class BatchingSettings(dg.Model, dg.Resolvable):
    max_files: int = Field(default=100, ge=1, description="Most files per manifest.")
    max_bytes: int = Field(default=1024**3, ge=1, description="Most bytes per manifest.")
    max_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        le=45,
        description="Longest a tick keeps polling to fill manifests (within the 60 s budget).",
    )
    max_messages_per_tick: int = Field(default=2000, ge=1)


class FileFormat(dg.Model, dg.Resolvable):
    """The files' format: settings only, mapped to each engine's COPY options (never SQL)."""

    kind: str = Field(default="csv_gzip", description="`csv_gzip` or `parquet`.")
    delimiter: str | None = Field(default=None, description="CSV: one character (default `,`).")
    quote: str | None = Field(default=None, description='CSV: one character (default `"`).')
    header: bool | None = Field(default=None, description="CSV: the first line is skipped.")
    null_marker: str | None = Field(
        default=None,
        description="CSV: the field meaning NULL (default: an unquoted empty field on "
        "PostgreSQL, a NUL byte on Redshift).",
    )

    @model_validator(mode="after")
    def _valid(self) -> "FileFormat":
        self.copy_format()
        return self

    def copy_format(self) -> CopyFormat:
        """The validated value; errors name the field (``file_format.delimiter``)."""
        if self.kind not in ("csv_gzip", "parquet"):
            raise ValueError(f"file_format.kind {self.kind!r}: use 'csv_gzip' or 'parquet'")
        given = {
            name: value
            for name in ("delimiter", "quote", "header", "null_marker")
            if (value := getattr(self, name)) is not None
        }
        if self.kind == "parquet":
            if given:
                name = next(iter(given))
                raise ValueError(f"file_format.{name}: a CSV option, not taken by parquet files")
            return CopyFormat(FileKind.PARQUET)
        try:
            return CopyFormat(FileKind.CSV_GZIP, CsvOptions(**given))
        except ValueError as exc:
            raise ValueError(f"file_format.{exc}") from exc


class RetryLimits(dg.Model, dg.Resolvable):
    max_attempts: int = Field(default=6, ge=1, le=20, description="The retry cap (all tries).")
    base_delay_seconds: float = Field(default=0.5, ge=0)
    max_delay_seconds: float = Field(default=20.0, ge=0)


class TargetColumn(dg.Model, dg.Resolvable):
    name: str
    kind: ColumnKind
    precision: int | None = None
    scale: int | None = None


class ManifestFileConfig(dg.Config):
    url: str
    size: int
    etag: str = ""
    event_time: str | None = None


class MicrobatchRunConfig(dg.Config):
    """Set by the sensor for a micro-batch run; empty for a bulk load of the day."""

    manifest_id: str | None = None
    manifest_uri: str | None = None
    files: list[ManifestFileConfig] = []


class MicrobatchLoader(dg.Component, dg.Model, dg.Resolvable):
    """S3 files announced on an SQS queue, merged into one warehouse table in micro-batches."""

    instance: str = Field(description="Name of this loader; part of every key and name.")
    queue: str = Field(description="SQS queue of the bucket's object-created notifications.")
    source_bucket: str
    source_prefix: str = Field(default="", description="Only keys under it are loaded.")
    target_table: str = Field(description="`schema.table` in the warehouse.")
    columns: list[TargetColumn] | None = Field(
        default=None, description="Create the table with these columns when it is missing."
    )
    file_format: FileFormat = Field(default_factory=FileFormat)
    manifest_bucket: str
    manifest_prefix: str = "microbatch-manifests"
    merge: MergeSettings = Field(default_factory=MergeSettings)
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    retry: RetryLimits = Field(default_factory=RetryLimits)
    day_pattern: str = Field(
        default="dt=YYYY-MM-DD/", description="Where a key names its day; else the event time."
    )
    start_date: str = Field(description="First daily partition, YYYY-MM-DD (UTC).")
    sensor_interval_seconds: int = Field(default=30, ge=5)
    sensor_running: bool = Field(default=False, description="Start the sensors running.")
    poison_retry_after_seconds: int = Field(default=30, ge=0, le=43200)
    reconcile_max_attempts: int = Field(default=3, ge=1)

    _buckets = field_validator("source_bucket", "manifest_bucket")(check_bucket_name)

    @field_validator("target_table")
    @classmethod
    def _schema_table(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"target_table {value!r} must be `schema.table`")
        return value

    @field_validator("start_date")
    @classmethod
    def _iso_day(cls, value: str) -> str:
        date.fromisoformat(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "MicrobatchLoader":
        DayPattern(self.day_pattern)
        if self.merge.enabled and (not self.merge.primary_key or not self.merge.timestamp_column):
            raise ValueError(
                f"micro-batch {self.instance!r}: merge.enabled needs merge.primary_key and "
                "merge.timestamp_column"
            )
        if self.merge.enabled:
            keys = self.merge_keys
            assert keys is not None
            if self.columns is not None:
                keys.check(self.target_table, [c.name for c in self.columns])
        if self.retry.base_delay_seconds > self.retry.max_delay_seconds:
            raise ValueError("retry.base_delay_seconds must not exceed retry.max_delay_seconds")
        return self

    # -- derived --------------------------------------------------------------------------
    @property
    def schema_name(self) -> str:
        return self.target_table.split(".")[0]

    @property
    def table_name(self) -> str:
        return self.target_table.split(".")[1]

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(["warehouse", self.instance, self.table_name])

    @property
    def pool(self) -> str:
        return pools.microbatch_load(self.target_table)

    @property
    def job_name(self) -> str:
        return f"{self.instance}_load"

    @property
    def op_name(self) -> str:
        return "__".join(self.asset_key.path)

    @property
    def merge_keys(self) -> wml.MergeKeys | None:
        if not self.merge.enabled or self.merge.timestamp_column is None:
            return None
        return wml.MergeKeys(
            tuple(self.merge.primary_key), self.merge.timestamp_column, self.merge.delete_column
        )

    def load_target(self) -> LoadTarget:
        spec = None
        if self.columns is not None:
            spec = TableSpec(
                self.table_name,
                tuple(ColumnSpec(c.name, c.kind, c.precision, c.scale) for c in self.columns),
                tuple(self.merge.primary_key),
            )
        return LoadTarget(
            instance=self.instance,
            schema=self.schema_name,
            table=self.table_name,
            source_bucket=self.source_bucket,
            source_prefix=self.source_prefix,
            manifest_bucket=self.manifest_bucket,
            manifest_prefix=self.manifest_prefix,
            day_pattern=DayPattern(self.day_pattern),
            merge_keys=self.merge_keys,
            retry=RetrySettings(
                self.retry.max_attempts, self.retry.base_delay_seconds, self.retry.max_delay_seconds
            ),
            create_spec=spec,
            file_format=self.file_format.copy_format(),
        )

    def sensor_settings(self) -> SensorSettings:
        return SensorSettings(
            queue=self.queue,
            limits=BatchLimits(self.batching.max_files, self.batching.max_bytes),
            max_wait_s=self.batching.max_wait_seconds,
            max_messages=self.batching.max_messages_per_tick,
            poison_retry_after_s=self.poison_retry_after_seconds,
            op_name=self.op_name,
            first_day=date.fromisoformat(self.start_date),
        )

    # -- definitions ----------------------------------------------------------------------
    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        # end_offset=1: today is a partition while its files are still arriving
        daily = dg.DailyPartitionsDefinition(
            start_date=self.start_date, timezone="UTC", end_offset=1
        )
        asset = self.table_asset(daily)
        job = dg.define_asset_job(
            self.job_name, selection=dg.AssetSelection.assets(self.asset_key), partitions_def=daily
        )
        return dg.Definitions(
            assets=[asset], jobs=[job], sensors=[self.sqs_sensor(job), self.reconcile_sensor(job)]
        )

    def table_asset(self, daily: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
        target = self.load_target()
        merge = (
            f"merged on ({', '.join(self.merge.primary_key)}) keeping the latest "
            f"`{self.merge.timestamp_column}`"
            if self.merge.enabled
            else "appended as they come"
        )

        @dg.asset(
            key=self.asset_key,
            partitions_def=daily,
            backfill_policy=dg.BackfillPolicy.single_run(),
            pool=self.pool,
            group_name=f"microbatch_{self.instance}",
            kinds={"s3", "sql"},
            description=f"The warehouse table `{self.target_table}`: every file that lands in "
            f"{s3_uri(self.source_bucket, self.source_prefix)}, {merge}. A day is the day of "
            "its files (from the key, else the upload time). Rows of one key never go back in "
            "time: replaying an old file changes nothing.",
            metadata={"table": self.target_table, "queue": self.queue},
        )
        def _table(
            context: dg.AssetExecutionContext,
            config: MicrobatchRunConfig,
            warehouse: WarehouseResource,
            s3: ObjectStoreResource,
        ) -> dg.MaterializeResult:
            days = [date.fromisoformat(k) for k in context.partition_keys]
            manifest = None
            if config.manifest_id and config.files:
                files = tuple(ManifestFile.from_config(f.model_dump()) for f in config.files)
                manifest = Manifest(self.instance, days[0], files)
            return load_days(context, target, warehouse, s3, days, manifest, config.manifest_uri)

        return _table

    def sqs_sensor(self, job: Any) -> dg.SensorDefinition:
        target, settings = self.load_target(), self.sensor_settings()

        @dg.sensor(
            name=f"{self.instance}_sqs_sensor",
            job=job,
            minimum_interval_seconds=self.sensor_interval_seconds,
            default_status=dg.DefaultSensorStatus.RUNNING
            if self.sensor_running
            else dg.DefaultSensorStatus.STOPPED,
            description=f"Turns S3 events on {self.queue} into manifests and micro-batch runs.",
        )
        def _sensor(
            context: dg.SensorEvaluationContext, sqs: QueueResource, s3: ObjectStoreResource
        ) -> dg.SensorResult:
            return sqs_tick(context, target, settings, sqs, s3)

        return _sensor

    def reconcile_sensor(self, job: Any) -> dg.SensorDefinition:
        @dg.sensor(
            name=f"{self.instance}_reconcile_sensor",
            job=job,
            minimum_interval_seconds=max(60, self.sensor_interval_seconds),
            default_status=dg.DefaultSensorStatus.RUNNING
            if self.sensor_running
            else dg.DefaultSensorStatus.STOPPED,
            description="Re-requests manifests whose run failed, under a new run key.",
        )
        def _reconcile(context: dg.SensorEvaluationContext) -> dg.SensorResult:
            return reconcile_tick(
                context, self.instance, self.job_name, self.reconcile_max_attempts
            )

        return _reconcile
