"""Published data stays right (issue 8): one publish or rollback of a target at a time, publish
uses exactly what staging loaded, extracts never change objects a load may read, grants survive
the swap, staging is retained by policy. Real local stack: moto server, PostgreSQL, Dagster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import date
from pathlib import Path

import boto3
import dagster as dg
import psycopg
import pytest
import yaml
from psycopg import sql

from etl_platform.core import s3_layout
from etl_platform.core.warehouse import PUBLISH_MARKER_TABLE

from .dynamo_pipeline import (
    REPO_ROOT,
    Pipeline,
    entity_items,
    failure_text,
    make_component,
    make_table,
    start_materialize_process,
)

DAY1, DAY2 = "2026-11-03", "2026-11-04"
TABLES = ("_order", "_order__lines", "_user")


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _put(table: str, items: list[dict]) -> None:
    client = boto3.client("dynamodb")
    for item in items:
        client.put_item(TableName=table, Item=item)


def _extract_and_stage(pipeline: Pipeline, day: str) -> None:
    for segment in range(pipeline.component.total_segments):
        assert pipeline.materialize("segment_csv", pipeline.segment_key(day, segment)).success
        assert pipeline.materialize("staging", pipeline.segment_key(day, segment)).success


def _marker_and_tags(dsn: str, schema: str) -> tuple[str | None, set[str]]:
    """The schema's ``_etl_publish`` date and the set of data versions (tags) it holds."""
    with psycopg.connect(dsn) as conn:
        marker = conn.execute(
            sql.SQL("SELECT partition_date::text FROM {}").format(
                sql.Identifier(schema, PUBLISH_MARKER_TABLE)
            )
        ).fetchone()
        tags = {
            row[0]
            for table in ("_order", "_user")
            for row in conn.execute(
                sql.SQL("SELECT DISTINCT _tag FROM {}").format(sql.Identifier(schema, table))
            )
        }
    return (marker[0] if marker else None), tags


def _wait_for_lock_waiters(dsn: str, blocker_pid: int, count: int, processes: list) -> None:
    with psycopg.connect(dsn, autocommit=True) as monitor:
        deadline = time.monotonic() + 90
        while True:
            waiting = monitor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> %s",
                (blocker_pid,),
            ).fetchone()[0]
            if waiting >= count:
                return
            assert all(p.poll() is None for p in processes), "a run exited early"
            assert time.monotonic() < deadline, "the runs never met in the warehouse"
            time.sleep(0.1)


def _finish(processes: list[subprocess.Popen[bytes]], timeout: float = 120) -> list[int]:
    try:
        return [p.wait(timeout) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)


# -- 1. one publish or rollback of a target at a time ---------------------------------------


def test_publish_and_rollback_share_a_pool_of_one_per_target(local_stack, unique_name):
    defs = Pipeline(make_component(unique_name), dg.DagsterInstance.ephemeral()).defs
    published = defs.get_assets_def(dg.AssetKey(["warehouse", unique_name, "published"]))
    rollback = defs.get_job_def(f"dynamodb_{unique_name}_rollback_publish")
    pool = f"warehouse_publish/{unique_name}_pub"
    assert published.node_def.pool == pool
    assert [node.definition.pool for node in rollback.graph.node_dict.values()] == [pool]
    for path in ("dagster.yaml", "deploy/dagster.yaml"):
        config = yaml.safe_load((REPO_ROOT / path).read_text())
        assert config["concurrency"]["pools"]["default_limit"] == 1, path


def test_local_instance_gives_an_unset_pool_the_limit_one(tmp_path: Path):
    (tmp_path / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as inst:
        assert inst.get_concurrency_config().pool_config.default_pool_limit == 1


def test_a_publish_racing_a_rollback_leaves_every_marker_matching_its_data(
    local_stack, stack_env, instance, unique_name, tmp_path
):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    make_table(unique_name, entity_items(60, tag="v1"))
    component = make_component(unique_name, segments=1, entity_rule={"attribute": "sk"})
    pipeline = Pipeline(component, instance)
    assert pipeline.run_date(DAY1).success
    _put(unique_name, entity_items(60, tag="v2") + entity_items(10, start=60, tag="v2"))
    _extract_and_stage(pipeline, DAY2)
    staged = [
        sql.Identifier(component.staging_schema(date.fromisoformat(DAY2), 0), t) for t in TABLES
    ]

    with psycopg.connect(dsn) as blocker:
        blocker.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.SQL(", ").join(staged))
        )
        publish = start_materialize_process(
            component, "published", DAY2, log=tmp_path / "publish.log"
        )
        processes = [publish]
        _wait_for_lock_waiters(dsn, blocker.info.backend_pid, 1, processes)
        processes.append(start_materialize_process(component, "rollback", log=tmp_path / "rb.log"))
        _wait_for_lock_waiters(dsn, blocker.info.backend_pid, 2, processes)
        time.sleep(0.5)
        blocker.commit()
        codes = _finish(processes)
    logs = "\n".join(p.read_text()[-3000:] for p in tmp_path.glob("*.log"))
    assert codes == [0, 0], logs

    version_of = {DAY1: {"v1"}, DAY2: {"v2"}}
    target = component.target_schema
    live, previous = (_marker_and_tags(dsn, s) for s in (target, f"{target}__previous"))
    assert live[1] == version_of[live[0]] and previous[1] == version_of[previous[0]]
    assert (live[0], previous[0]) == (DAY1, DAY2)  # the publish went first, then the rollback


# -- 2. publish uses exactly what staging loaded --------------------------------------------


def test_publish_refuses_a_segment_staged_before_its_re_extract(
    local_stack, stack_env, instance, unique_name
):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    make_table(unique_name, entity_items(40, tag="v1"))
    component = make_component(unique_name, segments=2, entity_rule={"attribute": "sk"})
    pipeline = Pipeline(component, instance)
    assert pipeline.run_date(DAY1).success
    _put(unique_name, entity_items(40, tag="v2"))
    assert pipeline.materialize("segment_csv", pipeline.segment_key(DAY1, 1)).success

    refused = pipeline.materialize("published", DAY1, raise_on_error=False)
    assert not refused.success
    text = failure_text(refused)
    assert f"segment 1 of {DAY1}" in text and "older than the manifest" in text, text
    assert f"partition {DAY1}|1" in text
    assert _marker_and_tags(dsn, component.target_schema) == (DAY1, {"v1"})

    assert pipeline.materialize("staging", pipeline.segment_key(DAY1, 1)).success
    assert pipeline.materialize("published", DAY1).success


def test_publish_refuses_segments_of_two_splits(local_stack, stack_env, instance, unique_name):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    make_table(unique_name, entity_items(40, tag="v1"))
    old = make_component(unique_name, segments=2, entity_rule={"attribute": "sk"})
    assert Pipeline(old, instance).run_date(DAY1).success
    attributes = {**old.model_dump(mode="json"), "total_segments": 1}
    pipeline = Pipeline(type(old)(**attributes), instance)

    refused = pipeline.materialize("published", DAY1, raise_on_error=False)
    assert "segment 0 of 2026-11-03 was extracted with total_segments=2" in failure_text(refused)
    assert pipeline.materialize("segment_csv", pipeline.segment_key(DAY1, 0)).success
    refused = pipeline.materialize("published", DAY1, raise_on_error=False)
    assert "segment 0 of 2026-11-03 was staged with total_segments=2" in failure_text(refused)
    assert pipeline.materialize("staging", pipeline.segment_key(DAY1, 0)).success
    assert pipeline.materialize("published", DAY1).success
    with psycopg.connect(dsn) as conn:
        users = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(old.target_schema, "_user"))
        ).fetchone()[0]
    assert users == 20  # every item once: no segment of the old split is in the publish


# -- 3. extracts never change objects a load may be reading ---------------------------------


def _manifest(component, day: str, segment: int) -> dict:
    key = s3_layout.segment_manifest_key(
        component.data_prefix, component.instance, date.fromisoformat(day), segment
    )
    body = boto3.client("s3").get_object(Bucket=component.data_bucket, Key=key)["Body"].read()
    return json.loads(body)


def _extract_ids(component, day: str, segment: int) -> set[str]:
    prefix = s3_layout.segment_prefix(
        component.data_prefix, component.instance, date.fromisoformat(day), segment
    )
    listing = boto3.client("s3").list_objects_v2(Bucket=component.data_bucket, Prefix=prefix)
    return {
        key[len(prefix) :].split("/")[0].removeprefix("extract=")
        for key in (o["Key"] for o in listing.get("Contents", []))
        if key[len(prefix) :].startswith("extract=")
    }


def test_a_staging_load_racing_a_re_extract_reads_one_consistent_extract(
    local_stack, stack_env, instance, unique_name, tmp_path
):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    make_table(unique_name, entity_items(40, tag="v1"))
    component = make_component(unique_name, segments=1, entity_rule={"attribute": "sk"})
    pipeline = Pipeline(component, instance)
    key = pipeline.segment_key(DAY1, 0)
    pipeline.materialize("data_schemas")
    assert pipeline.materialize("segment_csv", key).success
    assert pipeline.materialize("staging", key).success
    first = _manifest(component, DAY1, 0)["extract_id"]
    staging = component.staging_schema(date.fromisoformat(DAY1), 0)

    with psycopg.connect(dsn) as blocker:
        # the staging load reads the manifest, then waits to drop its old schema
        blocker.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(sql.Identifier(staging, "_user"))
        )
        load = start_materialize_process(
            component, "staging", DAY1, "0", log=tmp_path / "staging.log"
        )
        _wait_for_lock_waiters(dsn, blocker.info.backend_pid, 1, [load])
        _put(unique_name, entity_items(40, tag="v2") + entity_items(10, start=40, tag="v2"))
        assert pipeline.materialize("segment_csv", key).success  # the manifest flips
        blocker.commit()
        codes = _finish([load])
    assert codes == [0], (tmp_path / "staging.log").read_text()[-3000:]
    second = _manifest(component, DAY1, 0)["extract_id"]
    assert second != first

    with psycopg.connect(dsn) as conn:
        users = conn.execute(
            sql.SQL("SELECT _tag, count(*) FROM {} GROUP BY _tag").format(
                sql.Identifier(staging, "_user")
            )
        ).fetchall()
        record = conn.execute(
            sql.SQL("SELECT extract_id FROM {}").format(sql.Identifier(staging, "_etl_staged"))
        ).fetchone()[0]
    assert users == [("v1", 20)] and record == first  # the whole first extract, nothing else
    assert not pipeline.materialize("published", DAY1, raise_on_error=False).success

    # the previous extract is kept for loads that read the old manifest; older ones go
    assert _extract_ids(component, DAY1, 0) == {first, second}
    assert pipeline.materialize("segment_csv", key).success
    third = _manifest(component, DAY1, 0)["extract_id"]
    assert _extract_ids(component, DAY1, 0) == {second, third}
    assert pipeline.materialize("staging", key).success
    assert pipeline.materialize("published", DAY1).success
    assert _marker_and_tags(dsn, component.target_schema) == (DAY1, {"v2"})


# -- 6. grants survive the swap --------------------------------------------------------------


def test_a_reader_role_can_query_the_published_tables_after_the_second_publish(
    local_stack, stack_env, instance, unique_name
):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    role = f"{unique_name}_reader"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    make_table(unique_name, entity_items(20, tag="v1"))
    component = make_component(
        unique_name, segments=1, entity_rule={"attribute": "sk"}, grants={role: ["select"]}
    )
    pipeline = Pipeline(component, instance)
    assert pipeline.run_date(DAY1).success
    _put(unique_name, entity_items(20, tag="v2"))
    assert pipeline.run_date(DAY2, schemas=False).success
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        tags = conn.execute(
            sql.SQL("SELECT DISTINCT _tag FROM {}").format(
                sql.Identifier(component.target_schema, "_user")
            )
        ).fetchall()
        assert tags == [("v2",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                sql.SQL("DELETE FROM {}").format(sql.Identifier(component.target_schema, "_user"))
            )


@pytest.mark.parametrize(
    ("grants", "named"),
    [({"reader": ["DROP"]}, "'DROP'"), ({"Reader": ["SELECT"]}, "'Reader'"), ({"r": []}, "'r'")],
)
def test_grants_are_checked_when_the_yaml_loads(local_stack, unique_name, grants, named):
    with pytest.raises(ValueError, match=named):
        make_component(unique_name, grants=grants)


# -- 7. staging is retained by policy --------------------------------------------------------


def _schemas_of(dsn: str, target: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s) ORDER BY 1",
            (target,),
        ).fetchall()
    return [r[0] for r in rows]


def test_the_schema_count_stays_bounded_across_five_published_dates(
    local_stack, stack_env, instance, unique_name
):
    dsn = stack_env["ETL_WAREHOUSE_DSN"]
    make_table(unique_name, entity_items(20, tag="v1"))
    component = make_component(
        unique_name, segments=2, keep_staging_days=2, entity_rule={"attribute": "sk"}
    )
    pipeline = Pipeline(component, instance)
    days = [f"2026-11-{d:02d}" for d in range(2, 7)]
    counts = []
    for i, day in enumerate(days):
        assert pipeline.run_date(day, schemas=i == 0).success
        counts.append(len(_schemas_of(dsn, component.target_schema)))
    target = component.target_schema
    staged = [component.staging_schema(date.fromisoformat(d), s) for d in days[-2:] for s in (0, 1)]
    assert _schemas_of(dsn, target) == sorted([target, f"{target}__previous", *staged])
    assert counts[1:] == [counts[1]] * 4, counts  # bounded from the second date on
    prefix = s3_layout.dynamo_instance_prefix(component.data_prefix, component.instance)
    listing = boto3.client("s3").list_objects_v2(
        Bucket=component.data_bucket, Prefix=prefix, Delimiter="/"
    )
    folders = sorted(p["Prefix"][len(prefix) :] for p in listing.get("CommonPrefixes", []))
    assert folders == [f"date={d}/" for d in days[-2:]]
    assert _marker_and_tags(dsn, f"{target}__previous")[0] == days[-2]  # one rollback back
