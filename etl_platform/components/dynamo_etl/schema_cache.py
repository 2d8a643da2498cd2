"""The data-schema cache in S3: immutable versions by fingerprint, and a ``latest`` pointer.

Every step that transforms items reads the latest version; the data-schemas step and an
evolving extract write a new version, then move the pointer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from etl_platform.core import s3_layout
from etl_platform.core.dynamo import DataSchemaSet
from etl_platform.core.s3_layout import s3_uri
from etl_platform.resources import ObjectStoreResource

if TYPE_CHECKING:
    from .component import DynamoTableEtl


def load_latest(config: DynamoTableEtl, s3: ObjectStoreResource) -> DataSchemaSet | None:
    """The version the ``latest`` pointer names, or None before the first data-schema run."""
    bucket = config.schema_cache_bucket
    latest = s3.get_bytes(
        bucket, s3_layout.data_schema_latest_key(config.schema_cache_prefix, config.instance)
    )
    if latest is None:
        return None
    version_key = json.loads(latest)["key"]
    body = s3.get_bytes(bucket, version_key)
    if body is None:
        raise RuntimeError(
            f"data-schema cache pointer names {s3_uri(bucket, version_key)}, which does not "
            "exist: re-materialize the data_schemas asset"
        )
    return DataSchemaSet.from_json(body)


def store(config: DynamoTableEtl, s3: ObjectStoreResource, schema_set: DataSchemaSet) -> str:
    """Write the version (immutable, by fingerprint) then move the ``latest`` pointer; returns
    the version's S3 URI."""
    bucket, prefix = config.schema_cache_bucket, config.schema_cache_prefix
    key = s3_layout.data_schema_version_key(prefix, config.instance, schema_set.fingerprint)
    s3.put_bytes(schema_set.to_json().encode(), bucket, key)
    pointer = {
        "key": key,
        "fingerprint": schema_set.fingerprint,
        "written_at": datetime.now(UTC).isoformat(),
    }
    s3.put_bytes(
        json.dumps(pointer).encode(),
        bucket,
        s3_layout.data_schema_latest_key(prefix, config.instance),
    )
    return s3_uri(bucket, key)
