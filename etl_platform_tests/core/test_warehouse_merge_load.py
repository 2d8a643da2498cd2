"""Micro-batch merge SQL for both dialects, without a server; Redshift parsed by sqlglot.

The PostgreSQL statements run for real in
``etl_platform_tests/integration/test_microbatch_merge_sql.py``.
"""

from __future__ import annotations

import pytest
import sqlglot
from psycopg import sql

from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec
from etl_platform.core.warehouse import Dialect
from etl_platform.core.warehouse import merge_load as m
from etl_platform.core.warehouse.merge_upsert import upsert_statement

PG, RS = Dialect.POSTGRES, Dialect.REDSHIFT
COLS = ["id", "region", "updated_at", "amount", "is_deleted"]
KEYS = m.MergeKeys(("id", "region"), "updated_at", "is_deleted")


def text(s: sql.Composable) -> str:
    return s.as_string(None)


def all_statements(dialect: Dialect) -> list[str]:
    spec = TableSpec(
        "orders",
        tuple(
            ColumnSpec(n, k)
            for n, k in zip(
                COLS,
                [
                    ColumnKind.BIGINT,
                    ColumnKind.TEXT,
                    ColumnKind.TIMESTAMPTZ,
                    ColumnKind.DECIMAL,
                    ColumnKind.BOOLEAN,
                ],
                strict=True,
            )
        ),
        ("id", "region"),
    )
    out = [text(s) for s in m.create_target_if_missing(dialect, "sales", spec)]
    out += [text(s) for s in m.begin_load(dialect, "sales", "orders")]
    out += [text(s) for s in m.create_stage(dialect, "sales", "orders")]
    if dialect is RS:
        out.append(text(m.number_stage_file(RS, 3)))
    out += [text(s) for _, s in m.merge_statements(dialect, "sales", "orders", COLS, KEYS)]
    out.append(text(m.append_statement(dialect, "sales", "orders", COLS)))
    out.append(text(m.count_query(m.BATCH_TABLE)))
    return out


def test_redshift_statements_parse_with_sqlglot():
    statements = all_statements(RS)
    assert statements
    for statement in statements:
        parsed = sqlglot.parse_one(statement, read="redshift")
        assert not isinstance(parsed, sqlglot.exp.Command), statement  # really understood
        assert not any("ON COMMIT" in s or "LOCK" in s for s in [statement])


def test_postgres_statements_parse_with_sqlglot():
    for statement in all_statements(PG):
        if statement.startswith(("SET TRANSACTION", "LOCK TABLE", "ALTER TABLE")):
            continue  # sqlglot reads these as opaque commands
        assert sqlglot.parse_one(statement, read="postgres") is not None, statement


def test_merge_order_and_semantics_in_text():
    actions = m.merge_statements(PG, "sales", "orders", COLS, KEYS)
    assert [a for a, _ in actions] == ["batch", "drop_older", "delete", "replace", "insert"]
    batch, older, delete, replace, insert = (text(s) for _, s in actions)
    assert 'ORDER BY s."updated_at" DESC NULLS LAST, s."__etl_load_order" DESC' in batch
    assert 'PARTITION BY "s"."id", "s"."region"' in batch
    assert 't."updated_at" IS NOT NULL AND ("__etl_mb_batch"."updated_at" IS NULL OR' in older
    assert '"__etl_mb_batch"."is_deleted" IS TRUE' in delete
    assert replace.startswith('DELETE FROM "sales"."orders" USING "__etl_mb_batch" WHERE')
    assert insert.endswith('FROM "__etl_mb_batch" WHERE "is_deleted" IS NOT TRUE')
    no_flag = m.merge_statements(PG, "sales", "orders", COLS, m.MergeKeys(("id",), "updated_at"))
    assert [a for a, _ in no_flag] == ["batch", "drop_older", "replace", "insert"]


def test_postgres_loads_lock_and_number_rows():
    begin = [text(s) for s in m.begin_load(PG, "sales", "orders")]
    assert begin == [
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        'LOCK TABLE "sales"."orders" IN SHARE UPDATE EXCLUSIVE MODE',
    ]
    assert m.begin_load(RS, "sales", "orders") == []
    assert "GENERATED ALWAYS AS IDENTITY" in text(m.create_stage(PG, "s", "t")[-1])
    with pytest.raises(ValueError, match="identity"):
        m.number_stage_file(PG, 1)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (m.MergeKeys((), "updated_at"), "at least one column"),
        (m.MergeKeys(("nope",), "updated_at"), "'nope' is not in"),
        (m.MergeKeys(("id",), "id"), "is in the key"),
        (m.MergeKeys(("id",), "updated_at", "updated_at"), "reused"),
    ],
)
def test_bad_merge_settings_name_table_and_column(keys, message):
    with pytest.raises(ValueError, match=message) as info:
        m.merge_statements(PG, "sales", "orders", COLS, keys)
    assert "sales.orders" in str(info.value)


def test_reserved_column_names_are_refused():
    with pytest.raises(ValueError, match="reserved"):
        m.append_statement(PG, "s", "t", ["id", m.LOAD_ORDER_COLUMN])
    with pytest.raises(ValueError, match="own tables"):
        m.count_query("orders")


def test_columns_query_folds_case_on_redshift():
    redshift = text(m.columns_query(RS, "Sales", "Orders", ["id"]))
    assert "n.nspname = 'sales' AND c.relname = 'orders'" in redshift
    assert "pg_index" not in redshift  # no ON CONFLICT there: the probe is not asked
    assert not isinstance(sqlglot.parse_one(redshift, read="redshift"), sqlglot.exp.Command)
    postgres = text(m.columns_query(PG, "Sales", "Orders", ["region", "id"]))
    assert "n.nspname = 'Sales' AND c.relname = 'Orders'" in postgres
    assert "ARRAY['id', 'region']::text[]" in postgres


def test_upsert_without_delete_flag_has_no_delete_part():
    keys = m.MergeKeys(("id", "region"), "updated_at")
    statement = text(upsert_statement("sales", "orders", COLS, keys))
    assert "DELETE" not in statement and "del AS" not in statement
    assert statement.count("FROM src") == 2  # the insert, and one pass for the counts
    assert statement.count('"sales"."orders"') == 1  # no lookup in the target besides the upsert
    flagged = text(upsert_statement("sales", "orders", COLS, KEYS))
    assert 'del AS (DELETE FROM "sales"."orders"' in flagged
    assert 'FROM src WHERE src."is_deleted" IS NOT TRUE ON CONFLICT' in flagged
    for one in (statement, flagged):
        assert sqlglot.parse_one(one, read="postgres") is not None


def test_a_winning_delete_older_than_the_stored_row_counts_as_dropped_older_on_every_path():
    """Both merges count the same rows as ``drop_older``: the winners older than their stored
    row, delete rows included (the integration test runs both on PostgreSQL)."""
    older = 't."updated_at" IS NOT NULL AND ({0}"updated_at" IS NULL OR {0}"updated_at" < '
    for dialect in (PG, RS):
        actions = dict(m.merge_statements(dialect, "sales", "orders", COLS, KEYS))
        drop_older = text(actions["drop_older"])
        assert "is_deleted" not in drop_older  # flagged or not, an older winner is dropped
        assert older.format('"__etl_mb_batch".') in drop_older
    flagged = text(upsert_statement("sales", "orders", COLS, KEYS))
    counted = flagged[flagged.index("SELECT n.batch") :]
    assert (
        'n.kept - u.inserted - u.replaced + (SELECT count(*) FROM src JOIN "sales"."orders" AS t '
        'ON t."id" = src."id" AND t."region" = src."region" WHERE src."is_deleted" IS TRUE AND '
        + older.format("src.")
    ) in counted
    no_flag = upsert_statement("sales", "orders", COLS, m.MergeKeys(("id",), "updated_at"))
    for statement, targets in ((flagged, 3), (text(no_flag), 1)):  # del, upsert, the lookup
        parsed = sqlglot.parse_one(statement, read="postgres")
        tables = [t for t in parsed.find_all(sqlglot.exp.Table) if t.name == "orders"]
        assert len(tables) == targets
