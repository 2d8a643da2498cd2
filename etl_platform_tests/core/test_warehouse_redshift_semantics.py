"""Issue 8, points 1 (Redshift half), 10, 11 and 12: Redshift semantics through the dialect.

Redshift cannot run here, so each behaviour is pinned through the builders and the CSV writer,
and docs/redshift.md cites the AWS page it relies on. Every test here fails on the main branch
before issue 8 (EMPTYASNULL, ``\\x`` hex, cursor rowcount, JSON_PARSE of raw text, no lock).
"""

from __future__ import annotations

import gzip
import io

import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from etl_platform.core import warehouse as w
from etl_platform.core.csv_encoding import CsvGzipWriter, encode_csv
from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec
from etl_platform.core.warehouse import Dialect, LoadedRowCount, PublishLock

RS = Dialect.REDSHIFT
ROLE = "arn:aws:iam::123456789012:role/redshift-load"


def redshift_sql(statement) -> str:
    text = statement.as_string(None)
    assert sqlglot.parse_one(text, read="redshift") is not None
    return text


# --- point 10: "" and NULL stay distinct ---------------------------------------------------


def test_empty_string_and_null_are_distinct_bytes_and_copy_reads_them_apart():
    """A row with ``""`` and a row with NULL, written for Redshift and loaded by the COPY built
    for it: NULL is exactly the NUL byte COPY's ``NULL AS '\\000'`` names, the empty string is
    ``""``, and nothing folds empty fields into NULL (no EMPTYASNULL/BLANKSASNULL)."""
    out = io.BytesIO()
    with CsvGzipWriter(out, columns=["id", "note"], plain=[True, False], dialect=RS) as writer:
        writer.write_rows([("1", ""), ("2", None)])
    data = gzip.decompress(out.getvalue())
    assert data == b'1,""\n2,\x00\n'
    copy = redshift_sql(w.redshift_copy("stg", "t", ["id", "note"], "s3://bkt/m", ROLE))
    assert "NULL AS '\\000'" in copy
    for lossy in ("EMPTYASNULL", "BLANKSASNULL", "FILLRECORD"):
        assert lossy not in copy
    # the COPY's NULL string, decoded as Redshift reads the octal escape, is the NULL field
    marker = copy.split("NULL AS '")[1].split("'")[0]
    assert chr(int(marker[1:], 8)).encode() == data.split(b"\n")[1].split(b",")[1]


def test_a_value_holding_the_marker_fails_loudly_naming_row_and_column():
    for value in ("\x00", "a\x00b", "\x00\x00"):
        writer = CsvGzipWriter(io.BytesIO(), columns=["id", "note"], dialect=RS)
        with pytest.raises(ValueError, match=r"row 1, column 'note'.*NUL character"):
            writer.write_rows([("1", "fine"), ("2", value)])
    # plain columns are checked too, and an empty plain value is still the empty string
    plain = CsvGzipWriter(io.BytesIO(), columns=["t", "hex"], plain=[False, True], dialect=RS)
    with pytest.raises(ValueError, match="row 0, column 'hex'"):
        plain.write_rows([("a", "0\x00")])
    with pytest.raises(ValueError, match="row 0, column #0"):
        encode_csv([("a\x00", "b")], dialect=RS)
    out = io.BytesIO()
    with CsvGzipWriter(out, columns=["t", "hex"], plain=[False, True], dialect=RS) as writer:
        writer.write_rows([("a", ""), ("b", None)])
    assert gzip.decompress(out.getvalue()) == b'a,""\nb,\x00\n'


def _parse_redshift_csv(data: str) -> list[list[str | None]]:
    """Redshift CSV with ``NULL AS '\\000'``: quoted or plain fields; a field that is exactly
    the NUL byte (unquoted) is NULL; everything else is text (``""`` the empty string)."""
    rows, row, i, n = [], [], 0, len(data)
    while i < n:
        if data[i] == '"':
            i, buf = i + 1, []
            while True:
                if data[i] == '"':
                    if i + 1 < n and data[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(data[i])
                i += 1
            row.append("".join(buf))
        else:
            j = i
            while j < n and data[j] not in ",\n":
                j += 1
            field = data[i:j]
            row.append(None if field == "\x00" else field)
            i = j
        if i < n and data[i] == ",":
            i += 1
            continue
        rows.append(row)
        row = []
        i += 1
    return rows


@given(
    st.lists(
        st.tuples(
            st.none() | st.text(st.characters(blacklist_characters="\x00")),
            st.none() | st.text(st.characters(blacklist_characters="\x00")),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_redshift_csv_round_trips_null_empty_and_any_text(rows):
    text = encode_csv(rows, dialect=RS)
    assert _parse_redshift_csv(text) == [list(r) for r in rows]


# --- point 11 ---------------------------------------------------------------------------------


def test_binary_is_plain_hex_for_varbyte():
    assert RS.binary_text(b"\x0a\xff") == "0aff"
    assert encode_csv([(b"\x00\x01", "x")], dialect=RS) == "0001,x\n"
    assert Dialect.POSTGRES.binary_text(b"\x0a") == "\\x0a"


def test_loaded_row_count_is_pg_last_copy_count():
    assert RS.loaded_row_count is LoadedRowCount.PG_LAST_COPY_COUNT
    assert redshift_sql(w.last_copy_count_query()) == "SELECT pg_last_copy_count()"


def test_staging_copy_skips_compression_analysis_and_statistics():
    copy = redshift_sql(w.redshift_copy("stg", "t", ["a"], "s3://bkt/m", ROLE))
    assert copy.endswith("COMPUPDATE OFF STATUPDATE OFF MAXERROR 0")


WIDE = TableSpec(
    "t",
    (
        ColumnSpec("txt", ColumnKind.JSON),
        ColumnSpec("ts", ColumnKind.JSON),
        ColumnSpec("n", ColumnKind.JSON),
        ColumnSpec("b", ColumnKind.JSON),
        ColumnSpec("d", ColumnKind.JSON),
        ColumnSpec("wide", ColumnKind.JSON),
        ColumnSpec("bin", ColumnKind.JSON),
    ),
)
NARROW = TableSpec(
    "t",
    (
        ColumnSpec("txt", ColumnKind.TEXT),
        ColumnSpec("ts", ColumnKind.TIMESTAMPTZ),
        ColumnSpec("n", ColumnKind.BIGINT),
        ColumnSpec("b", ColumnKind.BOOLEAN),
        ColumnSpec("d", ColumnKind.DECIMAL, precision=10, scale=2),
        ColumnSpec("wide", ColumnKind.DECIMAL),
        ColumnSpec("bin", ColumnKind.BINARY),
    ),
)


def test_widening_text_or_timestamp_to_json_builds_a_json_string():
    """``JSON_PARSE`` of raw text fails on ``abc`` and turns the text ``123`` into a number; a
    VARCHAR cast to SUPER is a SUPER string. Timestamps cannot be cast to SUPER directly, so
    they go through VARCHAR. Numbers and booleans stay JSON numbers and booleans; a DECIMAL
    stored as VARCHAR (precision unknown) is parsed as the JSON number it spells."""
    insert = w.centralize(RS, WIDE, ["s1"], "n", segment_specs={"s1": NARROW})[-1]
    text = redshift_sql(insert)
    select = text.split(" SELECT ")[1].split(" FROM ")[0]
    assert select == (
        'CAST("txt" AS SUPER), CAST(CAST("ts" AS VARCHAR(65535)) AS SUPER), '
        'CAST("n" AS SUPER), CAST("b" AS SUPER), CAST("d" AS SUPER), JSON_PARSE("wide"), '
        "CAST(FROM_VARBYTE(\"bin\", 'hex') AS SUPER)"
    )
    tree = sqlglot.parse_one(text, read="redshift")
    casts = [c for c in tree.find_all(exp.Cast) if c.to.this is exp.DataType.Type.SUPER]
    assert len(casts) == 6
    # PostgreSQL is unchanged: to_jsonb of every kind
    pg = w.centralize(Dialect.POSTGRES, WIDE, ["s1"], "n", segment_specs={"s1": NARROW})[-1]
    assert pg.as_string(None).count("to_jsonb(") == 7


def test_catalog_lookups_use_folded_names_and_mixed_case_schemas_are_refused():
    assert w.catalog_name(RS, "Sales") == "sales"
    assert w.catalog_name(Dialect.POSTGRES, "Sales") == "Sales"
    for build in (
        lambda: w.swap_statements(RS, "Sales", "sales__new"),
        lambda: w.rollback_statements(RS, "Sales"),
        lambda: w.dependent_views_query(RS, "Sales__previous"),
        lambda: w.lock_table_statements(RS, w.publish_lock_schema_name("Sales")),
    ):
        with pytest.raises(ValueError, match=r"'Sales.*' has upper-case letters.*use 'sales"):
            build()
    # PostgreSQL keeps case-sensitive quoted names
    assert w.swap_statements(Dialect.POSTGRES, "Sales", "Sales__new")


# --- point 12: a failed COPY names what failed -------------------------------------------------

#: a row of ``stl_load_errors`` as Redshift returns it (CHAR columns blank-padded), in
#: LOAD_ERROR_COLUMNS order; shape from the STL_LOAD_ERRORS reference page
RECORDED_ROW = (
    4567,
    "s3://etl-bucket/extracts/orders/2024-01-02/segment=7/part-0003.csv.gz".ljust(256),
    17,
    "name".ljust(127),
    "varchar".ljust(10),
    0,
    1204,
    "String length exceeds DDL length".ljust(100),
    "a very long customer name that does not fit".ljust(1024),
)


def test_load_errors_query_reads_the_sessions_last_copy():
    text = redshift_sql(w.load_errors_query(RS))
    assert text == (
        'SELECT "query", "filename", "line_number", "colname", "type", "position", "err_code", '
        '"err_reason", "raw_field_value" FROM stl_load_errors '
        "WHERE query = pg_last_copy_id() ORDER BY line_number, colname LIMIT 10"
    )
    with pytest.raises(ValueError, match="Redshift only"):
        w.load_errors_query(Dialect.POSTGRES)


def test_a_recorded_load_error_names_file_line_column_and_reason():
    message = w.copy_failure_message(
        "an__staging__2024_01_02_7.orders",
        [RECORDED_ROW],
        "Load into table 'orders' failed. Check 'stl_load_errors' system table for details.",
    )
    assert message == (
        "Redshift COPY into an__staging__2024_01_02_7.orders failed: "
        "s3://etl-bucket/extracts/orders/2024-01-02/segment=7/part-0003.csv.gz line 17, "
        'column "name" (varchar): String length exceeds DDL length [code 1204], '
        "value 'a very long customer name that does not fit' (COPY said: Load into table "
        "'orders' failed. Check 'stl_load_errors' system table for details.)"
    )
    row = w.LoadErrorRow.from_row(RECORDED_ROW)
    assert (row.filename.endswith(".csv.gz"), row.line_number, row.column) == (True, 17, "name")


def test_no_recorded_row_says_the_copy_failed_before_loading():
    message = w.copy_failure_message("s.t", [], "S3ServiceException:Access Denied")
    assert "failed before loading any row" in message and "Access Denied" in message
    with pytest.raises(ValueError, match="9 columns"):
        w.LoadErrorRow.from_row(RECORDED_ROW[:3])


def test_long_values_are_clipped_in_the_message():
    row = list(RECORDED_ROW)
    row[8] = "x" * 5000
    assert "x" * 61 not in w.copy_failure_message("s.t", [row], "failed")


# --- point 1, Redshift half: the publish lock table --------------------------------------------


def test_redshift_publish_lock_is_a_lock_table_outside_the_swapped_schema():
    assert RS.publish_lock is PublishLock.LOCK_TABLE
    schema = w.publish_lock_schema_name("analytics")
    assert schema == "analytics__lock"
    setup = [redshift_sql(s) for s in w.lock_table_setup_statements(RS, schema)]
    assert setup == [
        'CREATE SCHEMA IF NOT EXISTS "analytics__lock"',
        'CREATE TABLE IF NOT EXISTS "analytics__lock"."_etl_publish_lock" '
        "(locked_by VARCHAR(65535))",
    ]
    (lock,) = w.lock_table_statements(RS, schema)
    assert lock.as_string(None) == 'LOCK TABLE "analytics__lock"."_etl_publish_lock"'
    # the swap renames the published schema: a lock table there would lock nothing
    with pytest.raises(ValueError, match="not a lock schema"):
        w.lock_table_statements(RS, "analytics")
    # and no published schema may take the lock schema's name
    with pytest.raises(ValueError, match="platform-owned"):
        w.swap_statements(RS, "analytics__lock", "x__new")
