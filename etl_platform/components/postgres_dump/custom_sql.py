"""Custom SQL steps of the scrub rules (``scrub_rules.custom_sql``): the only part of the scrub
that needs a database. After the streaming scrub has written the clean archive, it is restored
into a scratch database, the statements run there in one transaction, the scratch database is
dumped again and that archive replaces the clean one. The scrub then checks the new archive as
it checked the first (coverage of every column, residual scan) before marking it verified.

The scratch database is created beside the database of ``scratch_dsn_env`` (by default the
target's server), named ``scrub_scratch_<random>``, and dropped when the step ends, success or
not. The raw dump never reaches it: only data the rules have already scrubbed does.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from etl_platform.resources import ObjectStoreResource, PgToolsResource

from ..progress import QUIET, HasLog
from .dump_objects import (
    DumpLocation,
    archive_files,
    delete_dump,
    download_files,
    upload_archive,
)
from .pg_archive import dump_archive, restore_archive


class CustomSqlError(RuntimeError):
    """A custom SQL step cannot run or failed; names the step and setting, never a DSN."""


@contextmanager
def scratch_database(dsn_env: str | None, maintenance: str = "postgres") -> Iterator[str]:
    """A new empty database beside ``dsn_env``'s, dropped on exit; yields its DSN."""
    dsn = os.environ.get(dsn_env or "")
    if not dsn:
        raise CustomSqlError(
            f"scrub_rules.custom_sql needs a scratch server: environment variable "
            f"{dsn_env or 'scratch_dsn_env'} is not set"
        )
    name = f"scrub_scratch_{uuid.uuid4().hex[:12]}"
    admin = make_conninfo(dsn, dbname=maintenance)
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield make_conninfo(dsn, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def run_statements(dsn: str, statements: tuple[str, ...]) -> None:
    """All statements in one transaction; a failure names the step by its position (the
    server's primary message only: its detail line can quote row values)."""
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        for position, statement in enumerate(statements):
            try:
                conn.execute(statement.encode())
            except psycopg.Error as exc:
                message = exc.diag.message_primary or type(exc).__name__
                raise CustomSqlError(
                    f"scrub_rules.custom_sql[{position}] failed: {message}"
                ) from None


def apply_custom_sql(
    statements: tuple[str, ...],
    scratch_dsn_env: str | None,
    store: ObjectStoreResource,
    pg_tools: PgToolsResource,
    clean: DumpLocation,
    sse: dict[str, str],
    context: HasLog = QUIET,
) -> None:
    """Replace the clean archive at ``clean`` by its dump after ``statements`` ran on it."""
    with tempfile.TemporaryDirectory(prefix="scrub_sql_") as tmp:
        first, second = Path(tmp) / "clean", Path(tmp) / "after_sql"
        first.mkdir()
        files = archive_files(store, clean)
        download_files(store, clean, sorted(files), first, context, sum(files.values()))
        with scratch_database(scratch_dsn_env) as dsn:
            context.log.info(f"custom SQL: {len(statements)} steps in a scratch database")
            where = f"the scratch database beside scratch_dsn_env {scratch_dsn_env!r}"
            restore_archive(pg_tools, dsn, first, where, setting=where, context=context)
            run_statements(dsn, statements)
            dump_archive(pg_tools, dsn, second, where, setting=where, context=context)
        delete_dump(store, clean)
        upload_archive(store, second, clean, sse, context)
