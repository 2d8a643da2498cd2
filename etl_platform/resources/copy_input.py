"""The bytes a ``COPY FROM STDIN`` reads, from one S3 object: gzip CSV inflated as it
downloads, or Parquet written out as the platform's CSV (``core/warehouse/parquet_csv.py``)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO

from etl_platform.core.warehouse.parquet_csv import parquet_csv_chunks

try:  # ISA-L inflate: same gzip format, ~3x faster than zlib
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover
    import gzip as _gzip  # type: ignore[no-redef]

COPY_CHUNK_BYTES = 1024 * 1024


def gunzipped_chunks(open_body: Callable[[], IO[bytes]], uri: str) -> Iterator[bytes]:
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
