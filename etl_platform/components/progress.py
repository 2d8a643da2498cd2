"""The step side of progress reporting: a long step creates a :class:`StepProgress` and calls
``tick(n)`` as it goes; every ``interval_s`` (30 s) a line with the count, the rate and (when
the total is known) the ETA goes to the run's log through ``context.log``. The counting is
:class:`etl_platform.core.progress.Progress`; this adds the clock, a lock (scans tick from
several threads) and the logging."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any, Protocol, TypeVar

from etl_platform.core.progress import DEFAULT_INTERVAL_S, Progress

T = TypeVar("T", bound=Sized)


class StepLog(Protocol):
    def info(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


class HasLog(Protocol):
    @property
    def log(self) -> StepLog: ...


class StepProgress:
    """Counts ``unit`` for ``what`` and logs progress at a steady interval."""

    def __init__(
        self,
        context: HasLog,
        what: str,
        unit: str,
        total: int | None = None,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = context.log
        self._clock = clock
        self._lock = threading.Lock()
        self.progress = Progress(what, unit, clock(), total=total, interval_s=interval_s)

    def tick(self, n: int = 1) -> int:
        """Count ``n`` more; returns ``n`` so a count can pass through (``tick(load())``)."""
        with self._lock:
            line = self.progress.advance(n, self._clock())
        if line is not None:
            self._log.info(line)
        return n

    def at(self, count: int) -> None:
        """Set the running total (for callbacks that report totals, not increments)."""
        with self._lock:
            line = self.progress.reach(count, self._clock())
        if line is not None:
            self._log.info(line)

    def pages(self, pages: Iterable[T]) -> Iterator[T]:
        """Pass ``pages`` through, ticking each page's length (scan pages, record batches)."""
        for page in pages:
            yield page
            self.tick(len(page))

    def done(self) -> None:
        """Log the closing line (count, overall rate, duration)."""
        with self._lock:
            line = self.progress.summary(self._clock())
        self._log.info(line)
