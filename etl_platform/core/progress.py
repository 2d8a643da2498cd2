"""Progress of a long step: counts, rate, and an ETA when the total is known, reported at a
steady interval. Pure: the caller passes the clock's readings (``now``, monotonic seconds) and
logs the lines this returns; nothing here reads a clock or writes anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_INTERVAL_S = 30.0


@dataclass
class Progress:
    """``what`` (e.g. "extract of segment 3 of 2026-11-02") counted in ``unit`` ("items")."""

    what: str
    unit: str
    started: float
    total: int | None = None
    interval_s: float = DEFAULT_INTERVAL_S
    count: int = 0
    _last_report: float = field(init=False)

    def __post_init__(self) -> None:
        if self.interval_s < 0:
            raise ValueError(
                f"progress interval must be >= 0 (0: every tick), got {self.interval_s}"
            )
        if self.total is not None and self.total < 0:
            raise ValueError(f"progress total must be >= 0, got {self.total}")
        self._last_report = self.started

    def advance(self, n: int, now: float) -> str | None:
        """Add ``n`` to the count; the progress line when the interval has passed, else None."""
        if n < 0:
            raise ValueError(f"progress of {self.what}: cannot advance by {n}")
        self.count += n
        return self.report(now) if self.due(now) else None

    def reach(self, count: int, now: float) -> str | None:
        """Set the count to a running total ``count`` (never backwards); as :meth:`advance`."""
        return self.advance(max(count - self.count, 0), now)

    def due(self, now: float) -> bool:
        return now - self._last_report >= self.interval_s

    def report(self, now: float) -> str:
        """The progress line as of ``now`` (and the interval restarts)."""
        self._last_report = now
        return self.line(now)

    def elapsed(self, now: float) -> float:
        return max(now - self.started, 0.0)

    def rate(self, now: float) -> float:
        """Units per second since the start (0 before any time has passed)."""
        elapsed = self.elapsed(now)
        return self.count / elapsed if elapsed > 0 else 0.0

    def fraction(self) -> float | None:
        if self.total is None:
            return None
        if self.total == 0:
            return 1.0
        return min(self.count / self.total, 1.0)

    def eta_seconds(self, now: float) -> float | None:
        """Seconds left at the rate so far; None without a total or before any progress."""
        if self.total is None:
            return None
        remaining = max(self.total - self.count, 0)
        if remaining == 0:
            return 0.0
        rate = self.rate(now)
        return remaining / rate if rate > 0 else None

    def line(self, now: float) -> str:
        parts = [
            f"{self.count:,} {self.unit}",
            f"{self.rate(now):,.0f} {self.unit}/s",
        ]
        fraction = self.fraction()
        if fraction is not None:
            parts.append(f"{fraction:.0%} of {self.total:,}")
            eta = self.eta_seconds(now)
            parts.append("ETA unknown" if eta is None else f"ETA {duration_text(eta)}")
        parts.append(f"elapsed {duration_text(self.elapsed(now))}")
        return f"{self.what}: " + ", ".join(parts)

    def summary(self, now: float) -> str:
        """The closing line: total count, overall rate and duration."""
        return (
            f"{self.what}: done, {self.count:,} {self.unit} in "
            f"{duration_text(self.elapsed(now))} ({self.rate(now):,.0f} {self.unit}/s)"
        )


def duration_text(seconds: float) -> str:
    """``45s``, ``3m 05s``, ``2h 01m``."""
    whole = int(round(max(seconds, 0.0)))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
