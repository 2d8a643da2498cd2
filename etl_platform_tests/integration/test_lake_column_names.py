"""Source column names the lake cannot keep are normalized, end to end (issue 8, point 15): the
Parquet and Glue names are plain, the mapping is recorded in Glue and in the materialization,
and the values under the normalized names equal the source's."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import dagster as dg
import psycopg

from etl_platform.core import lake as le

from .test_lake_component import (
    component,
    evaluations,
    lake,
    materializations,
    materialize,
    read_day,
    source_rows,
)

__all__ = ["lake"]  # the fixture, imported for the test below

DDL = """
CREATE TABLE "Odd Names" (
    "ID" bigint PRIMARY KEY,
    "Unit Price" numeric(10,2),
    unit_price int,
    "Year" int,
    "order" text,
    "1st" boolean,
    "a""b" text,
    "Prénom" text,
    "Created At" timestamptz NOT NULL)
"""
ROWS = [
    (1, "9.99", 7, 2026, "first", True, 'q"uote', "Zoë", "2026-04-02 10:00:00+00"),
    (2, None, None, None, None, None, None, None, "2026-04-02 23:59:59+00"),
    (3, "0.01", -1, 1999, "", False, "", "", "2026-04-03 00:00:00+00"),
]


def test_odd_source_names_are_normalized_with_a_recorded_mapping_and_exact_values(lake):
    with psycopg.connect(lake["dsn"]) as conn:
        conn.execute(DDL)
        with conn.cursor() as cur:
            cur.executemany(
                'INSERT INTO "Odd Names" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)', ROWS
            )
    c = component(
        lake,
        [
            {
                "name": "Odd Names",
                "lake_name": "odd",
                "date_column": "Created At",
                "primary_key": ["ID"],
            }
        ],
    )
    result = materialize(c, "odd", dg.DagsterInstance.ephemeral(), partition="2026-04-02")
    assert result.success
    assert all(ev.passed for ev in evaluations(result).values())

    source_names = ["ID", "Unit Price", "unit_price", "Year", "order", "1st", 'a"b', "Prénom"]
    mapping = le.lake_column_names([*source_names, "Created At"])
    assert mapping["unit_price"] == "unit_price" and mapping["Year"] == "year_"
    assert mapping["Unit Price"] != "unit_price"  # the collision is resolved

    # Glue: plain column names only, the mapping as a table parameter and in the comments
    table = lake["glue"].get_table(DatabaseName=lake["glue_database"], Name="odd")["Table"]
    columns = table["StorageDescriptor"]["Columns"]
    assert [col["Name"] for col in columns] == list(mapping.values())
    assert all(le.is_plain_name(col["Name"]) for col in columns)
    recorded = json.loads(table["Parameters"]["source_column_names"])
    assert recorded == {v: k for k, v in mapping.items() if k != v}
    assert '"Unit Price"' in columns[1]["Comment"]

    # the materialization records it too
    md = materializations(result)["2026-04-02"].metadata
    assert md["source_column_names"].value == recorded
    described = {col.name: col.description for col in md["dagster/column_schema"].schema.columns}
    assert "'Prénom'" in described[mapping["Prénom"]]

    # round trip: the values under the normalized names are the source's
    lake_rows = sorted(read_day(lake, "odd", date(2026, 4, 2)).to_pylist(), key=lambda r: r["id"])
    window = le.day_window(date(2026, 4, 2))
    want = source_rows(
        lake["dsn"],
        'SELECT * FROM "Odd Names" WHERE "Created At" >= %s AND "Created At" < %s ORDER BY 1',
        window,
    )
    assert [{mapping[k]: v for k, v in row.items()} for row in want] == lake_rows
    assert lake_rows[0][mapping["Unit Price"]] == Decimal("9.99")
