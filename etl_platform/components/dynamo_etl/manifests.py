"""Segment manifests: the ``_manifest.json`` an extract writes last, next to its CSV objects.

Its presence means the segment's objects are complete; it is the only pointer to the current
extract (a run-unique prefix), lists its objects with their row counts, the extract id and the
data-schema they were written with. Staging and publish read nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg

from etl_platform.core import s3_layout
from etl_platform.core.s3_layout import s3_uri
from etl_platform.resources import ObjectStoreResource

if TYPE_CHECKING:
    from .component import DynamoTableEtl


def manifest_key(config: DynamoTableEtl, day: date, segment: int) -> str:
    return s3_layout.segment_manifest_key(config.data_prefix, config.instance, day, segment)


def read(config: DynamoTableEtl, s3: ObjectStoreResource, day: date, segment: int) -> dict:
    """The segment's manifest; a non-retried failure naming its S3 URI when it is missing (the
    extract has not run, or was interrupted)."""
    key = manifest_key(config, day, segment)
    body = s3.get_bytes(config.data_bucket, key, setting="data_bucket")
    if body is None:
        raise dg.Failure(
            description=f"segment {segment} of {day} has no extract manifest at "
            f"{s3_uri(config.data_bucket, key)}: materialize segment_csv for partition "
            f"{day}|{segment} first",
            allow_retries=False,
        )
    return json.loads(body)


def write(
    config: DynamoTableEtl,
    s3: ObjectStoreResource,
    day: date,
    segment: int,
    manifest: dict[str, Any],
) -> str:
    """Write the manifest (last: it marks the segment complete); returns its S3 URI."""
    key = manifest_key(config, day, segment)
    s3.put_bytes(json.dumps(manifest).encode(), config.data_bucket, key, setting="data_bucket")
    return s3_uri(config.data_bucket, key)


def read_if_present(
    config: DynamoTableEtl, s3: ObjectStoreResource, day: date, segment: int
) -> dict | None:
    """The segment's manifest, or None before its first extract."""
    body = s3.get_bytes(
        config.data_bucket, manifest_key(config, day, segment), setting="data_bucket"
    )
    return None if body is None else json.loads(body)


def extract_of(manifest: dict[str, Any]) -> str:
    """The extract id a manifest points at (``""`` for manifests written before extract ids)."""
    return str(manifest.get("extract_id", ""))


def check_split(config: DynamoTableEtl, manifest: dict[str, Any], day: date, segment: int) -> None:
    """A non-retried failure when the segment was extracted under another ``total_segments``:
    segments of two splits overlap (or leave gaps), so they are never published together."""
    extracted = int(manifest.get("total_segments", config.total_segments))
    if extracted != config.total_segments:
        raise dg.Failure(
            description=f"segment {segment} of {day} was extracted with total_segments="
            f"{extracted}, but the instance has total_segments={config.total_segments}: "
            f"re-extract and re-stage every segment of {day} under the new split",
            allow_retries=False,
        )


def expected_rows(manifests: Iterable[dict[str, Any]], tables: Iterable[str]) -> dict[str, int]:
    """Rows per warehouse table summed over the segments' manifests (0 for known tables no
    segment wrote)."""
    expected = dict.fromkeys(tables, 0)
    for manifest in manifests:
        for table, entry in manifest["objects"].items():
            expected[table] = expected.get(table, 0) + entry["rows"]
    return expected
