"""The residual scan: after the scrub, is any original value of a scrubbed column still in the
clean data, and does any kept text column look like it holds an email or a phone number?

Two passes, both over raw COPY fields (equal values have equal escaped bytes):

1. while a table is scrubbed, :class:`OriginalValues` wraps each rewrite: it collects the
   originals of the scrubbed columns (all of them, or a deterministic sample by value) and
   counts rewrites that returned their input;
2. :class:`ResidualScanner` then reads the clean data of every table with kept or masked
   text columns and counts, per ``table.column``, fields equal to a collected original and
   fields matching the email or phone pattern (kept columns with ``scan: false`` skip the
   patterns, not the originals).

Any count above zero fails the run. Counts are reported; values never are (they are PII).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .copy_text import NULL, FieldRewrite

EMAIL_PATTERN = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE_PATTERN = re.compile(rb"(?<![\w.:/-])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w:])")
_DATE = re.compile(rb"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}")
MIN_ORIGINAL_BYTES = 5  # shorter originals ("yes", "42") match innocent kept values


@dataclass
class ResidualCounts:
    """Hits per ``table.column`` and kind (``original_value``, ``email_pattern``,
    ``phone_pattern``, ``unchanged_by_rule``), plus how many fields were looked at."""

    hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    fields_scanned: int = 0
    originals: int = 0
    originals_sampled: bool = False

    @property
    def total(self) -> int:
        return sum(self.hits.values())

    def merge(self, other: ResidualCounts) -> ResidualCounts:
        self.hits.update(other.hits)
        self.fields_scanned += other.fields_scanned
        self.originals += other.originals
        self.originals_sampled |= other.originals_sampled
        return self

    def summary(self) -> dict[str, object]:
        return {
            "hits": self.total,
            "fields_scanned": self.fields_scanned,
            "original_values": self.originals,
            "sampled": self.originals_sampled,
            "by_column": {f"{col} ({kind})": n for (col, kind), n in sorted(self.hits.items())},
        }


def looks_like_phone(raw: bytes) -> bool:
    """A run of 8-15 digits with phone punctuation that is not a date or a time."""
    for match in PHONE_PATTERN.finditer(raw):
        text = match.group()
        digits = sum(c in b"0123456789" for c in text)
        if 8 <= digits <= 15 and not _DATE.search(text):
            return True
    return False


def sampled(raw: bytes, fraction: float) -> bool:
    """Deterministic by value, so one value is in or out of the sample in every table."""
    return fraction >= 1.0 or zlib.crc32(raw) < fraction * 0x1_0000_0000


class OriginalValues:
    """Originals of the scrubbed columns (bounded by ``max_values``: past it the sample
    fraction halves, so memory stays bounded and the report says it was sampled)."""

    def __init__(self, fraction: float = 1.0, max_values: int = 2_000_000) -> None:
        self.fraction = fraction
        self.max_values = max_values
        self.values: set[bytes] = set()
        self.sampled = fraction < 1.0

    def add(self, raw: bytes) -> None:
        if raw != NULL and len(raw) >= MIN_ORIGINAL_BYTES and sampled(raw, self.fraction):
            self.values.add(raw)

    def trim(self) -> None:
        """Call between blocks: halve the sample while over the bound."""
        while len(self.values) > self.max_values:
            self.fraction /= 2
            self.sampled = True
            self.values = {v for v in self.values if sampled(v, self.fraction)}

    def wrap(self, rewrite: FieldRewrite, column: str, counts: ResidualCounts) -> FieldRewrite:
        """The rewrite, also collecting each original and counting outputs equal to their
        (non-empty, non-NULL) input: one call per field does both."""
        hits = counts.hits
        identity = (column, "unchanged_by_rule")

        def checked(raw: bytes) -> bytes:
            out = rewrite(raw)
            if out == raw and raw != NULL and raw:
                hits[identity] += 1
            if len(raw) >= MIN_ORIGINAL_BYTES and raw != NULL:
                if self.fraction >= 1.0 or sampled(raw, self.fraction):
                    self.values.add(raw)
            return out

        return checked


class ResidualScanner:
    """Scans the clean rows of one table: ``originals`` against every column in ``columns``
    (index → ``table.column``), the patterns against those in ``pattern_columns``."""

    def __init__(
        self,
        originals: frozenset[bytes],
        columns: Mapping[int, str],
        pattern_columns: Iterable[int],
    ) -> None:
        self.originals = originals
        self.columns = dict(columns)
        self.pattern_columns = frozenset(pattern_columns)
        self.counts = ResidualCounts()

    def scan_block(self, block: bytes) -> None:
        for line in block.split(b"\n"):
            if line == b"\\.":
                return
            if line:
                self.scan_fields(line.split(b"\t"))

    def scan_fields(self, fields: list[bytes]) -> None:
        hits = self.counts.hits
        for index, column in self.columns.items():
            raw = fields[index]
            if raw == NULL:
                continue
            self.counts.fields_scanned += 1
            if raw in self.originals:
                hits[(column, "original_value")] += 1
            if index in self.pattern_columns:
                if EMAIL_PATTERN.search(raw):
                    hits[(column, "email_pattern")] += 1
                if looks_like_phone(raw):
                    hits[(column, "phone_pattern")] += 1
