"""Errors that need I/O name the resource and the setting (issue 8 point 14): a run against a
bucket, key, table or queue that does not exist says which one and which setting holds it,
and fails at once (terminal, never retried)."""

from __future__ import annotations

import io
import re
from datetime import datetime

import boto3
import botocore.exceptions
import dagster as dg
import pytest
from psycopg.conninfo import make_conninfo

from etl_platform.components.postgres_dump.dump import DumpSettings, take_dump
from etl_platform.components.postgres_dump.dump_objects import (
    DumpLocation,
    download_files,
    upload_archive,
)
from etl_platform.core.dsn import redact_dsn
from etl_platform.core.retry import classify
from etl_platform.resources import (
    CatalogResource,
    GlueSettings,
    ObjectSettings,
    ObjectStoreResource,
    PgToolsResource,
    QueueResource,
    WarehouseResource,
)
from etl_platform.resources.aws_client import AwsResourceError, GlueAddress, naming_aws_settings
from etl_platform.resources.pg_tools import PgToolError

from .dynamo_pipeline import Pipeline, entity_items, failure_text, make_component, make_table
from .microbatch_world import MicrobatchWorld
from .test_lake_atomic_day import PARTITION, seed
from .test_lake_component import component as lake_component
from .test_lake_component import lake
from .test_lake_component import materialize as lake_materialize

__all__ = ["lake"]  # the fixture, imported for the lake test below


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _failed_once(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    events = [e.event_type for e in result.all_events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events
    assert events.count(dg.DagsterEventType.STEP_START) == 1
    return failure_text(result)


def test_a_missing_schema_cache_bucket_is_named_with_its_setting(
    local_stack, instance, unique_name
):
    make_table(unique_name, entity_items(5))
    missing = f"{unique_name}-nocache"
    component = make_component(unique_name, schema_cache_bucket=missing)
    result = Pipeline(component, instance).materialize("data_schemas", raise_on_error=False)
    message = _failed_once(result)
    assert f"schema_cache_bucket {missing!r}: no such bucket" in message


def test_a_missing_dynamodb_table_is_named_with_its_setting(local_stack, instance, unique_name):
    component = make_component(unique_name)  # no table made
    result = Pipeline(component, instance).materialize("data_schemas", raise_on_error=False)
    message = _failed_once(result)
    assert f"table_name {unique_name!r}: no such DynamoDB table" in message


def test_create_buckets_creates_both_buckets(local_stack, instance, unique_name):
    make_table(unique_name, entity_items(5))
    data, cache = f"{unique_name}-newdata", f"{unique_name}-newcache"
    component = make_component(
        unique_name, data_bucket=data, schema_cache_bucket=cache, create_buckets=True
    )
    assert Pipeline(component, instance).materialize("data_schemas").success
    s3 = boto3.client("s3")
    for bucket in (data, cache):
        s3.head_bucket(Bucket=bucket)
    assert s3.list_objects_v2(Bucket=cache)["KeyCount"] > 0


def test_create_buckets_is_off_by_default(local_stack, unique_name):
    component = make_component(unique_name)
    assert component.create_buckets is False


def test_a_missing_queue_is_named_with_its_setting(local_stack, unique_name):
    with pytest.raises(AwsResourceError) as error:
        QueueResource().queue_url(f"{unique_name}-gone", setting="queue_name")
    assert f"queue_name '{unique_name}-gone': no such SQS queue" in str(error.value)
    assert classify(error.value) == "terminal"


def test_s3_errors_name_the_bucket_key_and_setting(local_stack, unique_name):
    store = ObjectStoreResource()
    missing = f"{unique_name}-gone"
    with pytest.raises(AwsResourceError) as error:
        store.get_bytes(missing, "a/b.json", setting="schema_cache_bucket")
    assert f"schema_cache_bucket {missing!r}: no such bucket" in str(error.value)
    assert classify(error.value) == "terminal"
    # Without a setting the bucket is still named.
    with pytest.raises(AwsResourceError, match=f"s3 bucket {missing!r}: no such bucket"):
        store.put_bytes(b"x", missing, "k")
    # A key that must exist: named with its URI.
    boto3.client("s3").create_bucket(Bucket=unique_name)
    with pytest.raises(AwsResourceError) as error:
        store.open_stream(unique_name, "no/such.csv.gz", setting="data_bucket")
    assert f"data_bucket {unique_name!r}: no such key s3://{unique_name}/no/such.csv.gz" in str(
        error.value
    )
    assert classify(error.value) == "terminal"
    # A managed download HEADs first (no error body): the key is named, the bucket hinted.
    with pytest.raises(AwsResourceError) as error:
        store.download_to(unique_name, "no/such.dat", io.BytesIO(), setting="load_bucket")
    assert f"load_bucket {unique_name!r}: no such key s3://{unique_name}/no/such.dat" in str(
        error.value
    )
    # A key that may be missing still reads as None.
    assert store.get_bytes(unique_name, "absent", setting="data_bucket") is None


def test_a_dump_upload_to_a_missing_bucket_names_its_setting(local_stack, unique_name, tmp_path):
    (tmp_path / "toc.dat").write_bytes(b"x")
    where = DumpLocation(f"{unique_name}-gone", "raw", "d1", "extract_bucket")
    with pytest.raises(AwsResourceError) as error:
        upload_archive(ObjectStoreResource(), tmp_path, where, {})
    assert f"extract_bucket '{unique_name}-gone': no such bucket" in str(error.value)
    assert classify(error.value) == "terminal"


def test_a_dump_download_of_a_missing_file_names_the_key_and_setting(
    local_stack, unique_name, tmp_path
):
    store = ObjectStoreResource()
    store.ensure_bucket(unique_name)
    where = DumpLocation(unique_name, "clean", "d1", "load_bucket")
    with pytest.raises(AwsResourceError) as error:
        download_files(store, where, ["toc.dat"], tmp_path)
    message = str(error.value)
    assert f"load_bucket '{unique_name}'" in message
    assert f"s3://{unique_name}/clean/d1/toc.dat" in message


# -- the warehouse's reads of S3, pg_dump, the micro-batch loader -----------------------------


def test_a_redshift_load_of_a_missing_object_names_it_and_its_setting(local_stack, unique_name):
    boto3.client("s3").create_bucket(Bucket=unique_name)
    warehouse = WarehouseResource(
        dsn="postgresql://unused", dialect="redshift", iam_role_arn="arn:aws:iam::1:role/r"
    )
    uri = f"s3://{unique_name}/extract/t.csv.gz"
    with pytest.raises(AwsResourceError) as error:
        warehouse.load_csv_objects(
            None,  # type: ignore[arg-type]  # the object's size is read before any SQL
            "s",
            "t",
            ["a"],
            [uri],
            ObjectStoreResource(),
            f"s3://{unique_name}-gone/copy.manifest",
            settings=ObjectSettings(objects="data_bucket", manifest="data_bucket"),
        )
    assert f"data_bucket {unique_name!r}: no such key {uri}" in str(error.value)
    assert classify(error.value) == "terminal"


def test_a_failed_pg_dump_names_the_dsn_setting_never_the_dsn(
    local_stack, stack_state, unique_name, monkeypatch
):
    dsn = make_conninfo(stack_state.dsn(f"{unique_name}_gone"), password="s3cret-pw")
    monkeypatch.setenv("ETL_TEST_DUMP_SOURCE", dsn)
    settings = DumpSettings("ETL_TEST_DUMP_SOURCE", unique_name, "raw")
    with pytest.raises(PgToolError) as error:
        take_dump(settings, ObjectStoreResource(), PgToolsResource(), "d1")
    message = str(error.value)
    assert "pg_dump of the database in source_dsn_env 'ETL_TEST_DUMP_SOURCE' failed" in message
    assert f"{unique_name}_gone" in message  # pg_dump's own reason: no such database
    assert "s3cret-pw" not in message and redact_dsn(dsn) not in message


def test_a_pg_dump_or_restore_with_a_missing_bucket_names_its_setting(
    local_stack, fresh_database, unique_name
):
    gone = f"{unique_name}-gone"
    tools, store = PgToolsResource(), ObjectStoreResource()
    where = {"setting": "source_dsn_env 'SRC'", "bucket_setting": "extract_bucket"}
    with pytest.raises(AwsResourceError) as error:
        tools.dump_to_s3(fresh_database, store, gone, "raw/d1.pgc", **where)
    assert f"extract_bucket {gone!r}: no such bucket" in str(error.value)
    assert classify(error.value) == "terminal"
    where = {"setting": "target_dsn_env 'DST'", "bucket_setting": "clean_bucket"}
    with pytest.raises(AwsResourceError) as error:
        tools.restore_from_s3(fresh_database, store, gone, "clean/d1.pgc", **where)
    assert f"clean_bucket {gone!r}: no such bucket" in str(error.value)
    assert classify(error.value) == "terminal"


@pytest.fixture
def microbatch(local_stack, fresh_database, unique_name, instance):
    return MicrobatchWorld(unique_name, fresh_database, instance)


def test_a_missing_microbatch_queue_is_named_with_its_setting(microbatch):
    gone = f"{microbatch.name}-gone"
    component = microbatch.make_component(microbatch.component.instance, "mb.items", queue=gone)
    with pytest.raises(Exception, match=f"(?<!sqs )queue {gone!r}: no such SQS queue"):
        microbatch.tick(microbatch.definitions(component))


def test_a_missing_manifest_bucket_is_named_with_its_setting(microbatch):
    microbatch.put("orders/2026/11/20/a.csv.gz", [(1, "eu", None, "a", False)])
    gone = f"{microbatch.name}-gone"
    component = microbatch.make_component(
        microbatch.component.instance, "mb.items", manifest_bucket=gone
    )
    with pytest.raises(Exception, match=f"manifest_bucket {gone!r}: no such bucket"):
        microbatch.tick(microbatch.definitions(component))


def test_a_microbatch_file_gone_before_its_load_is_named_with_its_setting(microbatch):
    key = "orders/2026/11/20/a.csv.gz"
    microbatch.put(key, [(1, "eu", None, "a", False)])
    [request] = microbatch.tick()
    boto3.client("s3").delete_object(Bucket=microbatch.bucket, Key=key)
    result = microbatch.run(request)
    message = _failed_once(result)
    uri = f"s3://{microbatch.bucket}/{key}"
    assert f"source_bucket {microbatch.bucket!r}: no such key {uri}" in message


def test_a_bulk_load_from_a_missing_source_bucket_names_its_setting(microbatch):
    gone = f"{microbatch.name}-gone"
    component = microbatch.make_component(f"{microbatch.name}_b", "mb.items", source_bucket=gone)
    job = microbatch.definitions(component).resolve_job_def(f"{component.instance}_load")
    day = datetime(2026, 11, 20).date().isoformat()
    result = job.execute_in_process(
        partition_key=day, instance=microbatch.instance, raise_on_error=False
    )
    message = _failed_once(result)
    assert f"source_bucket {gone!r}: no such bucket" in message


def test_a_lake_table_column_or_bucket_that_does_not_exist_is_named_with_its_setting(lake):
    seed(lake["dsn"], range(3))
    daily = {"name": "daily", "date_column": "created_at"}

    def failure(tables: list[dict], table: str, **kw: str) -> str:
        c = lake_component(lake, tables, **kw)
        instance = dg.DagsterInstance.ephemeral()
        return _failed_once(
            lake_materialize(c, table, instance, partition=PARTITION, raise_on_error=False)
        )

    message = failure([daily, {"name": "daily", "date_column": "nope", "lake_name": "d2"}], "d2")
    assert "no date column 'nope'" in message
    assert "(setting lake t, tables[1].date_column)" in message
    message = failure([{**daily, "columns": ["id", "gone"]}], "daily")
    assert "no column 'gone'" in message and "(setting lake t, tables[0].columns)" in message
    message = failure([{"name": "public.gone", "date_column": "created_at"}], "gone")
    assert "table public.gone not found" in message
    assert "(setting lake t, tables[0].name)" in message
    gone = f"{lake['bucket']}-gone"
    message = failure([daily], "daily", bucket=gone)
    assert f"bucket {gone!r}: no such bucket" in message


# -- Glue: the lake's database and table names come from the component's settings ------------

LAKE_GLUE = GlueSettings("glue_database", "tables[0].lake_name")
EVENTS_TABLE = {
    "Name": "events",
    "StorageDescriptor": {
        "Columns": [{"Name": "id", "Type": "bigint"}],
        "Location": "s3://lake/events/",
    },
    "PartitionKeys": [{"Name": "day", "Type": "string"}],
    "TableType": "EXTERNAL_TABLE",
}
EVENTS_DAY = {
    "Values": ["2024-01-02"],
    "StorageDescriptor": {**EVENTS_TABLE["StorageDescriptor"], "Location": "s3://lake/e/d/"},
}


def test_a_missing_glue_database_is_named_with_its_setting(local_stack, unique_name):
    gone = f"db_{unique_name}_gone"
    with pytest.raises(AwsResourceError) as error:
        CatalogResource().ensure_table(gone, EVENTS_TABLE, settings=LAKE_GLUE)
    assert f"glue_database {gone!r}: no such Glue database" in str(error.value)
    assert classify(error.value) == "terminal"
    with pytest.raises(AwsResourceError, match=f"glue_database {gone!r}: no such Glue database"):
        CatalogResource().ensure_partition(gone, "events", EVENTS_DAY, settings=LAKE_GLUE)


def test_a_missing_glue_table_is_named_with_its_setting(local_stack, unique_name):
    database = f"db_{unique_name}"
    catalog = CatalogResource()
    catalog.ensure_database(database, settings=LAKE_GLUE)
    named = f"tables[0].lake_name 'events' in glue_database {database!r}"
    with pytest.raises(AwsResourceError) as error:
        catalog.ensure_partition(database, "events", EVENTS_DAY, settings=LAKE_GLUE)
    assert f"{named}: no such Glue table {database}.events" in str(error.value)
    assert classify(error.value) == "terminal"
    with pytest.raises(AwsResourceError, match=re.escape(f"{named}: no such Glue table")):
        catalog.list_partition_values(database, "events", settings=LAKE_GLUE)
    # Without settings the database and table are still named.
    with pytest.raises(
        AwsResourceError, match=f"glue table 'events' in glue database {database!r}"
    ):
        catalog.list_partition_values(database, "events")
    # A day never exported (no table yet) still reads as no partition.
    assert catalog.get_partition(database, "events", ["2024-01-02"], settings=LAKE_GLUE) is None


def _glue_error(code: str, message: str, status: int) -> botocore.exceptions.ClientError:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return botocore.exceptions.ClientError(response, "CreatePartition")  # type: ignore[arg-type]


def test_any_other_glue_client_error_names_the_database_table_and_settings():
    address = GlueAddress("db", "events", "glue_database", "tables[0].lake_name")
    denied = _glue_error("AccessDeniedException", "User u is not authorized", 400)
    with pytest.raises(AwsResourceError) as error:
        with naming_aws_settings("glue partition", None, address):
            raise denied
    assert str(error.value).startswith(
        "tables[0].lake_name 'events' in glue_database 'db': User u is not authorized"
    )
    assert classify(error.value) == "terminal"
    # Named, and still retried: the retry policy reads the error it wraps.
    with pytest.raises(AwsResourceError, match="glue_database 'db'") as error:
        with naming_aws_settings("glue partition", None, address):
            raise _glue_error("ThrottlingException", "Rate exceeded", 400)
    assert classify(error.value) == "transient"


def test_the_lake_names_the_settings_of_its_glue_database_and_tables(lake):
    c = lake_component(
        lake,
        [
            {"name": "daily", "date_column": "created_at"},
            {"name": "public.other", "date_column": "d", "lake_name": "o2"},
        ],
    )
    assert c.glue_settings(c.tables[0]) == GlueSettings("glue_database", "tables[0].name")
    assert c.glue_settings(c.tables[1]) == GlueSettings("glue_database", "tables[1].lake_name")
