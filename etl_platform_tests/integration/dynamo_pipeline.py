"""Shared test plumbing for the DynamoDB pipeline: build one instance and materialize it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import psycopg
from psycopg import sql

from etl_platform.components.dynamo_etl import DynamoTableEtl
from etl_platform.core import s3_layout
from etl_platform.core.warehouse import PUBLISH_MARKER_TABLE, STAGING_RECORD_TABLE
from etl_platform.resources import platform_resources

DAY = "2026-11-02"
REPO_ROOT = Path(__file__).resolve().parents[2]


def make_table(name: str, items: list[dict[str, Any]], range_key: bool = True) -> None:
    """A DynamoDB table (pk[, sk]) holding ``items`` in the low-level wire format."""
    client = boto3.client("dynamodb")
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if range_key:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attrs.append({"AttributeName": "sk", "AttributeType": "S"})
    client.create_table(
        TableName=name, KeySchema=keys, AttributeDefinitions=attrs, BillingMode="PAY_PER_REQUEST"
    )
    for item in items:
        client.put_item(TableName=name, Item=item)


def make_component(name: str, segments: int = 2, **overrides: Any) -> DynamoTableEtl:
    s3 = boto3.client("s3")
    for bucket in (f"{name}-data", f"{name}-cache"):
        s3.create_bucket(Bucket=bucket)
    attributes: dict[str, Any] = {
        "instance": name,
        "table_name": name,
        "total_segments": segments,
        "target_schema": f"{name}_pub",
        "start_date": "2026-11-01",
        "data_bucket": f"{name}-data",
        "schema_cache_bucket": f"{name}-cache",
    }
    attributes.update(overrides)
    return DynamoTableEtl(**attributes)


class Pipeline:
    """One component instance with its definitions and a shared Dagster instance."""

    def __init__(self, component: DynamoTableEtl, instance: dg.DagsterInstance) -> None:
        self.component = component
        self.instance = instance
        self.defs = dg.Definitions.merge(
            dg.component_defs(component=component),
            dg.Definitions(resources=platform_resources()),
        )
        name = component.instance
        self.keys = {
            "data_schemas": dg.AssetKey(["dynamodb", name, "data_schemas"]),
            "segment_csv": dg.AssetKey(["s3", name, "segment_csv"]),
            "staging": dg.AssetKey(["warehouse", name, "staging"]),
            "published": dg.AssetKey(["warehouse", name, "published"]),
        }

    def materialize(
        self, asset: str, partition_key: Any = None, raise_on_error: bool = True
    ) -> dg.ExecuteInProcessResult:
        assets = [a for a in self.defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
        return dg.materialize(
            assets,
            selection=[self.keys[asset]],
            resources=self.defs.resources,
            instance=self.instance,
            partition_key=partition_key,
            raise_on_error=raise_on_error,
        )

    def segment_key(self, day: str, segment: int) -> dg.MultiPartitionKey:
        return dg.MultiPartitionKey({"date": day, "segment": str(segment)})

    def run_date(self, day: str = DAY, schemas: bool = True) -> dg.ExecuteInProcessResult:
        if schemas:
            self.materialize("data_schemas")
        for segment in range(self.component.total_segments):
            self.materialize("segment_csv", self.segment_key(day, segment))
            self.materialize("staging", self.segment_key(day, segment))
        return self.materialize("published", day)


# -- helpers for failure, CLI and backfill tests ---------------------------------------------


def component_attributes(component: DynamoTableEtl) -> dict[str, Any]:
    """The component's YAML-level attributes: ``DynamoTableEtl(**attrs)`` rebuilds it."""
    return component.model_dump(mode="json")


def materialize_main(argv: list[str] | None = None) -> None:
    """Entry point of a separate process: ``ATTRIBUTES_JSON ASSET [DAY [SEGMENT]]`` (ASSET
    ``rollback`` runs the rollback job instead).

    Builds the same component with ``dg.component_defs`` and the platform resources from the
    inherited environment and materializes one asset partition on an ephemeral instance."""
    args = sys.argv[1:] if argv is None else argv
    component = DynamoTableEtl(**json.loads(args[0]))
    asset = args[1]
    with dg.DagsterInstance.ephemeral() as instance:
        pipeline = Pipeline(component, instance)
        if asset == "rollback":
            job = pipeline.defs.get_job_def(f"{component.group}_rollback_publish")
            assert job.execute_in_process(instance=instance).success
            return
        partition: Any = None
        if len(args) == 4:
            partition = pipeline.segment_key(args[2], int(args[3]))
        elif len(args) == 3:
            partition = args[2]
        pipeline.materialize(asset, partition)


def start_materialize_process(
    component: DynamoTableEtl, asset: str, *partition: str, log: Path
) -> subprocess.Popen[bytes]:
    """Materialize one partition in a child process (own process group, stack env inherited);
    its output goes to ``log``."""
    code = (
        "from etl_platform_tests.integration.dynamo_pipeline import materialize_main; "
        "materialize_main()"
    )
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(component_attributes(component)), asset]
            + list(partition),
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message and its causes, as one string."""
    parts: list[str] = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None:
            parts.append(error.message)
            error = error.cause
    return "\n".join(parts)


def segment_objects(
    component: DynamoTableEtl, day: str, segment: int
) -> dict[str, tuple[bytes, datetime]]:
    """Every object under the segment's prefix: key → (bytes, LastModified)."""
    s3 = boto3.client("s3")
    prefix = s3_layout.segment_prefix(
        component.data_prefix, component.instance, date.fromisoformat(day), segment
    )
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=component.data_bucket, Prefix=prefix
    ):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=component.data_bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = (body, obj["LastModified"])
    return out


def schema_rows(dsn: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table of a warehouse schema (not the publish marker or staging record) with
    its rows as sorted text tuples."""
    with psycopg.connect(dsn) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name <> ALL(%s)",
                (schema, [PUBLISH_MARKER_TABLE, STAGING_RECORD_TABLE]),
            )
        ]
        out = {}
        for table in sorted(tables):
            name = sql.Identifier(schema, table)
            rows = conn.execute(sql.SQL("SELECT * FROM {}").format(name)).fetchall()
            out[table] = sorted(tuple("" if v is None else repr(v) for v in r) for r in rows)
        return out


def entity_items(n: int, start: int = 0, tag: str | None = "v1") -> list[dict]:
    """ORDER items (with a list of lines: child table ``_order__lines``; ``order`` is reserved
    in SQL, hence the ``_``) and USER items."""
    out = []
    for i in range(start, start + n):
        kind = "ORDER" if i % 2 else "USER"
        item = {
            "pk": {"S": f"P{i:05d}"},
            "sk": {"S": f"{kind}#{i}"},
            "n": {"N": str(i)},
        }
        if tag is not None:
            item["tag"] = {"S": tag}
        if kind == "ORDER":
            item["lines"] = {"L": [{"M": {"sku": {"S": f"s{j}"}}} for j in range(i % 3)]}
        else:
            item["profile"] = {"M": {"name": {"S": f"user {i}"}, "age": {"N": "42"}}}
        out.append(item)
    return out
