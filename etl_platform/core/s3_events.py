"""S3 event notifications as they arrive in SQS message bodies: parse, decode, validate.

A body holds either S3's own notification (``{"Records": [...]}``), the same wrapped in an SNS
envelope (``{"Type": "Notification", "Message": "<json>"}``), or the ``s3:TestEvent`` S3 sends
once when a notification is configured. Object keys arrive URL-encoded the form way (a space is
``+``, a literal ``+`` is ``%2B``), so they are decoded with ``unquote_plus`` exactly once: the
replaced loader did not, and lost every key with a space or a plus.

A message is **poison** when it cannot be an object-created event of the configured bucket and
prefix (bad JSON, another event type, another bucket, a key outside the prefix, a missing size or
time). The sensor leaves poison undeleted so the queue's redrive policy moves it to the DLQ; the
reason names what was wrong.

The one parser of S3 notifications: the micro-batch loader's sensor (which needs every file's
size and event time) and the dump pipeline's sensor (which needs only the key and ETag of a
dump's ``manifest.json``, and so passes ``object_details=False``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

__all__ = ["MessageParse", "ObjectCreated", "parse_message_body"]

TEST_EVENT = "s3:TestEvent"


@dataclass(frozen=True, order=True)
class ObjectCreated:
    """One created object, as announced: the key decoded, the ETag without quotes. ``size`` and
    ``event_time`` are None only when parsed with ``object_details=False`` and S3 sent none."""

    event_time: datetime | None
    bucket: str
    key: str
    size: int | None
    etag: str
    sequencer: str

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes two events the same object version: bucket, key and ETag (the sequencer
        when S3 sent no ETag)."""
        return (self.bucket, self.key, self.etag or f"seq:{self.sequencer}")


@dataclass(frozen=True)
class MessageParse:
    """The outcome for one message: a test event, object-created events, or poison (reason)."""

    events: tuple[ObjectCreated, ...] = ()
    test_event: bool = False
    poison: str | None = None


class _Poison(ValueError):
    pass


def _event_time(value: Any, required: bool) -> datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _Poison("record has no eventTime")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _Poison(f"record eventTime {value!r} is not an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _record(record: Any, bucket: str, prefix: str, details: bool) -> ObjectCreated:
    if not isinstance(record, dict):
        raise _Poison("a record is not a JSON object")
    name, source = record.get("eventName"), record.get("eventSource")
    source_ok = source == "aws:s3" or (source is None and not details)
    if not source_ok or not str(name).startswith("ObjectCreated:"):
        raise _Poison(f"event {name!r} from {record.get('eventSource')!r} is not ObjectCreated")
    s3 = record.get("s3")
    if not isinstance(s3, dict):
        raise _Poison("record has no s3 object")
    got_bucket = (s3.get("bucket") or {}).get("name")
    obj = s3.get("object") or {}
    raw_key = obj.get("key")
    if not isinstance(raw_key, str) or not raw_key:
        raise _Poison("record has no object key")
    key = unquote_plus(raw_key)
    if got_bucket != bucket:
        raise _Poison(f"object s3://{got_bucket}/{key} is not in bucket {bucket!r}")
    if not key.startswith(prefix):
        raise _Poison(f"object s3://{bucket}/{key} is outside prefix {prefix!r}")
    size = obj.get("size")
    valid_size = isinstance(size, int) and not isinstance(size, bool) and size >= 0
    if not valid_size and not (size is None and not details):
        raise _Poison(f"object s3://{bucket}/{key} has no valid size ({size!r})")
    return ObjectCreated(
        event_time=_event_time(record.get("eventTime"), details),
        bucket=bucket,
        key=key,
        size=size,
        etag=str(obj.get("eTag") or obj.get("etag") or "").strip('"'),
        sequencer=str(obj.get("sequencer") or ""),
    )


def _payload(body: str) -> Any:
    try:
        payload = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise _Poison(f"body is not JSON: {exc}") from exc
    if isinstance(payload, dict) and payload.get("Type") == "Notification":
        inner = payload.get("Message")
        if not isinstance(inner, str):
            raise _Poison("SNS envelope without a Message string")
        return _payload(inner)
    return payload


def parse_message_body(
    body: str, *, bucket: str, prefix: str = "", object_details: bool = True
) -> MessageParse:
    """Parse one SQS message body for the reader of ``s3://bucket/prefix``.

    Never raises on bad input: a message that is not a valid object-created event of that
    bucket and prefix comes back with ``poison`` set to the reason. Every record of a message
    must be valid, or the whole message is poison (it is redriven whole). With
    ``object_details=False`` a record may lack ``eventSource``, ``eventTime`` and the object's
    ``size`` (present ones are still checked).
    """
    try:
        payload = _payload(body)
        if isinstance(payload, dict) and payload.get("Event") == TEST_EVENT:
            return MessageParse(test_event=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("Records"), list):
            raise _Poison("body has no Records list")
        if not payload["Records"]:
            raise _Poison("body has an empty Records list")
        events = tuple(_record(r, bucket, prefix, object_details) for r in payload["Records"])
    except _Poison as exc:
        return MessageParse(poison=str(exc))
    return MessageParse(events=events)
