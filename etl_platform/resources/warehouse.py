"""The warehouse: Amazon Redshift or PostgreSQL over psycopg 3.

Dialect differences live in one value, ``etl_platform.core.warehouse.Dialect``; this resource
only connects (timeouts, the dialect's connection options), runs transactions and moves CSV
objects from S3 into tables the way the dialect's ``load_method`` says: Redshift reads them
itself (``COPY ... MANIFEST``), PostgreSQL gets them fed into ``COPY ... FROM STDIN`` by this
process (``copy_input``: a small object in one piece, a large one chunk by chunk).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any

import psycopg
from dagster import ConfigurableResource
from psycopg import sql
from psycopg.pq import TransactionStatus
from pydantic import Field, field_validator

from etl_platform.core import warehouse as warehouse_sql
from etl_platform.core.dsn import redact_dsn
from etl_platform.core.object_store import ObjectStore
from etl_platform.core.retry import classify, is_concurrent_create
from etl_platform.core.s3_layout import split_s3_uri
from etl_platform.core.warehouse import (
    Dialect,
    FileFormat,
    LoadedRowCount,
    LoadMethod,
    PublishLock,
)

from .copy_input import gunzipped_chunks, parquet_object_csv_chunks


class WarehouseConfigurationError(RuntimeError):
    """The warehouse is misconfigured or unreachable; the message names the setting."""


class WarehouseLoadError(RuntimeError):
    """A COPY rejected data; the message names the table, S3 object, line, column and reason.
    The warehouse's own error is ``__cause__``."""


@dataclass(frozen=True)
class ObjectSettings:
    """The settings holding the bucket of the objects a load reads and of its COPY manifest
    (``data_bucket``, ``manifest_bucket``): errors about them name the setting."""

    objects: str | None = None
    manifest: str | None = None


@dataclass(frozen=True)
class LoadResult:
    table: str
    objects: int
    rows: int
    seconds: float


class WarehouseResource(ConfigurableResource):
    """Connections and loads for the warehouse. ``dsn`` should come from ``EnvVar``."""

    dsn: str = Field(description="libpq connection string or URI; use EnvVar for secrets")
    dialect: str = Field(default="postgres", description="`postgres` or `redshift`")
    statement_timeout_s: int = Field(default=900, description="kills a stuck statement")
    lock_timeout_s: int = Field(default=60, description="PostgreSQL only: bound on lock waits")
    iam_role_arn: str | None = Field(default=None, description="Redshift COPY's IAM_ROLE")
    s3_region: str | None = Field(default=None, description="Redshift COPY's REGION")

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        try:
            warehouse_sql.parse_dialect(value, setting="dialect")
        except ValueError as exc:
            raise ValueError(f"warehouse dialect: {exc}") from exc
        return value

    @property
    def sql_dialect(self) -> Dialect:
        return warehouse_sql.parse_dialect(self.dialect)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """An autocommit-off connection with statement and lock timeouts set."""
        dialect = self.sql_dialect
        kwargs: dict[str, object] = {"connect_timeout": 15}
        if dialect.client_encoding is not None:
            kwargs["client_encoding"] = dialect.client_encoding
        if not dialect.prepared_statements:
            kwargs["prepare_threshold"] = None
        try:
            conn = psycopg.connect(self.dsn, **kwargs)
        except psycopg.OperationalError as exc:
            raise WarehouseConfigurationError(
                f"cannot connect to the warehouse at {redact_dsn(self.dsn)} "
                f"(setting `dsn`, ETL_WAREHOUSE_DSN in the demo): {exc}"
            ) from exc
        try:
            timeouts = warehouse_sql.session_timeouts(
                dialect, self.statement_timeout_s * 1000, self.lock_timeout_s * 1000
            )
            # one round trip: parameterless statements go by the simple query protocol
            conn.execute(sql.SQL("; ").join(timeouts), prepare=False)
            conn.commit()
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with self.connect() as conn:
            with conn.transaction():
                yield conn

    def load_csv_objects(
        self,
        conn: psycopg.Connection,
        schema: str,
        table: str,
        columns: Sequence[str],
        uris: Sequence[str],
        store: ObjectStore,
        manifest_uri: str | None = None,
        *,
        settings: ObjectSettings = ObjectSettings(),
        file_format: FileFormat = FileFormat(),
    ) -> LoadResult:
        """Load gzip CSV objects (platform encoding: RFC-4180, unquoted empty = NULL, unless
        ``file_format`` gives other CSV options) or Parquet objects into ``schema.table`` with
        an explicit column list, inside the caller's transaction. ``settings`` name the
        settings holding the objects' and the manifest's buckets, for errors about a missing
        bucket or object."""
        started = time.monotonic()
        if self.sql_dialect.load_method is LoadMethod.COPY_FROM_S3_MANIFEST:
            rows = self._redshift_copy(
                conn, schema, table, columns, uris, store, manifest_uri, settings, file_format
            )
        else:
            rows = self._postgres_copy(
                conn, schema, table, columns, uris, store, settings, file_format
            )
        return LoadResult(
            table=f"{schema}.{table}",
            objects=len(uris),
            rows=rows,
            seconds=time.monotonic() - started,
        )

    def _postgres_copy(
        self,
        conn: psycopg.Connection,
        schema: str,
        table: str,
        columns: Sequence[str],
        uris: Sequence[str],
        store: ObjectStore,
        settings: ObjectSettings,
        file_format: FileFormat,
    ) -> int:
        """Each object streamed into ``COPY FROM STDIN``: gzip CSV inflated as it arrives,
        Parquet written out as the platform's CSV (columns matched by name)."""
        statement = warehouse_sql.copy_from_stdin(
            schema, table, columns, dialect=self.sql_dialect, csv=file_format.csv
        )
        rows = 0
        for uri in uris:
            bucket, key = split_s3_uri(uri)
            body = partial(store.open_stream, bucket, key, setting=settings.objects)
            chunks = (
                parquet_object_csv_chunks(body, uri, columns)
                if file_format.is_parquet
                else gunzipped_chunks(body, uri)
            )
            with conn.cursor() as cur:
                with cur.copy(statement) as copy:
                    for chunk in chunks:
                        copy.write(chunk)
                rows += max(cur.rowcount, 0)
        return rows

    def _redshift_copy(
        self,
        conn: psycopg.Connection,
        schema: str,
        table: str,
        columns: Sequence[str],
        uris: Sequence[str],
        store: ObjectStore,
        manifest_uri: str | None,
        settings: ObjectSettings,
        file_format: FileFormat,
    ) -> int:
        if not self.iam_role_arn:
            raise WarehouseConfigurationError(
                "redshift dialect needs `iam_role_arn` for COPY from S3"
            )
        if manifest_uri is None:
            raise ValueError(f"redshift COPY into {schema}.{table} needs a manifest_uri")
        entries = []
        for uri in uris:
            bucket, key = split_s3_uri(uri)
            entries.append((uri, store.object_size(bucket, key, setting=settings.objects)))
        bucket, key = split_s3_uri(manifest_uri)
        manifest = json.dumps(warehouse_sql.copy_manifest(entries)).encode()
        store.put_bytes(manifest, bucket, key, setting=settings.manifest)
        dialect = self.sql_dialect
        statement = warehouse_sql.redshift_copy(
            schema,
            table,
            columns,
            manifest_uri,
            self.iam_role_arn,
            region=None if file_format.is_parquet else self.s3_region,
            dialect=dialect,
            file_format=file_format,
        )
        with conn.cursor() as cur:
            try:
                cur.execute(statement)
            except psycopg.Error as exc:
                if classify(exc) == "transient" or conn.closed:
                    raise
                raise WarehouseLoadError(
                    self._copy_failure(conn, f"{schema}.{table}", exc)
                ) from exc
            if dialect.loaded_row_count is LoadedRowCount.PG_LAST_COPY_COUNT:
                # the COPY's count, read on the same session (the cursor's rowcount is not it)
                row = cur.execute(warehouse_sql.last_copy_count_query()).fetchone()
                return int(row[0]) if row else 0
            return max(cur.rowcount, 0)

    def _copy_failure(self, conn: psycopg.Connection, table: str, exc: psycopg.Error) -> str:
        """The message for a failed Redshift COPY: its ``stl_load_errors`` rows (file, line,
        column, reason), read on the same session with ``pg_last_copy_id()`` after ending the
        aborted transaction (which answers no query). The caller's transaction is over either
        way; its context manager's rollback then finds nothing to roll back."""
        cause = getattr(exc.diag, "message_primary", None) or str(exc)
        try:
            if conn.info.transaction_status is TransactionStatus.INERROR:
                conn.pgconn.exec_(b"ROLLBACK")
            query = warehouse_sql.load_errors_query(self.sql_dialect)
            rows = conn.execute(query).fetchall()
        except psycopg.Error as lookup:
            return (
                f"Redshift COPY into {table} failed ({cause}); reading stl_load_errors for it "
                f"failed too: {lookup}"
            )
        return warehouse_sql.copy_failure_message(table, rows, cause)

    # -- statement execution for the pipeline steps -----------------------------------------
    # Steps hand over statement lists built by ``warehouse_sql``; no component loops over them.
    # Without ``conn`` a call opens its own connection (and, for ``run_statements``, its own
    # transaction); with ``conn`` it runs inside the caller's transaction.

    def run_statements(
        self, statements: Iterable[sql.Composable], *, conn: psycopg.Connection | None = None
    ) -> None:
        """Run ``statements`` in order, all in one transaction: committed together or not at
        all. The builders' statements take no parameters, so none are passed (psycopg would
        read a ``%`` inside a quoted identifier as a placeholder)."""
        if conn is None:
            with self.transaction() as own:
                self.run_statements(statements, conn=own)
            return
        for statement in statements:
            conn.execute(statement)

    def create_if_missing(self, statements: Sequence[sql.Composable], what: str) -> None:
        """Run idempotent ``CREATE ... IF NOT EXISTS`` statements in one transaction. Two runs
        that create the same object at once (the first loads of a new target, launched in one
        tick) race inside PostgreSQL: the loser fails on a duplicate name although it asked
        ``IF NOT EXISTS``. The loser runs the statements again, and then finds the object."""
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                self.run_statements(statements)
                return
            except psycopg.Error as exc:
                if not is_concurrent_create(exc) or attempt == attempts:
                    raise WarehouseLoadError(f"creating {what} failed: {exc}") from exc

    def fetch_all(
        self,
        query: sql.Composable,
        params: Sequence[Any] | None = None,
        *,
        conn: psycopg.Connection | None = None,
    ) -> list[tuple[Any, ...]]:
        """Every row of one query."""
        if conn is None:
            with self.connect() as own:
                return self.fetch_all(query, params, conn=own)
        cursor = conn.execute(query) if params is None else conn.execute(query, params)
        return [tuple(row) for row in cursor.fetchall()]

    def scalar(
        self,
        query: sql.Composable,
        params: Sequence[Any] | None = None,
        *,
        conn: psycopg.Connection | None = None,
    ) -> Any:
        """The first column of the first row of one query; ``ValueError`` naming the query
        when it returns no row."""
        rows = self.fetch_all(query, params, conn=conn)
        if not rows:
            raise ValueError(f"scalar query returned no row: {_statement_text(query)}")
        return rows[0][0]

    @contextmanager
    def publish_lock(self, target: str, log: Any = None) -> Iterator[None]:
        """One publish or rollback of the published schema ``target`` at a time. Publishes of
        two dates (a backfill launches them in the same tick) both build ``<target>__new``:
        run together, one fails on the schema name or drops/swaps the other's schema. The lock
        is held on a connection of its own for the whole block (centralize, checks and swap),
        in the way the dialect's ``publish_lock`` names: a session advisory lock (PostgreSQL;
        released by the server if the worker dies) or ``LOCK TABLE`` on a lock table in a
        schema no swap renames, held by an open transaction (Redshift)."""
        kind = self.sql_dialect.publish_lock
        if kind is PublishLock.NONE:
            yield
            return
        with self.connect() as conn:
            conn.autocommit = True
            # Waiting for the running publish is expected: no timeouts on this connection.
            self.run_statements(warehouse_sql.session_timeouts(self.sql_dialect, 0, 0), conn=conn)
            if kind is PublishLock.ADVISORY_LOCK:
                self._take_advisory_lock(conn, f"publish:{target}", target, log)
                yield  # closing the connection releases the lock
                return
            schema = warehouse_sql.publish_lock_schema_name(target)
            self.create_if_missing(
                warehouse_sql.lock_table_setup_statements(self.sql_dialect, schema),
                f"the publish lock table of {target}",
            )
            if log is not None:
                log.info(f"taking the publish lock of {target} (waits for a running publish)")
            with conn.transaction():
                self.run_statements(
                    warehouse_sql.lock_table_statements(self.sql_dialect, schema), conn=conn
                )
                yield  # the transaction's end releases the lock

    def _take_advisory_lock(
        self, conn: psycopg.Connection, name: str, target: str, log: Any
    ) -> None:
        key = warehouse_sql.advisory_lock_key(name)
        try_lock = warehouse_sql.advisory_lock(self.sql_dialect, wait=False)
        if not self.scalar(try_lock, (key,), conn=conn):
            if log is not None:
                log.info(f"another publish or rollback of {target} is running: waiting")
            self.fetch_all(
                warehouse_sql.advisory_lock(self.sql_dialect, wait=True), (key,), conn=conn
            )

    def publish_marker(
        self, schema: str, *, conn: psycopg.Connection | None = None
    ) -> tuple[date, str] | None:
        """``(partition_date, run_id)`` of the version published in ``schema`` (its
        ``_etl_publish`` row), or None when the schema has no marker."""
        dialect = self.sql_dialect
        exists = self.fetch_all(
            warehouse_sql.publish_marker_exists_query(dialect), (schema,), conn=conn
        )
        if not exists:
            return None
        rows = self.fetch_all(warehouse_sql.publish_marker_query(dialect, schema), conn=conn)
        return (rows[0][0], rows[0][1]) if rows else None

    def write_publish_marker(
        self, schema: str, day: date, fingerprint: str, run_id: str, *, conn: psycopg.Connection
    ) -> None:
        """(Re)create ``schema``'s marker naming the partition date, data-schema fingerprint
        and run, inside the caller's transaction: it travels with the schema through swaps."""
        dialect = self.sql_dialect
        self.run_statements(warehouse_sql.create_publish_marker(dialect, schema), conn=conn)
        conn.execute(
            warehouse_sql.insert_publish_marker(dialect, schema), (day, fingerprint, run_id)
        )


def _statement_text(statement: sql.Composable) -> str:
    """A statement for an error message, without a connection to render it."""
    try:
        return statement.as_string(None)
    except Exception:
        return repr(statement)
