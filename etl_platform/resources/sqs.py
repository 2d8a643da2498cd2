"""SQS: short-poll receive, delete after commit, visibility changes.

Dagster has no SQS resource or sensor; sensors tick at most every few seconds and time out at
60 s, so receives here never long-poll beyond ``max_wait_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .aws_client import AwsAddress, AwsServiceResource, naming_aws_settings


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int


class QueueResource(AwsServiceResource):
    """Reads and acknowledges SQS messages. Acknowledge (delete) only after the work commits."""

    def queue_url(self, queue_name: str, *, setting: str | None = None) -> str:
        """The queue's URL; a missing queue is an error naming it (and ``setting``)."""
        address = AwsAddress(setting, queue=queue_name)
        with naming_aws_settings(f"sqs get url of {queue_name!r}", self.endpoint_url, address):
            return self.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]

    def receive(
        self,
        queue_url: str,
        *,
        max_messages: int = 10,
        max_wait_s: int = 0,
        visibility_timeout_s: int | None = None,
    ) -> list[QueueMessage]:
        request: dict[str, object] = {
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": max(1, min(max_messages, 10)),
            "WaitTimeSeconds": max(0, min(max_wait_s, 5)),
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if visibility_timeout_s is not None:
            request["VisibilityTimeout"] = visibility_timeout_s
        with naming_aws_settings(f"sqs receive from {queue_url}", self.endpoint_url):
            response = self.client("sqs").receive_message(**request)
        return [
            QueueMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m["Body"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            )
            for m in response.get("Messages", [])
        ]

    def delete(self, queue_url: str, receipt_handles: list[str]) -> None:
        client = self.client("sqs")
        for start in range(0, len(receipt_handles), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": h}
                for i, h in enumerate(receipt_handles[start : start + 10])
            ]
            with naming_aws_settings(f"sqs delete from {queue_url}", self.endpoint_url):
                response = client.delete_message_batch(QueueUrl=queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"sqs delete from {queue_url} failed: {response['Failed']}")

    def change_visibility(self, queue_url: str, receipt_handle: str, timeout_s: int) -> None:
        with naming_aws_settings(f"sqs visibility on {queue_url}", self.endpoint_url):
            self.client("sqs").change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=timeout_s
            )
