"""The S3 objects of a dump archive: upload a local archive directory (manifest last), read a
manifest, download an archive, copy unchanged table files server-side, delete a dump. Every
object written requests server-side encryption. Uploads and downloads log their bytes of the
archive's total to the run log (:class:`StepProgress`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import ProgressCallbackInvoker, TransferManager, create_transfer_manager
from s3transfer.futures import TransferFuture

from etl_platform.core.s3_layout import s3_uri
from etl_platform.core.scrub.layout import MANIFEST, dump_object_key, dump_root
from etl_platform.resources import AwsAddress, ObjectStoreResource, naming_aws_settings

from ..progress import QUIET, HasLog, StepProgress


@dataclass(frozen=True)
class DumpLocation:
    """One dump archive in S3: ``s3://bucket/prefix/dump_key/``; ``setting`` names the
    instance setting holding the bucket (``extract_bucket``/``load_bucket``) for errors."""

    bucket: str
    prefix: str
    dump_key: str
    setting: str | None = None

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


@contextmanager
def archive_transfers(store: ObjectStoreResource) -> Iterator[TransferManager]:
    """One s3transfer manager for all the files of an archive: its threads and in-memory
    parts (``max_concurrency`` × ``multipart_chunk_mb``) bound the whole transfer, not each
    file (a manager per file multiplied them by the files in flight). Files are transferred
    by name: parts are read from and written to disk as they are sent or received."""
    with create_transfer_manager(store.client(), store._transfer_config()) as manager:
        yield manager


def _await_each(
    store: ObjectStoreResource,
    where: DumpLocation,
    transfers: list[tuple[str, TransferFuture]],
    verb: str,
) -> None:
    """Wait for every transfer; a failure names its object and the bucket's setting."""
    for key, future in transfers:
        address = AwsAddress(where.setting, where.bucket, key=key)
        with naming_aws_settings(
            f"s3 {verb} {s3_uri(where.bucket, key)}", store.endpoint_url, address
        ):
            future.result()


def archive_bytes(directory: Path) -> int:
    """Bytes of the files in ``directory`` so far (0 before it exists): what a running pg_dump
    has written."""
    total = 0
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            total += entry.stat().st_size
        except FileNotFoundError:
            continue
    return total


def put_manifest(
    store: ObjectStoreResource, where: DumpLocation, manifest: dict[str, Any], sse: dict
) -> None:
    body = json.dumps(manifest, sort_keys=True, indent=1).encode()
    address = AwsAddress(where.setting, where.bucket)
    key = where.key(MANIFEST)
    with naming_aws_settings(f"s3 put s3://{where.bucket}/{key}", store.endpoint_url, address):
        store.client().put_object(
            Bucket=where.bucket, Key=key, Body=body, ContentType="application/json", **sse
        )


def upload_archive(
    store: ObjectStoreResource,
    directory: Path,
    where: DumpLocation,
    sse: dict,
    context: HasLog = QUIET,
) -> dict[str, int]:
    """Every file of the archive directory in parallel; returns ``{name: bytes}``. The caller
    writes the manifest after this returns (its creation announces the dump)."""
    files = sorted(p for p in directory.iterdir() if p.is_file())
    total = sum(p.stat().st_size for p in files)
    sent = StepProgress(context, f"upload of {len(files)} files to {where.uri}", "bytes", total)
    progress = [ProgressCallbackInvoker(sent.transferred)]
    with archive_transfers(store) as manager:
        transfers = [
            (key, manager.upload(str(path), where.bucket, key, dict(sse), progress))
            for path in files
            for key in [where.key(path.name)]
        ]
        _await_each(store, where, transfers, "upload to")
    sizes = {p.name: p.stat().st_size for p in files}
    sent.done()
    return sizes


def read_manifest(store: ObjectStoreResource, where: DumpLocation) -> dict[str, Any] | None:
    body = store.get_bytes(where.bucket, where.key(MANIFEST), setting=where.setting)
    return None if body is None else json.loads(body)


def archive_files(store: ObjectStoreResource, where: DumpLocation) -> dict[str, int]:
    """The archive's files but its manifest, ``{name: bytes}``."""
    listed = store.list_objects(where.bucket, where.root, setting=where.setting)
    files = {o["Key"][len(where.root) :]: int(o["Size"]) for o in listed}
    files.pop(MANIFEST, None)
    return files


def download_files(
    store: ObjectStoreResource,
    where: DumpLocation,
    names: list[str],
    directory: Path,
    context: HasLog = QUIET,
    total_bytes: int | None = None,
) -> int:
    """Download the named files of the archive into ``directory``; returns bytes."""
    what = f"download of {len(names)} files from {where.uri}"
    received = StepProgress(context, what, "bytes", total_bytes)
    progress = [ProgressCallbackInvoker(received.transferred)]
    with archive_transfers(store) as manager:
        transfers = [
            (key, manager.download(where.bucket, key, str(directory / name), None, progress))
            for name in names
            for key in [where.key(name)]
        ]
        _await_each(store, where, transfers, "download")
    nbytes = sum((directory / name).stat().st_size for name in names)
    received.done()
    return nbytes


def copy_object(
    store: ObjectStoreResource, source: DumpLocation, target: DumpLocation, name: str, sse: dict
) -> None:
    """Server-side copy of one unchanged file (no bytes through this process)."""
    address = AwsAddress(target.setting, target.bucket)
    copied = f"s3 copy of s3://{source.bucket}/{source.key(name)} to {target.uri}"
    with naming_aws_settings(copied, store.endpoint_url, address):
        store.client().copy(
            {"Bucket": source.bucket, "Key": source.key(name)},
            target.bucket,
            target.key(name),
            ExtraArgs=dict(sse),
        )


def delete_dump(store: ObjectStoreResource, where: DumpLocation) -> int:
    """Delete the manifest first (the dump stops counting as complete), then the rest."""
    keys = [o["Key"] for o in store.list_objects(where.bucket, where.root, setting=where.setting)]
    manifest = where.key(MANIFEST)
    if manifest in keys:
        store.delete_keys(where.bucket, [manifest], setting=where.setting)
    store.delete_keys(where.bucket, [k for k in keys if k != manifest], setting=where.setting)
    return len(keys)
