"""DynamoDB: parallel scan of one segment, page by page, in the low-level wire format.

Scan pages are not parsed by botocore: its response parser (~12k items/s) is slower than the
whole CSV transform. A ``before-parse`` hook keeps the raw body of successful Scan responses
and :func:`etl_platform.core.dynamo.iter_wire_items` parses it (~200k items/s).
Error responses are still parsed by botocore, so throttling is recognized and retried by the
client's adaptive retry mode.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from etl_platform.core.dynamo import iter_wire_items

from .aws_client import AwsAddress, AwsServiceResource, naming_aws_settings

RAW_BODY = "RawBody"
RAW_BODY_HOOK = "etl_platform.keep_raw_scan_body"


def _keep_raw_scan_body(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    if response_dict.get("status_code") == 200 and RAW_BODY not in customized_response_dict:
        customized_response_dict[RAW_BODY] = response_dict["body"]
        response_dict["body"] = b"{}"


def _start_key(wire_key: dict[str, Any]) -> dict[str, Any]:
    """A LastEvaluatedKey from the raw wire JSON as the client expects it back (B as bytes)."""
    return {
        name: {"B": base64.b64decode(av["B"])} if "B" in av else av for name, av in wire_key.items()
    }


class DynamoDBResource(AwsServiceResource):
    """Reads DynamoDB tables. Throttling (ProvisionedThroughputExceeded, ThrottlingException) is
    retried by the client's adaptive retry mode with backoff; pages are never re-read."""

    def _scan_client(self) -> Any:
        client = self.client("dynamodb")
        # unique_id: registering again (another thread, another call) is a no-op, so the hook
        # never runs twice on one response and empties a page it already kept.
        client.meta.events.register(
            "before-parse.dynamodb.Scan", _keep_raw_scan_body, unique_id=RAW_BODY_HOOK
        )
        return client

    def scan_segment(
        self,
        table: str,
        segment: int,
        total_segments: int,
        *,
        page_size: int | None = None,
        consistent_read: bool = False,
        setting: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the pages of one parallel-scan segment as lists of wire-format items
        (``{"attr": {"S": "..."}}``; numbers stay strings, never floats; ``B`` base64 text).
        ``setting``: the setting naming ``table``, for the error when it does not exist."""
        if not 0 <= segment < total_segments:
            raise ValueError(
                f"segment {segment} is outside 0..{total_segments - 1} for table {table!r}"
            )
        client = self._scan_client()
        request: dict[str, Any] = {"TableName": table, "ConsistentRead": consistent_read}
        if total_segments > 1:
            request.update(Segment=segment, TotalSegments=total_segments)
        if page_size:
            request["Limit"] = page_size
        address = AwsAddress(setting, table=table)
        while True:
            with naming_aws_settings(f"dynamodb scan of {table!r}", self.endpoint_url, address):
                response = client.scan(**request)
            fields: dict[str, Any] = {}
            yield list(iter_wire_items(response[RAW_BODY], fields))
            last_key = fields.get("LastEvaluatedKey")
            if not last_key:
                return
            request["ExclusiveStartKey"] = _start_key(last_key)

    def key_attributes(self, table: str, *, setting: str | None = None) -> tuple[str, str | None]:
        """The table's hash key and range key (None when the table has none)."""
        address = AwsAddress(setting, table=table)
        with naming_aws_settings(f"dynamodb describe of {table!r}", self.endpoint_url, address):
            schema = self.client("dynamodb").describe_table(TableName=table)["Table"]["KeySchema"]
        hash_key = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
        range_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
        return hash_key, range_key
