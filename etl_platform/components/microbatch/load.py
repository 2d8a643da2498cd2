"""Load step: a manifest's files (or a whole day's prefix) into the target table, merged.

Runbook (the replaced Lambda's ``loader.handler`` and ``bulk_loader.handler`` in one step):

1. Which files: a micro-batch run loads exactly its manifest's files, given in the run config by
   the sensor; a plain materialization of a day lists the day's prefix (``source_prefix`` + the
   day pattern rendered), orders the files by upload time then key, and writes a manifest for
   them too, so every load can be replayed from S3.
2. One transaction per day: stage every file by COPY through ``WarehouseResource`` (file after
   file, in manifest order), then merge (or append). A failure anywhere rolls everything back.
3. Serialization failures (40001) and other transient errors retry the whole transaction with
   capped exponential backoff and full jitter (``core/retry.py``); any other error fails the
   step at once (``run_policy.step_failure_policy``), naming the S3 key or the table.

The run log shows the files and bytes staged of the manifest's totals (with rate and ETA), then
the rows merged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql

from etl_platform.components.progress import HasLog, StepProgress
from etl_platform.components.run_policy import step_failure_policy
from etl_platform.core import s3_layout
from etl_platform.core.microbatch import DayPattern, Manifest, ManifestFile
from etl_platform.core.retry import RetrySettings
from etl_platform.core.s3_layout import split_s3_uri
from etl_platform.core.table_spec import TableSpec
from etl_platform.core.warehouse import Dialect, FileFormat, columnar_stage
from etl_platform.core.warehouse import merge_load as wml
from etl_platform.core.warehouse.merge_outcomes import load_outcomes, upsert_action_counts
from etl_platform.core.warehouse.merge_upsert import upsert_statement
from etl_platform.resources import ObjectSettings, ObjectStoreResource, WarehouseResource
from etl_platform.resources.copy_input import parquet_object_columns

MANIFEST_BUCKET = "manifest_bucket"
#: The files of a manifest are in the source bucket (the sensor takes no other bucket's events).
FILE_SETTINGS = ObjectSettings(objects="source_bucket", manifest=MANIFEST_BUCKET)


class FileLoadError(RuntimeError):
    """COPY of one file failed; the message names the file and the table. Classified by its
    cause (a lost connection stays transient)."""


@dataclass(frozen=True)
class LoadTarget:
    """Everything the step needs from the component's settings."""

    instance: str
    schema: str
    table: str
    source_bucket: str
    source_prefix: str
    manifest_bucket: str
    manifest_prefix: str
    day_pattern: DayPattern
    merge_keys: wml.MergeKeys | None
    retry: RetrySettings
    create_spec: TableSpec | None = None
    file_format: FileFormat = FileFormat()

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass
class LoadCounts:
    attempts: int = 0
    rows_read: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def metadata(self) -> dict[str, int]:
        return load_outcomes(self.rows_read, self.counts)


def day_manifest(target: LoadTarget, store: ObjectStoreResource, day: date) -> Manifest | None:
    """Bulk load: the day's files under ``source_prefix`` + the rendered day pattern, in upload
    order (then key), as a manifest; None when the day has no files."""
    prefix = target.source_prefix + target.day_pattern.render(day)
    objects = [
        o
        for o in store.list_objects(target.source_bucket, prefix, setting="source_bucket")
        if not o["Key"].endswith("/") and target.day_pattern.day_in_key(o["Key"]) == day
    ]
    objects.sort(key=lambda o: (o["LastModified"], o["Key"]))
    files = tuple(
        ManifestFile(
            url=s3_layout.s3_uri(target.source_bucket, o["Key"]),
            size=int(o["Size"]),
            etag=str(o.get("ETag", "")).strip('"'),
            event_time=o["LastModified"].astimezone(UTC),
        )
        for o in objects
    )
    return Manifest(target.instance, day, files) if files else None


def write_manifest(target: LoadTarget, store: ObjectStoreResource, manifest: Manifest) -> str:
    """Put the manifest (Redshift's format) at its deterministic key; returns its URI."""
    key = s3_layout.microbatch_manifest_key(
        target.manifest_prefix, target.instance, manifest.day, manifest.manifest_id
    )
    store.put_bytes(manifest.redshift_bytes(), target.manifest_bucket, key, setting=MANIFEST_BUCKET)
    return s3_layout.s3_uri(target.manifest_bucket, key)


@dataclass(frozen=True)
class TargetShape:
    """The target's columns, and whether it has a unique index on exactly the merge key."""

    columns: list[str]
    key_is_unique: bool


def _open_load(target: LoadTarget, dialect: Dialect, cur: Any) -> TargetShape:
    """Begin the load (isolation, lock), create the stage and read the target's shape, in
    one round trip."""
    keys = target.merge_keys.primary_key if target.merge_keys else ()
    rows = _execute_together(
        cur,
        [
            *wml.begin_load(dialect, target.schema, target.table),
            *wml.create_stage(dialect, target.schema, target.table),
            wml.columns_query(dialect, target.schema, target.table, keys),
        ],
    )
    if not rows:
        raise ValueError(
            f"target table {target.label} of micro-batch instance {target.instance!r} does not "
            "exist (setting `target_table`; give `columns` to have it created)"
        )
    return TargetShape([r[0] for r in rows], bool(rows[0][1]))


def _stage_files(
    context: HasLog,
    target: LoadTarget,
    warehouse: WarehouseResource,
    store: ObjectStoreResource,
    conn: psycopg.Connection,
    columns: list[str],
    manifest: Manifest,
    manifest_uri: str,
) -> int:
    """COPY every file into the stage, in manifest order; returns the rows read."""
    rows = 0
    what = f"staging of {manifest_uri} for {target.label}"
    files = StepProgress(context, what, "files", len(manifest.files))
    staged = StepProgress(context, what, "bytes", manifest.total_bytes)
    for ordinal, f in enumerate(manifest.files):
        try:
            rows += _stage_file(
                target, warehouse, store, conn, columns, f.url, ordinal, manifest_uri
            )
        except Exception as exc:
            raise FileLoadError(f"COPY of {f.url} into {target.label} failed: {exc}") from exc
        staged.tick(f.size or 0)
        files.tick()
    files.done()
    staged.done()
    return rows


def _stage_file(
    target: LoadTarget,
    warehouse: WarehouseResource,
    store: ObjectStoreResource,
    conn: psycopg.Connection,
    columns: list[str],
    url: str,
    ordinal: int,
    manifest_uri: str,
) -> int:
    """COPY one file into the stage with its load order; returns its rows. Parquet on Redshift
    goes through a file stage of exactly the file's columns (``core/warehouse/columnar_stage``:
    COPY from Parquet takes no column list and maps columns by position)."""
    dialect = warehouse.sql_dialect
    by_position = target.file_format.is_parquet and dialect.copies_parquet_by_position
    table, copied = wml.STAGE_TABLE, columns
    if by_position:
        copied = parquet_object_columns(store, url, columns, setting=FILE_SETTINGS.objects)
        conn.execute(columnar_stage.create_file_stage(dialect, copied))
        table = columnar_stage.FILE_STAGE_TABLE
    rows = warehouse.load_csv_objects(
        conn,
        None,
        table,
        copied,
        [url],
        store,
        f"{manifest_uri}.{ordinal}",
        settings=FILE_SETTINGS,
        file_format=target.file_format,
    ).rows
    if by_position:
        for statement in columnar_stage.file_stage_into_stage(dialect, columns, ordinal):
            conn.execute(statement)
    elif not dialect.identity_numbers_copied_rows:
        conn.execute(wml.number_stage_file(dialect, ordinal))
    return rows


def merge_stage(
    cur: Any,
    dialect: Dialect,
    schema: str,
    table: str,
    keys: wml.MergeKeys | None,
    shape: TargetShape,
) -> dict[str, int]:
    """Append the stage (no keys), or merge it: one upsert statement on PostgreSQL when the key
    has a unique index, else the portable delete-insert. Returns the row count of each action,
    in one shape for both merges (see ``core/warehouse/merge_outcomes.py``)."""
    columns = shape.columns
    if keys is None:
        cur.execute(wml.append_statement(dialect, schema, table, columns))
        return {"insert": cur.rowcount}
    if dialect.supports_on_conflict_upsert and shape.key_is_unique:
        row = cur.execute(upsert_statement(schema, table, columns, keys, dialect)).fetchone()
        return upsert_action_counts(row)
    counts = {}
    for action, statement in wml.merge_statements(dialect, schema, table, columns, keys):
        cur.execute(statement)
        counts[action] = cur.rowcount
    return counts


def _execute_together(cur: Any, statements: list[sql.Composed]) -> list[tuple[Any, ...]]:
    """Parameterless statements in one round trip (psycopg sends a query without parameters
    by the simple query protocol, which takes several statements); the last one's rows."""
    cur.execute(sql.SQL("; ").join(statements), prepare=False)
    while cur.nextset():
        pass
    return cur.fetchall() if cur.description else []


def _load_once(
    context: HasLog,
    target: LoadTarget,
    warehouse: WarehouseResource,
    store: ObjectStoreResource,
    manifest: Manifest,
    manifest_uri: str,
    result: LoadCounts,
) -> None:
    result.attempts += 1
    dialect = warehouse.sql_dialect
    with warehouse.connect() as conn:
        with conn.transaction():
            with conn.cursor() as cur:
                shape = _open_load(target, dialect, cur)
            rows_read = _stage_files(
                context, target, warehouse, store, conn, shape.columns, manifest, manifest_uri
            )
            what = f"merge of {manifest_uri} into {target.label}"
            merged = StepProgress(context, what, "rows written")
            with conn.cursor() as cur:
                counts = merge_stage(
                    cur, dialect, target.schema, target.table, target.merge_keys, shape
                )
            merged.tick(max(counts.get("insert", 0), 0))
            merged.done()
    result.rows_read, result.counts = int(rows_read), counts


def ensure_target(target: LoadTarget, warehouse: WarehouseResource) -> None:
    """Create the target (schema, table, key) when ``columns`` are configured and it is missing."""
    if target.create_spec is None:
        return
    warehouse.create_if_missing(
        wml.create_target_if_missing(warehouse.sql_dialect, target.schema, target.create_spec),
        f"the target table {target.label}",
    )


def _latency_seconds(manifest: Manifest, committed: datetime) -> dict[str, float]:
    times = [f.event_time for f in manifest.files if f.event_time is not None]
    if not times:
        return {}
    return {
        "event_to_commit_oldest_s": round((committed - min(times)).total_seconds(), 3),
        "event_to_commit_newest_s": round((committed - max(times)).total_seconds(), 3),
    }


def load_manifest(
    context: HasLog,
    target: LoadTarget,
    warehouse: WarehouseResource,
    store: ObjectStoreResource,
    manifest: Manifest,
    manifest_uri: str,
) -> dict[str, Any]:
    """Load one manifest into the target in one transaction, retrying transient failures;
    returns the materialization metadata."""
    for f in manifest.files:
        split_s3_uri(f.url)
    result = LoadCounts()
    started = time.monotonic()

    def on_retry(attempt: int, delay: float, exc: BaseException) -> None:
        context.log.warning(
            f"load of {manifest_uri} into {target.label}: attempt {attempt} failed "
            f"({type(exc).__name__}: {exc}); retrying in {delay:.2f}s"
        )

    target.retry.call(
        lambda: _load_once(context, target, warehouse, store, manifest, manifest_uri, result),
        what=f"load of {manifest_uri} into {target.label}",
        on_retry=on_retry,
    )
    committed = datetime.now(UTC)
    seconds = time.monotonic() - started
    return {
        "manifest_uri": dg.MetadataValue.url(manifest_uri),
        "manifest_id": manifest.manifest_id,
        "files": len(manifest.files),
        "bytes": manifest.total_bytes,
        **result.metadata(),
        "attempts": result.attempts,
        "duration_s": round(seconds, 3),
        "rows_per_s": round(result.rows_read / seconds, 1) if seconds > 0 else 0.0,
        **_latency_seconds(manifest, committed),
    }


def _load_one_day(
    context: dg.AssetExecutionContext,
    target: LoadTarget,
    warehouse: WarehouseResource,
    store: ObjectStoreResource,
    day: date,
    manifest: Manifest | None,
    manifest_uri: str | None,
) -> dict[str, Any]:
    if manifest is not None and manifest_uri is not None:
        return {
            "kind": "micro-batch",
            **load_manifest(context, target, warehouse, store, manifest, manifest_uri),
        }
    chosen = day_manifest(target, store, day)
    if chosen is None:
        context.log.info(f"bulk load of {target.label}: no files for {day}")
        return {"kind": "bulk", "files": 0}
    uri = write_manifest(target, store, chosen)
    return {"kind": "bulk", **load_manifest(context, target, warehouse, store, chosen, uri)}


def load_days(
    context: dg.AssetExecutionContext,
    target: LoadTarget,
    warehouse: WarehouseResource,
    store: ObjectStoreResource,
    days: list[date],
    manifest: Manifest | None = None,
    manifest_uri: str | None = None,
) -> dg.MaterializeResult:
    """The step body. With a manifest (a micro-batch run) it loads exactly those files into
    their day; without one it bulk-loads each day of the run's partitions (one transaction per
    day, in day order). A range run reports totals of its days."""
    if manifest is not None and [manifest.day] != days:
        raise ValueError(
            f"manifest {manifest.manifest_id} is for {manifest.day}, the run for {days}"
        )

    def body() -> dg.MaterializeResult:
        ensure_target(target, warehouse)
        per_day = [
            _load_one_day(context, target, warehouse, store, d, manifest, manifest_uri)
            for d in days
        ]
        if len(per_day) == 1:
            return dg.MaterializeResult(metadata=per_day[0])
        totals: dict[str, Any] = {"kind": "bulk", "days": len(per_day)}
        for metadata in per_day:
            for name, value in metadata.items():
                if isinstance(value, int | float) and name.startswith(("files", "bytes", "rows_")):
                    totals[name] = totals.get(name, 0) + value
                elif name in ("attempts", "duration_s"):
                    totals[name] = totals.get(name, 0) + value
        seconds = totals.get("duration_s", 0)
        totals["rows_per_s"] = round(totals.get("rows_read", 0) / seconds, 1) if seconds else 0.0
        return dg.MaterializeResult(metadata=totals)

    what = f"micro-batch load of {target.label} for {', '.join(map(str, days))}"
    return step_failure_policy(what)(body)()
