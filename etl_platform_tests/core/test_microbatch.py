"""Micro-batch core: day of a key, duplicate events, manifests, the sensor's memory."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl_platform.core import s3_layout
from etl_platform.core.microbatch import (
    BatchLimits,
    DatedEvent,
    DayPattern,
    Manifest,
    ManifestFile,
    SensorMemory,
    drop_duplicate_events,
    event_fingerprint,
    group_into_manifests,
)
from etl_platform.core.s3_events import ObjectCreated

T0 = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)


def ev(key: str, *, size: int = 10, etag: str = "e", seq: str = "01", at: datetime = T0):
    return ObjectCreated(at, "landing", key, size, etag, seq)


def test_day_from_pattern_then_event_time():
    p = DayPattern("dt=YYYY-MM-DD/")
    assert DatedEvent.of(ev("in/dt=2026-01-02/a.csv.gz"), p).day == date(2026, 1, 2)
    assert DatedEvent.of(ev("in/a.csv.gz"), p).day == date(2026, 11, 30)
    assert DatedEvent.of(ev("in/dt=2026-13-02/a"), p).day == date(2026, 11, 30)
    nested = DayPattern("year=YYYY/month=MM/day=DD/")
    assert nested.day_in_key("t/year=2025/month=02/day=28/x") == date(2025, 2, 28)
    assert nested.render(date(2025, 2, 8)) == "year=2025/month=02/day=08/"


def test_day_pattern_needs_each_token_once():
    for bad in ("dt=YYYY-MM/", "YYYY-MM-DD-DD", ""):
        with pytest.raises(ValueError, match="exactly once"):
            DayPattern(bad)


def test_duplicates_by_key_and_etag():
    a, a_again, a_new = ev("in/a"), ev("in/a", seq="02"), ev("in/a", etag="f", seq="03")
    fresh, dups = drop_duplicate_events([a, a_again, a_new])
    assert fresh == [a, a_new] and dups == [(a_again, None)]
    fresh, dups = drop_duplicate_events([a_again], {event_fingerprint(a): "run-1"})
    assert fresh == [] and dups == [(a_again, "run-1")]
    no_etag = [ev("in/b", etag="", seq="1"), ev("in/b", etag="", seq="1"), ev("in/b", etag="")]
    fresh, _ = drop_duplicate_events(no_etag)
    assert len(fresh) == 2  # sequencer tells them apart when there is no ETag


def test_manifest_format_and_stable_id():
    files = (
        ManifestFile("s3://landing/in/a b", 5, "e1", T0),
        ManifestFile("s3://l/x", 7, "", None),
    )
    m = Manifest("demo", date(2026, 11, 30), files)
    assert m.redshift_json() == {
        "entries": [
            {"url": "s3://landing/in/a b", "mandatory": True, "meta": {"content_length": 5}},
            {"url": "s3://l/x", "mandatory": True, "meta": {"content_length": 7}},
        ]
    }
    assert json.loads(m.redshift_bytes()) == m.redshift_json()
    assert m.manifest_id == Manifest("demo", date(2026, 11, 30), files).manifest_id
    assert m.manifest_id.startswith("demo-20261130-")
    assert m.manifest_id != Manifest("demo", date(2026, 11, 30), files[::-1]).manifest_id
    assert m.total_bytes == 12
    assert [ManifestFile.from_config(f.as_config()) for f in files] == list(files)
    key = s3_layout.microbatch_manifest_key("manifests/", "demo", m.day, m.manifest_id)
    assert key == f"manifests/demo/dt=2026-11-30/{m.manifest_id}.manifest"
    with pytest.raises(ValueError, match="twice"):
        Manifest("demo", m.day, (files[0], files[0]))


def test_group_by_day_order_and_limits():
    p = DayPattern("dt=YYYY-MM-DD/")
    events = [
        ev("in/dt=2026-11-02/c", at=T0 + timedelta(seconds=2)),
        ev("in/dt=2026-11-01/a", at=T0),
        ev("in/dt=2026-11-02/b", at=T0 + timedelta(seconds=1)),
        ev("in/dt=2026-11-02/d", at=T0 + timedelta(seconds=3), size=100),
    ]
    got = group_into_manifests("demo", [DatedEvent.of(e, p) for e in events], BatchLimits(2, 50))
    assert [(m.day.day, [f.url[-1] for f in m.files]) for m in got] == [
        (1, ["a"]),
        (2, ["b", "c"]),
        (2, ["d"]),  # alone: larger than max_bytes
    ]


def test_two_versions_of_one_key_load_once():
    old, new = ev("in/a", etag="1", seq="0A"), ev("in/a", etag="2", seq="0B")
    p = DayPattern("dt=YYYY-MM-DD/")
    (m,) = group_into_manifests("demo", [DatedEvent.of(e, p) for e in (new, old)], BatchLimits())
    assert [f.etag for f in m.files] == ["2"]


event_lists = st.lists(
    st.builds(
        ev,
        st.sampled_from([f"in/dt=2026-11-0{d}/f{i}" for d in (1, 2, 3) for i in range(4)]),
        size=st.integers(0, 60),
        etag=st.sampled_from(["x", "y"]),
        seq=st.sampled_from(["01", "02"]),
        at=st.integers(0, 5).map(lambda s: T0 + timedelta(seconds=s)),
    ),
    max_size=30,
)


@given(event_lists, st.integers(1, 5), st.integers(1, 120))
def test_grouping_partitions_the_latest_version_of_each_key(events, max_files, max_bytes):
    p = DayPattern("dt=YYYY-MM-DD/")
    fresh, _ = drop_duplicate_events(events)
    manifests = group_into_manifests(
        "demo", [DatedEvent.of(e, p) for e in fresh], BatchLimits(max_files, max_bytes)
    )
    urls = [f.url for m in manifests for f in m.files]
    assert sorted(urls) == sorted({f"s3://landing/{e.key}" for e in events})
    for m in manifests:
        assert len(m.files) <= max_files
        assert len(m.files) == 1 or m.total_bytes <= max_bytes
        assert all(f"dt={m.day.isoformat()}/" in f.url for f in m.files)
        times = [f.event_time for f in m.files]
        assert times == sorted(times)
    assert len({m.manifest_id for m in manifests}) == len(manifests)


def test_memory_acknowledges_only_existing_runs():
    mem = SensorMemory()
    mem.remember(["fp1", "fp2"], "run-a")
    mem.remember(["fp3"], "run-b")
    mem.acknowledge_after("run-a", ["h1", "h2"])
    mem.acknowledge_after("run-b", ["h3"])
    again = SensorMemory.from_cursor(mem.to_cursor())
    assert again == mem
    assert again.settle({"run-a"}) == ["h1", "h2"]
    assert again.seen == {"fp1": "run-a", "fp2": "run-a"} and again.pending == {}
    mem = SensorMemory()
    mem.acknowledge_after("run-a", ["h1", "shared"])
    mem.acknowledge_after("run-b", ["shared"])
    assert mem.settle({"run-a"}) == ["h1"]  # a message feeding two runs waits for both
    with pytest.raises(ValueError, match="cursor"):
        SensorMemory.from_cursor("[1]")


@given(st.lists(st.text(max_size=4), max_size=60), st.integers(1, 20))
def test_memory_is_bounded_and_keeps_the_newest(fps, limit):
    mem = SensorMemory()
    for i, fp in enumerate(fps):
        mem.remember([fp], f"r{i}", limit=limit)
    assert len(mem.seen) <= limit
    if fps:
        assert fps[-1] in mem.seen
