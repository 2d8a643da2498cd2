"""The per-day checks of a lake table, evaluated after each day's export (or alone, to
re-validate what is there): the source count against the Parquet rows, the footer read-back, the
Glue partition, and a warning when a day is far below its trailing median. The Parquet checks
read the parts the day's Glue partition points at (after an export: the new export's)."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import dagster as dg
import pyarrow as pa
from pyarrow import fs as pafs

from etl_platform.core import lake, s3_layout
from etl_platform.resources import CatalogResource, ObjectStoreResource

if TYPE_CHECKING:
    from .component import LakeExport, LakeTable

COUNT_CHECK = "source_count_matches"
READ_BACK_CHECK = "parquet_reads_back"
GLUE_CHECK = "glue_partition_registered"
MEDIAN_CHECK = "count_vs_trailing_median"
TRAILING_DAYS = 7
MIN_HISTORY_DAYS = 3

SourceCount = Callable[[date], int]


@dataclass
class DayCheck:
    name: str
    passed: bool
    description: str
    metadata: dict[str, Any]
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR


def arrow_s3_filesystem(s3: ObjectStoreResource) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem that reaches the same endpoint and region as ``s3``'s client
    (``AWS_ENDPOINT_URL`` on the local stack; AWS's own endpoints otherwise). Credentials come
    from the resource when it names them, else from the AWS SDK default chain (which refreshes
    role credentials)."""
    client = s3.client()
    kwargs: dict[str, Any] = {"region": client.meta.region_name or "us-east-1"}
    endpoint = (
        s3.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    if s3.aws_access_key_id and s3.aws_secret_access_key:
        kwargs.update(
            access_key=s3.aws_access_key_id,
            secret_key=s3.aws_secret_access_key,
            session_token=s3.aws_session_token,
        )
    elif s3.profile_name:
        import boto3

        creds = boto3.session.Session(profile_name=s3.profile_name).get_credentials()
        if creds is not None:
            frozen = creds.get_frozen_credentials()
            kwargs.update(
                access_key=frozen.access_key,
                secret_key=frozen.secret_key,
                session_token=frozen.token,
            )
    return pafs.S3FileSystem(**kwargs)


def _parquet_checks(
    lake_: LakeExport,
    keys: Sequence[str],
    written_rows: int | None,
    expected: pa.Schema,
    filesystem: pafs.S3FileSystem | None,
    n_source: int,
    selected: set[str],
) -> list[DayCheck]:
    # What the export wrote is what must be on S3; when only checking, the source's count is
    # the expectation.
    want = written_rows if written_rows is not None else n_source
    parquet_rows: int | None = None
    problem: str | None = None
    try:
        report = lake.read_back_check(
            [f"{lake_.bucket}/{k}" for k in keys], want, expected, filesystem=filesystem
        )
        parquet_rows = report.rows
    except lake.ReadBackError as exc:
        problem = str(exc)
    out = []
    if READ_BACK_CHECK in selected:
        uris = [s3_layout.s3_uri(lake_.bucket, k) for k in keys]
        out.append(
            DayCheck(
                READ_BACK_CHECK,
                problem is None,
                problem or f"{len(keys)} part(s), {parquet_rows} rows, schema as planned",
                {
                    "parts": len(keys),
                    "expected_rows": want,
                    "parquet_rows": parquet_rows,
                    "s3_uris": dg.MetadataValue.json(uris),
                },
            )
        )
    if COUNT_CHECK in selected:
        out.append(
            DayCheck(
                COUNT_CHECK,
                parquet_rows is not None and parquet_rows == n_source,
                f"source {n_source} rows, Parquet {parquet_rows} rows"
                if parquet_rows is not None
                else f"source {n_source} rows, Parquet unreadable: {problem}",
                {"source_rows": n_source, "parquet_rows": parquet_rows},
            )
        )
    return out


def day_checks(
    lake_: LakeExport,
    table: LakeTable,
    day: date,
    keys: Sequence[str],
    written_rows: int | None,
    expected: pa.Schema,
    filesystem: pafs.S3FileSystem | None,
    glue: CatalogResource,
    source_count: SourceCount,
    selected: set[str],
    exported_location: str | None = None,
) -> list[DayCheck]:
    """The selected checks of one day; ``keys`` are the day's part keys, ``written_rows`` what
    this run exported and ``exported_location`` where (None when only checking)."""
    out: list[DayCheck] = []
    if selected & {COUNT_CHECK, READ_BACK_CHECK}:
        n_source = source_count(day)
        out += _parquet_checks(lake_, keys, written_rows, expected, filesystem, n_source, selected)
    if GLUE_CHECK in selected:
        out.append(glue_check(lake_, table, day, expected, glue, exported_location))
    if MEDIAN_CHECK in selected:
        out.append(median_check(lake_, day, source_count))
    return out


def glue_check(
    lake_: LakeExport,
    table: LakeTable,
    day: date,
    expected: pa.Schema,
    glue: CatalogResource,
    exported_location: str | None = None,
) -> DayCheck:
    """The day's Glue partition exists with the table's columns, at the location this run
    exported to (when it exported), or else at some location under the day's prefix."""
    values = list(s3_layout.partition_values(day))
    day_location = lake_.partition_location(table, day)
    want = exported_location or day_location
    # None also when the database or table does not exist
    settings = lake_.glue_settings(table)
    partition = glue.get_partition(lake_.glue_database, table.lake_table, values, settings=settings)
    meta: dict[str, Any] = {"values": "/".join(values), "expected_location": want}
    if partition is None:
        return DayCheck(GLUE_CHECK, False, f"no Glue partition {values}", meta)
    sd = partition.get("StorageDescriptor", {})
    got = sd.get("Location", "")
    meta["location"] = got
    problems = []
    if exported_location is not None and got.rstrip("/") != want.rstrip("/"):
        problems.append(f"location {got!r} != {want!r}")
    elif not (got.rstrip("/") + "/").startswith(day_location):
        problems.append(f"location {got!r} is not under {day_location!r}")
    got_cols = [c["Name"] for c in sd.get("Columns", [])]
    want_cols = [c["Name"] for c in lake.glue_columns(expected)]
    if got_cols != want_cols:
        problems.append(f"columns {got_cols} != {want_cols}")
    return DayCheck(
        GLUE_CHECK,
        not problems,
        "; ".join(problems) or f"partition {'/'.join(values)} registered at {got}",
        meta,
    )


def median_check(lake_: LakeExport, day: date, source_count: SourceCount) -> DayCheck:
    """A warning when the day's source count is below ``min_fraction_of_median`` x the median
    of the trailing week (not compared with fewer than three days of history)."""
    start = date.fromisoformat(lake_.start_date)
    history = [
        day - timedelta(days=i)
        for i in range(1, TRAILING_DAYS + 1)
        if day - timedelta(days=i) >= start
    ]
    n = source_count(day)
    if len(history) < MIN_HISTORY_DAYS:
        return DayCheck(
            MEDIAN_CHECK,
            True,
            f"{len(history)} day(s) of history (< {MIN_HISTORY_DAYS}): not compared",
            {"source_rows": n, "history_days": len(history)},
            dg.AssetCheckSeverity.WARN,
        )
    past = {d.isoformat(): source_count(d) for d in history}
    median = float(statistics.median(past.values()))
    threshold = lake_.min_fraction_of_median * median
    return DayCheck(
        MEDIAN_CHECK,
        n >= threshold,
        f"{n} rows vs trailing median {median:g} (threshold {threshold:g})",
        {
            "source_rows": n,
            "trailing_median": median,
            "threshold": threshold,
            "trailing_counts": dg.MetadataValue.json(past),
        },
        dg.AssetCheckSeverity.WARN,
    )
