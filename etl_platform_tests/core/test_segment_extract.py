"""One scan segment -> one gzip CSV per table, on plain lists of pages (no AWS client)."""

from __future__ import annotations

import gzip
import io

import pytest

from etl_platform.core.dynamo import (
    DataSchemaMismatch,
    SegmentSchemaUnstable,
    extract_segment,
    infer_schema_set,
)
from etl_platform.core.table_spec import ColumnKind
from etl_platform.core.warehouse import Dialect

from .test_csv_encoding import parse_pg_csv
from .test_dynamo_schema import CONFIG, N, S, item


class Outputs:
    """``open_output``: a fresh in-memory file per table and pass (the last one is kept)."""

    def __init__(self) -> None:
        self.files: dict[str, io.BytesIO] = {}

    def __call__(self, table: str) -> io.BytesIO:
        self.files[table] = io.BytesIO()
        return self.files[table]

    def rows(self, table: str) -> list[tuple[str | None, ...]]:
        return parse_pg_csv(gzip.decompress(self.files[table].getvalue()).decode())


def scanner(pages):
    scans = []

    def scan():
        scans.append(len(scans) + 1)
        return iter(pages)

    return scan, scans


def test_fitting_segment_is_written_in_one_pass():
    pages = [[item("A", "1", x=N("1"))], [item("B", "2", x=N("2")), item("C", "3")]]
    schema_set = infer_schema_set([i for p in pages for i in p], CONFIG)
    outputs = Outputs()
    scan, scans = scanner(pages)
    progress = []
    result = extract_segment(scan, schema_set, outputs, progress=lambda *a: progress.append(a))
    assert (result.passes, result.items, result.rows, result.evolved) == (1, 3, 3, False)
    assert scans == [1] and progress == [(1, 1), (3, 2)]
    assert result.schema_set is schema_set
    assert result.tables["things"].rows == 3
    assert outputs.rows("things") == [("A", "1", "1"), ("B", "2", "2"), ("C", "3", None)]


def test_widening_rescans_with_the_final_data_schema():
    pages = [[item("A", "1", x=N("1"))], [item("B", "2", x=S("two"), y=N("5"))]]
    schema_set = infer_schema_set(pages[0], CONFIG)
    outputs = Outputs()
    scan, scans = scanner(pages)
    result = extract_segment(scan, schema_set, outputs)
    assert (result.passes, result.evolved, scans) == (2, True, [1, 2])
    things = result.schema_set.table("things")
    assert things.column("x").kind is ColumnKind.TEXT
    assert result.evolution["widened_columns"] == ["things.x: bigint -> text"]
    assert result.evolution["added_columns"] == ["things.y: bigint"]
    assert outputs.rows("things") == [("A", "1", "1", None), ("B", "2", "two", "5")]


def test_policy_fail_raises_on_the_first_unfit_item():
    pages = [[item("A", "1", x=N("1"))], [item("B", "2", x=S("two"))]]
    schema_set = infer_schema_set(pages[0], CONFIG)
    scan, _ = scanner(pages)
    with pytest.raises(DataSchemaMismatch, match="pk='B'.*attribute x"):
        extract_segment(scan, schema_set, Outputs(), on_unfit="fail")


def test_a_data_schema_still_widening_after_max_passes_fails():
    scans = []

    def scan():
        # Every scan sees a new attribute: the table changes faster than it can be read.
        scans.append(len(scans) + 1)
        return iter([[item("A", "1", **{f"a{len(scans)}": N("1")})]])

    schema_set = infer_schema_set([item("A", "1")], CONFIG)
    with pytest.raises(SegmentSchemaUnstable, match="still widened after 2 scans"):
        extract_segment(scan, schema_set, Outputs(), max_passes=2)
    assert scans == [1, 2]


def _raw_lines(outputs: Outputs, table: str) -> list[bytes]:
    return gzip.decompress(outputs.files[table].getvalue()).splitlines()


def test_a_segment_extracted_for_redshift_keeps_empty_and_null_apart_and_writes_plain_hex():
    """Redshift: NULL is the lone NUL marker, ``""`` a quoted empty field, binary plain hex
    (VARBYTE); PostgreSQL's bytes are what they always were."""
    items = [
        item("A", "1", s=S(""), b={"B": b"\x00\xff"}),
        item("B", "2", s={"NULL": True}, b={"B": b""}),
        item("C", "3"),
    ]
    schema_set = infer_schema_set(items, CONFIG)
    redshift, postgres, default = Outputs(), Outputs(), Outputs()
    extract_segment(lambda: iter([items]), schema_set, redshift, dialect=Dialect.REDSHIFT)
    extract_segment(lambda: iter([items]), schema_set, postgres, dialect=Dialect.POSTGRES)
    extract_segment(lambda: iter([items]), schema_set, default)
    assert schema_set.table("things").column_names == ("pk", "sk", "b", "s")
    assert _raw_lines(redshift, "things") == [
        b'A,1,00ff,""',
        b'B,2,"",\x00',
        b"C,3,\x00,\x00",
    ]
    assert _raw_lines(postgres, "things") == [b'A,1,\\x00ff,""', b"B,2,\\x,", b"C,3,,"]
    assert postgres.files["things"].getvalue() == default.files["things"].getvalue()
