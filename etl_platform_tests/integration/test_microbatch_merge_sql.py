"""The micro-batch merge SQL on real PostgreSQL against an independent model of the rules.

The model is a plain fold over loads written from the issue's wording, not from the SQL:
within a load the latest timestamp wins (NULL oldest, ties to the later file, then the later
row); against the table a row replaces the stored one unless it is older; a winning delete
flag removes the key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_platform.components.microbatch.load import TargetShape, merge_stage
from etl_platform.core import warehouse as warehouse_sql
from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec
from etl_platform.core.warehouse import Dialect
from etl_platform.core.warehouse import merge_load as m
from etl_platform.core.warehouse.merge_outcomes import load_outcomes

PG = Dialect.POSTGRES
SPEC = TableSpec(
    "items",
    (
        ColumnSpec("id", ColumnKind.BIGINT),
        ColumnSpec("ts", ColumnKind.TIMESTAMPTZ),
        ColumnSpec("val", ColumnKind.TEXT),
        ColumnSpec("del", ColumnKind.BOOLEAN),
    ),
    ("id",),
)
COLS = list(SPEC.column_names)
KEYS = m.MergeKeys(("id",), "ts", "del")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def model(table: dict, load: list[list[tuple]], flagged: bool = True) -> tuple[dict, dict]:
    """The table after the load, and what became of each row read (as the load's metadata
    names it); without ``flagged`` the fourth column is plain data, not a delete flag."""
    table = dict(table)
    read = sum(len(rows) for rows in load)
    outcomes = dict.fromkeys(
        ["inserted", "replaced", "deleted", "dropped_older", "dropped_absent_deletes"], 0
    )
    winners: dict[int, tuple] = {}
    rank: dict[int, tuple] = {}
    for f, rows in enumerate(load):
        for r, row in enumerate(rows):
            key, ts = row[0], row[1]
            score = (ts is not None, ts or T0, f, r)
            if key not in rank or score > rank[key]:
                winners[key], rank[key] = row, score
    for key, row in winners.items():
        stored = table.get(key)
        if stored is not None and stored[1] is not None and (row[1] is None or row[1] < stored[1]):
            outcomes["dropped_older"] += 1
        elif flagged and row[3]:
            outcomes["deleted" if key in table else "dropped_absent_deletes"] += 1
            table.pop(key, None)
        else:
            outcomes["replaced" if key in table else "inserted"] += 1
            table[key] = row
    outcomes["dropped_duplicates"] = read - len(winners)
    return table, {"rows_read": read, **{f"rows_{k}": v for k, v in outcomes.items()}}


def csv_line(row: tuple) -> bytes:
    """The platform's CSV: unquoted empty = NULL, strings always quoted (so "" is empty)."""

    def field(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace('"', '""') + '"'
        if isinstance(v, datetime):
            return v.isoformat()
        return str(v)

    return (",".join(field(v) for v in row) + "\n").encode()


def run_load(
    conn: psycopg.Connection,
    load: list[list[tuple]],
    merge: bool = True,
    upsert: bool = False,
    keys: m.MergeKeys = KEYS,
) -> dict:
    with conn.transaction():
        for s in m.begin_load(PG, "mb", "items"):
            conn.execute(s)
        for s in m.create_stage(PG, "mb", "items"):
            conn.execute(s)
        with conn.cursor() as cur:
            for rows in load:
                with cur.copy(warehouse_sql.copy_from_stdin(None, m.STAGE_TABLE, COLS)) as copy:
                    for row in rows:
                        copy.write(csv_line(row))
            # the loader's own choice: the upsert when the key is unique, else delete-insert
            shape = TargetShape(COLS, key_is_unique=upsert)
            counts = merge_stage(cur, PG, "mb", "items", keys if merge else None, shape)
    return counts


def table_rows(conn: psycopg.Connection) -> dict:
    rows = conn.execute("SELECT id, ts, val, del FROM mb.items").fetchall()
    assert len({r[0] for r in rows}) == len(rows)
    return {r[0]: r for r in rows}


@pytest.fixture
def conn(fresh_database):
    with psycopg.connect(fresh_database, autocommit=True) as c:
        for s in m.create_target_if_missing(PG, "mb", SPEC):
            c.execute(s)
        yield c


rows_st = st.tuples(
    st.integers(0, 5),
    st.one_of(st.none(), st.integers(0, 3).map(lambda h: T0 + timedelta(hours=h))),
    st.text("ab", max_size=2),
    st.booleans(),
)
loads_st = st.lists(st.lists(st.lists(rows_st, max_size=6), min_size=1, max_size=3), max_size=4)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(loads=loads_st, upsert=st.booleans(), flagged=st.booleans())
def test_merge_equals_the_model(conn, loads, upsert, flagged):
    conn.execute("TRUNCATE mb.items")
    keys = KEYS if flagged else m.MergeKeys(("id",), "ts")
    expected: dict = {}
    for load in loads:
        counts = run_load(conn, load, upsert=upsert, keys=keys)
        expected, outcomes = model(expected, load, flagged)
        assert table_rows(conn) == expected
        assert load_outcomes(outcomes["rows_read"], counts) == outcomes


@pytest.mark.parametrize("upsert", [False, True])
def test_counts_of_one_load(conn, upsert):
    run_load(conn, [[(1, T0, "a", False), (2, T0, "b", False), (3, None, "c", False)]])
    later = T0 + timedelta(hours=1)
    counts = run_load(
        conn,
        [
            [(1, later, "a2", False), (1, T0, "a-old", False)],  # one duplicate
            [(2, later, "gone", True), (3, None, "c2", False), (4, None, "new", False)],
        ],
        upsert=upsert,
    )
    assert counts == {"batch": 4, "drop_older": 0, "delete": 1, "replace": 2, "insert": 3}
    assert sorted(table_rows(conn)) == [1, 3, 4]
    counts = run_load(conn, [[(1, T0, "replayed old", False)]], upsert=upsert)
    assert counts["drop_older"] == 1 and table_rows(conn)[1][2] == "a2"


def test_columns_and_unique_key_probe(conn):
    rows = conn.execute(m.columns_query(PG, "mb", "items", ["id"])).fetchall()
    assert rows == [(c, True) for c in COLS]
    for key in (["id", "ts"], []):
        rows = conn.execute(m.columns_query(PG, "mb", "items", key)).fetchall()
        assert rows == [(c, False) for c in COLS]
    conn.execute("CREATE UNIQUE INDEX ON mb.items (val, id)")
    assert conn.execute(m.columns_query(PG, "mb", "items", ["id", "val"])).fetchall()[0][1]


def test_merge_off_appends(conn):
    run_load(conn, [[(7, None, "x", False)]], merge=False)
    with pytest.raises(psycopg.errors.UniqueViolation):
        run_load(conn, [[(7, None, "x", False)]], merge=False)
    assert list(table_rows(conn)) == [7]


def test_a_failing_load_leaves_the_table_unchanged(conn):
    run_load(conn, [[(1, T0, "a", False)]])
    with pytest.raises(psycopg.errors.BadCopyFileFormat):
        with conn.transaction():
            for s in m.create_stage(PG, "mb", "items"):
                conn.execute(s)
            with conn.cursor() as cur:
                with cur.copy(warehouse_sql.copy_from_stdin(None, m.STAGE_TABLE, COLS)) as copy:
                    copy.write(b"2,,x,false,extra\n")
    assert table_rows(conn) == {1: (1, T0, "a", False)}


@pytest.mark.parametrize("upsert", [False, True])
def test_every_row_read_is_in_exactly_one_outcome(conn, upsert):
    """A winning delete older than the stored row is dropped as older, on both merge paths;
    a delete of a key the table does not hold is its own outcome."""
    t0, t1, t2 = T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    stored = [(1, t2, "one", False), (2, t1, "two", False), (3, t1, "three", False)]
    run_load(conn, [stored + [(4, t2, "four", False)]], upsert=upsert)
    load = [
        [(1, t0, "one-older", False), (3, t2, "three-new", False)],
        [
            (1, t1, "", True),  # winning delete of key 1, older than the stored row: dropped
            (2, t2, "", True),  # a newer delete: deletes key 2
            (3, t0, "three-dup", False),  # duplicate of key 3, loses in the batch
            (4, t1, "four-older", False),  # older than the stored row: dropped
            (5, t1, "", True),  # delete of a key the table does not hold
            (6, None, "six", False),  # a new key
        ],
    ]
    counts = run_load(conn, load, upsert=upsert)
    assert table_rows(conn) == {
        1: (1, t2, "one", False),
        3: (3, t2, "three-new", False),
        4: (4, t2, "four", False),
        6: (6, None, "six", False),
    }
    outcomes = load_outcomes(8, counts)
    assert outcomes == {
        "rows_read": 8,
        "rows_dropped_duplicates": 2,  # key 1's upsert at t0, key 3's at t0
        "rows_inserted": 1,  # key 6
        "rows_replaced": 1,  # key 3
        "rows_deleted": 1,  # key 2
        "rows_dropped_older": 2,  # keys 1 (the older delete) and 4
        "rows_dropped_absent_deletes": 1,  # key 5
    }
    assert sum(v for k, v in outcomes.items() if k != "rows_read") == outcomes["rows_read"]
