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
