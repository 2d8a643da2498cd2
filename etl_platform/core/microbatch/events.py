"""Which events a micro-batch loads: the day of a key, and dropping duplicate announcements.

S3 delivers notifications at least once, and a re-upload of identical bytes announces the same
object version again. Two events are the same object version when bucket, key and ETag (the
sequencer when there is no ETag) agree; only the first one is loaded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from etl_platform.core.s3_events import ObjectCreated

__all__ = ["DayPattern", "DatedEvent", "drop_duplicate_events", "event_fingerprint"]

_TOKENS = {"YYYY": r"(?P<year>\d{4})", "MM": r"(?P<month>\d{2})", "DD": r"(?P<day>\d{2})"}


@dataclass(frozen=True)
class DayPattern:
    """A key fragment naming the day, e.g. ``dt=YYYY-MM-DD/`` or ``year=YYYY/month=MM/day=DD/``:
    ``YYYY``, ``MM`` and ``DD`` each exactly once, everything else literal."""

    pattern: str

    def __post_init__(self) -> None:
        for token in _TOKENS:
            if self.pattern.count(token) != 1:
                raise ValueError(
                    f"day pattern {self.pattern!r} must contain {token} exactly once "
                    "(tokens: YYYY, MM, DD)"
                )

    @property
    def regex(self) -> re.Pattern[str]:
        parts = re.split(r"(YYYY|MM|DD)", self.pattern)
        return re.compile("".join(_TOKENS.get(p, re.escape(p)) for p in parts))

    def day_in_key(self, key: str) -> date | None:
        """The first valid day the pattern finds in ``key``, or None."""
        for match in self.regex.finditer(key):
            try:
                return date(int(match["year"]), int(match["month"]), int(match["day"]))
            except ValueError:
                continue
        return None

    def render(self, day: date) -> str:
        """The fragment for ``day``: ``dt=2026-11-30/`` for the default pattern."""
        return (
            self.pattern.replace("YYYY", f"{day.year:04d}")
            .replace("MM", f"{day.month:02d}")
            .replace("DD", f"{day.day:02d}")
        )


@dataclass(frozen=True)
class DatedEvent:
    """An object-created event and the day (partition) its file belongs to."""

    event: ObjectCreated
    day: date

    @classmethod
    def of(cls, event: ObjectCreated, pattern: DayPattern) -> DatedEvent:
        """The day from the key's pattern, falling back to the event time's UTC day."""
        return cls(event, pattern.day_in_key(event.key) or event.event_time.date())


def event_fingerprint(event: ObjectCreated) -> str:
    """A short stable digest of the event's object version (:attr:`ObjectCreated.identity`)."""
    text = "\x00".join(event.identity)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()


def drop_duplicate_events(
    events: Iterable[ObjectCreated], seen: Mapping[str, str] | None = None
) -> tuple[list[ObjectCreated], list[tuple[ObjectCreated, str | None]]]:
    """``(fresh, duplicates)``: the first event of each object version in arrival order, and the
    rest, each with the run key that already loads it (from ``seen``: fingerprint -> run key;
    None when the duplicate's original is in this same batch)."""
    known = dict(seen or {})
    batch: set[str] = set()
    fresh: list[ObjectCreated] = []
    duplicates: list[tuple[ObjectCreated, str | None]] = []
    for event in events:
        fp = event_fingerprint(event)
        if fp in known:
            duplicates.append((event, known[fp]))
        elif fp in batch:
            duplicates.append((event, None))
        else:
            batch.add(fp)
            fresh.append(event)
    return fresh, duplicates
