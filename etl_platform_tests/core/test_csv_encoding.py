"""The platform CSV format: PostgreSQL/Redshift CSV semantics, streaming gzip, exact round trip."""

from __future__ import annotations

import gzip
import io
import random
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl_platform.core.csv_encoding import CsvGzipWriter, encode_csv, write_csv_gzip
from etl_platform.core.warehouse import Dialect, RedshiftNulls

#: Redshift with the lossless NULL marker (a lone NUL byte, ``NULL AS '\\000'``): its default.
NUL_NULLS = Dialect.REDSHIFT
#: Redshift as it was before issue 8: empty NULL marker, ``EMPTYASNULL``, ``\\x`` binary.
EMPTY_NULLS = replace(
    Dialect.REDSHIFT,
    csv_null="",
    redshift_nulls=RedshiftNulls.EMPTY_AS_NULL,
    csv_binary_prefix="\\x",
)


def parse_pg_csv(text: str) -> list[tuple[str | None, ...]]:
    """PostgreSQL ``COPY ... (FORMAT csv)`` reading with the defaults the platform uses:
    comma, ``"`` quote and escape, unquoted empty field = NULL, records end at an unquoted LF."""
    rows: list[tuple[str | None, ...]] = []
    fields: list[str | None] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            i += 1
            buf = []
            while True:
                j = text.index('"', i)
                buf.append(text[i:j])
                if j + 1 < n and text[j + 1] == '"':
                    buf.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            value: str | None = "".join(buf)
        else:
            j = i
            while j < n and text[j] not in ",\n":
                j += 1
            raw = text[i:j]
            assert '"' not in raw, f"quote inside an unquoted field: {raw!r}"
            value = raw if raw else None
            i = j
        fields.append(value)
        if i >= n:
            raise AssertionError("record without a line end")
        if text[i] == ",":
            i += 1
            continue
        assert text[i] == "\n", f"unexpected {text[i]!r} after a field"
        rows.append(tuple(fields))
        fields = []
        i += 1
    assert not fields
    return rows


def gz_text(data: bytes) -> str:
    return gzip.decompress(data).decode("utf-8")


def test_null_and_empty_string_differ():
    assert encode_csv([("a", None, "", "b")]) == 'a,,"",b\n'


@pytest.mark.parametrize(
    "value",
    ["nan", "NULL", "\\N", "null", "None", "  spaced  ", "\\", "back\\slash\\", "\t"],
)
def test_values_that_other_loaders_mistook_for_null_are_plain_data(value):
    text = encode_csv([(value, "x")])
    assert parse_pg_csv(text) == [(value, "x")]
    assert text == f"{value},x\n"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ('say "hi"', '"say ""hi"""'),
        ("a,b", '"a,b"'),
        ("line1\nline2", '"line1\nline2"'),
        ("cr\rlf", '"cr\rlf"'),
        ("crlf\r\n", '"crlf\r\n"'),
        ('"', '""""'),
        ("", '""'),
    ],
)
def test_quoting(value, encoded):
    assert encode_csv([(value, None)]) == f"{encoded},\n"
    assert parse_pg_csv(encode_csv([(value, None)])) == [(value, None)]


def test_end_of_data_marker_is_quoted_in_a_single_column():
    text = encode_csv([("\\.",), (None,), ("",), ("x",)])
    assert text == '"\\."\n\n""\nx\n'
    assert parse_pg_csv(text) == [("\\.",), (None,), ("",), ("x",)]


def test_non_string_values():
    text = encode_csv([(1, True, False, b"\x00\xff", Decimal("1E-3"), None)])
    assert text == "1,true,false,\\x00ff,0.001,\n"


def test_width_mismatch_is_an_error():
    with pytest.raises(ValueError, match="row 1 has 1 fields, expected 2"):
        encode_csv([("a", "b"), ("c",)])
    writer = CsvGzipWriter(io.BytesIO(), columns=["a", "b"])
    with pytest.raises(ValueError, match="expected 2"):
        writer.write_rows([("x", "y", "z")])


def test_gzip_stream_header_stats_and_determinism():
    rows = [("1", "é😀 עברית"), ("2", None), ("3", "")]
    out1, out2 = io.BytesIO(), io.BytesIO()
    stats = write_csv_gzip(out1, rows, columns=["id", "text value"], header=True)
    write_csv_gzip(out2, rows, columns=["id", "text value"], header=True)
    assert out1.getvalue() == out2.getvalue()
    text = gz_text(out1.getvalue())
    assert text == 'id,text value\n1,é😀 עברית\n2,\n3,""\n'
    assert stats.rows == 3
    assert stats.csv_bytes == len(text.encode())
    assert stats.bytes_written == len(out1.getvalue())


def test_empty_output_is_a_valid_gzip_stream():
    out = io.BytesIO()
    stats = CsvGzipWriter(out, columns=["a"]).close()
    assert stats.rows == 0 and gz_text(out.getvalue()) == ""


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("level", [1, 6, 9])
def test_chunked_streaming_matches_one_shot(background, level):
    noise = random.Random(7)
    rows = [
        (str(i), f"value {i}\nwith, comma" if i % 7 == 0 else noise.randbytes(48).hex(), None)
        for i in range(5000)
    ]
    chunks: list[int] = []

    class Recorder(io.BytesIO):
        def write(self, data):
            chunks.append(len(data))
            return super().write(data)

    out = Recorder()
    with CsvGzipWriter(
        out, columns=["a", "b", "c"], chunk_bytes=4096, compresslevel=level, background=background
    ) as writer:
        for start in range(0, len(rows), 333):
            writer.write_rows(rows[start : start + 333])
        writer.write_row(("last", "", None))
    stats = writer.close()
    assert len(chunks) >= 3
    assert stats.rows == len(rows) + 1
    assert parse_pg_csv(gz_text(out.getvalue())) == [*rows, ("last", "", None)]
    assert gz_text(out.getvalue()) == encode_csv([*rows, ("last", "", None)])


def test_plain_columns_skip_checks_but_encode_the_same():
    rows = [("1", "a,b", None), ("2", "", "2024-01-02T03:04:05Z"), ("-3.5", None, None)]
    plain_out, checked_out = io.BytesIO(), io.BytesIO()
    with CsvGzipWriter(plain_out, columns=["n", "t", "ts"], plain=[True, False, True]) as w:
        w.write_rows(rows)
    with CsvGzipWriter(checked_out, columns=["n", "t", "ts"]) as w:
        w.write_rows(rows)
    assert gz_text(plain_out.getvalue()) == gz_text(checked_out.getvalue())


def test_nul_byte_null_marker():
    out = io.BytesIO()
    with CsvGzipWriter(out, columns=["a", "b"], dialect=NUL_NULLS) as writer:
        writer.write_rows([("x", None), ("", "y")])
    assert gz_text(out.getvalue()) == 'x,\x00\n"",y\n'
    with pytest.raises(ValueError, match="NUL character"):
        CsvGzipWriter(io.BytesIO(), columns=["a"], dialect=NUL_NULLS).write_rows([("a\x00b",)])
    with pytest.raises(ValueError, match="NULL marker"):
        replace(Dialect.POSTGRES, csv_null="\\N")
    with pytest.raises(ValueError, match="needs CSV NULL marker"):
        replace(Dialect.REDSHIFT, csv_null="")


def test_the_writer_follows_the_dialect():
    rows = [(b"\x00\xff", None, "")]
    assert encode_csv(rows) == '\\x00ff,,""\n'
    assert encode_csv(rows, dialect=EMPTY_NULLS) == '\\x00ff,,""\n'
    # Redshift: VARBYTE plain hex, NULL a lone NUL byte, "" the empty string
    assert encode_csv(rows, dialect=Dialect.REDSHIFT) == '00ff,\x00,""\n'
    out = io.BytesIO()
    write_csv_gzip(out, rows, dialect=Dialect.REDSHIFT)
    assert gz_text(out.getvalue()) == '00ff,\x00,""\n'


def test_failing_file_surfaces_and_exception_aborts():
    class Broken(io.RawIOBase):
        def write(self, data):
            raise OSError("disk full")

    for background in (False, True):
        writer = CsvGzipWriter(Broken(), columns=["a"], chunk_bytes=10, background=background)
        with pytest.raises((OSError, RuntimeError), match="disk full"):
            for _ in range(100):
                writer.write_rows([("some text",)] * 10)
            writer.close()
        writer.abort()

    out = io.BytesIO()
    with pytest.raises(KeyError), CsvGzipWriter(out, columns=["a"]) as writer:
        writer.write_rows([("x",)])
        raise KeyError("boom")
    with pytest.raises(ValueError, match="closed"):
        writer.write_rows([("y",)])


def test_lone_surrogate_is_a_clear_error():
    writer = CsvGzipWriter(io.BytesIO(), columns=["a", "b"])
    with pytest.raises(ValueError, match="not valid Unicode"):
        writer.write_rows([("\ud800", None)])


text_or_none = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(['"', ",", "\r", "\n", "\\", ".", "N", " ", "a", "é", "😀"])),
    st.text(),
)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=5).flatmap(
        lambda width: st.lists(st.tuples(*[text_or_none] * width), min_size=1, max_size=20)
    )
)
def test_round_trip_property(rows):
    text = encode_csv(rows)
    assert parse_pg_csv(text) == rows
    out = io.BytesIO()
    write_csv_gzip(out, rows)
    assert parse_pg_csv(gz_text(out.getvalue())) == rows


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(text_or_none, text_or_none, text_or_none), min_size=1, max_size=30))
def test_round_trip_through_polars(rows):
    import polars as pl

    out = io.BytesIO()
    write_csv_gzip(out, rows, columns=["a", "b", "c"], header=True)
    frame = pl.read_csv(
        io.BytesIO(gzip.decompress(out.getvalue())),
        schema={"a": pl.Utf8, "b": pl.Utf8, "c": pl.Utf8},
    )
    assert [tuple(r) for r in frame.iter_rows()] == rows
