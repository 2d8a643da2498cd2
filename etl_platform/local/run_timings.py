"""What a finished run's records say about how it ran: its worker's pid, when it was queued,
launched, started, when its step ran and when it ended (from the event log), and how many steps
of a set of runs overlapped at most. Read by the production-config test and the run-overhead
benchmark."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dagster as dg

RUN_EVENTS = {
    dg.DagsterEventType.RUN_ENQUEUED: "enqueued",
    dg.DagsterEventType.RUN_DEQUEUED: "dequeued",
    dg.DagsterEventType.RUN_STARTING: "launched",
    dg.DagsterEventType.RUN_START: "started",
    dg.DagsterEventType.RUN_SUCCESS: "ended",
    dg.DagsterEventType.RUN_FAILURE: "ended",
}


@dataclass(frozen=True)
class RunTiming:
    """Timestamps (epoch seconds) of one run with one step of interest."""

    run_id: str
    status: str
    pid: int | None
    enqueued: float | None
    launched: float | None  # RUN_STARTING: the launcher was called
    started: float | None  # RUN_START: the run worker process runs the job
    step_start: float | None
    step_end: float | None
    ended: float | None

    @property
    def launch_to_step_start(self) -> float | None:
        """Launcher call to the step's first line: process start, code load, run setup."""
        if self.launched is None or self.step_start is None:
            return None
        return self.step_start - self.launched

    @property
    def step_seconds(self) -> float | None:
        if self.step_start is None or self.step_end is None:
            return None
        return self.step_end - self.step_start

    @property
    def step_end_to_run_end(self) -> float | None:
        if self.step_end is None or self.ended is None:
            return None
        return self.ended - self.step_end


def run_timing(instance: dg.DagsterInstance, run_id: str, step_key: str | None = None) -> RunTiming:
    """The timing of ``run_id``; the step is ``step_key`` or the run's first step."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in the instance")
    marks: dict[str, float] = {}
    pid = None
    step_start = step_end = None
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind in RUN_EVENTS:
            marks.setdefault(RUN_EVENTS[kind], entry.timestamp)
        elif kind == dg.DagsterEventType.ENGINE_EVENT and pid is None:
            metadata = getattr(event.engine_event_data, "metadata", None) or {}
            if "pid" in metadata and "Started process for run" in (event.message or ""):
                pid = int(str(metadata["pid"].value))
        if event.step_key is not None and step_key in (None, event.step_key):
            if kind == dg.DagsterEventType.STEP_START and step_start is None:
                step_start, step_key = entry.timestamp, event.step_key
            elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                step_end = entry.timestamp
    return RunTiming(
        run_id=run_id,
        status=run.status.value,
        pid=pid,
        enqueued=marks.get("enqueued"),
        launched=marks.get("launched"),
        started=marks.get("started"),
        step_start=step_start,
        step_end=step_end,
        ended=marks.get("ended"),
    )


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The largest number of ``[start, end)`` intervals open at one instant."""
    edges: list[tuple[float, int]] = []
    for start, end in intervals:
        edges += [(start, 1), (end, -1)]
    open_now = peak = 0
    for _, delta in sorted(edges):  # an end sorts before a start at the same instant
        open_now += delta
        peak = max(peak, open_now)
    return peak


def step_intervals(timings: Sequence[RunTiming]) -> list[tuple[float, float]]:
    return [
        (t.step_start, t.step_end)
        for t in timings
        if t.step_start is not None and t.step_end is not None
    ]
