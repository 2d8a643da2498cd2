"""S3 notification bodies in SQS: decoding, test events, poison with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote_plus

from hypothesis import given
from hypothesis import strategies as st

from etl_platform.core.s3_events import parse_message_body


def record(key: str, *, bucket: str = "landing", name: str = "ObjectCreated:Put", **obj):
    body = {"key": key, "size": 10, "eTag": '"abc"', "sequencer": "0055AED6DCD90281E5"}
    body.update(obj)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": "2026-11-30T12:00:00.123Z",
        "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": body},
    }


def parse(payload, prefix="in/"):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return parse_message_body(body, bucket="landing", prefix=prefix)


def test_object_created_is_decoded():
    got = parse({"Records": [record(quote_plus("in/dt=2026-11-30/a b+c é.csv.gz"))]})
    assert got.poison is None and not got.test_event
    (event,) = got.events
    assert event.key == "in/dt=2026-11-30/a b+c é.csv.gz"
    assert (event.size, event.etag, event.sequencer) == (10, "abc", "0055AED6DCD90281E5")
    assert event.event_time == datetime(2026, 11, 30, 12, 0, 0, 123000, tzinfo=UTC)


def test_test_event_is_ignored_not_poison():
    got = parse({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "landing"})
    assert got.test_event and got.poison is None and got.events == ()


def test_sns_envelope_is_unwrapped():
    inner = json.dumps({"Records": [record("in/x.csv.gz")]})
    got = parse({"Type": "Notification", "Message": inner})
    assert [e.key for e in got.events] == ["in/x.csv.gz"]


def test_poison_reasons_name_the_problem():
    cases = {
        "not json {": "not JSON",
        json.dumps({"hello": 1}): "no Records",
        json.dumps({"Records": []}): "empty Records",
        json.dumps({"Records": [record("in/a", bucket="other")]}): "not in bucket 'landing'",
        json.dumps({"Records": [record("out/a")]}): "outside prefix 'in/'",
        json.dumps({"Records": [record("in/a", name="ObjectRemoved:Delete")]}): "ObjectRemoved",
        json.dumps({"Records": [record("in/a", size=-1)]}): "no valid size",
        json.dumps({"Records": [record("in/a"), record("out/b")]}): "out/b",
    }
    for body, reason in cases.items():
        got = parse(body)
        assert got.poison is not None and reason in got.poison, (body, got)
        assert got.events == ()


@given(st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
def test_any_key_round_trips_through_form_encoding(name):
    key = "in/" + name
    got = parse({"Records": [record(quote_plus(key, safe="/"))]})
    assert [e.key for e in got.events] == [key]


@given(st.one_of(st.text(max_size=50), st.binary(max_size=50).map(lambda b: b.hex())))
def test_garbage_never_raises(body):
    got = parse_message_body(body, bucket="landing", prefix="")
    assert got.test_event or got.poison or got.events


def test_without_object_details_a_bare_record_parses_and_bad_ones_stay_poison():
    bare = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "landing"}, "object": {"key": "in/d1/manifest.json"}},
    }
    got = parse_message_body(
        json.dumps({"Records": [bare]}), bucket="landing", prefix="in/", object_details=False
    )
    (event,) = got.events
    assert (event.key, event.size, event.event_time, event.etag) == (
        "in/d1/manifest.json",
        None,
        None,
        "",
    )
    # the same record is poison where the loader needs size and time
    strict = parse_message_body(json.dumps({"Records": [bare]}), bucket="landing", prefix="in/")
    assert strict.poison is not None
    wrong = dict(bare, eventSource="aws:sqs")
    lenient = parse_message_body(
        json.dumps({"Records": [wrong]}), bucket="landing", prefix="in/", object_details=False
    )
    assert lenient.poison is not None and "aws:sqs" in lenient.poison
    bad_size = {
        **bare,
        "s3": {"bucket": {"name": "landing"}, "object": {"key": "in/x", "size": -1}},
    }
    lenient = parse_message_body(
        json.dumps({"Records": [bad_size]}), bucket="landing", prefix="in/", object_details=False
    )
    assert lenient.poison is not None and "size" in lenient.poison


def test_a_dump_manifest_event_names_its_dump():
    from etl_platform.core.scrub.layout import announced_dump_key, events_prefix

    assert events_prefix("/dumps/") == "dumps/" and events_prefix("") == ""
    assert announced_dump_key("dumps", "dumps/a b+c/manifest.json") == "a b+c"
    assert announced_dump_key("", "d1/manifest.json") == "d1"
    assert announced_dump_key("dumps", "dumps/d1/0001.dat.gz") is None
    assert announced_dump_key("dumps", "dumps/x/y/manifest.json") is None
