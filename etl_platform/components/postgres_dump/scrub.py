"""Runbook step 2: scrub a raw dump into a clean dump, fail closed.

1. Read the archive's table list and COPY column lists (``pg_restore -l`` and the data script,
   from ``toc.dat`` alone).
2. Plan: every column of every table must be covered by a rule; a gap fails here, naming each
   ``table.column``, before anything is written to the load bucket.
3. Rewrite each ruled table's data file, its chunks spread over light worker processes
   (:mod:`.table_scrub`); copy the others server-side; copy ``toc.dat`` (the schema is
   unchanged). The residual scan runs in the same pass: the workers report fingerprints of the
   originals and of the kept text values, and pattern hits (kept tables are read once for it).
4. Any residual hit deletes the clean objects and fails the run.
5. Write the clean manifest (rows per table, residual results): it marks the clean dump as
   verified. Delete the raw dump unless ``keep_raw_dumps_days`` keeps it.

The run log shows the compressed bytes of data files scrubbed of the archive's total (from the
raw manifest's file sizes), overall and per table, and the tables done.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from isal import isal_zlib

from etl_platform.components.run_policy import step_failure_policy
from etl_platform.core.scrub import (
    DumpTable,
    ResidualCounts,
    ScrubPlan,
    ScrubRules,
    dump_tables,
    plan_scrub,
)
from etl_platform.core.scrub.archive import parse_toc_list
from etl_platform.core.scrub.chunks import ChunkSpec
from etl_platform.core.scrub.constraints import Constraints, parse_constraints
from etl_platform.core.scrub.fingerprints import FingerprintSample
from etl_platform.core.scrub.layout import TOC
from etl_platform.resources import ObjectStoreResource, PgToolsResource

from ..progress import QUIET, HasLog
from .custom_sql import apply_custom_sql
from .dump_objects import (
    DumpLocation,
    archive_files,
    copy_object,
    delete_dump,
    encryption_args,
    put_manifest,
    read_manifest,
)
from .table_scrub import (
    EMPTY_TABLE_DATA,
    ScrubProgress,
    ScrubWorkers,
    TableOutcome,
    TableStream,
    count_rows,
    stream_table,
)

EMPTY_GZIP = isal_zlib.compress(EMPTY_TABLE_DATA, 1, wbits=31)
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
    residual_max_values: int = 1_000_000
    scratch_dsn_env: str | None = None  # custom_sql: a server for the scratch database


def read_archive_tables(
    store: ObjectStoreResource, pg_tools: PgToolsResource, raw: DumpLocation
) -> tuple[list[DumpTable], Constraints]:
    """The archive's tables and COPY columns, and its keys, from its ``toc.dat`` (placeholder
    empty data files let pg_restore print the data section's COPY statements without the
    data)."""
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
        keys_script = pg_tools.archive_script(directory, "post-data")
    return dump_tables(listing, data_script, schema_script), parse_constraints(keys_script)


def _hmac_key(settings: ScrubSettings, plan: ScrubPlan) -> bytes:
    keyed = any(r.action in KEYED_ACTIONS for t in plan.tables for r in t.rules.values())
    value = os.environ.get(settings.hmac_key_env, "")
    if keyed and len(value) < 16:
        raise ScrubError(
            f"scrub rules use keyed actions: set {settings.hmac_key_env} (at least 16 characters)"
        )
    return value.encode()


def scrub_dump(
    settings: ScrubSettings,
    rules: ScrubRules,
    store: ObjectStoreResource,
    pg_tools: PgToolsResource,
    dump_key: str,
    context: HasLog = QUIET,
) -> dict[str, Any]:
    """Scrub ``dump_key`` from the extract bucket into the load bucket; returns the report
    (also stored as the clean manifest)."""
    started = time.monotonic()
    raw = DumpLocation(settings.extract_bucket, settings.extract_prefix, dump_key, "extract_bucket")
    clean = DumpLocation(settings.load_bucket, settings.load_prefix, dump_key, "load_bucket")
    raw_manifest = read_manifest(store, raw)
    if raw_manifest is None:
        raise ScrubError(f"dump {raw.uri} has no manifest: it is incomplete or was pruned")
    plan = plan_scrub(rules, *read_archive_tables(store, pg_tools, raw))
    hmac_key = _hmac_key(settings, plan)
    context.log.info(f"dump {dump_key}: {len(plan.tables)} tables covered; writing {clean.uri}")
    delete_dump(store, clean)  # whatever a failed earlier try left behind
    sse = encryption_args(settings.kms_key_id)
    scrub_started = time.monotonic()
    seed = secrets.randbelow(2**32)
    progress = ScrubProgress(
        context, f"scrub of {dump_key}", raw_manifest.get("files", {}), _data_files(plan)
    )
    try:
        outcomes, sample = _scrub_tables(
            settings, plan, store, raw, clean, sse, hmac_key, seed, progress
        )
        scrub_seconds = time.monotonic() - scrub_started
        if rules.custom_sql:
            apply_custom_sql(
                rules.custom_sql, settings.scratch_dsn_env, store, pg_tools, clean, sse, context
            )
            plan, outcomes = _rescan(
                settings, rules, store, pg_tools, clean, sample, outcomes, seed, context
            )
        report = _verify(plan, outcomes, sample, clean.uri)
    except BaseException:
        delete_dump(store, clean)  # nothing unverified stays in the load bucket
        raise
    text_bytes = sum(o.text_bytes for o in outcomes.values())
    report.update(
        dump_key=dump_key,
        raw_uri=raw.uri,
        clean_uri=clean.uri,
        raw_created_at=raw_manifest.get("created_at"),
        scrubbed_at=datetime.now(UTC).isoformat(),
        columns_per_action=plan.columns_per_action(),
        unused_rules=plan.unused_rules,
        scrub_seconds=round(scrub_seconds, 3),
        scrub_text_mb=round(text_bytes / 1e6, 1),
        scrub_text_mb_per_s=_rate(text_bytes, scrub_seconds),
        seconds=round(time.monotonic() - started, 3),
    )
    put_manifest(store, clean, report, sse)
    if settings.keep_raw_dumps_days == 0:
        delete_dump(store, raw)
    return report


def _scrub_tables(
    settings: ScrubSettings,
    plan: ScrubPlan,
    store: ObjectStoreResource,
    raw: DumpLocation,
    clean: DumpLocation,
    sse: dict[str, str],
    hmac_key: bytes,
    seed: int,
    progress: ScrubProgress,
) -> tuple[dict[str, TableOutcome], FingerprintSample]:
    """Every table's data file, largest work first: scrubbed tables are rewritten through the
    workers; kept tables are copied server-side (and scanned when they have text columns);
    truncated tables get an empty data file. Returns the outcome per table."""
    client = store.client()
    specs = [ChunkSpec.from_plan(p) for p in plan.tables]
    sample = FingerprintSample(settings.residual_sample_fraction, settings.residual_max_values)
    outcomes: dict[str, TableOutcome] = {}
    with (
        ThreadPoolExecutor(4) as threads,
        ScrubWorkers(settings.workers, specs, hmac_key, seed) as pool,
    ):
        copies = [
            threads.submit(copy_object, store, raw, clean, name, sse)
            for name in [TOC, *(p.table.data_file for p in plan.tables if p.copies_unchanged)]
        ]
        for index, table_plan in enumerate(plan.tables):
            table, name = table_plan.table.qualified, table_plan.table.data_file
            on_read = progress.table(table, name)
            if table_plan.truncate:
                outcome = TableOutcome(
                    table, count_rows(client, raw.bucket, raw.key(name), on_read)
                )
                client.put_object(Bucket=clean.bucket, Key=clean.key(name), Body=EMPTY_GZIP, **sse)
            elif table_plan.copies_unchanged and not specs[index].checked:
                outcome = TableOutcome(
                    table, count_rows(client, raw.bucket, raw.key(name), on_read)
                )
                outcome.rows = outcome.rows_before
            else:
                writes = not table_plan.copies_unchanged
                stream = TableStream(
                    index,
                    table,
                    raw.bucket,
                    raw.key(name),
                    clean.bucket if writes else None,
                    clean.key(name) if writes else None,
                    sse,
                )
                outcome = stream_table(client, pool, stream, sample, on_read=on_read)
            outcomes[table] = outcome
            progress.table_done()
        for copy in copies:
            copy.result()
    progress.done()
    return outcomes, sample


def _rescan(
    settings: ScrubSettings,
    rules: ScrubRules,
    store: ObjectStoreResource,
    pg_tools: PgToolsResource,
    clean: DumpLocation,
    sample: FingerprintSample,
    before: dict[str, TableOutcome],
    seed: int,
    context: HasLog = QUIET,
) -> tuple[ScrubPlan, dict[str, TableOutcome]]:
    """After custom SQL replaced the clean archive: its columns must still be covered by the
    rules, and its kept text is scanned again against the originals of the first pass."""
    plan = plan_scrub(rules, *read_archive_tables(store, pg_tools, clean))
    what = f"residual scan after custom SQL of {clean.dump_key}"
    progress = ScrubProgress(context, what, archive_files(store, clean), _data_files(plan))
    sample.clear_checked()
    client = store.client()
    specs = [ChunkSpec.from_plan(p, scan_only=True) for p in plan.tables]
    outcomes: dict[str, TableOutcome] = {}
    with ScrubWorkers(settings.workers, specs, b"", seed) as pool:
        for index, table_plan in enumerate(plan.tables):
            table, key = table_plan.table.qualified, clean.key(table_plan.table.data_file)
            on_read = progress.table(table, table_plan.table.data_file)
            if specs[index].checked:
                stream = TableStream(index, table, clean.bucket, key)
                outcome = stream_table(client, pool, stream, sample, on_read=on_read)
            else:
                outcome = TableOutcome(table, count_rows(client, clean.bucket, key, on_read))
            outcome.rows = outcome.rows_before
            outcome.rows_before = before[table].rows_before if table in before else outcome.rows
            outcomes[table] = outcome
            progress.table_done()
    progress.done()
    return plan, outcomes


def _data_files(plan: ScrubPlan) -> list[str]:
    return [p.table.data_file for p in plan.tables]


def _rate(nbytes: int, seconds: float) -> float:
    return round(nbytes / 1e6 / seconds, 2) if seconds > 0 else 0.0


def _verify(
    plan: ScrubPlan, outcomes: dict[str, TableOutcome], sample: FingerprintSample, where: str
) -> dict[str, Any]:
    """The residual scan's verdict over every table; raises on any hit (the caller deletes
    the clean objects). Returns rows per table before/after and the scan's counts."""
    counts = ResidualCounts()
    for outcome in outcomes.values():
        counts.merge(outcome.counts)
    for column, found in sample.hits().items():
        counts.hits[(column, "original_value")] += found
    summary = sample.summary()
    counts.originals = int(summary["original_values_checked"])  # type: ignore[call-overload]
    counts.originals_sampled = bool(summary["sampled"])
    residual = {**counts.summary(), **summary}
    tables = {
        p.table.qualified: {
            "file": p.table.data_file,
            "rows_before": outcomes[p.table.qualified].rows_before,
            "rows": outcomes[p.table.qualified].rows,
        }
        for p in plan.tables
    }
    if counts.total:
        hits = ", ".join(f"{k}: {v}" for k, v in residual["by_column"].items())  # type: ignore[attr-defined]
        raise ScrubError(f"residual scan of {where} found PII left behind ({hits})")
    return {"tables": tables, "residual": residual, "verified": True}


@step_failure_policy("postgres dump: scrub")
def materialize_clean_dump(
    settings: ScrubSettings,
    rules: ScrubRules,
    store: ObjectStoreResource,
    pg_tools: PgToolsResource,
    dump_key: str,
    context: HasLog = QUIET,
) -> dg.MaterializeResult:
    """The step of ``["s3", I, "clean_dump"]``: the scrubbed, verified dump in the load bucket."""
    report = scrub_dump(settings, rules, store, pg_tools, dump_key, context)
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
