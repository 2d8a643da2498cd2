"""Every statement the warehouse builders emit for Redshift parses with sqlglot's Redshift
dialect (Redshift SQL cannot run here; dlt checks its SQL the same way with sqlfluff).

Each statement must parse as exactly one expression of the expected kind. sqlglot falls back to
a generic ``Command`` for syntax it does not model; that fallback is accepted only for the
constructs listed in ``UNMODELLED`` below, each with the reason, and is otherwise a failure.
The exact text of each statement is asserted in ``test_warehouse_sql.py``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlglot
from psycopg import sql
from sqlglot import exp

from etl_platform.core import warehouse as w
from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec
from etl_platform.core.warehouse import Dialect, LoadMethod, RedshiftNulls

RS = Dialect.REDSHIFT
NULL_MARKER = {RedshiftNulls.NUL_BYTE: "\x00", RedshiftNulls.EMPTY_AS_NULL: ""}
ROLE = "arn:aws:iam::123456789012:role/redshift-load"

#: Statement prefixes sqlglot 30 parses only as a generic ``Command`` (valid Redshift, checked
#: against the AWS SQL reference; sqlglot has no model for them):
UNMODELLED = {
    # ALTER SCHEMA name RENAME TO new_name:
    # https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_SCHEMA.html
    "ALTER SCHEMA": "sqlglot models ALTER TABLE/VIEW only, not ALTER SCHEMA ... RENAME TO",
    # LOCK [ TABLE ] table_name: https://docs.aws.amazon.com/redshift/latest/dg/r_LOCK.html
    "LOCK TABLE": "sqlglot has no LOCK statement",
    # GRANT { SELECT | ... } ON ALL TABLES IN SCHEMA schema_name TO ROLE role_name:
    # https://docs.aws.amazon.com/redshift/latest/dg/r_GRANT.html
    "GRANT": "sqlglot models GRANT ... ON <object>, not ON ALL TABLES IN SCHEMA",
}

KINDS = TableSpec(
    "orders",
    (
        ColumnSpec("id", ColumnKind.BIGINT),
        ColumnSpec("updated_at", ColumnKind.TIMESTAMPTZ),
        ColumnSpec("amount", ColumnKind.DECIMAL, precision=12, scale=2),
        ColumnSpec("wide", ColumnKind.DECIMAL, precision=50, scale=2),
        ColumnSpec("free", ColumnKind.DECIMAL),
        ColumnSpec("doc", ColumnKind.JSON),
        ColumnSpec("blob", ColumnKind.BINARY),
        ColumnSpec("flag", ColumnKind.BOOLEAN),
        ColumnSpec("name", ColumnKind.TEXT, nullable=False),
    ),
    primary_key=("id",),
)
ITEMS = TableSpec(
    "orders__items",
    (ColumnSpec("_parent_id", ColumnKind.BIGINT), ColumnSpec("sku", ColumnKind.TEXT)),
    primary_key=("_parent_id", "sku"),
)
#: a segment staged with an older, narrower data-schema: every widening the centralize casts
NARROW = TableSpec(
    "orders",
    (
        ColumnSpec("id", ColumnKind.BIGINT),
        ColumnSpec("amount", ColumnKind.DECIMAL, precision=5, scale=2),
        ColumnSpec("doc", ColumnKind.TEXT),
        ColumnSpec("name", ColumnKind.TEXT, nullable=False),
    ),
    primary_key=("id",),
)


def statements() -> list[tuple[str, sql.Composable, type[exp.Expression]]]:
    """(label, statement, expected sqlglot expression) for every Redshift builder."""
    out: list[tuple[str, sql.Composable, type[exp.Expression]]] = []

    def add(label: str, items: list[sql.Composable], *kinds: type[exp.Expression]) -> None:
        assert len(items) == len(kinds), label
        out.extend(
            (f"{label}[{i}]", s, k) for i, (s, k) in enumerate(zip(items, kinds, strict=True))
        )

    # DDL
    add("create_schema", [w.create_schema(RS, "an__new")], exp.Create)
    add("recreate_owned_schema", w.recreate_owned_schema(RS, "an__new"), exp.Drop, exp.Create)
    add("create_table", w.create_table(RS, "an", KINDS), exp.Drop, exp.Create)
    add(
        "create_table keyless",
        w.create_table(RS, None, ITEMS, primary_key=False),
        exp.Drop,
        exp.Create,
    )
    add("add_primary_key", [w.add_primary_key(RS, "an", ITEMS)], exp.Alter)
    add(
        "centralize",
        w.centralize(
            RS,
            KINDS,
            ["an__staging__1", "an__staging__2", "an__staging__3"],
            "an__new",
            segment_specs={"an__staging__2": NARROW, "an__staging__3": None},
        ),
        exp.Drop,
        exp.Create,
        exp.Insert,
        exp.Insert,
    )
    # COPY
    for nulls in RedshiftNulls:
        dialect = replace(RS, csv_null=NULL_MARKER[nulls], redshift_nulls=nulls)
        for header in (False, True):
            add(
                f"redshift_copy {nulls.value} header={header}",
                [
                    w.redshift_copy(
                        "stg",
                        "orders",
                        KINDS.column_names,
                        "s3://bkt/m/manifest.json",
                        ROLE,
                        region="eu-west-1",
                        header=header,
                        dialect=dialect,
                    )
                ],
                exp.Copy,
            )
    add(
        "redshift_copy default role, no gzip",
        [w.redshift_copy("stg", "t", ["a"], "s3://bkt/m", "default", gzip=False)],
        exp.Copy,
    )
    add("last_copy_count_query", [w.last_copy_count_query()], exp.Select)
    # checks
    add("row_count_query", [w.row_count_query(RS, "an__new", "orders")], exp.Select)
    add("duplicate_key_count_query", [w.duplicate_key_count_query(RS, "n", ITEMS)], exp.Select)
    add(
        "orphan_count_query",
        [w.orphan_count_query(RS, "n", "orders__items", ["_parent_id"], "orders", ["id"])],
        exp.Select,
    )
    # publish
    add(
        "swap_statements",
        w.swap_statements(RS, "an", "an__new"),
        exp.Drop,
        exp.Create,
        exp.Command,
        exp.Command,
    )
    add(
        "rollback_statements",
        w.rollback_statements(RS, "an"),
        exp.Command,
        exp.Command,
        exp.Command,
    )
    add("dependent_views_query", [w.dependent_views_query(RS, "an__previous")], exp.Select)
    add("create_publish_marker", w.create_publish_marker(RS, "an__new"), exp.Drop, exp.Create)
    add("insert_publish_marker", [w.insert_publish_marker(RS, "an__new")], exp.Insert)
    add("publish_marker_exists_query", [w.publish_marker_exists_query(RS)], exp.Select)
    add("publish_marker_query", [w.publish_marker_query(RS, "an")], exp.Select)
    add(
        "grant_statements",
        w.grant_statements(RS, "an__new", {"reader": ["select"], "loader": ["INSERT", "DELETE"]}),
        exp.Grant,
        exp.Command,
        exp.Grant,
        exp.Command,
    )
    staged = w.staging_schema_name("an", "20261101_0001")
    add("create_staging_record", w.create_staging_record(RS, staged), exp.Create, exp.Insert)
    add("staging_record_query", [w.staging_record_query(RS, staged)], exp.Select)
    add("staging_schemas_query", [w.staging_schemas_query(RS, "an")], exp.Select)
    add("table_exists_query", [w.table_exists_query(RS)], exp.Select)
    lock_schema = w.publish_lock_schema_name("an")
    add(
        "lock_table_setup_statements",
        w.lock_table_setup_statements(RS, lock_schema),
        exp.Create,
        exp.Create,
    )
    add("lock_table_statements", w.lock_table_statements(RS, lock_schema), exp.Command)
    add("load_errors_query", [w.load_errors_query(RS)], exp.Select)
    # merge
    add(
        "merge_plan",
        w.merge_plan(
            RS, KINDS, target_schema="an", staging_schema="stg", timestamp_column="updated_at"
        ),
        exp.Create,
        exp.Delete,
        exp.Insert,
        exp.Drop,
    )
    timestamped = TableSpec(
        "t", (*ITEMS.columns, ColumnSpec("ts", ColumnKind.TIMESTAMPTZ)), ITEMS.primary_key
    )
    add(
        "merge_plan temp staging, composite key",
        w.merge_plan(
            RS,
            timestamped,
            target_schema=None,
            staging_schema=None,
            staging_table="items_batch",
            timestamp_column="ts",
        ),
        exp.Create,
        exp.Delete,
        exp.Insert,
        exp.Drop,
    )
    # session settings
    add("session_timeouts", w.session_timeouts(RS, 900_000, 60_000), exp.Set)
    add("session_timeouts local", w.session_timeouts(RS, 1000, 10, local=True), exp.Set)
    return out


STATEMENTS = statements()


@pytest.mark.parametrize(
    "label, statement, expected", STATEMENTS, ids=[label for label, _, _ in STATEMENTS]
)
def test_redshift_statement_parses(label, statement, expected):
    text = statement.as_string(None)
    parsed = sqlglot.parse(text, read="redshift")
    assert len(parsed) == 1 and parsed[0] is not None, f"{label}: {text}"
    tree = parsed[0]
    assert isinstance(tree, expected), f"{label}: {type(tree).__name__} for {text}"
    if isinstance(tree, exp.Command):
        assert any(text.startswith(prefix) for prefix in UNMODELLED), (
            f"{label}: sqlglot could not model {text!r}"
        )


def test_redshift_copy_parses_into_its_parts():
    """sqlglot models COPY's target, columns, source and credentials. Its options it reads as a
    generic list of ``name [value]`` pairs, not knowing which Redshift options take a value
    (it pairs ``GZIP MANIFEST`` and ``EMPTYASNULL MAXERROR`` as name and value, leaving ``0``
    alone), so the options are checked here
    as words against the COPY reference
    (https://docs.aws.amazon.com/redshift/latest/dg/r_COPY.html), and their exact text in
    ``test_warehouse_sql.py``."""
    text = w.redshift_copy(
        "stg", "orders", ["id", "name"], "s3://bkt/m/manifest.json", ROLE, region="eu-west-1"
    ).as_string(None)
    tree = sqlglot.parse_one(text, read="redshift")
    assert isinstance(tree, exp.Copy)
    table = tree.this.this
    assert (table.db, table.name) == ("stg", "orders")
    assert [c.name for c in tree.this.expressions] == ["id", "name"]
    assert [f.this for f in tree.args["files"]] == ["s3://bkt/m/manifest.json"]
    credentials = tree.args["credentials"]
    assert credentials.args["iam_role"].this == ROLE
    assert credentials.args["region"].this == "eu-west-1"
    words = set()
    for param in tree.args["params"]:
        for part in (param.this, param.args.get("expression")):
            if isinstance(part, exp.Var) and not part.name.isdigit():  # MAXERROR's 0 drifts
                words.add(part.name.upper())
    known = {
        "FORMAT",
        "CSV",
        "QUOTE",
        "DELIMITER",
        "GZIP",
        "MANIFEST",
        "ENCODING",
        "UTF8",
        "TIMEFORMAT",
        "EMPTYASNULL",
        "NULL",
        "COMPUPDATE",
        "STATUPDATE",
        "OFF",
        "IGNOREHEADER",
        "MAXERROR",
    }
    assert words <= known, words - known
    assert {"CSV", "MANIFEST", "GZIP", "MAXERROR"} <= words


def test_redshift_refuses_postgres_only_statements():
    with pytest.raises(ValueError, match="not how the redshift dialect loads"):
        w.copy_from_stdin("s", "t", ["a"], dialect=RS)
    with pytest.raises(ValueError, match="PostgreSQL only"):
        w.advisory_lock(RS, wait=True)
    with pytest.raises(ValueError, match="not how the postgres dialect loads"):
        w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE, dialect=Dialect.POSTGRES)
    assert RS.load_method is LoadMethod.COPY_FROM_S3_MANIFEST


def test_the_lossless_null_mode_parses_too():
    """Issue 8's Redshift default (``NULL AS '\\000'``) emits a COPY sqlglot reads as well."""
    text = w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE).as_string(None)
    assert "NULL AS '\\000'" in text
    assert isinstance(sqlglot.parse_one(text, read="redshift"), exp.Copy)
