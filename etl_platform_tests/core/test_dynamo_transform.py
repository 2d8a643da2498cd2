"""Items -> rows: exact encodings, child rows, unknown attributes and type misfits, speed paths."""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings

from etl_platform.core.dynamo import (
    ColumnRole,
    DataSchemaMismatch,
    EntityRule,
    ItemTransformer,
    ListMode,
    SchemaConfig,
    UnfitPolicy,
    csv_plain_columns,
    decimal_text,
    infer_schema_set,
    iter_wire_items,
    json_text,
    open_csv_writer,
    transform_items,
)
from etl_platform.core.table_spec import ColumnKind

from .test_csv_encoding import parse_pg_csv
from .test_dynamo_schema import CONFIG, N, S, item, items_strategy

# What PostgreSQL's numeric input accepts without an exponent.
PG_NUMERIC = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def rows_by_column(schema_set, items, table="things", **kw):
    batch = transform_items(schema_set, items, **kw)
    names = schema_set.table(table).column_names
    return [dict(zip(names, row, strict=True)) for row in batch.rows[table]]


def one_row(items, **kw):
    schema_set = infer_schema_set(items, CONFIG)
    return rows_by_column(schema_set, items, **kw)[0]


# --------------------------------------------------------------------------- exact values


@pytest.mark.parametrize(
    ("wire", "text"),
    [
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("-0.000123", "-0.000123"),
        ("1E+2", "100"),
        ("1.5E-3", "0.0015"),
        ("1E-130", "0." + "0" * 129 + "1"),
        (
            "9.9999999999999999999999999999999999999E+125",
            "99999999999999999999999999999999999999" + "0" * 88,
        ),
        ("-0", "-0"),
        (".5", "0.5"),
        ("+7", "7"),
    ],
)
def test_decimal_text_is_exact_and_postgres_parsable(wire, text):
    assert decimal_text(wire) == text
    assert PG_NUMERIC.fullmatch(text)
    assert Decimal(text) == Decimal(wire)


def test_numbers_round_trip_exactly_through_columns():
    values = ["12345678901234567890123456789012345678", "1E-130", "1E+2", "-3.25", "0"]
    items = [item(sk=str(i), d=N(v)) for i, v in enumerate(values)]
    rows = rows_by_column(infer_schema_set(items, CONFIG), items)
    for row, wire in zip(rows, values, strict=True):
        assert PG_NUMERIC.fullmatch(row["d"])
        assert Decimal(row["d"]) == Decimal(wire)
    ints = [item(sk=str(i), n=N(v)) for i, v in enumerate(["1E+2", "-5", "9223372036854775807"])]
    rows = rows_by_column(infer_schema_set(ints, CONFIG), ints)
    assert [r["n"] for r in rows] == ["100", "-5", "9223372036854775807"]


TEXTS = [
    "line1\nline2\r\nline3\r",
    'quotes " and "" and \'single\'',
    "back\\slash \\N \\x00 \\\\",
    "nan",
    "NULL",
    "\\N",
    "",
    " padded ",
    "emoji 😀🔥 and RTL עברית العربية",
    "x" * 350_000,
    "\t\v\f control",
]


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_text_is_never_changed(text):
    row = one_row([item(t=S(text), u=S("x"))])
    assert row["t"] == text


def test_text_round_trips_through_the_csv_writer():
    items = [item(sk=str(i), t=S(t)) for i, t in enumerate(TEXTS)] + [
        item(sk="n", t={"NULL": True})
    ]
    schema_set = infer_schema_set(items, CONFIG)
    table = schema_set.table("things")
    out = io.BytesIO()
    with open_csv_writer(table, out) as writer:
        writer.write_rows(transform_items(schema_set, items).rows["things"])
    parsed = parse_pg_csv(gzip.decompress(out.getvalue()).decode())
    assert [r[2] for r in parsed] == [*TEXTS, None]


def test_binary_boolean_timestamp_json():
    ts = "2024-01-02T03:04:05.123456+02:00"
    row = one_row(
        [
            item(
                b={"B": b"\x00\xffA"},
                t={"BOOL": True},
                f={"BOOL": False},
                ts=S(ts),
                j=S("x"),
            ),
            item(
                sk="2", j={"M": {"b": N("1E-130"), "a": {"L": [N("12345678901234567890"), S("é")]}}}
            ),
        ]
    )
    assert row["b"] == "\\x00ff41"
    assert (row["t"], row["f"], row["ts"]) == ("true", "false", ts)
    assert row["j"] == '"x"'
    schema_set = infer_schema_set(
        [
            item(j={"M": {"b": N("1E-130"), "a": {"L": [N("12345678901234567890"), S("é")]}}}),
            item(sk="2", j=S("x")),
        ],
        CONFIG,
    )
    rows = rows_by_column(
        schema_set,
        [item(j={"M": {"b": N("1E-130"), "a": {"L": [N("12345678901234567890"), S("é")]}}})],
    )
    assert rows[0]["j"] == '{"a":[12345678901234567890,"é"],"b":1E-130}'
    assert json.loads(rows[0]["j"], parse_float=Decimal)["b"] == Decimal("1E-130")


def test_binary_from_wire_base64_equals_binary_from_botocore():
    schema_set = infer_schema_set([item(b={"B": b"\x01\x02"})], CONFIG)
    wire = [item(b={"B": base64.b64encode(b"\x01\x02").decode()})]
    assert rows_by_column(schema_set, wire)[0]["b"] == "\\x0102"


def test_json_text_of_every_type():
    av = {
        "M": {
            "s": S('q"\n'),
            "n": N(".5"),
            "t": {"BOOL": True},
            "z": {"NULL": True},
            "b": {"B": b"\x01"},
            "ss": {"SS": ["b", "a"]},
            "ns": {"NS": ["10", "9", "-1.5"]},
            "bs": {"BS": [b"\x02", b"\x01"]},
            "l": {"L": []},
        }
    }
    assert json_text(av) == (
        '{"b":"AQ==","bs":["AQ==","Ag=="],"l":[],"n":0.5,"ns":[-1.5,9,10],'
        '"s":"q\\"\\n","ss":["a","b"],"t":true,"z":null}'
    )


def test_number_vs_string_text_column_keeps_the_original_representation():
    items = [item(sk="1", v=N("1E+2")), item(sk="2", v=S("abc"))]
    rows = rows_by_column(infer_schema_set(items, CONFIG), items)
    assert [r["v"] for r in rows] == ["1E+2", "abc"]


def test_null_and_missing_are_none():
    items = [
        item(sk="1", a=S("x"), m={"M": {"k": S("v")}}),
        item(sk="2", a={"NULL": True}),
        item(sk="3", m={"NULL": True}),
    ]
    rows = rows_by_column(infer_schema_set(items, CONFIG), items)
    assert [(r["a"], r["m__k"]) for r in rows] == [("x", "v"), (None, None), (None, None)]


# --------------------------------------------------------------------------- child rows


def test_child_rows_carry_parent_key_and_index():
    items = [
        item(
            pk="P", sk="1", tags={"SS": ["b", "a", "B"]}, l={"L": [{"M": {"x": N("1")}}, {"M": {}}]}
        ),
        item(
            pk="P", sk="2", tags={"SS": ["b", "a", "B"]}, l={"L": [{"M": {"x": N("1")}}, {"M": {}}]}
        ),
        item(pk="Q", sk="1", nums={"NS": ["10", "9", "-1", "1.5", "1E+1"]}),
    ]
    schema_set = infer_schema_set(items, CONFIG)
    batch = transform_items(schema_set, items)
    assert batch.rows["things__tags"] == [
        ("P", "1", "0", "B"),
        ("P", "1", "1", "a"),
        ("P", "1", "2", "b"),
        ("P", "2", "0", "B"),
        ("P", "2", "1", "a"),
        ("P", "2", "2", "b"),
    ]
    assert batch.rows["things__l"] == [
        ("P", "1", "0", "1"),
        ("P", "1", "1", None),
        ("P", "2", "0", "1"),
        ("P", "2", "1", None),
    ]
    nums = batch.rows["things__nums"]
    assert [r[2] for r in nums] == ["0", "1", "2", "3", "4"]
    assert [Decimal(r[3]) for r in nums] == [-1, Decimal("1.5"), 9, 10, 10]
    assert len(batch.rows["things"]) == 3


def test_nested_lists_and_lists_inside_list_elements():
    items = [
        item(
            grid={"L": [{"L": [N("1"), N("2")]}, {"L": []}, {"L": [N("3")]}]},
            people={"L": [{"M": {"name": S("a"), "phones": {"L": [S("1"), S("2")]}}}]},
        )
    ]
    schema_set = infer_schema_set(items, CONFIG)
    batch = transform_items(schema_set, items)
    # each list's parent row counts its elements (an empty list is 0, not "no list")
    assert batch.rows["things"] == [("A", "1", "3", "1")]
    assert batch.rows["things__grid"] == [
        ("A", "1", "0", "2"),
        ("A", "1", "1", "0"),
        ("A", "1", "2", "1"),
    ]
    assert batch.rows["things__grid__value"] == [
        ("A", "1", "0", "0", "1"),
        ("A", "1", "0", "1", "2"),
        ("A", "1", "2", "0", "3"),
    ]
    assert batch.rows["things__people"] == [("A", "1", "0", "a", "2")]
    assert batch.rows["things__people__phones"] == [
        ("A", "1", "0", "0", "1"),
        ("A", "1", "0", "1", "2"),
    ]


def test_list_mode_json():
    config = SchemaConfig(table="things", hash_key="pk", range_key="sk", list_mode=ListMode.JSON)
    items = [item(tags={"SS": ["b", "a"]}, l={"L": [{"M": {"x": N("1.50")}}]})]
    rows = rows_by_column(infer_schema_set(items, config), items)
    assert rows[0]["tags"] == '["a","b"]'
    assert rows[0]["l"] == '[{"x":1.50}]'


# --------------------------------------------------------------------------- misfits


@pytest.fixture
def cached():
    return infer_schema_set(
        [
            item(
                sk="ORG#1",
                count=N("5"),
                price=N("1.25"),
                when=S("2024-01-02T03:04:05Z"),
                m={"M": {"a": S("x")}},
                l={"L": [S("x")]},
            ),
        ],
        CONFIG,
    )


@pytest.mark.parametrize(
    ("attrs", "path", "reason"),
    [
        ({"extra": S("x")}, "extra", "not in the data-schema"),
        ({"m": {"M": {"new": N("1")}}}, "m.new", "not in the data-schema"),
        ({"count": S("five")}, "count", "S value 'five' does not fit bigint column 'count'"),
        ({"count": N("1.5")}, "count", "does not fit a BIGINT column"),
        ({"count": N("9223372036854775808")}, "count", "does not fit a BIGINT column"),
        ({"price": N("1.255")}, "price", "does not fit DECIMAL(3,2)"),
        ({"price": N("12.5")}, "price", "does not fit DECIMAL(3,2)"),
        ({"when": S("2024-01-02")}, "when", "not a strict ISO-8601 timestamp"),
        ({"m": S("flat")}, "m", "S value where the data-schema has a map"),
        ({"l": S("flat")}, "l", "S value where the data-schema has a list or set"),
        ({"l": {"L": [{"M": {"a": S("x")}}]}}, "l.[0]", "M value"),
        ({"l": {"L": [S("ok"), {"BOOL": False}]}}, "l.[1]", "BOOL value False"),
        ({"count": {"BOOL": True}}, "count", "BOOL value True does not fit bigint"),
    ],
)
@pytest.mark.parametrize("generate_code", [True, False])
def test_misfits_fail_naming_key_and_path(cached, attrs, path, reason, generate_code):
    bad = item(pk="ORG#9", sk="ORG#9", **attrs)
    transformer = ItemTransformer(cached, generate_code=generate_code)
    with pytest.raises(DataSchemaMismatch) as info:
        transformer.transform([item(sk="ok"), bad])
    message = str(info.value)
    assert "pk='ORG#9', sk='ORG#9'" in message
    assert f"attribute {path}:" in message
    assert reason in message
    assert info.value.unfit.path == tuple(path.split("."))


@pytest.mark.parametrize("generate_code", [True, False])
def test_evolve_reports_and_leaves_rows_out(cached, generate_code):
    good = item(sk="a", l={"L": [S("1"), S("2")]})
    bad = item(sk="b", l={"L": [S("3")]}, extra=N("1"))
    late_bad = item(sk="c", l={"L": [S("4"), {"BOOL": True}]})
    transformer = ItemTransformer(cached, on_unfit=UnfitPolicy.EVOLVE, generate_code=generate_code)
    batch = transformer.transform([good, bad, late_bad])
    assert [u.path for u in batch.unfit] == [("extra",), ("l", "[1]")]
    assert batch.items == 3
    assert [r[1] for r in batch.rows["things"]] == ["a"]
    assert batch.rows["things__l"] == [("A", "a", "0", "1"), ("A", "a", "1", "2")]
    evolved = transformer.evolved_schema_set(batch.unfit)
    again = ItemTransformer(evolved, on_unfit="fail").transform([good, bad, late_bad])
    assert [r[1] for r in again.rows["things"]] == ["a", "b", "c"]
    assert (
        evolved.table("things").column("count").kind == cached.table("things").column("count").kind
    )


def test_unknown_attributes_holding_nothing_widen_the_data_schema(cached):
    """NULL or a map of NULLs in an attribute the data-schema lacks is not dropped: the item
    does not fit, and the widened data-schema keeps the value in a JSON column."""
    items = [
        item(
            extra={"NULL": True},
            m={"M": {"new": {"NULL": True}, "a": S("x")}},
            e2={"M": {"z": {"NULL": True}}},
        )
    ]
    with pytest.raises(DataSchemaMismatch, match="e2"):
        transform_items(cached, items)
    transformer = ItemTransformer(cached, on_unfit="evolve")
    assert [u.path for u in transformer.transform(items).unfit] == [("e2",)]
    widened = transformer.evolved_schema_set(transformer.transform(items).unfit)
    (row,) = rows_by_column(widened, items)
    assert (row["extra"], row["m__new"], row["e2__z"], row["m__a"]) == ("null", "null", "null", "x")


def test_unknown_entity_and_missing_key():
    config = SchemaConfig(
        table="t", hash_key="pk", range_key="sk", entity_rule=EntityRule("sk", "#")
    )
    schema_set = infer_schema_set([item(sk="ORG#1")], config)
    with pytest.raises(DataSchemaMismatch, match="entity 'USER' is not in the data-schema"):
        transform_items(schema_set, [item(sk="USER#1")])
    with pytest.raises(DataSchemaMismatch, match="entity None"):
        transform_items(schema_set, [item(sk="nosep")])
    with pytest.raises(ValueError, match="lacks its key attributes"):
        transform_items(schema_set, [{"sk": S("ORG#2")}])
    with pytest.raises(ValueError, match="bad DynamoDB item"):
        transform_items(schema_set, [item(sk="ORG#1", x={"S": "a", "N": "1"})])


# --------------------------------------------------------------------------- properties


@settings(max_examples=80, deadline=None)
@given(items_strategy())
def test_inferred_schema_fits_its_items_and_both_engines_agree(items):
    config = SchemaConfig(
        table="t", hash_key="pk", range_key="sk", entity_rule=EntityRule("sk", "#")
    )
    schema_set = infer_schema_set(items, config)
    fast = ItemTransformer(schema_set).transform(items)
    slow = ItemTransformer(schema_set, generate_code=False).transform(items)
    assert fast.rows == slow.rows
    assert fast.unfit == [] and fast.items == len(items)
    main_rows = sum(len(fast.rows[t.name]) for t in schema_set.tables if t.parent is None)
    assert main_rows == len(items)
    for table in schema_set.tables:
        width = len(table.columns)
        keys = [row[: len(table.primary_key)] for row in fast.rows[table.name]]
        assert len(set(keys)) == len(keys)
        for row in fast.rows[table.name]:
            assert len(row) == width
            assert all(v is None or isinstance(v, str) for v in row)
            assert all(row[i] is not None for i in range(len(table.primary_key)))


@settings(max_examples=60, deadline=None)
@given(items_strategy(), items_strategy())
def test_evolving_makes_any_items_fit_and_engines_agree_on_misfits(first, second):
    config = SchemaConfig(
        table="t", hash_key="pk", range_key="sk", entity_rule=EntityRule("sk", "#")
    )
    cached = infer_schema_set(first, config)
    fast = ItemTransformer(cached, on_unfit="evolve").transform(second)
    slow = ItemTransformer(cached, on_unfit="evolve", generate_code=False).transform(second)
    assert fast.rows == slow.rows
    assert [(u.key, u.path, u.reason) for u in fast.unfit] == [
        (u.key, u.path, u.reason) for u in slow.unfit
    ]
    evolved = ItemTransformer(cached).evolved_schema_set(fast.unfit)
    assert ItemTransformer(evolved).transform(second).unfit == []
    for table in cached.tables:
        if table.name in evolved.table_names:
            old = {c.path: c.name for c in table.columns if c.role is ColumnRole.VALUE}
            new = {
                c.path: c.name
                for c in evolved.table(table.name).columns
                if c.role is ColumnRole.VALUE
            }
            assert all(new.get(p, n) == n for p, n in old.items())


# --------------------------------------------------------------------------- wire pages


def test_iter_wire_items():
    items = [item(sk=str(i), b={"B": "AAE="}, s=S('x"}],')) for i in range(3)]
    page = json.dumps(
        {"LastEvaluatedKey": {"pk": S("Items")}, "Items": items, "Count": 3, "ScannedCount": 5},
        indent=1,
    )
    fields: dict = {}
    assert list(iter_wire_items(page.encode(), fields)) == items
    assert fields == {"LastEvaluatedKey": {"pk": S("Items")}, "Count": 3, "ScannedCount": 5}
    assert list(iter_wire_items('{"Items": [], "Count": 0}')) == []
    assert list(iter_wire_items("{}")) == []
    with pytest.raises(ValueError, match="ends early|not valid JSON"):
        list(iter_wire_items(page[:-30]))
    with pytest.raises(ValueError, match="JSON object"):
        list(iter_wire_items("[1]"))


def test_csv_plain_columns():
    schema_set = infer_schema_set(
        [
            item(
                n=N("1"),
                d=N("1.5"),
                t=S("x"),
                b={"BOOL": True},
                ts=S("2024-01-02T03:04:05Z"),
                j={"L": [S("x"), {"M": {}}]},
            )
        ],
        SchemaConfig(table="things", hash_key="pk", range_key="sk", list_mode=ListMode.JSON),
    )
    table = schema_set.table("things")
    plain = dict(zip(table.column_names, csv_plain_columns(table), strict=True))
    assert plain == {
        "pk": False,
        "sk": False,
        "b": True,
        "d": True,
        "j": False,
        "n": True,
        "t": False,
        "ts": True,
    }


# --------------------------------------------------------------------------- edge semantics


def test_empty_maps_count_as_null_and_maps_of_nulls_are_kept():
    items = [
        item(sk="1", a=S("x"), m={"M": {"k": N("1")}}),
        item(sk="2", a={"M": {}}, m={"M": {"k": {"NULL": True}}}),
        item(sk="3", a={"M": {"z": {"NULL": True}}}, m={"M": {}}),
    ]
    schema_set = infer_schema_set(items, CONFIG)
    cols = {c.name: c for c in schema_set.table("things").columns}
    # a map with keys next to a string: one JSON column keeping both as written
    assert cols["a"].kind is ColumnKind.JSON and cols["a"].nullable
    rows = rows_by_column(schema_set, items)
    assert [(r["a"], r["m__k"]) for r in rows] == [
        ('"x"', "1"),
        ("{}", None),
        ('{"z":null}', None),
    ]
    json_items = [item(sk="1", j=S("x")), item(sk="2", j={"L": []}), item(sk="3", j={"M": {}})]
    rows = rows_by_column(infer_schema_set(json_items, CONFIG), json_items)
    assert [r["j"] for r in rows] == ['"x"', "[]", "{}"]


@pytest.mark.parametrize("generate_code", [True, False])
def test_a_misfit_in_a_later_list_removes_the_rows_of_earlier_lists(generate_code):
    cached = infer_schema_set(
        [
            item(
                a={"L": [S("x")]},
                b={"L": [{"M": {"n": {"L": [N("1")]}}}]},
                c={"SS": ["q"]},
            )
        ],
        CONFIG,
    )
    good = item(sk="g", a={"L": [S("1")]}, b={"L": [{"M": {"n": {"L": [N("2")]}}}]})
    bad = item(
        sk="b",
        a={"L": [S("2"), S("3")]},
        b={"L": [{"M": {"n": {"L": [N("3"), N("4")]}}}]},
        c={"SS": ["ok"]},
        z={"BOOL": True},
    )
    worse = item(sk="w", a={"L": [S("4")]}, b={"L": [{"M": {"n": {"L": [N("5"), S("x")]}}}]})
    transformer = ItemTransformer(cached, on_unfit="evolve", generate_code=generate_code)
    batch = transformer.transform([good, bad, worse])
    assert [u.path for u in batch.unfit] == [("z",), ("b", "[0]", "n", "[1]")]
    assert batch.rows["things"] == [("A", "g", "1", "1", None)]
    assert batch.rows["things__a"] == [("A", "g", "0", "1")]
    assert batch.rows["things__b"] == [("A", "g", "0", "1")]
    assert batch.rows["things__b__n"] == [("A", "g", "0", "0", "2")]
    assert batch.rows["things__c"] == []


def test_wide_tables_use_the_interpreter_with_the_same_result():
    wide = {f"attr_{i:03d}": N(str(i)) for i in range(150)}
    items = [item(sk="1", **wide, l={"L": [S("a")]}), item(sk="2", attr_007=S("x"))]
    schema_set = infer_schema_set(items, CONFIG)
    assert len(schema_set.table("things").columns) == 153  # + l__count
    fast = ItemTransformer(schema_set).transform(items)
    slow = ItemTransformer(schema_set, generate_code=False).transform(items)
    assert fast.rows == slow.rows
    assert fast.rows["things"][0][2:5] == ("0", "1", "2")
    with pytest.raises(DataSchemaMismatch, match="attribute attr_200: is not in the data-schema"):
        ItemTransformer(schema_set).transform([item(attr_200=S("new"))])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            ["12345678901234567890", "007", "-12", "1E+19"],
            ["12345678901234567890", "007", "-12", "10000000000000000000"],
        ),
        (["1.5", "-0.25", "2.5E-1", "3"], ["1.5", "-0.25", "0.25", "3"]),
    ],
)
def test_decimal_fast_and_slow_paths_agree(values, expected):
    items = [item(sk=str(i), d=N(v)) for i, v in enumerate(values)]
    schema_set = infer_schema_set(items, CONFIG)
    for generate_code in (True, False):
        batch = ItemTransformer(schema_set, generate_code=generate_code).transform(items)
        assert [r[2] for r in batch.rows["things"]] == expected


def test_steady_attributes_fast_path_falls_back_exactly():
    cached = infer_schema_set(
        [item(sk=str(i), a=S("x"), n=N("1"), m={"M": {"k": S("v")}}) for i in range(3)], CONFIG
    )
    assert cached.observations.steady_tag(None, ("a",)) == "S"
    assert cached.observations.steady_tag(None, ("m", "k")) == "S"
    assert cached.observations.steady_tag(None, ("m",)) == "M"
    assert cached.observations.steady_tag(None, ("missing",)) is None
    items = [
        item(sk="1", a=S("y"), n=N("2"), m={"M": {"k": S("w")}}),
        item(sk="2", n=N("3"), m={"M": {"k": S("w")}}),
        item(sk="3", a={"NULL": True}, n=N("4"), m={"M": {}}),
        item(sk="4", a=N("1.5E+1"), n={"NULL": True}, m={"NULL": True}),
        item(sk="5", a=S("z"), n=N("5"), m={"M": {"k": {"NULL": True}}}),
    ]
    expected = [
        ("A", "1", "y", "w", "2"),
        ("A", "2", None, "w", "3"),
        ("A", "3", None, None, "4"),
        ("A", "4", "1.5E+1", None, None),
        ("A", "5", "z", None, "5"),
    ]
    for generate_code in (True, False):
        batch = ItemTransformer(cached, generate_code=generate_code).transform(items)
        assert batch.rows["things"] == expected
        # an unknown attribute is a misfit even when NULL (the widened schema keeps it)
        with pytest.raises(DataSchemaMismatch, match="attribute m.extra: is not in the data"):
            ItemTransformer(cached, generate_code=generate_code).transform(
                [item(sk="5", a=S("z"), n=N("5"), m={"M": {"k": S("v"), "extra": {"NULL": True}}})]
            )
    with pytest.raises(
        DataSchemaMismatch, match="attribute m: S value where the data-schema has a map"
    ):
        ItemTransformer(cached).transform([item(a=S("x"), n=N("1"), m=S("flat"))])
    with pytest.raises(DataSchemaMismatch, match="attribute n: S value 'x' does not fit bigint"):
        ItemTransformer(cached).transform([item(a=S("x"), n=S("x"), m={"M": {"k": S("v")}})])
