"""The platform's one CSV format: gzip-compressed RFC-4180 text that ``COPY ... CSV`` loads
losslessly on PostgreSQL and Redshift.

* comma delimiter, ``"`` quote, a quote inside a field doubled, no other escape character (a
  backslash is data), ``\\n`` line ends, UTF-8, no header unless asked (``COPY`` names columns);
* NULL is an unquoted empty field, the empty string is ``""``; every other value is written as
  is, quoted when it holds a quote, comma, ``\\n`` or ``\\r`` (so ``nan``, ``NULL`` and ``\\N``
  are plain data, and multi-line text survives);
* a lone ``\\.`` field is quoted (PostgreSQL would read it unquoted as end-of-data);
* the NULL marker and the text of binary values are the warehouse dialect's
  (:attr:`~etl_platform.core.warehouse.Dialect.csv_null`, ``csv_binary_prefix``), PostgreSQL's
  by default: a dialect whose ``csv_null`` is ``"\\x00"`` gets NULL as a lone NUL byte
  (Redshift ``NULL AS '\\000'``, which keeps NULL apart from the empty string there). A
  value holding a NUL is then refused with an error naming its row and column, so the marker
  can never be data: a NULL field is exactly one NUL byte, unquoted, and an empty string is
  ``""``.

Values are ``str`` (written as is) or ``None``; ``bool`` becomes ``true``/``false``, ``bytes``
hex with the dialect's prefix (PostgreSQL ``\\x...``), anything else ``str(value)``. The
writer streams: rows are encoded in chunks of about a MiB and compressed (ISA-L's deflate when
the ``isal`` package is present, else zlib; same gzip format) into any binary file-like, e.g. a
temporary file or an S3 multipart upload stream; memory stays bounded by a few chunks. Output
is deterministic (the gzip header carries no name or time).
"""

from __future__ import annotations

import functools
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any

from etl_platform.core.warehouse.dialect import Dialect

__all__ = ["CsvGzipWriter", "CsvStats", "encode_csv", "write_csv_gzip"]

try:  # ISA-L deflate: the same gzip format, about 4x faster than zlib at a similar ratio.
    from isal import isal_zlib as _fast_zlib
except ImportError:  # pragma: no cover - without isal, plain zlib
    _fast_zlib = None

_CHUNK_BYTES = 1 << 20
_QUEUE_DEPTH = 4
_STOP = object()


def _compressor(level: int) -> Any:
    """A gzip-format compressor for a zlib ``level`` (1-9): ISA-L when installed (levels 1-3,
    4-6, 7-9 map to its 1, 2, 3), else zlib."""
    if not 0 <= level <= 9:
        raise ValueError(f"gzip compression level must be within 0..9, got {level}")
    if _fast_zlib is not None and level > 0:
        return _fast_zlib.compressobj((level + 2) // 3, _fast_zlib.DEFLATED, 31)
    return zlib.compressobj(level, zlib.DEFLATED, 31)


@dataclass(frozen=True)
class CsvStats:
    """What one writer produced: data rows (header excluded), CSV bytes before and after gzip."""

    rows: int
    csv_bytes: int
    bytes_written: int


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _text(value: Any, dialect: Dialect) -> str:
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return dialect.binary_text(value)
    return str(value)


class _MarkerInValue(ValueError):
    """A value holds the dialect's (NUL) NULL marker."""


def _field(value: Any, dialect: Dialect) -> str:
    """One field, any value type (the slow path)."""
    null = dialect.csv_null
    if value is None:
        return null
    text = _text(value, dialect)
    if null and null in text:
        raise _MarkerInValue(text)
    if not text or '"' in text or "," in text or "\n" in text or "\r" in text or text == "\\.":
        return _quote(text)
    return text


def _clip(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _encode_lines_slow(
    rows: Sequence[Sequence[Any]],
    width: int,
    dialect: Dialect,
    names: Sequence[str] | None = None,
) -> list[str]:
    lines = []
    for number, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"CSV row {number} has {len(row)} fields, expected {width}: {row!r}")
        fields = []
        for index, value in enumerate(row):
            try:
                fields.append(_field(value, dialect))
            except _MarkerInValue as bad:
                column = repr(names[index]) if names else f"#{index}"
                raise ValueError(
                    f"CSV row {number}, column {column}: value {_clip(str(bad))} holds a NUL "
                    f"character, the NULL marker of {dialect.title} files (COPY NULL AS "
                    "'\\000'); it would load as NULL or corrupt the row, so it is refused"
                ) from None
        lines.append(",".join(fields))
    return lines


_CHECKED = (
    "'' if {c} is None else {c} if {c} and '\"' not in {c} and ',' not in {c} "
    "and '\\n' not in {c} and '\\r' not in {c} else '\"' + {c}.replace('\"', '\"\"') + '\"'"
)
_PLAIN = "'' if {c} is None else {c}"
#: the same with a NUL NULL marker: ``_q`` quotes, or raises for a value holding a NUL (the
#: caller then re-encodes on the slow path, whose error names the row and column)
_CHECKED_NUL = (
    "'\\x00' if {c} is None else {c} if {c} and '\"' not in {c} and ',' not in {c} "
    "and '\\n' not in {c} and '\\r' not in {c} and '\\x00' not in {c} else _q({c})"
)
_PLAIN_NUL = "'\\x00' if {c} is None else {c} if {c} and '\\x00' not in {c} else _q({c})"


def _quote_unless_marker(value: str) -> str:
    if "\x00" in value:
        raise _MarkerInValue(value)
    return _quote(value)


@functools.lru_cache(maxsize=512)
def _row_encoder(
    plain: tuple[bool, ...], utf8: bool = False, nul_marker: bool = False
) -> Callable[[Sequence[Any]], list]:
    """A function encoding rows of ``len(plain)`` str/None fields into CSV lines (``str``, or
    UTF-8 ``bytes`` line by line, so one non-ASCII character does not widen a whole chunk),
    generated with one inline expression per column (plain columns skip the quoting checks).
    ``nul_marker``: NULL is a NUL byte, and a value holding one raises ``ValueError``."""
    names = [f"c{i}" for i in range(len(plain))]
    checked, plain_expr = (_CHECKED_NUL, _PLAIN_NUL) if nul_marker else (_CHECKED, _PLAIN)
    fields = ", ".join(
        (plain_expr if p else checked).format(c=c) for c, p in zip(names, plain, strict=True)
    )
    line = f"','.join(({fields},))" + (".encode()" if utf8 else "")
    source = f"def encode(rows):\n    return [{line} for {', '.join(names)}, in rows]\n"
    namespace: dict[str, Any] = {"_q": _quote_unless_marker}
    exec(compile(source, f"<csv row encoder {len(plain)}>", "exec"), namespace)
    return namespace["encode"]


def _encode_lines(
    rows: Sequence[Sequence[Any]],
    width: int,
    dialect: Dialect,
    plain: tuple[bool, ...] | None = None,
    utf8: bool = False,
    names: Sequence[str] | None = None,
) -> list:
    """CSV lines (without line ends) of ``rows``: generated code for ``str``/``None`` rows of
    width >= 2 with the empty or NUL NULL marker, else (and for any row it cannot encode,
    e.g. a non-str value or a NUL in a value) the general path, whose errors name the row and
    column (``names``)."""
    if dialect.csv_null not in ("", "\x00") or width < 2:
        lines = _encode_lines_slow(rows, width, dialect, names)
    else:
        encoder = _row_encoder(plain or (False,) * width, utf8, dialect.csv_null == "\x00")
        try:
            return encoder(rows)
        except (TypeError, ValueError, AttributeError):
            lines = _encode_lines_slow(rows, width, dialect, names)
    return [line.encode() for line in lines] if utf8 else lines


def encode_csv(
    rows: Iterable[Sequence[Any]],
    *,
    width: int | None = None,
    dialect: Dialect = Dialect.POSTGRES,
) -> str:
    """CSV text of ``rows`` (each line ends with ``\\n``) for ``dialect``; uncompressed, for
    tests and small payloads."""
    rows = list(rows)
    if not rows:
        return ""
    lines = _encode_lines(rows, len(rows[0]) if width is None else width, dialect)
    return "\n".join(lines) + "\n"


class CsvGzipWriter:
    """Streams rows as gzip CSV into ``fileobj`` (a binary file-like with ``write``).

    ``columns`` fixes the row width (and the header when ``header=True``); without it the first
    row does. ``dialect`` (the warehouse the file is for) decides the NULL marker and the text
    of binary values; PostgreSQL's by default. ``plain`` flags columns whose values never need
    quoting and are never the empty string (numbers, booleans, hex, timestamps): they skip the
    quoting checks.
    ``compresslevel`` is zlib's 1-9 (1, the default, favours speed: staging files are
    transient). ``background=True`` compresses and writes on a helper thread, which pays off
    only when a CPU core is otherwise idle.

    Use as a context manager or call :meth:`close`, which flushes, returns :class:`CsvStats`
    and leaves ``fileobj`` open. An exception inside the ``with`` block stops the writer
    without finishing the gzip stream (the partial output must be discarded).
    """

    def __init__(
        self,
        fileobj: IO[bytes],
        *,
        columns: Sequence[str] | None = None,
        header: bool = False,
        dialect: Dialect = Dialect.POSTGRES,
        plain: Sequence[bool] | None = None,
        compresslevel: int = 1,
        chunk_bytes: int = _CHUNK_BYTES,
        background: bool = False,
    ) -> None:
        if header and not columns:
            raise ValueError("a CSV header needs the column names")
        if columns is not None and not columns:
            raise ValueError("a CSV file needs at least one column")
        if plain is not None and columns is not None and len(plain) != len(columns):
            raise ValueError(f"plain has {len(plain)} flags for {len(columns)} columns")
        self._fileobj = fileobj
        self._width = len(columns) if columns is not None else (len(plain) if plain else None)
        self._plain = tuple(bool(p) for p in plain) if plain is not None else None
        self._columns = tuple(columns) if columns is not None else None
        self._dialect = dialect
        self._chunk_bytes = max(1, chunk_bytes)
        self._compressor = _compressor(compresslevel)
        self._lines: list[bytes] = []
        self._buffered = 0
        self._rows = 0
        self._csv_bytes = 0
        self._written = 0
        self._closed = False
        self._stats: CsvStats | None = None
        self._error: BaseException | None = None
        self._aborted = False
        self._queue: queue.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=_QUEUE_DEPTH)
            self._thread = threading.Thread(target=self._drain, name="csv-gzip-writer", daemon=True)
            self._thread.start()
        if header:
            assert columns is not None
            self._lines.append(",".join(_field(c, dialect) for c in columns).encode("utf-8"))
            self._buffered += len(self._lines[-1])

    @property
    def rows(self) -> int:
        return self._rows

    def write_row(self, row: Sequence[Any]) -> None:
        self.write_rows((row,))

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Encode and queue ``rows`` (a list is encoded in one go; any iterable works)."""
        if self._closed:
            raise ValueError("CSV writer is closed")
        self._raise_worker_error()
        if not isinstance(rows, (list, tuple)):
            rows = list(rows)
        if not rows:
            return
        if self._width is None:
            self._width = len(rows[0])
            if self._width == 0:
                raise ValueError("a CSV row needs at least one field")
        try:
            data = _encode_lines(
                rows, self._width, self._dialect, self._plain, utf8=True, names=self._columns
            )
        except UnicodeEncodeError as e:
            raise ValueError(f"CSV value is not valid Unicode (lone surrogate?): {e}") from None
        self._rows += len(data)
        self._lines.extend(data)
        self._buffered += sum(map(len, data))
        if self._buffered >= self._chunk_bytes:
            self._flush_lines()

    def _flush_lines(self) -> None:
        if not self._lines:
            return
        self._lines.append(b"")
        data = b"\n".join(self._lines)
        self._lines = []
        self._buffered = 0
        self._csv_bytes += len(data)
        if self._queue is not None:
            self._put(data)
        else:
            self._compress(data)

    def _put(self, item: Any) -> None:
        assert self._queue is not None and self._thread is not None
        while True:
            self._raise_worker_error()
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._raise_worker_error()
                    raise RuntimeError("CSV compression thread died") from None

    def _compress(self, data: bytes) -> None:
        out = self._compressor.compress(data)
        if out:
            self._fileobj.write(out)
            self._written += len(out)

    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None or self._aborted:
                continue
            try:
                self._compress(item)
            except BaseException as e:
                self._error = e

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"writing the gzip CSV failed: {self._error}") from self._error

    def close(self) -> CsvStats:
        """Flush everything, finish the gzip stream; returns the stats (idempotent)."""
        if self._stats is not None:
            return self._stats
        if self._closed:
            raise ValueError("CSV writer was aborted")
        self._flush_lines()
        self._stop_worker()
        self._closed = True
        self._raise_worker_error()
        tail = self._compressor.flush()
        if tail:
            self._fileobj.write(tail)
            self._written += len(tail)
        if hasattr(self._fileobj, "flush"):
            self._fileobj.flush()
        self._stats = CsvStats(self._rows, self._csv_bytes, self._written)
        return self._stats

    def abort(self) -> None:
        """Stop without finishing the stream (after an error)."""
        self._closed = True
        self._aborted = True
        self._lines = []
        self._stop_worker()

    def _stop_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            return
        assert self._queue is not None
        self._queue.put(_STOP)
        self._thread.join()

    def __enter__(self) -> CsvGzipWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_csv_gzip(
    fileobj: IO[bytes],
    rows: Iterable[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
    header: bool = False,
    dialect: Dialect = Dialect.POSTGRES,
    compresslevel: int = 1,
) -> CsvStats:
    """Write all ``rows`` as one gzip CSV stream for ``dialect`` into ``fileobj``."""
    with CsvGzipWriter(
        fileobj, columns=columns, header=header, dialect=dialect, compresslevel=compresslevel
    ) as writer:
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 4096:
                writer.write_rows(batch)
                batch = []
        writer.write_rows(batch)
    return writer.close()
