"""Glue Data Catalog: idempotent database, table and partition registration (never MSCK).

Every client error of a Glue call names the database and table it addressed and, where the
caller passes :class:`GlueSettings`, the settings holding their names (``glue_database 'd':
no such Glue database``)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from etl_platform.core.lake import glue_table_update

from .aws_client import AwsServiceResource, GlueAddress, naming_aws_settings


@dataclass(frozen=True)
class GlueSettings:
    """The settings holding the Glue database's and table's names (``glue_database``,
    ``tables[0].lake_name``): errors about them name the setting."""

    database: str | None = None
    table: str | None = None

    def address(self, database: str, table: str | None = None) -> GlueAddress:
        return GlueAddress(database, table, self.database, self.table)


class CatalogResource(AwsServiceResource):
    """Registers lake tables and their partitions in Glue; every call can be repeated."""

    def _naming(self, what: str, address: GlueAddress) -> AbstractContextManager[None]:
        return naming_aws_settings(f"glue {what}", self.endpoint_url, address)

    def ensure_database(self, database: str, *, settings: GlueSettings = GlueSettings()) -> None:
        glue = self.client("glue")
        with self._naming("database", settings.address(database)):
            try:
                glue.get_database(Name=database)
            except glue.exceptions.EntityNotFoundException:
                try:
                    glue.create_database(DatabaseInput={"Name": database})
                except glue.exceptions.AlreadyExistsException:
                    pass

    def ensure_table(
        self,
        database: str,
        table_input: dict[str, Any],
        *,
        settings: GlueSettings = GlueSettings(),
    ) -> str:
        """Create the table, or update it to ``table_input`` only when its definition differs
        (parameters set by hand are kept: see ``glue_table_update``). Returns ``"created"``,
        ``"updated"`` or ``"unchanged"``."""
        glue = self.client("glue")
        name = table_input["Name"]
        with self._naming("table", settings.address(database, name)):
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

    def ensure_partition(
        self,
        database: str,
        table: str,
        partition_input: dict[str, Any],
        *,
        settings: GlueSettings = GlueSettings(),
    ) -> None:
        """Add the partition, or update it in place when it is already registered."""
        glue = self.client("glue")
        values = partition_input["Values"]
        with self._naming(f"partition {values}", settings.address(database, table)):
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

    def get_partition(
        self,
        database: str,
        table: str,
        values: list[str],
        *,
        settings: GlueSettings = GlueSettings(),
    ) -> dict[str, Any] | None:
        """The partition, or None when it, its table or its database is not registered (a
        day never exported); any other client error names the database and table."""
        glue = self.client("glue")
        with self._naming(f"partition {values}", settings.address(database, table)):
            try:
                return glue.get_partition(
                    DatabaseName=database, TableName=table, PartitionValues=values
                )["Partition"]
            except glue.exceptions.EntityNotFoundException:
                return None

    def list_partition_values(
        self, database: str, table: str, *, settings: GlueSettings = GlueSettings()
    ) -> list[list[str]]:
        paginator = self.client("glue").get_paginator("get_partitions")
        out: list[list[str]] = []
        with self._naming("partitions", settings.address(database, table)):
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
