"""The demo dump instance's rules cover the demo world's source database (PII across tables
linked by foreign keys) and scrub it clean, with joins on pseudonymized emails intact."""

from __future__ import annotations

import gzip
from pathlib import Path

import yaml

from etl_platform.components.postgres_dump.dump import DumpSettings, take_dump
from etl_platform.components.postgres_dump.dump_objects import DumpLocation
from etl_platform.components.postgres_dump.scrub import ScrubSettings, scrub_dump
from etl_platform.core.scrub import parse_rules
from etl_platform.local import demo
from etl_platform.resources import ObjectStoreResource, PgToolsResource

from .dump_world import HMAC_ENV, HMAC_VALUE, make_buckets

DEFS = Path(demo.__file__).parents[1] / "defs" / "dump_demo" / "defs.yaml"


def test_demo_rules_cover_the_demo_source_and_leave_no_pii(
    local_stack, fresh_database, unique_name, monkeypatch
):
    monkeypatch.setenv(HMAC_ENV, HMAC_VALUE)
    monkeypatch.setenv("ETL_TEST_SOURCE_DSN", fresh_database)
    assert demo.seed_source_postgres(fresh_database) > 0
    rules = parse_rules(yaml.safe_load(DEFS.read_text())["attributes"]["scrub_rules"])
    extract, load = f"{unique_name}-x", f"{unique_name}-l"
    make_buckets(extract, load)
    store, pg_tools = ObjectStoreResource(), PgToolsResource()
    take_dump(DumpSettings("ETL_TEST_SOURCE_DSN", extract, "dumps"), store, pg_tools, "demo1")
    settings = ScrubSettings(extract, "dumps", load, "clean", HMAC_ENV)

    report = scrub_dump(settings, rules, store, pg_tools, "demo1")

    assert report["verified"] and report["unused_rules"] == []
    assert set(report["tables"]) == {f"public.{t}" for t in demo.SOURCE_TABLES}
    clean = DumpLocation(load, "clean", "demo1")
    data = {
        table: gzip.decompress(store.get_bytes(load, clean.key(info["file"])) or b"")
        for table, info in report["tables"].items()
    }
    everything = b"".join(data.values())
    for i in range(demo.CUSTOMERS):
        assert demo.customer_email(i).encode() not in everything
        assert demo.customer_phone(i).encode() not in everything
    assert b"Real Street" not in everything
    # tickets still join customers on the pseudonymized email
    emails = {line.split(b"\t")[2] for line in data["public.customers"].splitlines()[:-3]}
    contacts = {line.split(b"\t")[4] for line in data["public.support_tickets"].splitlines()[:-3]}
    assert contacts and contacts <= emails
