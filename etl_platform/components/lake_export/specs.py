"""What a lake instance declares besides its step: the source table specs, the lake asset spec,
the per-day check specs and the daily schedule (declarations only; no body runs at load)."""

import warnings
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg

from .checks import (
    COUNT_CHECK,
    GLUE_CHECK,
    MEDIAN_CHECK,
    MIN_HISTORY_DAYS,
    READ_BACK_CHECK,
    TRAILING_DAYS,
)

if TYPE_CHECKING:
    from .component import LakeExport, LakeTable


def source_spec(lake: "LakeExport", table: "LakeTable") -> dg.AssetSpec:
    """The external source table (never materialized here)."""
    return dg.AssetSpec(
        key=lake.source_key(table),
        description=f"The PostgreSQL table `{table.name}` (the source of truth, read by the "
        f"`{lake.source_dsn_env}` connection). A row belongs to the UTC day of its "
        f"`{table.date_column}`. External: never materialized here.",
        group_name=lake.group,
        kinds={"postgres"},
        metadata={"table": table.name, "date_column": table.date_column},
    )


def lake_spec(
    lake: "LakeExport", table: "LakeTable", daily: dg.DailyPartitionsDefinition
) -> dg.AssetSpec:
    """The Parquet lake table: one partition per UTC day."""
    location = lake.table_location(table)
    return dg.AssetSpec(
        key=lake.lake_key(table),
        deps=[lake.source_key(table)],
        description=(
            f"`{table.name}` as a Parquet lake table: one partition per UTC day of "
            f"`{table.date_column}` at `{location}year=YYYY/month=MM/day=DD/`, "
            f"{lake.compression}-compressed, registered in Glue as "
            f"`{lake.glue_database}.{table.lake_table}` (query it with Athena, Spark, "
            "polars). Re-running a day replaces its files exactly. Checked per day against "
            "the source's row count."
        ),
        group_name=lake.group,
        kinds={"postgres", "s3", "parquet"},
        partitions_def=daily,
        skippable=True,
        metadata={
            "dagster/table_name": f"{lake.glue_database}.{table.lake_table}",
            "location": dg.MetadataValue.path(location),
            "source_table": table.name,
            "date_column": table.date_column,
        },
    )


def check_specs(
    lake: "LakeExport", table: "LakeTable", daily: dg.DailyPartitionsDefinition
) -> list[dg.AssetCheckSpec]:
    """The four per-day checks: three blocking, the trailing-median one a warning."""
    key = lake.lake_key(table)
    descriptions = {
        COUNT_CHECK: f"The source's count of `{table.name}` rows in the day's UTC window "
        "equals the rows in the day's Parquet files (read from their footers).",
        READ_BACK_CHECK: "Every Parquet part of the day opens, the parts' rows add up, and "
        "each part's schema is the one planned from the source catalog.",
        GLUE_CHECK: f"Glue `{lake.glue_database}.{table.lake_table}` has the day's "
        "partition at the day's S3 prefix, with the table's columns.",
        MEDIAN_CHECK: f"Warns (does not fail) when the day has fewer than "
        f"{lake.min_fraction_of_median:g} x the median source count of the "
        f"{TRAILING_DAYS} days before it (needs {MIN_HISTORY_DAYS} days of history).",
    }
    # partitions_def on a check spec is a preview feature in 1.13; it is what makes a range
    # run store one result per day, so it is used deliberately and its warning silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                name,
                asset=key,
                blocking=name != MEDIAN_CHECK,
                partitions_def=daily,
                description=description,
            )
            for name, description in descriptions.items()
        ]


def daily_schedule(lake: "LakeExport", job: Any) -> dg.ScheduleDefinition:
    """Runs the daily job on ``schedule_cron`` (UTC) for the last complete UTC day as of the
    tick: at 02:00 on D that is D-1. (``build_schedule_from_partitioned_job`` takes no cron
    for time-partitioned jobs, only hour/minute, so the partition is computed here.)"""
    start = date.fromisoformat(lake.start_date)

    @dg.schedule(
        name=f"lake_{lake.instance}_daily_schedule",
        cron_schedule=lake.schedule_cron,
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Exports the previous UTC day of lake {lake.instance!r}.",
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        tick = context.scheduled_execution_time or datetime.now(UTC)
        day = tick.astimezone(UTC).date() - timedelta(days=1)
        if day < start:
            return dg.SkipReason(f"no complete day since start_date {lake.start_date}")
        return dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())

    return _daily
