"""Shared test plumbing for the DynamoDB pipeline: build one instance and materialize it."""

from __future__ import annotations

from typing import Any

import boto3
import dagster as dg

from etl_platform.components.dynamo_etl import DynamoTableEtl
from etl_platform.resources import platform_resources

DAY = "2026-11-02"


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
