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

A pool name is any non-whitespace string; names here use ``/`` between kind and target.
"""

DYNAMODB_SCAN = "dynamodb_scan"
WAREHOUSE_LOAD = "warehouse_load"
SOURCE_POSTGRES = "source_postgres"

SHARED_POOLS = (DYNAMODB_SCAN, WAREHOUSE_LOAD, SOURCE_POSTGRES)


def warehouse_publish(target_schema: str) -> str:
    """One publish or rollback at a time per published warehouse schema."""
    return f"warehouse_publish/{target_schema}"


def lake_export(glue_database: str, lake_table: str) -> str:
    """One export at a time per lake table (so never two writers of one (table, day))."""
    return f"lake_export/{glue_database}.{lake_table}"


def microbatch_load(target_table: str) -> str:
    """One micro-batch merge at a time per warehouse target table (``schema.table``)."""
    return f"microbatch_load/{target_table}"


def dump_scrub(instance: str) -> str:
    """One scrub at a time per dump pipeline instance (dump partitions are dynamic, so the
    pool is per instance: one scrub per dump, and one dump of an instance at a time)."""
    return f"dump_scrub/{instance}"
