"""The PostgreSQL SQL of ``etl_platform.core.warehouse`` run for real: load, centralize,
blocking checks, atomic swap under concurrent readers, rollback, merge, timeouts."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from etl_platform.core import warehouse as w
from etl_platform.core.retry import classify, retry_call
from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec

PG = w.Dialect.POSTGRES
UTC = dt.UTC


@pytest.fixture
def pg_uri(fresh_database: str) -> str:
    """A fresh database of the session's local stack for each test."""
    return fresh_database


@pytest.fixture
def conn(pg_uri: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_uri, autocommit=True) as connection:
        yield connection


@pytest.fixture
def prefix() -> str:
    return f"p{uuid.uuid4().hex[:8]}"


def run(conn: psycopg.Connection, statements: Sequence[sql.Composable]) -> None:
    """All statements in one transaction."""
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)


def scalar(
    conn: psycopg.Connection, query: sql.Composable | str, params: Sequence[object] | None = None
) -> object:
    # no params argument unless there are params: with one, psycopg reads a '%' inside a quoted
    # identifier as a placeholder (see the module doc of etl_platform.core.warehouse)
    row = conn.execute(query, params).fetchone() if params else conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def copy_csv(
    conn: psycopg.Connection, schema: str, table: str, columns: Sequence[str], csv_text: str
) -> int:
    with conn.transaction():
        with conn.cursor() as cur:
            with cur.copy(w.copy_from_stdin(schema, table, columns)) as copy:
                copy.write(csv_text.encode("utf-8"))
            return cur.rowcount


ITEMS = TableSpec(
    "items",
    (
        ColumnSpec("id", ColumnKind.BIGINT),
        ColumnSpec("updated_at", ColumnKind.TIMESTAMPTZ),
        ColumnSpec("name", ColumnKind.TEXT),
        ColumnSpec("price", ColumnKind.DECIMAL),
        ColumnSpec("active", ColumnKind.BOOLEAN),
        ColumnSpec("blob", ColumnKind.BINARY),
        ColumnSpec("doc", ColumnKind.JSON),
    ),
    ("id",),
)
TAGS = TableSpec(
    "items__tags",
    (
        ColumnSpec("_parent_id", ColumnKind.BIGINT),
        ColumnSpec("_index", ColumnKind.BIGINT),
        ColumnSpec("value", ColumnKind.TEXT),
    ),
    ("_parent_id", "_index"),
)


# ----------------------------------------------------------------------------- loads


def test_copy_keeps_null_empty_multiline_quotes_backslashes_and_exact_types(conn, prefix):
    schema = w.staging_schema_name(prefix, "2024-01-02|0")
    run(conn, [w.create_schema(PG, schema), *w.create_table(PG, schema, ITEMS)])
    long_text = "x" * 100_000
    digits = "12345678901234567890123456789012345678901234.000000000000000000001"
    csv_text = (
        # id, updated_at, name, price, active, blob, doc
        "1,2024-01-02T03:04:05.123456+02:00,,,,,\n"  # unquoted empty = NULL everywhere
        '2,,"",0,false,"\\x",{}\n'  # "" = empty string, empty bytea
        f'3,,"line one\nline two, ""quoted"" \\ back\\\\slash",{digits},true,'
        '\\x00ff10,"{""a"": [1, 2.50], ""ü"": null}"\n'
        f"4,,nan,-0.5,true,,[]\n"  # the string "nan" is data, not NULL
        f'5,,"{long_text}",1e-130,,,\n'
        '6,,"ünï©ødé 🎉 \t tab",99999999999999999999999999999999999999,,,\n'
    )
    assert copy_csv(conn, schema, "items", ITEMS.column_names, csv_text) == 6
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY id").format(w.qualified_name(PG, schema, "items"))
        )
    }
    assert rows[1] == (dt.datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=UTC), *[None] * 5)
    assert rows[2][1:] == ("", Decimal(0), False, b"", {})
    assert rows[3][1] == 'line one\nline two, "quoted" \\ back\\\\slash'
    assert rows[3][2] == Decimal(digits)  # more than 38 digits, exact
    assert rows[3][4:] == (b"\x00\xff\x10", {"a": [1, 2.5], "ü": None})
    assert rows[4][1] == "nan"
    assert rows[5][1] == long_text and rows[5][2] == Decimal("1e-130")
    assert rows[6][1] == "ünï©ødé 🎉 \t tab"
    assert rows[6][2] == Decimal("99999999999999999999999999999999999999")


# ----------------------------------------------------------------------------- centralize


def make_segments(
    conn: psycopg.Connection, prefix: str, items: list[str], tags: list[str]
) -> list[str]:
    """One staging schema per segment with ITEMS and TAGS loaded from CSV lines."""
    schemas = []
    for segment, (item_csv, tag_csv) in enumerate(zip(items, tags, strict=True)):
        schema = w.staging_schema_name(prefix, f"2024-01-02|{segment}")
        run(
            conn,
            [
                w.drop_owned_schema(PG, schema),
                w.create_schema(PG, schema),
                *w.create_table(PG, schema, ITEMS, primary_key=False),
                *w.create_table(PG, schema, TAGS, primary_key=False),
            ],
        )
        copy_csv(conn, schema, "items", ITEMS.column_names, item_csv)
        copy_csv(conn, schema, "items__tags", TAGS.column_names, tag_csv)
        schemas.append(schema)
    return schemas


def centralize_all(conn: psycopg.Connection, segments: list[str], new: str) -> None:
    statements: list[sql.Composed] = [w.drop_owned_schema(PG, new), w.create_schema(PG, new)]
    for spec in (ITEMS, TAGS):
        statements += w.centralize(PG, spec, segments, new)
    run(conn, statements)


def checks(conn: psycopg.Connection, schema: str) -> dict[str, int]:
    return {
        "items": scalar(conn, w.row_count_query(PG, schema, "items")),
        "tags": scalar(conn, w.row_count_query(PG, schema, "items__tags")),
        "duplicate_items": scalar(conn, w.duplicate_key_count_query(PG, schema, ITEMS)),
        "duplicate_tags": scalar(conn, w.duplicate_key_count_query(PG, schema, TAGS)),
        "orphan_tags": scalar(
            conn,
            w.orphan_count_query(PG, schema, "items__tags", ["_parent_id"], "items", ["id"]),
        ),
    }


def test_centralize_three_segments_with_exact_types(conn, prefix):
    segments = make_segments(
        conn,
        prefix,
        items=["1,,a,1.5,,,\n2,,b,,,,\n", "3,,c,,,,\n", "4,,d,,,,\n5,,e,,,,\n"],
        tags=["1,0,x\n1,1,y\n", "3,0,z\n", "5,0,w\n"],
    )
    new = w.new_schema_name(prefix)
    centralize_all(conn, segments, new)
    assert checks(conn, new) == {
        "items": 5,
        "tags": 4,
        "duplicate_items": 0,
        "duplicate_tags": 0,
        "orphan_tags": 0,
    }
    run(conn, [w.add_primary_key(PG, new, ITEMS), w.add_primary_key(PG, new, TAGS)])
    types = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'items'",
            (new,),
        ).fetchall()
    )
    assert types == {
        "id": "bigint",
        "updated_at": "timestamp with time zone",
        "name": "text",
        "price": "numeric",
        "active": "boolean",
        "blob": "bytea",
        "doc": "jsonb",
    }


def test_checks_detect_a_duplicate_key_and_an_orphan_child(conn, prefix):
    segments = make_segments(
        conn,
        prefix,
        # id 2 is extracted by segment 0 and segment 2 (e.g. a rerun against a moved item)
        items=["1,,a,,,,\n2,,b,,,,\n", "3,,c,,,,\n", "2,,b,,,,\n4,,d,,,,\n"],
        # 999 has no parent; a NULL parent key is an orphan too
        tags=["1,0,x\n", "999,0,lost\n", "4,0,y\n"],
    )
    new = w.new_schema_name(prefix)
    centralize_all(conn, segments, new)
    assert checks(conn, new) == {
        "items": 5,
        "tags": 3,
        "duplicate_items": 1,
        "duplicate_tags": 0,
        "orphan_tags": 1,
    }
    # PostgreSQL also refuses to declare the key over duplicates: blocked twice
    with pytest.raises(psycopg.errors.UniqueViolation):
        run(conn, [w.add_primary_key(PG, new, ITEMS)])


def test_primary_key_columns_refuse_null(conn, prefix):
    schema = w.new_schema_name(prefix)
    run(conn, [w.create_schema(PG, schema), *w.create_table(PG, schema, TAGS, primary_key=False)])
    with pytest.raises(psycopg.errors.NotNullViolation):
        copy_csv(conn, schema, "items__tags", TAGS.column_names, ",0,x\n")


# ----------------------------------------------------------------------------- swap

ROWS_PER_VERSION = 2000


def build_version(conn: psycopg.Connection, published: str, version: int) -> str:
    """A complete new schema holding table t with ROWS_PER_VERSION rows of ``version``."""
    spec = TableSpec(
        "t",
        (ColumnSpec("id", ColumnKind.BIGINT), ColumnSpec("version", ColumnKind.BIGINT)),
        ("id",),
    )
    new = w.new_schema_name(published)
    table = w.qualified_name(PG, new, "t")
    run(
        conn,
        [w.drop_owned_schema(PG, new), w.create_schema(PG, new), *w.create_table(PG, new, spec)],
    )
    conn.execute(
        sql.SQL("INSERT INTO {} (id, version) SELECT g, %s FROM generate_series(1, %s) g").format(
            table
        ),
        (version, ROWS_PER_VERSION),
    )
    return new


def swap(conn: psycopg.Connection, published: str, new: str, lock_timeout_ms: int = 2000) -> None:
    def attempt() -> None:
        with conn.transaction():
            for statement in w.session_timeouts(PG, 30_000, lock_timeout_ms, local=True):
                conn.execute(statement)
            previous = w.previous_schema_name(published)
            dependents = conn.execute(w.dependent_views_query(PG, previous), (previous,)).fetchall()
            if dependents:
                raise RuntimeError(f"views depend on {previous}: {dependents}")
            for statement in w.swap_statements(PG, published, new):
                conn.execute(statement)

    retry_call(attempt, max_attempts=5, base_delay=0.05, max_delay=0.5, what=f"swap {published}")


def published_version(conn: psycopg.Connection, schema: str) -> tuple[int, int | None, int | None]:
    row = conn.execute(
        sql.SQL("SELECT count(*), min(version), max(version) FROM {}").format(
            w.qualified_name(PG, schema, "t")
        )
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_swap_is_atomic_for_concurrent_readers(conn, pg_uri, prefix):
    published = prefix
    swap(conn, published, build_version(conn, published, 0))

    stop = threading.Event()
    problems: list[str] = []
    seen_versions: set[int] = set()
    reads = [0]

    def reader() -> None:
        with psycopg.connect(pg_uri, autocommit=True) as rconn:
            while not stop.is_set():
                try:
                    count, low, high = published_version(rconn, published)
                except Exception as exc:  # any error is a failure of the swap
                    problems.append(f"{type(exc).__name__}: {exc}")
                    continue
                reads[0] += 1
                if count != ROWS_PER_VERSION or low != high:
                    problems.append(f"saw {count} rows of versions {low}..{high}")
                elif low is not None:
                    seen_versions.add(low)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for version in range(1, 21):
            swap(conn, published, build_version(conn, published, version))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert problems == []
    assert reads[0] > 20
    assert len(seen_versions) > 1  # the readers really ran across swaps
    assert published_version(conn, published) == (ROWS_PER_VERSION, 20, 20)
    assert published_version(conn, w.previous_schema_name(published)) == (ROWS_PER_VERSION, 19, 19)


def test_first_publish_and_rollback_restore_versions(conn, prefix):
    published = prefix
    previous = w.previous_schema_name(published)
    swap(conn, published, build_version(conn, published, 1))  # nothing published before
    assert published_version(conn, published) == (ROWS_PER_VERSION, 1, 1)
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            (previous,),
        )
        == 0
    )  # the "previous" of a first publish is empty

    swap(conn, published, build_version(conn, published, 2))
    assert published_version(conn, published) == (ROWS_PER_VERSION, 2, 2)

    run(conn, w.rollback_statements(PG, published))
    assert published_version(conn, published) == (ROWS_PER_VERSION, 1, 1)
    assert published_version(conn, previous) == (ROWS_PER_VERSION, 2, 2)

    run(conn, w.rollback_statements(PG, published))  # roll forward again
    assert published_version(conn, published) == (ROWS_PER_VERSION, 2, 2)


def test_failed_swap_changes_nothing(conn, prefix):
    published = prefix
    swap(conn, published, build_version(conn, published, 1))
    with pytest.raises(psycopg.errors.InvalidSchemaName):  # "<published>__new" does not exist
        run(conn, w.swap_statements(PG, published, w.new_schema_name(published)))
    assert published_version(conn, published) == (ROWS_PER_VERSION, 1, 1)
    with pytest.raises(psycopg.errors.InvalidSchemaName):
        run(conn, w.rollback_statements(PG, published, previous=f"{published}__nope"))
    assert published_version(conn, published) == (ROWS_PER_VERSION, 1, 1)


def test_lock_table_serializes_publishes_of_one_target_across_swaps(conn, pg_uri, prefix):
    """The Redshift publish lock (a LOCK on ``<target>__lock._etl_publish_lock``, held until
    its transaction ends) run on PostgreSQL, whose ``LOCK TABLE`` is the same exclusive lock:
    while one publish holds it a second one waits, also across a swap of the target."""
    published, lock_schema = f"{prefix}_pub", w.publish_lock_schema_name(f"{prefix}_pub")
    run(conn, w.lock_table_setup_statements(PG, lock_schema))
    run(conn, w.lock_table_setup_statements(PG, lock_schema))  # idempotent
    with psycopg.connect(pg_uri) as holder, psycopg.connect(pg_uri) as waiter:
        for statement in w.lock_table_statements(PG, lock_schema):
            holder.execute(statement)  # transaction stays open: the lock is held
        swap(conn, published, build_version(conn, published, 1))  # the swap does not touch it
        waiter.execute("SET lock_timeout = 200")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            for statement in w.lock_table_statements(PG, lock_schema):
                waiter.execute(statement)
        waiter.rollback()
        holder.commit()  # publish done: the lock is released with the transaction
        for statement in w.lock_table_statements(PG, lock_schema):
            waiter.execute(statement)
        waiter.rollback()


def test_views_follow_the_rename_and_the_guard_names_them(conn, prefix):
    published = prefix
    previous = w.previous_schema_name(published)
    reports = f"{prefix}_reports"
    swap(conn, published, build_version(conn, published, 1))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(reports)))
    conn.execute(
        sql.SQL("CREATE VIEW {} AS SELECT version FROM {}").format(
            sql.Identifier(reports, "v"), w.qualified_name(PG, published, "t")
        )
    )
    swap(conn, published, build_version(conn, published, 2))
    # PostgreSQL binds views by OID: the view now reads the previous version
    assert (
        scalar(conn, sql.SQL("SELECT max(version) FROM {}").format(sql.Identifier(reports, "v")))
        == 1
    )
    dependents = conn.execute(w.dependent_views_query(PG, previous), (previous,)).fetchall()
    assert dependents == [(reports, "v", previous, "t")]
    # so the guarded swap refuses to CASCADE it away, and changes nothing
    with pytest.raises(Exception, match="views depend on"):
        swap(conn, published, build_version(conn, published, 3))
    assert published_version(conn, published) == (ROWS_PER_VERSION, 2, 2)
    assert scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(reports, "v"))) > 0


# ----------------------------------------------------------------------------- merge

EVENTS = TableSpec(
    "events",
    (
        ColumnSpec("id", ColumnKind.TEXT),
        ColumnSpec("ts", ColumnKind.TIMESTAMPTZ),
        ColumnSpec("payload", ColumnKind.TEXT),
        ColumnSpec("doc", ColumnKind.JSON),
    ),
    ("id",),
)


def ts(hour: int) -> str:
    return f"2024-05-01T{hour:02d}:00:00+00:00"


TARGET_ROWS = [
    f"a,{ts(10)},old-a,\n",
    f"b,{ts(12)},newer-in-target,\n",
    "c,,null-target-c,\n",
    "d,,null-target-d,\n",
    f"g,{ts(10)},g-target,\n",
    f"h,{ts(10)},untouched,\n",
]
BATCH_ROWS = [
    f"a,{ts(11)},a1,\n",
    f"a,{ts(11)},a2,\n",  # tie on ts: payload 'a2' > 'a1' wins, whatever the order
    "a,,a-null,\n",
    f"b,{ts(11)},b-older,\n",  # older than the target: target row stays
    f"c,{ts(9)},c-new,\n",  # any timestamp beats a NULL one
    "d,,d-null-batch,\n",  # NULL vs NULL: the later load wins
    "e,,e-only-null,\n",  # a key with only NULL timestamps must not vanish
    f"f,{ts(10)},f1,\n",
    "f,,f2,\n",
    f"g,{ts(10)},g-batch,\n",  # equal to target: replaced
    f'i,{ts(8)},same,"{{""n"": 1}}"\n',  # ties broken by the JSON column too
    f'i,{ts(8)},same,"{{""n"": 2}}"\n',
]
EXPECTED = {
    "a": (dt.datetime(2024, 5, 1, 11, tzinfo=UTC), "a2", None),
    "b": (dt.datetime(2024, 5, 1, 12, tzinfo=UTC), "newer-in-target", None),
    "c": (dt.datetime(2024, 5, 1, 9, tzinfo=UTC), "c-new", None),
    "d": (None, "d-null-batch", None),
    "e": (None, "e-only-null", None),
    "f": (dt.datetime(2024, 5, 1, 10, tzinfo=UTC), "f1", None),
    "g": (dt.datetime(2024, 5, 1, 10, tzinfo=UTC), "g-batch", None),
    "h": (dt.datetime(2024, 5, 1, 10, tzinfo=UTC), "untouched", None),
    "i": (dt.datetime(2024, 5, 1, 8, tzinfo=UTC), "same", {"n": 2}),
}


def merged_table(conn: psycopg.Connection, prefix: str, batch_rows: list[str]) -> dict[str, tuple]:
    target, staging = f"{prefix}_wh", f"{prefix}_stg"
    run(
        conn,
        [
            w.create_schema(PG, target),
            w.create_schema(PG, staging),
            *w.create_table(PG, target, EVENTS),
            *w.create_table(PG, staging, EVENTS, primary_key=False),
        ],
    )
    copy_csv(conn, target, "events", EVENTS.column_names, "".join(TARGET_ROWS))
    copy_csv(conn, staging, "events", EVENTS.column_names, "".join(batch_rows))
    plan = w.merge_plan(
        PG, EVENTS, target_schema=target, staging_schema=staging, timestamp_column="ts"
    )
    run(conn, plan)
    rows = conn.execute(
        sql.SQL("SELECT id, ts, payload, doc FROM {} ORDER BY id").format(
            w.qualified_name(PG, target, "events")
        )
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_merge_keeps_latest_row_per_key_and_null_timestamps(conn, prefix):
    assert merged_table(conn, prefix, BATCH_ROWS) == EXPECTED


def test_merge_ties_are_deterministic_whatever_the_arrival_order(conn, prefix):
    assert merged_table(conn, prefix + "r", list(reversed(BATCH_ROWS))) == EXPECTED


def test_merge_into_an_empty_target_from_a_temp_staging_table(conn, prefix):
    target = f"{prefix}_wh"
    run(conn, [w.create_schema(PG, target), *w.create_table(PG, target, EVENTS)])
    with conn.transaction():
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {})").format(
                sql.Identifier("batch"), w.qualified_name(PG, target, "events")
            )
        )
        with conn.cursor() as cur:
            with cur.copy(w.copy_from_stdin(None, "batch", EVENTS.column_names)) as copy:
                copy.write("".join(BATCH_ROWS).encode())
        for statement in w.merge_plan(
            PG,
            EVENTS,
            target_schema=target,
            staging_schema=None,
            staging_table="batch",
            timestamp_column="ts",
        ):
            conn.execute(statement)
    count, keys = conn.execute(
        sql.SQL("SELECT count(*), count(DISTINCT id) FROM {}").format(
            w.qualified_name(PG, target, "events")
        )
    ).fetchone()
    assert count == keys == 8  # a, b, c, d, e, f, g, i: one row per key


def test_concurrent_merges_into_one_table_queue_instead_of_colliding(conn, pg_uri, prefix):
    target = f"{prefix}_wh"
    run(conn, [w.create_schema(PG, target), *w.create_table(PG, target, EVENTS)])
    stagings = []
    for n in range(4):
        staging = f"{prefix}_stg{n}"
        run(
            conn,
            [w.create_schema(PG, staging), *w.create_table(PG, staging, EVENTS, primary_key=False)],
        )
        # every batch holds the same 300 keys, with its own timestamp
        rows = "".join(f"k{i},{ts(n + 1)},batch{n},\n" for i in range(300))
        copy_csv(conn, staging, "events", EVENTS.column_names, rows)
        stagings.append(staging)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stagings))

    def merge(staging: str) -> None:
        try:
            with psycopg.connect(pg_uri, autocommit=True) as mconn:
                plan = w.merge_plan(
                    PG, EVENTS, target_schema=target, staging_schema=staging, timestamp_column="ts"
                )
                barrier.wait()
                run(mconn, plan)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=merge, args=(s,)) for s in stagings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    count, keys, payloads = conn.execute(
        sql.SQL("SELECT count(*), count(DISTINCT id), array_agg(DISTINCT payload) FROM {}").format(
            w.qualified_name(PG, target, "events")
        )
    ).fetchone()
    assert count == keys == 300
    assert payloads == ["batch3"]  # the latest timestamp won, whichever merge ran last


# ----------------------------------------------------------------------------- timeouts


def test_statement_timeout_is_terminal_and_lock_timeout_is_transient(conn, pg_uri, prefix):
    with psycopg.connect(pg_uri, autocommit=True) as other:
        for statement in w.session_timeouts(PG, 200, 100):
            other.execute(statement)
        with pytest.raises(psycopg.errors.QueryCanceled) as stuck:
            other.execute("SELECT pg_sleep(5)")
        assert classify(stuck.value) == "terminal"

        schema = w.new_schema_name(prefix)
        run(conn, [w.create_schema(PG, schema), *w.create_table(PG, schema, EVENTS)])
        with conn.transaction():
            conn.execute(
                sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                    w.qualified_name(PG, schema, "events")
                )
            )
            with pytest.raises(psycopg.errors.LockNotAvailable) as waiting:
                other.execute(w.row_count_query(PG, schema, "events"))
            assert classify(waiting.value) == "transient"


# ----------------------------------------------------------------------------- identifiers

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=20,
).filter(lambda s: len(s.encode()) <= 60)


@given(schema=names, table=names, column=names)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_identifier_round_trips_through_postgres(conn, schema, table, column):
    """Quotes, dots, spaces, unicode, SQL keywords: each name stays one identifier."""
    schema = f"h_{schema}"  # "pg_*" schemas are reserved, "public" must survive the cleanup
    spec = TableSpec(table, (ColumnSpec(column, ColumnKind.TEXT),))
    quoted_schema = sql.Identifier(schema)
    try:
        run(
            conn,
            [
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(quoted_schema),
                w.create_schema(PG, schema),
                *w.create_table(PG, schema, spec),
            ],
        )
        assert copy_csv(conn, schema, spec.name, [column], '"value"\n') == 1
        assert scalar(conn, w.row_count_query(PG, schema, spec.name)) == 1
        found = conn.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        assert found == [(schema, spec.name, column)]
        cur = conn.execute(sql.SQL("SELECT 1 AS {}").format(w.identifier(PG, column)))
        assert cur.description is not None and cur.description[0].name == column
    finally:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(quoted_schema))


def test_centralize_reconciles_segments_staged_with_narrower_data_schemas(conn, prefix):
    """A segment extracted before the data-schema evolved lacks a column and has a narrower
    type: its rows land with NULL and a widened value, not an error or a dropped row."""
    d = PG
    new = TableSpec(
        "t",
        (
            ColumnSpec("pk", ColumnKind.TEXT),
            ColumnSpec("n", ColumnKind.DECIMAL),
            ColumnSpec("extra", ColumnKind.TEXT),
            ColumnSpec("doc", ColumnKind.JSON),
        ),
        ("pk",),
    )
    old = TableSpec(
        "t",
        (
            ColumnSpec("pk", ColumnKind.TEXT),
            ColumnSpec("n", ColumnKind.BIGINT),
            ColumnSpec("doc", ColumnKind.TEXT),
        ),
        ("pk",),
    )
    seg_old, seg_new, target = f"{prefix}_s0", f"{prefix}_s1", f"{prefix}_new"
    statements = [w.create_schema(d, s) for s in (seg_old, seg_new, target)]
    statements += w.create_table(d, seg_old, old) + w.create_table(d, seg_new, new)
    run(conn, statements)
    conn.execute(f"INSERT INTO {seg_old}.t VALUES ('a', 12345678901234, 'plain')")
    conn.execute(f"""INSERT INTO {seg_new}.t VALUES ('b', 1.5, 'x', '{{"k": 1}}')""")
    run(
        conn,
        w.centralize(d, new, [seg_old, seg_new], target, segment_specs={seg_old: old}),
    )
    rows = conn.execute(f"SELECT pk, n::text, extra, doc::text FROM {target}.t ORDER BY pk")
    assert rows.fetchall() == [
        ("a", "12345678901234", None, '"plain"'),
        ("b", "1.5", "x", '{"k": 1}'),
    ]
