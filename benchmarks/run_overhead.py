"""Per-run overhead of one DynamoDB segment partition on the production instance configuration
(``deploy/dagster.yaml`` with the default run launcher, Postgres storage on the local stack):

- queue → launch: how long the queued run coordinator took to hand the run to the launcher;
- launch → step start: the launcher's call to the step's first line (new process, code
  location load, run setup, resources);
- step end → run end: events and process exit after the step;
- the step's fixed cost: the segment extract of an EMPTY table (schema cache read, manifest
  withdraw/write, stale-object listing), measured in-process, so it is the cost a segment pays
  whatever its size.

    python -m benchmarks.run_overhead [--runs 4]

Starts its own local stack, code server, daemon and webserver, and stops exactly those. The
runs go through one backfill with the scan pool at 1, so they do not compete with each other.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import boto3
import dagster as dg
import psycopg
from psycopg import sql

from etl_platform.components.dynamo_etl import DynamoTableEtl
from etl_platform.local import demo
from etl_platform.local.production import InstanceProcesses, sqlalchemy_url, write_instance_config
from etl_platform.local.run_timings import RunTiming, run_timing
from etl_platform.local.stack import LocalStack
from etl_platform.resources import platform_resources

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-11-07"


def _gap(first: float | None, then: float | None) -> float | None:
    return None if first is None or then is None else then - first


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def empty_segment_step_seconds(repeat: int = 3) -> list[float]:
    """Duration of the segment extract step on an empty table, in-process (the fixed cost)."""
    name = "overhead_empty"
    dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for bucket in ("overhead-data", "overhead-cache"):
        s3.create_bucket(Bucket=bucket)
    component = DynamoTableEtl(
        instance="overhead",
        table_name=name,
        total_segments=4,
        target_schema="overhead_pub",
        start_date="2026-11-01",
        data_bucket="overhead-data",
        schema_cache_bucket="overhead-cache",
    )
    defs = dg.Definitions.merge(
        dg.component_defs(component=component), dg.Definitions(resources=platform_resources())
    )
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    instance = dg.DagsterInstance.ephemeral()
    key = dg.AssetKey(["dynamodb", "overhead", "data_schemas"])
    dg.materialize(assets, selection=[key], resources=defs.resources, instance=instance)
    seconds = []
    for i in range(repeat):
        result = dg.materialize(
            assets,
            selection=[dg.AssetKey(["s3", "overhead", "segment_csv"])],
            resources=defs.resources,
            instance=instance,
            partition_key=dg.MultiPartitionKey({"date": DAY, "segment": str(i % 4)}),
        )
        timing = run_timing(instance, result.run_id)
        seconds.append(timing.step_seconds or float("nan"))
    return seconds


def production_runs(stack: LocalStack, home: Path, runs: int) -> list[RunTiming]:
    """``runs`` segment partitions of the demo through the production queue, one at a time."""
    state = stack.state()
    assert state is not None
    database = "dagster_overhead"
    with psycopg.connect(state.dsn("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    write_instance_config(REPO / "deploy" / "dagster.yaml", home)
    os.environ.update(
        DAGSTER_HOME=str(home),
        DAGSTER_PG_URL=sqlalchemy_url(state.dsn(database)),
        DAGSTER_COMPUTE_LOG_BUCKET="overhead-logs",
    )
    boto3.client("s3").create_bucket(Bucket="overhead-logs")
    from etl_platform.definitions import defs

    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots("dynamodb_scan", 1)
        loaded = defs()
        dg.materialize(
            [a for a in loaded.assets or [] if isinstance(a, dg.AssetsDefinition)],
            selection=[dg.AssetKey(["dynamodb", "demo", "data_schemas"])],
            resources=loaded.resources,
            instance=instance,
        )
    processes = InstanceProcesses(home=home, cwd=REPO, env=dict(os.environ))
    try:
        processes.start()
        backfill_id = processes.launch_backfill(
            ["s3/demo/segment_csv"],
            [f"{DAY}|{s % 4}" if s < 4 else f"2026-11-08|{s % 4}" for s in range(runs)],
            title="run overhead benchmark",
            run_config={"execution": {"config": {"in_process": {}}}},
        )
        backfill = processes.wait_for_backfill(backfill_id, timeout_s=900)
    finally:
        processes.stop()
    if backfill.get("status") != "COMPLETED_SUCCESS":
        raise RuntimeError(f"backfill did not succeed: {backfill}")
    with dg.DagsterInstance.get() as instance:
        records = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        return [run_timing(instance, r.run_id) for r in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4, help="segment runs (at most 8)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="etl_overhead_"))
    stack = LocalStack(root / "stack")
    stack.up()
    saved = dict(os.environ)
    try:
        os.environ.update(stack.env())
        demo.seed_demo_world()
        fixed = empty_segment_step_seconds()
        timings = production_runs(stack, root / "dagster_home", min(args.runs, 8))
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stack.down()
        shutil.rmtree(root, ignore_errors=True)
    report(timings, fixed)


def report(timings: list[RunTiming], fixed: list[float]) -> None:
    def column(name: str, values: list[float | None]) -> None:
        got = [v for v in values if v is not None]
        print(f"| {name} | {_median(got):.2f} | {min(got):.2f} | {max(got):.2f} |")

    print(f"{len(timings)} segment runs of the demo table (750 items each), production config")
    print("| per run (s) | median | min | max |\n|---|---|---|---|")
    column("queue → launch (coordinator)", [_gap(t.enqueued, t.launched) for t in timings])
    column(
        "launch → run start (process + code load)", [_gap(t.launched, t.started) for t in timings]
    )
    column("run start → step start", [_gap(t.started, t.step_start) for t in timings])
    column("launch → step start", [t.launch_to_step_start for t in timings])
    column("step (750 items)", [t.step_seconds for t in timings])
    column("step end → run end", [t.step_end_to_run_end for t in timings])
    column("step fixed cost (empty segment, in-process)", list(fixed))


if __name__ == "__main__":
    main()
