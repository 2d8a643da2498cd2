"""Column and table names: stable hash suffixes, names SQL takes unquoted, property tests."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from etl_platform.core.dynamo import (
    DataSchemaSet,
    EntityRule,
    SchemaConfig,
    evolve_schema_set,
    infer_schema_set,
)
from etl_platform.core.dynamo.naming import RESERVED_WORDS

from .test_dynamo_schema import CONFIG, S, item

VALID = re.compile(r"[a-z_][a-z0-9_]*")


def names_by_path(schema_set, table):
    return {c.path: c.name for c in schema_set.table(table).columns}


def test_a_colliding_attribute_gets_the_same_name_with_and_without_an_entity_rule():
    items = [
        item("A", "DOC#1", **{"Foo Bar": S("one"), "foo.bar": S("two"), "foo_bar": S("three")}),
    ]
    plain = infer_schema_set(items, CONFIG)
    ruled = infer_schema_set(
        items, SchemaConfig("things", "pk", "sk", entity_rule=EntityRule("sk", "#"))
    )
    without, with_rule = names_by_path(plain, "things"), names_by_path(ruled, "doc")
    assert without == with_rule
    assert without[("foo_bar",)] == "foo_bar"  # spelled like its name: no suffix
    assert without[("Foo Bar",)] != without[("foo.bar",)]
    assert without[("Foo Bar",)].startswith("foo_bar_")


def test_names_sql_would_need_quoted_get_a_prefix():
    items = [
        item("A", "ORDER#1", **{"2fa": S("x"), "order": S("x"), "User": S("x"), "select": S("x")}),
        item("B", "ORDER#2", _order=S("literal")),
    ]
    config = SchemaConfig("things", "pk", "sk", entity_rule=EntityRule("sk", "#"))
    schema_set = infer_schema_set(items, config)
    assert schema_set.table_names == ("_order",)
    names = names_by_path(schema_set, "_order")
    assert names[("2fa",)] == "_2fa"
    assert names[("User",)] == "_user"
    assert names[("select",)] == "_select"
    # the attribute spelled `_order` keeps the plain name; `order` gets a suffix
    assert names[("_order",)] == "_order"
    assert names[("order",)].startswith("_order_")


def test_a_cached_data_schema_keeps_the_names_it_recorded():
    """Names are stored in the data-schema: a cache written under the old rule (no prefix for
    reserved words) keeps its names; only new columns get the new rule."""
    cached = infer_schema_set([item("A", "1", order=S("x"))], CONFIG)
    data = cached.to_dict()
    data.pop("fingerprint")
    for column in data["tables"][0]["columns"]:
        if column["path"] == ["order"]:
            column["name"] = "order"  # what the old naming wrote
    old = DataSchemaSet.from_dict(data)
    evolved = evolve_schema_set(old, [item("B", "2", order=S("y"), select=S("z"))])
    names = names_by_path(evolved, "things")
    assert names[("order",)] == "order"
    assert names[("select",)] == "_select"


attribute_names = (
    st.text(st.sampled_from("aAbB_0129 .-#éÉ名😀"), min_size=1, max_size=30)
    | st.sampled_from(sorted(RESERVED_WORDS))
    | st.sampled_from(sorted(RESERVED_WORDS)).map(lambda w: w.upper())
).filter(lambda n: n not in ("pk", "sk"))


@settings(max_examples=150, deadline=None)
@given(names=st.sets(attribute_names, min_size=1, max_size=12), data=st.data())
def test_any_attribute_names_map_to_distinct_valid_names_independent_of_order(names, data):
    config = SchemaConfig("things", "pk", "sk", max_name_bytes=24)
    ordered = sorted(names)
    shuffled = data.draw(st.permutations(ordered))
    first = infer_schema_set([item("A", "1", **{n: S("v") for n in ordered})], config)
    # the same attributes, in another order and spread over two items
    half = len(shuffled) // 2
    again = infer_schema_set(
        [
            item("B", "2", **{n: S("v") for n in reversed(shuffled[half:])}),
            item("A", "1", **{n: S("v") for n in shuffled[:half]}),
        ],
        config,
    )
    got = names_by_path(first, "things")
    assert got == names_by_path(again, "things")
    assert len(set(got.values())) == len(got) == len(names) + 2
    for name in got.values():
        assert VALID.fullmatch(name), name
        assert name not in RESERVED_WORDS, name
        assert len(name.encode()) <= config.max_name_bytes, name
