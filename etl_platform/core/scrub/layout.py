"""Where a dump archive lives in S3 and how its S3 events are read.

A dump is a pg_dump directory archive under ``PREFIX/DUMP_KEY/`` (``toc.dat`` and one
``NNNN.dat.gz`` per table) whose ``manifest.json`` is written last: the manifest's creation is
the event that announces a complete dump, and the same layout holds the clean dump in the load
bucket. ``DUMP_KEY`` is the dump's dynamic partition key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

MANIFEST = "manifest.json"
TOC = "toc.dat"
_DUMP_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._=+:-]{0,127}$")


class DumpEventError(ValueError):
    """An SQS message that is not an object-created event for the configured bucket/prefix."""


def dump_root(prefix: str, dump_key: str) -> str:
    return f"{prefix.strip('/')}/{dump_key}/" if prefix.strip("/") else f"{dump_key}/"


def dump_object_key(prefix: str, dump_key: str, name: str) -> str:
    return dump_root(prefix, dump_key) + name


def valid_dump_key(dump_key: str) -> bool:
    return bool(_DUMP_KEY.match(dump_key))


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    etag: str

    def dump_key(self, prefix: str) -> str | None:
        """The dump this manifest announces, or None for any other object of a dump."""
        root = prefix.strip("/")
        rest = self.key[len(root) + 1 :] if root else self.key
        parts = rest.split("/")
        if len(parts) == 2 and parts[1] == MANIFEST and valid_dump_key(parts[0]):
            return parts[0]
        return None


def parse_dump_event(body: str, bucket: str, prefix: str) -> list[ObjectCreated] | None:
    """The object-created records of one SQS message body; ``None`` for ``s3:TestEvent``.
    Raises :class:`DumpEventError` for anything else (not JSON, other events, another bucket,
    a key outside the prefix): such messages stay in the queue and end in the DLQ."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise DumpEventError("message body is not JSON") from exc
    if not isinstance(message, dict):
        raise DumpEventError("message body is not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return None
    records = message.get("Records")
    if not isinstance(records, list) or not records:
        raise DumpEventError("message has no Records")
    root = prefix.strip("/")
    created = []
    for record in records:
        try:
            name = record["eventName"]
            obj = record["s3"]["object"]
            record_bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(obj["key"])
        except (KeyError, TypeError) as exc:
            raise DumpEventError(f"record without {exc}") from exc
        if not str(name).startswith("ObjectCreated"):
            raise DumpEventError(f"event {name!r} is not an object-created event")
        if record_bucket != bucket:
            raise DumpEventError(f"event for bucket {record_bucket!r}, expected {bucket!r}")
        if root and not key.startswith(root + "/"):
            raise DumpEventError(f"key {key!r} is outside prefix {root!r}")
        created.append(ObjectCreated(record_bucket, key, str(obj.get("eTag", "")).strip('"')))
    return created
