"""How a lake day is replaced for readers: one atomic flip of the Glue partition.

Every export of a day writes its parts under a prefix of its own
(``.../day=DD/run=EXPORT_ID/``, :func:`etl_platform.core.s3_layout.lake_export_prefix`), which no
reader knows of. Once the parts are all there (the prefix is listed and must hold exactly the
parts written, nothing more or less), the Glue partition's location is pointed at the new prefix
(``create_partition`` or ``update_partition``): that is the flip. Only then are the day's other
parts deleted (the previous export's, a killed export's, parts of the older flat layout).

A run killed or failed before the flip leaves the previous export registered and whole; its
own parts stay unregistered under their prefix until the next successful export of the day
deletes them. One export per (table, day) at a time is the asset's pool
(``lake_export/GLUE_DATABASE.TABLE``, exclusive by the instance's default pool limit); the
listing before the flip also refuses to register an export whose parts someone deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

import pyarrow as pa

from etl_platform.core import lake, s3_layout

if TYPE_CHECKING:
    from .export import TableRun


def export_id(run_id: str, retry_number: int) -> str:
    """The id of one export attempt: the run id, and the retry attempt when it is one (a retry
    must not write into the prefix an earlier attempt may already have registered)."""
    return run_id if retry_number <= 0 else f"{run_id}-retry{retry_number}"


def export_prefix(run: TableRun, day: date) -> str:
    """The key prefix this step's export of ``day`` writes its parts under."""
    ctx = run.context
    return s3_layout.lake_export_prefix(
        run.lake.prefix,
        run.table.lake_table,
        day,
        export_id(ctx.run.run_id, ctx.retry_number),
    )


def _check_complete(run: TableRun, day: date, prefix: str, written: Sequence[str]) -> None:
    listed = sorted(
        o["Key"] for o in run.resources.s3.list_objects(run.lake.bucket, prefix, setting="bucket")
    )
    if listed != sorted(written):
        raise lake.LakeExportError(
            f"{run.table.name} {day}: s3://{run.lake.bucket}/{prefix} holds {len(listed)} "
            f"object(s), the export wrote {len(written)}; not registering it"
        )


def publish_day(
    run: TableRun, day: date, prefix: str, result: lake.ExportResult, expected: pa.Schema
) -> int:
    """Check the export under ``prefix`` is complete, point the day's Glue partition at it,
    then delete the day's superseded parts; returns how many were deleted."""
    lake_, table = run.lake, run.table
    s3, glue = run.resources.s3, run.resources.glue
    settings = lake_.glue_settings(table)
    _check_complete(run, day, prefix, result.locations)
    if not result.schema.equals(expected, check_metadata=False):
        # the table changed between planning and export: the Glue table follows it
        table_input = lake_.glue_table_input(table, result.schema)
        glue.ensure_table(lake_.glue_database, table_input, settings=settings)
    glue.ensure_partition(
        lake_.glue_database,
        table.lake_table,
        lake.glue_partition_input(
            lake_.table_location(table),
            result.schema,
            day,
            compression=lake_.compression,
            location=s3_layout.s3_uri(lake_.bucket, prefix),
        ),
        settings=settings,
    )
    day_prefix = s3_layout.lake_partition_prefix(lake_.prefix, table.lake_table, day)
    listed = [o["Key"] for o in s3.list_objects(lake_.bucket, day_prefix, setting="bucket")]
    superseded = s3_layout.superseded_part_keys(listed, prefix)
    if superseded:
        s3.delete_keys(lake_.bucket, superseded, setting="bucket")
        run.context.log.info(f"{table.name} {day}: deleted {len(superseded)} superseded part(s)")
    return len(superseded)


def registered_prefix(run: TableRun, day: date) -> str | None:
    """The key prefix the day's Glue partition points at (None: not registered, or not in
    this lake's bucket)."""
    lake_, table = run.lake, run.table
    values = list(s3_layout.partition_values(day))
    partition = run.resources.glue.get_partition(
        lake_.glue_database, table.lake_table, values, settings=lake_.glue_settings(table)
    )
    if partition is None:
        return None
    location = partition.get("StorageDescriptor", {}).get("Location", "")
    try:
        bucket, key = s3_layout.split_s3_uri(location)
    except ValueError:
        return None
    if bucket != lake_.bucket:
        return None
    return key if key.endswith("/") else key + "/"


def registered_parts(run: TableRun, day: date) -> list[str]:
    """The part keys readers of the day see: those under the Glue partition's location. With no
    partition registered, the parts under the day's prefix when they are one export (else
    none: which export is the day would be a guess)."""
    lake_ = run.lake
    prefix = registered_prefix(run, day)
    if prefix is not None:
        listed = [
            o["Key"] for o in run.resources.s3.list_objects(lake_.bucket, prefix, setting="bucket")
        ]
        return s3_layout.lake_part_keys(listed)
    day_prefix = s3_layout.lake_partition_prefix(lake_.prefix, run.table.lake_table, day)
    listed = [
        o["Key"] for o in run.resources.s3.list_objects(lake_.bucket, day_prefix, setting="bucket")
    ]
    parts = s3_layout.lake_part_keys(listed)
    directories = {k.rsplit("/", 1)[0] for k in parts}
    return parts if len(directories) == 1 else []
