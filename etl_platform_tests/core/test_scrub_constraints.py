"""Rules the restore would reject, found from the archive's keys before anything is written."""

from __future__ import annotations

import pytest

from etl_platform.core.scrub import CoverageError, DumpTable, parse_rules, plan_scrub
from etl_platform.core.scrub.constraints import ForeignKey, parse_constraints

POST_DATA = """ALTER TABLE ONLY public.pt
    ADD CONSTRAINT pt_pkey PRIMARY KEY (id);
ALTER TABLE ONLY s."Cust"
    ADD CONSTRAINT "Cust_a_b_key" UNIQUE (a, b);
ALTER TABLE ONLY s."Cust"
    ADD CONSTRAINT "Cust_email_key" UNIQUE NULLS NOT DISTINCT (email);
ALTER TABLE ONLY s."Cust"
    ADD CONSTRAINT "Cust_pkey" PRIMARY KEY (id);
CREATE UNIQUE INDEX cust_b ON s."Cust" USING btree (b) WHERE (b > 0);
CREATE UNIQUE INDEX cust_lower ON s."Cust" USING btree (lower(email));
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_a_b_fkey FOREIGN KEY (a, b) REFERENCES s."Cust"(a, b) ON DELETE CASCADE;
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_cust_email_fkey FOREIGN KEY (cust_email) REFERENCES s."Cust"(email);
"""


def test_keys_are_read_from_the_post_data_script():
    keys = parse_constraints(POST_DATA)
    assert keys.unique == {
        ("public.pt", "id"): "PRIMARY KEY",
        ("s.Cust", "email"): "UNIQUE",
        ("s.Cust", "id"): "PRIMARY KEY",
        ("s.Cust", "b"): "UNIQUE",
    }
    assert keys.foreign_keys == [
        ForeignKey("orders_a_b_fkey", "public.orders", ("a", "b"), "s.Cust", ("a", "b")),
        ForeignKey(
            "orders_cust_email_fkey", "public.orders", ("cust_email",), "s.Cust", ("email",)
        ),
    ]


CUST = DumpTable("s.Cust", 1, ("id", "email", "a", "b"))
ORDERS = DumpTable("public.orders", 2, ("id", "cust_email", "a", "b"))


def _rules(cust: object, orders: object) -> object:
    return parse_rules({"tables": {"s.Cust": cust, "orders": orders}})


def _problems(rules) -> list[str]:
    with pytest.raises(CoverageError) as info:
        plan_scrub(rules, [CUST, ORDERS], parse_constraints(POST_DATA))
    return info.value.problems


def test_a_foreign_key_needs_the_same_rule_at_both_ends():
    cust = {"columns": {"id": "keep", "email": {"action": "fake_email", "unique": True},
                        "a": "keep", "b": "keep"}}  # fmt: skip
    orders = {"columns": {"id": "keep", "cust_email": "fake_email", "a": "keep", "b": "keep"}}
    assert _problems(_rules(cust, orders)) == [
        "orders.cust_email → s.Cust.email: rules differ (fake_email vs fake_email unique), so "
        "foreign key orders_cust_email_fkey would break in the target: give both the same rule"
    ]
    same = {**orders, "columns": {**orders["columns"], "cust_email": cust["columns"]["email"]}}
    plan_scrub(_rules(cust, same), [CUST, ORDERS], parse_constraints(POST_DATA))
    nulled = {**orders, "columns": {**orders["columns"], "cust_email": "null"}}
    plan_scrub(_rules(cust, nulled), [CUST, ORDERS], parse_constraints(POST_DATA))


def test_a_truncated_table_cannot_be_referenced_by_rows_that_stay():
    problems = _problems(_rules("truncate_table", {"keep_all": True, "reason": "test data"}))
    assert problems[0] == (
        "orders.a → s.Cust.a: the referenced table is truncated (foreign key orders_a_b_fkey)"
    )
    plan_scrub(
        _rules("truncate_table", "truncate_table"), [CUST, ORDERS], parse_constraints(POST_DATA)
    )


@pytest.mark.parametrize(
    ("rule", "fails"),
    [
        ({"action": "constant", "value": "x"}, True),
        ({"action": "mask", "first": 2}, True),
        ("fake_phone", True),
        ({"action": "fake_phone", "unique": True}, False),
        ("fake_email", False),
        ("hash", False),
        ("null", False),  # UNIQUE allows NULLs (a PRIMARY KEY is NOT NULL: checked elsewhere)
    ],
)
def test_a_unique_column_breaks_on_a_rule_that_repeats_values(rule, fails):
    kept = {"action": "keep", "reason": "test data"}
    cust = {"columns": {"id": "keep", "email": kept, "a": "keep", "b": rule}}
    orders = {"columns": {"id": "keep", "cust_email": kept, "a": "keep", "b": rule}}
    rules = parse_rules({"tables": {"s.Cust": cust, "orders": orders}})
    if not fails:
        plan_scrub(rules, [CUST, ORDERS], parse_constraints(POST_DATA))
        return
    problems = _problems(rules)
    assert problems[0].startswith("s.Cust.b: ") and "UNIQUE column" in problems[0]
