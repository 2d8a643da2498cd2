"""Thin, typed Dagster resources. Endpoints come from the environment; secrets through EnvVar."""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar

from .aws_client import (
    AwsAddress,
    AwsConfigurationError,
    AwsResourceError,
    naming_aws_settings,
)
from .dynamodb import DynamoDBResource
from .glue import CatalogResource, NotificationResource
from .pg_tools import PgToolsResource
from .s3 import ObjectStoreResource
from .source_postgres import SourcePostgresResource
from .sqs import QueueResource
from .warehouse import ObjectSettings, WarehouseResource

__all__ = [
    "AwsAddress",
    "AwsConfigurationError",
    "AwsResourceError",
    "CatalogResource",
    "DynamoDBResource",
    "NotificationResource",
    "ObjectSettings",
    "ObjectStoreResource",
    "PgToolsResource",
    "QueueResource",
    "SourcePostgresResource",
    "WarehouseResource",
    "naming_aws_settings",
    "platform_resources",
]


def platform_resources() -> dict[str, Any]:
    """The resources every pipeline component expects, configured from the environment.

    ``ETL_WAREHOUSE_DSN`` (secret, read at run time), ``ETL_WAREHOUSE_DIALECT`` (`postgres` or
    `redshift`, checked now), ``ETL_REDSHIFT_IAM_ROLE``, ``ETL_SOURCE_DSN`` (the lake's
    source database, secret, read at run time); AWS through boto3's own variables.
    """
    return {
        "dynamodb": DynamoDBResource(),
        "s3": ObjectStoreResource(),
        "sqs": QueueResource(),
        "glue": CatalogResource(),
        "sns": NotificationResource(),
        "warehouse": WarehouseResource(
            dsn=EnvVar("ETL_WAREHOUSE_DSN"),
            dialect=os.environ.get("ETL_WAREHOUSE_DIALECT", "postgres"),
            iam_role_arn=os.environ.get("ETL_REDSHIFT_IAM_ROLE"),
        ),
        "pg_tools": PgToolsResource(bin_dir=os.environ.get("ETL_PG_BIN_DIR")),
        "source_postgres": SourcePostgresResource(),
    }
