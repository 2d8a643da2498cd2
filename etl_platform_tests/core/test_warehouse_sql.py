"""SQL text of the warehouse builders (``etl_platform.core.warehouse``) for both dialects,
without a server.

The PostgreSQL statements are also run for real in
``etl_platform_tests/integration/test_publish_sql.py``.
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from etl_platform.core import warehouse as w
from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec
from etl_platform.core.warehouse import DIALECTS, Dialect

PG, RS = Dialect.POSTGRES, Dialect.REDSHIFT


def text(composed: sql.Composable) -> str:
    return composed.as_string(None)


def texts(statements: list[sql.Composed]) -> list[str]:
    return [text(s) for s in statements]


ORDERS = TableSpec(
    name="orders",
    columns=(
        ColumnSpec("id", ColumnKind.BIGINT),
        ColumnSpec("updated_at", ColumnKind.TIMESTAMPTZ),
        ColumnSpec("amount", ColumnKind.DECIMAL, precision=12, scale=2),
        ColumnSpec("doc", ColumnKind.JSON),
        ColumnSpec("name", ColumnKind.TEXT, nullable=False),
    ),
    primary_key=("id",),
)


# ----------------------------------------------------------------------------- dialect


@pytest.mark.parametrize("value", ["postgres", "REDSHIFT", " redshift ", Dialect.POSTGRES])
def test_parse_dialect_accepts_known_values(value):
    assert w.parse_dialect(value) in set(DIALECTS.values())


def test_parse_dialect_error_names_bad_value_and_allowed_ones():
    with pytest.raises(ValueError) as info:
        w.parse_dialect("snowflake", setting="warehouse.dialect")
    message = str(info.value)
    assert "'snowflake'" in message
    assert "`warehouse.dialect`" in message
    assert "'postgres'" in message and "'redshift'" in message


def test_dialect_is_named_by_its_setting_value():
    assert w.parse_dialect("redshift") is Dialect.REDSHIFT
    assert Dialect.REDSHIFT.name == "redshift"
    assert f"{Dialect.POSTGRES}" == "postgres"
    assert repr(Dialect.REDSHIFT) == "Dialect('redshift')"
    assert list(DIALECTS) == ["postgres", "redshift"]


# ----------------------------------------------------------------------------- identifiers


def unquote_identifier(rendered: str) -> str:
    """Parse one double-quoted SQL identifier; fail if it is not exactly one."""
    assert rendered.startswith('"') and rendered.endswith('"'), rendered
    inner = rendered[1:-1]
    # every quote inside must be doubled: no lone quote can end the identifier early
    assert re.fullmatch(r'(?:[^"]|"")*', inner, flags=re.DOTALL), rendered
    return inner.replace('""', '"')


identifier_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
).filter(lambda s: len(s.encode()) <= 63)


@given(identifier_names)
@settings(max_examples=300)
def test_any_name_renders_as_exactly_one_identifier(name):
    for dialect in DIALECTS.values():
        assert unquote_identifier(text(w.identifier(dialect, name))) == name


@given(identifier_names, identifier_names)
@settings(max_examples=100)
def test_qualified_name_is_two_identifiers(schema, table):
    rendered = text(w.qualified_name(PG, schema, table))
    quoted_schema = text(sql.Identifier(schema))
    assert rendered == f"{quoted_schema}.{text(sql.Identifier(table))}"
    assert unquote_identifier(quoted_schema) == schema


@pytest.mark.parametrize(
    "name, reason",
    [("", "empty"), ("a\x00b", "NUL"), ("x" * 64, "64 bytes"), ("é" * 32, "64 bytes")],
)
def test_bad_identifiers_are_refused(name, reason):
    with pytest.raises(ValueError, match=reason):
        w.identifier(PG, name)


def test_identifier_limits_differ_per_dialect():
    assert text(w.identifier(PG, "x" * 63)) == '"' + "x" * 63 + '"'
    assert text(w.identifier(RS, "x" * 127)) == '"' + "x" * 127 + '"'
    with pytest.raises(ValueError, match="redshift allows 127"):
        w.identifier(RS, "x" * 128)


def test_unqualified_name_for_temp_tables():
    assert text(w.qualified_name(PG, None, "t")) == '"t"'


# ----------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    "column, postgres, redshift",
    [
        (ColumnSpec("c", ColumnKind.TEXT), "text", "VARCHAR(65535)"),
        (ColumnSpec("c", ColumnKind.BIGINT), "bigint", "BIGINT"),
        (ColumnSpec("c", ColumnKind.DECIMAL, 12, 2), "numeric", "NUMERIC(12,2)"),
        (ColumnSpec("c", ColumnKind.DECIMAL, 38, 0), "numeric", "NUMERIC(38,0)"),
        (ColumnSpec("c", ColumnKind.DECIMAL, 38), "numeric", "NUMERIC(38,0)"),
        (ColumnSpec("c", ColumnKind.DECIMAL, 39, 5), "numeric", "VARCHAR(65535)"),
        (ColumnSpec("c", ColumnKind.DECIMAL), "numeric", "VARCHAR(65535)"),
        (ColumnSpec("c", ColumnKind.BOOLEAN), "boolean", "BOOLEAN"),
        (ColumnSpec("c", ColumnKind.BINARY), "bytea", "VARBYTE"),
        (ColumnSpec("c", ColumnKind.TIMESTAMPTZ), "timestamptz", "TIMESTAMPTZ"),
        (ColumnSpec("c", ColumnKind.JSON), "jsonb", "SUPER"),
    ],
)
def test_column_types(column, postgres, redshift):
    assert text(w.column_type(PG, column)) == postgres
    assert text(w.column_type(RS, column)) == redshift


def test_every_kind_has_a_type_in_every_dialect():
    for kind in ColumnKind:
        for dialect in DIALECTS.values():
            assert text(w.column_type(dialect, ColumnSpec("c", kind)))


@pytest.mark.parametrize(
    "column, match",
    [
        (ColumnSpec("c", ColumnKind.TEXT, precision=3), "only for DECIMAL"),
        (ColumnSpec("c", ColumnKind.DECIMAL, None, 2), "without a precision"),
        (ColumnSpec("c", ColumnKind.DECIMAL, 0, 0), "precision must be >= 1"),
        (ColumnSpec("c", ColumnKind.DECIMAL, 5, 6), "scale must be within"),
        (ColumnSpec("c", ColumnKind.DECIMAL, 5, -1), "scale must be within"),
    ],
)
def test_bad_column_specs_are_refused(column, match):
    with pytest.raises(ValueError, match=match):
        w.column_type(PG, column)


def test_type_notes_explain_redshift_compromises():
    spec = TableSpec(
        "t",
        (
            ColumnSpec("big", ColumnKind.DECIMAL, 40, 2),
            ColumnSpec("free", ColumnKind.DECIMAL),
            ColumnSpec("exact", ColumnKind.DECIMAL, 10, 2),
            ColumnSpec("s", ColumnKind.TEXT),
            ColumnSpec("n", ColumnKind.BIGINT),
        ),
    )
    assert w.type_notes(PG, spec) == {}
    notes = w.type_notes(RS, spec)
    assert "precision 40 > 38" in notes["big"]
    assert "precision unknown" in notes["free"]
    assert "truncates" in notes["exact"]
    assert "never truncated" in notes["s"]
    assert "n" not in notes


def test_redshift_refuses_columns_that_differ_only_in_case():
    spec = TableSpec(
        "t", (ColumnSpec("userId", ColumnKind.TEXT), ColumnSpec("userid", ColumnKind.TEXT))
    )
    w.validate_table_spec(PG, spec)
    with pytest.raises(ValueError, match="folds identifiers to lower case"):
        w.validate_table_spec(RS, spec)


@pytest.mark.parametrize(
    "spec, match",
    [
        (TableSpec("t", ()), "no columns"),
        (TableSpec("t", (ColumnSpec("a", ColumnKind.TEXT),) * 2), "collide"),
        (TableSpec("t", (ColumnSpec("a", ColumnKind.TEXT),), ("b",)), "not columns"),
        (TableSpec("t", (ColumnSpec("a", ColumnKind.TEXT),), ("a", "a")), "repeats"),
    ],
)
def test_validate_table_spec(spec, match):
    with pytest.raises(ValueError, match=match):
        w.validate_table_spec(PG, spec)


# ----------------------------------------------------------------------------- schemas


def test_owned_schema_names():
    assert w.new_schema_name("an") == "an__new"
    assert w.previous_schema_name("an") == "an__previous"
    assert w.staging_schema_name("an", "2024-01-02|7") == "an__staging__2024_01_02_7"
    for name in ("an__new", "an__previous", "an__staging__2024_01_02_7", "an__swap"):
        assert w.is_owned_schema(name)
    for name in ("an", "public", "an__newer", "new", "__new"):
        assert not w.is_owned_schema(name)
    with pytest.raises(ValueError, match="no letters or digits"):
        w.staging_schema_name("an", "|-|")


def test_create_and_drop_schema():
    assert text(w.create_schema(PG, "an__new")) == 'CREATE SCHEMA IF NOT EXISTS "an__new"'
    assert text(w.drop_owned_schema(RS, "an__new")) == 'DROP SCHEMA IF EXISTS "an__new" CASCADE'


@pytest.mark.parametrize("name", ["an", "public", "analytics_new"])
def test_drop_refuses_schemas_the_platform_does_not_own(name):
    with pytest.raises(ValueError, match="not a platform-owned"):
        w.drop_owned_schema(PG, name)


# ----------------------------------------------------------------------------- tables


def test_create_table_postgres():
    assert texts(w.create_table(PG, "an", ORDERS)) == [
        'DROP TABLE IF EXISTS "an"."orders"',
        'CREATE TABLE "an"."orders" ("id" bigint NOT NULL, "updated_at" timestamptz, '
        '"amount" numeric, "doc" jsonb, "name" text NOT NULL, PRIMARY KEY ("id"))',
    ]


def test_create_table_redshift():
    assert texts(w.create_table(RS, "an", ORDERS)) == [
        'DROP TABLE IF EXISTS "an"."orders"',
        'CREATE TABLE "an"."orders" ("id" BIGINT NOT NULL, "updated_at" TIMESTAMPTZ, '
        '"amount" NUMERIC(12,2), "doc" SUPER, "name" VARCHAR(65535) NOT NULL, '
        'PRIMARY KEY ("id"))',
    ]


def test_create_table_without_key_constraint_keeps_key_columns_not_null():
    create = texts(w.create_table(PG, "s", ORDERS, primary_key=False))[1]
    assert "PRIMARY KEY" not in create
    assert '"id" bigint NOT NULL' in create
    assert "CASCADE" not in texts(w.create_table(PG, "s", ORDERS))[0]


def test_add_primary_key():
    assert text(w.add_primary_key(RS, "an", ORDERS)) == (
        'ALTER TABLE "an"."orders" ADD PRIMARY KEY ("id")'
    )
    with pytest.raises(ValueError, match="no primary key"):
        w.add_primary_key(PG, "an", TableSpec("t", (ColumnSpec("a", ColumnKind.TEXT),)))


# ----------------------------------------------------------------------------- loads


def test_copy_from_stdin_states_the_csv_contract():
    assert text(w.copy_from_stdin("stg", "orders", ["id", "name"])) == (
        'COPY "stg"."orders" ("id", "name") FROM STDIN '
        "(FORMAT csv, DELIMITER ',', QUOTE '\"', NULL '', ENCODING 'UTF8')"
    )
    assert text(w.copy_from_stdin("s", "t", ["a"], header=True)).endswith(", HEADER true)")
    with pytest.raises(ValueError, match="column list must not be empty"):
        w.copy_from_stdin("s", "t", [])


ROLE = "arn:aws:iam::123456789012:role/redshift-load"
#: Redshift as before issue 8 (empty NULL marker, EMPTYASNULL): still a valid dialect value
EMPTY_NULLS_RS = dataclasses.replace(
    w.Dialect.REDSHIFT, csv_null="", redshift_nulls=w.RedshiftNulls.EMPTY_AS_NULL
)


def test_redshift_copy_text():
    statement = w.redshift_copy(
        "stg", "orders", ["id", "name"], "s3://bucket/manifests/m.json", ROLE, region="eu-west-1"
    )
    assert text(statement) == (
        'COPY "stg"."orders" ("id", "name") FROM \'s3://bucket/manifests/m.json\' '
        f"IAM_ROLE '{ROLE}' REGION 'eu-west-1' "
        "FORMAT AS CSV QUOTE AS '\"' DELIMITER ',' GZIP MANIFEST ENCODING UTF8 "
        "TIMEFORMAT 'auto' NULL AS '\\000' COMPUPDATE OFF STATUPDATE OFF MAXERROR 0"
    )


def test_redshift_copy_variants():
    plain = text(w.redshift_copy("s", "t", ["a"], "s3://bkt/m", "default", gzip=False))
    assert "IAM_ROLE default " in plain
    assert "GZIP" not in plain and "REGION" not in plain
    lossless = text(
        w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE, nulls=w.RedshiftNulls.NUL_BYTE)
    )
    assert "NULL AS '\\000'" in lossless and "EMPTYASNULL" not in lossless
    lossy = text(w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE, dialect=EMPTY_NULLS_RS))
    assert "EMPTYASNULL" in lossy and "NULL AS" not in lossy
    with pytest.raises(ValueError, match="does not match the files"):
        w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE, nulls=w.RedshiftNulls.EMPTY_AS_NULL)
    not_staging = text(w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE, staging=False))
    assert "COMPUPDATE" not in not_staging and "STATUPDATE" not in not_staging
    chained = text(w.redshift_copy("s", "t", ["a"], "s3://bkt/m", f"{ROLE}, {ROLE}2"))
    assert f"IAM_ROLE '{ROLE},{ROLE}2'" in chained
    assert "IGNOREHEADER 1" in text(
        w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE, header=True)
    )


def test_redshift_copy_never_uses_lossy_options():
    for dialect in (w.Dialect.REDSHIFT, EMPTY_NULLS_RS):
        for header in (False, True):
            rendered = text(
                w.redshift_copy("s", "t", ["a"], "s3://bkt/m", ROLE, dialect=dialect, header=header)
            ).upper()
            for forbidden in (
                "TRUNCATECOLUMNS",
                "ACCEPTINVCHARS",
                "BLANKSASNULL",
                "TRIMBLANKS",
                "FILLRECORD",
                "ESCAPE",
                "'NAN'",
                "REMOVEQUOTES",
            ):
                assert forbidden not in rendered


@pytest.mark.parametrize(
    "url, role, region, match",
    [
        ("s3://bkt/m' CREDENTIALS 'x", ROLE, None, "not an s3://bucket/key"),
        ("s3://bkt/m\\x", ROLE, None, "not an s3://bucket/key"),
        ("https://bkt/m", ROLE, None, "not an s3://bucket/key"),
        ("s3://bkt/m", "arn:aws:iam::123:role/x", None, "not an IAM role ARN"),
        ("s3://bkt/m", f"{ROLE}' x", None, "not an IAM role ARN"),
        ("s3://bkt/m", ROLE, "eu-west-1'", "does not look like"),
    ],
)
def test_redshift_copy_refuses_values_that_could_break_out_of_literals(url, role, region, match):
    with pytest.raises(ValueError, match=match):
        w.redshift_copy("s", "t", ["a"], url, role, region=region)


def test_copy_manifest():
    manifest = w.copy_manifest([("s3://bkt/a.csv.gz", 10), ("s3://bkt/b.csv.gz", 0)])
    assert manifest == {
        "entries": [
            {"url": "s3://bkt/a.csv.gz", "mandatory": True, "meta": {"content_length": 10}},
            {"url": "s3://bkt/b.csv.gz", "mandatory": True, "meta": {"content_length": 0}},
        ]
    }
    assert json.loads(json.dumps(manifest)) == manifest


@pytest.mark.parametrize(
    "entries, match",
    [
        ([], "at least one entry"),
        ([("s3://bkt/a", 1), ("s3://bkt/a", 1)], "twice"),
        ([("s3://bkt/a", -1)], "content_length"),
        ([("s3://bkt/a", True)], "content_length"),
        ([("/local/a", 1)], "s3://"),
    ],
)
def test_copy_manifest_refusals(entries, match):
    with pytest.raises(ValueError, match=match):
        w.copy_manifest(entries)


# ----------------------------------------------------------------------------- centralize


def test_centralize_creates_exact_ddl_then_inserts_per_segment():
    statements = texts(w.centralize(PG, ORDERS, ["an__staging__1", "an__staging__2"], "an__new"))
    cols = '"id", "updated_at", "amount", "doc", "name"'
    assert statements == [
        'DROP TABLE IF EXISTS "an__new"."orders"',
        'CREATE TABLE "an__new"."orders" ("id" bigint NOT NULL, "updated_at" timestamptz, '
        '"amount" numeric, "doc" jsonb, "name" text NOT NULL)',
        f'INSERT INTO "an__new"."orders" ({cols}) SELECT {cols} FROM "an__staging__1"."orders"',
        f'INSERT INTO "an__new"."orders" ({cols}) SELECT {cols} FROM "an__staging__2"."orders"',
    ]


def test_centralize_refusals():
    with pytest.raises(ValueError, match="no segment schemas"):
        w.centralize(PG, ORDERS, [], "n")
    with pytest.raises(ValueError, match="listed twice"):
        w.centralize(PG, ORDERS, ["a", "a"], "n")


# ----------------------------------------------------------------------------- checks


def test_check_queries():
    assert text(w.row_count_query(PG, "an__new", "orders")) == (
        'SELECT count(*) FROM "an__new"."orders"'
    )
    assert text(w.duplicate_key_count_query(RS, "n", ORDERS)) == (
        'SELECT count(*) FROM (SELECT "id" FROM "n"."orders" GROUP BY "id" '
        "HAVING count(*) > 1) AS dup"
    )
    assert text(
        w.orphan_count_query(PG, "n", "orders__items", ["_parent_id"], "orders", ["id"])
    ) == (
        'SELECT count(*) FROM "n"."orders__items" AS c WHERE NOT EXISTS '
        '(SELECT 1 FROM "n"."orders" AS p WHERE "p"."id" = "c"."_parent_id")'
    )


def test_check_query_refusals():
    with pytest.raises(ValueError, match="not columns"):
        w.duplicate_key_count_query(PG, "n", ORDERS, key=["nope"])
    with pytest.raises(ValueError, match="pair up"):
        w.orphan_count_query(PG, "n", "c", ["a", "b"], "p", ["a"])
    with pytest.raises(ValueError, match="pair up"):
        w.orphan_count_query(PG, "n", "c", [], "p", [])


# ----------------------------------------------------------------------------- swap


@pytest.mark.parametrize("dialect", DIALECTS.values())
def test_swap_statements(dialect):
    assert texts(w.swap_statements(dialect, "an", "an__new")) == [
        'DROP SCHEMA IF EXISTS "an__previous" CASCADE',
        'CREATE SCHEMA IF NOT EXISTS "an"',
        'ALTER SCHEMA "an" RENAME TO "an__previous"',
        'ALTER SCHEMA "an__new" RENAME TO "an"',
    ]


@pytest.mark.parametrize("dialect", DIALECTS.values())
def test_rollback_statements(dialect):
    assert texts(w.rollback_statements(dialect, "an")) == [
        'ALTER SCHEMA "an" RENAME TO "an__swap"',
        'ALTER SCHEMA "an__previous" RENAME TO "an"',
        'ALTER SCHEMA "an__swap" RENAME TO "an__previous"',
    ]


def test_swap_refusals():
    with pytest.raises(ValueError, match="platform-owned"):
        w.swap_statements(PG, "an__new", "x")
    with pytest.raises(ValueError, match="distinct"):
        w.swap_statements(PG, "an", "an")
    with pytest.raises(ValueError, match="derived schema name"):
        w.swap_statements(PG, "p" * 60, "x")  # p*60 + "__previous" > 63 bytes
    with pytest.raises(ValueError, match="platform-owned"):
        w.swap_statements(PG, "an", "an__new", previous="kept_forever")
    with pytest.raises(ValueError, match="platform-owned"):
        w.rollback_statements(PG, "an__previous")


def test_dependent_views_query_takes_the_schema_as_a_parameter():
    rendered = text(w.dependent_views_query(PG, "an__previous"))
    assert "an__previous" not in rendered
    assert rendered.count("%s") == 1


# ----------------------------------------------------------------------------- merge


def test_merge_plan_postgres():
    statements = texts(
        w.merge_plan(
            PG, ORDERS, target_schema="an", staging_schema="stg", timestamp_column="updated_at"
        )
    )
    assert statements[0] == 'LOCK TABLE "an"."orders" IN SHARE ROW EXCLUSIVE MODE'
    assert statements[1] == (
        'CREATE TEMP TABLE "__etl_merge_batch" AS SELECT "ranked"."id", "ranked"."updated_at", '
        '"ranked"."amount", "ranked"."doc", "ranked"."name" FROM (SELECT "s"."id", '
        '"s"."updated_at", "s"."amount", "s"."doc", "s"."name", ROW_NUMBER() OVER (PARTITION BY '
        '"s"."id" ORDER BY "s"."updated_at" DESC NULLS LAST, "s"."amount" DESC NULLS LAST, '
        'CAST("s"."doc" AS text) DESC NULLS LAST, "s"."name" DESC NULLS LAST) AS '
        '"__etl_merge_rank" FROM "stg"."orders" AS s) AS ranked WHERE ranked."__etl_merge_rank" = 1'
    )
    assert statements[2] == (
        'DELETE FROM "an"."orders" USING "__etl_merge_batch" WHERE "an"."orders"."id" = '
        '"__etl_merge_batch"."id" AND ("__etl_merge_batch"."updated_at" >= '
        '"an"."orders"."updated_at" OR "an"."orders"."updated_at" IS NULL)'
    )
    assert statements[3] == (
        'INSERT INTO "an"."orders" ("id", "updated_at", "amount", "doc", "name") SELECT "b"."id", '
        '"b"."updated_at", "b"."amount", "b"."doc", "b"."name" FROM "__etl_merge_batch" AS b '
        'WHERE NOT EXISTS (SELECT 1 FROM "an"."orders" AS t WHERE "t"."id" = "b"."id")'
    )
    assert statements[4] == 'DROP TABLE "__etl_merge_batch"'
    assert len(statements) == 5


def test_merge_plan_redshift():
    statements = texts(
        w.merge_plan(
            RS,
            ORDERS,
            target_schema="an",
            staging_schema=None,
            staging_table="orders_batch",
            timestamp_column="updated_at",
            tie_break=["name"],
        )
    )
    assert len(statements) == 4  # no LOCK: Redshift is serializable, conflicts are retried
    assert not any(s.startswith("LOCK") for s in statements)
    assert (
        'ORDER BY "s"."updated_at" DESC NULLS LAST, "s"."name" DESC NULLS LAST) AS '
        '"__etl_merge_rank" FROM "orders_batch" AS s)'
    ) in statements[0]
    assert statements[1].startswith('DELETE FROM "an"."orders" USING "__etl_merge_batch" WHERE')
    json_spec = TableSpec(
        "t",
        (
            ColumnSpec("k", ColumnKind.BIGINT),
            ColumnSpec("ts", ColumnKind.TIMESTAMPTZ),
            ColumnSpec("j", ColumnKind.JSON),
        ),
        ("k",),
    )
    rendered = texts(
        w.merge_plan(RS, json_spec, target_schema="a", staging_schema="b", timestamp_column="ts")
    )[0]
    assert 'JSON_SERIALIZE("s"."j") DESC NULLS LAST' in rendered


def test_merge_plan_composite_key_and_unqualified_target():
    spec = TableSpec(
        "t",
        (
            ColumnSpec("a", ColumnKind.TEXT),
            ColumnSpec("b", ColumnKind.BIGINT),
            ColumnSpec("ts", ColumnKind.TIMESTAMPTZ),
        ),
        ("a", "b"),
    )
    statements = texts(
        w.merge_plan(PG, spec, target_schema=None, staging_schema="stg", timestamp_column="ts")
    )
    assert 'PARTITION BY "s"."a", "s"."b" ORDER BY "s"."ts" DESC NULLS LAST)' in statements[1]
    assert (
        '"t"."a" = "__etl_merge_batch"."a" AND "t"."b" = "__etl_merge_batch"."b"' in (statements[2])
    )
    assert 'WHERE "t"."a" = "b"."a" AND "t"."b" = "b"."b")' in statements[3]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"timestamp_column": "nope"}, "not columns"),
        ({"timestamp_column": "id"}, "part of the key"),
        ({"timestamp_column": "updated_at", "tie_break": ["nope"]}, "not columns"),
        ({"timestamp_column": "updated_at", "staging_schema": "an"}, "same table"),
    ],
)
def test_merge_plan_refusals(kwargs, match):
    arguments = {"target_schema": "an", "staging_schema": "stg", **kwargs}
    with pytest.raises(ValueError, match=match):
        w.merge_plan(PG, ORDERS, **arguments)


def test_merge_plan_needs_a_key_and_reserves_its_names():
    keyless = TableSpec("t", (ColumnSpec("a", ColumnKind.TEXT), ColumnSpec("ts", ColumnKind.TEXT)))
    with pytest.raises(ValueError, match="needs a primary key"):
        w.merge_plan(PG, keyless, target_schema="a", staging_schema="b", timestamp_column="ts")
    reserved = TableSpec(
        "t",
        (
            ColumnSpec("k", ColumnKind.TEXT),
            ColumnSpec("ts", ColumnKind.TEXT),
            ColumnSpec(w.MERGE_RANK_COLUMN, ColumnKind.BIGINT),
        ),
        ("k",),
    )
    with pytest.raises(ValueError, match="reserved"):
        w.merge_plan(PG, reserved, target_schema="a", staging_schema="b", timestamp_column="ts")


# ----------------------------------------------------------------------------- timeouts


def test_session_timeouts():
    assert texts(w.session_timeouts(PG, 900_000, 60_000)) == [
        "SET statement_timeout = 900000",
        "SET lock_timeout = 60000",
    ]
    assert texts(w.session_timeouts(PG, 1000, 10, local=True)) == [
        "SET LOCAL statement_timeout = 1000",
        "SET LOCAL lock_timeout = 10",
    ]
    # Redshift has no lock_timeout
    assert texts(w.session_timeouts(RS, 900_000, 60_000)) == ["SET statement_timeout = 900000"]


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_session_timeouts_refuse_non_integer_ms(bad):
    with pytest.raises(ValueError, match="milliseconds"):
        w.session_timeouts(PG, bad)


def test_advisory_lock_sql_and_stable_keys():
    from etl_platform.core.warehouse import Dialect, advisory_lock, advisory_lock_key

    assert advisory_lock_key("publish:x") == advisory_lock_key("publish:x")
    assert advisory_lock_key("publish:x") != advisory_lock_key("publish:y")
    assert -(2**63) <= advisory_lock_key("publish:x") < 2**63
    assert advisory_lock(Dialect.POSTGRES, wait=True).as_string(None) == (
        "SELECT pg_advisory_lock(%s)"
    )
    assert "pg_try_advisory_lock" in advisory_lock(Dialect.POSTGRES, wait=False).as_string(None)
    with pytest.raises(ValueError, match="PostgreSQL only"):
        advisory_lock(Dialect.REDSHIFT, wait=True)


def test_recreate_owned_schema_drops_then_creates_and_refuses_foreign_schemas():
    from etl_platform.core.warehouse import Dialect, recreate_owned_schema

    drop, create = recreate_owned_schema(Dialect.POSTGRES, "pub__new")
    assert drop.as_string(None) == 'DROP SCHEMA IF EXISTS "pub__new" CASCADE'
    assert create.as_string(None) == 'CREATE SCHEMA IF NOT EXISTS "pub__new"'
    with pytest.raises(ValueError):
        recreate_owned_schema(Dialect.POSTGRES, "public")


# -- grants and staging retention (issue 8 points 6 and 7) -----------------------------------


def test_grant_statements_grant_usage_and_table_privileges_per_role():
    text = [
        s.as_string(None)
        for s in w.grant_statements("postgres", "an__new", {"reader": ["select", "SELECT"]})
    ]
    assert text == [
        'GRANT USAGE ON SCHEMA "an__new" TO "reader"',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "an__new" TO "reader"',
    ]
    redshift = w.grant_statements("redshift", "an__new", {"reader": ["SELECT"]})
    assert redshift[1].as_string(None).endswith('TO ROLE "reader"')
    with pytest.raises(ValueError, match="'reader'.*DROP"):
        w.grant_statements("postgres", "an__new", {"reader": ["DROP"]})
    with pytest.raises(ValueError, match="Reader"):
        w.grant_statements("redshift", "an__new", {"Reader": ["SELECT"]})


def test_expired_staging_schemas_keep_the_latest_days_of_their_own_target():
    from datetime import date

    names = [
        "an__staging__20261101_0000",
        "an__staging__20261103_0001",
        "an__staging__20261104_0000",
        "an__staging__20261105_0000",
        "an__staging__20261399_0000",  # not a date
        "another__staging__20261101_0000",  # another target
        "an__previous",
    ]
    expired = w.expired_staging_schemas(names, "an", date(2026, 11, 5), keep_days=2)
    assert expired == ["an__staging__20261101_0000", "an__staging__20261103_0001"]
    assert w.staging_prefix_pattern("a_b") == "a\\_b\\_\\_staging\\_\\_%"
    with pytest.raises(ValueError, match="keep_staging_days"):
        w.expired_staging_schemas(names, "an", date(2026, 11, 5), keep_days=0)
