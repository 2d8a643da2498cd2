"""An S3 multipart upload written in order from a stream of byte strings: a part of
``part_size`` bytes goes up on a thread while the caller goes on filling the next one, so at
most two parts are held (the scrub produces a part in about half a second and sends one in a
fraction of that). Every part but the last is at least 5 MiB, as S3 requires.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

MIN_PART = 5 << 20


class MultipartWriter:
    def __init__(
        self, client: Any, bucket: str, key: str, extra: dict[str, str], part_size: int
    ) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.part_size = max(part_size, MIN_PART)
        self._upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)[
            "UploadId"
        ]
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._pending: deque[Future[dict[str, Any]]] = deque()
        self._threads = ThreadPoolExecutor(1, "multipart")
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.bytes += len(data)
        if len(self._buffer) >= self.part_size:
            self._flush()

    def _flush(self) -> None:
        body, self._buffer = self._buffer, bytearray()  # handed over, not copied
        number = len(self._parts) + len(self._pending) + 1
        while self._pending:
            self._parts.append(self._pending.popleft().result())
        self._pending.append(self._threads.submit(self._upload, number, body))

    def _upload(self, number: int, body: bytearray) -> dict[str, Any]:
        response = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def close(self) -> int:
        """Upload what is left and complete the object; returns its size."""
        if self._buffer or not (self._parts or self._pending):
            self._flush()
        while self._pending:
            self._parts.append(self._pending.popleft().result())
        self._threads.shutdown()
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        return self.bytes

    def abort(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        self.client.abort_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
        )
