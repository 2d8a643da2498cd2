"""The production instance (``deploy/dagster.yaml``) started for real: ``dagster api grpc``,
``dagster-daemon run`` and ``dagster-webserver`` from the production config, with storage in a
fresh database of the local stack's PostgreSQL, compute logs in moto S3, the shared pool limits
set by ``deploy/set-pool-limits.sh``, and only the run launcher swapped for the default one.

A backfill of 8 segment partitions of the demo's ``segment_csv`` goes through the queue; the run
records must show 8 separate run processes, never more scan steps at once than the
``dynamodb_scan`` pool allows, and 8 successes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import dagster as dg
import pytest
import yaml

from etl_platform.local.production import (
    InstanceProcesses,
    sqlalchemy_url,
    write_instance_config,
)
from etl_platform.local.run_timings import max_overlap, run_timing, step_intervals

from .dynamo_pipeline import REPO_ROOT
from .test_dynamo_cli import KEYS, SEGMENTS, demo_table  # noqa: F401  (fixture)

SCAN_POOL_LIMIT = 3
DAYS = ["2026-11-05", "2026-11-06"]


@pytest.fixture
def production_home(tmp_path, fresh_database, unique_name, monkeypatch) -> Path:
    """DAGSTER_HOME with deploy/dagster.yaml (default run launcher), its storage in a fresh
    database and the shared pool limits set by the deploy script (scan pool made small)."""
    home = tmp_path / "dagster_home"
    config = write_instance_config(REPO_ROOT / "deploy" / "dagster.yaml", home)
    deployed = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())
    assert {k: v for k, v in config.items() if k != "run_launcher"} == {
        k: v for k, v in deployed.items() if k != "run_launcher"
    }
    bucket = f"{unique_name}-logs"
    boto3.client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", sqlalchemy_url(fresh_database))
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_BUCKET", bucket)
    subprocess.run(
        ["bash", str(REPO_ROOT / "deploy" / "set-pool-limits.sh")],
        env={
            **os.environ,
            "DAGSTER": str(Path(sys.executable).parent / "dagster"),
            "ETL_POOL_DYNAMODB_SCAN": str(SCAN_POOL_LIMIT),
        },
        check=True,
        capture_output=True,
        timeout=120,
    )
    return home


@pytest.mark.slow  # ~2 min: the backfill daemon ticks every 30 s; 8 run processes on 2 cores
def test_a_backfill_of_eight_segments_runs_through_the_production_queue_within_the_scan_pool(
    demo_table,  # noqa: F811  (fixture)
    production_home,
):
    from etl_platform.definitions import defs

    with dg.DagsterInstance.get() as instance:
        limits = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
        assert limits["dynamodb_scan"] == SCAN_POOL_LIMIT
        assert limits["warehouse_load"] == 4 and limits["source_postgres"] == 2
        loaded = defs()
        assert dg.materialize(  # the backfill's prerequisite, unpartitioned
            [a for a in loaded.assets or [] if isinstance(a, dg.AssetsDefinition)],
            selection=[dg.AssetKey.from_user_string(KEYS["data_schemas"])],
            resources=loaded.resources,
            instance=instance,
        ).success

    processes = InstanceProcesses(home=production_home, cwd=REPO_ROOT, env=dict(os.environ))
    try:
        processes.start()
        backfill_id = processes.launch_backfill(
            [KEYS["segment_csv"]],
            [f"{d}|{s}" for d in DAYS for s in range(SEGMENTS)],
            title="production instance: 8 segment partitions",
            run_config={"execution": {"config": {"in_process": {}}}},
        )
        backfill = processes.wait_for_backfill(backfill_id)
    finally:
        processes.stop()
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        timings = [run_timing(instance, r.run_id) for r in runs]
    assert len(timings) == 8
    assert all(t.status == "SUCCESS" for t in timings), timings
    pids = {t.pid for t in timings}
    assert None not in pids and len(pids) == 8, f"not 8 separate run processes: {pids}"
    assert all(t.launched is not None and t.enqueued is not None for t in timings)
    overlap = max_overlap(step_intervals(timings))
    assert 1 <= overlap <= SCAN_POOL_LIMIT, f"{overlap} scan steps at once"
    print(f"8 runs, pids {sorted(pids)}, at most {overlap} scan steps at once")
