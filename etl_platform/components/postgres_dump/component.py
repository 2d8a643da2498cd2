"""Postgres dump → S3 → SQS sensor → fail-closed PII scrub → restore (one component per
source database). Declarations only: the bodies are the step modules ``dump``, ``scrub``,
``restore`` and ``sensor``.

Shape of one instance ``I`` (every name derives from it):

* ``["postgres", I, "source"]``: the source database (external).
* ``["s3", I, "raw_dump"]``: a pg_dump directory archive in the extract bucket.
* ``["s3", I, "clean_dump"]``: the scrubbed, residual-scanned archive in the load bucket.
* ``["postgres", I, "target"]``: the target database restored from the clean dump.
* Partitions: dynamic ``postgres_dump_I``, one key per dump (the dump's S3 folder name).
* ``postgres_dump_I_dump_sensor`` (SQS), ``postgres_dump_I_reconcile`` (schedule), and with
  ``dump_schedule_cron`` ``postgres_dump_I_dump_schedule``.
* Pools ``postgres_dump_I_scrub`` and ``postgres_dump_I_restore``; runs carry the tag
  ``etl_platform/dump = I/KEY``, limited to one run per value in ``dagster.yaml``.
"""

import re
from typing import Any, Literal

import dagster as dg
from pydantic import Field, field_validator, model_validator

from etl_platform.components import pools
from etl_platform.components.config_rules import check_bucket_name, check_cron
from etl_platform.components.run_policy import step_retry_policy
from etl_platform.core.scrub import RuleError, ScrubRules, parse_rules
from etl_platform.resources import ObjectStoreResource, PgToolsResource, QueueResource

from .dump import DumpSettings, materialize_raw_dump
from .restore import RestoreSettings, materialize_target
from .scrub import ScrubSettings, materialize_clean_dump
from .sensor import (
    ReconcileSettings,
    SensorSettings,
    dump_schedule_tick,
    dump_sensor_tick,
    reconcile_tick,
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class PostgresDumpPipeline(dg.Component, dg.Model, dg.Resolvable):
    """A source PostgreSQL database dumped to S3, scrubbed of PII by fail-closed rules, and
    restored into a target database that readers never see half-restored."""

    instance: str = Field(description="Name of this pipeline instance; part of every key.")
    source_dsn_env: str = Field(description="Env var with the source DSN (read at run time).")
    extract_bucket: str = Field(description="Bucket the raw dumps land in (PII!).")
    extract_prefix: str = Field(default="dumps", description="Key prefix of the raw dumps.")
    queue_name: str = Field(description="SQS queue of the extract bucket's object-created events.")
    dlq_name: str = Field(description="Its dead-letter queue (where poison messages end).")
    scrub_rules: dict[str, Any] = Field(description="Rules per table and column (fail closed).")
    hmac_key_env: str = Field(
        default="ETL_SCRUB_HMAC_KEY", description="Env var with the key of hash/fake_* actions."
    )
    load_bucket: str = Field(description="Bucket of the clean dumps.")
    load_prefix: str = Field(default="clean", description="Key prefix of the clean dumps.")
    target_dsn_env: str = Field(description="Env var with the target DSN (read at run time).")
    dump_schedule_cron: str | None = Field(default=None, description="Take a dump on this cron.")
    reconcile_cron: str = Field(default="*/30 * * * *", description="Retry unscrubbed dumps.")
    retention_days: int = Field(default=14, ge=1, description="Prune dumps older than this.")
    keep_raw_dumps_days: int = Field(
        default=0, ge=0, description="0: delete a raw dump once its clean dump is verified."
    )
    restore_mode: Literal["swap", "single_transaction"] = Field(default="swap")
    kms_key_id: str | None = Field(default=None, description="SSE-KMS key (else SSE-S3).")
    residual_sample_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    scrub_workers: int = Field(default=2, ge=1, le=64)
    scratch_dsn_env: str | None = Field(
        default=None,
        description="Env var with a DSN whose server holds the scratch database of custom_sql "
        "steps (default: the target's).",
    )
    poison_visibility_seconds: int = Field(
        default=30, ge=1, le=43200, description="When a bad message is received again (-> DLQ)."
    )

    _buckets = field_validator("extract_bucket", "load_bucket")(check_bucket_name)
    _crons = field_validator("dump_schedule_cron", "reconcile_cron")(check_cron)

    @field_validator("scrub_rules")
    @classmethod
    def _rules(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            parse_rules(value)
        except RuleError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _names(self) -> "PostgresDumpPipeline":
        checks = [
            ("instance", self.instance, _NAME),
            ("queue_name", self.queue_name, _QUEUE),
            ("dlq_name", self.dlq_name, _QUEUE),
            ("source_dsn_env", self.source_dsn_env, _ENV),
            ("target_dsn_env", self.target_dsn_env, _ENV),
            ("hmac_key_env", self.hmac_key_env, _ENV),
            ("scratch_dsn_env", self.scratch_dsn_env or "UNSET", _ENV),
        ]
        for field, value, pattern in checks:
            if not pattern.match(value):
                raise ValueError(f"{field} {value!r} is not a valid name")
        return self

    # -- names and settings ------------------------------------------------------------------
    def key(self, system: str, thing: str) -> dg.AssetKey:
        return dg.AssetKey([system, self.instance, thing])

    @property
    def name(self) -> str:
        return f"postgres_dump_{self.instance}"

    @property
    def rules(self) -> ScrubRules:
        return parse_rules(self.scrub_rules)

    def dump_settings(self) -> DumpSettings:
        return DumpSettings(
            self.source_dsn_env, self.extract_bucket, self.extract_prefix, self.kms_key_id
        )

    def scrub_settings(self) -> ScrubSettings:
        return ScrubSettings(
            self.extract_bucket,
            self.extract_prefix,
            self.load_bucket,
            self.load_prefix,
            self.hmac_key_env,
            self.kms_key_id,
            self.residual_sample_fraction,
            self.keep_raw_dumps_days,
            self.scrub_workers,
            scratch_dsn_env=self.scratch_dsn_env or self.target_dsn_env,
        )

    def restore_settings(self) -> RestoreSettings:
        return RestoreSettings(
            self.load_bucket, self.load_prefix, self.target_dsn_env, self.restore_mode
        )

    # -- definitions ---------------------------------------------------------------------------
    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        dumps = dg.DynamicPartitionsDefinition(name=self.name)
        source = dg.AssetSpec(
            self.key("postgres", "source"),
            description=f"The source database of dump pipeline {self.instance!r} (holds PII).",
            group_name=self.name,
        )
        assets = [source, *self._assets(dumps)]
        downstream = [self.key("s3", "clean_dump"), self.key("postgres", "target")]
        sensor_settings = SensorSettings(
            self.instance,
            self.queue_name,
            self.extract_bucket,
            self.extract_prefix,
            self.name,
            downstream,
            self.poison_visibility_seconds,
        )

        @dg.sensor(name=f"{self.name}_dump_sensor", target=downstream, minimum_interval_seconds=30)
        def dump_sensor(context: dg.SensorEvaluationContext, sqs: QueueResource) -> dg.SensorResult:
            """New dumps announced on the queue: add the partition, request scrub + restore."""
            return dump_sensor_tick(context, sqs, sensor_settings)

        return dg.Definitions(
            assets=assets, sensors=[dump_sensor], schedules=self._schedules(downstream)
        )

    def _assets(self, dumps: dg.DynamicPartitionsDefinition) -> list[dg.AssetsDefinition]:
        common = {"partitions_def": dumps, "group_name": self.name}
        raw_key, clean_key = self.key("s3", "raw_dump"), self.key("s3", "clean_dump")

        @dg.asset(
            key=raw_key,
            deps=[self.key("postgres", "source")],
            pool=pools.SOURCE_POSTGRES,
            **common,
        )
        def raw_dump(
            context: dg.AssetExecutionContext, s3: ObjectStoreResource, pg_tools: PgToolsResource
        ) -> dg.MaterializeResult:
            """A pg_dump of the source in the extract bucket: one gzip file per table. Holds
            PII; deleted once its clean dump is verified unless kept by keep_raw_dumps_days."""
            return materialize_raw_dump(
                self.dump_settings(), s3, pg_tools, context.partition_key, context
            )

        @dg.asset(
            key=clean_key,
            deps=[raw_key],
            pool=pools.dump_scrub(self.instance),
            retry_policy=step_retry_policy(),
            **common,
        )
        def clean_dump(
            context: dg.AssetExecutionContext, s3: ObjectStoreResource, pg_tools: PgToolsResource
        ) -> dg.MaterializeResult:
            """The dump with every column scrubbed or explicitly kept by the rules, residual-
            scanned: the only copy of the source that leaves the extract account."""
            return materialize_clean_dump(
                self.scrub_settings(),
                self.rules,
                s3,
                pg_tools,
                context.partition_key,
                context,
            )

        @dg.asset(
            key=self.key("postgres", "target"),
            deps=[clean_key],
            pool=pools.database_restore(self.target_dsn_env),
            retry_policy=step_retry_policy(),
            **common,
        )
        def target(
            context: dg.AssetExecutionContext, s3: ObjectStoreResource, pg_tools: PgToolsResource
        ) -> dg.MaterializeResult:
            """The target database as of this dump, scrubbed: swapped in whole after its row
            counts and foreign keys are verified (the previous version kept for a rollback)."""
            return materialize_target(
                self.restore_settings(), s3, pg_tools, context.partition_key, context
            )

        return [raw_dump, clean_dump, target]

    def _schedules(self, downstream: list[dg.AssetKey]) -> list[dg.ScheduleDefinition]:
        reconcile_settings = ReconcileSettings(
            self.instance,
            self.name,
            self.extract_bucket,
            self.extract_prefix,
            self.load_bucket,
            self.load_prefix,
            self.retention_days,
            downstream,
        )

        @dg.schedule(
            name=f"{self.name}_reconcile",
            cron_schedule=self.reconcile_cron,
            target=downstream,
            execution_timezone="UTC",
        )
        def reconcile(
            context: dg.ScheduleEvaluationContext, s3: ObjectStoreResource
        ) -> list[dg.RunRequest]:
            """Retry every dump without a verified clean dump; prune dumps past retention."""
            return reconcile_tick(context, s3, reconcile_settings)

        schedules = [reconcile]
        if self.dump_schedule_cron:
            raw_key = self.key("s3", "raw_dump")

            @dg.schedule(
                name=f"{self.name}_dump_schedule",
                cron_schedule=self.dump_schedule_cron,
                target=[raw_key],
                execution_timezone="UTC",
            )
            def dump_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
                """Take a new dump of the source (its manifest's event starts the scrub)."""
                return dump_schedule_tick(context, self.instance, self.name, raw_key)

            schedules.append(dump_schedule)
        return schedules
