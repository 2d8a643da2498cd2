"""The data-schema cache loses no update (issue 8 point 4): two segments widening the cached
data-schema at the same moment both end up in it. Real moto S3 over HTTP; the overlap is forced
by holding both writers after they read the ``latest`` pointer until both have read it."""

from __future__ import annotations

import logging
import threading
from datetime import date
from types import SimpleNamespace
from typing import Any

import dagster as dg

from etl_platform.components.dynamo_etl import extract, schema_cache
from etl_platform.core import s3_layout
from etl_platform.core.dynamo import build_schema_set, merge_observations, observe

from .dynamo_pipeline import DAY, Pipeline, entity_items, make_component, make_table


class PointerReadersMeet:
    """The S3 resource, except that each thread's first read of the ``latest`` pointer waits
    until the other thread has read it too: both then write from the same version."""

    def __init__(self, inner: Any, latest_key: str) -> None:
        self.inner, self.latest_key = inner, latest_key
        self.barrier = threading.Barrier(2, timeout=30)
        self.seen = threading.local()

    def _meet(self, key: str) -> None:
        if key == self.latest_key and not getattr(self.seen, "met", False):
            self.seen.met = True
            self.barrier.wait()

    def get_bytes(self, bucket: str, key: str, **kwargs: Any) -> bytes | None:
        body = self.inner.get_bytes(bucket, key, **kwargs)
        self._meet(key)
        return body

    def get_bytes_and_etag(
        self, bucket: str, key: str, **kwargs: Any
    ) -> tuple[bytes | None, str | None]:
        found = self.inner.get_bytes_and_etag(bucket, key, **kwargs)
        self._meet(key)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _user_with(pk: str, attribute: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": f"USER#{pk}"}, attribute: {"S": "x"}}


def test_concurrent_evolutions_in_two_segments_both_survive_in_the_cache(local_stack, unique_name):
    make_table(unique_name, entity_items(10))
    component = make_component(unique_name, segments=2, entity_rule={"attribute": "sk"})
    with dg.DagsterInstance.ephemeral() as instance:
        pipeline = Pipeline(component, instance)
        assert pipeline.materialize("data_schemas").success
    s3 = pipeline.defs.resources["s3"]
    cached = schema_cache.load_latest(component, s3)
    assert cached is not None

    def widened(item: dict):
        observed = merge_observations(cached.observations, observe([item], cached.config))
        return build_schema_set(observed, cached)

    evolutions = [widened(_user_with("P1", "alpha")), widened(_user_with("P2", "beta"))]
    store = PointerReadersMeet(
        s3, s3_layout.data_schema_latest_key(component.schema_cache_prefix, component.instance)
    )
    context = SimpleNamespace(log=logging.getLogger("test"))
    errors: list[BaseException] = []

    def widen(segment: int) -> None:
        result = SimpleNamespace(schema_set=evolutions[segment], evolution={})
        try:
            extract.widen_cached_schema(
                component, context, store, cached, result, date.fromisoformat(DAY), segment
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=widen, args=(s,)) for s in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []

    latest = schema_cache.load_latest(component, s3)
    paths = {tuple(c.path) for c in latest.table("_user").columns}
    assert {("alpha",), ("beta",)} <= paths, paths
