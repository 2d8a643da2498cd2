"""What the platform asks of an object store, as a type: the S3 resource provides it, and the
resources that read or write objects (the warehouse's loads, pg_dump/pg_restore) take it, so no
resource imports another."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, Protocol


class ObjectStore(Protocol):
    def client(self) -> Any: ...

    def upload_stream(
        self, fileobj: IO[bytes], bucket: str, key: str, content_type: str | None = None
    ) -> int: ...

    def put_bytes(self, data: bytes, bucket: str, key: str) -> None: ...

    def get_bytes(self, bucket: str, key: str) -> bytes | None: ...

    def open_stream(self, bucket: str, key: str) -> IO[bytes]: ...

    def list_objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]: ...

    def delete_keys(self, bucket: str, keys: list[str]) -> None: ...
