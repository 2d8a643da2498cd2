"""Runbook step 2: scrub a raw dump into a clean dump, fail closed.

1. Read the archive's table list and COPY column lists (``pg_restore -l`` and the data script,
   from ``toc.dat`` alone).
2. Plan: every column of every table must be covered by a rule; a gap fails here, naming each
   ``table.column``, before anything is written to the load bucket.
3. Rewrite each ruled table's data file in parallel worker processes; copy the others
   server-side; copy ``toc.dat`` (the schema is unchanged).
4. Residual scan of the clean files; any hit deletes the clean objects and fails the run.
5. Write the clean manifest (rows per table, residual results): it marks the clean dump as
   verified. Delete the raw dump unless ``keep_raw_dumps_days`` keeps it.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from etl_platform.components.run_policy import step_failure_policy
from etl_platform.core.scrub import (
    DumpTable,
    ResidualCounts,
    ScrubPlan,
    ScrubRules,
    TablePlan,
    display_name,
    dump_tables,
    plan_scrub,
)
from etl_platform.core.scrub.archive import parse_toc_list
from etl_platform.core.scrub.layout import TOC
from etl_platform.resources import ObjectStoreResource, PgToolsResource

from .dump_objects import (
    DumpLocation,
    copy_object,
    delete_dump,
    encryption_args,
    put_manifest,
    read_manifest,
)
from .table_scrub import (
    S3Settings,
    TableScanJob,
    TableScrubJob,
    TableScrubResult,
    scan_table_file,
    scrub_table_file,
)

KEYED_ACTIONS = frozenset({"hash", "fake_email", "fake_name", "fake_phone"})


class ScrubError(RuntimeError):
    """The scrub cannot run or its result is not clean; the message names the dump and input."""


@dataclass(frozen=True)
class ScrubSettings:
    extract_bucket: str
    extract_prefix: str
    load_bucket: str
    load_prefix: str
    hmac_key_env: str
    kms_key_id: str | None = None
    residual_sample_fraction: float = 1.0
    keep_raw_dumps_days: int = 0
    workers: int = 2


def read_archive_tables(
    store: ObjectStoreResource, pg_tools: PgToolsResource, raw: DumpLocation
) -> list[DumpTable]:
    """The archive's tables and COPY columns from its ``toc.dat`` (placeholder empty data
    files let pg_restore print the data section's COPY statements without the data)."""
    with tempfile.TemporaryDirectory(prefix="scrub_toc_") as tmp:
        directory = Path(tmp)
        toc = store.get_bytes(raw.bucket, raw.key(TOC))
        if toc is None:
            raise ScrubError(f"dump {raw.uri} has no {TOC}")
        (directory / TOC).write_bytes(toc)
        listing = pg_tools.archive_listing(directory)
        for entry in parse_toc_list(listing):
            if entry.description == "TABLE DATA":
                (directory / f"{entry.dump_id}.dat").touch()
        data_script = pg_tools.archive_script(directory, "data")
        schema_script = pg_tools.archive_script(directory, "pre-data")
    return dump_tables(listing, data_script, schema_script)


def _hmac_key(settings: ScrubSettings, plan: ScrubPlan) -> bytes:
    keyed = any(r.action in KEYED_ACTIONS for t in plan.tables for r in t.rules.values())
    value = os.environ.get(settings.hmac_key_env, "")
    if keyed and len(value) < 16:
        raise ScrubError(
            f"scrub rules use keyed actions: set {settings.hmac_key_env} (at least 16 characters)"
        )
    return value.encode()


def _scan_job(
    s3: S3Settings, clean: DumpLocation, plan: TablePlan, originals: frozenset[bytes]
) -> TableScanJob:
    """Originals are looked for in kept and masked text columns, patterns in kept ones."""
    columns: dict[int, str] = {}
    patterns: list[int] = []
    for index, (column, rule) in enumerate(plan.rules.items()):
        if rule.action in ("keep", "mask") and plan.table.is_text(column):
            columns[index] = display_name(plan.table.qualified, column)
            if rule.action == "keep" and rule.scan:
                patterns.append(index)
    return TableScanJob(
        s3,
        plan.table.qualified,
        clean.bucket,
        clean.key(plan.table.data_file),
        columns,
        tuple(patterns),
        originals,
    )


def _pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from this one (Linux): they start in milliseconds and share its
    imported modules, where a spawned worker re-imports Dagster (~2.5 s, ~180 MB each). The
    workers touch no lock another thread may hold: their own S3 client, ISA-L, pure core."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max(1, workers), mp_context=multiprocessing.get_context(method))


def scrub_dump(
    settings: ScrubSettings,
    rules: ScrubRules,
    store: ObjectStoreResource,
    pg_tools: PgToolsResource,
    dump_key: str,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Scrub ``dump_key`` from the extract bucket into the load bucket; returns the report
    (also stored as the clean manifest)."""
    started = time.monotonic()
    raw = DumpLocation(settings.extract_bucket, settings.extract_prefix, dump_key, "extract_bucket")
    clean = DumpLocation(settings.load_bucket, settings.load_prefix, dump_key, "load_bucket")
    raw_manifest = read_manifest(store, raw)
    if raw_manifest is None:
        raise ScrubError(f"dump {raw.uri} has no manifest: it is incomplete or was pruned")
    plan = plan_scrub(rules, read_archive_tables(store, pg_tools, raw))
    if rules.custom_sql:
        raise ScrubError("scrub_rules.custom_sql: custom SQL steps are not supported yet")
    hmac_key = _hmac_key(settings, plan)
    log(f"dump {dump_key}: {len(plan.tables)} tables covered; writing {clean.uri}")
    delete_dump(store, clean)  # whatever a failed earlier try left behind
    sse = encryption_args(settings.kms_key_id)
    endpoint = store.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    s3 = S3Settings(store.client().meta.region_name, endpoint, store.multipart_chunk_mb)
    jobs = _table_jobs(settings, plan, s3, raw, clean, sse, hmac_key)
    unchanged = [p for p in plan.tables if p.copies_unchanged]
    scrub_started = time.monotonic()
    with _pool(settings.workers) as pool, ThreadPoolExecutor(4) as threads:
        names = [p.table.data_file for p in unchanged] + [TOC]
        copies = threads.map(lambda n: copy_object(store, raw, clean, n, sse), names)
        results: list[TableScrubResult] = list(pool.map(scrub_table_file, jobs))
        list(copies)
        scrub_seconds = time.monotonic() - scrub_started
        report = _verify(pool, plan, results, s3, clean, store)
    report.update(
        dump_key=dump_key,
        raw_uri=raw.uri,
        clean_uri=clean.uri,
        raw_created_at=raw_manifest.get("created_at"),
        scrubbed_at=datetime.now(UTC).isoformat(),
        columns_per_action=plan.columns_per_action(),
        unused_rules=plan.unused_rules,
        scrub_seconds=round(scrub_seconds, 3),
        scrub_text_mb_per_s=_rate(sum(r.text_bytes for r in results), scrub_seconds),
        seconds=round(time.monotonic() - started, 3),
    )
    put_manifest(store, clean, report, sse)
    if settings.keep_raw_dumps_days == 0:
        delete_dump(store, raw)
    return report


def _table_jobs(
    settings: ScrubSettings,
    plan: ScrubPlan,
    s3: S3Settings,
    raw: DumpLocation,
    clean: DumpLocation,
    sse: dict[str, str],
    hmac_key: bytes,
) -> list[TableScrubJob]:
    """One worker job per table with a scrubbing rule or truncated."""
    return [
        TableScrubJob(
            s3,
            p,
            raw.bucket,
            raw.key(p.table.data_file),
            clean.bucket,
            clean.key(p.table.data_file),
            sse,
            hmac_key,
            settings.residual_sample_fraction,
        )
        for p in plan.tables
        if not p.copies_unchanged
    ]


def _rate(nbytes: int, seconds: float) -> float:
    return round(nbytes / 1e6 / seconds, 2) if seconds > 0 else 0.0


def _verify(
    pool: ProcessPoolExecutor,
    plan: ScrubPlan,
    results: list[TableScrubResult],
    s3: S3Settings,
    clean: DumpLocation,
    store: ObjectStoreResource,
) -> dict[str, Any]:
    """The residual scan over every clean table; raises (after deleting the clean objects)
    on any hit. Returns rows per table before/after and the scan's counts."""
    originals = frozenset().union(*(r.originals for r in results))
    counts = ResidualCounts(originals=len(originals))
    for result in results:
        counts.merge(result.identity)
        counts.originals_sampled |= result.sampled
    scan_jobs = [_scan_job(s3, clean, p, originals) for p in plan.tables]
    scans = list(pool.map(scan_table_file, scan_jobs))
    for scan in scans:
        counts.merge(scan.counts)
    counts.originals = len(originals)
    before = {r.table: r.rows_before for r in results}
    tables = {
        scan.table: {
            "file": next(p.table.data_file for p in plan.tables if p.table.qualified == scan.table),
            "rows_before": before.get(scan.table, scan.rows),
            "rows": scan.rows,
        }
        for scan in scans
    }
    if counts.total:
        delete_dump(store, clean)
        hits = ", ".join(f"{k}: {v}" for k, v in counts.summary()["by_column"].items())  # type: ignore[union-attr]
        raise ScrubError(f"residual scan of {clean.uri} found PII left behind ({hits})")
    return {"tables": tables, "residual": counts.summary(), "verified": True}


@step_failure_policy("postgres dump: scrub")
def materialize_clean_dump(
    settings: ScrubSettings,
    rules: ScrubRules,
    store: ObjectStoreResource,
    pg_tools: PgToolsResource,
    dump_key: str,
    log: Callable[[str], None] = lambda _: None,
) -> dg.MaterializeResult:
    """The step of ``["s3", I, "clean_dump"]``: the scrubbed, verified dump in the load bucket."""
    report = scrub_dump(settings, rules, store, pg_tools, dump_key, log)
    tables = report["tables"]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(t["rows"] for t in tables.values()),
            "clean_uri": dg.MetadataValue.url(report["clean_uri"]),
            "raw_uri": report["raw_uri"],
            "tables": len(tables),
            "rows_per_table": dg.MetadataValue.json(
                {k: {"before": v["rows_before"], "after": v["rows"]} for k, v in tables.items()}
            ),
            "columns_per_action": dg.MetadataValue.json(report["columns_per_action"]),
            "residual_scan": dg.MetadataValue.json(report["residual"]),
            "unused_rules": dg.MetadataValue.json(report["unused_rules"]),
            "scrub_seconds": report["scrub_seconds"],
            "scrub_text_mb_per_s": report["scrub_text_mb_per_s"],
            "seconds": report["seconds"],
        }
    )
