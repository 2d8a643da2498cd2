"""Issue 9 acceptance: the target is never seen half-restored. A reader loop during a swap
restore sees the old data or the new, never an empty or partial table; a SIGKILLed restore
(swap or single_transaction) leaves the target as it was; the previous version rolls back."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from etl_platform.components.postgres_dump.dump import DumpSettings, take_dump
from etl_platform.components.postgres_dump.restore import (
    RestoreSettings,
    restore_dump,
    rollback_restore,
)
from etl_platform.components.postgres_dump.scrub import ScrubSettings, scrub_dump
from etl_platform.core.scrub import parse_rules
from etl_platform.resources import ObjectStoreResource, PgToolsResource

from .dump_world import (
    CUSTOMERS,
    HMAC_ENV,
    HMAC_VALUE,
    RULES,
    email,
    make_buckets,
    phone,
    seed_source,
)

PAGE_VIEWS = 300_000
WORKTREE = Path(__file__).resolve().parents[2]


def _counts(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM page_views)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.fixture
def restored(local_stack, fresh_database, stack_state, unique_name, monkeypatch):
    """Target restored (swap) from dump d1; a bigger dump d2 scrubbed and ready."""
    monkeypatch.setenv(HMAC_ENV, HMAC_VALUE)
    monkeypatch.setenv("ETL_TEST_SOURCE_DSN", fresh_database)
    target = f"{unique_name}_target"
    monkeypatch.setenv("ETL_TEST_TARGET_DSN", stack_state.dsn(target))
    seed_source(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        conn.execute(
            "CREATE TABLE page_views (id bigint PRIMARY KEY, path text, seen_at timestamptz)"
        )
        conn.execute(
            "INSERT INTO page_views SELECT g, '/page/' || g, now() FROM generate_series(1, %s) g",
            (PAGE_VIEWS,),
        )
    rules = copy.deepcopy(RULES)
    rules["tables"]["page_views"] = "keep_all"
    make_buckets(f"{unique_name}-x", f"{unique_name}-l")
    store, pg_tools = ObjectStoreResource(), PgToolsResource()
    dump = DumpSettings("ETL_TEST_SOURCE_DSN", f"{unique_name}-x", "dumps")
    scrub = ScrubSettings(f"{unique_name}-x", "dumps", f"{unique_name}-l", "clean", HMAC_ENV)
    swap = RestoreSettings(f"{unique_name}-l", "clean", "ETL_TEST_TARGET_DSN", "swap")
    for key in ("d1", "d2"):
        take_dump(dump, store, pg_tools, key)
        scrub_dump(scrub, parse_rules(rules), store, pg_tools, key)
        if key == "d1":
            restore_dump(swap, store, pg_tools, "d1")
            with psycopg.connect(fresh_database) as conn:  # the next dump has more rows
                for i in range(CUSTOMERS, CUSTOMERS + 40):
                    conn.execute(
                        "INSERT INTO customers VALUES (%s, 'N', %s, %s, 'basic', now())",
                        (i, email(i), phone(i)),
                    )
                conn.execute("INSERT INTO page_views VALUES (0, '/zero', now())")
    yield {
        "target": stack_state.dsn(target),
        "swap": swap,
        "store": store,
        "pg_tools": pg_tools,
        "old": (CUSTOMERS, PAGE_VIEWS),
        "new": (CUSTOMERS + 40, PAGE_VIEWS + 1),
    }
    with psycopg.connect(stack_state.dsn("postgres"), autocommit=True) as conn:
        for suffix in ("", "__next", "__previous"):
            conn.execute(f'DROP DATABASE IF EXISTS "{target}{suffix}" WITH (FORCE)')


def test_reader_loop_sees_old_or_new_never_partial_and_rollback(restored):
    seen: list[tuple[int, int]] = []
    errors = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal errors
        while not stop.is_set():
            try:
                seen.append(_counts(restored["target"]))
            except psycopg.OperationalError:
                errors += 1  # the bounded disconnect of the swap
                time.sleep(0.01)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        time.sleep(0.3)
        report = restore_dump(restored["swap"], restored["store"], restored["pg_tools"], "d2")
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
    assert set(seen) <= {restored["old"], restored["new"]}, set(seen)
    assert seen[0] == restored["old"] and seen[-1] == restored["new"]
    first_new = seen.index(restored["new"])
    assert restored["old"] not in seen[first_new:]  # never back to the old version
    assert report["swap_seconds"] < 10
    rollback_restore(restored["swap"])
    assert _counts(restored["target"]) == restored["old"]


def _kill_midway(restored, mode: str) -> None:
    """Start the restore in a child process, SIGKILL it while pg_restore is copying."""
    target_name = conninfo_to_dict(restored["target"])["dbname"]
    copying_in = target_name if mode == "single_transaction" else f"{target_name}__next"
    script = (
        "from etl_platform.components.postgres_dump.restore import RestoreSettings, restore_dump\n"
        "from etl_platform.resources import ObjectStoreResource, PgToolsResource\n"
        f"s = RestoreSettings({restored['swap'].load_bucket!r}, 'clean', 'ETL_TEST_TARGET_DSN',"
        f" {mode!r})\n"
        "restore_dump(s, ObjectStoreResource(), PgToolsResource(), 'd2')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(WORKTREE)}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    admin = make_conninfo(restored["target"], dbname="postgres")
    deadline = time.monotonic() + 60
    with psycopg.connect(admin, autocommit=True) as conn:
        while time.monotonic() < deadline:
            copying = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'COPY%%'",
                (copying_in,),
            ).fetchone()
            if copying and copying[0]:
                break
            assert child.poll() is None, "the restore ended before it was killed"
            time.sleep(0.01)
        else:
            pytest.fail("pg_restore never started copying")
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        # pg_restore dies with its parent (PR_SET_PDEATHSIG); its sessions go away
        while time.monotonic() < deadline:
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_restore' "
                "AND datname LIKE %s",
                (f"{target_name}%",),
            ).fetchone()
            if left == (0,):
                break
            time.sleep(0.05)
        else:
            pytest.fail("pg_restore kept running after its parent was killed")


@pytest.mark.parametrize("mode", ["swap", "single_transaction"])
def test_sigkilled_restore_leaves_the_target_as_it_was(restored, mode):
    _kill_midway(restored, mode)
    assert _counts(restored["target"]) == restored["old"]
    # the next restore runs over whatever the killed one left behind
    settings = RestoreSettings(restored["swap"].load_bucket, "clean", "ETL_TEST_TARGET_DSN", mode)
    restore_dump(settings, restored["store"], restored["pg_tools"], "d2")
    assert _counts(restored["target"]) == restored["new"]


def test_a_restore_that_fails_verification_is_never_swapped_in(restored):
    """The clean manifest says one row more than the archive holds (a truncated or tampered
    dump): the restore fails naming the table and both counts, and readers keep the old data."""
    from etl_platform.components.postgres_dump.restore import RestoreError
    from etl_platform.core.scrub.layout import MANIFEST

    store, swap = restored["store"], restored["swap"]
    key = next(
        o["Key"]
        for o in store.list_objects(swap.load_bucket, "clean")
        if o["Key"].endswith(MANIFEST) and "d2" in o["Key"]
    )
    manifest = json.loads(store.get_bytes(swap.load_bucket, key))
    manifest["tables"]["public.customers"]["rows"] += 1
    store.put_bytes(json.dumps(manifest).encode(), swap.load_bucket, key)
    rows = restored["new"][0]
    with pytest.raises(RestoreError, match=rf"public\.customers has {rows} rows.* {rows + 1}"):
        restore_dump(swap, store, restored["pg_tools"], "d2")
    assert _counts(restored["target"]) == restored["old"]
