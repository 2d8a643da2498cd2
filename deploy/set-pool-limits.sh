#!/usr/bin/env bash
# Limits of the platform's shared concurrency pools (names in etl_platform/components/pools.py).
# Run once per Dagster instance after `dagster instance migrate`, and again after changing a
# number; limits live in the instance's storage. Every other pool takes
# `concurrency: pools: default_limit` (1) from deploy/dagster.yaml. Sizing: docs/deploy.md.
# Override a number through the environment, e.g. ETL_POOL_DYNAMODB_SCAN=64 ./set-pool-limits.sh
set -euo pipefail
DAGSTER="${DAGSTER:-dagster}"

# Parallel-scan segments in flight across all DynamoDB instances (each holds one scan stream).
$DAGSTER instance concurrency set dynamodb_scan "${ETL_POOL_DYNAMODB_SCAN:-32}"
# Per-segment staging COPYs into the warehouse at once (Redshift: within the WLM queue's slots).
$DAGSTER instance concurrency set warehouse_load "${ETL_POOL_WAREHOUSE_LOAD:-4}"
# Dumps and other bulk reads of source PostgreSQL databases at once.
$DAGSTER instance concurrency set source_postgres "${ETL_POOL_SOURCE_POSTGRES:-2}"
