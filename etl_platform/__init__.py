"""etl_platform: one Dagster code location for the platform's pipelines."""

import warnings

# Two Dagster beta APIs are used on purpose (docs/architecture.md): the date-only mapping of the
# DynamoDB (date x segment) partitions, and single-run/one-per-partition backfill policies.
# Their BetaWarning would print at every definitions load and in every run's stderr; only these
# two are silenced, any other beta API still warns.
warnings.filterwarnings(
    "ignore",
    message=r"(Class `MultiToSingleDimensionPartitionMapping`|Parameter `backfill_policy`)",
)
