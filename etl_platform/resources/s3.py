"""S3 on top of dagster-aws's ``S3Resource``: streaming upload and download, listing, deletes.

Uploads go through boto3's managed transfer, so anything over ``multipart_threshold_mb`` is a
multipart upload of bounded memory; an interrupted upload never leaves a partial object (S3
only makes the object visible when the upload completes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from boto3.s3.transfer import TransferConfig
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from etl_platform.core.s3_layout import s3_uri

from .aws_client import AwsAddress, client_for, naming_aws_settings


class ObjectStoreResource(S3Resource):
    """S3 for the pipelines: the client of dagster-aws, plus streaming helpers."""

    multipart_threshold_mb: int = 16
    multipart_chunk_mb: int = 8
    max_attempts: int = 8
    _client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        """S3 from the same factory as every other AWS client (adaptive retries, timeouts)."""
        if self._client is None:
            self._client = client_for(self, "s3")
        return self._client

    def _transfer_config(self) -> TransferConfig:
        mb = 1024 * 1024
        config = TransferConfig(
            multipart_threshold=self.multipart_threshold_mb * mb,
            multipart_chunksize=self.multipart_chunk_mb * mb,
            max_concurrency=4,
        )
        # Bound the read-ahead of non-seekable streams (pg_dump's stdout, CSV encoders): s3transfer
        # holds at most this many chunks in memory per transfer (default 10, and boto3's
        # TransferConfig does not take it as an argument).
        config.max_in_memory_upload_chunks = 4
        config.max_in_memory_download_chunks = 4
        # Downloads queue received 256 KB pieces for the thread writing the file: 16 of them
        # (4 MB) keep it busy; the default 100 held 25 MB per download.
        config.max_io_queue = 16
        return config

    def ensure_bucket(self, bucket: str, *, setting: str | None = None) -> None:
        client = self.client()
        with naming_aws_settings(
            f"s3 create bucket {bucket!r}", self.endpoint_url, AwsAddress(setting, bucket)
        ):
            try:
                client.head_bucket(Bucket=bucket)
            except client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    raise  # 403 and the like: not ours to create
                region = client.meta.region_name
                location = (
                    {"CreateBucketConfiguration": {"LocationConstraint": region}}
                    if region and region != "us-east-1"
                    else {}
                )
                client.create_bucket(Bucket=bucket, **location)

    def upload_stream(
        self,
        fileobj: IO[bytes],
        bucket: str,
        key: str,
        content_type: str | None = None,
        *,
        setting: str | None = None,
    ) -> int:
        """Stream a readable binary file object to ``s3://bucket/key``; returns the object size."""
        extra = {"ContentType": content_type} if content_type else None
        with naming_aws_settings(
            f"s3 upload to {s3_uri(bucket, key)}", self.endpoint_url, AwsAddress(setting, bucket)
        ):
            self.client().upload_fileobj(
                fileobj, bucket, key, ExtraArgs=extra, Config=self._transfer_config()
            )
            return int(self.client().head_object(Bucket=bucket, Key=key)["ContentLength"])

    def put_bytes(self, data: bytes, bucket: str, key: str, *, setting: str | None = None) -> None:
        address = AwsAddress(setting, bucket)
        with naming_aws_settings(f"s3 put {s3_uri(bucket, key)}", self.endpoint_url, address):
            self.client().put_object(Bucket=bucket, Key=key, Body=data)

    def get_bytes(self, bucket: str, key: str, *, setting: str | None = None) -> bytes | None:
        """The whole object, or None when it does not exist (small objects only)."""
        client = self.client()
        address = AwsAddress(setting, bucket)
        with naming_aws_settings(f"s3 get {s3_uri(bucket, key)}", self.endpoint_url, address):
            try:
                return client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except client.exceptions.NoSuchKey:
                return None

    def open_stream(self, bucket: str, key: str, *, setting: str | None = None) -> IO[bytes]:
        """A streaming body of the object: read it in chunks, never whole."""
        address = AwsAddress(setting, bucket, key)
        with naming_aws_settings(f"s3 get {s3_uri(bucket, key)}", self.endpoint_url, address):
            return self.client().get_object(Bucket=bucket, Key=key)["Body"]

    def tail_bytes(self, bucket: str, key: str, count: int, *, setting: str | None = None) -> bytes:
        """The object's last ``count`` bytes (all of it when shorter), by one ranged GET."""
        if count <= 0:
            raise ValueError(f"tail of {s3_uri(bucket, key)}: count must be > 0, got {count}")
        address = AwsAddress(setting, bucket, key)
        with naming_aws_settings(f"s3 get {s3_uri(bucket, key)}", self.endpoint_url, address):
            body = self.client().get_object(Bucket=bucket, Key=key, Range=f"bytes=-{count}")
            return body["Body"].read()

    def object_size(self, bucket: str, key: str, *, setting: str | None = None) -> int:
        """The object's size in bytes; a missing object is an error naming it."""
        address = AwsAddress(setting, bucket, key)
        with naming_aws_settings(f"s3 head {s3_uri(bucket, key)}", self.endpoint_url, address):
            return int(self.client().head_object(Bucket=bucket, Key=key)["ContentLength"])

    def download_to(
        self, bucket: str, key: str, fileobj: IO[bytes], *, setting: str | None = None
    ) -> None:
        """Stream the object into a writable binary file object (multipart ranged GETs)."""
        address = AwsAddress(setting, bucket, key)
        uri = s3_uri(bucket, key)
        with naming_aws_settings(f"s3 download {uri}", self.endpoint_url, address):
            self.client().download_fileobj(bucket, key, fileobj, Config=self._transfer_config())

    def list_objects(
        self, bucket: str, prefix: str, *, setting: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every object under the prefix (``Key``, ``Size``, ``ETag``...), paginated."""
        paginator = self.client().get_paginator("list_objects_v2")
        address = AwsAddress(setting, bucket)
        with naming_aws_settings(f"s3 list {s3_uri(bucket, prefix)}", self.endpoint_url, address):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                yield from page.get("Contents", [])

    def delete_keys(self, bucket: str, keys: list[str], *, setting: str | None = None) -> None:
        client = self.client()
        address = AwsAddress(setting, bucket)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            with naming_aws_settings(f"s3 delete in {bucket!r}", self.endpoint_url, address):
                client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})

    def get_bytes_and_etag(
        self, bucket: str, key: str, *, setting: str | None = None
    ) -> tuple[bytes | None, str | None]:
        """The whole object and its ETag, or ``(None, None)`` when it does not exist: read a
        pointer before replacing it with :meth:`put_bytes_if_unchanged`."""
        client = self.client()
        address = AwsAddress(setting, bucket)
        with naming_aws_settings(f"s3 get {s3_uri(bucket, key)}", self.endpoint_url, address):
            try:
                response = client.get_object(Bucket=bucket, Key=key)
            except client.exceptions.NoSuchKey:
                return None, None
            return response["Body"].read(), response["ETag"]

    def put_bytes_if_unchanged(
        self, data: bytes, bucket: str, key: str, etag: str | None, *, setting: str | None = None
    ) -> bool:
        """Replace the object only if it still has ``etag`` (``None``: only if it does not
        exist), with S3's conditional write (``If-Match`` / ``If-None-Match: *``). False when
        another writer replaced it first (412 Precondition Failed, or 409 for a concurrent
        conditional write): read it again and retry."""
        condition = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
        client = self.client()
        address = AwsAddress(setting, bucket)
        with naming_aws_settings(f"s3 put {s3_uri(bucket, key)}", self.endpoint_url, address):
            try:
                client.put_object(Bucket=bucket, Key=key, Body=data, **condition)
            except client.exceptions.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                raise
        return True
