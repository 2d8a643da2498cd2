"""Thin, typed Dagster resources. Endpoints come from the environment; secrets through EnvVar."""

from __future__ import annotations

import os
from typing import Any

from etl_platform.lazy_exports import lazy_exports

_EXPORTS = {
    "AwsAddress": ".aws_client",
    "AwsConfigurationError": ".aws_client",
    "AwsResourceError": ".aws_client",
    "GlueAddress": ".aws_client",
    "naming_aws_settings": ".aws_client",
    "DynamoDBResource": ".dynamodb",
    "CatalogResource": ".glue",
    "GlueSettings": ".glue",
    "NotificationResource": ".glue",
    "PgToolsResource": ".pg_tools",
    "ObjectStoreResource": ".s3",
    "SourcePostgresResource": ".source_postgres",
    "QueueResource": ".sqs",
    "ObjectSettings": ".warehouse",
    "WarehouseResource": ".warehouse",
}
__all__ = sorted([*_EXPORTS, "platform_resources"])
# Members load on first use: a module under this package (the lake's source database, say) then
# imports without Dagster and the other resources.
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


def platform_resources() -> dict[str, Any]:
    """The resources every pipeline component expects, configured from the environment.

    ``ETL_WAREHOUSE_DSN`` (secret, read at run time), ``ETL_WAREHOUSE_DIALECT`` (`postgres` or
    `redshift`, checked now), ``ETL_REDSHIFT_IAM_ROLE``, ``ETL_SOURCE_DSN`` (the lake's
    source database, secret, read at run time); AWS through boto3's own variables.
    """
    from dagster import EnvVar

    from .dynamodb import DynamoDBResource
    from .glue import CatalogResource, NotificationResource
    from .pg_tools import PgToolsResource
    from .s3 import ObjectStoreResource
    from .source_postgres import SourcePostgresResource
    from .sqs import QueueResource
    from .warehouse import WarehouseResource

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
