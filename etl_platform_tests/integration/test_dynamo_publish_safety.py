"""Published data stays right (issue 8): one publish or rollback of a target at a time, publish
uses exactly what staging loaded, extracts never change objects a load may read, grants survive
the swap, staging is retained by policy. Real local stack: moto server, PostgreSQL, Dagster."""

from __future__ import annotations

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

from etl_platform.core.warehouse import PUBLISH_MARKER_TABLE

from .dynamo_pipeline import (
    DAY,
    REPO_ROOT,
    Pipeline,
    entity_items,
    failure_text,
    make_component,
    make_table,
    start_materialize_process,
)

DAY1, DAY2 = "2026-11-03", "2026-11-04"
TABLES = ("order", "order__lines", "user")


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
            for table in ("order", "user")
            for row in conn.execute(
                sql.SQL("SELECT DISTINCT tag FROM {}").format(sql.Identifier(schema, table))
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
    pool = f"warehouse_publish:{unique_name}_pub"
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
