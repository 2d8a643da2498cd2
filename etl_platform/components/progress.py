"""The step side of progress reporting: a long step creates a :class:`StepProgress` and calls
``tick(n)`` as it goes; every ``interval_s`` a line with the count, the rate and (when the total
is known) the ETA goes to the run's log through ``context.log``. The interval is 30 s, or the
seconds in the environment variable ``ETL_PROGRESS_INTERVAL_S`` (read here, once per reporter;
tests set it small). The counting is :class:`etl_platform.core.progress.Progress`; this adds
the clock, a lock (scans and transfers tick from several threads) and the logging."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from etl_platform.core.progress import DEFAULT_INTERVAL_S, Progress

T = TypeVar("T", bound=Sized)

INTERVAL_ENV = "ETL_PROGRESS_INTERVAL_S"
POLL_MAX_S = 1.0


def progress_interval_s() -> float:
    """Seconds between progress lines: ``ETL_PROGRESS_INTERVAL_S`` when set, else 30."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{INTERVAL_ENV}={raw!r}: expected seconds >= 0 (0: every update)")
    return value


class StepLog(Protocol):
    def info(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


class HasLog(Protocol):
    @property
    def log(self) -> StepLog: ...


class _DroppedLines:
    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        return None

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        return None


class QuietContext:
    """A context whose log drops every line: step functions called outside a run (scripts,
    benchmarks, tests of the step alone) report progress to nobody."""

    log: StepLog = _DroppedLines()


QUIET = QuietContext()


class StepProgress:
    """Counts ``unit`` for ``what`` and logs progress at a steady interval."""

    def __init__(
        self,
        context: HasLog,
        what: str,
        unit: str,
        total: int | None = None,
        *,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = context.log
        self._clock = clock
        self._lock = threading.Lock()
        interval = progress_interval_s() if interval_s is None else interval_s
        self.progress = Progress(what, unit, clock(), total=total, interval_s=interval)

    def tick(self, n: int = 1) -> int:
        """Count ``n`` more; returns ``n`` so a count can pass through (``tick(load())``)."""
        with self._lock:
            line = self.progress.advance(n, self._clock())
        if line is not None:
            self._log.info(line)
        return n

    def transferred(self, n: int) -> None:
        """A boto3 transfer ``Callback``: bytes moved since the last call, from the transfer's
        threads. A rewind to retry a part reports negative bytes; those are left out (the count
        may run ahead by the retried part)."""
        if n > 0:
            self.tick(n)

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

    @contextmanager
    def polling(self, read: Callable[[], int]) -> Iterator[StepProgress]:
        """While the block runs, a thread sets the count to ``read()`` (a running total, e.g.
        the bytes a child process has written so far) about every second; ``read`` once more at
        the end."""
        stop = threading.Event()
        every = min(max(self.progress.interval_s, 0.05), POLL_MAX_S)

        def poll() -> None:
            while not stop.wait(every):
                self.at(read())

        thread = threading.Thread(target=poll, name="progress-poll", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
        self.at(read())

    def done(self) -> None:
        """Log the closing line (count, overall rate, duration)."""
        with self._lock:
            line = self.progress.summary(self._clock())
        self._log.info(line)
