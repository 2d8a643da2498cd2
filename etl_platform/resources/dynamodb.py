"""DynamoDB: parallel scan of one segment, page by page, in the low-level wire format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .aws_client import AwsServiceResource, naming_aws_settings


class DynamoDBResource(AwsServiceResource):
    """Reads DynamoDB tables. Throttling (ProvisionedThroughputExceeded, ThrottlingException) is
    retried by the client's adaptive retry mode with backoff; pages are never re-read."""

    def scan_segment(
        self,
        table: str,
        segment: int,
        total_segments: int,
        *,
        page_size: int | None = None,
        consistent_read: bool = False,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the pages of one parallel-scan segment as lists of wire-format items
        (``{"attr": {"S": "..."}}``; numbers stay strings, never floats)."""
        if not 0 <= segment < total_segments:
            raise ValueError(
                f"segment {segment} is outside 0..{total_segments - 1} for table {table!r}"
            )
        client = self.client("dynamodb")
        request: dict[str, Any] = {
            "TableName": table,
            "Segment": segment,
            "TotalSegments": total_segments,
            "ConsistentRead": consistent_read,
        }
        if page_size:
            request["Limit"] = page_size
        while True:
            with naming_aws_settings(f"dynamodb scan of {table!r}", self.endpoint_url):
                page = client.scan(**request)
            yield page.get("Items", [])
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                return
            request["ExclusiveStartKey"] = last_key

    def key_attributes(self, table: str) -> tuple[str, str | None]:
        """The table's hash key and range key (None when the table has none)."""
        with naming_aws_settings(f"dynamodb describe of {table!r}", self.endpoint_url):
            schema = self.client("dynamodb").describe_table(TableName=table)["Table"]["KeySchema"]
        hash_key = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
        range_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
        return hash_key, range_key
