"""Bad configuration fails at load or start with a message that names the setting."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from etl_platform.resources import DynamoDBResource, ObjectStoreResource, WarehouseResource
from etl_platform.resources.aws_client import AwsConfigurationError
from etl_platform.resources.warehouse import WarehouseConfigurationError


def test_unknown_dialect_is_refused_naming_the_setting():
    with pytest.raises(Exception, match="dialect.*oracle"):
        WarehouseResource(dsn="postgresql:///x", dialect="oracle")


def test_unknown_dialect_in_the_environment_fails_at_load(monkeypatch):
    from etl_platform.resources import platform_resources

    monkeypatch.setenv("ETL_WAREHOUSE_DIALECT", "mysql")
    with pytest.raises(Exception, match="mysql"):
        platform_resources()


def test_unreachable_aws_endpoint_names_the_setting(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(AwsConfigurationError, match="AWS_ENDPOINT_URL='http://127.0.0.1:9'"):
        list(DynamoDBResource(max_attempts=1).scan_segment("t", 0, 1))
    with pytest.raises(AwsConfigurationError, match="AWS_ENDPOINT_URL"):
        ObjectStoreResource(max_attempts=1).get_bytes("etl-data", "k")


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://user:secret@127.0.0.1:9/db",
        "host=127.0.0.1 port=9 dbname=db user=user password=secret",
        "postgresql://127.0.0.1:9/db?user=user&password=secret",
    ],
)
def test_unreachable_warehouse_names_the_setting_and_never_the_password(dsn):
    warehouse = WarehouseResource(dsn=dsn)
    with pytest.raises(WarehouseConfigurationError, match="dsn") as info:
        with warehouse.connect():
            pass
    assert "secret" not in str(info.value)


def test_missing_warehouse_env_var_is_named_when_the_resource_starts(monkeypatch):
    monkeypatch.delenv("ETL_WAREHOUSE_DSN", raising=False)

    @dg.asset
    def needs_warehouse(warehouse: WarehouseResource) -> None:
        pass

    with pytest.raises(Exception, match="ETL_WAREHOUSE_DSN"):
        dg.materialize(
            [needs_warehouse],
            resources={"warehouse": WarehouseResource(dsn=dg.EnvVar("ETL_WAREHOUSE_DSN"))},
        )
    assert "ETL_WAREHOUSE_DSN" not in os.environ


LAKE_BASE = {
    "instance": "demo",
    "bucket": "lake",
    "prefix": "p",
    "source_dsn_env": "ETL_SOURCE_DSN",
    "glue_database": "db",
    "start_date": "2026-01-01",
    "tables": [{"name": "public.t", "date_column": "c"}],
}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bucket", "Lake_Bucket", "bucket 'Lake_Bucket' is not a valid S3 bucket name"),
        ("bucket", "192.168.1.1", "not formatted as an IP address"),
        ("schedule_cron", "every day", "cron string 'every day' is not a valid"),
    ],
)
def test_lake_config_errors_are_raised_at_load_naming_the_field(field, value, message):
    import pydantic

    from etl_platform.components import LakeExport

    LakeExport(**LAKE_BASE)
    with pytest.raises(pydantic.ValidationError, match=message) as raised:
        LakeExport(**{**LAKE_BASE, field: value})
    assert raised.value.errors()[0]["loc"] == (field,)
