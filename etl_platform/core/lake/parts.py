"""The Parquet part writer: record batches in, size-bounded Parquet parts out, each handed to a
sink as soon as it is closed. Memory is bounded by one row group plus the batch being added.

Batches accumulate into row groups (``row_group_rows`` / ``row_group_bytes`` of Arrow data) and
row groups into parts, closed once a part reaches ``part_bytes`` (checked after each row group) or
exactly ``part_rows`` rows. A day without rows still produces one part with zero rows, so a
partition always has a readable file whose schema is the table's. Parts are named
``part-00000.parquet`` upwards (:func:`etl_platform.core.s3_layout.part_name`).

Where a part's bytes live while it is written is the caller's choice (:class:`PartFiles`): in
memory by default; the lake's export step spools them to local files. Nothing here opens a file,
a connection or a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from etl_platform.core.s3_layout import part_name

from .read_back import read_back_check

DEFAULT_PART_BYTES = 128 * 1024 * 1024
"""Target size of one Parquet part (a part is closed at the first row group past it)."""
DEFAULT_ROW_GROUP_BYTES = 64 * 1024 * 1024
"""Arrow bytes buffered per row group: the main term of the export's peak memory."""
DEFAULT_ROW_GROUP_ROWS = 1_000_000
COMPRESSIONS = ("zstd", "snappy")


@dataclass(frozen=True)
class PartSettings:
    """How parts and row groups are cut and encoded; checked when built."""

    compression: str = "zstd"
    compression_level: int | None = None
    part_bytes: int | None = DEFAULT_PART_BYTES
    part_rows: int | None = None
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS
    use_dictionary: bool | Sequence[str] = True

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        for name, v in (("part_bytes", self.part_bytes), ("part_rows", self.part_rows)):
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be positive or None, got {v}")
        if self.row_group_bytes <= 0 or self.row_group_rows <= 0:
            raise ValueError("row_group_bytes and row_group_rows must be positive")


@dataclass(frozen=True)
class FinishedPart:
    """A closed Parquet part, handed to the sink: ``file`` reads its bytes from the start."""

    index: int
    name: str  # part-00000.parquet
    file: IO[bytes] | pa.NativeFile
    rows: int
    bytes: int
    path: Path | None = None  # a local file holding the part, when spooled (the sink may move it)


PartSink = Callable[[FinishedPart], str]
"""Where finished parts go: called once per part, in index order; returns the part's location
(an S3 key, a path). The part's file is closed and discarded after it returns."""


class PartFiles(Protocol):
    """Where a part's bytes are written while it is open."""

    def create(self, name: str) -> pa.NativeFile:
        """A new writable file for part ``name``."""
        ...

    def finished(self, name: str, file: pa.NativeFile) -> tuple[IO[bytes] | pa.NativeFile, Any]:
        """Close ``file`` (the Parquet footer is written) and return a readable file of the
        whole part and its local path (or None)."""
        ...

    def discard(self, name: str) -> None:
        """Forget part ``name`` (delivered or abandoned)."""
        ...


class MemoryPartFiles:
    """Parts held in memory: for tests and small exports (a part can be ``part_bytes`` large)."""

    def create(self, name: str) -> pa.NativeFile:
        return pa.BufferOutputStream()

    def finished(self, name: str, file: pa.NativeFile) -> tuple[pa.NativeFile, None]:
        return pa.BufferReader(file.getvalue()), None

    def discard(self, name: str) -> None:
        return None


@dataclass(frozen=True)
class ExportedPart:
    index: int
    name: str
    location: str  # what the sink returned
    rows: int
    bytes: int


@dataclass(frozen=True)
class ExportResult:
    """What the export of one window wrote."""

    table: str
    window: tuple[datetime, datetime]
    rows: int
    parts: tuple[ExportedPart, ...]
    bytes: int
    schema: pa.Schema
    duration_s: float
    query: str = field(repr=False, default="")

    @property
    def locations(self) -> list[str]:
        """The sink's location of every part (S3 keys with an S3 uploading sink)."""
        return [p.location for p in self.parts]

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.duration_s if self.duration_s > 0 else 0.0


class ParquetPartWriter:
    """Accumulates batches of ``schema`` into row groups and row groups into parts."""

    def __init__(
        self,
        schema: pa.Schema,
        sink: PartSink,
        settings: PartSettings | None = None,
        files: PartFiles | None = None,
    ) -> None:
        self.schema = schema
        self.sink = sink
        self.settings = settings or PartSettings()
        self.files: PartFiles = files or MemoryPartFiles()
        self.parts: list[ExportedPart] = []
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._file: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._part_rows = 0

    def _open(self) -> None:
        s = self.settings
        self._file = self.files.create(part_name(len(self.parts)))
        self._writer = pq.ParquetWriter(
            self._file,
            self.schema,
            compression=s.compression,
            compression_level=s.compression_level,
            use_dictionary=s.use_dictionary,
            write_statistics=True,
            version="2.6",
            store_schema=True,
        )
        self._part_rows = 0

    def _row_group_full(self) -> bool:
        s = self.settings
        return (
            self._pending_rows >= s.row_group_rows
            or self._pending_bytes >= s.row_group_bytes
            or (s.part_rows is not None and self._part_rows + self._pending_rows >= s.part_rows)
        )

    def add(self, batch: pa.RecordBatch) -> None:
        """Buffer ``batch`` (of the writer's schema), cutting row groups and parts exactly."""
        s = self.settings
        while batch.num_rows:
            room = s.row_group_rows - self._pending_rows
            if s.part_rows is not None:
                room = min(room, s.part_rows - self._part_rows - self._pending_rows)
            head = batch if batch.num_rows <= room else batch.slice(0, room)
            batch = batch.slice(head.num_rows) if head is not batch else batch.slice(0, 0)
            self._pending.append(head)
            self._pending_rows += head.num_rows
            self._pending_bytes += head.nbytes
            if self._row_group_full():
                self._flush_row_group()

    def _flush_row_group(self) -> None:
        if not self._pending_rows:
            return
        if self._writer is None:
            self._open()
        assert self._writer is not None and self._file is not None
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._part_rows += table.num_rows
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        del table
        s = self.settings
        full_rows = s.part_rows is not None and self._part_rows >= s.part_rows
        full_bytes = s.part_bytes is not None and self._file.tell() >= s.part_bytes
        if full_rows or full_bytes:
            self._close_part()

    def _close_part(self) -> None:
        assert self._writer is not None and self._file is not None
        self._writer.close()
        self._writer = None
        size = self._file.tell()
        index, name = len(self.parts), part_name(len(self.parts))
        file, self._file = self._file, None
        rows, self._part_rows = self._part_rows, 0
        readable, path = self.files.finished(name, file)
        try:
            # the part must read back (footer only) before anyone uploads it
            read_back_check([path if path is not None else readable], rows, self.schema)
            readable.seek(0)
            location = self.sink(FinishedPart(index, name, readable, rows, size, path))
        finally:
            readable.close()
            self.files.discard(name)
        self.parts.append(ExportedPart(index, name, str(location), rows, size))

    def finish(self) -> None:
        """Close the last part; a writer that saw no rows writes one empty part."""
        self._flush_row_group()
        if self._writer is None and not self.parts:
            self._open()  # a day without rows: one empty part carrying the schema
        if self._writer is not None:
            self._close_part()

    def abort(self) -> None:
        """Drop the open part (never handed to the sink) and what is buffered."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None
            self.files.discard(part_name(len(self.parts)))
        self._pending = []


def write_parts(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    sink: PartSink,
    *,
    settings: PartSettings | None = None,
    files: PartFiles | None = None,
) -> list[ExportedPart]:
    """Write every batch of ``batches`` into Parquet parts handed one by one to ``sink``; on any
    error the open part is dropped (parts already delivered stay where the sink put them)."""
    writer = ParquetPartWriter(schema, sink, settings, files)
    try:
        for batch in batches:
            writer.add(batch)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    return list(writer.parts)
