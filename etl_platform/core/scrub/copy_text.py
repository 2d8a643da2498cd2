"""PostgreSQL COPY text format, as pg_dump writes table data: one row per line, fields split
by a tab, ``\\N`` for NULL, backslash escapes for backslash and control characters.

A literal tab or newline byte is always a delimiter (data tabs and newlines are escaped), so a
line splits with ``bytes.split`` and a field is rewritten without decoding the others. pg_dump
writes one escaping per value, so equal values have equal escaped bytes: the ``fake_*``
pseudonyms are computed from the raw field, ``hash`` from the unescaped value
(:func:`unescape_field`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

NULL = b"\\N"

_DECODE_SIMPLE = {
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
    ord("v"): "\v",
}
_ENCODE = {
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_ENCODE_TABLE = str.maketrans(_ENCODE)
_OCTAL = b"01234567"
_HEX = b"0123456789abcdefABCDEF"

FieldRewrite = Callable[[bytes], bytes]


class CopyFormatError(ValueError):
    """A COPY text line does not have the expected number of fields."""


def decode_field(raw: bytes) -> str | None:
    """A COPY text field → its value (``None`` for ``\\N``). Accepts every escape COPY FROM
    accepts: the letter escapes, octal ``\\NNN`` and hex ``\\xHH`` (bytes, then UTF-8)."""
    if raw == NULL:
        return None
    return unescape_field(raw).decode()


def unescape_field(raw: bytes) -> bytes:
    """A non-NULL COPY text field → the value's bytes in the dump's encoding (what the
    database stores: ``convert_to(value, 'UTF8')`` for a UTF-8 dump). A field without a
    backslash is its own value."""
    if b"\\" not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != 0x5C or i + 1 == n:
            out.append(c)
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt in _DECODE_SIMPLE:
            out += _DECODE_SIMPLE[nxt].encode()
            i += 2
        elif nxt in _OCTAL:
            j = i + 1
            while j < min(i + 4, n) and raw[j] in _OCTAL:
                j += 1
            out.append(int(raw[i + 1 : j], 8) & 0xFF)
            i = j
        elif nxt == ord("x") and i + 2 < n and raw[i + 2] in _HEX:
            j = i + 2
            while j < min(i + 4, n) and raw[j] in _HEX:
                j += 1
            out.append(int(raw[i + 2 : j], 16))
            i = j
        else:
            out.append(nxt)  # \\ and any other escaped character stand for themselves
            i += 2
    return bytes(out)


def encode_field(value: str | None) -> bytes:
    """A value → its COPY text field, as pg_dump writes it."""
    if value is None:
        return NULL
    return value.translate(_ENCODE_TABLE).encode()


def split_line(line: bytes) -> list[bytes]:
    return line.split(b"\t")


def rewrite_line(line: bytes, rewrites: Mapping[int, FieldRewrite], last_index: int) -> bytes:
    """The line with the fields at ``rewrites``' indexes replaced; other fields untouched."""
    fields = line.split(b"\t", last_index + 1)
    if len(fields) <= last_index:
        raise CopyFormatError(f"expected at least {last_index + 1} fields, got {len(fields)}")
    for index, rewrite in rewrites.items():
        fields[index] = rewrite(fields[index])
    return b"\t".join(fields)


END_OF_DATA = b"\\."


class CopyDataRewriter:
    """Rewrites a pg_dump table data stream block by block: rows until the ``\\.`` line are
    rewritten (and counted), the terminator and anything after it pass through unchanged.
    ``observe`` sees each original row's fields (for the residual scan) before the rewrite."""

    def __init__(
        self,
        rewrites: Mapping[int, FieldRewrite],
        observe: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        self._rewrites = dict(rewrites)
        self._last = max(rewrites) if rewrites else -1
        self._observe = observe
        self._blocks = LineBlocks()
        self.rows = 0
        self.ended = False

    def feed(self, chunk: bytes) -> bytes:
        return self._rewrite(self._blocks.feed(chunk))

    def finish(self) -> bytes:
        return self._rewrite(self._blocks.finish())

    def _rewrite(self, block: bytes) -> bytes:
        if not block or self.ended:
            return block
        if not self._rewrites and self._observe is None:
            return self._count(block)
        lines = block.split(b"\n")
        tail = lines.pop()
        out: list[bytes] = []
        append, observe = out.append, self._observe
        rewrites = list(self._rewrites.items())
        need = self._last + 1
        rows = 0
        for position, line in enumerate(lines):
            if line == END_OF_DATA:
                self.ended = True
                out.extend(lines[position:])
                break
            fields = line.split(b"\t") if observe is not None else line.split(b"\t", need)
            if len(fields) < need:
                raise CopyFormatError(f"expected at least {need} fields, got {len(fields)}")
            if observe is not None:
                observe(fields)
            for index, rewrite in rewrites:
                fields[index] = rewrite(fields[index])
            append(b"\t".join(fields))
            rows += 1
        self.rows += rows
        out.append(tail)
        return b"\n".join(out)

    def _count(self, block: bytes) -> bytes:
        """No rewrite, no observer: count the rows up to the terminator."""
        end = block.find(b"\n" + END_OF_DATA + b"\n")
        if block.startswith(END_OF_DATA + b"\n"):
            end = -1
        if end == -1 and not block.startswith(END_OF_DATA + b"\n"):
            self.rows += block.count(b"\n")
            return block
        self.rows += block.count(b"\n", 0, end + 1)
        self.ended = True
        return block


class LineBlocks:
    """Cuts a byte stream into blocks of whole lines (the carried remainder is bounded by the
    longest line)."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._rest + chunk
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        return data[:cut]

    def finish(self) -> bytes:
        """Whatever is left; a final line without a newline gets one."""
        rest, self._rest = self._rest, b""
        return rest + b"\n" if rest else b""


def line_blocks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    blocks = LineBlocks()
    for chunk in chunks:
        block = blocks.feed(chunk)
        if block:
            yield block
    last = blocks.finish()
    if last:
        yield last


class RowChunks:
    """Cuts a table data stream into chunks of whole rows of about ``size`` bytes (a row longer
    than ``size`` is a chunk of its own), up to the ``\\.`` terminator; ``tail`` is the
    terminator and whatever follows it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.tail = b""
        self._lines = LineBlocks()
        self._rows = b""
        self._ended = False

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._ended:
            self.tail += chunk
            return []
        return self._take(self._lines.feed(chunk))

    def finish(self) -> bytes:
        """The last rows (maybe empty)."""
        if not self._ended:
            self._take(self._lines.finish())
        rows, self._rows = self._rows, b""
        return rows

    def _take(self, block: bytes) -> list[bytes]:
        if block.startswith(END_OF_DATA + b"\n"):
            end = 0
        else:
            end = block.find(b"\n" + END_OF_DATA + b"\n")
            end = -1 if end == -1 else end + 1
        if end != -1:
            self._ended = True
            self.tail = block[end:] + self._lines.finish()
            block = block[:end]
        data = self._rows + block if self._rows else block
        chunks, start = [], 0
        while len(data) - start >= self.size:
            cut = data.rfind(b"\n", start, start + self.size) + 1
            if cut <= start:
                cut = data.find(b"\n", start + self.size) + 1
            chunks.append(data[start:cut])
            start = cut
        self._rows = data[start:]
        return chunks
