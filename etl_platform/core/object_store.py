"""What the platform asks of an object store, as a type: the S3 resource provides it, and the
resources that read or write objects (the warehouse's loads, pg_dump/pg_restore) take it, so no
resource imports another."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, Protocol


class ObjectStore(Protocol):
    """``setting`` names the setting that holds ``bucket``; errors about a missing or forbidden
    bucket or key name both (``data_bucket 'x': no such bucket``)."""

    def client(self) -> Any: ...

    def upload_stream(
        self,
        fileobj: IO[bytes],
        bucket: str,
        key: str,
        content_type: str | None = None,
        *,
        setting: str | None = None,
    ) -> int: ...

    def put_bytes(
        self, data: bytes, bucket: str, key: str, *, setting: str | None = None
    ) -> None: ...

    def get_bytes(self, bucket: str, key: str, *, setting: str | None = None) -> bytes | None: ...

    def open_stream(self, bucket: str, key: str, *, setting: str | None = None) -> IO[bytes]: ...

    def tail_bytes(
        self, bucket: str, key: str, count: int, *, setting: str | None = None
    ) -> bytes: ...

    def object_size(self, bucket: str, key: str, *, setting: str | None = None) -> int: ...

    def list_objects(
        self, bucket: str, prefix: str, *, setting: str | None = None
    ) -> Iterator[dict[str, Any]]: ...

    def delete_keys(self, bucket: str, keys: list[str], *, setting: str | None = None) -> None: ...
