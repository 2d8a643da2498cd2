"""Concurrency pools: the one place that names them. Every component takes its ``pool=`` from here.

Dagster pools limit how many ops of a pool run at once across all runs of the instance. The limits
live in the instance, not in code: ``concurrency: pools: default_limit`` in ``dagster.yaml`` (and
``deploy/dagster.yaml``) applies to every pool without a limit of its own, and the shared pools
get theirs with ``dagster instance concurrency set POOL N`` (``deploy/set-pool-limits.sh``).

The production default limit is 1, so every "one at a time per X" pool below is exclusive without
any setup, and only the shared, bounded pools (scans, loads, source reads) need a number:

| pool | ops | limit |
|---|---|---|
| ``dynamodb_scan`` | data-schema scans, segment extracts | shared, sized to read capacity |
| ``warehouse_load`` | per-segment staging COPYs | shared, sized to COPY slots |
| ``source_postgres`` | dumps and other source-Postgres reads | shared, sized to connections |
| ``warehouse_publish/<target schema>`` | publish, rollback of one target | 1 (default) |
| ``lake_export/<glue db>.<table>`` | export of one lake table (covers one per (table, day)) | 1 |
| ``microbatch_load/<target table>`` | micro-batch merges into one table | 1 |
| ``dump_scrub/<instance>`` | scrub of one dump pipeline's dumps | 1 |
| ``database_restore/<target DSN setting>`` | restores into one target database | 1 |

A pool name is any non-whitespace string; names here use ``/`` between kind and target.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import dagster as dg

DYNAMODB_SCAN = "dynamodb_scan"
WAREHOUSE_LOAD = "warehouse_load"
SOURCE_POSTGRES = "source_postgres"

SHARED_POOLS = (DYNAMODB_SCAN, WAREHOUSE_LOAD, SOURCE_POSTGRES)

#: Limits of the shared pools on a laptop (`etl-platform dev`, the tests); production sets its
#: own with deploy/set-pool-limits.sh. Every other pool is exclusive (`default_limit: 1`).
LOCAL_SHARED_LIMITS: Mapping[str, int] = MappingProxyType(
    {DYNAMODB_SCAN: 4, WAREHOUSE_LOAD: 2, SOURCE_POSTGRES: 2}
)


def set_shared_pool_limits(
    instance: dg.DagsterInstance, limits: Mapping[str, int] = LOCAL_SHARED_LIMITS
) -> None:
    """Store the shared pools' limits in ``instance`` (what `dagster instance concurrency set`
    does), so the exclusive default applies only to the per-target pools."""
    for pool, limit in limits.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)


def warehouse_publish(target_schema: str) -> str:
    """One publish or rollback at a time per published warehouse schema."""
    return f"warehouse_publish/{target_schema}"


def lake_export(glue_database: str, lake_table: str) -> str:
    """One export at a time per lake table (so never two writers of one (table, day))."""
    return f"lake_export/{glue_database}.{lake_table}"


def microbatch_load(target_table: str) -> str:
    """One micro-batch merge at a time per warehouse target table (``schema.table``)."""
    return f"microbatch_load/{target_table}"


def database_restore(target: str) -> str:
    """One restore at a time into a target database (named by its DSN setting)."""
    return f"database_restore/{target}"


def dump_scrub(instance: str) -> str:
    """One scrub at a time per dump pipeline instance (dump partitions are dynamic, so the
    pool is per instance: one scrub per dump, and one dump of an instance at a time)."""
    return f"dump_scrub/{instance}"
