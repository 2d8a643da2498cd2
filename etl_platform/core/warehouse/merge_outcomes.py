"""What became of the rows a micro-batch load read: every row in exactly one outcome.

Both merges report action counts in one shape (:func:`merge_load.merge_statements`' row counts:
``batch``, ``drop_older``, ``delete``, ``replace``, ``insert``, where ``insert`` includes the
replaced rows); :func:`upsert_action_counts` turns the one-statement merge's row into it.
:func:`load_outcomes` then splits the rows read into:

* ``rows_dropped_duplicates``: not the winning row of their key within the load;
* ``rows_dropped_older``: winners older than the stored row of their key (delete rows too);
* ``rows_inserted``: winners of keys the table did not hold;
* ``rows_replaced``: winners that replaced the stored row of their key;
* ``rows_deleted``: winning delete rows that removed the stored row of their key;
* ``rows_dropped_absent_deletes``: winning delete rows of keys the table did not hold (nothing
  to remove); what is left of the winners after the other four.

A plain append (merge off) reports ``insert`` only: every row read is inserted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["UPSERT_COUNTS", "load_outcomes", "upsert_action_counts"]

#: The columns of :func:`merge_upsert.upsert_statement`'s one row, in order.
UPSERT_COUNTS = ("batch", "delete", "insert", "replace", "drop_older")


def upsert_action_counts(row: Sequence[int]) -> dict[str, int]:
    """The one-statement merge's row as :func:`merge_load.merge_statements` counts it (there,
    ``insert`` counts the replaced rows too)."""
    counts = dict(zip(UPSERT_COUNTS, (int(v) for v in row), strict=True))
    counts["insert"] += counts["replace"]
    return counts


def load_outcomes(rows_read: int, counts: Mapping[str, int]) -> dict[str, int]:
    """The rows read, then each outcome's share of them (they add up to the rows read)."""
    batch = counts.get("batch", rows_read)
    written, replaced = counts.get("insert", 0), counts.get("replace", 0)
    deleted, older = counts.get("delete", 0), counts.get("drop_older", 0)
    return {
        "rows_read": rows_read,
        "rows_inserted": written - replaced,
        "rows_replaced": replaced,
        "rows_deleted": deleted,
        "rows_dropped_duplicates": rows_read - batch,
        "rows_dropped_older": older,
        "rows_dropped_absent_deletes": batch - written - deleted - older,
    }
