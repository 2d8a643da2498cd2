"""Every S3 key the platform writes, and the one ``s3://`` URI helper pair.

DynamoDB pipeline: each extract of a segment writes under a run-unique prefix
``PREFIX/INSTANCE/date=YYYY-MM-DD/segment=NNNN/extract=<id>/TABLE.csv.gz``; the segment's
``_manifest.json`` (written last, in one PUT) is the only pointer to the current extract, so a
load that read the old manifest keeps reading complete old objects. The data-schema cache is
``PREFIX/INSTANCE/v<fingerprint>.json`` plus a ``latest.json`` pointer.

Parquet lake: ``PREFIX/TABLE/year=YYYY/month=MM/day=DD/run=EXPORT_ID/part-NNNNN.parquet``
(Hive-style partition directories, zero-padded values). Every export of a day writes under a
prefix of its own (:func:`lake_export_prefix`), the Glue partition is pointed at it once its
parts are complete, and then every other part of the day (an earlier export's, a killed one's,
or a part of the older layout directly under ``day=DD/``) is found by
:func:`superseded_part_keys` and deleted. Readers that go through Glue see one whole export.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

# Bucket naming rules (general purpose buckets):
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_DATE_FOLDER = re.compile(r"date=(\d{4}-\d{2}-\d{2})/?$")
_PART_NAME = re.compile(r"^part-(\d{5,})\.parquet$")
_EXPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
PARTITION_KEYS = ("year", "month", "day")
"""The lake's Hive partition keys, in key order."""


def check_bucket_name(value: str) -> str:
    """``value`` if it follows the S3 general purpose bucket naming rules (3-63 lowercase
    letters, digits, '.' and '-', no IP address form, no reserved prefix or suffix);
    else ``ValueError`` naming the bucket and the rule it breaks."""
    if not isinstance(value, str):
        return value  # pydantic reports the type
    problem = None
    if not _BUCKET.match(value):
        problem = "3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a "
        problem += "letter or digit"
    elif ".." in value or ".-" in value or "-." in value:
        problem = "no two adjacent periods and no period next to a hyphen"
    elif _IP_ADDRESS.match(value):
        problem = "not formatted as an IP address"
    elif value.startswith(_BUCKET_RESERVED_PREFIXES):
        problem = f"no reserved prefix ({', '.join(_BUCKET_RESERVED_PREFIXES)})"
    elif value.endswith(_BUCKET_RESERVED_SUFFIXES):
        problem = f"no reserved suffix ({', '.join(_BUCKET_RESERVED_SUFFIXES)})"
    if problem:
        raise ValueError(f"bucket {value!r} is not a valid S3 bucket name: {problem}")
    return value


def s3_uri(bucket: str, key: str) -> str:
    """``s3://bucket/key`` (a leading ``/`` of the key is dropped); the bucket is validated."""
    return f"s3://{check_bucket_name(bucket)}/{key.lstrip('/')}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``, exactly: a key keeps every character (``?``,
    ``#``, control characters), which URL parsing would cut or drop. The error names the URI."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    try:
        check_bucket_name(bucket)
    except ValueError as exc:
        raise ValueError(f"{uri!r}: {exc}") from None
    return bucket, key.lstrip("/")


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


# --------------------------------------------------------------------------------------------
# DynamoDB pipeline


def dynamo_instance_prefix(prefix: str, instance: str) -> str:
    """``PREFIX/INSTANCE/``: every extract of one DynamoDB instance (one ``date=`` folder each)."""
    return _join(prefix, instance) + "/"


def extract_date_prefix(prefix: str, instance: str, day: date) -> str:
    """``PREFIX/INSTANCE/date=YYYY-MM-DD/``: every segment extract of one date."""
    return dynamo_instance_prefix(prefix, instance) + f"date={day.isoformat()}/"


def expired_extract_keys(
    keys: Iterable[str], instance_prefix: str, live: date, keep_days: int
) -> list[str]:
    """Keys under ``instance_prefix`` (:func:`dynamo_instance_prefix`) in ``date=`` folders
    ``keep_days`` or more days before ``live``: the extracts retention deletes (with
    ``keep_days=2`` and live 11-05, the folders of 11-04 and 11-05 stay). Keys outside a date
    folder are never returned."""
    if keep_days < 1:
        raise ValueError(f"keep_extract_days must be at least 1, got {keep_days}")
    oldest_kept = live - timedelta(days=keep_days - 1)
    expired = []
    for key in keys:
        if not key.startswith(instance_prefix):
            continue
        folder = key[len(instance_prefix) :].split("/", 1)[0] + "/"
        day = date_of_extract_prefix(folder)
        if day is not None and day < oldest_kept:
            expired.append(key)
    return sorted(expired)


def date_of_extract_prefix(prefix: str) -> date | None:
    """The date of a ``.../date=YYYY-MM-DD/`` prefix (as listed with ``Delimiter='/'``), or
    None when the last folder is not a date folder."""
    match = _DATE_FOLDER.search(prefix)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def segment_prefix(prefix: str, instance: str, day: date, segment: int) -> str:
    return extract_date_prefix(prefix, instance, day) + f"segment={segment:04d}/"


def extract_id(started: datetime, run_id: str) -> str:
    """A run-unique extract id that sorts by start time: ``YYYYMMDDTHHMMSSffffffZ-<run8>``."""
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run = re.sub(r"[^0-9a-z]", "", run_id.lower())[:8] or "run"
    return f"{stamp}-{run}"


def segment_extract_prefix(
    prefix: str, instance: str, day: date, segment: int, extract: str
) -> str:
    """Where one extract of a segment writes: ``.../segment=NNNN/extract=<id>/``. Each run
    writes its own prefix; the segment manifest is the only pointer to the current one."""
    if not extract or "/" in extract:
        raise ValueError(f"invalid extract id for an S3 key: {extract!r}")
    return segment_prefix(prefix, instance, day, segment) + f"extract={extract}/"


def segment_csv_key(
    prefix: str, instance: str, day: date, segment: int, extract: str, table: str
) -> str:
    return segment_extract_prefix(prefix, instance, day, segment, extract) + f"{table}.csv.gz"


def segment_manifest_key(prefix: str, instance: str, day: date, segment: int) -> str:
    """The segment's manifest: the one pointer to its current extract, replaced in one PUT."""
    return segment_prefix(prefix, instance, day, segment) + "_manifest.json"


def copy_manifest_key(
    prefix: str, instance: str, day: date, segment: int, extract: str, table: str
) -> str:
    """The Redshift COPY manifest listing one table's CSV objects of one extract."""
    return (
        segment_extract_prefix(prefix, instance, day, segment, extract) + f"_copy/{table}.manifest"
    )


def superseded_extract_keys(
    listed: Iterable[str], segment_folder: str, keep: Iterable[str]
) -> list[str]:
    """Keys under a segment folder that belong to no extract in ``keep`` (ids), and are not
    the manifest: what to delete once the manifest points at a newer extract."""
    kept = tuple(f"{segment_folder}extract={e}/" for e in keep)
    manifest = f"{segment_folder}_manifest.json"
    return sorted(k for k in listed if k != manifest and not k.startswith(kept))


def data_schema_version_key(prefix: str, instance: str, fingerprint: str) -> str:
    return _join(prefix, instance, f"v{fingerprint}.json")


def data_schema_latest_key(prefix: str, instance: str) -> str:
    return _join(prefix, instance, "latest.json")


def microbatch_manifest_key(prefix: str, instance: str, day: date, manifest_id: str) -> str:
    """The Redshift-format manifest of one micro-batch: ``PREFIX/INSTANCE/dt=DAY/ID.manifest``,
    written before its run is requested (the run reads it back)."""
    return _join(prefix, instance, f"dt={day.isoformat()}", f"{manifest_id}.manifest")


# --------------------------------------------------------------------------------------------
# Parquet lake


def partition_values(day: date) -> tuple[str, str, str]:
    """The Hive partition values of a day, zero-padded as in the keys: ``("2024", "03", "01")``."""
    return f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"


def partition_suffix(day: date) -> str:
    """``year=YYYY/month=MM/day=DD/``: a day's directory under its table's prefix."""
    return "".join(f"{k}={v}/" for k, v in zip(PARTITION_KEYS, partition_values(day), strict=True))


def _check_table_segment(table: str) -> None:
    if not table or "/" in table or table != table.strip() or table in (".", ".."):
        raise ValueError(f"invalid lake table name for an S3 key: {table!r}")


def lake_table_prefix(prefix: str, table: str) -> str:
    """The key prefix of a lake table: ``PREFIX/TABLE/`` (``TABLE/`` when prefix is empty)."""
    _check_table_segment(table)
    p = prefix.strip("/")
    return f"{p}/{table}/" if p else f"{table}/"


def lake_partition_prefix(prefix: str, table: str, day: date) -> str:
    """The one key scheme of lake partitions: ``PREFIX/TABLE/year=YYYY/month=MM/day=DD/``."""
    return lake_table_prefix(prefix, table) + partition_suffix(day)


def lake_export_prefix(prefix: str, table: str, day: date, export_id: str) -> str:
    """The key prefix of one export of a day: ``PREFIX/TABLE/year=YYYY/month=MM/day=DD/run=ID/``.

    ``export_id`` is unique per export (the Dagster run id, plus the retry attempt): letters,
    digits, ``_``, ``.`` and ``-``, at most 128 characters."""
    if not isinstance(export_id, str) or not _EXPORT_ID.match(export_id):
        raise ValueError(
            f"invalid lake export id {export_id!r}: use letters, digits, '_', '.' and '-'"
        )
    return lake_partition_prefix(prefix, table, day) + f"run={export_id}/"


def part_name(index: int) -> str:
    """File name of part ``index``: ``part-00000.parquet``."""
    if index < 0:
        raise ValueError(f"part index must be >= 0, got {index}")
    return f"part-{index:05d}.parquet"


def lake_part_key(prefix: str, table: str, day: date, index: int) -> str:
    """Full key of one part: ``lake_partition_prefix(...) + part_name(index)``."""
    return lake_partition_prefix(prefix, table, day) + part_name(index)


def lake_table_uri(bucket: str, prefix: str, table: str) -> str:
    """S3 URI of a lake table (the Glue table location)."""
    return s3_uri(bucket, lake_table_prefix(prefix, table))


def lake_partition_uri(bucket: str, prefix: str, table: str, day: date) -> str:
    """S3 URI of one day's partition (the Glue partition location)."""
    return s3_uri(bucket, lake_partition_prefix(prefix, table, day))


def stale_part_keys(existing: Iterable[str], written: Iterable[str]) -> list[str]:
    """Part objects under a partition prefix that a rerun did not rewrite (delete them).

    ``existing``: keys listed under the partition prefix after the export; ``written``: the
    keys the export produced. Only ``part-NNNNN.parquet`` names are considered, so unrelated
    objects (markers, manifests) are left alone.
    """
    keep = set(written)
    return sorted(k for k in existing if k not in keep and _PART_NAME.match(k.rsplit("/", 1)[-1]))


def lake_part_keys(existing: Iterable[str]) -> list[str]:
    """The ``part-NNNNN.parquet`` keys among ``existing``, sorted (other objects left out)."""
    return sorted(k for k in existing if _PART_NAME.match(k.rsplit("/", 1)[-1]))


def superseded_part_keys(existing: Iterable[str], current_prefix: str) -> list[str]:
    """Part objects of a day that are not under ``current_prefix`` (the export the Glue
    partition now points at): earlier exports, killed exports, and parts of the older layout
    directly under ``day=DD/``. ``existing``: keys listed under the day's prefix. Only
    ``part-NNNNN.parquet`` names are considered, so unrelated objects are left alone."""
    if not current_prefix.endswith("/"):
        raise ValueError(f"current_prefix must end with '/', got {current_prefix!r}")
    return sorted(
        k
        for k in existing
        if not k.startswith(current_prefix) and _PART_NAME.match(k.rsplit("/", 1)[-1])
    )
