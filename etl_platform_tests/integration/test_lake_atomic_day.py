"""A lake day is replaced atomically for readers (issue 8, point 5), on the session stack.

The reader is what Athena, Spark or a Glue crawler does: ask Glue for the day's partition, list
the S3 prefix it points at, read every Parquet part there. Whatever moment it reads at (while a
re-run is uploading, after a re-run failed midway), it gets exactly one whole export.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg
import pyarrow.parquet as pq

from etl_platform.components.lake_export import READ_BACK_CHECK, day_export
from etl_platform.core import s3_layout

from .test_lake_component import (
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
