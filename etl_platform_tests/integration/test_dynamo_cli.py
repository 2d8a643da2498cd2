"""The shipped demo instance (`etl_platform/defs/dynamo_demo`) driven the way a data engineer
drives it: `dg launch` from the command line, and a partition backfill submitted to a running
Dagster instance (webserver + daemon) through its GraphQL API."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import boto3
import dagster as dg
import psycopg
import pytest
from psycopg import sql

from etl_platform.components.pools import set_shared_pool_limits
from etl_platform.local import demo
from etl_platform.local.production import LAUNCH_BACKFILL, stop_process_group

from .dynamo_pipeline import REPO_ROOT

TARGET = "dynamodb_demo"
ENTITY_TABLES = {"ORG": "org", "GROUP": "_group", "FINDING": "finding", "EVENT": "event"}
SEGMENTS = 4
KEYS = {
    "data_schemas": "dynamodb/demo/data_schemas",
    "segment_csv": "s3/demo/segment_csv",
    "staging": "warehouse/demo/staging",
    "published": "warehouse/demo/published",
}


@pytest.fixture
def demo_table(local_stack) -> Counter:
    """The seeded demo table (idempotent) and the demo buckets; returns items per entity."""
    demo.seed_dynamodb()
    s3 = boto3.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in (demo.BUCKETS["etl_data"], demo.BUCKETS["etl_cache"]):
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
    counts: Counter = Counter()
    pages = boto3.client("dynamodb").get_paginator("scan")
    for page in pages.paginate(TableName=demo.DYNAMO_TABLE, ProjectionExpression="sk"):
        counts.update(item["sk"]["S"].split("#")[0] for item in page["Items"])
    assert sum(counts.values()) == demo.DYNAMO_ITEMS
    return counts


@pytest.fixture
def dagster_home(tmp_path) -> Path:
    """A fresh DAGSTER_HOME with the repository's instance configuration."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        set_shared_pool_limits(instance)
    return home


def _published_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(TARGET, table))
            ).fetchone()[0]
            for table in ENTITY_TABLES.values()
        }


def _reset_published(dsn: str) -> None:
    """Drop the demo's published schema set so the assertions see only this test's publish."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for suffix in ("", "__new", "__previous"):
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(TARGET + suffix))
            )


# -- dg launch --------------------------------------------------------------------------------


def _dg_launch(env: dict[str, str], assets: str, partition: str | None, log: Path):
    command = [str(Path(sys.executable).parent / "dg"), "launch", "--assets", assets]
    if partition is not None:
        command += ["--partition", partition]
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _finished(process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    assert code == 0, f"{' '.join(process.args)} exited {code}:\n{log.read_text()[-4000:]}"


def test_dg_launch_of_every_segment_of_a_date_then_publish(
    demo_table, stack_env, dagster_home, tmp_path
):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    _reset_published(dsn)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    day = "2026-11-02"

    log = tmp_path / "data_schemas.log"
    _finished(_dg_launch(env, KEYS["data_schemas"], None, log), log)
    # One `dg launch` per segment, as an engineer retrying segments would; they are independent
    # partitions, so they run side by side.
    launches = []
    for segment in range(SEGMENTS):
        log = tmp_path / f"segment_{segment}.log"
        assets = f"{KEYS['segment_csv']},{KEYS['staging']}"
        launches.append((_dg_launch(env, assets, f"{day}|{segment}", log), log))
    for process, log in launches:
        _finished(process, log)
    log = tmp_path / "published.log"
    _finished(_dg_launch(env, KEYS["published"], day, log), log)

    assert _published_counts(dsn) == {
        table: demo_table[entity] for entity, table in ENTITY_TABLES.items()
    }
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        published = instance.get_latest_materialization_event(
            dg.AssetKey.from_user_string(KEYS["published"])
        )
        assert published is not None and published.asset_materialization.partition == day
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [
                dg.AssetCheckKey(dg.AssetKey.from_user_string(KEYS["published"]), name)
                for name in ("row_counts_match_extract", "primary_keys_unique")
            ]
        )
        assert len(checks) == 2
        assert all(c.status.value == "SUCCEEDED" for c in checks.values()), checks


# -- a backfill through the Dagster instance ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert not body.get("errors"), body["errors"]
    return body["data"]


STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      error { message stack }
      runs { id status tags { key value } }
    }
    ... on PythonError { message }
  }
}
"""


@pytest.mark.slow  # ~2 min: the backfill daemon ticks every 30 s (fixed in Dagster), 3-4 ticks
def test_a_backfill_of_two_dates_by_four_segments_through_the_dagster_instance(
    demo_table, stack_env, dagster_home, tmp_path
):
    from etl_platform.definitions import defs

    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    _reset_published(dsn)
    days = ["2026-11-03", "2026-11-04"]
    loaded = defs()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        # The data-schemas are the backfill's prerequisite (unpartitioned, refreshed weekly).
        assert dg.materialize(
            [a for a in loaded.assets or [] if isinstance(a, dg.AssetsDefinition)],
            selection=[dg.AssetKey.from_user_string(KEYS["data_schemas"])],
            resources=loaded.resources,
            instance=instance,
        ).success

    port = _free_port()
    log = tmp_path / "dagster_dev.log"
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()[-4000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the webserver did not come up"
                time.sleep(0.5)

        # Root of the selection is segment_csv (date × segment): name its 8 partitions; the
        # backfill carries them to staging (same partitions) and to published (by date).
        params = {
            "assetSelection": [
                {"path": KEYS[k].split("/")} for k in ("segment_csv", "staging", "published")
            ],
            "partitionNames": [f"{d}|{s}" for d in days for s in range(SEGMENTS)],
            "title": "dynamodb demo: 2 dates x 4 segments",
            # One process per run rather than one per step: same assets, a quarter of the CPU.
            "runConfigData": {"execution": {"config": {"in_process": {}}}},
        }
        launched = _graphql(port, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        deadline = time.monotonic() + 420
        while True:
            backfill = _graphql(port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
            assert backfill["__typename"] == "PartitionBackfill", backfill
            if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
                break
            assert time.monotonic() < deadline, f"backfill still {backfill['status']}"
            time.sleep(2)
        assert backfill["status"] == "COMPLETED_SUCCESS", json.dumps(backfill, indent=1)[:6000]
    finally:
        stop_process_group(server)

    runs = backfill["runs"]
    assert runs and all(r["status"] == "SUCCESS" for r in runs)
    assert _published_counts(dsn) == {
        table: demo_table[entity] for entity, table in ENTITY_TABLES.items()
    }
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        published = dg.AssetKey.from_user_string(KEYS["published"])
        staged = dg.AssetKey.from_user_string(KEYS["staging"])
        assert instance.get_materialized_partitions(published) >= set(days)
        assert instance.get_materialized_partitions(staged) >= {
            dg.MultiPartitionKey({"date": d, "segment": str(s)})
            for d in days
            for s in range(SEGMENTS)
        }
        for day in days:
            record = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=published, asset_partitions=[day]), limit=1
            ).records[0]
            metadata = record.asset_materialization.metadata
            assert metadata["dagster/row_count"].value >= demo.DYNAMO_ITEMS
