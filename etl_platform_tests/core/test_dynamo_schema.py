"""Data-schema inference: types and widening, flattening, child tables, names, merge, JSON."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl_platform.core.dynamo import (
    ColumnRole,
    DataSchemaSet,
    EntityRule,
    ListMode,
    SchemaConfig,
    build_schema_set,
    diff,
    entity_of,
    evolve_schema_set,
    infer_schema_set,
    is_strict_timestamp,
    merge_observations,
    merge_schema_sets,
    normalize_name,
    number_digits,
    observe,
)
from etl_platform.core.table_spec import ColumnKind

CONFIG = SchemaConfig(table="things", hash_key="pk", range_key="sk")


def S(v):
    return {"S": v}


def N(v):
    return {"N": v}


def item(pk="A", sk="1", **attrs):
    return {"pk": S(pk), "sk": S(sk), **attrs}


def columns(schema_set, table="things"):
    t = schema_set.table(table)
    return {c.name: c for c in t.columns}


def kind_of(values, **kw):
    """The column kind inferred for attribute ``x`` holding ``values`` (one item each)."""
    items = [item(sk=str(i), x=v) for i, v in enumerate(values)]
    col = columns(infer_schema_set(items, SchemaConfig(**{**CONFIG.__dict__, **kw})))["x"]
    return col


# --------------------------------------------------------------------------- random items

ATTRIBUTES = ["a", "A", "b c", "b_c", "é", "e", "idx", "value", "x.y", "x__y", "Tags"]


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.decimals(
            allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30
        ).map(str),
        st.sampled_from(["1E-130", "9.9999999999999999999999999999999999999E+125", "0", "-0"]),
    )


def scalar_values() -> st.SearchStrategy[dict]:
    return st.one_of(
        st.text(max_size=12).map(lambda v: {"S": v}),
        numbers().map(lambda v: {"N": v}),
        st.booleans().map(lambda v: {"BOOL": v}),
        st.binary(max_size=6).map(lambda v: {"B": v}),
        st.just({"NULL": True}),
        st.datetimes(timezones=st.timezones())
        .filter(
            lambda d: d.utcoffset() is not None and abs(d.utcoffset().total_seconds()) < 15 * 3600
        )
        .map(lambda d: {"S": d.isoformat(timespec="microseconds")}),
        st.sets(st.text(max_size=4), min_size=1, max_size=3).map(lambda v: {"SS": sorted(v)}),
        st.sets(numbers(), min_size=1, max_size=3).map(lambda v: {"NS": sorted(v)}),
        st.sets(st.binary(max_size=3), min_size=1, max_size=3).map(lambda v: {"BS": sorted(v)}),
    )


def values() -> st.SearchStrategy[dict]:
    return st.recursive(
        scalar_values(),
        lambda children: st.one_of(
            st.dictionaries(st.sampled_from(ATTRIBUTES), children, max_size=3).map(
                lambda m: {"M": m}
            ),
            st.lists(children, max_size=3).map(lambda items: {"L": items}),
        ),
        max_leaves=8,
    )


def items_strategy(max_size: int = 12) -> st.SearchStrategy[list[dict]]:
    """Random wire-format items keyed by ``pk``/``sk``, ``sk`` carrying an entity prefix."""
    item = st.builds(
        lambda pk, sk, attrs: {"pk": {"S": pk}, "sk": {"S": sk}, **attrs},
        st.text(max_size=4),
        st.sampled_from(["ORG#1", "ORG#2", "GROUP#x", "plain", "#x"]),
        st.dictionaries(st.sampled_from(ATTRIBUTES), values(), max_size=5),
    )
    return st.lists(item, max_size=max_size, unique_by=lambda i: (i["pk"]["S"], i["sk"]["S"]))


# --------------------------------------------------------------------------- scalar types


def test_integers_in_int64_are_bigint():
    col = kind_of([N("1"), N("-9223372036854775808"), N("9223372036854775807"), N("1E+2")])
    assert col.kind is ColumnKind.BIGINT


def test_beyond_int64_is_exact_decimal():
    col = kind_of([N("9223372036854775808")])
    assert (col.kind, col.precision, col.scale) == (ColumnKind.DECIMAL, 19, 0)
    col = kind_of([N("12345678901234567890123456789012345678")])
    assert (col.kind, col.precision, col.scale) == (ColumnKind.DECIMAL, 38, 0)


def test_decimal_precision_and_scale_are_observed_exactly():
    col = kind_of([N("1.5"), N("-123.25"), N("7")])
    assert (col.kind, col.precision, col.scale) == (ColumnKind.DECIMAL, 5, 2)
    col = kind_of([N("1E-130")])
    assert (col.kind, col.precision, col.scale) == (ColumnKind.DECIMAL, 130, 130)
    col = kind_of([N("9.9999999999999999999999999999999999999E+125")])
    assert (col.kind, col.precision, col.scale) == (ColumnKind.DECIMAL, 126, 0)
    col = kind_of([N("0.001"), N("0")])
    assert (col.kind, col.precision, col.scale) == (ColumnKind.DECIMAL, 3, 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", (1, 0, True)),
        ("-0", (0, 0, True)),
        ("0.10", (0, 2, False)),
        ("1E+2", (3, 0, True)),
        ("1.0E+2", (3, 0, True)),
        ("1E-130", (0, 130, False)),
        ("12345678901234567890", (20, 0, False)),
        ("-9223372036854775809", (19, 0, False)),
        ("2.5E1", (2, 0, False)),
    ],
)
def test_number_digits(text, expected):
    int_digits, scale, fits = number_digits(text)
    assert (int_digits, scale) == expected[:2]
    if text != "2.5E1":
        assert fits is expected[2]


@pytest.mark.parametrize("bad", ["", "abc", "NaN", "Infinity", "1_000", " 1", "١٢", "1e", "--1"])
def test_number_digits_rejects_non_numbers(bad):
    with pytest.raises(ValueError, match="not a DynamoDB number"):
        number_digits(bad)


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05.123456+02:00",
        "2024-02-29T00:00:00-05:30",
        "0001-01-01T00:00:00+15:59",
    ],
)
def test_strict_timestamps(value):
    assert is_strict_timestamp(value)


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-02",
        "2024-01-02T03:04:05",
        "2024-01-02 03:04:05Z",
        "2024-01-02T03:04Z",
        "2024-01-02T03:04:05.1234567Z",
        "2023-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2024-01-02T24:00:00Z",
        "2024-01-02T03:04:05+0200",
        "2024-01-02T03:04:05+16:00",
        "2024-01-02t03:04:05z",
        "Jan 2 2024 03:04:05 +0000",
        "２０２４-01-02T03:04:05Z",
    ],
)
def test_not_strict_timestamps(value):
    assert not is_strict_timestamp(value)


def test_timestamp_inference_only_when_every_value_is_strict():
    assert kind_of([S("2024-01-02T03:04:05Z"), S("2024-01-03T00:00:00+01:00")]).kind is (
        ColumnKind.TIMESTAMPTZ
    )
    assert kind_of([S("2024-01-02T03:04:05Z"), S("2024-01-02")]).kind is ColumnKind.TEXT
    assert kind_of([S("2024-01-02")]).kind is ColumnKind.TEXT


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([{"BOOL": True}, {"BOOL": False}], ColumnKind.BOOLEAN),
        ([{"B": b"\x00"}], ColumnKind.BINARY),
        ([S("x"), S("")], ColumnKind.TEXT),
        ([N("1"), N("1.5")], ColumnKind.DECIMAL),
        ([N("1"), S("x")], ColumnKind.TEXT),
        ([N("1.5"), S("2024-01-02T03:04:05Z")], ColumnKind.TEXT),
        ([S("2024-01-02T03:04:05Z"), S("x")], ColumnKind.TEXT),
        ([{"BOOL": True}, S("true")], ColumnKind.JSON),
        ([{"B": b"x"}, S("x")], ColumnKind.JSON),
        ([{"BOOL": True}, N("1")], ColumnKind.JSON),
        ([S("x"), {"M": {"a": S("y")}}], ColumnKind.JSON),
        ([N("1"), {"L": [N("1")]}], ColumnKind.JSON),
        ([{"M": {"a": S("y")}}, {"L": []}], ColumnKind.JSON),
        ([S("x"), {"SS": ["a"]}], ColumnKind.JSON),
    ],
)
def test_widening_lattice(values, kind):
    assert kind_of(values).kind is kind
    assert kind_of(list(reversed(values))).kind is kind


def test_null_only_contributes_nullability():
    s = infer_schema_set([item(sk="1", x={"NULL": True}), item(sk="2", y=S("v"))], CONFIG)
    cols = columns(s)
    # an attribute that only holds NULL keeps a JSON column (`null`; SQL NULL = missing)
    assert cols["x"].kind is ColumnKind.JSON and cols["x"].nullable
    assert cols["y"].nullable
    s = infer_schema_set([item(sk="1", y=S("a")), item(sk="2", y=S("b"))], CONFIG)
    assert not columns(s)["y"].nullable
    s = infer_schema_set([item(sk="1", y=S("a")), item(sk="2", y={"NULL": True})], CONFIG)
    assert columns(s)["y"].nullable
    assert columns(s)["y"].kind is ColumnKind.TEXT


# --------------------------------------------------------------------------- structure


def test_maps_flatten_to_any_depth():
    s = infer_schema_set(
        [item(address={"M": {"city": S("Bogotá"), "geo": {"M": {"lat": N("4.7")}}}})], CONFIG
    )
    cols = columns(s)
    assert cols["address__city"].path == ("address", "city")
    assert cols["address__geo__lat"].path == ("address", "geo", "lat")
    assert cols["address__geo__lat"].kind is ColumnKind.DECIMAL


def test_key_columns_come_first_and_are_the_primary_key():
    s = infer_schema_set([item(a=S("x"), created=S("2024-01-02T03:04:05Z"))], CONFIG)
    t = s.table("things")
    assert t.primary_key == ("pk", "sk")
    assert t.column_names[:2] == ("pk", "sk")
    assert [c.role for c in t.columns[:2]] == [ColumnRole.KEY, ColumnRole.KEY]
    spec = t.to_table_spec()
    assert [c.nullable for c in spec.columns] == [False, False, True, True]


def test_key_columns_keep_distinct_keys_distinct():
    s = infer_schema_set(
        [item(sk="2024-01-02T03:04:05Z"), item(sk="2024-01-02T01:04:05-02:00")], CONFIG
    )
    assert columns(s)["sk"].kind is ColumnKind.TEXT
    numeric = SchemaConfig(table="t", hash_key="id")
    s = infer_schema_set([{"id": N("5")}, {"id": N("77")}], numeric)
    assert columns(s, "t")["id"].kind is ColumnKind.BIGINT


def test_missing_key_attribute_is_an_error():
    with pytest.raises(ValueError, match="key attribute 'sk'"):
        infer_schema_set([{"pk": S("a")}], CONFIG)


def test_lists_and_sets_become_child_tables():
    s = infer_schema_set(
        [
            item(
                tags={"SS": ["b", "a"]},
                scores={"NS": ["1", "2.5"]},
                blobs={"BS": [b"\x01"]},
                members={"L": [{"M": {"email": S("a@x"), "idx": N("1")}}, {"NULL": True}]},
                matrix={"L": [{"L": [N("1"), N("2")]}]},
                profile={"M": {"phones": {"L": [S("1"), S("2")]}}},
            )
        ],
        CONFIG,
    )
    names = set(s.table_names)
    assert names == {
        "things",
        "things__tags",
        "things__scores",
        "things__blobs",
        "things__members",
        "things__matrix",
        "things__matrix__value",
        "things__profile__phones",
    }
    tags = s.table("things__tags")
    assert tags.parent == "things"
    assert tags.primary_key == ("pk", "sk", "idx")
    assert [(c.name, c.kind, c.role) for c in tags.columns] == [
        ("pk", ColumnKind.TEXT, ColumnRole.PARENT_KEY),
        ("sk", ColumnKind.TEXT, ColumnRole.PARENT_KEY),
        ("idx", ColumnKind.BIGINT, ColumnRole.INDEX),
        ("value", ColumnKind.TEXT, ColumnRole.VALUE),
    ]
    assert columns(s, "things__scores")["value"].kind is ColumnKind.DECIMAL
    assert columns(s, "things__blobs")["value"].kind is ColumnKind.BINARY
    members = columns(s, "things__members")
    assert members["email"].path == ("email",)
    assert members["email"].nullable
    idx_data = [c for c in members.values() if c.path == ("idx",)][0]
    assert idx_data.name.startswith("idx_") and idx_data.name != "idx"
    grid = s.table("things__matrix__value")
    assert grid.primary_key == ("pk", "sk", "idx", "idx_2")
    assert grid.parent == "things__matrix"
    assert s.table("things__profile__phones").list_path == (("profile", "phones"),)
    assert "tags" not in columns(s)


def test_list_mode_json():
    config = SchemaConfig(table="things", hash_key="pk", range_key="sk", list_mode=ListMode.JSON)
    s = infer_schema_set([item(tags={"SS": ["a"]}, l={"L": [{"M": {"a": N("1")}}]})], config)
    assert s.table_names == ("things",)
    assert columns(s)["tags"].kind is ColumnKind.JSON
    assert columns(s)["l"].kind is ColumnKind.JSON


def test_mixed_element_shapes_make_a_json_value_column():
    s = infer_schema_set([item(l={"L": [{"M": {"a": S("x")}}, S("y")]})], CONFIG)
    assert [(c.name, c.kind) for c in s.table("things__l").columns][-1] == (
        "value",
        ColumnKind.JSON,
    )


# --------------------------------------------------------------------------- entities


def test_entity_rule():
    rule = EntityRule("sk", "#")
    assert entity_of(item(sk="ORG#1"), rule) == "ORG"
    assert entity_of(item(sk="nosep"), rule) is None
    assert entity_of(item(sk="#x"), rule) is None
    assert entity_of({"pk": S("a")}, rule) is None
    assert entity_of({"pk": S("a"), "sk": N("1")}, rule) is None
    assert entity_of(item(sk="ORG#1"), None) is None


def test_one_data_schema_per_entity():
    config = SchemaConfig(
        table="Integrates VMS", hash_key="pk", range_key="sk", entity_rule=EntityRule("sk", "#")
    )
    s = infer_schema_set(
        [
            item(pk="O1", sk="ORG#1", name=S("org")),
            item(pk="G1", sk="GROUP-X#1", budget=N("5")),
            item(pk="U1", sk="nosep", other=S("x")),
            {"pk": S("V1"), "sk": S("Ünïcode Ent#1"), "x": S("y")},
        ],
        config,
    )
    assert s.table_names == ("group_x", "integrates_vms", "org", "unicode_ent")
    assert set(columns(s, "org")) == {"pk", "sk", "name"}
    assert set(columns(s, "group_x")) == {"pk", "sk", "budget"}
    assert s.table("integrates_vms").entity is None
    assert s.main_table("ORG").name == "org"


def test_entity_names_that_collide_are_disambiguated():
    config = SchemaConfig(
        table="t", hash_key="pk", range_key="sk", entity_rule=EntityRule("sk", "#")
    )
    s = infer_schema_set([item(sk="org#1"), item(sk="ORG#1"), item(sk="Org#1")], config)
    names = sorted(s.table_names)
    assert names[0] == "org"
    assert len(set(names)) == 3 and all(n.startswith("org") for n in names)
    assert s.main_table("org").name == "org"


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (("First Name",), "first_name"),
        (("a.b-c",), "a_b_c"),
        (("Café",), "cafe"),
        (("address", "City"), "address__city"),
    ],
)
def test_normalize_name(path, name):
    assert normalize_name(path) == name


def test_names_without_latin_letters_get_distinct_stable_names():
    names = [normalize_name([text]) for text in ("名前", "😀", "---", "")]
    assert all(re.fullmatch(r"a_[0-9a-f]{8}", n) for n in names)
    assert len(set(names)) == 4
    assert normalize_name(["名前"]) == names[0]
    assert normalize_name(["x", "名前"]) == f"x__{names[0]}"


def test_colliding_attribute_names_are_disambiguated_and_recorded():
    s = infer_schema_set(
        [item(createdAt=S("a"), CreatedAt=S("b"), created_at=S("c"), **{"created at": S("d")})],
        CONFIG,
    )
    by_path = {c.path: c.name for c in s.table("things").columns}
    assert by_path[("created_at",)] == "created_at"
    assert re.fullmatch(r"created_at_[0-9a-f]{8}", by_path[("created at",)])
    assert re.fullmatch(r"createdat_[0-9a-f]{8}", by_path[("createdAt",)])
    assert re.fullmatch(r"createdat_[0-9a-f]{8}", by_path[("CreatedAt",)])
    assert len(set(by_path.values())) == len(by_path)
    for name in by_path.values():
        assert name == normalize_name([name])
    # deterministic
    again = infer_schema_set(
        [item(**{"created at": S("d")}, created_at=S("c"), CreatedAt=S("b"), createdAt=S("a"))],
        CONFIG,
    )
    assert again.to_json() == s.to_json()


def test_path_that_looks_like_a_flattened_name():
    s = infer_schema_set([item(a__b=S("x"), a={"M": {"b": S("y")}})], CONFIG)
    by_path = {c.path: c.name for c in s.table("things").columns}
    assert by_path[("a__b",)] == "a__b"
    assert by_path[("a", "b")].startswith("a__b_")


def test_names_are_at_most_max_bytes():
    long = "é" * 100
    s = infer_schema_set([item(**{long: S("x"), long + "x": S("y")}, l={"L": [S("z")]})], CONFIG)
    for t in s.tables:
        assert len(t.name.encode()) <= 127
        for c in t.columns:
            assert len(c.name.encode()) <= 127
    names = [c.name for c in s.table("things").columns]
    assert len(set(names)) == len(names)
    short = SchemaConfig(table="things", hash_key="pk", range_key="sk", max_name_bytes=63)
    s = infer_schema_set([item(**{"a" * 80: {"L": [{"M": {"b" * 80: S("x")}}]}})], short)
    for t in s.tables:
        assert len(t.name.encode()) <= 63
        assert all(len(c.name.encode()) <= 63 for c in t.columns)


def test_evolution_keeps_existing_names():
    first = infer_schema_set([item(createdAt=S("a"))], CONFIG)
    assert columns(first)["createdat"].path == ("createdAt",)
    evolved = evolve_schema_set(first, [item(CreatedAt=S("b"))])
    by_path = {c.path: c.name for c in evolved.table("things").columns}
    assert by_path[("createdAt",)] == "createdat"
    assert by_path[("CreatedAt",)].startswith("createdat_")
    fresh = infer_schema_set([item(createdAt=S("a")), item(CreatedAt=S("b"))], CONFIG)
    assert "createdat" not in columns(fresh)


# --------------------------------------------------------------------------- merge


def _split(items, cuts):
    cuts = sorted(c % (len(items) + 1) for c in cuts)
    return items[: cuts[0]], items[cuts[0] : cuts[1]], items[cuts[1] :]


@settings(max_examples=60, deadline=None)
@given(items_strategy(), st.tuples(st.integers(0, 50), st.integers(0, 50)))
def test_merge_is_associative_commutative_and_equals_one_pass(items, cuts):
    config = SchemaConfig(
        table="t", hash_key="pk", range_key="sk", entity_rule=EntityRule("sk", "#")
    )
    a, b, c = (observe(part, config) for part in _split(items, cuts))
    left = merge_observations(merge_observations(a, b), c)
    right = merge_observations(a, merge_observations(b, c))
    assert left == right
    assert merge_observations(a, b) == merge_observations(b, a)
    assert left == observe(items, config)
    assert build_schema_set(left).to_json() == build_schema_set(right).to_json()
    sa, sb = build_schema_set(a), build_schema_set(b)
    assert merge_schema_sets(sa, sb).to_json() == merge_schema_sets(sb, sa).to_json()


def test_merge_refuses_different_configs():
    with pytest.raises(ValueError, match="different configs"):
        merge_observations(observe([], CONFIG), observe([], SchemaConfig(table="x", hash_key="pk")))


# --------------------------------------------------------------------------- JSON, diff, specs


def test_json_round_trip_is_deterministic_and_versioned():
    items = [
        item(sk=str(i), n=N(str(i)), m={"M": {"k": S("v")}}, t={"SS": ["x"]}) for i in range(5)
    ]
    s = infer_schema_set(items, CONFIG)
    text = s.to_json()
    assert DataSchemaSet.from_json(text) == s
    assert DataSchemaSet.from_json(text).to_json() == text
    assert infer_schema_set(list(reversed(items)), CONFIG).to_json() == text
    data = json.loads(text)
    assert data["format_version"] == 1 and data["fingerprint"] == s.fingerprint
    data["tables"][0]["columns"][0]["kind"] = "json"
    with pytest.raises(ValueError, match="fingerprint"):
        DataSchemaSet.from_dict(data)
    with pytest.raises(ValueError, match="format version"):
        DataSchemaSet.from_dict({**json.loads(text), "format_version": 99})


def test_fingerprint_ignores_counts():
    one = infer_schema_set([item(sk="1", x=S("a"))], CONFIG)
    two = infer_schema_set([item(sk="1", x=S("a")), item(sk="2")], CONFIG)
    assert one.fingerprint == two.fingerprint
    three = infer_schema_set([item(sk="1", x=N("1"))], CONFIG)
    assert three.fingerprint != one.fingerprint


def test_diff():
    old = infer_schema_set([item(a=N("1"), b=S("x"), gone=S("y"), l={"L": [S("z")]})], CONFIG)
    new = infer_schema_set(
        [item(a=N("1.5"), b=S("x"), c={"BOOL": True}, s={"SS": ["q"]}), item(sk="2", b=N("2"))],
        CONFIG,
    )
    d = diff(old, new)
    assert d.added_tables == ("things__s",)
    assert d.removed_tables == ("things__l",)
    assert [(c.column, c.new) for c in d.added_columns] == [
        ("c", "boolean"),
        ("s__count", "bigint"),
    ]
    assert [(c.column, c.old) for c in d.removed_columns] == [
        ("gone", "text"),
        ("l__count", "bigint"),
    ]
    assert {(c.column, c.old, c.new) for c in d.widened_columns} == {
        ("a", "bigint", "decimal(2,1)")
    }
    assert d.narrowed_columns == ()
    assert not d.is_empty
    assert d.to_dict()["widened_columns"] == ["things.a: bigint -> decimal(2,1)"]
    assert diff(new, new).is_empty
    assert diff(None, new).added_tables == new.table_names
    assert diff(new, old).narrowed_columns


def test_table_specs():
    s = infer_schema_set([item(d=N("1.25"), l={"L": [N("1")]})], CONFIG)
    specs = {t.name: t for t in s.to_table_specs()}
    main = specs["things"]
    assert main.primary_key == ("pk", "sk")
    d = [c for c in main.columns if c.name == "d"][0]
    assert (d.kind, d.precision, d.scale, d.nullable) == (ColumnKind.DECIMAL, 3, 2, True)
    child = specs["things__l"]
    assert child.primary_key == ("pk", "sk", "idx")
    assert [c.nullable for c in child.columns] == [False, False, False, True]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"S": "a", "N": "1"}, "one-key DynamoDB attribute value"),
        ({"X": "a"}, "unknown DynamoDB type 'X'"),
        ({"N": "abc"}, "'abc' is not a number"),
        ("plain", "one-key DynamoDB attribute value"),
    ],
)
def test_bad_input_is_named(value, message):
    with pytest.raises(ValueError, match=message) as info:
        observe([item(outer={"M": {"inner": value}})], CONFIG)
    assert "'outer'.'inner'" in str(info.value)


def test_config_validation():
    with pytest.raises(ValueError, match="range key"):
        SchemaConfig(table="t", hash_key="pk", range_key="pk")
    with pytest.raises(ValueError, match="entity rule"):
        EntityRule("sk", "")


@pytest.mark.parametrize(
    "value",
    [{"S": 5}, {"BOOL": "yes"}, {"M": []}, {"L": "abc"}, {"SS": "abc"}, {"B": 3}, {"BS": [1]}],
)
def test_malformed_values_are_named(value):
    with pytest.raises(ValueError, match="malformed") as info:
        observe([item(bad=value)], CONFIG)
    assert "'bad'" in str(info.value)
