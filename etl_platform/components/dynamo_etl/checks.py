"""The publish step's blocking checks, run on the centralized ``<target>__new`` schema before
the swap: row counts equal what the extracts wrote, keys are unique, no orphan child rows."""

from __future__ import annotations

import dagster as dg
from psycopg import sql

from etl_platform.core import warehouse as warehouse_sql
from etl_platform.core.dynamo import ColumnRole, DataSchemaSet, DataTable
from etl_platform.resources import WarehouseResource

ROW_COUNT_CHECK = "row_counts_match_extract"
UNIQUE_KEY_CHECK = "primary_keys_unique"
ORPHAN_CHECK = "no_orphan_child_rows"

_DESCRIPTIONS = {
    ROW_COUNT_CHECK: "Every published table has exactly the rows the segment extracts wrote "
    "for it.",
    UNIQUE_KEY_CHECK: "No primary key value appears twice in a published table.",
    ORPHAN_CHECK: "Every child-table row (list elements) has its parent row.",
}


def publish_check_specs(published: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The three checks, blocking: a failed one stops the publish before the swap."""
    return [
        dg.AssetCheckSpec(name, asset=published, blocking=True, description=description)
        for name, description in _DESCRIPTIONS.items()
    ]


def evaluate(
    warehouse: WarehouseResource,
    schema_set: DataSchemaSet,
    schema: str,
    expected: dict[str, int],
) -> list[dg.AssetCheckResult]:
    """Run the checks' queries on ``schema`` (one connection) and judge them."""
    dialect = warehouse.sql_dialect
    tables = {t.name: t for t in schema_set.tables}
    with warehouse.connect() as conn:
        counts = {
            t.name: int(
                warehouse.scalar(warehouse_sql.row_count_query(dialect, schema, t.name), conn=conn)
            )
            for t in schema_set.tables
        }
        duplicates = {
            t.name: int(
                warehouse.scalar(
                    warehouse_sql.duplicate_key_count_query(dialect, schema, t.to_table_spec()),
                    conn=conn,
                )
            )
            for t in schema_set.tables
            if t.primary_key
        }
        orphans = {
            t.name: int(
                warehouse.scalar(_orphan_query(dialect, schema, t, tables[t.parent]), conn=conn)
            )
            for t in schema_set.tables
            if t.parent is not None
        }
    return judge(expected, counts, duplicates, orphans)


def judge(
    expected: dict[str, int],
    counts: dict[str, int],
    duplicates: dict[str, int],
    orphans: dict[str, int],
) -> list[dg.AssetCheckResult]:
    """The check results from the measured counts."""
    mismatched = {
        t: {"published": counts.get(t), "extracted": n}
        for t, n in expected.items()
        if counts.get(t) != n
    }
    return [
        dg.AssetCheckResult(
            check_name=ROW_COUNT_CHECK,
            passed=not mismatched,
            metadata={"rows": dg.MetadataValue.json(counts), "problems": str(mismatched)},
        ),
        dg.AssetCheckResult(
            check_name=UNIQUE_KEY_CHECK,
            passed=not any(duplicates.values()),
            metadata={
                "duplicate_keys": dg.MetadataValue.json(duplicates),
                "problems": str({t: n for t, n in duplicates.items() if n}),
            },
        ),
        dg.AssetCheckResult(
            check_name=ORPHAN_CHECK,
            passed=not any(orphans.values()),
            metadata={
                "orphan_rows": dg.MetadataValue.json(orphans),
                "problems": str({t: n for t, n in orphans.items() if n}),
            },
        ),
    ]


def _orphan_query(
    dialect: warehouse_sql.Dialect, schema: str, child: DataTable, parent: DataTable
) -> sql.Composed:
    """Rows of ``child`` whose parent-key columns match no row of ``parent``."""
    child_cols = [c.name for c in child.columns if c.role is ColumnRole.PARENT_KEY]
    parent_cols = list(parent.primary_key[: len(child_cols)])
    return warehouse_sql.orphan_count_query(
        dialect, schema, child.name, child_cols, parent.name, parent_cols
    )
