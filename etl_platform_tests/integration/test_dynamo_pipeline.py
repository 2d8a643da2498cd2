"""The DynamoDB pipeline end to end on the local stack: real scans, S3, COPY and publish."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from .dynamo_pipeline import Pipeline, entity_items, make_component, make_table


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def test_a_date_goes_from_dynamodb_to_the_published_schema(
    local_stack, stack_env, instance, unique_name
):
    make_table(unique_name, entity_items(60, tag=None))
    pipeline = Pipeline(
        make_component(unique_name, segments=2, entity_rule={"attribute": "sk"}), instance
    )
    result = pipeline.run_date()
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {
        "row_counts_match_extract",
        "primary_keys_unique",
        "no_orphan_child_rows",
    }
    assert all(c.passed for c in checks)
    with psycopg.connect(stack_env["ETL_WAREHOUSE_DSN"]) as conn:
        tables = {
            r[0]: conn.execute(f'SELECT count(*) FROM "{unique_name}_pub"."{r[0]}"').fetchone()[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (f"{unique_name}_pub",),
            )
        }
    assert tables["_order"] == 30 and tables["_user"] == 30
    assert tables["_order__lines"] == sum(i % 3 for i in range(1, 60, 2))
    published = [
        e.event_specific_data.materialization.metadata
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ][-1]
    # two entity types, two main tables: every table in `table_schemas`, no null column schema
    assert "dagster/column_schema" not in published
    assert "_order__lines" in published["table_schemas"].value


def test_publishing_an_older_date_never_rolls_readers_back(
    local_stack, stack_env, instance, unique_name
):
    make_table(unique_name, entity_items(20, tag=None))
    pipeline = Pipeline(make_component(unique_name, segments=1), instance)
    assert pipeline.run_date("2026-11-05").success
    older = pipeline.run_date("2026-11-04", schemas=False)
    assert older.success and all(c.passed for c in older.get_asset_check_evaluations())
    materialization = [
        e.event_specific_data.materialization
        for e in older.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ][0]
    assert materialization.metadata["swapped_in"].value is False
    assert materialization.metadata["dagster/column_schema"].schema.columns  # one main table
    assert materialization.metadata["live_date"].value == "2026-11-05"
    with psycopg.connect(stack_env["ETL_WAREHOUSE_DSN"]) as conn:
        live = conn.execute(
            f'SELECT partition_date::text FROM "{unique_name}_pub"._etl_publish'
        ).fetchone()[0]
        leftover = conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (f"{unique_name}_pub__new",)
        ).fetchone()
    assert live == "2026-11-05" and leftover is None
    newer_again = pipeline.materialize("published", "2026-11-06", raise_on_error=False)
    assert not newer_again.success  # never extracted: refused, naming the missing manifest
