"""Scrub rules, name detector, archive listing and coverage (fail closed)."""

from __future__ import annotations

import pytest

from etl_platform.core.scrub import (
    ArchiveError,
    CoverageError,
    DumpTable,
    RuleError,
    detect_pii,
    dump_tables,
    parse_rules,
    plan_scrub,
)
from etl_platform.core.scrub.archive import parse_partition_parents


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        ("email", "email"),
        ("customerEmail", "email"),
        ("e_mail_2", "email"),
        ("mobile_number", "phone"),
        ("phone", "phone"),
        ("full_name", "name"),
        ("name", "name"),
        ("lastName", "name"),
        ("street_address", "address"),
        ("postcode", "address"),
        ("ssn", "ssn"),
        ("date_of_birth", "birth"),
        ("dob", "birth"),
        ("password_hash", "password"),
        ("api_token", "token"),
        ("client_secret", "secret"),
        ("ip", "ip"),
        ("last_login_ip", "ip"),
        ("iban", "iban"),
        ("card_number", "card"),
    ],
)
def test_detector_flags_pii_names(column, kind):
    assert kind in detect_pii(column)


@pytest.mark.parametrize(
    "column", ["id", "amount", "currency", "created_at", "cardinality", "shipping", "kind", "tags"]
)
def test_detector_leaves_plain_names(column):
    assert detect_pii(column) == frozenset()


def test_rules_parse_shorthands_and_options():
    rules = parse_rules(
        {
            "tables": {
                "customers": {
                    "columns": {
                        "id": "keep",
                        "email": {"action": "fake_email", "unique": True},
                        "notes": None,
                        "iban": {"action": "mask", "first": 2, "last": 4},
                        "login": {"action": "keep", "reason": "chosen handle"},
                    }
                },
                "orders": "keep_all",
                "sales.audit": "truncate_table",
            }
        }
    )
    customers = rules.for_table("public.customers")
    assert customers is not None
    assert customers.columns["notes"].action == "null"
    assert customers.columns["email"].unique
    assert rules.for_table("public.orders").keep_all  # type: ignore[union-attr]
    assert rules.for_table("sales.audit").truncate  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"tables": {"c": {"columns": {"email": "keep"}}}}, "c.email: keep on a column"),
        ({"tables": {"c": {"columns": {"x": "shred"}}}}, "c.x: unknown action 'shred'"),
        ({"tables": {"c": {"columns": {"x": {"action": "null", "first": 1}}}}}, "c.x: ['first']"),
        ({"tables": {"c": {"columns": {"x": {"action": "hash", "length": 2}}}}}, "c.x: hash"),
        ({"tables": {"c": {"keep_all": True, "truncate_table": True}}}, "c: keep_all and"),
        ({"tables": {"c": {"colums": {}}}}, "c: unknown settings ['colums']"),
        ({"tabels": {}}, "scrub_rules: unknown settings"),
    ],
)
def test_rules_errors_name_the_column_and_setting(raw, message):
    with pytest.raises(RuleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_rules(raw)


def _table(name, *columns, types=None):
    return DumpTable(f"public.{name}", 1, tuple(columns), types or {})


def test_coverage_names_every_uncovered_column():
    rules = parse_rules({"tables": {"customers": {"columns": {"id": "keep"}}}})
    with pytest.raises(CoverageError) as info:
        plan_scrub(rules, [_table("customers", "id", "email"), _table("orders", "id")])
    assert info.value.problems == ["customers.email: no rule", "orders.id: no rule"]


def test_coverage_keep_all_with_flagged_column_needs_a_reason():
    rules = parse_rules({"tables": {"t": "keep_all"}})
    with pytest.raises(CoverageError, match="t.email: kept by keep_all"):
        plan_scrub(rules, [_table("t", "id", "email")])
    ok = parse_rules({"tables": {"t": {"keep_all": True, "reason": "synthetic test data"}}})
    assert plan_scrub(ok, [_table("t", "id", "email")]).tables[0].copies_unchanged


def test_plan_reports_actions_and_unused_rules():
    rules = parse_rules(
        {
            "tables": {
                "c": {"columns": {"id": "keep", "email": "fake_email", "gone": "null"}},
                "old": "keep_all",
                "log": "truncate_table",
            }
        }
    )
    plan = plan_scrub(rules, [_table("c", "id", "email"), _table("log", "a", "b")])
    assert plan.columns_per_action() == {"fake_email": 1, "keep": 1, "truncate_table": 2}
    assert sorted(plan.unused_rules) == ["c.gone", "old"]
    assert plan.tables[0].scrubbed_columns == ["email"]


LISTING = """;
; Archive created at 2026-11-30 23:51:32 UTC
;
215; 1259 16384 TABLE public t postgres
2539; 0 16384 TABLE DATA public t postgres
2540; 0 16390 TABLE DATA sales Odd Name postgres
2541; 0 0 SEQUENCE SET public t_id_seq postgres
2395; 2606 16390 CONSTRAINT public t t_pkey postgres
"""
DATA_SCRIPT = '''--
-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.t (id, e, "Mixed ""Q""") FROM stdin;
\\.


COPY sales."Odd Name" (id) FROM stdin;
\\.
'''
SCHEMA_SCRIPT = '''CREATE TABLE public.t (
    id integer NOT NULL,
    e text,
    "Mixed ""Q""" character varying(20) DEFAULT 'x'::character varying
);
'''


def test_archive_pairs_data_entries_with_copy_columns():
    tables = dump_tables(LISTING, DATA_SCRIPT, SCHEMA_SCRIPT)
    assert [(t.qualified, t.data_file, t.columns) for t in tables] == [
        ("public.t", "2539.dat.gz", ("id", "e", 'Mixed "Q"')),
        ("sales.Odd Name", "2540.dat.gz", ("id",)),
    ]
    assert tables[0].types["id"] == "integer"
    assert tables[0].is_text("e") and tables[0].is_text('Mixed "Q"')
    assert not tables[0].is_text("id")


@pytest.mark.parametrize(
    ("kind", "scanned"),
    [
        ("text", True),
        ("public.email_address", True),  # a domain
        ("mood", True),  # an enum
        ("integer[]", True),
        ("tsvector", True),
        ("jsonb", True),
        ("bigint", False),
        ("numeric(12,2)", False),
        ("timestamp with time zone", False),
        ("uuid", False),
        ("inet", False),
        ("boolean", False),
    ],
)
def test_residual_scan_reads_every_type_that_can_spell_a_value(kind, scanned):
    assert DumpTable("public.t", 1, ("c",), {"c": kind}).is_text("c") is scanned


def test_archive_refuses_large_objects_and_mismatches():
    with pytest.raises(ArchiveError, match="large objects"):
        dump_tables(LISTING + "3000; 0 0 BLOBS - BLOBS \n", DATA_SCRIPT)
    with pytest.raises(ArchiveError, match="2 TABLE DATA entries but 1 COPY"):
        dump_tables(LISTING, DATA_SCRIPT.split("COPY sales")[0])


PARTITIONS_SCRIPT = """CREATE TABLE sales."Events" (
    id bigint,
    email text,
    at date
)
PARTITION BY RANGE (at);

ALTER TABLE ONLY sales."Events" ATTACH PARTITION public.loose FOR VALUES FROM ('2030') TO ('2031');
ALTER TABLE ONLY sales."Events" ATTACH PARTITION sales.events_2024 FOR VALUES FROM (1) TO (2);
ALTER TABLE ONLY sales.events_2024 ATTACH PARTITION sales.events_2024_a FOR VALUES IN ('1', '2');
ALTER TABLE ONLY sales."Events" ATTACH PARTITION sales.events_other DEFAULT;
"""


def test_archive_knows_which_partitioned_tables_a_partition_belongs_to():
    parents = parse_partition_parents(PARTITIONS_SCRIPT)
    assert parents == {
        "public.loose": "sales.Events",
        "sales.events_2024": "sales.Events",
        "sales.events_2024_a": "sales.events_2024",
        "sales.events_other": "sales.Events",
    }
    listing = "2561; 0 16761 TABLE DATA sales events_2024_a postgres\n"
    data = "COPY sales.events_2024_a (id, email, at) FROM stdin;\n\\.\n"
    (table,) = dump_tables(listing, data, PARTITIONS_SCRIPT)
    assert table.partition_of == ("sales.events_2024", "sales.Events")


def _partition(name, *parents, columns=("id", "email", "at")):
    return DumpTable(name, 1, tuple(columns), {}, tuple(parents))


def test_a_partition_takes_its_partitioned_tables_rules_unless_it_has_its_own():
    rules = parse_rules(
        {
            "tables": {
                "sales.Events": {"columns": {"id": "keep", "email": "fake_email", "at": "keep"}},
                "sales.events_2024_b": {"columns": {"id": "keep", "email": "null", "at": "keep"}},
            }
        }
    )
    nested = _partition("sales.events_2024_a", "sales.events_2024", "sales.Events")
    own = _partition("sales.events_2024_b", "sales.events_2024", "sales.Events")
    moved = _partition("public.loose", "sales.Events", columns=("email", "id", "at"))
    plan = plan_scrub(rules, [nested, own, moved])
    assert [p.rules_of for p in plan.tables] == [
        "sales.Events",
        "sales.events_2024_b",
        "sales.Events",
    ]
    assert plan.tables[0].rules["email"].action == "fake_email"
    assert plan.tables[1].rules["email"].action == "null"
    assert list(plan.tables[2].rules) == ["email", "id", "at"]  # the partition's COPY order
    assert plan.unused_rules == []


def test_a_partition_without_rules_fails_closed_with_a_hint():
    rules = parse_rules({"tables": {"other": "keep_all"}})
    with pytest.raises(CoverageError) as info:
        plan_scrub(rules, [_partition("sales.events_2024_a", "sales.events_2024", "sales.Events")])
    assert info.value.problems[0] == (
        "sales.events_2024_a.id: no rule (a partition of sales.Events: a rule there covers it)"
    )
    child = DumpTable("public.child", 1, ("id", "email", "extra"))  # INHERITS: not a partition
    with pytest.raises(CoverageError, match="child.id: no rule$|child.id: no rule;"):
        plan_scrub(parse_rules({"tables": {"base": "keep_all"}}), [child])


def test_null_on_a_not_null_column_fails_before_anything_is_written():
    listing = "2539; 0 16384 TABLE DATA public t postgres\n"
    data = "COPY public.t (id, email, note) FROM stdin;\n\\.\n"
    schema = (
        "CREATE TABLE public.t (\n    id integer NOT NULL,\n"
        "    email text DEFAULT 'x'::text NOT NULL,\n    note text\n);\n"
    )
    (table,) = dump_tables(listing, data, schema)
    assert table.not_null == {"id", "email"}
    rules = parse_rules(
        {"tables": {"t": {"columns": {"id": "keep", "email": "null", "note": "null"}}}}
    )
    with pytest.raises(CoverageError) as info:
        plan_scrub(rules, [table])
    assert info.value.problems == [
        "t.email: null on a NOT NULL column (the restore would fail): use constant, hash or a "
        "fake_* action"
    ]
