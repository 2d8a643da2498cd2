"""The bytes a ``COPY FROM STDIN`` reads, from one S3 object: gzip CSV inflated (a small
object in one piece on the calling thread, a larger one as it downloads, on a second thread),
or Parquet written out as the platform's CSV (``core/warehouse/parquet_csv.py``); and a Parquet
object's column order, from its footer alone (for Redshift's positional COPY from Parquet)."""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, cast

from etl_platform.core.object_store import ObjectStore
from etl_platform.core.s3_layout import split_s3_uri
from etl_platform.core.warehouse.parquet_csv import (
    PARQUET_TRAILER_BYTES,
    parquet_csv_chunks,
    parquet_file_columns,
    parquet_footer_size,
)

try:  # ISA-L inflate: same gzip format, ~3x faster than zlib
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover
    import gzip as _gzip  # type: ignore[no-redef]

COPY_CHUNK_BYTES = 1024 * 1024
#: A gzip object up to this size (compressed) is inflated in one piece on the calling thread:
#: for a small file a thread costs more than the overlap it buys.
SMALL_OBJECT_BYTES = 8 * 1024 * 1024


def _read_up_to(raw: IO[bytes], limit: int) -> bytes:
    """At most ``limit`` bytes of ``raw``: fewer only at its end."""
    parts, size = [], 0
    while size < limit and (part := raw.read(limit - size)):
        parts.append(part)
        size += len(part)
    return b"".join(parts)


class _Rejoined(io.RawIOBase):
    """The bytes already read from a stream, then the rest of it."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        super().__init__()
        self._head, self._rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._rest.close()
        super().close()


def gunzipped_chunks(open_body: Callable[[], IO[bytes]], uri: str) -> Iterator[bytes]:
    """Decompressed chunks of a gzip object. One of at most ``SMALL_OBJECT_BYTES`` is read and
    inflated here, in one piece; a larger one is downloaded and inflated on a second thread so
    the transfer overlaps the COPY."""
    try:
        raw = open_body()
        try:
            head = _read_up_to(raw, SMALL_OBJECT_BYTES + 1)
            small = len(head) <= SMALL_OBJECT_BYTES
            data = _gzip.decompress(head) if small else b""
        except BaseException:
            raw.close()
            raise
    except Exception as exc:
        raise RuntimeError(f"reading {uri} failed: {exc}") from exc
    if small:
        raw.close()
        yield data
        return
    rejoined = cast(IO[bytes], _Rejoined(head, raw))
    yield from _gunzipped_on_a_thread(lambda: rejoined, uri)


def _gunzipped_on_a_thread(open_body: Callable[[], IO[bytes]], uri: str) -> Iterator[bytes]:
    """Decompressed chunks of a gzip object, downloaded and inflated on a second thread so the
    transfer overlaps the COPY (both release the GIL); at most a few chunks are buffered."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)
    stop = threading.Event()

    def produce() -> None:
        try:
            raw = open_body()
            try:
                with _gzip.GzipFile(fileobj=raw) as body:
                    while not stop.is_set() and (chunk := body.read(COPY_CHUNK_BYTES)):
                        chunks.put(chunk)
            finally:
                raw.close()  # GzipFile leaves the S3 body (and its connection) open
            chunks.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            chunks.put(exc)

    worker = threading.Thread(target=produce, name=f"gunzip {uri}", daemon=True)
    worker.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise RuntimeError(f"reading {uri} failed: {item}") from item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                chunks.get_nowait()
            except queue.Empty:
                worker.join(0.05)


def parquet_object_csv_chunks(
    open_body: Callable[[], IO[bytes]], uri: str, columns: Sequence[str]
) -> Iterator[bytes]:
    """A Parquet object as CSV chunks of ``columns``. Parquet's footer is at the end, so the
    object is read whole (micro-batch files are bounded by the batching settings), then written
    out one record batch at a time."""
    raw = open_body()
    try:
        data = raw.read()
    finally:
        raw.close()
    yield from parquet_csv_chunks(data, columns, uri)


def parquet_object_columns(
    store: ObjectStore, uri: str, columns: Sequence[str], *, setting: str | None = None
) -> list[str]:
    """The Parquet object's column names in the file's order, read from its footer alone (two
    ranged GETs: the trailer, then footer and trailer), checked to be the target's
    ``columns``. For Redshift, whose COPY from Parquet maps columns by position."""
    bucket, key = split_s3_uri(uri)
    trailer = store.tail_bytes(bucket, key, PARQUET_TRAILER_BYTES, setting=setting)
    size = parquet_footer_size(trailer, uri)
    return parquet_file_columns(store.tail_bytes(bucket, key, size, setting=setting), columns, uri)
