"""Custom SQL steps of the scrub rules: they run in a scratch database on already-scrubbed data,
the new archive is checked again (coverage, residual scan), and the scratch database is gone."""

from __future__ import annotations

import copy
import gzip

import psycopg
import pytest

from etl_platform.components.postgres_dump.custom_sql import CustomSqlError
from etl_platform.components.postgres_dump.dump import DumpSettings, take_dump
from etl_platform.components.postgres_dump.dump_objects import DumpLocation, read_manifest
from etl_platform.components.postgres_dump.scrub import ScrubError, ScrubSettings, scrub_dump
from etl_platform.core.scrub import CoverageError, parse_rules
from etl_platform.resources import ObjectStoreResource, PgToolsResource

from .dump_world import HMAC_ENV, HMAC_VALUE, RULES, make_buckets, seed_source


@pytest.fixture
def world(local_stack, stack_state, fresh_database, unique_name, monkeypatch):
    monkeypatch.setenv(HMAC_ENV, HMAC_VALUE)
    monkeypatch.setenv("ETL_TEST_SOURCE_DSN", fresh_database)
    monkeypatch.setenv("ETL_TEST_SCRATCH_DSN", stack_state.dsn("postgres"))
    seed_source(fresh_database)
    make_buckets(f"{unique_name}-x", f"{unique_name}-l")
    dump = DumpSettings("ETL_TEST_SOURCE_DSN", f"{unique_name}-x", "dumps")
    take_dump(dump, ObjectStoreResource(), PgToolsResource(), "d1")
    return {
        "admin": stack_state.dsn("postgres"),
        "scrub": ScrubSettings(
            f"{unique_name}-x",
            "dumps",
            f"{unique_name}-l",
            "clean",
            HMAC_ENV,
            keep_raw_dumps_days=1,
            scratch_dsn_env="ETL_TEST_SCRATCH_DSN",
        ),
        "store": ObjectStoreResource(),
        "pg_tools": PgToolsResource(),
    }


def _rules(*statements: str):
    raw = copy.deepcopy(RULES)
    raw["custom_sql"] = list(statements)
    return parse_rules(raw)


def _scratch_databases(admin: str) -> list[str]:
    with psycopg.connect(admin) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'scrub_scratch_%'")
        return [r[0] for r in rows]


def _scrub(world, rules):
    return scrub_dump(world["scrub"], rules, world["store"], world["pg_tools"], "d1")


def test_custom_sql_runs_on_the_scrubbed_data_and_the_result_is_verified(world):
    rules = _rules(
        "DELETE FROM orders WHERE id >= 600",
        "UPDATE orders SET note = upper(note)",
    )
    report = _scrub(world, rules)
    assert report["verified"] and report["residual"]["hits"] == 0
    assert report["tables"]["public.orders"] == {
        "file": report["tables"]["public.orders"]["file"],
        "rows_before": 900,
        "rows": 600,
    }
    clean = DumpLocation(world["scrub"].load_bucket, "clean", "d1")
    manifest = read_manifest(world["store"], clean)
    assert manifest is not None and manifest["verified"]
    orders = gzip.decompress(
        world["store"].get_bytes(clean.bucket, clean.key(report["tables"]["public.orders"]["file"]))
    )
    assert b"\tORDER 5\n" in orders and b"order 5" not in orders and b"ORDER 700" not in orders
    assert b"person." not in orders  # contact emails were faked before the SQL ran
    assert _scratch_databases(world["admin"]) == []


def test_custom_sql_adding_a_column_fails_coverage_and_leaves_nothing(world):
    rules = _rules("ALTER TABLE orders ADD COLUMN shipping_contact text")
    with pytest.raises(CoverageError, match=r"orders\.shipping_contact: no rule"):
        _scrub(world, rules)
    assert list(world["store"].list_objects(world["scrub"].load_bucket, "")) == []
    assert _scratch_databases(world["admin"]) == []


def test_custom_sql_writing_pii_into_a_kept_column_fails_the_residual_scan(world):
    rules = _rules("UPDATE orders SET note = 'mail me at jo@example.org' WHERE id = 3")
    with pytest.raises(ScrubError, match=r"orders\.note \(email_pattern\): 1"):
        _scrub(world, rules)
    assert list(world["store"].list_objects(world["scrub"].load_bucket, "")) == []


def test_a_failing_custom_sql_step_is_named_and_no_secret_is_shown(world):
    rules = _rules("UPDATE orders SET note = note", "UPDATE no_such_table SET x = 1")
    with pytest.raises(CustomSqlError, match=r"custom_sql\[1\] failed") as failure:
        _scrub(world, rules)
    assert HMAC_VALUE not in str(failure.value) and "password" not in str(failure.value)
    assert list(world["store"].list_objects(world["scrub"].load_bucket, "")) == []
    assert _scratch_databases(world["admin"]) == []
