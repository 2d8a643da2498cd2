"""Runbook step 3: restore the clean dump into the target database; readers never see it
half-restored.

``swap`` (default): restore into ``<target>__next`` beside the target, verify it (rows per
table equal the clean manifest's, no foreign key left unvalidated), then, in one transaction on
the maintenance database, rename ``<target>`` to ``<target>__previous`` and ``<target>__next``
to ``<target>``. Sessions on the target are terminated first (the bounded disconnect); a
reader connecting during the swap reaches the old database or the new one. The previous
version stays for one rollback (:func:`rollback_restore`). A killed run leaves the target as it
was; the next run drops the leftover ``__next``.

``single_transaction``: ``pg_restore --clean --single-transaction`` into the target itself.

The run log shows the bytes downloaded of the clean dump's total, the tables restored of the
archive's, and the tables verified.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from etl_platform.components.run_policy import step_failure_policy
from etl_platform.resources import ObjectStoreResource, PgToolsResource

from ..progress import QUIET, HasLog, StepProgress
from .dump_objects import DumpLocation, archive_files, download_files, read_manifest
from .pg_archive import restore_archive

NEXT_SUFFIX = "__next"
PREVIOUS_SUFFIX = "__previous"
OBJECT_IN_USE = "55006"


class RestoreError(RuntimeError):
    """The restore cannot run or did not verify; names the database and setting, never the DSN
    secret."""


@dataclass(frozen=True)
class RestoreSettings:
    load_bucket: str
    load_prefix: str
    target_dsn_env: str
    restore_mode: str = "swap"
    maintenance_database: str = "postgres"
    jobs: int = 2
    disconnect_timeout_s: float = 15.0


@dataclass(frozen=True)
class TargetDatabases:
    name: str
    dsn: str
    maintenance_dsn: str

    def dsn_for(self, database: str) -> str:
        return make_conninfo(self.dsn, dbname=database)

    @property
    def next(self) -> str:
        return self.name + NEXT_SUFFIX

    @property
    def previous(self) -> str:
        return self.name + PREVIOUS_SUFFIX


def target_databases(settings: RestoreSettings) -> TargetDatabases:
    dsn = os.environ.get(settings.target_dsn_env)
    if not dsn:
        raise RestoreError(f"target DSN: environment variable {settings.target_dsn_env} is not set")
    name = conninfo_to_dict(dsn).get("dbname")
    if not name:
        raise RestoreError(f"target DSN in {settings.target_dsn_env} names no database")
    if len((str(name) + PREVIOUS_SUFFIX).encode()) > 63:
        raise RestoreError(f"target database {name!r}: too long for the swap's {PREVIOUS_SUFFIX}")
    maintenance = make_conninfo(dsn, dbname=settings.maintenance_database)
    return TargetDatabases(str(name), dsn, maintenance)


def _setting(settings: RestoreSettings) -> str:
    return f"target_dsn_env {settings.target_dsn_env!r}"


def _admin(db: TargetDatabases) -> psycopg.Connection:
    return psycopg.connect(db.maintenance_dsn, autocommit=True, connect_timeout=10)


def _exists(conn: psycopg.Connection, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
    )


def _drop(conn: psycopg.Connection, name: str) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def verify_restored(dsn: str, manifest: dict[str, Any], context: HasLog = QUIET) -> dict[str, int]:
    """Rows per table equal the clean manifest's; every foreign key is validated."""
    counts: dict[str, int] = {}
    name = conninfo_to_dict(dsn).get("dbname")
    checked = StepProgress(context, f"verification of {name}", "tables", len(manifest["tables"]))
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        for table, info in manifest["tables"].items():
            schema, _, name = table.partition(".")
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
            counts[table] = int(conn.execute(query).fetchone()[0])  # type: ignore[index]
            if counts[table] != info["rows"]:
                raise RestoreError(
                    f"restored {table} has {counts[table]} rows, the clean dump {info['rows']}"
                )
            checked.tick()
        unvalidated = conn.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype = 'f' AND NOT convalidated"
        ).fetchall()
    if unvalidated:
        raise RestoreError(f"foreign keys not validated after restore: {unvalidated}")
    checked.done()
    return counts


def swap_in(db: TargetDatabases, timeout_s: float) -> None:
    """Rename target → previous and next → target in one transaction, disconnecting the
    target's sessions; retried until ``timeout_s`` while new sessions keep arriving."""
    deadline = time.monotonic() + timeout_s
    with _admin(db) as conn:
        _drop(conn, db.previous)
        while True:
            try:
                with conn.transaction():
                    if _exists(conn, db.name):
                        conn.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()",
                            (db.name,),
                        )
                        conn.execute(_rename(db.name, db.previous))
                    conn.execute(_rename(db.next, db.name))
                return
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise RestoreError(
                        f"swap into {db.name}: sessions kept reconnecting for {timeout_s} s"
                    ) from None
                time.sleep(0.2)


def _rename(old: str, new: str) -> sql.Composed:
    return sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
        sql.Identifier(old), sql.Identifier(new)
    )


def rollback_restore(settings: RestoreSettings) -> None:
    """Put the previous version back: target ↔ previous (one rollback, as kept)."""
    db = target_databases(settings)
    with _admin(db) as conn:
        if not _exists(conn, db.previous):
            raise RestoreError(f"no {db.previous} to roll {db.name} back to")
        _drop(conn, db.next)
        with conn.transaction():
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname IN (%s, %s) AND pid <> pg_backend_pid()",
                (db.name, db.previous),
            )
            conn.execute(_rename(db.name, db.next))
            conn.execute(_rename(db.previous, db.name))
            conn.execute(_rename(db.next, db.previous))


def _restore_and_verify(
    settings: RestoreSettings,
    db: TargetDatabases,
    pg_tools: PgToolsResource,
    directory: Path,
    manifest: dict[str, Any],
    context: HasLog,
) -> dict[str, int]:
    """pg_restore the downloaded archive (into ``__next``, or the target in one transaction)
    and verify it; returns rows per table."""
    what = f"{manifest.get('clean_uri', directory.name)} into {db.name}"
    if settings.restore_mode == "single_transaction":
        restore_archive(
            pg_tools,
            db.dsn,
            directory,
            what,
            setting=_setting(settings),
            single_transaction=True,
            context=context,
        )
        return verify_restored(db.dsn, manifest, context)
    with _admin(db) as conn:
        _drop(conn, db.next)  # a killed run's leftover
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(db.next))
        )
    next_dsn = db.dsn_for(db.next)
    restore_archive(
        pg_tools,
        next_dsn,
        directory,
        what,
        setting=f"database {db.next!r} beside {_setting(settings)}",
        jobs=settings.jobs,
        context=context,
    )
    return verify_restored(next_dsn, manifest, context)


def restore_dump(
    settings: RestoreSettings,
    store: ObjectStoreResource,
    pg_tools: PgToolsResource,
    dump_key: str,
    context: HasLog = QUIET,
) -> dict[str, Any]:
    """Restore the verified clean dump ``dump_key`` into the target; returns the report."""
    db = target_databases(settings)
    clean = DumpLocation(settings.load_bucket, settings.load_prefix, dump_key, "load_bucket")
    manifest = read_manifest(store, clean)
    if manifest is None or not manifest.get("verified"):
        raise RestoreError(f"clean dump {clean.uri} is missing or not verified")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pg_restore_") as tmp:
        directory = Path(tmp)
        files = archive_files(store, clean)
        nbytes = download_files(
            store, clean, sorted(files), directory, context, sum(files.values())
        )
        downloaded = time.monotonic()
        counts = _restore_and_verify(settings, db, pg_tools, directory, manifest, context)
    restored = time.monotonic()
    if settings.restore_mode != "single_transaction":
        swap_in(db, settings.disconnect_timeout_s)
    return {
        "target_database": db.name,
        "restore_mode": settings.restore_mode,
        "clean_uri": clean.uri,
        "bytes": nbytes,
        "rows": counts,
        "download_seconds": round(downloaded - started, 3),
        "restore_seconds": round(restored - downloaded, 3),
        "swap_seconds": round(time.monotonic() - restored, 3),
    }


@step_failure_policy("postgres dump: restore")
def materialize_target(
    settings: RestoreSettings,
    store: ObjectStoreResource,
    pg_tools: PgToolsResource,
    dump_key: str,
    context: HasLog = QUIET,
) -> dg.MaterializeResult:
    """The step of ``["postgres", I, "target"]``: the target restored from the clean dump."""
    report = restore_dump(settings, store, pg_tools, dump_key, context)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(report["rows"].values()),
            "target_database": report["target_database"],
            "restore_mode": report["restore_mode"],
            "clean_uri": dg.MetadataValue.url(report["clean_uri"]),
            "bytes": report["bytes"],
            "rows_per_table": dg.MetadataValue.json(report["rows"]),
            "download_seconds": report["download_seconds"],
            "restore_seconds": report["restore_seconds"],
            "swap_seconds": report["swap_seconds"],
        }
    )
