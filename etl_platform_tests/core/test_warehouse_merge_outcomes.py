"""What became of a micro-batch load's rows: every row read in exactly one outcome."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from etl_platform.core.warehouse.merge_outcomes import (
    UPSERT_COUNTS,
    load_outcomes,
    upsert_action_counts,
)

OUTCOMES = [
    "rows_inserted",
    "rows_replaced",
    "rows_deleted",
    "rows_dropped_duplicates",
    "rows_dropped_older",
    "rows_dropped_absent_deletes",
]


@given(st.lists(st.integers(0, 1000), min_size=len(OUTCOMES), max_size=len(OUTCOMES)))
def test_the_outcomes_of_both_merges_add_up_to_the_rows_read(shares):
    inserted, replaced, deleted, duplicates, older, absent = shares
    batch = inserted + replaced + deleted + older + absent
    rows_read = batch + duplicates
    expected = {"rows_read": rows_read, **dict(zip(OUTCOMES, shares, strict=True))}
    upsert_row = (batch, deleted, inserted, replaced, older)
    assert dict(zip(UPSERT_COUNTS, upsert_row, strict=True))["drop_older"] == older
    from_upsert = upsert_action_counts(upsert_row)
    assert from_upsert == {
        "batch": batch,
        "delete": deleted,
        "insert": inserted + replaced,  # delete-insert's insert writes the replacements too
        "replace": replaced,
        "drop_older": older,
    }
    assert load_outcomes(rows_read, from_upsert) == expected


def test_an_append_inserts_every_row_read():
    assert load_outcomes(5, {"insert": 5}) == {
        "rows_read": 5,
        **dict.fromkeys(OUTCOMES, 0),
        "rows_inserted": 5,
    }
