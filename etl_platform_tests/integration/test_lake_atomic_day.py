"""A lake day is replaced atomically for readers (issue 8, point 5), on the session stack.

The reader is what Athena, Spark or a Glue crawler does: ask Glue for the day's partition, list
the S3 prefix it points at, read every Parquet part there. Whatever moment it reads at (while a
re-run is uploading, after a re-run failed midway), it gets exactly one whole export.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pyarrow.parquet as pq

from etl_platform.components.lake_export import READ_BACK_CHECK, day_export
from etl_platform.core import s3_layout

from .test_lake_component import (
    attrs_of,
    component,
    defs_of,
    evaluations,
    lake,
    listing,
    materialize,
    s3fs,
)

__all__ = ["lake"]  # the fixture, imported for the tests below

REAL_EXPORT = day_export.export_day
CHILD = Path(__file__).with_name("lake_export_child.py")
DAY = date(2026, 3, 10)
PARTITION = DAY.isoformat()


def seed(dsn: str, ids: range) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS daily (id bigint PRIMARY KEY, created_at timestamptz)"
        )
        start = datetime.combine(DAY, datetime.min.time(), UTC)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO daily VALUES (%s, %s)",
                [(i, start + timedelta(seconds=i)) for i in ids],
            )


def source_ids(dsn: str) -> set[int]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM daily").fetchall()}


def glue_location(lake: dict[str, Any]) -> str | None:
    glue = lake["glue"]
    try:
        partition = glue.get_partition(
            DatabaseName=lake["glue_database"],
            TableName="daily",
            PartitionValues=list(s3_layout.partition_values(DAY)),
        )["Partition"]
    except glue.exceptions.EntityNotFoundException:
        return None
    return partition["StorageDescriptor"]["Location"]


def read_as_a_reader(lake: dict[str, Any]) -> list[int] | None:
    """The day's ids as a Glue reader sees them (None: no partition registered)."""
    location = glue_location(lake)
    if location is None:
        return None
    bucket, prefix = s3_layout.split_s3_uri(location)
    keys = s3_layout.lake_part_keys(listing(lake, prefix))
    filesystem = s3fs(lake)
    ids: list[int] = []
    for k in keys:
        ids += pq.read_table(f"{bucket}/{k}", filesystem=filesystem).column("id").to_pylist()
    return sorted(ids)


def read_rows_as_a_reader(lake: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of the day as a Glue reader sees it, ordered by id."""
    location = glue_location(lake)
    assert location is not None
    bucket, prefix = s3_layout.split_s3_uri(location)
    filesystem = s3fs(lake)
    rows: list[dict[str, Any]] = []
    for k in s3_layout.lake_part_keys(listing(lake, prefix)):
        rows += pq.read_table(f"{bucket}/{k}", filesystem=filesystem).to_pylist()
    return sorted(rows, key=lambda r: r["id"])


def small_parts_with_reader(monkeypatch, lake, seen: list, fail_after: int | None = None):
    """Exports in parts of 10 rows; after every part uploaded, a reader reads the day (and the
    upload fails after ``fail_after`` parts, when given: a re-run dying midway)."""

    def export(source, table, date_column, window, *, sink, **kw):
        uploaded = [0]

        def sink_then_read(part):
            location = sink(part)
            uploaded[0] += 1
            seen.append(read_as_a_reader(lake))
            if fail_after is not None and uploaded[0] >= fail_after:
                raise RuntimeError(f"killed after {uploaded[0]} uploaded part(s) (simulated)")
            return location

        return REAL_EXPORT(
            source, table, date_column, window, sink=sink_then_read, **{**kw, "part_rows": 10}
        )

    monkeypatch.setattr(day_export, "export_day", export)


def test_reader_sees_one_whole_export_during_a_rerun_and_after_a_failed_one(lake, monkeypatch):
    c = component(lake, [{"name": "daily", "date_column": "created_at"}])
    instance = dg.DagsterInstance.ephemeral()
    seed(lake["dsn"], range(30))
    v1 = sorted(source_ids(lake["dsn"]))

    seen: list = []
    small_parts_with_reader(monkeypatch, lake, seen)
    first = materialize(c, "daily", instance, partition=PARTITION)
    assert first.success
    assert seen == [None, None, None]  # nothing registered before the first export is whole
    assert read_as_a_reader(lake) == v1

    # the source changes; while the re-run uploads its 4 parts, readers see exactly v1
    with psycopg.connect(lake["dsn"]) as conn:
        conn.execute("DELETE FROM daily WHERE id < 5")
    seed(lake["dsn"], range(100, 115))
    v2 = sorted(source_ids(lake["dsn"]))
    seen.clear()
    rerun = materialize(c, "daily", instance, partition=PARTITION)
    assert rerun.success
    assert seen == [v1] * 4
    assert read_as_a_reader(lake) == v2
    location = glue_location(lake)
    assert location.endswith(f"/day=10/run={rerun.run_id}/")
    # the checks read the new export, and nothing but it is left under the day
    read_back = evaluations(rerun)[(PARTITION, READ_BACK_CHECK)]
    assert read_back.passed and read_back.metadata["parts"].value == 4
    assert all(u.startswith(location) for u in read_back.metadata["s3_uris"].value)
    day_prefix = s3_layout.lake_partition_prefix("warehouse-lake", "daily", DAY)
    bucket = lake["bucket"]
    assert all(s3_layout.s3_uri(bucket, k).startswith(location) for k in listing(lake, day_prefix))

    # a re-run that dies after 2 of its parts leaves v2 registered and whole
    with psycopg.connect(lake["dsn"]) as conn:
        conn.execute("DELETE FROM daily WHERE id >= 100")
    v3 = sorted(source_ids(lake["dsn"]))
    seen.clear()
    small_parts_with_reader(monkeypatch, lake, seen, fail_after=2)
    failed = materialize(c, "daily", instance, partition=PARTITION, raise_on_error=False)
    assert not failed.success
    assert seen and all(s == v2 for s in seen)
    assert glue_location(lake) == location
    assert read_as_a_reader(lake) == v2

    # the next export replaces it whole, and the dead run's parts go too
    seen.clear()
    small_parts_with_reader(monkeypatch, lake, seen)
    again = materialize(c, "daily", instance, partition=PARTITION)
    assert again.success
    assert seen == [v2] * 3
    assert read_as_a_reader(lake) == v3
    new_location = glue_location(lake)
    assert all(
        s3_layout.s3_uri(bucket, k).startswith(new_location) for k in listing(lake, day_prefix)
    )
    assert all(ev.passed for ev in evaluations(again).values())


def table_versions(lake: dict[str, Any]) -> int:
    return len(
        lake["glue"].get_table_versions(DatabaseName=lake["glue_database"], TableName="daily")[
            "TableVersions"
        ]
    )


def test_rerun_adds_no_glue_table_version_and_keeps_hand_set_parameters(lake):
    seed(lake["dsn"], range(5))
    tables = [{"name": "daily", "date_column": "created_at", "primary_key": ["id"]}]
    c = component(lake, tables)
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(c, "daily", instance, partition=PARTITION).success

    # someone sets a table parameter by hand (in the console, with Athena, with Lake Formation)
    glue, db = lake["glue"], lake["glue_database"]
    table = glue.get_table(DatabaseName=db, Name="daily")["Table"]
    allowed = {"Name", "Description", "StorageDescriptor", "PartitionKeys", "TableType"}
    hand = {k: v for k, v in table.items() if k in allowed}
    hand["Parameters"] = {**table["Parameters"], "owner_team": "finance"}
    glue.update_table(DatabaseName=db, TableInput=hand)
    versions = table_versions(lake)

    for _ in range(2):
        assert materialize(c, "daily", instance, partition=PARTITION).success
    assert table_versions(lake) == versions  # nothing changed: no new table version
    params = glue.get_table(DatabaseName=db, Name="daily")["Table"]["Parameters"]
    assert params["owner_team"] == "finance" and params["primary_key"] == "id"

    # a real change (compression) updates the table once, keeping the hand-set parameter
    snappy = component(lake, tables, compression="snappy")
    assert materialize(snappy, "daily", instance, partition=PARTITION).success
    assert materialize(snappy, "daily", instance, partition=PARTITION).success
    assert table_versions(lake) == versions + 1
    params = glue.get_table(DatabaseName=db, Name="daily")["Table"]["Parameters"]
    assert params["owner_team"] == "finance" and params["parquet.compression"] == "SNAPPY"


def test_one_export_per_table_at_a_time_is_a_pool_per_table(lake):
    c = component(
        lake,
        [{"name": "daily", "date_column": "created_at"}, {"name": "other", "date_column": "ts"}],
    )
    defs = defs_of(c)
    pools = {
        key.path[-1]: defs.resolve_assets_def(key).op.pool
        for key in (dg.AssetKey(["lake", "t", "daily"]), dg.AssetKey(["lake", "t", "other"]))
    }
    db = c.glue_database
    assert pools == {"daily": f"lake_export/{db}.daily", "other": f"lake_export/{db}.other"}


def unregistered_parts(lake: dict[str, Any]) -> list[str]:
    """Part keys under the day's prefix but not under the registered location."""
    _, registered = s3_layout.split_s3_uri(glue_location(lake) or "s3://x/-")
    day_prefix = s3_layout.lake_partition_prefix("warehouse-lake", "daily", DAY)
    keys = s3_layout.lake_part_keys(listing(lake, day_prefix))
    return [k for k in keys if not k.startswith(registered)]


def start_export_process(lake: dict[str, Any], tmp_path: Path) -> subprocess.Popen:
    """The real lake export of the day in a child process (see ``lake_export_child``)."""
    attrs = attrs_of(lake, [{"name": "daily", "date_column": "created_at"}])
    with open(tmp_path / "child.log", "wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps(attrs), "daily", PARTITION],
            env={**os.environ, "TMPDIR": str(tmp_path)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for_a_part_under_its_own_prefix(
    lake: dict[str, Any], child: subprocess.Popen, tmp_path: Path
) -> list[str]:
    deadline = time.monotonic() + 180  # a bound on a hung child, not a timing assertion
    while not (parts := unregistered_parts(lake)):
        log = (tmp_path / "child.log").read_bytes().decode(errors="replace")[-3000:]
        assert child.poll() is None, f"the export ended before it was killed:\n{log}"
        assert time.monotonic() < deadline, f"no part uploaded by the export:\n{log}"
        time.sleep(0.2)
    return parts


def test_a_rerun_killed_by_sigkill_midway_leaves_the_previous_export_whole(
    lake, tmp_path, monkeypatch
):
    c = component(lake, [{"name": "daily", "date_column": "created_at"}])
    instance = dg.DagsterInstance.ephemeral()
    seed(lake["dsn"], range(30))
    assert materialize(c, "daily", instance, partition=PARTITION).success
    v1_location, v1_rows = glue_location(lake), read_rows_as_a_reader(lake)
    assert [r["id"] for r in v1_rows] == list(range(30))

    # the source changes, and a re-run of the day is SIGKILLed after uploading a part
    with psycopg.connect(lake["dsn"]) as conn:
        conn.execute("DELETE FROM daily WHERE id < 5")
    seed(lake["dsn"], range(100, 115))
    child = start_export_process(lake, tmp_path)
    try:
        left = wait_for_a_part_under_its_own_prefix(lake, child, tmp_path)
        assert read_rows_as_a_reader(lake) == v1_rows  # while it runs
    finally:
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    assert "/run=" in left[0] and s3_layout.s3_uri(lake["bucket"], left[0]) not in v1_location

    # readers still get exactly the previous export: same location, rows and values
    assert glue_location(lake) == v1_location
    assert read_rows_as_a_reader(lake) == v1_rows
    assert unregistered_parts(lake)  # the killed run's parts stay, unregistered
    assert list(tmp_path.glob("lake-export-*/part-*"))  # its spooled part is on local disk

    # the next export replaces the day whole and deletes what the killed run left, on S3 and
    # in the machine's temporary directory
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    again = materialize(c, "daily", instance, partition=PARTITION)
    assert again.success and all(ev.passed for ev in evaluations(again).values())
    assert [r["id"] for r in read_rows_as_a_reader(lake)] == sorted(source_ids(lake["dsn"]))
    assert glue_location(lake).endswith(f"/run={again.run_id}/")
    assert unregistered_parts(lake) == []
    day_prefix = s3_layout.lake_partition_prefix("warehouse-lake", "daily", DAY)
    _, registered = s3_layout.split_s3_uri(glue_location(lake))
    assert all(k.startswith(registered) for k in listing(lake, day_prefix))
    assert not list(tmp_path.glob("lake-export-*"))
