"""The DynamoDB pipeline under failure, on the real local stack (moto server + PostgreSQL):
a segment extract killed mid-upload, a publish failing between centralize and swap, readers
during publishes, rollback, and attributes the cached data-schema does not know."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import boto3
import dagster as dg
import psycopg
import pytest
from psycopg import sql

from etl_platform.core import s3_layout

from .dynamo_pipeline import (
    DAY,
    Pipeline,
    entity_items,
    failure_text,
    make_component,
    make_table,
    schema_rows,
    segment_objects,
    start_materialize_process,
)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _text(rng: random.Random, size: int) -> str:
    """Incompressible-ish text with the characters CSV must quote (newlines, quotes, commas)."""
    body = base64.b85encode(rng.randbytes(size * 4 // 5)).decode()
    return "\n".join(f'"{body[i : i + 997]}",' for i in range(0, len(body), 1000))


def _killable_items(rng: random.Random) -> list[dict]:
    """ACCOUNT items with a list of roles (two small CSVs that sort first) and DOC items of
    ~340 KB each with a list of pages (two large CSVs uploaded after them)."""
    items = []
    for i in range(40):
        items.append(
            {
                "pk": {"S": f"A{i:03d}"},
                "sk": {"S": f"ACCOUNT#{i}"},
                "name": {"S": f"account {i}\nsecond line"},
                "roles": {"L": [{"S": f"role{j}"} for j in range(i % 4)]},
            }
        )
    for i in range(80):
        items.append(
            {
                "pk": {"S": f"D{i:03d}"},
                "sk": {"S": f"DOC#{i}"},
                "size": {"N": str(i * 1000)},
                "body": {"S": _text(rng, 110_000)},
                "pages": {
                    "L": [
                        {"M": {"n": {"N": str(p)}, "text": {"S": _text(rng, 105_000)}}}
                        for p in range(2)
                    ]
                },
            }
        )
    return items


def _wait_for_new_object(
    component, segment: int, newer_than: datetime, process, timeout: float = 60.0
) -> str:
    """Poll the segment prefix until an object written after ``newer_than`` appears; return
    its key. Fails if the process exits first."""
    s3 = boto3.client("s3")
    prefix = s3_layout.segment_prefix(
        component.data_prefix, component.instance, datetime.fromisoformat(DAY).date(), segment
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = s3.list_objects_v2(Bucket=component.data_bucket, Prefix=prefix)
        fresh = [o["Key"] for o in listing.get("Contents", []) if o["LastModified"] > newer_than]
        if fresh:
            return fresh[0]
        if process.poll() is not None:
            raise AssertionError(
                f"the extract process exited ({process.returncode}) before it wrote an object"
            )
        time.sleep(0.005)
    raise AssertionError("the re-run wrote no object within the timeout")


def test_segment_extract_killed_mid_upload_reruns_to_identical_objects_and_rows(
    local_stack, stack_env, instance, unique_name, tmp_path
):
    make_table(unique_name, _killable_items(random.Random(3)))
    component = make_component(unique_name, segments=2, entity_rule={"attribute": "sk"})
    pipeline = Pipeline(component, instance)
    key = pipeline.segment_key(DAY, 0)
    staging_schema = component.staging_schema(datetime.fromisoformat(DAY).date(), 0)
    dsn = stack_env["ETL_WAREHOUSE_DSN"]

    pipeline.materialize("data_schemas")
    pipeline.materialize("segment_csv", key)
    pipeline.materialize("staging", key)
    baseline = segment_objects(component, DAY, 0)
    baseline_rows = schema_rows(dsn, staging_schema)
    manifest_key = next(k for k in baseline if k.endswith("_manifest.json"))
    csv_keys = sorted(k for k in baseline if k.endswith(".csv.gz"))
    assert len(csv_keys) >= 4, csv_keys
    assert sum(len(baseline[k][0]) for k in csv_keys) > 5_000_000  # uploads take a while
    assert all(baseline_rows.values()) and len(baseline_rows) == len(csv_keys)

    # S3 LastModified has one-second resolution: start the re-run in a later second.
    written = max(modified for _, modified in baseline.values())
    while datetime.now(UTC) < written + timedelta(seconds=1.1):
        time.sleep(0.05)
    process = start_materialize_process(
        component, "segment_csv", DAY, "0", log=tmp_path / "extract.log"
    )
    try:
        first = _wait_for_new_object(component, 0, written, process)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert process.returncode == -signal.SIGKILL

    interrupted = segment_objects(component, DAY, 0)
    # the killed run wrote under its own extract prefix: the manifest still points, unchanged,
    # at the complete earlier extract, whose objects are untouched
    assert interrupted[manifest_key][0] == baseline[manifest_key][0]
    assert all(interrupted[k][0] == baseline[k][0] for k in csv_keys)
    rewritten = sorted(k for k, (_, modified) in interrupted.items() if modified > written)
    assert first in rewritten and not set(rewritten) & set(baseline)

    reloaded = pipeline.materialize("staging", key)  # loads the complete earlier extract
    assert reloaded.success
    assert schema_rows(dsn, staging_schema) == baseline_rows

    pipeline.materialize("segment_csv", key)
    pipeline.materialize("staging", key)
    rerun = segment_objects(component, DAY, 0)
    manifests = [json.loads(objs[manifest_key][0]) for objs in (baseline, rerun)]
    assert manifests[1]["extract_id"] != manifests[0]["extract_id"]
    # the killed run's partial objects are gone; the replaced extract is kept for one more run
    assert not set(rewritten) & set(rerun)
    rerun_csv = sorted(k for k in rerun if k.endswith(".csv.gz") and k not in baseline)
    assert [k.rsplit("/", 1)[1] for k in rerun_csv] == [k.rsplit("/", 1)[1] for k in csv_keys]
    for new, old in zip(rerun_csv, csv_keys, strict=True):
        assert rerun[new][0] == baseline[old][0], f"{new} differs from the uninterrupted run"
    for manifest in manifests:
        for field in ("extracted_at", "extract_id"):
            manifest.pop(field)
        for entry in manifest["objects"].values():
            entry.pop("uri")
    assert manifests[0] == manifests[1]
    assert schema_rows(dsn, staging_schema) == baseline_rows


# -- publish: failure before the swap, rollback, readers ------------------------------------


def _put(table: str, items: list[dict]) -> None:
    client = boto3.client("dynamodb")
    for item in items:
        client.put_item(TableName=table, Item=item)


def _extract_and_stage(pipeline: Pipeline, day: str = DAY) -> None:
    for segment in range(pipeline.component.total_segments):
        pipeline.materialize("segment_csv", pipeline.segment_key(day, segment))
        pipeline.materialize("staging", pipeline.segment_key(day, segment))


def _schema_exists(dsn: str, schema: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return (
            conn.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
            ).fetchone()
            is not None
        )


def test_a_publish_failing_between_centralize_and_swap_leaves_the_published_schema_as_it_was(
    local_stack, stack_env, instance, unique_name
):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    make_table(unique_name, entity_items(60))
    component = make_component(unique_name, segments=2, entity_rule={"attribute": "sk"})
    pipeline = Pipeline(component, instance)
    assert pipeline.run_date().success
    target = component.target_schema
    version_a = schema_rows(dsn, target)
    assert set(version_a) == {"_order", "_order__lines", "_user"}

    # Version B differs from A (more items, changed values), then one staged segment is
    # corrupted: a duplicate key row, as a half-retried load would leave it.
    _put(unique_name, entity_items(60, tag="v2") + entity_items(20, start=60, tag="v2"))
    _extract_and_stage(pipeline)
    staging = component.staging_schema(datetime.fromisoformat(DAY).date(), 0)
    with psycopg.connect(dsn) as conn:
        table = sql.Identifier(staging, "_user")
        duplicate = sql.SQL("INSERT INTO {0} SELECT * FROM {0} LIMIT 1").format(table)
        assert conn.execute(duplicate).rowcount == 1

    failed = pipeline.materialize("published", DAY, raise_on_error=False)
    assert not failed.success
    checks = {c.check_name: c.passed for c in failed.get_asset_check_evaluations()}
    assert checks["primary_keys_unique"] is False
    assert checks["row_counts_match_extract"] is False
    assert checks["no_orphan_child_rows"] is True
    assert "stopped before the swap" in failure_text(failed)
    assert not failed.get_asset_materialization_events()

    assert schema_rows(dsn, target) == version_a
    left = schema_rows(dsn, f"{target}__new")  # left for inspection, with the duplicate in it
    assert len(left["_user"]) == len(set(left["_user"])) + 1
    assert any("'v2'" in row for row in left["_user"])


def test_the_rollback_job_restores_the_previous_version_and_a_second_run_rolls_forward(
    local_stack, stack_env, instance, unique_name
):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    make_table(unique_name, entity_items(40))
    component = make_component(unique_name, segments=2, entity_rule={"attribute": "sk"})
    pipeline = Pipeline(component, instance)
    assert pipeline.run_date(DAY).success
    version_a = schema_rows(dsn, component.target_schema)
    _put(unique_name, entity_items(40, tag="v2") + entity_items(10, start=40, tag="v2"))
    assert pipeline.run_date("2026-11-03", schemas=False).success
    version_b = schema_rows(dsn, component.target_schema)
    assert version_b != version_a and len(version_b["_user"]) == 25

    job = pipeline.defs.get_job_def(f"dynamodb_{unique_name}_rollback_publish")
    assert job.execute_in_process(instance=instance).success
    assert schema_rows(dsn, component.target_schema) == version_a
    assert schema_rows(dsn, f"{component.target_schema}__previous") == version_b

    assert job.execute_in_process(instance=instance).success
    assert schema_rows(dsn, component.target_schema) == version_b
    assert schema_rows(dsn, f"{component.target_schema}__previous") == version_a


def test_a_reader_during_three_publishes_never_sees_an_error_an_empty_or_a_partial_table(
    local_stack, stack_env, instance, unique_name
):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    make_table(unique_name, entity_items(800))
    component = make_component(unique_name, segments=2, entity_rule={"attribute": "sk"})
    pipeline = Pipeline(component, instance)
    assert pipeline.run_date().success
    target = component.target_schema
    queries = [
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(target, t))
        for t in ("_order", "_user")
    ]
    samples: list[tuple[float, int, int]] = []
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    counts = [conn.execute(q).fetchone()[0] for q in queries]
                except psycopg.Error as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                samples.append((time.monotonic(), *counts))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    windows = []
    try:
        while not samples:
            time.sleep(0.01)
        for _ in range(3):
            began = time.monotonic()
            assert pipeline.materialize("published", DAY).success
            windows.append((began, time.monotonic()))
    finally:
        stop.set()
        reader.join(30)
    assert errors == []
    assert {(o, u) for _, o, u in samples} == {(400, 400)}
    for began, ended in windows:
        assert sum(began <= t <= ended for t, _, _ in samples) > 20, "the reader was not reading"


def test_two_publishes_of_the_same_target_at_once_both_succeed_one_after_the_other(
    local_stack, stack_env, instance, unique_name, tmp_path
):
    """A backfill of two dates can launch both publishes in one daemon tick. Both centralize
    into the same ``<target>__new``: without serialization one drops or swaps the other's
    schema. Here the overlap is forced: the staging tables of both dates are locked until both
    publish processes are waiting inside the warehouse, then released together."""
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    days = ["2026-11-03", "2026-11-04"]
    make_table(unique_name, entity_items(200))
    component = make_component(unique_name, segments=2, entity_rule={"attribute": "sk"})
    pipeline = Pipeline(component, instance)
    pipeline.materialize("data_schemas")
    _extract_and_stage(pipeline, days[0])
    _put(unique_name, entity_items(200, tag="v2") + entity_items(50, start=200, tag="v2"))
    _extract_and_stage(pipeline, days[1])
    staged = [
        sql.Identifier(component.staging_schema(datetime.fromisoformat(d).date(), s), t)
        for d in days
        for s in range(component.total_segments)
        for t in ("_order", "_order__lines", "_user")
    ]

    with psycopg.connect(dsn) as blocker, psycopg.connect(dsn, autocommit=True) as monitor:
        blocker.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.SQL(", ").join(staged))
        )
        processes = [
            start_materialize_process(component, "published", d, log=tmp_path / f"{d}.log")
            for d in days
        ]
        try:
            deadline = time.monotonic() + 90
            while True:
                waiting = monitor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> %s",
                    (blocker.info.backend_pid,),
                ).fetchone()[0]
                if waiting >= 2:
                    break
                assert all(p.poll() is None for p in processes), "a publish exited early"
                assert time.monotonic() < deadline, "the publishes never met in the warehouse"
                time.sleep(0.1)
            time.sleep(0.5)
            blocker.commit()  # both go at once
            codes = [p.wait(120) for p in processes]
        finally:
            for p in processes:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(10)
    logs = "\n".join((tmp_path / f"{d}.log").read_text()[-3000:] for d in days)
    assert codes == [0, 0], logs

    target = component.target_schema
    tags = {}
    with psycopg.connect(dsn) as conn:
        for schema in (target, f"{target}__previous"):
            if not conn.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchone():
                continue  # the older date published second: checked, not swapped in
            versions = {
                row
                for table in ("_user", "_order")
                for row in conn.execute(
                    sql.SQL("SELECT _tag, count(*) FROM {} GROUP BY _tag").format(
                        sql.Identifier(schema, table)
                    )
                )
            }
            # one whole version per schema: 100 + 100 rows of v1 or 125 + 125 of v2
            assert versions in ({("v1", 100)}, {("v2", 125)}), f"{schema}: {versions}"
            tags[schema] = versions.pop()[0]
            marker = conn.execute(
                sql.SQL("SELECT partition_date::text FROM {}").format(
                    sql.Identifier(schema, "_etl_publish")
                )
            ).fetchone()[0]
            assert marker == {"v1": days[0], "v2": days[1]}[tags[schema]], schema
    # whichever finished first, the newer date is what readers see
    assert tags[target] == "v2"
    assert tags.get(f"{target}__previous", "v1") == "v1"
    assert not _schema_exists(dsn, f"{target}__new")


# -- attributes the cached data-schema does not know ----------------------------------------


def _latest_fingerprint(component) -> str:
    body = (
        boto3.client("s3")
        .get_object(
            Bucket=component.schema_cache_bucket,
            Key=s3_layout.data_schema_latest_key(component.schema_cache_prefix, component.instance),
        )["Body"]
        .read()
    )
    return json.loads(body)["fingerprint"]


def _extract_all(pipeline: Pipeline) -> list[dg.ExecuteInProcessResult]:
    return [
        pipeline.materialize("segment_csv", pipeline.segment_key(DAY, s), raise_on_error=False)
        for s in range(pipeline.component.total_segments)
    ]


NEW_ATTRIBUTE = {
    "pk": {"S": "P90001"},
    "sk": {"S": "USER#90001"},
    "n": {"N": "7"},
    "tag": {"S": "v1"},
    "profile": {"M": {"name": {"S": "new"}, "age": {"N": "1"}, "nickname": {"S": "Nick\nName"}}},
}
TYPE_CHANGE = {
    "pk": {"S": "P90002"},
    "sk": {"S": "ORDER#90002"},
    "n": {"M": {"amount": {"N": "12.50"}, "currency": {"S": "EUR"}}},
    "tag": {"S": "v1"},
}


@pytest.mark.parametrize(
    ("item", "path"),
    [(NEW_ATTRIBUTE, "profile.nickname"), (TYPE_CHANGE, "n")],
    ids=["new-attribute", "number-becomes-map"],
)
def test_policy_fail_names_the_item_key_and_attribute_path(
    local_stack, instance, unique_name, item, path
):
    make_table(unique_name, entity_items(30))
    component = make_component(
        unique_name, segments=2, entity_rule={"attribute": "sk"}, unknown_attributes="fail"
    )
    pipeline = Pipeline(component, instance)
    pipeline.materialize("data_schemas")
    cached = _latest_fingerprint(component)
    _put(unique_name, [item])

    results = _extract_all(pipeline)
    failed = [r for r in results if not r.success]
    assert len(failed) == 1, "exactly the segment holding the item fails"
    message = failure_text(failed[0])
    assert f"pk={item['pk']['S']!r}, sk={item['sk']['S']!r}" in message
    assert f"attribute {path}:" in message
    assert _latest_fingerprint(component) == cached  # the cache is not widened under "fail"


def test_policy_evolve_widens_caches_and_publishes_new_and_retyped_attributes(
    local_stack, stack_env, instance, unique_name
):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    make_table(unique_name, entity_items(30))
    component = make_component(
        unique_name, segments=2, entity_rule={"attribute": "sk"}, unknown_attributes="evolve"
    )
    pipeline = Pipeline(component, instance)
    pipeline.materialize("data_schemas")
    cached = _latest_fingerprint(component)
    _put(unique_name, [NEW_ATTRIBUTE, TYPE_CHANGE])

    results = _extract_all(pipeline)
    assert all(r.success for r in results)
    assert _latest_fingerprint(component) != cached
    s3 = boto3.client("s3")
    day = datetime.fromisoformat(DAY).date()
    columns = {}
    for segment in range(component.total_segments):
        key = s3_layout.segment_manifest_key(component.data_prefix, unique_name, day, segment)
        manifest = json.loads(s3.get_object(Bucket=component.data_bucket, Key=key)["Body"].read())
        for table in manifest["data_schema"]["tables"]:
            columns |= {(table["name"], tuple(c["path"])): c["name"] for c in table["columns"]}
    nickname = columns[("_user", ("profile", "nickname"))]
    number = columns[("_order", ("n",))]

    for segment in range(component.total_segments):
        pipeline.materialize("staging", pipeline.segment_key(DAY, segment))
    assert pipeline.materialize("published", DAY).success
    target = component.target_schema
    with psycopg.connect(dsn) as conn:

        def value(table: str, column: str, pk: str) -> tuple:
            query = sql.SQL("SELECT {c}::text, pg_typeof({c})::text FROM {t} WHERE pk = %s")
            return conn.execute(
                query.format(c=sql.Identifier(column), t=sql.Identifier(target, table)), (pk,)
            ).fetchone()

        assert value("_user", nickname, "P90001")[0] == "Nick\nName"
        assert value("_user", nickname, "P00000")[0] is None
        # number → map widened the column to JSON; the number stays exact (12.50, not 12.5)
        amount = '{"amount": 12.50, "currency": "EUR"}'
        assert value("_order", number, "P90002") == (amount, "jsonb")
        assert value("_order", number, "P00001") == ("1", "jsonb")
