"""End to end: files dropped into S3 → SQS events → sensor ticks → micro-batch runs → committed.

    python -m benchmarks.microbatch_e2e [--files 100] [--rows 10000] [--tick-every 5]

Uploads ``files`` gzip CSVs spread evenly over one minute while a loop ticks the real
``<I>_sqs_sensor`` every ``tick-every`` seconds and runs each requested run in process (one
worker, so runs are serial like a pool of limit 1). Reports the p50/p95 of event-to-commit
latency of every file (its S3 event time to its run's commit) and the number of runs.
Starts its own local stack in a temporary directory and stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg

from benchmarks.microbatch_merge import csv_gz, make_files
from etl_platform.components.microbatch import MicrobatchLoader
from etl_platform.local.stack import LocalStack
from etl_platform.resources import ObjectStoreResource, QueueResource, WarehouseResource


def _world(files: int) -> MicrobatchLoader:
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    for bucket in ("e2e-landing", "e2e-manifests"):
        s3.create_bucket(Bucket=bucket)
    url = sqs.create_queue(QueueName="e2e-events", Attributes={"VisibilityTimeout": "300"})
    arn = sqs.get_queue_attributes(QueueUrl=url["QueueUrl"], AttributeNames=["QueueArn"])
    s3.put_bucket_notification_configuration(
        Bucket="e2e-landing",
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    return MicrobatchLoader(
        instance="e2e",
        queue="e2e-events",
        source_bucket="e2e-landing",
        source_prefix="",
        target_table="bench.e2e",
        columns=[
            {"name": "id", "kind": "bigint"},
            {"name": "ts", "kind": "timestamptz"},
            {"name": "val", "kind": "text"},
            {"name": "amount", "kind": "decimal"},
        ],
        manifest_bucket="e2e-manifests",
        merge={"primary_key": ["id"], "timestamp_column": "ts"},
        batching={"max_files": files, "max_wait_seconds": 1},
        start_date="2026-11-01",
    )


def _upload(files: list[bytes], seconds: float) -> None:
    s3 = boto3.client("s3")
    for i, body in enumerate(files):
        s3.put_object(Bucket="e2e-landing", Key=f"dt=2026-11-30/part-{i:04d}.csv.gz", Body=body)
        time.sleep(seconds / len(files))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--tick-every", type=float, default=5.0)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="etl_bench_e2e_")
    stack = LocalStack(Path(root))
    stack.up()
    os.environ.update(stack.env())
    try:
        component = _world(args.files)
        resources = {
            "s3": ObjectStoreResource(),
            "sqs": QueueResource(),
            "warehouse": WarehouseResource(dsn=stack.env()["ETL_WAREHOUSE_DSN"]),
        }
        defs = dg.component_defs(component=component, resources=resources)
        sensor, job = defs.get_sensor_def("e2e_sqs_sensor"), defs.resolve_job_def("e2e_load")
        bodies = [csv_gz(rows) for rows in make_files(args.files, args.rows, 0.2)]
        uploader = threading.Thread(target=_upload, args=(bodies, 60.0))
        latencies: list[float] = []
        runs, cursor, loaded = 0, None, 0
        with dg.instance_for_test() as instance:
            uploader.start()
            while loaded < args.files:
                started = time.monotonic()
                context = dg.build_sensor_context(
                    instance=instance, cursor=cursor, definitions=defs, resources=resources
                )
                result = sensor(context)
                cursor = result.cursor
                for request in result.run_requests or []:
                    run = job.execute_in_process(
                        run_config=request.run_config,
                        partition_key=request.partition_key,
                        tags={**request.tags, "dagster/run_key": request.run_key or ""},
                        instance=instance,
                    )
                    (event,) = run.get_asset_materialization_events()
                    meta = {k: v.value for k, v in event.materialization.metadata.items()}
                    files = request.run_config["ops"][component.op_name]["config"]["files"]
                    times = [datetime.fromisoformat(f["event_time"]) for f in files]
                    committed = min(times) + timedelta(seconds=meta["event_to_commit_oldest_s"])
                    latencies += [(committed - t).total_seconds() for t in times]
                    runs, loaded = runs + 1, loaded + len(files)
                time.sleep(max(0.0, args.tick_every - (time.monotonic() - started)))
            uploader.join()
        cuts = statistics.quantiles(latencies, n=20)
        print(
            json.dumps(
                {
                    "files": args.files,
                    "rows_per_file": args.rows,
                    "runs": runs,
                    "latency_p50_s": round(statistics.median(latencies), 2),
                    "latency_p95_s": round(cuts[18], 2),
                    "tick_every_s": args.tick_every,
                },
                indent=2,
            )
        )
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
