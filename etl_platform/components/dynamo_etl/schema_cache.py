"""The data-schema cache in S3: immutable versions by fingerprint, and a ``latest`` pointer.

Every step that transforms items reads the latest version; the data-schemas step and an
evolving extract write a new version, then move the pointer with a conditional write on its
ETag, re-reading and re-merging when another writer moved it first: no update is lost.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from etl_platform.core import s3_layout
from etl_platform.core.dynamo import DataSchemaSet
from etl_platform.core.s3_layout import s3_uri
from etl_platform.resources import ObjectStoreResource

if TYPE_CHECKING:
    from .component import DynamoTableEtl

#: the setting that names the cache's bucket (errors name it)
SETTING = "schema_cache_bucket"
#: conditional writes of the ``latest`` pointer before giving up (with jittered backoff)
UPDATE_ATTEMPTS = 10


def ensure_buckets(config: DynamoTableEtl, s3: ObjectStoreResource) -> None:
    """With ``create_buckets``, create the data and schema cache buckets if missing."""
    if config.create_buckets:
        s3.ensure_bucket(config.schema_cache_bucket, setting=SETTING)
        s3.ensure_bucket(config.data_bucket, setting="data_bucket")


def load_latest(config: DynamoTableEtl, s3: ObjectStoreResource) -> DataSchemaSet | None:
    """The version the ``latest`` pointer names, or None before the first data-schema run."""
    bucket = config.schema_cache_bucket
    latest_key = s3_layout.data_schema_latest_key(config.schema_cache_prefix, config.instance)
    latest = s3.get_bytes(bucket, latest_key, setting=SETTING)
    if latest is None:
        return None
    return _version(s3, bucket, json.loads(latest)["key"])


def _version(s3: ObjectStoreResource, bucket: str, version_key: str) -> DataSchemaSet:
    body = s3.get_bytes(bucket, version_key, setting=SETTING)
    if body is None:
        raise RuntimeError(
            f"data-schema cache pointer names {s3_uri(bucket, version_key)}, which does not "
            "exist: re-materialize the data_schemas asset"
        )
    return DataSchemaSet.from_json(body)


def update(
    config: DynamoTableEtl,
    s3: ObjectStoreResource,
    change: Callable[[DataSchemaSet | None], DataSchemaSet],
) -> tuple[DataSchemaSet, str]:
    """Apply ``change`` to the latest version and store the result, losing no concurrent
    update: the version is written (immutable, by fingerprint), then the ``latest`` pointer is
    replaced only if it is still the one read (S3 conditional write on its ETag). When another
    writer moved it first, the new latest is read and ``change`` applied again, up to
    ``UPDATE_ATTEMPTS`` times. Returns the stored version and its S3 URI."""
    bucket, prefix = config.schema_cache_bucket, config.schema_cache_prefix
    latest_key = s3_layout.data_schema_latest_key(prefix, config.instance)
    for attempt in range(UPDATE_ATTEMPTS):
        pointer, etag = s3.get_bytes_and_etag(bucket, latest_key, setting=SETTING)
        latest = None if pointer is None else _version(s3, bucket, json.loads(pointer)["key"])
        schema_set = change(latest)
        key = s3_layout.data_schema_version_key(prefix, config.instance, schema_set.fingerprint)
        s3.put_bytes(schema_set.to_json().encode(), bucket, key, setting=SETTING)
        moved = {
            "key": key,
            "fingerprint": schema_set.fingerprint,
            "written_at": datetime.now(UTC).isoformat(),
        }
        if s3.put_bytes_if_unchanged(
            json.dumps(moved).encode(), bucket, latest_key, etag, setting=SETTING
        ):
            return schema_set, s3_uri(bucket, key)
        time.sleep(random.uniform(0, 0.05 * 2**attempt))
    raise RuntimeError(
        f"data-schema cache pointer {s3_uri(bucket, latest_key)} kept changing under "
        f"{UPDATE_ATTEMPTS} attempts to update it: too many concurrent writers"
    )


def store(config: DynamoTableEtl, s3: ObjectStoreResource, schema_set: DataSchemaSet) -> str:
    """Make ``schema_set`` the latest version, whatever the pointer names now; its S3 URI."""
    return update(config, s3, lambda _latest: schema_set)[1]
