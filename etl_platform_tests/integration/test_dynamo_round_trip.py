"""Adversarial items through all five DynamoDB assets: every published value equals the
DynamoDB value exactly. The comparator walks each item attribute by attribute using the
data-schema's recorded attribute paths, so a renamed, truncated, re-typed or dropped value
fails the test, not just a wrong row count."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
import dagster as dg
import psycopg
import pytest
from psycopg import sql

from etl_platform.components.dynamo_etl import schema_cache
from etl_platform.core.dynamo import ColumnRole, DataSchemaSet, DataTable, entity_of
from etl_platform.core.table_spec import ColumnKind

from .dynamo_pipeline import DAY, Pipeline, make_component, make_table

NASTY_TEXT = 'line one\nline two\r\n"quoted", comma; back\\slash \\N\ttab'
LONG_TEXT = "0123456789abcdef" * (350_000 // 16)  # a ~350 KB item


def S(v: str) -> dict:
    return {"S": v}


def N(v: str) -> dict:
    return {"N": v}


def M(**kv: Any) -> dict:
    return {"M": kv}


def adversarial_items() -> list[dict[str, Any]]:
    deep = M(l1=M(l2=M(l3=M(l4=M(l5=S("five deep"), n=N("5"))))))
    return [
        {
            "pk": S("A#1"),
            "sk": S("DOC#1"),
            "text": S(NASTY_TEXT),
            "nan": S("nan"),
            "null_word": S("NULL"),
            "backslash_n": S("\\N"),
            "empty": S(""),
            "emoji_rtl": S("🚀 emoji, עברית and العربية mixed"),
            "big": N("12345678901234567890123456789012345678"),
            "neg_big": N("-99999999999999999999999999999999999999"),
            "tiny": N("1E-130"),
            "huge": N("9.9999999999999999999999999999999999999E+125"),
            "int64_edge": N("9223372036854775807"),
            "blob": {"B": bytes(range(256))},
            "flag": {"BOOL": True},
            "nothing": {"NULL": True},
            "tags": {"SS": ["zeta", "alpha", "Ωmega", "with,comma"]},
            "scores": {"NS": ["3", "-1.5", "1E+2", "12345678901234567890123456789012345678"]},
            "blobs": {"BS": [b"\x00\x01", b"\xff", b"plain"]},
            "nested": deep,
            "lines": {
                "L": [
                    M(sku=S("a-1"), qty=N("2"), note=S("multi\nline")),
                    M(sku=S("b,2"), qty=N("0.5")),
                ]
            },
            "first name": S("space"),
            "a.b": S("dot"),
            "x-y": S("dash"),
            "naïve": S("unicode name"),
            "名前": S("cjk name"),
            "Foo Bar": S("collides one"),
            "foo_bar": S("collides two"),
            "mixed": N("42"),
            "when": S("2024-02-29T23:59:59.999999+05:30"),
            # only ever NULL, empty or a map of NULLs: a trace tells them from missing
            "empty_map": {"M": {}},
            "null_map": M(inner={"NULL": True}),
            "always_empty": {"L": []},
            "null_elements": {"L": [{"NULL": True}, {"NULL": True}]},
            "2fa": S("leading digit"),
            "order": S("reserved word"),
        },
        {
            "pk": S("A#2"),
            "sk": S("DOC#2"),
            "text": S(LONG_TEXT),
            "mixed": S("forty-two"),
            "lines": {"L": [M(sku=S("c"), qty=N("1"))]},
            "when": S("2024-01-01T00:00:00Z"),
            "tags": {"SS": ["x"]},
            "nothing": {"NULL": True},
            "empty_map": {"NULL": True},
            "always_empty": {"L": []},
        },
        {
            "pk": S("A#3"),
            "sk": S("DOC#3"),
            "mixed": M(inner=N("1.10"), list={"L": [S("x"), N("2"), {"NULL": True}]}),
            "big": N("1"),
            "empty": S(""),
            "lines": {"L": []},
        },
        {"pk": S("B#1"), "sk": S("USER#1"), "name": S("user one"), "age": N("30")},
        {"pk": S("B#2"), "sk": S("USER#2"), "name": S(""), "age": N("-7"), "flag": {"BOOL": False}},
    ]


# --- the comparator ----------------------------------------------------------------------


def plain(av: dict) -> Any:
    """A wire value as plain Python with exact numbers (JSON columns are compared to this)."""
    ((tag, value),) = av.items()
    if tag == "S":
        return value
    if tag == "N":
        return Decimal(value)
    if tag == "B":
        return base64.b64encode(value).decode()
    if tag == "BOOL":
        return value
    if tag == "NULL":
        return None
    if tag == "M":
        return {k: plain(v) for k, v in value.items()}
    if tag == "L":
        return [plain(v) for v in value]
    if tag == "SS":
        return sorted(value)
    if tag == "NS":
        return sorted(Decimal(v) for v in value)
    if tag == "BS":
        return sorted(base64.b64encode(v).decode() for v in value)
    raise AssertionError(f"unknown tag {tag}")


def at_path(av: dict | None, path: tuple[str, ...]) -> dict | None:
    for part in path:
        if av is None or "M" not in av or part not in av["M"]:
            return None
        av = av["M"][part]
    return av


def assert_value(kind: ColumnKind, published: Any, av: dict | None, where: str) -> None:
    """SQL NULL for a missing attribute and (except in JSON columns, which hold JSON
    ``null``) for NULL."""
    if av is None or ("NULL" in av and kind is not ColumnKind.JSON):
        assert published is None, f"{where}: expected NULL, got {published!r}"
        return
    ((tag, value),) = av.items()
    assert published is not None, f"{where}: {tag} value {value!r:.60} published as NULL"
    if kind is ColumnKind.TEXT:
        assert tag in ("S", "N"), where
        assert published == value, f"{where}: {published!r:.80} != {value!r:.80}"
    elif kind in (ColumnKind.DECIMAL, ColumnKind.BIGINT):
        assert tag == "N", where
        assert Decimal(published) == Decimal(value), f"{where}: {published} != {value}"
    elif kind is ColumnKind.BOOLEAN:
        assert published is value, where
    elif kind is ColumnKind.BINARY:
        assert bytes(published) == value, where
    elif kind is ColumnKind.TIMESTAMPTZ:
        assert published == datetime.fromisoformat(value.replace("Z", "+00:00")), where
    elif kind is ColumnKind.JSON:
        parsed = json.loads(published, parse_float=Decimal, parse_int=Decimal)
        assert parsed == plain(av), f"{where}: {parsed!r} != {plain(av)!r}"
    else:
        raise AssertionError(f"{where}: unexpected kind {kind}")


def assert_list_length(published: Any, av: dict | None, where: str) -> None:
    """A list's element count: 0 for an empty list, NULL when missing or NULL."""
    if av is None or "NULL" in av:
        assert published is None, f"{where}: expected NULL, got {published!r}"
        return
    ((_, elements),) = av.items()
    assert published == len(elements), f"{where}: {published!r} != {len(elements)}"


def fetch(conn: psycopg.Connection, schema: str, table: DataTable) -> list[dict[str, Any]]:
    columns = [
        sql.SQL("{}::text").format(sql.Identifier(c.name))
        if c.kind is ColumnKind.JSON
        else sql.Identifier(c.name)
        for c in table.columns
    ]
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(columns), sql.Identifier(schema, table.name)
    )
    return [dict(zip(table.column_names, row, strict=True)) for row in conn.execute(query)]


def covered_paths(item: dict, schema_set: DataSchemaSet, table: DataTable) -> None:
    """Every attribute of the item lands in a column, a JSON column or a child table."""
    value_paths = {c.path for c in table.columns if c.role is not ColumnRole.INDEX}
    value_paths |= {(c.path[0],) for c in table.columns if c.role is ColumnRole.KEY}
    json_paths = {c.path for c in table.columns if c.kind is ColumnKind.JSON}
    list_paths = {t.list_path[0] for t in schema_set.tables if t.parent == table.name}

    def walk(av: dict, path: tuple[str, ...]) -> None:
        if any(path[: len(j)] == j for j in json_paths) or path in list_paths:
            return
        if "M" in av and path not in value_paths:
            for key, child in av["M"].items():
                walk(child, (*path, key))
            return
        assert path in value_paths, f"attribute {'.'.join(path)} of {item['pk']} has no column"

    for key, av in item.items():
        walk(av, (key,))


def compare(conn: psycopg.Connection, schema: str, schema_set: DataSchemaSet, items: list) -> int:
    """Assert every item's every attribute; returns the number of values compared."""
    config = schema_set.config
    compared = 0
    published = {t.name: fetch(conn, schema, t) for t in schema_set.tables}
    for item in items:
        entity = entity_of(item, config.entity_rule)
        main = schema_set.main_table(entity) or schema_set.main_table(None)
        assert main is not None, f"no table for entity {entity!r}"
        key = tuple(item[k]["S"] for k in config.key_attributes)
        rows = [r for r in published[main.name] if tuple(r[k] for k in main.primary_key) == key]
        assert len(rows) == 1, f"{key}: {len(rows)} rows in {main.name}"
        row = rows[0]
        covered_paths(item, schema_set, main)
        for column in main.columns:
            where = f"{main.name}.{column.name} of {key}"
            if column.role is ColumnRole.VALUE:
                assert_value(column.kind, row[column.name], at_path(M(**item), column.path), where)
                compared += 1
            elif column.role is ColumnRole.LIST_LENGTH:
                assert_list_length(row[column.name], at_path(M(**item), column.path), where)
                compared += 1
        for child in (t for t in schema_set.tables if t.parent == main.name):
            (list_path,) = child.list_path
            av = at_path(M(**item), list_path)
            parent_cols = [c.name for c in child.columns if c.role is ColumnRole.PARENT_KEY]
            index_col = next(c.name for c in child.columns if c.role is ColumnRole.INDEX)
            mine = sorted(
                (r for r in published[child.name] if tuple(r[c] for c in parent_cols) == key),
                key=lambda r: int(r[index_col]),
            )
            if av is None or "NULL" in av:
                assert mine == [], f"{child.name}: rows for {key} without a list"
                continue
            ((tag, elements),) = av.items()
            if tag == "L":
                expected = elements
            else:
                scalar = {"SS": "S", "NS": "N", "BS": "B"}[tag]
                expected = [{scalar: v} for v in elements]
            assert len(mine) == len(expected), f"{child.name} of {key}: element count"
            value_columns = [c for c in child.columns if c.role is ColumnRole.VALUE]
            if tag != "L":
                # sets carry no order: compare as sorted multisets of exact values
                decode = {"S": str, "N": Decimal, "B": bytes}[scalar]
                got = sorted(decode(r[value_columns[0].name]) for r in mine)
                want = sorted(decode(e[scalar]) for e in expected)
                assert got == want, f"{child.name} of {key}: {got} != {want}"
                compared += len(expected)
                continue
            for position, (element, published_row) in enumerate(zip(expected, mine, strict=True)):
                assert int(published_row[index_col]) == position
                for column in value_columns:
                    where = f"{child.name}.{column.name} of {key}[{position}]"
                    target = element if not column.path else at_path(element, column.path)
                    assert_value(column.kind, published_row[column.name], target, where)
                    compared += 1
    return compared


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def test_adversarial_items_round_trip_exactly(local_stack, stack_env, instance, unique_name):
    items = adversarial_items()
    make_table(unique_name, items)
    component = make_component(
        unique_name, segments=2, entity_rule={"attribute": "sk", "separator": "#"}
    )
    pipeline = Pipeline(component, instance)
    result = pipeline.run_date(DAY)
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())

    schema_set = schema_cache.load_latest(component, _store())
    assert schema_set is not None
    doc = schema_set.main_table("DOC")
    assert doc is not None
    # the two colliding attribute names got two distinct columns
    collided = [c for c in doc.columns if c.path in (("Foo Bar",), ("foo_bar",))]
    assert len({c.name for c in collided}) == 2
    names = {c.path: c.name for c in doc.columns if c.role is ColumnRole.VALUE}
    assert (names[("2fa",)], names[("order",)]) == ("_2fa", "_order")
    kinds = {c.path: c.kind for c in doc.columns}
    for path in (("nothing",), ("empty_map",), ("null_map", "inner")):
        assert kinds[path] is ColumnKind.JSON, path
    assert kinds[("big",)] is ColumnKind.DECIMAL
    assert kinds[("int64_edge",)] is ColumnKind.BIGINT
    assert kinds[("mixed",)] is ColumnKind.JSON
    assert kinds[("when",)] is ColumnKind.TIMESTAMPTZ
    assert kinds[("blob",)] is ColumnKind.BINARY

    with psycopg.connect(stack_env["ETL_WAREHOUSE_DSN"]) as conn:
        compared = compare(conn, component.target_schema, schema_set, items)
    assert compared > 60


def _store():
    from etl_platform.resources import ObjectStoreResource

    return ObjectStoreResource()


def test_the_comparator_catches_a_changed_value(local_stack, stack_env, instance, unique_name):
    """The comparator must fail on a single altered character (guards against a vacuous test)."""
    items = adversarial_items()[:2]
    make_table(unique_name, items)
    component = make_component(unique_name, segments=1)
    assert Pipeline(component, instance).run_date(DAY).success
    schema_set = schema_cache.load_latest(component, _store())
    with psycopg.connect(stack_env["ETL_WAREHOUSE_DSN"], autocommit=True) as conn:
        table = schema_set.main_table(None).name
        conn.execute(
            sql.SQL("UPDATE {} SET text = text || 'x' WHERE pk = 'A#1'").format(
                sql.Identifier(component.target_schema, table)
            )
        )
        with pytest.raises(AssertionError, match="text"):
            compare(conn, component.target_schema, schema_set, items)
    boto3.client("dynamodb").delete_table(TableName=unique_name)
