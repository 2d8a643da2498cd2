"""A micro-batch loader on the local stack for one test: a landing bucket whose object-created
events go to a queue with redrive to a DLQ, a manifest bucket, a fresh warehouse database, and
the component's definitions on a test Dagster instance. Runs are real ``execute_in_process``
runs of the component's job, launched the way the sensor asks (run key, partition, config).

``model_fold`` is the test's own statement of the merge rules, written from issue 10's wording
and not from the SQL: the tests compare the table with it.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import dagster as dg
import psycopg

from etl_platform.components.microbatch import MicrobatchLoader
from etl_platform.resources import ObjectStoreResource, QueueResource, WarehouseResource

COLUMNS = [
    {"name": "id", "kind": "bigint"},
    {"name": "region", "kind": "text"},
    {"name": "ts", "kind": "timestamptz"},
    {"name": "val", "kind": "text"},
    {"name": "del", "kind": "boolean"},
]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Row = tuple  # (id, region, ts | None, val, del)


def csv_bytes(rows: list[Row]) -> bytes:
    """gzip CSV in the platform encoding (unquoted empty = NULL), deterministic bytes."""

    def field_text(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, str):
            return '"' + v.replace('"', '""') + '"'
        return str(v)

    text = "".join(",".join(field_text(v) for v in row) + "\n" for row in rows)
    return gzip.compress(text.encode(), mtime=0)


def model_fold(table: dict, files: list[list[Row]]) -> dict:
    """The table after one load of ``files`` (in load order) into ``table`` (key -> row)."""
    table = dict(table)
    best: dict[tuple, tuple[tuple, Row]] = {}
    for f, rows in enumerate(files):
        for r, row in enumerate(rows):
            key, ts = (row[0], row[1]), row[2]
            order = (ts is not None, ts or EPOCH, f, r)
            if key not in best or order > best[key][0]:
                best[key] = (order, row)
    for key, (_, row) in best.items():
        stored = table.get(key)
        if stored is not None and stored[2] is not None and (row[2] is None or row[2] < stored[2]):
            continue  # older than what the table holds
        if row[4]:
            table.pop(key, None)
        else:
            table[key] = row
    return table


@dataclass
class MicrobatchWorld:
    name: str
    dsn: str
    instance: dg.DagsterInstance
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")
        self.bucket, self.manifests = f"{self.name}-landing", f"{self.name}-manifests"
        self.queue = f"{self.name}-events"
        for bucket in (self.bucket, self.manifests):
            self.s3.create_bucket(Bucket=bucket)
        self.dlq_url = self.sqs.create_queue(QueueName=f"{self.queue}-dlq")["QueueUrl"]
        dlq_arn = self._arn(self.dlq_url)
        self.queue_url = self.sqs.create_queue(
            QueueName=self.queue,
            Attributes={
                "VisibilityTimeout": "300",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
            },
        )["QueueUrl"]
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": self._arn(self.queue_url), "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
        self.cursor: str | None = None
        self.component = self.make_component(f"{self.name}_mb", "mb.items")
        self.defs = self.definitions(self.component)

    def _arn(self, url: str) -> str:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return attrs["Attributes"]["QueueArn"]

    def make_component(self, instance: str, table: str, **overrides: Any) -> MicrobatchLoader:
        attributes: dict[str, Any] = {
            "instance": instance,
            "queue": self.queue,
            "source_bucket": self.bucket,
            "source_prefix": "orders/",
            "target_table": table,
            "columns": COLUMNS,
            "manifest_bucket": self.manifests,
            "manifest_prefix": "manifests",
            "merge": {
                "primary_key": ["id", "region"],
                "timestamp_column": "ts",
                "delete_column": "del",
            },
            "batching": {"max_files": 10, "max_wait_seconds": 1},
            "retry": {"max_attempts": 5, "base_delay_seconds": 0.05, "max_delay_seconds": 0.5},
            "start_date": "2026-11-01",
            "poison_retry_after_seconds": 0,
            "reconcile_max_attempts": 2,
        }
        attributes.update(self.settings)
        attributes.update(overrides)
        return MicrobatchLoader(**attributes)

    def definitions(self, component: MicrobatchLoader) -> dg.Definitions:
        return dg.component_defs(component=component, resources=self.resources)

    @property
    def resources(self) -> dict[str, Any]:
        return {
            "s3": ObjectStoreResource(),
            "sqs": QueueResource(),
            "warehouse": WarehouseResource(dsn=self.dsn),
        }

    def sensor_context(self, defs: dg.Definitions, cursor: str | None = None) -> Any:
        return dg.build_sensor_context(
            instance=self.instance, cursor=cursor, definitions=defs, resources=self.resources
        )

    # -- S3 and SQS ----------------------------------------------------------------------
    def put(self, key: str, rows: list[Row]) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=csv_bytes(rows))

    def put_raw(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def queue_depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    # -- Dagster -------------------------------------------------------------------------
    def tick(self, defs: dg.Definitions | None = None) -> list[dg.RunRequest]:
        defs = defs or self.defs
        sensor = defs.get_sensor_def(f"{self.component.instance}_sqs_sensor")
        result = sensor(self.sensor_context(defs, self.cursor))
        self.cursor = result.cursor
        return list(result.run_requests or [])

    def run(
        self, request: dg.RunRequest, defs: dg.Definitions | None = None
    ) -> dg.ExecuteInProcessResult:
        defs = defs or self.defs
        job = defs.resolve_job_def(f"{self.component.instance}_load")
        tags = {**request.tags}
        if request.run_key:
            tags["dagster/run_key"] = request.run_key
        return job.execute_in_process(
            run_config=request.run_config,
            partition_key=request.partition_key,
            tags=tags,
            instance=self.instance,
            raise_on_error=False,
        )

    def tick_and_run(self, ticks: int = 1) -> list[dg.ExecuteInProcessResult]:
        results = []
        for _ in range(ticks):
            for request in self.tick():
                result = self.run(request)
                assert result.success, result.all_events
                results.append(result)
        return results

    def table(self, table: str = "mb.items") -> dict:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(f"SELECT id, region, ts, val, del FROM {table}").fetchall()
        assert len({(r[0], r[1]) for r in rows}) == len(rows), "a key appears twice"
        return {(r[0], r[1]): tuple(r) for r in rows}


def _run_child(
    attributes: dict[str, Any],
    dsn: str,
    instance_ref: Any,
    request: dict[str, Any],
    env: dict[str, str],
    out: Any,
) -> None:
    os.environ.update(env)
    component = MicrobatchLoader(**attributes)
    resources = {
        "s3": ObjectStoreResource(),
        "sqs": QueueResource(),
        "warehouse": WarehouseResource(dsn=dsn),
    }
    defs = dg.component_defs(component=component, resources=resources)
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        result = defs.resolve_job_def(f"{component.instance}_load").execute_in_process(
            instance=instance, raise_on_error=False, **request
        )
        out.put((result.success, materialization(result) if result.success else None))


class RunProcess:
    """A run of the loader in its own process (Dagster's in-process execution is not meant to
    run twice at once in one process): the way two workers would run it."""

    def __init__(self, world: MicrobatchWorld, request: dg.RunRequest) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.out = ctx.Queue()
        tags = {**request.tags, "dagster/run_key": request.run_key or ""}
        call = {
            "run_config": request.run_config,
            "partition_key": request.partition_key,
            "tags": tags,
        }
        self.process = ctx.Process(
            target=_run_child,
            args=(
                world.component.model_dump(),
                world.dsn,
                world.instance.get_ref(),
                call,
                dict(os.environ),
                self.out,
            ),
        )
        self.process.start()

    def result(self, timeout: float = 180) -> tuple[bool, dict[str, Any] | None]:
        got = self.out.get(timeout=timeout)
        self.process.join(30)
        return got


def materialization(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}
