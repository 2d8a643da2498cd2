"""Pure pieces of the lake's atomic day replacement: the export prefix, which parts a flip
supersedes, and when the Glue table needs an update (issue 8, point 5)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from etl_platform.core import lake as le
from etl_platform.core import s3_layout

DAY = date(2024, 3, 1)
SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])


def test_each_export_of_a_day_has_a_prefix_of_its_own_under_the_day():
    day_prefix = s3_layout.lake_partition_prefix("lake", "orders", DAY)
    a = s3_layout.lake_export_prefix("lake", "orders", DAY, "run-a")
    b = s3_layout.lake_export_prefix("lake", "orders", DAY, "run-b-retry1")
    assert a == "lake/orders/year=2024/month=03/day=01/run=run-a/"
    assert a.startswith(day_prefix) and b.startswith(day_prefix) and a != b
    for bad in ("", "a/b", "../x", "a b", "-x", "x" * 129):
        with pytest.raises(ValueError, match="export id"):
            s3_layout.lake_export_prefix("lake", "orders", DAY, bad)


def test_superseded_parts_are_every_part_of_the_day_outside_the_current_export():
    day = s3_layout.lake_partition_prefix("lake", "orders", DAY)
    current = s3_layout.lake_export_prefix("lake", "orders", DAY, "new")
    old = s3_layout.lake_export_prefix("lake", "orders", DAY, "old")
    listed = [
        current + "part-00000.parquet",
        current + "part-00001.parquet",
        old + "part-00000.parquet",
        day + "part-00000.parquet",  # the older flat layout
        day + "_SUCCESS",
        old + "notes.txt",
    ]
    assert s3_layout.superseded_part_keys(listed, current) == [
        day + "part-00000.parquet",
        old + "part-00000.parquet",
    ]
    assert s3_layout.lake_part_keys(listed) == sorted(k for k in listed if "part-" in k)
    with pytest.raises(ValueError, match="must end with '/'"):
        s3_layout.superseded_part_keys(listed, current.rstrip("/"))


def test_partition_input_points_at_the_export_prefix_under_the_day():
    table = "s3://bkt/lake/orders/"
    location = "s3://bkt/" + s3_layout.lake_export_prefix("lake", "orders", DAY, "r1")
    pi = le.glue_partition_input(table, SCHEMA, DAY, location=location)
    assert pi["StorageDescriptor"]["Location"] == location
    assert pi["Values"] == ["2024", "03", "01"]
    with pytest.raises(ValueError, match="not under the day"):
        le.glue_partition_input(table, SCHEMA, DAY, location="s3://bkt/lake/orders/elsewhere/")


def as_stored(table_input: dict) -> dict:
    """What get_table returns for a table created from ``table_input`` (with Glue's own
    read-only fields)."""
    return {
        **table_input,
        "DatabaseName": "db",
        "CreateTime": "2026-01-01T00:00:00Z",
        "VersionId": "3",
        "IsRegisteredWithLakeFormation": False,
    }


def test_glue_table_update_only_when_the_definition_differs_and_parameters_merge():
    desired = le.glue_table_input("orders", SCHEMA, "s3://bkt/lake/orders/")
    existing = as_stored(desired)
    assert le.glue_table_update(existing, desired) is None

    # a parameter set by hand, an owner: still nothing to update, and never wiped
    existing["Parameters"] = {**existing["Parameters"], "owner_team": "finance"}
    existing["Owner"] = "data-eng"
    assert le.glue_table_update(existing, desired) is None

    # a managed change: an update that keeps the hand-set parameter and the owner
    wider = SCHEMA.append(pa.field("extra", pa.float64()))
    update = le.glue_table_update(
        existing, le.glue_table_input("orders", wider, "s3://bkt/lake/orders/")
    )
    assert update is not None
    assert update["Parameters"]["owner_team"] == "finance" and update["Owner"] == "data-eng"
    assert [c["Name"] for c in update["StorageDescriptor"]["Columns"]] == ["id", "v", "extra"]
    assert not {"DatabaseName", "CreateTime", "VersionId"} & set(update)

    # a managed parameter changed by hand is set back; the compression is one
    existing["Parameters"]["parquet.compression"] = "GZIP"
    update = le.glue_table_update(existing, desired)
    assert update is not None and update["Parameters"]["parquet.compression"] == "ZSTD"
    assert update["Parameters"]["owner_team"] == "finance"
