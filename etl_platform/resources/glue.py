"""Glue Data Catalog: idempotent database, table and partition registration (never MSCK)."""

from __future__ import annotations

from typing import Any

from etl_platform.core.lake import glue_table_update

from .aws_client import AwsServiceResource, naming_aws_settings


class CatalogResource(AwsServiceResource):
    """Registers lake tables and their partitions in Glue; every call can be repeated."""

    def ensure_database(self, database: str) -> None:
        glue = self.client("glue")
        with naming_aws_settings(f"glue database {database!r}", self.endpoint_url):
            try:
                glue.get_database(Name=database)
            except glue.exceptions.EntityNotFoundException:
                try:
                    glue.create_database(DatabaseInput={"Name": database})
                except glue.exceptions.AlreadyExistsException:
                    pass

    def ensure_table(self, database: str, table_input: dict[str, Any]) -> str:
        """Create the table, or update it to ``table_input`` only when its definition differs
        (parameters set by hand are kept: see ``glue_table_update``). Returns ``"created"``,
        ``"updated"`` or ``"unchanged"``."""
        glue = self.client("glue")
        name = table_input["Name"]
        with naming_aws_settings(f"glue table {database}.{name}", self.endpoint_url):
            try:
                existing = glue.get_table(DatabaseName=database, Name=name)["Table"]
            except glue.exceptions.EntityNotFoundException:
                try:
                    glue.create_table(DatabaseName=database, TableInput=table_input)
                    return "created"
                except glue.exceptions.AlreadyExistsException:
                    existing = glue.get_table(DatabaseName=database, Name=name)["Table"]
            update = glue_table_update(existing, table_input)
            if update is None:
                return "unchanged"
            glue.update_table(DatabaseName=database, TableInput=update)
            return "updated"

    def ensure_partition(self, database: str, table: str, partition_input: dict[str, Any]) -> None:
        """Add the partition, or update it in place when it is already registered."""
        glue = self.client("glue")
        values = partition_input["Values"]
        with naming_aws_settings(f"glue partition {database}.{table} {values}", self.endpoint_url):
            try:
                glue.create_partition(
                    DatabaseName=database, TableName=table, PartitionInput=partition_input
                )
            except glue.exceptions.AlreadyExistsException:
                glue.update_partition(
                    DatabaseName=database,
                    TableName=table,
                    PartitionValueList=values,
                    PartitionInput=partition_input,
                )

    def get_partition(self, database: str, table: str, values: list[str]) -> dict[str, Any] | None:
        glue = self.client("glue")
        with naming_aws_settings(f"glue partition {database}.{table} {values}", self.endpoint_url):
            try:
                return glue.get_partition(
                    DatabaseName=database, TableName=table, PartitionValues=values
                )["Partition"]
            except glue.exceptions.EntityNotFoundException:
                return None

    def list_partition_values(self, database: str, table: str) -> list[list[str]]:
        paginator = self.client("glue").get_paginator("get_partitions")
        out: list[list[str]] = []
        with naming_aws_settings(f"glue partitions of {database}.{table}", self.endpoint_url):
            for page in paginator.paginate(DatabaseName=database, TableName=table):
                out.extend(p["Values"] for p in page.get("Partitions", []))
        return sorted(out)


class NotificationResource(AwsServiceResource):
    """Publishes alerts to an SNS topic (run failures)."""

    def publish(self, topic_arn: str, subject: str, message: str) -> str:
        with naming_aws_settings(f"sns topic {topic_arn}", self.endpoint_url):
            return self.client("sns").publish(
                TopicArn=topic_arn, Subject=subject[:100], Message=message
            )["MessageId"]
