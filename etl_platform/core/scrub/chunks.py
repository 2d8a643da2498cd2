"""One chunk of a table's COPY rows through the scrub, column at a time.

A chunk is a run of whole rows (each ending in a newline, the ``\\.`` terminator excluded). Its
fields are split once with ``bytes.split`` (a literal tab or newline is always a delimiter);
each ruled column is taken out as a list slice, rewritten with ``map`` over the distinct values
(repeated values such as foreign keys are computed once and cached), and put back; the other
fields are never decoded or copied one by one. The rewritten rows are then compressed to one
gzip member: members concatenate into a valid gzip file, so chunks scrubbed by different
processes are written one after the other into the table's data file.

The residual scan is folded into the same pass. Each chunk reports 64-bit fingerprints (Python's
``hash`` of the raw field) of

- the distinct originals of its scrubbed columns,
- the distinct values of its kept and masked text columns after the rewrite, 5 bytes or longer
  (shorter ones, "yes" or "42", would match innocent originals),

and counts email and phone patterns in its kept text columns and rewrites that returned their
input. The caller intersects the two fingerprint sets over the whole dump: a common fingerprint
is an original value left in the clean data (or, with odds of about n·m/2⁶⁴, a collision, which
fails safe). ``hash`` is salted per interpreter, so fingerprints compare only within one process;
each result carries :data:`FINGERPRINT_PROBE`'s hash so the caller can check that.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from itertools import compress

import numpy as np
from isal import isal_zlib

from .copy_text import NULL, CopyFormatError
from .coverage import TablePlan
from .residual import EMAIL_PATTERN, MIN_ORIGINAL_BYTES, looks_like_phone
from .rules import ColumnRule, display_name
from .transforms import ColumnBatch, batch_rewrite

FINGERPRINT_PROBE = b"etl_platform.scrub fingerprint probe"
GZIP_WBITS = 31
CACHE_LIMIT = 32_768
# Actions whose output can equal their input (a keyed pseudonym equals its input with odds of
# about 2**-80: not counted per field).
MAY_RETURN_INPUT = frozenset({"constant", "mask"})  # cached pseudonyms per column and process
_NL = b"\n"
_TAB = 9
_SHORT = MIN_ORIGINAL_BYTES - 1


def fingerprint_probe() -> int:
    return hash(FINGERPRINT_PROBE)


def long_values(values: set[bytes]) -> Iterable[bytes]:
    """The values long enough to be looked for (C-level filter)."""
    listed = list(values)
    return compress(listed, map(_SHORT.__lt__, map(len, listed)))


def fingerprints(values: Collection[bytes]) -> bytes:
    """The native int64 fingerprints of ``values`` (int64 bytes)."""
    return np.fromiter(map(hash, values), dtype=np.int64, count=len(values)).tobytes()


def tabs_per_row_are(rows: bytes, tabs: int) -> bool:
    """Whether every line of ``rows`` (whole lines) holds exactly ``tabs`` tabs (vectorized:
    the running count of tabs at each newline must step by ``tabs``)."""
    data = np.frombuffer(rows, dtype=np.uint8)
    newlines = np.flatnonzero(data == _NL[0])
    tab_positions = np.flatnonzero(data == _TAB)
    if len(tab_positions) != tabs * len(newlines):
        return False
    before = np.searchsorted(tab_positions, newlines)
    return bool((before == np.arange(tabs, tabs * len(newlines) + 1, tabs)).all()) if tabs else True


@dataclass(frozen=True)
class ChunkSpec:
    """What a chunk scrubber does to one table's rows (picklable; no key)."""

    table: str
    width: int
    scrubbed: tuple[tuple[int, str, ColumnRule], ...] = ()  # index, table.column, rule
    checked: tuple[tuple[int, str], ...] = ()  # kept/masked text: looked up for originals
    patterns: tuple[int, ...] = ()  # kept text with scan: email/phone patterns

    @classmethod
    def from_plan(cls, plan: TablePlan, scan_only: bool = False) -> ChunkSpec:
        """``scan_only``: data already scrubbed (after custom SQL): no rule is applied again,
        kept and masked text columns are scanned."""
        table = plan.table
        scrubbed, checked, patterns = [], [], []
        for index, (column, rule) in enumerate(plan.rules.items()):
            name = display_name(table.qualified, column)
            if rule.scrubs and not scan_only:
                scrubbed.append((index, name, rule))
            if rule.action in ("keep", "mask") and table.is_text(column):
                checked.append((index, name))
                if rule.action == "keep" and rule.scan:
                    patterns.append(index)
        return cls(
            table.qualified, len(table.columns), tuple(scrubbed), tuple(checked), tuple(patterns)
        )


@dataclass
class ChunkResult:
    rows: int
    text_bytes: int
    gzip: bytes = b""
    originals: bytes = b""  # fingerprints of scrubbed originals
    checked: dict[str, bytes] = field(default_factory=dict)  # table.column → fingerprints
    hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    fields_scanned: int = 0
    probe: int = field(default_factory=fingerprint_probe)


class RowBlock:
    """The fields of whole COPY rows, split once on tabs. A row boundary field holds
    ``last\\nfirst`` of two rows; middle columns are plain slices of the split."""

    def __init__(self, rows: bytes, width: int, table: str) -> None:
        self.rows = rows.count(_NL)
        self.width = width
        if rows and not rows.endswith(_NL):
            raise CopyFormatError(f"{table}: chunk does not end with a whole row")
        if width == 1:
            self._parts = rows.split(_NL)[:-1]
            return
        if not tabs_per_row_are(rows, width - 1):
            raise CopyFormatError(f"{table}: rows do not all have {width} fields")
        self._parts = rows.split(b"\t")
        self._ends: list[bytes] | None = None

    def _edges(self) -> list[bytes]:
        """``[first0, last0, first1, last1, ...]`` from the boundary fields."""
        if self._ends is None:
            step = self.width - 1
            self._ends = [self._parts[0], *_NL.join(self._parts[step::step]).split(_NL)[:-1]]
        return self._ends

    def column(self, index: int) -> list[bytes]:
        if self.width == 1:
            return self._parts
        if 0 < index < self.width - 1:
            return self._parts[index :: self.width - 1]
        edges = self._edges()
        return edges[0::2] if index == 0 else edges[1::2]

    def set_column(self, index: int, values: list[bytes]) -> None:
        if self.width == 1:
            self._parts = values
        elif 0 < index < self.width - 1:
            self._parts[index :: self.width - 1] = values
        else:
            edges = self._edges()
            edges[0 if index == 0 else 1 :: 2] = values
            self._parts[0] = edges[0]
            lasts, firsts = edges[1::2], [*edges[2::2], b""]
            self._parts[self.width - 1 :: self.width - 1] = list(
                map(_NL.join, zip(lasts, firsts, strict=True))
            )

    def join(self) -> bytes:
        if not self.rows:
            return b""
        if self.width == 1:
            return _NL.join(self._parts) + _NL
        return b"\t".join(self._parts)


class ColumnTransform:
    """One rule applied to a column list; pseudonyms of repeated values are computed once."""

    def __init__(self, rule: ColumnRule, key: bytes | None) -> None:
        self.action = rule.action
        self.rewrite: ColumnBatch = batch_rewrite(rule, key) or list
        self.cache: dict[bytes, bytes] = {NULL: NULL}

    def apply(self, values: list[bytes]) -> tuple[list[bytes], set[bytes]]:
        """The rewritten column and the distinct original values."""
        distinct = set(values)
        if self.action == "null":
            return [NULL] * len(values), distinct
        if NULL not in distinct and len(distinct) * 2 > len(values):
            return self.rewrite(values), distinct  # mostly unique: no cache
        cache = self.cache
        missing = distinct.difference(cache)
        if len(cache) + len(missing) > CACHE_LIMIT:
            cache.clear()
            cache[NULL] = NULL
            missing = distinct - {NULL}
        todo = list(missing)
        cache.update(zip(todo, self.rewrite(todo), strict=True))
        return list(map(cache.__getitem__, values)), distinct


def unchanged(old: list[bytes], new: list[bytes]) -> int:
    """Non-empty, non-NULL fields a rule returned unchanged."""
    if not sum(map(operator.eq, old, new)):
        return 0
    return sum(1 for a, b in zip(old, new, strict=True) if a == b and a and a != NULL)


def pattern_hits(values: list[bytes], distinct: set[bytes]) -> Counter[str]:
    """Fields matching the email / phone pattern (one regex pass when there are none)."""
    hits: Counter[str] = Counter()
    joined = _NL.join(distinct)
    if EMAIL_PATTERN.search(joined):
        hits["email_pattern"] = sum(values.count(v) for v in distinct if EMAIL_PATTERN.search(v))
    if looks_like_phone(joined):
        hits["phone_pattern"] = sum(values.count(v) for v in distinct if looks_like_phone(v))
    return +hits


class ChunkScrubber:
    """Scrubs (or only scans) chunks of one table's rows."""

    def __init__(self, spec: ChunkSpec, key: bytes | None, level: int = 1) -> None:
        self.spec = spec
        self.level = level
        self.transforms = [(i, name, ColumnTransform(r, key)) for i, name, r in spec.scrubbed]

    def scrub(self, rows: bytes, rewrite: bool = True) -> ChunkResult:
        """``rewrite``: compress the rewritten rows into ``gzip``; else only count and scan."""
        block = RowBlock(rows, self.spec.width, self.spec.table)
        result = ChunkResult(block.rows, len(rows))
        if not block.rows:
            return result
        originals: list[bytes] = []
        for index, name, transform in self.transforms:
            old = block.column(index)
            new, distinct = transform.apply(old)
            same = unchanged(old, new) if transform.action in MAY_RETURN_INPUT else 0
            if same:
                result.hits[(name, "unchanged_by_rule")] += same
            originals += distinct  # short ones are dropped on the checked side
            block.set_column(index, new)
        result.originals = fingerprints(originals)
        self._scan(block, result)
        if rewrite and block.rows:
            result.gzip = isal_zlib.compress(block.join(), self.level, wbits=GZIP_WBITS)
        return result

    def _scan(self, block: RowBlock, result: ChunkResult) -> None:
        patterns = self.spec.patterns
        for index, name in self.spec.checked:
            values = block.column(index)
            distinct = set(values)
            distinct.discard(NULL)
            result.fields_scanned += len(values) - values.count(NULL)
            result.checked[name] = fingerprints(list(long_values(distinct)))
            if index in patterns:
                for kind, count in pattern_hits(values, distinct).items():
                    result.hits[(name, kind)] += count
