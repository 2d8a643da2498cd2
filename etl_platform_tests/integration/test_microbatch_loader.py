"""Issue 10's acceptance on the local stack: real S3 -> SQS notifications (moto server), real
PostgreSQL, real Dagster sensor ticks and runs of the micro-batch loader component."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg
import psycopg
import pytest

from etl_platform_tests.integration.microbatch_world import (
    MicrobatchWorld,
    Row,
    RunProcess,
    materialization,
    model_fold,
)

T = datetime(2026, 11, 30, 8, tzinfo=UTC)
T1, T2, T3 = T, T + timedelta(hours=1), T + timedelta(hours=2)
DAY = "orders/dt=2026-11-30/"


@pytest.fixture
def world(local_stack, fresh_database, unique_name):
    with dg.instance_for_test() as instance:
        yield MicrobatchWorld(unique_name, fresh_database, instance)


def test_events_to_the_right_table(world, monkeypatch):
    monkeypatch.setenv("ETL_PROGRESS_INTERVAL_S", "0")  # a progress line at every update
    f1: list[Row] = [
        (1, "eu", T1, "a", False),
        (1, "eu", T2, "b", False),  # duplicate within the file: later timestamp wins
        (2, "eu", T1, "x", False),
        (2, "eu", T1, "y", False),  # tie within the file: later row wins
        (3, "eu", None, "n1", False),  # NULL timestamp, alone: kept
        (4, "eu", None, "n", False),
        (4, "eu", T1, "t", False),  # NULL is the oldest
    ]
    f2: list[Row] = [
        (1, "eu", T2, "c", False),  # tie across files: the later file wins
        (5, "us", T1, "del-me", False),
        (6, "us", T3, "six", False),
    ]
    k1, k2 = DAY + "a+b c.csv.gz", DAY + "é ü/файл 1+1.csv.gz"
    world.put(k1, f1)
    world.put(k2, f2)
    (first,) = world.tick_and_run()
    meta = materialization(first)
    assert meta["files"] == 2 and meta["rows_read"] == 10 and meta["rows_dropped_duplicates"] == 4
    # the load logged its progress: files and bytes staged of the manifest's totals, rows merged
    lines = [e.user_message for e in world.instance.all_logs(first.run_id) if e.user_message]
    staging = r"^staging of s3://\S+ for mb\.items: "
    assert _matching(lines, staging + r"1 files, [\d,]+ files/s, 50% of 2, ETA \d")
    assert _matching(lines, staging + r"[\d,]+ bytes, [\d,]+ bytes/s, \d+% of [\d,]+, ETA \d")
    assert _matching(lines, r"^merge of s3://\S+ into mb\.items: done, 6 rows written in ")
    expected = model_fold({}, [f1, f2])
    assert world.table() == expected

    f3: list[Row] = [
        (5, "us", T2, "", True),  # delete flag on the winning row removes the key
        (6, "us", T2, "older", False),  # older than the table's row: dropped
        (3, "eu", None, "n2", False),  # NULL against NULL: not older, replaces
        (7, "eu", T1, "never", True),  # delete of an absent key
        (1, "eu", T1, "", True),  # a delete older than the table's row: dropped
    ]
    world.put(DAY + "f3.csv.gz", f3)
    world.put(k1, f1)  # replayed event: same key and ETag
    (second,) = world.tick_and_run()
    meta = materialization(second)
    assert meta["files"] == 1 and meta["rows_read"] == 5
    skip = {"rows_read", "rows_per_s"}
    outcomes = {k: v for k, v in meta.items() if k.startswith("rows_") and k not in skip}
    assert outcomes == {
        "rows_inserted": 0,
        "rows_replaced": 1,  # key 3
        "rows_deleted": 1,  # key 5
        "rows_dropped_duplicates": 0,
        "rows_dropped_older": 2,  # keys 6 and 1
        "rows_dropped_absent_deletes": 1,  # key 7
    }
    expected = model_fold(expected, [f3])
    assert world.table() == expected

    world.put(DAY + "zz-replay-of-f2.csv.gz", f2)  # an older file replayed after newer ones
    world.tick_and_run()
    expected = model_fold(expected, [f2])
    assert world.table() == expected
    assert world.table()[(6, "us")][3] == "six" and (5, "us") in world.table()

    assert world.tick() == []  # nothing left; this tick deletes the last messages
    assert world.queue_depth(world.queue_url) == 0


def _matching(lines: list[str], pattern: str) -> list[str]:
    return [line for line in lines if re.search(pattern, line)]


def test_poison_goes_to_the_dlq_and_valid_messages_load(world):
    rows: list[Row] = [(1, "eu", T1, "ok", False)]
    world.put(DAY + "before.csv.gz", rows)
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody='{"not": "an s3 event"}')
    world.put("elsewhere/outside-prefix.csv.gz", rows)  # valid event, wrong prefix: poison
    later: list[Row] = [(2, "eu", T2, "ok too", False)]
    world.put(DAY + "after.csv.gz", later)
    world.tick_and_run(ticks=3)
    assert world.table() == model_fold({}, [rows, later])
    bodies = []
    for _ in range(5):
        got = world.sqs.receive_message(QueueUrl=world.dlq_url, MaxNumberOfMessages=10)
        bodies += [m["Body"] for m in got.get("Messages", [])]
    assert len(bodies) == 2
    assert any("an s3 event" in b for b in bodies)
    assert any("outside-prefix" in b for b in bodies)
    assert world.queue_depth(world.queue_url) == 0


def _wait_for_lock_wait(dsn: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the load never waited on the test's transaction")


def test_serialization_failure_is_retried(world):
    base: list[Row] = [(1, "eu", T1, "first", False), (2, "eu", T1, "other", False)]
    world.put(DAY + "base.csv.gz", base)
    world.tick_and_run()
    newer: list[Row] = [(1, "eu", T3, "from the file", False)]
    world.put(DAY + "newer.csv.gz", newer)
    (request,) = world.tick()
    holder = psycopg.connect(world.dsn)
    holder.execute("UPDATE mb.items SET val = 'by the test', ts = %s WHERE id = 1", (T2,))
    runner = RunProcess(world, request)
    try:
        _wait_for_lock_wait(world.dsn)
    finally:
        holder.commit()  # the waiting load now fails with 40001 and retries
        holder.close()
    success, metadata = runner.result()
    assert success and metadata is not None
    assert metadata["attempts"] >= 2
    held = model_fold({}, [base])
    held[(1, "eu")] = (1, "eu", T2, "by the test", False)
    assert world.table() == model_fold(held, [newer])


def test_bad_file_fails_at_once_and_leaves_the_table_unchanged(world):
    good: list[Row] = [(1, "eu", T1, "keep", False)]
    world.put(DAY + "good.csv.gz", good)
    world.tick_and_run()
    before = world.table()
    world.put(DAY + "bad file.csv.gz", [(2, "eu", T2, "x", False, "extra column")])
    world.put(DAY + "fine.csv.gz", [(3, "eu", T2, "would load", False)])
    (request,) = world.tick()
    result = world.run(request)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "bad file.csv.gz" in message and "mb.items" in message
    assert world.table() == before
    # the reconcile sensor re-requests the failed manifest under a new run key, up to the cap
    reconcile = world.defs.get_sensor_def(f"{world.component.instance}_reconcile_sensor")
    retry = reconcile(world.sensor_context(world.defs))
    (again,) = retry.run_requests
    assert again.run_key == f"{request.run_key}#2" and again.run_config == request.run_config
    assert not world.run(again).success
    done = reconcile(world.sensor_context(world.defs))
    assert not done.run_requests
    assert world.table() == before


def test_two_manifests_at_once_do_not_interleave(world):
    world.component = world.make_component(
        world.component.instance, "mb.items", batching={"max_files": 1, "max_wait_seconds": 1}
    )
    world.defs = world.definitions(world.component)
    # shared keys, never a shared timestamp and no delete flags: every serial order of the two
    # loads gives the same table, so any interleaving would show as a difference
    files = [
        [(i, "eu", T1 + timedelta(seconds=i), f"one-{i}", False) for i in range(300)],
        [(i, "eu", T2 - timedelta(minutes=i % 7), f"two-{i}", False) for i in range(0, 600, 2)],
    ]
    world.put(DAY + "one.csv.gz", files[0])
    world.put(DAY + "two.csv.gz", files[1])
    requests = world.tick()
    assert len(requests) == 2
    assert world.defs.get_assets_def(["warehouse", world.component.instance, "items"]).op.pool
    runners = [RunProcess(world, r) for r in requests]  # launched at once
    results = [r.result() for r in runners]
    assert all(success for success, _ in results)
    assert world.table() == model_fold(model_fold({}, [files[0]]), [files[1]])
    assert world.table() == model_fold(model_fold({}, [files[1]]), [files[0]])


def test_bulk_load_of_days_equals_the_micro_batches(world):
    world.component = world.make_component(
        world.component.instance, "mb.items", batching={"max_files": 1, "max_wait_seconds": 1}
    )
    world.defs = world.definitions(world.component)
    days = ["2026-11-29", "2026-11-30"]
    uploads = []
    for n, day in enumerate(days * 2):
        rows: list[Row] = [
            (i, "eu", T1 if i % 3 else None, f"{day}-{n}-{i}", i % 11 == 0 and n > 1)
            for i in range(n, 40, 2)
        ]
        key = f"orders/dt={day}/part-{n:02d}.csv.gz"
        world.put(key, rows)
        uploads.append(key)
        time.sleep(1.1)  # upload order = event order = listing order (S3 times are seconds)
    world.tick_and_run()
    micro = world.table()
    assert micro

    bulk = world.make_component(f"{world.component.instance}_bulk", "bulk.items")
    bulk_defs = world.definitions(bulk)
    job = bulk_defs.resolve_job_def(f"{bulk.instance}_load")
    result = job.execute_in_process(
        instance=world.instance,
        tags={
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[1],
        },
    )
    assert result.success
    events = result.get_asset_materialization_events()
    assert sorted(e.partition for e in events) == days  # one run, one event per day
    assert events[0].materialization.metadata["files"].value == 4
    assert world.table("bulk.items") == micro


def test_manifest_is_written_before_the_run_and_messages_deleted_after(world):
    world.put(DAY + "one.csv.gz", [(1, "eu", T1, "x", False)])
    (request,) = world.tick()
    uri = request.run_config["ops"][world.component.op_name]["config"]["manifest_uri"]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    manifest = world.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert b'"mandatory": true' in manifest and b'"content_length"' in manifest
    assert world.queue_depth(world.queue_url) == 1  # not deleted: no run exists yet
    assert world.run(request).success
    assert world.tick() == []  # the run exists now: its message is deleted
    assert world.queue_depth(world.queue_url) == 0


def _drain_demo_queue() -> None:
    """Delete what earlier tests left visible on the shared demo queue (PurgeQueue is limited
    to once a minute)."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="loader-events")["QueueUrl"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_demo_instance_merges_files_dropped_into_the_demo_bucket(local_stack, stack_env):
    from etl_platform.definitions import defs as demo_defs
    from etl_platform.local import demo

    demo.seed_aws()
    _drain_demo_queue()
    with psycopg.connect(stack_env["ETL_WAREHOUSE_DSN"], autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS microbatch_demo CASCADE")
    loaded = demo_defs()
    today = datetime.now(UTC).date().isoformat()
    rows = [
        ("1", "Ada", "10.50", T1.isoformat(), "false"),
        ("1", "Ada", "12.00", T2.isoformat(), "false"),
        ("2", "Bob", "3.25", "", "false"),
    ]
    body = "".join(",".join(r) + "\n" for r in rows).encode()
    s3 = boto3.client("s3")
    s3.put_object(
        Bucket="loader-landing", Key=f"orders/dt={today}/drop 1.csv.gz", Body=gzip.compress(body)
    )
    sensor = loaded.get_sensor_def("orders_demo_sqs_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, definitions=loaded, resources=loaded.resources
        )
        (request,) = sensor(context).run_requests
        job = loaded.resolve_job_def("orders_demo_load")
        result = job.execute_in_process(
            run_config=request.run_config,
            partition_key=request.partition_key,
            instance=instance,
        )
        assert result.success
    with psycopg.connect(stack_env["ETL_WAREHOUSE_DSN"]) as conn:
        got = conn.execute(
            "SELECT order_id, customer, amount::text, updated_at FROM microbatch_demo.orders "
            "ORDER BY order_id"
        ).fetchall()
    assert got == [(1, "Ada", "12.00", T2), (2, "Bob", "3.25", None)]


def test_dg_launch_range_backfill_equals_the_demo_micro_batches(local_stack, stack_env, tmp_path):
    """The demo instance: micro-batches of two days through the sensor, then the same two days
    bulk-loaded by `dg launch --partition-range` into an emptied table: the same table."""
    from etl_platform.definitions import defs as demo_defs
    from etl_platform.local import demo

    from .dynamo_pipeline import REPO_ROOT

    demo.seed_aws()
    _drain_demo_queue()
    s3 = boto3.client("s3")
    dsn = stack_env["ETL_WAREHOUSE_DSN"]

    def reset_and_read(reset: bool) -> list[tuple]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            rows = []
            if conn.execute("SELECT to_regclass('microbatch_demo.orders')").fetchone()[0]:
                rows = conn.execute(
                    "SELECT order_id, customer, amount, updated_at, is_deleted "
                    "FROM microbatch_demo.orders ORDER BY order_id"
                ).fetchall()
            if reset:
                conn.execute("DROP SCHEMA IF EXISTS microbatch_demo CASCADE")
        return rows

    reset_and_read(True)
    for n, day in enumerate(["2026-11-28", "2026-11-29"] * 2):
        body = "".join(
            f"{i},c{n}-{i},{i}.{n},{(T1 if i % 2 else T2).isoformat()},{str(i % 9 == 0).lower()}\n"
            for i in range(n, 30, 2)
        )
        s3.put_object(
            Bucket="loader-landing",
            Key=f"orders/dt={day}/part {n}.csv.gz",
            Body=gzip.compress(body.encode(), mtime=0),
        )
        time.sleep(1.1)  # upload order = event order = listing order
    loaded = demo_defs()
    sensor = loaded.get_sensor_def("orders_demo_sqs_sensor")
    job = loaded.resolve_job_def("orders_demo_load")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, definitions=loaded, resources=loaded.resources
        )
        requests = sensor(context).run_requests
        assert len(requests) == 2  # one manifest per day
        for request in requests:
            run = job.execute_in_process(
                run_config=request.run_config,
                partition_key=request.partition_key,
                instance=instance,
            )
            assert run.success
    micro = reset_and_read(True)
    assert len(micro) > 10

    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = [
        str(Path(sys.executable).parent / "dg"),
        "launch",
        "--assets",
        "warehouse/orders_demo/orders",
        "--partition-range",
        "2026-11-28...2026-11-29",
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert reset_and_read(False) == micro
