"""The reconcile schedule: a dump whose scrub failed (the sensor never requests its run key
again) is requested once more under a new run key, and dumps past retention are pruned with
their objects in both buckets and their dynamic partition."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from etl_platform.components.postgres_dump.dump_objects import (
    DumpLocation,
    put_manifest,
    read_manifest,
)

from .dump_world import HMAC_ENV, HMAC_VALUE
from .test_dump_pipeline import Pipeline, pipeline  # noqa: F401  (the fixture)


@pytest.fixture
def persistent(pipeline: Pipeline, tmp_path) -> Iterator[Pipeline]:  # noqa: F811
    """The pipeline on an on-disk test instance (a schedule context needs an instance ref),
    kept in the test's own directory."""
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path)) as instance:
        pipeline.instance = instance
        yield pipeline


def _reconcile(p: Pipeline, at: datetime) -> list[dg.RunRequest]:
    schedule = p.defs.get_schedule_def(f"{p.component.name}_reconcile")
    context = dg.build_schedule_context(
        instance=p.instance,
        scheduled_execution_time=at,
        resources=p.resources,
        repository_def=p.defs.get_repository_def(),
    )
    return list(schedule.evaluate_tick(context).run_requests or [])


def _objects(p: Pipeline, bucket: str, dump_key: str) -> list[str]:
    return [o["Key"] for o in p.resources["s3"].list_objects(bucket, f"dumps/{dump_key}/")] + [
        o["Key"] for o in p.resources["s3"].list_objects(bucket, f"clean/{dump_key}/")
    ]


def test_a_failed_scrub_is_requested_again_under_a_new_run_key(persistent, monkeypatch):
    p = persistent
    p.take_dump("d1")
    (sensor_request,) = p.tick().run_requests or []
    monkeypatch.delenv(HMAC_ENV)  # the scrub fails: keyed actions without their key
    failed = p.launch(sensor_request, raise_on_error=False)
    assert not failed.success
    assert p.tick().run_requests == []  # the sensor does not try again

    now = datetime.now(UTC)
    (retry,) = _reconcile(p, now)
    assert retry.partition_key == "d1" and retry.run_key != sensor_request.run_key
    assert set(retry.asset_selection or []) == {
        p.key("s3", "clean_dump"),
        p.key("postgres", "target"),
    }
    monkeypatch.setenv(HMAC_ENV, HMAC_VALUE)
    assert p.launch(retry).success
    clean = read_manifest(p.resources["s3"], DumpLocation(p.load, "clean", "d1"))
    assert clean is not None and clean["verified"]
    assert _reconcile(p, now + timedelta(minutes=30)) == []  # verified: nothing to do


def test_retention_prunes_old_dumps_with_their_objects_and_partitions(persistent):
    p = persistent
    p.take_dump("old")
    (request,) = p.tick().run_requests or []
    assert p.launch(request).success
    p.take_dump("new")  # a raw dump not scrubbed yet
    store = p.resources["s3"]
    clean = DumpLocation(p.load, "clean", "old")
    manifest = read_manifest(store, clean)
    assert manifest is not None
    manifest["raw_created_at"] = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    put_manifest(store, clean, manifest, {"ServerSideEncryption": "AES256"})
    assert _objects(p, p.load, "old")

    requests = _reconcile(p, datetime.now(UTC))

    assert _objects(p, p.load, "old") == []
    assert _objects(p, p.extract, "old") == []
    partitions = p.instance.get_dynamic_partitions(p.component.name)
    assert partitions == ["new"]
    assert _objects(p, p.extract, "new")  # within retention: kept
    assert [r.partition_key for r in requests] == ["new"]  # and still to be scrubbed
