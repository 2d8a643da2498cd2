"""Redshift's COPY from Parquet maps the file's columns to *all* the table's columns by position
and takes no column list (AWS, "COPY from columnar data formats"), so a micro-batch Parquet file
is staged through a table of exactly its columns in its order (``columnar_stage``), read from
its footer alone (``parquet_file_columns``). No connection: Redshift SQL is parsed by sqlglot."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from etl_platform.core.warehouse import columnar_stage as cs
from etl_platform.core.warehouse.parquet_csv import (
    PARQUET_TRAILER_BYTES,
    parquet_file_columns,
    parquet_footer_size,
)

TARGET = ["id", "region", "ts", "val"]


def parquet_of(names: list[str]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table({n: pa.array([1, 2], pa.int64()) for n in names}), out)
    return out.getvalue()


def footer_columns(data: bytes, columns: list[str], uri: str = "s3://b/f.parquet") -> list[str]:
    size = parquet_footer_size(data[-PARQUET_TRAILER_BYTES:], uri)
    return parquet_file_columns(data[-size:], columns, uri)


def redshift(statement) -> tuple[str, exp.Expression]:
    text = statement.as_string(None)
    return text, sqlglot.parse_one(text, read="redshift")


def test_file_stage_has_exactly_the_files_columns_in_the_files_order():
    text, tree = redshift(cs.create_file_stage("redshift", ["ts", "id", "val", "region"]))
    assert text == (
        'CREATE TEMP TABLE "__etl_mb_file" AS SELECT "ts", "id", "val", "region" '
        'FROM "__etl_mb_stage" WHERE 1 = 0'
    )
    assert isinstance(tree, exp.Create) and tree.this.name == "__etl_mb_file"
    select = tree.expression
    assert [c.name for c in select.expressions] == ["ts", "id", "val", "region"]
    assert "__etl_load_order" not in text  # the COPY's table has no column the file lacks


def test_file_rows_move_to_the_stage_by_name_with_the_file_ordinal_then_the_file_stage_drops():
    insert, drop = (s.as_string(None) for s in cs.file_stage_into_stage("redshift", TARGET, 3))
    assert insert == (
        'INSERT INTO "__etl_mb_stage" ("id", "region", "ts", "val", "__etl_load_order") '
        'SELECT "id", "region", "ts", "val", 3 FROM "__etl_mb_file"'
    )
    assert drop == 'DROP TABLE "__etl_mb_file"'  # transactional, unlike TRUNCATE on Redshift
    tree = sqlglot.parse_one(insert, read="redshift")
    assert isinstance(tree, exp.Insert)
    assert [c.name for c in tree.this.expressions] == [*TARGET, "__etl_load_order"]
    assert isinstance(sqlglot.parse_one(drop, read="redshift"), exp.Drop)


@pytest.mark.parametrize("ordinal", [-1, True, 1.0, "2"])
def test_file_ordinal_must_be_a_natural_number(ordinal):
    with pytest.raises(ValueError, match="ordinal"):
        cs.file_stage_into_stage("redshift", TARGET, ordinal)


def test_file_stage_refuses_no_columns_and_bad_names():
    with pytest.raises(ValueError, match="at least one column"):
        cs.create_file_stage("redshift", [])
    with pytest.raises(ValueError):
        cs.create_file_stage("redshift", ["a\x00b"])


@given(st.permutations(TARGET))
def test_the_footer_gives_the_files_own_column_order(order):
    assert footer_columns(parquet_of(list(order)), TARGET) == list(order)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["id", "region", "ts"], "target column 'val' is missing from the file"),
        ([*TARGET, "extra"], "column 'extra' is not a column of the target"),
        (["id", "region", "ts", "VAL"], "column 'VAL' is not a column of the target"),
    ],
)
def test_footer_columns_must_be_the_targets_naming_file_and_column(names, message):
    with pytest.raises(ValueError, match=f"Parquet file s3://b/f.parquet: {message}"):
        footer_columns(parquet_of(names), TARGET)


def test_an_object_that_is_not_parquet_is_refused_naming_it():
    with pytest.raises(ValueError, match="s3://b/x.csv cannot be read: it does not end with PAR1"):
        parquet_footer_size(b"1,2,3\n4,", "s3://b/x.csv")
    data = parquet_of(TARGET)
    size = parquet_footer_size(data[-PARQUET_TRAILER_BYTES:], "u")
    with pytest.raises(ValueError, match="Parquet file u cannot be read"):
        parquet_file_columns(b"\x00" * size, TARGET, "u")


def test_only_a_warehouse_reading_parquet_itself_maps_its_columns_by_position():
    from etl_platform.core.warehouse import Dialect

    assert Dialect.REDSHIFT.copies_parquet_by_position
    assert not Dialect.POSTGRES.copies_parquet_by_position
