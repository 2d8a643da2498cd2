"""Day windows: one lake partition is the half-open UTC window ``[day 00:00Z, next day 00:00Z)``.

The partition *values* and keys of a day (``year=YYYY/month=MM/day=DD``) are in
:mod:`etl_platform.core.s3_layout`, with every other S3 key the platform writes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

Window = tuple[datetime, datetime]


def day_window(day: date) -> Window:
    """The half-open UTC window of one day: ``[day 00:00Z, next day 00:00Z)``."""
    if isinstance(day, datetime):
        raise TypeError(f"day_window takes a date, not a datetime: {day!r}")
    lo = datetime.combine(day, dtime(0), tzinfo=UTC)
    return lo, lo + timedelta(days=1)


def check_window(window: Window) -> Window:
    """The window in UTC; refuses naive bounds and empty windows (the error shows both bounds)."""
    lo, hi = window
    for v in (lo, hi):
        if not isinstance(v, datetime) or v.tzinfo is None or v.utcoffset() is None:
            raise ValueError(f"window bounds must be timezone-aware datetimes, got {v!r}")
    lo, hi = lo.astimezone(UTC), hi.astimezone(UTC)
    if not lo < hi:
        raise ValueError(f"empty window: {lo.isoformat()} >= {hi.isoformat()}")
    return lo, hi


def ceil_date(v: datetime) -> date:
    """The first date whose 00:00 (in ``v``'s zone) is at or after ``v``."""
    d = v.date()
    return d if v.timetz().replace(tzinfo=None) == dtime(0) else d + timedelta(days=1)


def window_label(day: date) -> str:
    """``[2024-03-01T00:00Z, 2024-03-02T00:00Z)``: the window of a day, as shown in metadata."""
    return f"[{day.isoformat()}T00:00Z, {(day + timedelta(days=1)).isoformat()}T00:00Z)"
