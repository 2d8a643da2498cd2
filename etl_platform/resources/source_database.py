"""One source PostgreSQL database of the lake: connections with timeouts, catalog lookup, window
counts, and an Arrow record-batch stream over ADBC. No Dagster here: the export path imports only
what moves data (:mod:`.source_postgres` is the resource that hands these out).

Every session runs in UTC with the statement timeout set by the one session-timeouts builder.
The stream uses ADBC's PostgreSQL driver, which reads ``COPY (SELECT ...) TO STDOUT (FORMAT
binary)`` into Arrow batches of bounded size; the low-level ``adbc_driver_manager`` objects are
used, not its DB-API module, which imports pandas and polars (~70 MB of RSS for nothing).

The DSN is a secret: only its redacted form ever reaches a message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql

from etl_platform.core import lake
from etl_platform.core.dsn import redact_dsn
from etl_platform.core.warehouse import Dialect, session_timeouts

BATCH_SIZE_HINT_OPTION = "adbc.postgresql.batch_size_hint_bytes"


class SourcePostgresError(RuntimeError):
    """Reading the source database failed; the message names the table or the setting."""


class SourceTableMissingError(SourcePostgresError):
    """The table to read does not exist in the source database."""


@dataclass(frozen=True)
class SourceDatabase:
    """One source database: its DSN (never shown) and the session settings of every read."""

    dsn: str = field(repr=False)
    setting: str = "the source DSN"  # what the DSN came from, named in connection errors
    statement_timeout_ms: int | None = None
    connect_timeout_s: int = 15

    def _session_statements(self) -> list[str]:
        statements = [lake.SESSION_TIME_ZONE_SQL]
        if self.statement_timeout_ms is not None:
            statements += [
                s.as_string(None)
                for s in session_timeouts(Dialect.POSTGRES, self.statement_timeout_ms)
            ]
        return statements

    def _cannot_connect(self, what: str, exc: Exception) -> SourcePostgresError:
        return SourcePostgresError(
            f"{what}: cannot connect to the source at {redact_dsn(self.dsn)} "
            f"({self.setting}): {exc}"
        )

    @contextmanager
    def connect(self, what: str = "source") -> Iterator[psycopg.Connection]:
        """An autocommit connection in UTC with the statement timeout set; ``what`` (a table)
        is named if it cannot be opened."""
        try:
            conn = psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=self.connect_timeout_s
            )
        except psycopg.Error as exc:
            raise self._cannot_connect(what, exc) from exc
        try:
            for statement in self._session_statements():
                conn.execute(statement)
            yield conn
        finally:
            conn.close()

    def catalog(self, table: lake.TableRef) -> list[lake.PgColumn]:
        """The columns of ``table`` in order (domains resolved); refuses a missing table."""
        with self.connect(table.display) as conn:
            return self._catalog(conn, table)

    @staticmethod
    def _catalog(conn: psycopg.Connection, table: lake.TableRef) -> list[lake.PgColumn]:
        qualified = table.identifier().as_string(conn)
        row = conn.execute(lake.REGCLASS_SQL, (qualified,)).fetchone()
        if row is None or row[0] is None:
            raise SourceTableMissingError(
                f"table {table.display} not found (looked up as {qualified})"
            )
        return lake.catalog_columns(conn.execute(lake.CATALOG_SQL, (row[0],)).fetchall())

    def count_window(self, table: lake.TableRef, date_column: str, window: lake.Window) -> int:
        """Rows of ``table`` whose ``date_column`` is in the half-open window: the export's own
        predicate, in a snapshot of its own (a day still receiving rows will differ)."""
        with self.connect(table.display) as conn:
            date_type = lake.date_column_type(table, self._catalog(conn, table), date_column)
            row = conn.execute(lake.build_count_sql(table, date_column, date_type, window))
            return int(row.fetchone()[0])

    def record_batches(
        self, table: str, query: sql.Composable, *, batch_size_hint_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream ``query`` as Arrow record batches; closing the iterator ends the query and the
        connection at once (also mid-stream). Errors name ``table``."""
        try:
            session = _AdbcSession(self.dsn, self._session_statements())
        except Exception as exc:
            raise self._cannot_connect(table, exc) from exc
        options = {}
        if batch_size_hint_bytes is not None:
            options[BATCH_SIZE_HINT_OPTION] = str(int(batch_size_hint_bytes))
        batches = session.stream(query.as_string(None), options)
        try:
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except Exception as exc:
                    raise SourcePostgresError(f"{table}: export query failed: {exc}") from exc
                yield batch
        finally:
            try:
                batches.close()  # reader, then statement: an unfinished COPY is abandoned here
            finally:
                session.close()


class _AdbcSession:
    """A low-level ADBC connection with the session statements run."""

    def __init__(self, dsn: str, session_statements: list[str]) -> None:
        import adbc_driver_manager
        import adbc_driver_postgresql

        self._mgr = adbc_driver_manager
        self.db = adbc_driver_postgresql.connect(dsn)
        try:
            self.conn = adbc_driver_manager.AdbcConnection(self.db)
        except BaseException:
            self.db.close()
            raise
        for statement in session_statements:
            self.execute_update(statement)

    def execute_update(self, query: str) -> None:
        with self._mgr.AdbcStatement(self.conn) as stmt:
            stmt.set_sql_query(query)
            stmt.execute_update()

    def stream(self, query: str, options: dict[str, str]) -> Iterator[pa.RecordBatch]:
        with self._mgr.AdbcStatement(self.conn) as stmt:
            if options:
                stmt.set_options(**options)
            stmt.set_sql_query(query)
            handle, _ = stmt.execute_query()
            reader: Any = pa.RecordBatchReader._import_from_c(handle.address)
            try:
                while True:
                    try:
                        yield reader.read_next_batch()
                    except StopIteration:
                        return
            finally:
                reader.close()

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.db.close()
