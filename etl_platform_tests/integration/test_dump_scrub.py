"""The streaming scrub of a real pg_dump directory archive (real pg_dump/pg_restore, moto S3)."""

from __future__ import annotations

import gzip
import tempfile
import uuid
from pathlib import Path

import boto3
import psycopg
import pytest
from psycopg import sql

from etl_platform.components.postgres_dump.dump import DumpSettings, take_dump
from etl_platform.components.postgres_dump.dump_objects import DumpLocation, download_files
from etl_platform.components.postgres_dump.scrub import ScrubError, ScrubSettings, scrub_dump
from etl_platform.core.scrub import CoverageError, parse_rules
from etl_platform.resources import ObjectStoreResource, PgToolsResource

from .dump_world import (
    HMAC_ENV,
    HMAC_VALUE,
    RULES,
    make_buckets,
    pii_values,
    seed_source,
    table_rows,
)


@pytest.fixture
def world(local_stack, fresh_database, unique_name, monkeypatch):
    monkeypatch.setenv(HMAC_ENV, HMAC_VALUE)
    monkeypatch.setenv("ETL_TEST_SOURCE_DSN", fresh_database)
    seed_source(fresh_database)
    make_buckets(f"{unique_name}-x", f"{unique_name}-l")
    return {
        "source": fresh_database,
        "dump": DumpSettings("ETL_TEST_SOURCE_DSN", f"{unique_name}-x", "dumps"),
        "scrub": ScrubSettings(
            f"{unique_name}-x",
            "dumps",
            f"{unique_name}-l",
            "clean",
            HMAC_ENV,
            keep_raw_dumps_days=1,
        ),
        "store": ObjectStoreResource(),
        "pg_tools": PgToolsResource(),
    }


def _restore(world, dump_key: str, stack_state) -> tuple[str, str]:
    """Download the clean archive and restore it with plain pg_restore into a new database."""
    clean = DumpLocation(world["scrub"].load_bucket, "clean", dump_key)
    names = [
        o["Key"].rsplit("/", 1)[1] for o in world["store"].list_objects(clean.bucket, clean.root)
    ]
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(stack_state.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with tempfile.TemporaryDirectory() as tmp:
        download_files(world["store"], clean, [n for n in names if n != "manifest.json"], Path(tmp))
        world["pg_tools"].restore_directory(stack_state.dsn(name), Path(tmp), setting="test")
    return name, stack_state.dsn(name)


def test_scrubbed_archive_restores_clean_with_plain_pg_restore(world, stack_state):
    take_dump(world["dump"], world["store"], world["pg_tools"], "d1")
    report = scrub_dump(world["scrub"], parse_rules(RULES), world["store"], world["pg_tools"], "d1")
    assert report["verified"] and report["residual"]["hits"] == 0
    assert report["tables"]["public.audit_log"] == {
        "file": report["tables"]["public.audit_log"]["file"],
        "rows_before": 50,
        "rows": 0,
    }
    name, target = _restore(world, "d1", stack_state)
    try:
        # the clean bytes hold no original value
        clean = DumpLocation(world["scrub"].load_bucket, "clean", "d1")
        s3 = boto3.client("s3")
        text = b""
        for obj in world["store"].list_objects(clean.bucket, clean.root):
            body = s3.get_object(Bucket=clean.bucket, Key=obj["Key"])["Body"].read()
            text += gzip.decompress(body) if obj["Key"].endswith(".gz") else body
        leaked = [v for v in pii_values() if v in text]
        assert leaked == []
        # non-PII data identical, foreign keys and CHECK constraints hold (restore validated)
        for query in (
            "SELECT id, customer_id, amount, note FROM orders ORDER BY id",
            "SELECT * FROM products ORDER BY id",
            "SELECT id, tier, created_at FROM customers ORDER BY id",
            "SELECT id, customer_id, country FROM addresses ORDER BY id",
        ):
            assert table_rows(target, query) == table_rows(world["source"], query)
        assert table_rows(target, "SELECT count(*) FROM audit_log") == [(0,)]
        joined = table_rows(
            target,
            "SELECT count(*) FROM orders o JOIN customers c ON c.email = o.contact_email "
            "WHERE c.id = o.customer_id",
        )
        assert joined == table_rows(
            world["source"], "SELECT count(*) FROM orders WHERE contact_email IS NOT NULL"
        )
        assert table_rows(target, "SELECT DISTINCT city FROM addresses") == [("Springfield",)]
    finally:
        with psycopg.connect(stack_state.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_new_column_fails_the_scrub_naming_it_and_nothing_is_uploaded(world):
    with psycopg.connect(world["source"]) as conn:
        conn.execute("ALTER TABLE orders ADD COLUMN shipping_contact text")
    take_dump(world["dump"], world["store"], world["pg_tools"], "d2")
    with pytest.raises(CoverageError, match=r"orders\.shipping_contact: no rule"):
        scrub_dump(world["scrub"], parse_rules(RULES), world["store"], world["pg_tools"], "d2")
    assert list(world["store"].list_objects(world["scrub"].load_bucket, "")) == []


def test_rules_that_would_break_a_foreign_key_fail_before_anything_is_uploaded(world):
    """orders.contact_email references customers.email: a fake_email without unique there
    maps values to other pseudonyms than customers' unique ones, which the restore rejects."""
    orders = {**RULES["tables"]["orders"]["columns"], "contact_email": "fake_email"}
    rules = {**RULES, "tables": {**RULES["tables"], "orders": {"columns": orders}}}
    take_dump(world["dump"], world["store"], world["pg_tools"], "d6")
    with pytest.raises(CoverageError, match=r"orders\.contact_email → customers\.email: rules"):
        scrub_dump(world["scrub"], parse_rules(rules), world["store"], world["pg_tools"], "d6")
    assert list(world["store"].list_objects(world["scrub"].load_bucket, "")) == []


def test_residual_scan_fails_on_pii_in_a_kept_column(world):
    with psycopg.connect(world["source"]) as conn:
        conn.execute("UPDATE orders SET note = 'ping ' || contact_email WHERE id = 1")
    take_dump(world["dump"], world["store"], world["pg_tools"], "d3")
    with pytest.raises(ScrubError, match=r"orders\.note \(email_pattern\): 1"):
        scrub_dump(world["scrub"], parse_rules(RULES), world["store"], world["pg_tools"], "d3")
    assert list(world["store"].list_objects(world["scrub"].load_bucket, "")) == []


def test_residual_scan_reads_kept_columns_of_domain_and_enum_types(world):
    """A kept column typed by a domain over text is scanned like text: a name copied into it
    from a scrubbed column is found by its original value, not only by pattern."""
    with psycopg.connect(world["source"]) as conn:
        conn.execute("CREATE DOMAIN label AS text")
        conn.execute("CREATE TYPE tier_kind AS ENUM ('gold', 'silver')")
        conn.execute("CREATE TABLE tags (id int, label label, kind tier_kind)")
        conn.execute(
            "INSERT INTO tags SELECT id, full_name, 'gold' FROM customers ORDER BY id LIMIT 3"
        )
    rules = {**RULES, "tables": {**RULES["tables"], "tags": "keep_all"}}
    take_dump(world["dump"], world["store"], world["pg_tools"], "d5")
    with pytest.raises(ScrubError, match=r"tags\.label \(original_value\): 3"):
        scrub_dump(world["scrub"], parse_rules(rules), world["store"], world["pg_tools"], "d5")
    assert list(world["store"].list_objects(world["scrub"].load_bucket, "")) == []


# HMAC-SHA256 from PostgreSQL's built-in sha256(): pgserver ships no pgcrypto, so this stands in
# for ``hmac(value, key, 'sha256')`` (the key is zero-padded to the 64-byte block).
HMAC_SQL = """
CREATE FUNCTION test_hmac_sha256(msg bytea, key bytea) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE
    k bytea := key || decode(repeat('00', 64 - length(key)), 'hex');
    inner_pad bytea := k;
    outer_pad bytea := k;
BEGIN
    FOR n IN 0..63 LOOP
        inner_pad := set_byte(inner_pad, n, get_byte(k, n) # 54);
        outer_pad := set_byte(outer_pad, n, get_byte(k, n) # 92);
    END LOOP;
    RETURN sha256(outer_pad || sha256(inner_pad || msg));
END $$
"""


def test_hashed_columns_equal_sql_hmac_of_the_source(world, stack_state):
    """A data engineer holding the key can recompute ``hash`` in SQL: the target's hashed
    columns equal HMAC-SHA256 of the source values (tier holds a tab, a backslash, newlines)."""
    rules = {"tables": {**RULES["tables"]}}
    columns = {**RULES["tables"]["customers"]["columns"]}
    columns.update(full_name="hash", tier={"action": "hash", "length": 8})
    rules["tables"]["customers"] = {"columns": columns}
    take_dump(world["dump"], world["store"], world["pg_tools"], "d4")
    scrub_dump(world["scrub"], parse_rules(rules), world["store"], world["pg_tools"], "d4")
    name, target = _restore(world, "d4", stack_state)
    try:
        with psycopg.connect(world["source"]) as conn:
            conn.execute(HMAC_SQL)
            expected = conn.execute(
                "SELECT id, encode(test_hmac_sha256(convert_to(full_name, 'UTF8'), %(k)s), 'hex'),"
                " left(encode(test_hmac_sha256(convert_to(tier, 'UTF8'), %(k)s), 'hex'), 16)"
                " FROM customers ORDER BY id",
                {"k": HMAC_VALUE.encode()},
            ).fetchall()
        hashed = table_rows(target, "SELECT id, full_name, tier FROM customers ORDER BY id")
        assert [(i, n[:32], t) for i, n, t in expected] == hashed
        assert any("\t" in t for (t,) in table_rows(world["source"], "SELECT tier FROM customers"))
    finally:
        with psycopg.connect(stack_state.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_partitions_are_scrubbed_by_their_partitioned_tables_rule(world, stack_state):
    """One rule on the partitioned table covers every partition (pg_dump stores each
    partition's rows as a table of its own), nested and attached ones included."""
    with psycopg.connect(world["source"]) as conn:
        conn.execute(
            'CREATE TABLE "Visits" (id bigint, visitor_email text, at date) PARTITION BY RANGE (at)'
        )
        conn.execute(
            "CREATE TABLE visits_2025 PARTITION OF \"Visits\" FOR VALUES FROM ('2025-01-01') "
            "TO ('2026-01-01') PARTITION BY LIST (id)"
        )
        conn.execute("CREATE TABLE visits_2025_odd PARTITION OF visits_2025 FOR VALUES IN (1, 3)")
        conn.execute("CREATE TABLE visits_rest PARTITION OF visits_2025 DEFAULT")
        conn.execute("CREATE TABLE visits_2026 (at date, visitor_email text, id bigint)")
        conn.execute(
            'ALTER TABLE "Visits" ATTACH PARTITION visits_2026 '
            "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"
        )
        conn.execute(
            "INSERT INTO \"Visits\" SELECT g, 'visitor' || g || '@mail.example.org', "
            "DATE '2025-06-01' + g * 100 FROM generate_series(1, 5) g"
        )
    rules = {**RULES, "tables": {**RULES["tables"]}}
    rules["tables"]["Visits"] = {
        "columns": {"id": "keep", "visitor_email": "fake_email", "at": "keep"}
    }
    take_dump(world["dump"], world["store"], world["pg_tools"], "p1")
    report = scrub_dump(world["scrub"], parse_rules(rules), world["store"], world["pg_tools"], "p1")
    partitions = {"public.visits_2025_odd", "public.visits_rest", "public.visits_2026"}
    assert partitions <= set(report["tables"]) and report["unused_rules"] == []
    name, target = _restore(world, "p1", stack_state)
    try:
        restored = table_rows(target, 'SELECT id, visitor_email, at FROM "Visits" ORDER BY id')
        source = table_rows(
            world["source"], 'SELECT id, visitor_email, at FROM "Visits" ORDER BY id'
        )
        assert [(r[0], r[2]) for r in restored] == [(r[0], r[2]) for r in source]
        assert not {r[1] for r in restored} & {r[1] for r in source}
        assert all(r[1].endswith("@example.invalid") for r in restored)
        placed = table_rows(target, 'SELECT tableoid::regclass::text, id FROM "Visits" ORDER BY id')
        assert placed == table_rows(
            world["source"], 'SELECT tableoid::regclass::text, id FROM "Visits" ORDER BY id'
        )
    finally:
        with psycopg.connect(stack_state.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
