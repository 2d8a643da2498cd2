"""Unit tests of the lake export core without any server: keys, windows, type mapping, SQL,
conversion checks, Glue inputs and the footer-only read-back check."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl_platform.components.lake_export.part_spool import write_parts_in_background
from etl_platform.core import lake as le
from etl_platform.core import s3_layout
from etl_platform.core.lake import PgColumn

# ----------------------------------------------------------------------------- windows & keys


def test_day_window_is_half_open_utc():
    lo, hi = le.day_window(date(2024, 2, 29))
    assert lo == datetime(2024, 2, 29, tzinfo=UTC)
    assert hi == datetime(2024, 3, 1, tzinfo=UTC)
    assert lo.utcoffset() == timedelta(0) and hi.utcoffset() == timedelta(0)


def test_day_window_year_end_and_refuses_datetime():
    assert le.day_window(date(2023, 12, 31))[1] == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(TypeError):
        le.day_window(datetime(2024, 1, 1))  # type: ignore[arg-type]


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 30)))
def test_day_window_property(day):
    lo, hi = le.day_window(day)
    assert hi - lo == timedelta(days=1)
    assert lo.date() == day and hi.date() == day + timedelta(days=1)
    assert lo.hour == lo.minute == lo.second == lo.microsecond == 0


def test_partition_prefix_and_part_names():
    day = date(2024, 3, 1)
    assert (
        s3_layout.lake_partition_prefix("lake", "orders", day)
        == "lake/orders/year=2024/month=03/day=01/"
    )
    assert (
        s3_layout.lake_partition_prefix("/a/b/", "orders", day)
        == "a/b/orders/year=2024/month=03/day=01/"
    )
    assert s3_layout.lake_partition_prefix("", "orders", day) == "orders/year=2024/month=03/day=01/"
    assert s3_layout.part_name(0) == "part-00000.parquet"
    assert s3_layout.part_name(123) == "part-00123.parquet"
    assert (
        s3_layout.lake_part_key("p", "t", day, 2)
        == "p/t/year=2024/month=03/day=01/part-00002.parquet"
    )
    assert s3_layout.partition_values(date(7, 1, 9)) == ("0007", "01", "09")
    assert s3_layout.lake_table_prefix("lake/", "orders") == "lake/orders/"
    assert s3_layout.s3_uri("bkt", "/k/x") == "s3://bkt/k/x"
    assert s3_layout.lake_partition_uri("bkt", "lake", "t", day) == (
        "s3://bkt/lake/t/year=2024/month=03/day=01/"
    )
    with pytest.raises(ValueError):
        s3_layout.part_name(-1)
    for bad in ("", "a/b", " t", ".."):
        with pytest.raises(ValueError):
            s3_layout.lake_partition_prefix("lake", bad, day)
    with pytest.raises(ValueError):
        s3_layout.s3_uri("b/c", "k")


@given(st.dates(), st.integers(min_value=0, max_value=99_999))
def test_part_key_parses_back(day, index):
    key = s3_layout.lake_part_key("lake/x", "tbl", day, index)
    *_, y, m, d, name = key.split("/")
    assert (y, m, d) == tuple(
        f"{k}={v}"
        for k, v in zip(("year", "month", "day"), s3_layout.partition_values(day), strict=True)
    )
    assert date(int(y[5:]), int(m[6:]), int(d[4:])) == day
    assert int(name[5:10]) == index


def test_stale_part_keys_only_parts_not_rewritten():
    p = "lake/t/year=2024/month=03/day=01/"
    existing = [p + s3_layout.part_name(i) for i in range(4)] + [p + "_SUCCESS", p + "notes.txt"]
    written = [p + s3_layout.part_name(0), p + s3_layout.part_name(1)]
    assert s3_layout.stale_part_keys(existing, written) == [
        p + s3_layout.part_name(2),
        p + s3_layout.part_name(3),
    ]
    assert s3_layout.stale_part_keys(written, written) == []


# ----------------------------------------------------------------------------- tables & types


def test_parse_table_name():
    assert le.parse_table_name("orders") == le.TableRef(None, "orders")
    assert le.parse_table_name("Sales.Order Items") == le.TableRef("Sales", "Order Items")
    assert le.parse_table_name("s.t").display == "s.t"
    for bad in ("", "a.b.c", ".t", "s.", 'a"b'):
        with pytest.raises(ValueError):
            le.parse_table_name(bad)


def _typmod(p: int, s: int) -> int:
    return ((p << 16) | (s & 0x7FF)) + 4


def plan(type_name, declared=None, typmod=-1, element=None, **kw):
    col = PgColumn(
        "c", declared or type_name, type_name, typmod, element, kw.pop("not_null", False)
    )
    return le.plan_column("public.t", col, **kw)


@pytest.mark.parametrize(
    ("type_name", "arrow_type", "cast"),
    [
        ("bool", pa.bool_(), None),
        ("int2", pa.int16(), None),
        ("int4", pa.int32(), None),
        ("int8", pa.int64(), None),
        ("float4", pa.float32(), None),
        ("float8", pa.float64(), None),
        ("text", pa.string(), None),
        ("varchar", pa.string(), None),
        ("bpchar", pa.string(), None),
        ("date", pa.date32(), None),
        ("timestamp", pa.timestamp("us"), None),
        ("timestamptz", pa.timestamp("us", tz="UTC"), None),
        ("bytea", pa.binary(), None),
        ("json", pa.string(), None),
        ("jsonb", pa.string(), None),
        ("uuid", pa.string(), "text"),
        ("interval", pa.string(), "text"),
        ("my_enum", pa.string(), "text"),
        ("inet", pa.string(), "text"),
        ("time", pa.string(), "text"),
    ],
)
def test_scalar_type_mapping(type_name, arrow_type, cast):
    p = plan(type_name)
    assert p.arrow_type == arrow_type
    assert p.cast_sql == cast
    assert not p.check_ndims


def test_numeric_mapping():
    assert plan("numeric", typmod=_typmod(18, 4)).arrow_type == pa.decimal128(18, 4)
    assert plan("numeric", typmod=_typmod(38, 0)).arrow_type == pa.decimal128(38, 0)
    assert plan("numeric", typmod=_typmod(5, -2)).arrow_type == pa.decimal128(7, 0)
    assert plan("numeric", typmod=_typmod(2, 5)).arrow_type == pa.decimal128(5, 5)
    assert plan("numeric").arrow_type == pa.decimal128(38, 10)
    assert plan("numeric", unconstrained_numeric=(30, 6)).arrow_type == pa.decimal128(30, 6)
    with pytest.raises(le.UnsupportedColumnError, match=r"public\.t\.c.*precision 40"):
        plan("numeric", "numeric(40,2)", typmod=_typmod(40, 2))
    assert plan("numeric", typmod=_typmod(40, 2), as_text=True).arrow_type == pa.string()


def test_array_mapping():
    p = plan("_text", "text[]", element="text")
    assert p.arrow_type == pa.list_(pa.string()) and p.cast_sql is None and p.check_ndims
    assert plan("_int4", element="int4").arrow_type == pa.list_(pa.int32())
    assert plan("_int8", element="int8").arrow_type == pa.list_(pa.int64())
    assert plan("_timestamptz", element="timestamptz").arrow_type == pa.list_(
        pa.timestamp("us", tz="UTC")
    )
    p = plan("_numeric", typmod=_typmod(10, 2), element="numeric")
    assert p.arrow_type == pa.list_(pa.decimal128(10, 2)) and p.cast_sql == "text[]"
    p = plan("_uuid", element="uuid")
    assert p.arrow_type == pa.list_(pa.string()) and p.cast_sql == "text[]" and p.check_ndims


def test_nullability_and_field_metadata():
    p = plan("int8", "bigint", not_null=True)
    assert not p.field.nullable
    assert p.field.metadata == {b"postgres.type": b"bigint"}
    assert plan("int8").field.nullable


def test_domain_chain_exported_as_text():
    col = PgColumn("c", "d2", "d1", is_domain_chain=True)
    assert le.plan_column("t", col).arrow_type == pa.string()


# ----------------------------------------------------------------------------- SQL


W = le.day_window(date(2024, 3, 1))


def test_window_literals_per_date_type():
    assert le.window_predicate_literals("timestamptz", W) == (
        "'2024-03-01T00:00:00.000000+00:00'::timestamptz",
        "'2024-03-02T00:00:00.000000+00:00'::timestamptz",
    )
    assert le.window_predicate_literals("timestamp", W) == (
        "'2024-03-01T00:00:00.000000'::timestamp",
        "'2024-03-02T00:00:00.000000'::timestamp",
    )
    assert le.window_predicate_literals("date", W) == ("'2024-03-01'::date", "'2024-03-02'::date")


def test_window_literals_convert_offsets_to_utc():
    tz = timezone(timedelta(hours=5))
    w = (datetime(2024, 3, 1, 5, tzinfo=tz), datetime(2024, 3, 2, 5, tzinfo=tz))
    assert le.window_predicate_literals("timestamptz", w) == le.window_predicate_literals(
        "timestamptz", W
    )


def test_window_literals_date_column_non_midnight_window():
    # day D is the instant D 00:00Z: in [03-01 12:00, 03-03 00:00) only 03-02 qualifies
    w = (datetime(2024, 3, 1, 12, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC))
    assert le.window_predicate_literals("date", w) == ("'2024-03-02'::date", "'2024-03-03'::date")


def test_window_validation():
    with pytest.raises(ValueError, match="timezone-aware"):
        le.window_predicate_literals("timestamptz", (datetime(2024, 3, 1), W[1]))
    with pytest.raises(ValueError, match="empty window"):
        le.window_predicate_literals("timestamptz", (W[1], W[0]))
    with pytest.raises(le.UnsupportedColumnError):
        le.window_predicate_literals("text", W)


def test_select_sql_quotes_identifiers_and_adds_ndims_helpers():
    plans = [
        plan("int8"),
        le.ColumnPlan('we"ird', "uuid", pa.string(), "text"),
        le.ColumnPlan("Tags", "text[]", pa.list_(pa.string()), None, check_ndims=True),
    ]
    q = le.build_select_sql(
        le.TableRef("Sales", "Order Items"), plans, "Created At", "timestamptz", W
    ).as_string(None)
    assert q == (
        'SELECT "c", "we""ird"::text AS "we""ird", "Tags", '
        'array_ndims("Tags") > 1 AS "__lake_ndims_2" '
        'FROM "Sales"."Order Items" '
        "WHERE \"Created At\" >= '2024-03-01T00:00:00.000000+00:00'::timestamptz "
        "AND \"Created At\" < '2024-03-02T00:00:00.000000+00:00'::timestamptz"
    )
    count = le.build_count_sql(le.TableRef(None, "t"), "d", "date", W).as_string(None)
    assert count == (
        'SELECT count(*) FROM "t" WHERE "d" >= \'2024-03-01\'::date AND "d" < \'2024-03-02\'::date'
    )


# ----------------------------------------------------------------------------- conversion


def _converter(*plans):
    return le.BatchConverter("public.t", list(plans))


def _numeric_storage(values):
    return pa.array(values, pa.string())


def test_converter_decimal_exact_and_failures_name_column_and_value():
    conv = _converter(le.ColumnPlan("amount", "numeric(18,4)", pa.decimal128(18, 4), None))
    out = conv.convert(pa.record_batch([_numeric_storage(["1.5", None, "-0.0001"])], ["amount"]))
    assert out.column(0).to_pylist() == [Decimal("1.5000"), None, Decimal("-0.0001")]
    for bad in ("1.00001", "123456789012345", "NaN", "Infinity"):
        batch = pa.record_batch([_numeric_storage(["1", bad])], ["amount"])
        with pytest.raises(le.ValueOutOfRangeError, match=rf"public\.t\.amount.*{bad}"):
            conv.convert(batch)


@given(
    st.decimals(
        min_value=Decimal("-99999999999999.9999"),
        max_value=Decimal("99999999999999.9999"),
        places=4,
        allow_nan=False,
    )
)
def test_converter_decimal_round_trip_property(value):
    conv = _converter(le.ColumnPlan("n", "numeric(18,4)", pa.decimal128(18, 4), None))
    out = conv.convert(pa.record_batch([_numeric_storage([str(value)])], ["n"]))
    assert out.column(0)[0].as_py() == value


def test_converter_decimal_list():
    conv = _converter(
        le.ColumnPlan("xs", "numeric(10,2)[]", pa.list_(pa.decimal128(10, 2)), "text[]", True)
    )
    batch = pa.record_batch(
        [pa.array([["1.25", None], None]), pa.array([False, None])], ["xs", "__lake_ndims_0"]
    )
    assert conv.convert(batch).column(0).to_pylist() == [[Decimal("1.25"), None], None]
    batch = pa.record_batch([pa.array([["1.255"]]), pa.array([False])], ["xs", "n"])
    with pytest.raises(le.ValueOutOfRangeError, match=r"xs.*1\.255"):
        conv.convert(batch)


def test_converter_rejects_multidimensional_arrays():
    conv = _converter(le.ColumnPlan("m", "int4[]", pa.list_(pa.int32()), None, True))
    batch = pa.record_batch([pa.array([[1, 2, 3, 4]]), pa.array([True])], ["m", "n"])
    with pytest.raises(le.ValueOutOfRangeError, match=r"public\.t\.m.*multi-dimensional"):
        conv.convert(batch)


def test_converter_rejects_infinite_timestamps_and_dates():
    ts = le.ColumnPlan("ts", "timestamptz", pa.timestamp("us", tz="UTC"), None)
    conv = _converter(ts)
    ok = pa.array([0, None, 253402300799999999], pa.int64()).view(pa.timestamp("us", tz="UTC"))
    assert conv.convert(pa.record_batch([ok], ["ts"])).num_rows == 3
    # what the driver makes of 'infinity' / '-infinity'
    for raw in (-9222425352054775809, -9222425352054775808 + 946684800000000):
        arr = pa.array([0, raw], pa.int64()).view(pa.timestamp("us", tz="UTC"))
        with pytest.raises(le.ValueOutOfRangeError, match=r"public\.t\.ts.*infinite"):
            conv.convert(pa.record_batch([arr], ["ts"]))
    d = _converter(le.ColumnPlan("d", "date", pa.date32(), None))
    arr = pa.array([-2147472692], pa.int32()).view(pa.date32())
    with pytest.raises(le.ValueOutOfRangeError, match="infinite"):
        d.convert(pa.record_batch([arr], ["d"]))


def test_converter_unwraps_extension_types():
    conv = _converter(le.ColumnPlan("j", "jsonb", pa.string(), None))
    arr = pa.ExtensionArray.from_storage(pa.json_(), pa.array(['{"a": 1}', None]))
    assert conv.convert(pa.record_batch([arr], ["j"])).column(0).to_pylist() == ['{"a": 1}', None]


def test_converter_column_count_mismatch():
    conv = _converter(le.ColumnPlan("a", "int8", pa.int64(), None))
    with pytest.raises(le.LakeExportError, match="2 columns, expected 1"):
        conv.convert(pa.record_batch([pa.array([1]), pa.array([2])], ["a", "b"]))


# ----------------------------------------------------------------------------- Glue

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False, metadata={b"postgres.type": b"bigint"}),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("amount", pa.decimal128(18, 4), metadata={b"postgres.type": b"numeric(18,4)"}),
        pa.field("note", pa.string()),
        pa.field("active", pa.bool_()),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("Blob", pa.binary()),
        pa.field("d", pa.date32()),
        pa.field("n", pa.int32()),
        pa.field("s", pa.int16()),
        pa.field("f", pa.float64()),
        pa.field("r", pa.float32()),
        pa.field("local_ts", pa.timestamp("us")),
    ]
)


def test_hive_types():
    assert [le.hive_type(f.type) for f in SCHEMA] == [
        "bigint",
        "timestamp",
        "decimal(18,4)",
        "string",
        "boolean",
        "array<string>",
        "binary",
        "date",
        "int",
        "smallint",
        "double",
        "float",
        "timestamp",
    ]
    assert le.hive_type(pa.list_(pa.decimal128(10, 2))) == "array<decimal(10,2)>"
    assert le.hive_type(pa.struct([("a", pa.int64())])) == "struct<a:bigint>"
    with pytest.raises(le.UnsupportedColumnError):
        le.hive_type(pa.decimal256(40, 2))
    with pytest.raises(le.UnsupportedColumnError):
        le.hive_type(pa.month_day_nano_interval())


def test_glue_table_input():
    ti = le.glue_table_input("orders", SCHEMA, "s3://bucket/lake/orders", compression="zstd")
    assert ti["Name"] == "orders"
    assert ti["TableType"] == "EXTERNAL_TABLE"
    assert ti["PartitionKeys"] == [
        {"Name": "year", "Type": "string"},
        {"Name": "month", "Type": "string"},
        {"Name": "day", "Type": "string"},
    ]
    sd = ti["StorageDescriptor"]
    assert sd["Location"] == "s3://bucket/lake/orders/"
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    assert (
        sd["SerdeInfo"]["SerializationLibrary"]
        == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert sd["Columns"][0] == {"Name": "id", "Type": "bigint", "Comment": "postgres: bigint"}
    assert sd["Columns"][2]["Type"] == "decimal(18,4)"
    assert sd["Columns"][5] == {"Name": "tags", "Type": "array<string>"}
    assert sd["Columns"][6]["Name"] == "blob"  # Hive folds case
    assert ti["Parameters"]["classification"] == "parquet"
    assert ti["Parameters"]["parquet.compression"] == "ZSTD"
    with pytest.raises(ValueError):
        le.glue_table_input("Orders", SCHEMA, "s3://b/x/")
    with pytest.raises(ValueError):
        le.glue_table_input("orders", SCHEMA, "/local/path")


def test_glue_partition_input():
    pi = le.glue_partition_input("s3://bucket/lake/orders/", SCHEMA, date(2024, 3, 1))
    assert pi["Values"] == ["2024", "03", "01"]
    assert pi["StorageDescriptor"]["Location"] == (
        "s3://bucket/lake/orders/year=2024/month=03/day=01/"
    )
    assert pi["StorageDescriptor"]["Location"] == "s3://bucket/" + s3_layout.lake_partition_prefix(
        "lake", "orders", date(2024, 3, 1)
    )
    assert len(pi["StorageDescriptor"]["Columns"]) == len(SCHEMA)


def test_glue_columns_collisions():
    with pytest.raises(le.UnsupportedColumnError, match="partition key"):
        le.glue_columns(pa.schema([("Year", pa.int32())]))
    with pytest.raises(le.UnsupportedColumnError, match="lowercased"):
        le.glue_columns(pa.schema([("a", pa.int32()), ("A", pa.int32())]))


# ----------------------------------------------------------------------------- read-back


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", store_schema=True)
    return buf.getvalue()


SMALL = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("amount", pa.decimal128(18, 4)),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
    ]
)


def _small(n: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "amount": pa.array([Decimal("1.2345")] * n, pa.decimal128(18, 4)),
            "ts": pa.array([0] * n, pa.int64()).view(pa.timestamp("us", tz="UTC")),
        },
        schema=SMALL,
    )


def test_read_back_check_ok(tmp_path):
    path = tmp_path / "part-00000.parquet"
    pq.write_table(_small(3), path)
    report = le.read_back_check([path, _parquet_bytes(_small(2))], 5, SMALL)
    assert (report.rows, report.parts) == (5, 2)
    assert le.read_back_check([_parquet_bytes(_small(0))], 0, SMALL).rows == 0


def test_read_back_check_failures():
    with pytest.raises(le.ReadBackError, match="row count 3 != expected 4"):
        le.read_back_check([_parquet_bytes(_small(3))], 4, SMALL)
    other = pa.schema([pa.field("id", pa.int64(), nullable=False), ("amount", pa.float64())])
    with pytest.raises(le.ReadBackError, match=r"amount: decimal128\(18, 4\) != double"):
        le.read_back_check([_parquet_bytes(_small(3))], 3, other.append(SMALL.field("ts")))
    with pytest.raises(le.ReadBackError, match="unreadable"):
        le.read_back_check([b"not parquet"], 0, SMALL)
    with pytest.raises(le.ReadBackError, match="no parts"):
        le.read_back_check([], 0, SMALL)


# ----------------------------------------------------------------------------- part writer


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=700), min_size=0, max_size=8),
    part_rows=st.one_of(st.none(), st.integers(min_value=1, max_value=900)),
    row_group_rows=st.integers(min_value=1, max_value=500),
    threaded=st.booleans(),
)
def test_part_writer_cuts_parts_and_row_groups_exactly(sizes, part_rows, row_group_rows, threaded):
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    received: list[tuple[int, str, int]] = []
    delivered: dict[str, bytes] = {}

    def sink(part: le.FinishedPart) -> str:
        received.append((part.index, part.name, part.rows))
        delivered[part.name] = part.file.read()
        assert len(delivered[part.name]) == part.bytes
        return part.name

    batches = []
    start = 0
    for n in sizes:
        batches.append(
            pa.record_batch([pa.array(range(start, start + n), pa.int64())], schema=schema)
        )
        start += n
    settings_ = le.PartSettings(
        part_bytes=None, part_rows=part_rows, row_group_bytes=1 << 30, row_group_rows=row_group_rows
    )
    write = write_parts_in_background if threaded else le.write_parts
    parts = write(iter(batches), schema, sink, settings=settings_)
    total = sum(sizes)
    rows = [r for _, _, r in received]
    assert [i for i, _, _ in received] == list(range(len(received)))
    assert [name for _, name, _ in received] == [s3_layout.part_name(i) for i in range(len(rows))]
    assert [p.location for p in parts] == [name for _, name, _ in received]
    assert sum(rows) == total
    if total == 0:
        assert rows == [0]  # one empty part carrying the schema
    elif part_rows is not None:
        assert all(r == part_rows for r in rows[:-1]) and 0 < rows[-1] <= part_rows
    else:
        assert len(rows) == 1
    ids: list[int] = []
    for p in parts:
        pf = pq.ParquetFile(pa.BufferReader(delivered[p.location]))
        assert all(
            pf.metadata.row_group(i).num_rows <= row_group_rows
            for i in range(pf.metadata.num_row_groups)
        )
        ids += pf.read().column("id").to_pylist()
    assert ids == list(range(total))


def test_part_writer_refuses_bad_settings():
    with pytest.raises(ValueError, match="compression"):
        le.PartSettings(compression="gzip")
    with pytest.raises(ValueError, match="part_rows"):
        le.PartSettings(part_rows=0)
    with pytest.raises(ValueError, match="row_group"):
        le.PartSettings(row_group_rows=0)


def test_part_writer_drops_the_open_part_when_batches_fail():
    schema = pa.schema([("id", pa.int64())])
    delivered: list[str] = []

    def batches():
        yield pa.record_batch([pa.array(range(10), pa.int64())], ["id"])
        raise RuntimeError("source broke")

    def sink(part: le.FinishedPart) -> str:
        delivered.append(part.name)
        return part.name

    for write in (le.write_parts, write_parts_in_background):
        with pytest.raises(RuntimeError, match="source broke"):
            write(batches(), schema, sink, settings=le.PartSettings(part_rows=100))
    assert delivered == []


def test_threaded_writer_surfaces_sink_errors():
    import threading

    schema = pa.schema([("id", pa.int64())])

    def sink(part: le.FinishedPart) -> str:
        raise RuntimeError("upload failed")

    batches = (
        pa.record_batch([pa.array(range(i * 10, i * 10 + 10), pa.int64())], ["id"])
        for i in range(100)
    )
    with pytest.raises(RuntimeError, match="upload failed"):
        write_parts_in_background(
            batches,
            schema,
            sink,
            settings=le.PartSettings(compression="snappy", part_rows=10, row_group_rows=10),
            depth=1,
        )
    assert not [t for t in threading.enumerate() if t.name == "lake-export-writer"]


# ----------------------------------------------------------------------------- S3 URIs


def test_s3_uri_and_split_validate_the_bucket_and_name_the_uri():
    assert s3_layout.s3_uri("etl-data", "a/b.csv.gz") == "s3://etl-data/a/b.csv.gz"
    assert s3_layout.split_s3_uri("s3://etl-data/a/b.csv.gz") == ("etl-data", "a/b.csv.gz")
    assert s3_layout.split_s3_uri("s3://my.bucket-1/") == ("my.bucket-1", "")
    for bad in ("b", "Upper", "under_score", "-dash", "dot.", "a..b", "192.168.1.1", "x" * 64, ""):
        with pytest.raises(ValueError, match="bucket"):
            s3_layout.s3_uri(bad, "k")
    for bad in ("http://bkt/k", "s3:///k", "bkt/k", "s3://Bad_Bucket/k"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            s3_layout.split_s3_uri(bad)


@given(
    st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
)
def test_s3_uri_round_trips(bucket, key):
    key = key.lstrip("/")
    assert s3_layout.split_s3_uri(s3_layout.s3_uri(bucket, key)) == (bucket, key)
