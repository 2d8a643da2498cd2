"""Lake column names Athena can query unquoted (issue 8, point 15): normalized deterministically,
distinct within a table, plain names kept, the source name recorded."""

from __future__ import annotations

import json
import re

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from etl_platform.core import lake as le

PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")


def test_plain_names_are_kept_and_others_normalized():
    names = ["id", "Unit Price", "unit_price", "Year", "order", "1st", 'a"b', "Ünïcode", "名前"]
    got = le.lake_column_names(names)
    assert got["id"] == "id" and got["unit_price"] == "unit_price"
    assert got["Unit Price"].startswith("unit_price_")  # collides with the kept unit_price
    assert got["Year"] == "year_" and got["order"] == "order_"  # partition key, reserved word
    assert got["1st"] == "c_1st" and got['a"b'] == "a_b" and got["Ünïcode"] == "unicode"
    assert got["名前"] == "col"
    assert list(got) == names


def test_a_renamed_field_records_its_source_name_in_parquet_and_glue():
    catalog = [
        le.PgColumn("Unit Price", "numeric(10,2)", "numeric", typmod=(10 << 16 | 2) + 4),
        le.PgColumn("created_at", "timestamp with time zone", "timestamptz"),
    ]
    plan = le.plan_export(le.TableRef(None, "t"), catalog, "created_at")
    assert plan.schema.names == ["unit_price", "created_at"]
    assert plan.plans[0].name == "Unit Price"  # the SELECT still reads the source column
    assert plan.renamed_columns == {"unit_price": "Unit Price"}
    assert le.source_column_names(plan.schema) == {"unit_price": "Unit Price"}
    ti = le.glue_table_input("t", plan.schema, "s3://b/lake/t/")
    columns = ti["StorageDescriptor"]["Columns"]
    assert columns[0]["Name"] == "unit_price"
    assert columns[0]["Comment"] == 'postgres: numeric(10,2), column "Unit Price"'
    assert json.loads(ti["Parameters"]["source_column_names"]) == {"unit_price": "Unit Price"}
    plain = pa.schema([pa.field("id", pa.int64())])
    assert (
        le.glue_table_input("t", plain, "s3://b/lake/t/")["Parameters"]["source_column_names"]
        == "{}"
    )


@settings(max_examples=300, deadline=None)
@given(
    st.sets(
        st.one_of(
            st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
            st.sampled_from(["id", "ID", "Id", "year", "Year", "order", "col", "c_1", "1", "_"]),
            st.from_regex(r"[a-z_][a-z0-9_]{0,8}_[0-9a-f]{8}", fullmatch=True),
        ),
        max_size=25,
    ),
    st.randoms(),
)
def test_any_set_of_names_maps_to_distinct_plain_names_deterministically(names, rnd):
    ordered = sorted(names)
    mapping = le.lake_column_names(ordered)
    assert set(mapping) == names
    assert len(set(mapping.values())) == len(names)  # collision-free
    for source, name in mapping.items():
        assert PLAIN.match(name) and le.is_plain_name(name), (source, name)
        assert len(name) <= 255
        if le.is_plain_name(source):
            assert name == source  # a well-named column lands unchanged
    shuffled = list(ordered)
    rnd.shuffle(shuffled)
    assert le.lake_column_names(shuffled) == mapping  # the set decides, not the order


def test_reserved_and_partition_names_are_never_plain():
    for name in ("select", "from", "order", "year", "month", "day", "Select", "a b", "1a", ""):
        assert not le.is_plain_name(name)
    for name in ("date", "timestamp", "_id", "user_id", "a1"):
        assert le.is_plain_name(name)
