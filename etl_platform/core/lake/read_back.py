"""The footer-only read-back check of written Parquet parts: they open, their rows add up, and
each part's schema is the planned one. No data page is read."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ReadBackError

ParquetSource = str | os.PathLike[str] | bytes | pa.Buffer | pa.NativeFile | IO[bytes]


@dataclass(frozen=True)
class ReadBackReport:
    rows: int
    parts: int
    row_groups: int
    schema: pa.Schema


def _open(src: ParquetSource, filesystem: Any) -> pq.ParquetFile:
    if isinstance(src, bytes | bytearray | memoryview):
        src = pa.BufferReader(pa.py_buffer(src))
    elif isinstance(src, pa.Buffer):
        src = pa.BufferReader(src)
    if isinstance(src, os.PathLike):
        src = os.fspath(src)
    return pq.ParquetFile(src, filesystem=filesystem)


def read_back_check(
    sources: Iterable[ParquetSource],
    expected_rows: int,
    expected_schema: pa.Schema,
    *,
    filesystem: Any = None,
) -> ReadBackReport:
    """Check written parts from their Parquet footers only (no data pages are read): they open,
    their rows add up to ``expected_rows`` and each part's schema equals ``expected_schema``
    (names, types, nullability; metadata ignored). Sources: paths (with ``filesystem``, e.g.
    ``pyarrow.fs.S3FileSystem``, for ``bucket/key`` paths), bytes/buffers of whole files, or
    open binary files. Raises :class:`ReadBackError`."""
    total = 0
    n_parts = 0
    row_groups = 0
    problems: list[str] = []
    for i, src in enumerate(sources):
        label = str(src) if isinstance(src, str | os.PathLike) else f"part #{i}"
        try:
            pf = _open(src, filesystem)
            md = pf.metadata
            schema = pf.schema_arrow
        except Exception as e:
            problems.append(f"{label}: unreadable Parquet ({e})")
            continue
        n_parts += 1
        total += md.num_rows
        row_groups += md.num_row_groups
        if not schema.equals(expected_schema, check_metadata=False):
            problems.append(f"{label}: schema differs: {_schema_diff(schema, expected_schema)}")
    if n_parts == 0 and not problems:
        problems.append("no parts to check")
    if total != expected_rows and not problems:
        problems.append(f"row count {total} != expected {expected_rows}")
    elif total != expected_rows:
        problems.append(f"row count {total} (readable parts) != expected {expected_rows}")
    if problems:
        raise ReadBackError("; ".join(problems))
    return ReadBackReport(total, n_parts, row_groups, expected_schema)


def _schema_diff(got: pa.Schema, want: pa.Schema) -> str:
    diffs = []
    got_f = {f.name: f for f in got}
    want_f = {f.name: f for f in want}
    for name in want.names:
        if name not in got_f:
            diffs.append(f"missing {name}")
        elif not got_f[name].equals(want_f[name], check_metadata=False):
            g, w = got_f[name], want_f[name]
            diffs.append(
                f"{name}: {g.type}{'' if g.nullable else ' not null'} != "
                f"{w.type}{'' if w.nullable else ' not null'}"
            )
    diffs += [f"unexpected {n}" for n in got.names if n not in want_f]
    if not diffs and got.names != want.names:
        diffs.append(f"column order {got.names} != {want.names}")
    return ", ".join(diffs) or "metadata only"
