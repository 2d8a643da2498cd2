"""One table's data file through the scrub, in a worker process: S3 → gunzip (ISA-L) → COPY
text rewrite of the ruled fields → gzip (ISA-L) → S3 multipart upload. Bytes stream through in
blocks; nothing is held whole. The residual scan's second pass reads a clean file the same way.

Workers are processes (the rewrite is CPU-bound Python); each builds its own S3 client from
:class:`S3Settings` and shares nothing with the step's threads.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from boto3.s3.transfer import TransferConfig
from isal import isal_zlib

from etl_platform.core.scrub import (
    CopyDataRewriter,
    OriginalValues,
    ResidualCounts,
    ResidualScanner,
    TablePlan,
    column_rewrite,
    display_name,
)
from etl_platform.core.scrub.copy_text import FieldRewrite
from etl_platform.resources.aws_client import boto3_client

BLOCK = 1 << 20
GZIP_WBITS = 31
EMPTY_TABLE_DATA = b"\\.\n\n\n"


@dataclass(frozen=True)
class S3Settings:
    """What a worker needs to build its own client (credentials come from its environment)."""

    region_name: str | None
    endpoint_url: str | None
    multipart_chunk_mb: int = 8

    def client(self) -> Any:
        return boto3_client(
            "s3", region_name=self.region_name, endpoint_url=self.endpoint_url, max_attempts=8
        )


@dataclass(frozen=True)
class TableScrubJob:
    s3: S3Settings
    plan: TablePlan
    raw_bucket: str
    raw_key: str
    clean_bucket: str
    clean_key: str
    sse: dict[str, str]
    hmac_key: bytes = field(repr=False)
    sample_fraction: float = 1.0
    max_original_values: int = 2_000_000


@dataclass
class TableScrubResult:
    table: str
    rows_before: int
    rows: int
    raw_bytes: int
    text_bytes: int
    clean_bytes: int
    seconds: float
    originals: set[bytes] = field(repr=False)
    identity: ResidualCounts
    sampled: bool


def gunzip_blocks(body: Any) -> Iterator[bytes]:
    """Decompress a gzip stream (members concatenated are fine) block by block."""
    inflater = isal_zlib.decompressobj(GZIP_WBITS)
    while True:
        chunk = body.read(BLOCK)
        if not chunk:
            break
        while chunk:
            out = inflater.decompress(chunk)
            if out:
                yield out
            chunk = inflater.unused_data
            if chunk:
                inflater = isal_zlib.decompressobj(GZIP_WBITS)
    tail = inflater.flush()
    if tail:
        yield tail


class _CountingBody:
    def __init__(self, body: Any) -> None:
        self.body, self.bytes = body, 0

    def read(self, size: int = -1) -> bytes:
        data = self.body.read(size)
        self.bytes += len(data)
        return data


class _GzipStream(io.RawIOBase):
    """A readable file of the gzip of an iterator's blocks (what ``upload_fileobj`` reads)."""

    def __init__(self, blocks: Iterator[bytes], level: int = 1) -> None:
        self._blocks = blocks
        self._deflater = isal_zlib.compressobj(level, isal_zlib.DEFLATED, GZIP_WBITS)
        self._buffer = b""
        self._done = False
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer and not self._done:
            block = next(self._blocks, None)
            if block is None:
                self._buffer, self._done = self._deflater.flush(), True
            else:
                self._buffer = self._deflater.compress(block)
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        self.bytes += size
        return size


def _rewrites(
    job: TableScrubJob, originals: OriginalValues, identity: ResidualCounts
) -> dict[int, FieldRewrite]:
    rewrites: dict[int, FieldRewrite] = {}
    for index, (column, rule) in enumerate(job.plan.rules.items()):
        rewrite = column_rewrite(rule, job.hmac_key)
        if rewrite is not None:
            name = display_name(job.plan.table.qualified, column)
            rewrites[index] = originals.wrap(rewrite, name, identity)
    return rewrites


def scrub_table_file(job: TableScrubJob) -> TableScrubResult:
    """Rewrite one table's data file from the raw archive into the clean one."""
    started = time.monotonic()
    client = job.s3.client()
    identity = ResidualCounts()
    originals = OriginalValues(job.sample_fraction, job.max_original_values)
    rewriter = CopyDataRewriter(_rewrites(job, originals, identity))
    raw = _CountingBody(client.get_object(Bucket=job.raw_bucket, Key=job.raw_key)["Body"])
    text_bytes = 0

    def clean_blocks() -> Iterator[bytes]:
        nonlocal text_bytes
        for block in gunzip_blocks(raw):
            text_bytes += len(block)
            out = rewriter.feed(block)
            originals.trim()
            if not job.plan.truncate and out:
                yield out
        if job.plan.truncate:
            yield EMPTY_TABLE_DATA
        else:
            yield rewriter.finish()

    mb = 1 << 20
    config = TransferConfig(multipart_chunksize=job.s3.multipart_chunk_mb * mb, max_concurrency=2)
    stream = _GzipStream(clean_blocks())
    client.upload_fileobj(
        io.BufferedReader(stream, BLOCK),
        job.clean_bucket,
        job.clean_key,
        ExtraArgs=dict(job.sse),
        Config=config,
    )
    return TableScrubResult(
        table=job.plan.table.qualified,
        rows_before=rewriter.rows,
        rows=0 if job.plan.truncate else rewriter.rows,
        raw_bytes=raw.bytes,
        text_bytes=text_bytes,
        clean_bytes=stream.bytes,
        seconds=time.monotonic() - started,
        originals=originals.values,
        identity=identity,
        sampled=originals.sampled,
    )


@dataclass(frozen=True)
class TableScanJob:
    s3: S3Settings
    table: str
    bucket: str
    key: str
    columns: dict[int, str]  # index → table.column, scanned for originals
    pattern_columns: tuple[int, ...]
    originals: frozenset[bytes] = field(repr=False)


@dataclass
class TableScanResult:
    table: str
    rows: int
    counts: ResidualCounts


def scan_table_file(job: TableScanJob) -> TableScanResult:
    """Count the clean file's rows and scan its kept/masked text columns for residuals."""
    body = job.s3.client().get_object(Bucket=job.bucket, Key=job.key)["Body"]
    scanner = ResidualScanner(job.originals, job.columns, job.pattern_columns)
    counter = CopyDataRewriter({}, scanner.scan_fields if job.columns else None)
    for block in gunzip_blocks(body):
        counter.feed(block)
    counter.finish()
    return TableScanResult(job.table, counter.rows, scanner.counts)
