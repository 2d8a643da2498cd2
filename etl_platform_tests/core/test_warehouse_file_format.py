"""A load's file format (issue 10: "gzip CSV or Parquet, with COPY options"): the validated
CSV options, the COPY each engine gets for them and for Parquet, and Parquet as the platform's
CSV for PostgreSQL's ``COPY FROM STDIN``. No connection: Redshift SQL is parsed by sqlglot."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from etl_platform.components.microbatch.component import FileFormat as FileFormatSetting
from etl_platform.core import warehouse as w
from etl_platform.core.warehouse import CsvOptions, FileFormat, FileKind
from etl_platform.core.warehouse.parquet_csv import parquet_csv_chunks

ROLE = "arn:aws:iam::123456789012:role/redshift-load"
PARQUET = FileFormat(FileKind.PARQUET)
#: CSV-only or columnar-refused COPY options (COPY from columnar data formats takes only
#: ACCEPTINVCHARS, FILLRECORD, FROM, IAM_ROLE, CREDENTIALS, STATUPDATE, MANIFEST, EXPLICIT_IDS:
#: https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-copy-from-columnar.html)
NOT_FOR_PARQUET = (
    "CSV",
    "GZIP",
    "DELIMITER",
    "QUOTE",
    "NULL AS",
    "EMPTYASNULL",
    "IGNOREHEADER",
    "TIMEFORMAT",
    "ENCODING",
    "MAXERROR",
    "COMPUPDATE",
    "REGION",
)


def parsed_redshift(statement) -> tuple[str, exp.Copy]:
    text = statement.as_string(None)
    tree = sqlglot.parse_one(text, read="redshift")
    assert isinstance(tree, exp.Copy), text
    return text, tree


# ----------------------------------------------------------------------------- Redshift


def test_redshift_parquet_copy_is_format_manifest_and_statupdate_only():
    text, tree = parsed_redshift(
        w.redshift_copy(
            "stg", "orders", ["id", "ts"], "s3://bkt/m.manifest", ROLE, file_format=PARQUET
        )
    )
    # no column list: columnar COPY maps the file's columns to all the table's by position
    assert text == (
        'COPY "stg"."orders" FROM \'s3://bkt/m.manifest\' '
        f"IAM_ROLE '{ROLE}' FORMAT AS PARQUET MANIFEST STATUPDATE OFF"
    )
    assert tree.this.name == "orders" and not tree.this.expressions
    assert [f.this for f in tree.args["files"]] == ["s3://bkt/m.manifest"]
    for option in NOT_FOR_PARQUET:
        assert option not in text.split("IAM_ROLE")[1], option
    plain = w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE, file_format=PARQUET, staging=False)
    assert plain.as_string(None).endswith("FORMAT AS PARQUET MANIFEST")


def test_redshift_parquet_copy_refuses_a_region():
    with pytest.raises(ValueError, match="Parquet takes no REGION"):
        w.redshift_copy(
            "s", "t", ["a"], "s3://bkt/m", ROLE, region="eu-west-1", file_format=PARQUET
        )


def test_redshift_csv_options_map_to_delimiter_quote_ignoreheader_null_as():
    options = CsvOptions(delimiter=";", quote="'", header=True, null_marker="NA")
    text, _ = parsed_redshift(
        w.redshift_copy(
            "s", "t", ["a", "b"], "s3://bkt/m", ROLE, file_format=FileFormat(csv=options)
        )
    )
    assert text.endswith(
        "FORMAT AS CSV QUOTE AS '''' DELIMITER ';' GZIP MANIFEST ENCODING UTF8 "
        "TIMEFORMAT 'auto' NULL AS 'NA' IGNOREHEADER 1 COMPUPDATE OFF STATUPDATE OFF MAXERROR 0"
    )
    assert "\\000" not in text
    with pytest.raises(ValueError, match="not both"):
        w.redshift_copy(
            "s", "t", ["a"], "s3://bkt/m", ROLE,
            nulls=w.RedshiftNulls.NUL_BYTE, file_format=FileFormat(csv=options),
        )  # fmt: skip


def test_default_format_is_the_platform_csv_unchanged():
    default = w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE).as_string(None)
    given_default = w.redshift_copy(
        "s", "t", ["a"], "s3://bkt/m", ROLE, file_format=FileFormat()
    ).as_string(None)
    assert default == given_default and "NULL AS '\\000'" in default
    assert w.copy_from_stdin("s", "t", ["a"]).as_string(None) == w.copy_from_stdin(
        "s", "t", ["a"], csv=CsvOptions()
    ).as_string(None)


# ----------------------------------------------------------------------------- PostgreSQL


def test_postgres_csv_options_map_to_copy_options():
    options = CsvOptions(delimiter=";", quote="|", header=True, null_marker="NULL")
    assert w.copy_from_stdin("s", "t", ["a"], csv=options).as_string(None) == (
        'COPY "s"."t" ("a") FROM STDIN (FORMAT csv, DELIMITER \';\', QUOTE \'|\', '
        "NULL 'NULL', ENCODING 'UTF8', HEADER true)"
    )


PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\")


@settings(max_examples=200, deadline=None)
@given(
    delimiter=PRINTABLE, quote=PRINTABLE, header=st.booleans(), null=st.text(PRINTABLE, max_size=6)
)
def test_any_valid_option_renders_one_redshift_copy_with_its_literals(
    delimiter, quote, header, null
):
    """Options are literals, never SQL: whatever valid characters are given (quotes included),
    the COPY parses as one statement and keeps its target and source."""
    try:
        options = CsvOptions(delimiter, quote, header, null)
    except ValueError:
        return
    _, tree = parsed_redshift(
        w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE, file_format=FileFormat(csv=options))
    )
    assert tree.this.this.name == "t" and [f.this for f in tree.args["files"]] == ["s3://bkt/m"]


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"delimiter": ";;"}, "delimiter"),
        ({"delimiter": ""}, "delimiter"),
        ({"delimiter": "\t"}, "delimiter"),
        ({"quote": "\\"}, "quote"),
        ({"delimiter": '"'}, "quote"),
        ({"null_marker": "a,b"}, "null_marker"),
        ({"null_marker": "N\\A"}, "null_marker"),
        ({"null_marker": "x" * 33}, "null_marker"),
        ({"kind": "parquet", "delimiter": ";"}, "delimiter"),
        ({"kind": "parquet", "header": False}, "header"),
        ({"kind": "parquet", "null_marker": ""}, "null_marker"),
        ({"kind": "csv"}, "kind"),
    ],
)
def test_component_refuses_bad_or_misplaced_options_naming_the_field(given, field):
    with pytest.raises(ValueError, match=rf"file_format\.{field}\b"):
        FileFormatSetting(**given)


def test_component_maps_settings_to_the_value():
    setting = FileFormatSetting(delimiter=";", header=True)
    assert setting.copy_format() == FileFormat(csv=CsvOptions(delimiter=";", header=True))
    assert FileFormatSetting(kind="parquet").copy_format() == PARQUET


# ----------------------------------------------------------------------------- Parquet as CSV

ADVERSARIAL = pa.table(
    {
        "id": pa.array([2**63 - 1, -(2**63), 0], pa.int64()),
        "note": pa.array(["", None, 'a "q", b\nc\r\nd é✓ 𝄞'], pa.string()),
        "ts": pa.array(
            [
                datetime(2026, 11, 30, 8, 1, 2, 345678, tzinfo=UTC),
                None,
                datetime(1, 1, 1, tzinfo=UTC),
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        "amount": pa.array(
            [Decimal("-12345678901234567890.123456"), None, Decimal("0.000001")],
            pa.decimal128(38, 6),
        ),
        "flag": pa.array([True, None, False]),
        "day": pa.array([date(2026, 1, 1), None, date(9999, 12, 31)]),
    }
)


def parquet_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=2)
    return out.getvalue()


def test_parquet_becomes_the_platform_csv_in_the_target_order():
    columns = ["flag", "id", "note", "ts", "amount", "day"]
    text = b"".join(parquet_csv_chunks(parquet_bytes(ADVERSARIAL), columns, "s3://b/k.parquet"))
    rows = list(csv.reader(io.StringIO(text.decode(), newline="")))
    assert rows == [
        ["true", str(2**63 - 1), "", "2026-11-30 08:01:02.345678Z", "-12345678901234567890.123456",
         "2026-01-01"],
        ["", str(-(2**63)), "", "", "", ""],
        ["false", "0", 'a "q", b\nc\r\nd é✓ 𝄞', "0001-01-01 00:00:00.000000Z", "0.000001",
         "9999-12-31"],
    ]  # fmt: skip
    # NULL is an unquoted empty field, the empty string a quoted one: COPY reads them apart
    lines = text.split(b"\n")
    assert (
        lines[0].startswith(b'true,9223372036854775807,"",')
        and lines[1] == b",-9223372036854775808,,,,"
    )


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["id", "note", "ts", "amount", "flag"], "column 'day' is not a column of the target"),
        (
            ["id", "note", "ts", "amount", "flag", "day", "extra"],
            "target column 'extra' is missing",
        ),
        (["id", "note", "ts", "amount", "flag", "Day"], "column 'day' is not a column"),
    ],
)
def test_parquet_columns_must_match_the_target_by_name(columns, message):
    with pytest.raises(ValueError, match=rf"Parquet file s3://b/k\.parquet: {message}"):
        list(parquet_csv_chunks(parquet_bytes(ADVERSARIAL), columns, "s3://b/k.parquet"))


def test_parquet_types_without_exact_text_and_broken_files_are_refused():
    table = pa.table({"id": [1], "blob": pa.array([b"\x00\xff"], pa.binary())})
    with pytest.raises(ValueError, match="column 'blob' has type binary"):
        list(parquet_csv_chunks(parquet_bytes(table), ["id", "blob"], "s3://b/k.parquet"))
    with pytest.raises(ValueError, match=r"Parquet file s3://b/bad cannot be read"):
        list(parquet_csv_chunks(b"not parquet", ["id"], "s3://b/bad"))
