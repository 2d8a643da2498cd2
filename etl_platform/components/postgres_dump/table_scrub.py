"""One table's data file through the scrub: S3 → gunzip (ISA-L) → chunks of whole rows → the
worker processes (rewrite of the ruled columns, residual fingerprints, gzip) → in order into
an S3 multipart upload. One big table is spread over every worker; memory is bounded by the
chunks in flight (``2 × workers``) and the parts being uploaded, not by the table.

A table that is copied unchanged (every column kept) is only scanned: its chunks go to the
workers for the residual scan and nothing is written (the step copies the file server-side).

Progress is counted here, in the step's process, as the compressed bytes of each data file
read from S3 (:class:`ScrubProgress`): the workers never log.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isal import isal_zlib

import etl_platform
from etl_platform.core.scrub import ResidualCounts
from etl_platform.core.scrub.chunks import ChunkResult, ChunkSpec
from etl_platform.core.scrub.copy_text import RowChunks
from etl_platform.core.scrub.fingerprints import FingerprintSample

from ..progress import HasLog, StepProgress
from . import scrub_worker
from .multipart import MultipartWriter

READ_BYTES = 256 << 10
BLOCK = 1 << 20
CHUNK_BYTES = 256 << 10
GZIP_WBITS = 31
EMPTY_TABLE_DATA = b"\\.\n\n\n"


class ScrubWorkerError(RuntimeError):
    """A worker failed on a chunk or exited; the message names the table, never a value."""


class ScrubWorkers:
    """``count`` worker processes (see :mod:`.scrub_worker`), one chunk at a time each."""

    def __init__(
        self, count: int, specs: list[ChunkSpec], key: bytes, seed: int, level: int = 1
    ) -> None:
        root = str(Path(etl_platform.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env["PYTHONHASHSEED"] = str(seed)  # one per scrub: fingerprints compare across pools
        self.specs = specs
        self._processes = [
            subprocess.Popen(
                [sys.executable, "-P", scrub_worker.__file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            for _ in range(max(1, count))
        ]
        self._idle: queue.SimpleQueue[subprocess.Popen[bytes]] = queue.SimpleQueue()
        for process in self._processes:
            scrub_worker.write_frame(process.stdin, (specs, key, level))  # type: ignore[arg-type]
            self._idle.put(process)
        self._threads = ThreadPoolExecutor(len(self._processes), "scrub-worker")
        self.count = len(self._processes)
        self._probe: int | None = None

    def submit(self, table: int, rows: bytes, rewrite: bool) -> Future[ChunkResult]:
        return self._threads.submit(self._run, table, rows, rewrite)

    def _run(self, table: int, rows: bytes, rewrite: bool) -> ChunkResult:
        process = self._idle.get()
        try:
            scrub_worker.write_frame(process.stdin, (table, rows, rewrite))  # type: ignore[arg-type]
            reply = scrub_worker.read_frame(process.stdout)  # type: ignore[arg-type]
        except OSError:
            reply = None
        finally:
            self._idle.put(process)
        name = self.specs[table].table
        if reply is None:
            raise ScrubWorkerError(f"scrub worker exited while scrubbing {name}")
        if isinstance(reply, tuple):
            raise ScrubWorkerError(f"scrub of {name} failed: {reply[1]}")
        if self._probe is None:
            self._probe = reply.probe
        if reply.probe != self._probe:
            raise ScrubWorkerError("scrub workers disagree on value fingerprints (hash seed)")
        return reply

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        for process in self._processes:
            if process.stdin:
                process.stdin.close()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> ScrubWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class TableOutcome:
    """What one table's pass produced (rows, bytes, residual counts), values never."""

    table: str
    rows_before: int = 0
    rows: int = 0
    text_bytes: int = 0
    clean_bytes: int = 0
    seconds: float = 0.0
    counts: ResidualCounts = field(default_factory=ResidualCounts)


def gunzip_blocks(
    body: Any,
    read_size: int = READ_BYTES,
    out_size: int = BLOCK,
    on_read: Callable[[int], Any] | None = None,
) -> Iterator[bytes]:
    """Decompress a gzip stream (members concatenated are fine) in blocks of at most
    ``out_size`` bytes, however well the data compresses; ``on_read(n)`` after each read of
    ``n`` compressed bytes."""
    inflater = isal_zlib.decompressobj(GZIP_WBITS)
    while True:
        chunk = body.read(read_size)
        if not chunk:
            break
        if on_read is not None:
            on_read(len(chunk))
        while chunk:
            out = inflater.decompress(chunk, out_size)
            if out:
                yield out
            chunk = inflater.unconsumed_tail
            if not chunk and inflater.unused_data:
                chunk = inflater.unused_data
                inflater = isal_zlib.decompressobj(GZIP_WBITS)
    tail = inflater.flush()
    if tail:
        yield tail


@dataclass(frozen=True)
class TableStream:
    """One table's file: where it is read from and, unless only scanned, written to."""

    index: int
    table: str
    raw_bucket: str
    raw_key: str
    clean_bucket: str | None = None  # None: scan only
    clean_key: str | None = None
    sse: dict[str, str] = field(default_factory=dict)


def stream_table(
    client: Any,
    workers: ScrubWorkers,
    job: TableStream,
    sample: FingerprintSample,
    part_mb: int = 5,
    on_read: Callable[[int], Any] | None = None,
) -> TableOutcome:
    """Read, scrub (or scan) and write one table's data file; the residual fingerprints go to
    ``sample``, pattern and identity counts to the outcome. ``on_read`` counts the compressed
    bytes read."""
    started = time.monotonic()
    outcome = TableOutcome(job.table)
    rewrite = job.clean_key is not None
    body = client.get_object(Bucket=job.raw_bucket, Key=job.raw_key)["Body"]
    writer = (
        MultipartWriter(client, job.clean_bucket, job.clean_key, job.sse, part_mb << 20)
        if rewrite
        else None
    )
    try:
        blocks = gunzip_blocks(body, on_read=on_read)
        tail = _pump(blocks, workers, job, outcome, sample, writer.write if writer else None)
        if writer:
            writer.write(isal_zlib.compress(tail or EMPTY_TABLE_DATA, 1, wbits=GZIP_WBITS))
            outcome.clean_bytes = writer.close()
    except BaseException:
        if writer:
            writer.abort()
        raise
    outcome.rows = outcome.rows_before
    outcome.seconds = time.monotonic() - started
    return outcome


def _pump(
    blocks: Iterator[bytes],
    workers: ScrubWorkers,
    job: TableStream,
    outcome: TableOutcome,
    sample: FingerprintSample,
    write: Callable[[bytes], None] | None,
) -> bytes:
    """Chunks to the workers, at most ``2 × workers`` in flight, results taken in order."""
    chunks = RowChunks(CHUNK_BYTES)
    pending: deque[Future[ChunkResult]] = deque()

    def take() -> None:
        result = pending.popleft().result()
        _merge(result, outcome, sample)
        if write and result.gzip:
            write(result.gzip)

    for block in blocks:
        for rows in chunks.feed(block):
            while len(pending) >= 2 * workers.count:
                take()
            pending.append(workers.submit(job.index, rows, write is not None))
    last = chunks.finish()
    if last:
        pending.append(workers.submit(job.index, last, write is not None))
    while pending:
        take()
    return chunks.tail


def _merge(result: ChunkResult, outcome: TableOutcome, sample: FingerprintSample) -> None:
    outcome.rows_before += result.rows
    outcome.text_bytes += result.text_bytes
    outcome.counts.hits.update(result.hits)
    outcome.counts.fields_scanned += result.fields_scanned
    if result.originals:
        sample.add_originals(result.originals)
    for column, data in result.checked.items():
        sample.add_checked(column, data)


def count_rows(
    client: Any, bucket: str, key: str, on_read: Callable[[int], Any] | None = None
) -> int:
    """Rows of a data file without scrubbing it (a truncated table's count before)."""
    chunks = RowChunks(CHUNK_BYTES)
    rows = 0
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for block in gunzip_blocks(body, on_read=on_read):
        rows += sum(c.count(b"\n") for c in chunks.feed(block))
    return rows + chunks.finish().count(b"\n")


class ScrubProgress:
    """The scrub's progress in the run log: compressed bytes of the data files read, of their
    total (``sizes``: the archive's file sizes, from its manifest or listing), overall and per
    table, and tables done of the total."""

    def __init__(self, context: HasLog, what: str, sizes: dict[str, int], files: list[str]):
        self.context, self.what, self.sizes = context, what, sizes
        known = all(name in sizes for name in files)
        total = sum(sizes[name] for name in files) if known else None
        self.bytes = StepProgress(context, what, "bytes", total)
        self.tables = StepProgress(context, what, "tables", len(files))

    def table(self, table: str, data_file: str) -> Callable[[int], None]:
        """The ``on_read`` of one table's data file."""
        reporter = StepProgress(
            self.context, f"{self.what}, table {table}", "bytes", self.sizes.get(data_file)
        )

        def on_read(n: int) -> None:
            reporter.tick(n)
            self.bytes.tick(n)

        return on_read

    def table_done(self) -> None:
        self.tables.tick()

    def done(self) -> None:
        self.bytes.done()
        self.tables.done()
