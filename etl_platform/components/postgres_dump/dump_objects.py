"""The S3 objects of a dump archive: upload a local archive directory (manifest last), read a
manifest, download an archive, copy unchanged table files server-side, delete a dump. Every
object written requests server-side encryption."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl_platform.core.scrub.layout import MANIFEST, dump_object_key, dump_root
from etl_platform.resources import ObjectStoreResource

UPLOAD_THREADS = 4


@dataclass(frozen=True)
class DumpLocation:
    """One dump archive in S3: ``s3://bucket/prefix/dump_key/``."""

    bucket: str
    prefix: str
    dump_key: str

    def key(self, name: str) -> str:
        return dump_object_key(self.prefix, self.dump_key, name)

    @property
    def root(self) -> str:
        return dump_root(self.prefix, self.dump_key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.root}"


def encryption_args(kms_key_id: str | None) -> dict[str, str]:
    """SSE-KMS with the configured key, else SSE-S3 (AES256)."""
    if kms_key_id:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    return {"ServerSideEncryption": "AES256"}


def upload_file(store: ObjectStoreResource, path: Path, bucket: str, key: str, sse: dict) -> int:
    """By file name: s3transfer reads each part from disk as it sends it (a file object's
    parts are buffered in memory instead)."""
    store.client().upload_file(
        str(path), bucket, key, ExtraArgs=dict(sse), Config=store._transfer_config()
    )
    return path.stat().st_size


def put_manifest(
    store: ObjectStoreResource, where: DumpLocation, manifest: dict[str, Any], sse: dict
) -> None:
    body = json.dumps(manifest, sort_keys=True, indent=1).encode()
    store.client().put_object(
        Bucket=where.bucket,
        Key=where.key(MANIFEST),
        Body=body,
        ContentType="application/json",
        **sse,
    )


def upload_archive(
    store: ObjectStoreResource, directory: Path, where: DumpLocation, sse: dict
) -> dict[str, int]:
    """Every file of the archive directory in parallel; returns ``{name: bytes}``. The caller
    writes the manifest after this returns (its creation announces the dump)."""
    files = sorted(p for p in directory.iterdir() if p.is_file())
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        sizes = pool.map(
            lambda p: upload_file(store, p, where.bucket, where.key(p.name), sse), files
        )
        return dict(zip((p.name for p in files), sizes, strict=True))


def read_manifest(store: ObjectStoreResource, where: DumpLocation) -> dict[str, Any] | None:
    body = store.get_bytes(where.bucket, where.key(MANIFEST))
    return None if body is None else json.loads(body)


def download_files(
    store: ObjectStoreResource, where: DumpLocation, names: list[str], directory: Path
) -> int:
    """Download the named files of the archive into ``directory``; returns bytes."""

    def one(name: str) -> int:
        target = directory / name
        store.client().download_file(
            where.bucket, where.key(name), str(target), Config=store._transfer_config()
        )
        return target.stat().st_size

    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        return sum(pool.map(one, names))


def copy_object(
    store: ObjectStoreResource, source: DumpLocation, target: DumpLocation, name: str, sse: dict
) -> None:
    """Server-side copy of one unchanged file (no bytes through this process)."""
    store.client().copy(
        {"Bucket": source.bucket, "Key": source.key(name)},
        target.bucket,
        target.key(name),
        ExtraArgs=dict(sse),
    )


def delete_dump(store: ObjectStoreResource, where: DumpLocation) -> int:
    """Delete the manifest first (the dump stops counting as complete), then the rest."""
    keys = [o["Key"] for o in store.list_objects(where.bucket, where.root)]
    manifest = where.key(MANIFEST)
    if manifest in keys:
        store.delete_keys(where.bucket, [manifest])
    store.delete_keys(where.bucket, [k for k in keys if k != manifest])
    return len(keys)
