"""Issue 10's file format setting on the local stack (real S3 events on SQS, real PostgreSQL,
real sensor ticks and runs of the micro-batch component): Parquet files load exactly and merge,
and a CSV with COPY options (``;``, a header row, a NULL marker) loads as written.

One file format per instance, so the merge across formats is checked per instance: Parquet
files against the test's own merge model (``model_fold``), as the CSV acceptance test does."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import dagster as dg
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl_platform_tests.integration.microbatch_world import (
    COLUMNS,
    MicrobatchWorld,
    Row,
    model_fold,
)

T = datetime(2026, 11, 30, 8, tzinfo=UTC)
T1, T2, T3 = T, T + timedelta(hours=1), T + timedelta(hours=2)
DAY = "orders/dt=2026-11-30/"
WIDE_COLUMNS = [
    *COLUMNS,
    {"name": "amount", "kind": "decimal", "precision": 38, "scale": 6},
    {"name": "big", "kind": "bigint"},
]
WIDE_TYPES = {
    "id": pa.int64(),
    "region": pa.string(),
    "ts": pa.timestamp("us", tz="UTC"),
    "val": pa.string(),
    "del": pa.bool_(),
    "amount": pa.decimal128(38, 6),
    "big": pa.int64(),
}


@pytest.fixture
def world(local_stack, fresh_database, unique_name):
    with dg.instance_for_test() as instance:
        yield MicrobatchWorld(unique_name, fresh_database, instance)


def use(world: MicrobatchWorld, **overrides: Any) -> None:
    world.component = world.make_component(world.component.instance, "mb.items", **overrides)
    world.defs = world.definitions(world.component)


def parquet_bytes(rows: list[tuple], names: list[str], types: dict[str, pa.DataType]) -> bytes:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    table = pa.table({n: pa.array(list(c), types[n]) for n, c in zip(names, columns, strict=True)})
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=2)  # several row groups per file
    return out.getvalue()


def table_rows(world: MicrobatchWorld, columns: list[str]) -> list[tuple]:
    with psycopg.connect(world.dsn) as conn:
        select = f"SELECT {', '.join(columns)} FROM mb.items ORDER BY id, region"
        return [tuple(r) for r in conn.execute(select).fetchall()]


def test_parquet_loads_every_value_exactly(world):
    # merge off (append): every row lands as written, a true `del` included
    use(world, columns=WIDE_COLUMNS, file_format={"kind": "parquet"}, merge={"enabled": False})
    names = [c["name"] for c in WIDE_COLUMNS]
    rows = [
        (1, "eu", T1.replace(microsecond=123456), "", False, Decimal("0.000001"), 2**63 - 1),
        (2, "eu", None, None, None, None, None),
        (3, "é ü", datetime(1, 1, 1, tzinfo=UTC), 'q"uo,te\nline\r\nü✓𝄞', True,
         Decimal("-12345678901234567890123456789012.123456"), -(2**63)),
        (4, "us", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "NULL", False,
         Decimal("1000.000000"), 0),
    ]  # fmt: skip
    # columns in another order than the table's: matched by name
    shuffled = list(reversed(names))
    world.put_raw(
        DAY + "all-values.parquet",
        parquet_bytes([tuple(reversed(r)) for r in rows], shuffled, WIDE_TYPES),
    )
    world.tick_and_run()
    loaded = table_rows(world, names)
    assert loaded == rows
    assert [str(r[5]) for r in loaded] == [str(r[5]) for r in rows]  # scale kept
    assert loaded[0][3] == "" and loaded[1][3] is None  # empty string and NULL stay apart


def test_parquet_files_merge_latest_timestamp_wins(world):
    use(world, file_format={"kind": "parquet"})
    names = [c["name"] for c in COLUMNS]
    types = {n: WIDE_TYPES[n] for n in names}
    f1: list[Row] = [
        (1, "eu", T1, "a", False),
        (1, "eu", T2, "b", False),
        (2, "eu", T1, "x", False),
        (2, "eu", T1, "y", False),  # tie within the file: later row wins
        (3, "eu", None, "n", False),
    ]
    f2: list[Row] = [(1, "eu", T2, "c", False), (4, "us", T3, "four", False)]
    world.put_raw(DAY + "f1.parquet", parquet_bytes(f1, names, types))
    world.put_raw(DAY + "f2.parquet", parquet_bytes(f2, names, types))
    world.tick_and_run()
    expected = model_fold({}, [f1, f2])
    assert world.table() == expected
    f3: list[Row] = [(4, "us", T1, "older", False), (1, "eu", T3, "d", True)]
    world.put_raw(DAY + "f3.parquet", parquet_bytes(f3, names, types))
    world.tick_and_run()
    expected = model_fold(expected, [f3])
    assert world.table() == expected
    assert world.table()[(4, "us")][3] == "four" and (1, "eu") not in expected


def test_a_parquet_file_without_a_target_column_fails_naming_file_and_column(world):
    use(world, file_format={"kind": "parquet"})
    names = ["id", "region", "ts", "val"]  # no `del`
    world.put_raw(
        DAY + "narrow.parquet",
        parquet_bytes([(1, "eu", T1, "a")], names, {n: WIDE_TYPES[n] for n in names}),
    )
    (request,) = world.tick()
    result = world.run(request)
    assert not result.success
    failure = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert "narrow.parquet" in failure and "target column 'del' is missing" in failure
    assert world.table() == {}


def test_semicolon_csv_with_header_and_null_marker(world):
    use(world, file_format={"delimiter": ";", "header": True, "null_marker": "NULL"})
    text = (
        "id;region;ts;val;del\n"  # the header row is skipped
        '1;eu;2026-11-30T08:00:00+00:00;"semi;colon";false\n'
        '2;eu;NULL;"NULL";NULL\n'  # NULL marker unquoted = NULL; quoted = the text
        '3;"é ü";2026-11-30T09:00:00.000001+00:00;"";false\n'
    )
    world.put_raw(DAY + "options.csv.gz", gzip.compress(text.encode(), mtime=0))
    world.tick_and_run()
    assert world.table() == {
        (1, "eu"): (1, "eu", T1, "semi;colon", False),
        (2, "eu"): (2, "eu", None, "NULL", None),
        (3, "é ü"): (3, "é ü", T2.replace(microsecond=1), "", False),
    }
