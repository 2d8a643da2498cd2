"""Runbook step 1: dump the source database to the extract bucket.

``pg_dump -Fd`` writes one gzip data file per table and ``toc.dat``; the files go to
``s3://EXTRACT/PREFIX/DUMP_KEY/`` in parallel, then ``manifest.json`` (written last) announces
the complete dump. The archive passes through a private temporary directory (pg_dump's
directory format cannot write to a pipe), removed when the step ends, success or not. The run
log shows the bytes pg_dump has written, then the bytes uploaded of the archive's total.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from etl_platform.components.run_policy import step_failure_policy
from etl_platform.core.scrub.archive import parse_toc_list
from etl_platform.resources import ObjectStoreResource, PgToolsResource

from ..progress import QUIET, HasLog
from .dump_objects import DumpLocation, encryption_args, put_manifest, upload_archive
from .pg_archive import dump_archive


class DumpError(RuntimeError):
    """The dump cannot be taken; the message names the setting (never the DSN's secret)."""


@dataclass(frozen=True)
class DumpSettings:
    source_dsn_env: str
    extract_bucket: str
    extract_prefix: str
    kms_key_id: str | None = None
    jobs: int = 2


def new_dump_key(now: datetime | None = None) -> str:
    """``dump-20261130T235300Z``: sorts by time, valid as a partition key and an S3 path."""
    return (now or datetime.now(UTC)).strftime("dump-%Y%m%dT%H%M%SZ")


def take_dump(
    settings: DumpSettings,
    store: ObjectStoreResource,
    pg_tools: PgToolsResource,
    dump_key: str,
    context: HasLog = QUIET,
) -> dict[str, Any]:
    """Dump the source into ``dump_key``; returns the raw manifest (stored with the dump)."""
    dsn = os.environ.get(settings.source_dsn_env)
    if not dsn:
        raise DumpError(f"source DSN: environment variable {settings.source_dsn_env} is not set")
    where = DumpLocation(
        settings.extract_bucket, settings.extract_prefix, dump_key, "extract_bucket"
    )
    sse = encryption_args(settings.kms_key_id)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pg_dump_") as tmp:
        directory = Path(tmp) / "archive"
        dump_archive(
            pg_tools,
            dsn,
            directory,
            dump_key,
            setting=f"source_dsn_env {settings.source_dsn_env!r}",
            jobs=settings.jobs,
            context=context,
        )
        dumped = time.monotonic()
        listing = pg_tools.archive_listing(directory)
        files = upload_archive(store, directory, where, sse, context)
    uploaded = time.monotonic()
    tables = [e.rest for e in parse_toc_list(listing) if e.description == "TABLE DATA"]
    manifest = {
        "dump_key": dump_key,
        "format": "pg_dump-directory",
        "created_at": datetime.now(UTC).isoformat(),
        "files": files,
        "bytes": sum(files.values()),
        "tables": len(tables),
        "dump_seconds": round(dumped - started, 3),
        "upload_seconds": round(uploaded - dumped, 3),
    }
    put_manifest(store, where, manifest, sse)
    manifest["uri"] = where.uri
    return manifest


@step_failure_policy("postgres dump: pg_dump to the extract bucket")
def materialize_raw_dump(
    settings: DumpSettings,
    store: ObjectStoreResource,
    pg_tools: PgToolsResource,
    dump_key: str,
    context: HasLog = QUIET,
) -> dg.MaterializeResult:
    """The step of ``["s3", I, "raw_dump"]``: a new dump under the partition's key."""
    manifest = take_dump(settings, store, pg_tools, dump_key, context)
    seconds = manifest["dump_seconds"] + manifest["upload_seconds"]
    return dg.MaterializeResult(
        metadata={
            "uri": dg.MetadataValue.url(manifest["uri"]),
            "bytes": manifest["bytes"],
            "tables": manifest["tables"],
            "dump_seconds": manifest["dump_seconds"],
            "upload_seconds": manifest["upload_seconds"],
            "mb_per_s": round(manifest["bytes"] / 1e6 / seconds, 2) if seconds else 0.0,
        }
    )
