"""Progress counting, rate and ETA (pure), and the step-side reporter that logs it."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl_platform.components.progress import StepProgress, progress_interval_s
from etl_platform.core.progress import Progress, duration_text
from etl_platform.core.scrub.archive import RestoredTables


def test_reports_only_when_the_interval_has_passed_with_rate_and_eta():
    p = Progress("extract of segment 3", "items", started=100.0, total=1000, interval_s=30)
    assert p.advance(100, now=110.0) is None  # 10 s in: not due
    line = p.advance(200, now=130.0)  # 30 s in: due
    assert line == (
        "extract of segment 3: 300 items, 10 items/s, 30% of 1,000, ETA 1m 10s, elapsed 30s"
    )
    assert p.advance(10, now=140.0) is None  # the interval restarted at 130
    assert p.eta_seconds(now=140.0) == pytest.approx(690 / (310 / 40))
    assert p.summary(now=160.0) == "extract of segment 3: done, 310 items in 1m 00s (5 items/s)"


def test_without_a_total_there_is_no_eta_and_reach_never_goes_backwards():
    p = Progress("export of orders 2026-11-02", "rows", started=0.0, interval_s=5)
    assert p.reach(500, now=6.0) == "export of orders 2026-11-02: 500 rows, 83 rows/s, elapsed 6s"
    p.reach(400, now=7.0)
    assert p.count == 500 and p.eta_seconds(7.0) is None and p.fraction() is None


def test_edges_zero_total_no_time_bad_input():
    assert Progress("x", "rows", started=0.0, total=0).eta_seconds(0.0) == 0.0
    p = Progress("x", "rows", started=5.0, total=10)
    assert p.rate(5.0) == 0.0 and p.eta_seconds(5.0) is None
    assert "ETA unknown" in p.line(5.0)
    with pytest.raises(ValueError, match="cannot advance by -1"):
        p.advance(-1, 6.0)
    with pytest.raises(ValueError, match="interval"):
        Progress("x", "rows", started=0.0, interval_s=-1)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59.4, "59s"), (61, "1m 01s"), (7260, "2h 01m")]
)
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text


@given(
    total=st.integers(min_value=1, max_value=10**9),
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10**6), st.floats(0.001, 100.0)),
        min_size=1,
        max_size=50,
    ),
)
def test_counts_add_up_and_eta_is_the_remaining_work_at_the_observed_rate(total, steps):
    p = Progress("scan", "items", started=0.0, total=total, interval_s=10.0)
    now, counted, lines = 0.0, 0, 0
    for n, dt in steps:
        now += dt
        counted += n
        lines += p.advance(n, now) is not None
    assert p.count == counted
    assert lines <= now / 10.0 + 1  # never more than one line per interval
    assert 0.0 <= p.fraction() <= 1.0
    eta = p.eta_seconds(now)
    if counted >= total:
        assert eta == 0.0
    elif counted == 0:
        assert eta is None
    else:
        assert eta == pytest.approx((total - counted) / (counted / now))


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args, **kwargs) -> None:
        self.lines.append(msg)


class _Context:
    def __init__(self) -> None:
        self.log = _Log()


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_step_progress_logs_through_the_context_at_the_interval():
    context, clock = _Context(), _Clock()
    reporter = StepProgress(context, "staging load of segment 1", "rows", 300, clock=clock)
    clock.now = 10
    assert reporter.tick(100) == 100
    clock.now = 31
    reporter.tick(100)
    pages = list(reporter.pages([[1, 2], [3]]))
    assert pages == [[1, 2], [3]]
    clock.now = 70
    reporter.at(300)
    reporter.done()
    assert context.log.lines == [
        "staging load of segment 1: 200 rows, 6 rows/s, 67% of 300, ETA 16s, elapsed 31s",
        "staging load of segment 1: 300 rows, 4 rows/s, 100% of 300, ETA 0s, elapsed 1m 10s",
        "staging load of segment 1: done, 300 rows in 1m 10s (4 rows/s)",
    ]


def test_step_progress_counts_ticks_from_many_threads():
    context = _Context()
    reporter = StepProgress(context, "data-schema scan", "items", interval_s=3600)
    threads = [
        threading.Thread(target=lambda: [reporter.tick(1) for _ in range(1000)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reporter.progress.count == 8000


def test_the_interval_comes_from_one_setting(monkeypatch):
    monkeypatch.delenv("ETL_PROGRESS_INTERVAL_S", raising=False)
    assert progress_interval_s() == 30.0
    monkeypatch.setenv("ETL_PROGRESS_INTERVAL_S", "0.5")
    assert progress_interval_s() == 0.5
    assert StepProgress(_Context(), "scrub of d1", "bytes").progress.interval_s == 0.5
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("ETL_PROGRESS_INTERVAL_S", bad)
        with pytest.raises(ValueError, match="ETL_PROGRESS_INTERVAL_S"):
            progress_interval_s()


def test_transfer_callbacks_ignore_the_rewind_of_a_retried_part():
    reporter = StepProgress(_Context(), "upload", "bytes", 100, interval_s=3600)
    for n in (40, -40, 40, 60):
        reporter.transferred(n)
    assert reporter.progress.count == 140  # the retried part counts twice, never backwards


def test_polling_sets_the_running_total_until_the_block_ends(monkeypatch):
    monkeypatch.setenv("ETL_PROGRESS_INTERVAL_S", "0")
    context, written = _Context(), [0]
    reporter = StepProgress(context, "pg_dump of d1", "bytes")
    done = threading.Event()

    def read() -> int:
        written[0] += 10
        if written[0] >= 30:
            done.set()
        return written[0]

    with reporter.polling(read):
        done.wait(timeout=30)
    assert reporter.progress.count == written[0] >= 40  # and once more at the end
    assert context.log.lines[0].startswith("pg_dump of d1: 10 bytes, ")


PARALLEL_RESTORE = """pg_restore: creating TABLE "public.c"
pg_restore: entering main parallel loop
pg_restore: launching item 2553 TABLE DATA b
pg_restore: launching item 2552 TABLE DATA a
pg_restore: processing data for table "public.a"
pg_restore: processing data for table "public.b"
pg_restore: finished item 2552 TABLE DATA a
pg_restore: launching item 2403 CONSTRAINT a a_pkey
pg_restore: finished item 2553 TABLE DATA b
pg_restore: finished item 2403 CONSTRAINT a a_pkey
pg_restore: launching item 2554 TABLE DATA c
pg_restore: processing data for table "public.c"
pg_restore: finished item 2554 TABLE DATA c
pg_restore: finished main parallel loop"""

SERIAL_RESTORE = """pg_restore: creating TABLE "public.c"
pg_restore: processing data for table "public.a"
pg_restore: processing data for table "public.b"
pg_restore: processing data for table "public.c"
pg_restore: creating CONSTRAINT "public.a a_pkey"
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (PARALLEL_RESTORE, [0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3]),
        (SERIAL_RESTORE, [0, 0, 1, 2, 2]),
    ],
    ids=["parallel", "serial"],
)
def test_tables_restored_from_pg_restore_verbose_lines(output, expected):
    tables = RestoredTables()
    assert [tables.feed(line) for line in output.splitlines()] == expected
