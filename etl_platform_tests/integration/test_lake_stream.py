"""The lake export against a real PostgreSQL: exact types, day boundaries whatever the session
time zone, bounded parts, failures that name the column, and the S3/Glue hand-off on moto.

The source is read through ``SourceDatabase`` (what ``SourcePostgresResource`` hands out), the
parts are written by the pure core and spooled by the export step's day export."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from etl_platform.components.lake_export.day_export import export_day, plan_table
from etl_platform.components.lake_export.part_spool import LocalDirectorySink
from etl_platform.core import lake as le
from etl_platform.core import s3_layout
from etl_platform.resources.source_database import SourceDatabase, SourcePostgresError

DAY = date(2024, 3, 1)
WINDOW = le.day_window(DAY)


@pytest.fixture
def pg_uri(fresh_database: str) -> str:
    """A database of its own on the session stack's PostgreSQL, for each test."""
    return fresh_database


@pytest.fixture
def conn(pg_uri: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_uri, autocommit=True) as c:
        yield c


@pytest.fixture
def tname(unique_name: str) -> str:
    return f"lx_{unique_name}"


def export_at(uri: str, table: str, date_column: str, window: le.Window, **kw) -> le.ExportResult:
    """``export_day`` from the database at ``uri`` (``statement_timeout_ms`` is the source's)."""
    source = SourceDatabase(uri, statement_timeout_ms=kw.pop("statement_timeout_ms", None))
    return export_day(source, table, date_column, window, **kw)


def count_rows(uri: str, table: str, date_column: str, window: le.Window) -> int:
    return SourceDatabase(uri).count_window(le.parse_table_name(table), date_column, window)


def export_local(uri: str, table: str, date_column: str, out: Path, **kw) -> le.ExportResult:
    return export_at(uri, table, date_column, WINDOW, sink=LocalDirectorySink(out), **kw)


def read_rows(result: le.ExportResult) -> list[dict]:
    table = pa.concat_tables(pq.read_table(p) for p in result.locations)
    assert table.schema.equals(result.schema, check_metadata=False)
    return table.to_pylist()


# --------------------------------------------------------------------------------------- types

NOTE = 'line1\nline2\r\n"quoted", back\\slash, tab\tend, unicode é ✓ 🎉'


def test_every_type_exact_with_nulls(conn, pg_uri, tname, tmp_path):
    conn.execute(f"CREATE TYPE {tname}_mood AS ENUM ('happy', 'sad')")
    conn.execute(f"CREATE DOMAIN {tname}_amt AS numeric(12,2) CHECK (VALUE > 0)")
    conn.execute(
        f"""CREATE TABLE {tname} (
            id bigint PRIMARY KEY, created_at timestamptz NOT NULL, local_ts timestamp, d date,
            amount numeric(18,4), big numeric(38,0), free numeric, neg numeric(5,-2),
            dom {tname}_amt, payload jsonb, raw_json json, tags text[], ints int[],
            bigs bigint[], nums numeric(10,2)[], uuids uuid[], flag bool, i2 smallint, i4 int,
            f8 float8, f4 real, note text, vc varchar(10), ch char(3), blob bytea, u uuid,
            mood {tname}_mood, iv interval, tm time, addr inet, tstz_arr timestamptz[])"""
    )
    conn.execute(
        f"""INSERT INTO {tname} VALUES (1, '2024-03-01 23:59:59.999999+00',
            '2024-03-01 12:34:56.123456', '2024-03-01', 12345678901234.5678,
            99999999999999999999999999999999999999, 1234.5678901234, 12300, 5.25,
            '{{"a": [1, "x\\ny"], "b": null}}', ' {{"k" :1}} ', ARRAY['a', NULL, %s, ''],
            '{{1,NULL,3}}', '{{9223372036854775807,-9223372036854775808}}',
            '{{1.50,NULL,-2.25}}', ARRAY['00000000-0000-0000-0000-000000000001'::uuid], true,
            -32768, 2147483647, 1e308, 1.5, %s, 'abc', 'ab', '\\x00ff10',
            '123e4567-e89b-12d3-a456-426614174000', 'sad', '1 day 02:03:04', '12:34:56.789',
            '10.0.0.1/8', ARRAY['2024-03-01 01:00:00+01'::timestamptz])""",
        ("multi\nline", NOTE),
    )
    conn.execute(f"INSERT INTO {tname} (id, created_at) VALUES (2, '2024-03-01 00:00:00+00')")

    result = export_local(pg_uri, tname, "created_at", tmp_path)
    assert result.rows == 2 and len(result.parts) == 1
    types = {f.name: f.type for f in result.schema}
    assert types == {
        "id": pa.int64(),
        "created_at": pa.timestamp("us", tz="UTC"),
        "local_ts": pa.timestamp("us"),
        "d": pa.date32(),
        "amount": pa.decimal128(18, 4),
        "big": pa.decimal128(38, 0),
        "free": pa.decimal128(38, 10),
        "neg": pa.decimal128(7, 0),
        "dom": pa.decimal128(12, 2),
        "payload": pa.string(),
        "raw_json": pa.string(),
        "tags": pa.list_(pa.string()),
        "ints": pa.list_(pa.int32()),
        "bigs": pa.list_(pa.int64()),
        "nums": pa.list_(pa.decimal128(10, 2)),
        "uuids": pa.list_(pa.string()),
        "flag": pa.bool_(),
        "i2": pa.int16(),
        "i4": pa.int32(),
        "f8": pa.float64(),
        "f4": pa.float32(),
        "note": pa.string(),
        "vc": pa.string(),
        "ch": pa.string(),
        "blob": pa.binary(),
        "u": pa.string(),
        "mood": pa.string(),
        "iv": pa.string(),
        "tm": pa.string(),
        "addr": pa.string(),
        "tstz_arr": pa.list_(pa.timestamp("us", tz="UTC")),
    }
    assert not result.schema.field("id").nullable and result.schema.field("amount").nullable
    assert result.schema.field("amount").metadata[b"postgres.type"] == b"numeric(18,4)"

    rows = {r["id"]: r for r in read_rows(result)}
    r = rows[1]
    assert r["created_at"] == datetime(2024, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert r["local_ts"] == datetime(2024, 3, 1, 12, 34, 56, 123456)
    assert r["d"] == date(2024, 3, 1)
    assert r["amount"] == Decimal("12345678901234.5678")
    assert r["big"] == Decimal("9" * 38)
    assert r["free"] == Decimal("1234.5678901234")
    assert r["neg"] == Decimal(12300)
    assert r["dom"] == Decimal("5.25")
    assert json.loads(r["payload"]) == {"a": [1, "x\ny"], "b": None}
    assert r["raw_json"] == ' {"k" :1} '  # json keeps its text exactly
    assert r["tags"] == ["a", None, "multi\nline", ""]
    assert r["ints"] == [1, None, 3]
    assert r["bigs"] == [2**63 - 1, -(2**63)]
    assert r["nums"] == [Decimal("1.50"), None, Decimal("-2.25")]
    assert r["uuids"] == ["00000000-0000-0000-0000-000000000001"]
    assert (r["flag"], r["i2"], r["i4"], r["f8"], r["f4"]) == (True, -32768, 2**31 - 1, 1e308, 1.5)
    assert r["note"] == NOTE
    assert (r["vc"], r["ch"]) == ("abc", "ab ")
    assert r["blob"] == b"\x00\xff\x10"
    assert r["u"] == "123e4567-e89b-12d3-a456-426614174000"
    assert (r["mood"], r["iv"], r["tm"], r["addr"]) == (
        "sad",
        "1 day 02:03:04",
        "12:34:56.789",
        "10.0.0.1/8",
    )
    assert r["tstz_arr"] == [datetime(2024, 3, 1, 0, 0, tzinfo=UTC)]
    assert all(v is None for k, v in rows[2].items() if k not in ("id", "created_at"))

    # export_schema predicts the schema without reading rows
    assert plan_table(SourceDatabase(pg_uri), tname, "created_at").schema.equals(result.schema)
    le.read_back_check([Path(p) for p in result.locations], 2, result.schema)


# ------------------------------------------------------------------------------- day boundaries


@pytest.fixture
def far_tz_uri(pg_uri: str, conn) -> Iterator[str]:
    """A database whose sessions default to UTC+14: the export must not depend on it."""
    name = f"tz_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.execute(
        sql.SQL("ALTER DATABASE {} SET TimeZone = 'Pacific/Kiritimati'").format(
            sql.Identifier(name)
        )
    )
    uri = psycopg.conninfo.make_conninfo(pg_uri, dbname=name)
    try:
        yield uri
    finally:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_day_boundaries_timestamptz_any_offset_any_session_zone(far_tz_uri, tname, tmp_path):
    with psycopg.connect(far_tz_uri, autocommit=True) as c:
        assert c.execute("SHOW TimeZone").fetchone()[0] == "Pacific/Kiritimati"
        c.execute(f"CREATE TABLE {tname} (id int, ts timestamptz)")
        c.execute(
            f"""INSERT INTO {tname} VALUES
            (1, '2024-02-29 23:59:59.999999+00'), (2, '2024-03-01 00:00:00+00'),
            (3, '2024-03-01 23:59:59.999999+00'), (4, '2024-03-02 00:00:00+00'),
            (5, '2024-03-01 03:00:00+05'),  -- 02-29 22:00Z
            (6, '2024-02-29 21:00:00-05'),  -- 03-01 02:00Z
            (7, '2024-03-01 23:30:00-01'),  -- 03-02 00:30Z
            (8, '2024-03-01 10:00:00'),     -- session zone +14: 02-29 20:00Z
            (9, NULL)"""
        )
    result = export_local(far_tz_uri, tname, "ts", tmp_path)
    rows = read_rows(result)
    assert sorted(r["id"] for r in rows) == [2, 3, 6]
    assert {r["ts"] for r in rows} == {
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2024, 3, 1, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 3, 1, 2, tzinfo=UTC),
    }
    assert count_rows(far_tz_uri, tname, "ts", WINDOW) == 3 == result.rows
    # the neighbouring days together hold the rest (none lost, none twice)
    prev_w, next_w = le.day_window(DAY - timedelta(days=1)), le.day_window(DAY + timedelta(1))
    assert count_rows(far_tz_uri, tname, "ts", prev_w) == 3  # 1, 5, 8
    assert count_rows(far_tz_uri, tname, "ts", next_w) == 2  # 4, 7


def test_day_boundaries_timestamp_and_date_columns(far_tz_uri, tname, tmp_path):
    with psycopg.connect(far_tz_uri, autocommit=True) as c:
        c.execute(f"CREATE TABLE {tname} (id int, lts timestamp, d date)")
        c.execute(
            f"""INSERT INTO {tname} VALUES
            (1, '2024-02-29 23:59:59.999999', '2024-02-29'),
            (2, '2024-03-01 00:00:00', '2024-03-01'),
            (3, '2024-03-01 23:59:59.999999', '2024-03-01'),
            (4, '2024-03-02 00:00:00', '2024-03-02')"""
        )
    for col in ("lts", "d"):
        result = export_local(far_tz_uri, tname, col, tmp_path / col)
        assert sorted(r["id"] for r in read_rows(result)) == [2, 3], col
        assert count_rows(far_tz_uri, tname, col, WINDOW) == 2


# ----------------------------------------------------------------------------------- parts


def _fill(conn, tname: str, n: int, *, extra: str = "") -> None:
    conn.execute(f"CREATE TABLE {tname} (id bigint, ts timestamptz, note text, amount numeric)")
    conn.execute(
        f"""INSERT INTO {tname} SELECT g,
            '2024-03-01'::timestamptz + (g::bigint * 86399 / {n}) * interval '1 second',
            'note ' || g || E'\\nline 2', g / 7.0
            FROM generate_series(1, {n}) g"""
    )
    if extra:
        conn.execute(extra)


def test_parts_by_rows_and_progress(conn, pg_uri, tname, tmp_path):
    _fill(conn, tname, 3500)
    progress: list[int] = []
    result = export_local(
        pg_uri,
        tname,
        "ts",
        tmp_path,
        part_rows=1000,
        batch_size_hint_bytes=16 * 1024,
        progress=progress.append,
        unconstrained_numeric=(38, 20),
    )
    assert [p.rows for p in result.parts] == [1000, 1000, 1000, 500]
    assert [p.name for p in result.parts] == [s3_layout.part_name(i) for i in range(4)]
    assert result.locations == [str(tmp_path / s3_layout.part_name(i)) for i in range(4)]
    assert result.bytes == sum(os.path.getsize(p) for p in result.locations)
    assert result.rows == 3500 and sorted(r["id"] for r in read_rows(result)) == list(
        range(1, 3501)
    )
    assert progress == sorted(progress) and progress[-1] == 3500 and len(progress) > 1
    report = le.read_back_check(result.locations, 3500, result.schema)
    assert report.parts == 4
    with pytest.raises(le.ReadBackError, match="row count"):
        le.read_back_check(result.locations[:3], 3500, result.schema)


def test_parts_by_bytes_and_row_groups(conn, pg_uri, tname, tmp_path):
    _fill(conn, tname, 3000)
    result = export_local(
        pg_uri,
        tname,
        "ts",
        tmp_path,
        part_bytes=1,  # every row group closes its part
        row_group_rows=700,
        compression="snappy",
        threaded=False,
        unconstrained_numeric=(38, 20),
    )
    assert [p.rows for p in result.parts] == [700, 700, 700, 700, 200]
    md = pq.ParquetFile(result.locations[0]).metadata
    assert md.num_row_groups == 1
    assert md.row_group(0).column(0).compression == "SNAPPY"
    result = export_local(
        pg_uri, tname, "ts", tmp_path / "z", row_group_rows=1000, unconstrained_numeric=(38, 20)
    )
    md = pq.ParquetFile(result.locations[0]).metadata
    assert (len(result.parts), md.num_row_groups) == (1, 3)
    assert md.row_group(0).column(0).compression == "ZSTD"


def test_empty_day_writes_one_empty_part(conn, pg_uri, tname, tmp_path):
    _fill(conn, tname, 10)
    w = le.day_window(date(2030, 1, 1))
    result = export_at(pg_uri, tname, "ts", w, sink=LocalDirectorySink(tmp_path))
    assert result.rows == 0 and len(result.parts) == 1 and result.parts[0].rows == 0
    le.read_back_check(result.locations, 0, result.schema)
    assert pq.read_table(result.locations[0]).num_rows == 0


def test_quoted_identifiers_and_column_list(conn, pg_uri, tmp_path):
    schema = f"Sales {uuid.uuid4().hex[:6]}"
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    t = sql.Identifier(schema, "Order Items")
    conn.execute(
        sql.SQL('CREATE TABLE {} (id int, "Created At" timestamptz, "we""ird" text, x int)').format(
            t
        )
    )
    conn.execute(sql.SQL("INSERT INTO {} VALUES (1, '2024-03-01 12:00Z', 'a', 5)").format(t))
    result = export_local(
        pg_uri, f"{schema}.Order Items", "Created At", tmp_path, columns=['we"ird', "id"]
    )
    # the quoted source column is read as is; its lake name is plain (issue 8, point 15)
    assert result.schema.names == ["we_ird", "id"]
    assert le.source_column_names(result.schema) == {"we_ird": 'we"ird'}
    assert read_rows(result) == [{"we_ird": "a", "id": 1}]
    assert result.table == f"{schema}.Order Items"


# ------------------------------------------------------------------------------------ failures


def test_clear_errors_for_config_mistakes(conn, pg_uri, tname, tmp_path):
    conn.execute(f"CREATE TABLE {tname} (id int, ts timestamptz, day_text text, big numeric(40,2))")
    sink = LocalDirectorySink(tmp_path)
    with pytest.raises(SourcePostgresError, match=r"table public\.nope_x not found"):
        export_at(pg_uri, "public.nope_x", "ts", WINDOW, sink=sink)
    with pytest.raises(le.LakeExportError, match=rf"{tname}: no date column 'created'"):
        export_at(pg_uri, tname, "created", WINDOW, sink=sink)
    with pytest.raises(le.LakeExportError, match=rf"{tname}: no column 'nope'"):
        export_at(pg_uri, tname, "ts", WINDOW, sink=sink, columns=["id", "nope"])
    with pytest.raises(le.UnsupportedColumnError, match=rf"{tname}\.day_text.*type text"):
        count_rows(pg_uri, tname, "day_text", WINDOW)
    with pytest.raises(le.UnsupportedColumnError, match=rf"{tname}\.big.*precision 40"):
        export_at(pg_uri, tname, "ts", WINDOW, sink=sink)
    with pytest.raises(SourcePostgresError, match=rf"{tname}: cannot connect to the source"):
        count_rows("postgresql://postgres@/postgres?host=/nonexistent", tname, "ts", WINDOW)
    with pytest.raises(ValueError, match="compression"):
        export_at(pg_uri, tname, "ts", WINDOW, sink=sink, compression="gzip")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("ddl_type", "value", "match"),
    [
        ("numeric", "1.00000000001", r"\.v \(numeric → decimal128\(38, 10\)\).*1\.00000000001"),
        ("numeric", "1e30", r"\.v .*1000000000000000000000000000000"),
        ("numeric(10,2)", "'NaN'", r"\.v .*'nan'"),
        ("numeric", "'-Infinity'", r"\.v .*'-inf"),
        ("timestamptz", "'infinity'", r"\.v .*infinite"),
        ("timestamp", "'-infinity'", r"\.v .*infinite"),
        ("date", "'infinity'", r"\.v .*infinite"),
        ("int[]", "'{{1,2},{3,4}}'", r"\.v .*multi-dimensional"),
        ("timestamptz[]", "ARRAY['infinity'::timestamptz]", r"\.v .*infinite"),
    ],
)
def test_values_that_do_not_fit_fail_naming_the_column(
    conn, pg_uri, tname, tmp_path, ddl_type, value, match
):
    conn.execute(f"CREATE TABLE {tname} (id int, ts timestamptz, v {ddl_type})")
    conn.execute(f"INSERT INTO {tname} VALUES (1, '2024-03-01 01:00Z', NULL)")
    conn.execute(f"INSERT INTO {tname} VALUES (2, '2024-03-01 02:00Z', {value})")
    with pytest.raises(le.ValueOutOfRangeError, match=rf"{tname}{match}"):
        export_local(pg_uri, tname, "ts", tmp_path / "a")
    assert not list((tmp_path / "a").glob("*.parquet"))
    # the escape hatch: the PostgreSQL text form, exactly
    result = export_local(pg_uri, tname, "ts", tmp_path / "b", as_text=["v"])
    assert result.schema.field("v").type == pa.string()
    assert len(read_rows(result)) == 2


def test_failure_mid_stream_stops_promptly_and_cleans_spool(conn, pg_uri, tname, tmp_path):
    _fill(
        conn,
        tname,
        200_000,
        extra=f"INSERT INTO {tname} VALUES (0, '2024-03-01 12:00Z', 'bad', 'NaN')",
    )
    spool = tmp_path / "spool"
    delivered: list[str] = []

    def sink(part: le.FinishedPart) -> str:
        delivered.append(part.name)
        return str(part.path)

    t0 = time.monotonic()
    with pytest.raises(le.ValueOutOfRangeError, match=rf"{tname}\.amount.*nan"):
        export_at(
            pg_uri,
            tname,
            "ts",
            WINDOW,
            sink=sink,
            part_rows=20_000,
            spool_dir=spool,
            unconstrained_numeric=(38, 20),
        )
    assert time.monotonic() - t0 < 60
    assert delivered  # parts before the bad row reached the sink...
    assert not list(spool.glob("*.parquet"))  # ...and nothing is left behind locally
    # the export's connection is gone (no backend still streaming the table)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        n = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
            (f"%{tname}%",),
        ).fetchone()[0]
        if n == 0:
            break
        time.sleep(0.1)
    assert n == 0


def test_sink_failure_propagates(conn, pg_uri, tname, tmp_path):
    _fill(conn, tname, 3000)

    def sink(part: le.FinishedPart) -> str:
        if part.index == 1:
            raise RuntimeError("upload failed")
        return "ok"

    with pytest.raises(RuntimeError, match="upload failed"):
        export_at(
            pg_uri,
            tname,
            "ts",
            WINDOW,
            sink=sink,
            part_rows=1000,
            spool_dir=tmp_path,
            unconstrained_numeric=(38, 20),
        )
    assert not list(tmp_path.glob("*.parquet"))


def test_statement_timeout_on_a_locked_table(conn, pg_uri, tname, tmp_path):
    _fill(conn, tname, 10)
    ready, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(pg_uri) as c:
            c.execute(f"LOCK TABLE {tname} IN ACCESS EXCLUSIVE MODE")
            ready.set()
            release.wait(30)

    th = threading.Thread(target=hold_lock)
    th.start()
    try:
        assert ready.wait(10)
        t0 = time.monotonic()
        with pytest.raises(SourcePostgresError, match=rf"{tname}.*statement timeout"):
            export_local(pg_uri, tname, "ts", tmp_path, statement_timeout_ms=500)
        assert time.monotonic() - t0 < 10
    finally:
        release.set()
        th.join()


# ------------------------------------------------------------------------- S3 + Glue (moto)


@pytest.fixture
def moto_endpoint(stack_env: dict[str, str]) -> str:
    """The session stack's moto server."""
    return stack_env["AWS_ENDPOINT_URL"]


def test_s3_upload_glue_partition_and_rerun_overwrites(conn, pg_uri, tname, moto_endpoint):
    import boto3
    from pyarrow import fs

    creds = {
        "endpoint_url": moto_endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    s3, glue = boto3.client("s3", **creds), boto3.client("glue", **creds)
    bucket, lake_prefix = f"lake-{uuid.uuid4().hex[:8]}", "lake/raw"
    s3.create_bucket(Bucket=bucket)
    _fill(conn, tname, 2500)
    prefix = s3_layout.lake_partition_prefix(lake_prefix, tname, DAY)

    def sink(part: le.FinishedPart) -> str:
        s3.upload_file(str(part.path), bucket, prefix + part.name)
        part.path.unlink()
        return prefix + part.name

    def export(**kw) -> le.ExportResult:
        return export_at(
            pg_uri, tname, "ts", WINDOW, sink=sink, unconstrained_numeric=(38, 20), **kw
        )

    def listed() -> list[str]:
        return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

    first = export(part_rows=1000)
    assert first.locations == [prefix + s3_layout.part_name(i) for i in range(3)]
    assert sorted(listed()) == first.locations

    s3fs = fs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        endpoint_override=moto_endpoint.removeprefix("http://"),
        scheme="http",
        region="us-east-1",
    )
    paths = [f"{bucket}/{k}" for k in first.locations]
    assert le.read_back_check(paths, 2500, first.schema, filesystem=s3fs).parts == 3

    # rerun with bigger parts: same names overwritten, leftovers found and deleted
    second = export()
    assert second.locations == [prefix + s3_layout.part_name(0)]
    stale = s3_layout.stale_part_keys(listed(), second.locations)
    assert stale == [prefix + s3_layout.part_name(1), prefix + s3_layout.part_name(2)]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale]})
    assert listed() == second.locations
    le.read_back_check([f"{bucket}/{k}" for k in listed()], 2500, second.schema, filesystem=s3fs)

    # Glue: the inputs are accepted as they are (botocore validates the shapes)
    db = f"db_{uuid.uuid4().hex[:8]}"
    glue.create_database(DatabaseInput={"Name": db})
    location = s3_layout.lake_table_uri(bucket, lake_prefix, tname)
    glue.create_table(
        DatabaseName=db, TableInput=le.glue_table_input(tname, second.schema, location)
    )
    resp = glue.batch_create_partition(
        DatabaseName=db,
        TableName=tname,
        PartitionInputList=[le.glue_partition_input(location, second.schema, DAY)],
    )
    assert not resp.get("Errors")
    part = glue.get_partition(
        DatabaseName=db, TableName=tname, PartitionValues=["2024", "03", "01"]
    )
    assert part["Partition"]["StorageDescriptor"]["Location"] == f"s3://{bucket}/{prefix}"
    table = glue.get_table(DatabaseName=db, Name=tname)["Table"]
    assert [c["Type"] for c in table["StorageDescriptor"]["Columns"]] == [
        "bigint",
        "timestamp",
        "string",
        "decimal(38,20)",
    ]


def test_bounded_row_groups_on_a_larger_day(conn, pg_uri, tname, tmp_path):
    """Row groups are cut by Arrow bytes, so a day bigger than the budget streams through."""
    _fill(conn, tname, 60_000)
    result = export_local(
        pg_uri,
        tname,
        "ts",
        tmp_path,
        row_group_bytes=256 * 1024,
        batch_size_hint_bytes=64 * 1024,
        unconstrained_numeric=(38, 20),
    )
    md = pq.ParquetFile(result.locations[0]).metadata
    assert result.rows == 60_000 and md.num_row_groups > 5
    # no row group much larger than the byte budget in rows
    assert max(md.row_group(i).num_rows for i in range(md.num_row_groups)) < 20_000


def test_source_resource_names_the_setting_and_never_the_password(monkeypatch):
    from etl_platform.resources import SourcePostgresResource

    monkeypatch.delenv("LX_NO_SUCH_DSN", raising=False)
    with pytest.raises(SourcePostgresError, match="LX_NO_SUCH_DSN.*`dsn_env`"):
        SourcePostgresResource(dsn_env="LX_NO_SUCH_DSN").database()
    monkeypatch.setenv("LX_BAD_DSN", "postgresql://user:secret@127.0.0.1:9/db")
    source = SourcePostgresResource(connect_timeout_s=2).database("LX_BAD_DSN")
    assert "secret" not in repr(source)
    for attempt in (
        lambda: source.count_window(le.TableRef(None, "t"), "d", WINDOW),
        lambda: next(source.record_batches("t", sql.SQL("SELECT 1"))),
    ):
        with pytest.raises(SourcePostgresError, match="t: cannot connect.*LX_BAD_DSN") as info:
            attempt()
        assert "secret" not in str(info.value)
