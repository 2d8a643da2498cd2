"""Where the DynamoDB pipeline keeps its objects: deterministic keys, so a re-run overwrites.

``PREFIX/INSTANCE/date=YYYY-MM-DD/segment=NNNN/TABLE.csv.gz`` for segment extracts, with a
``_manifest.json`` written last (its presence means the segment's CSVs are complete), and
``PREFIX/INSTANCE/v<fingerprint>.json`` plus ``latest.json`` for the data-schema cache.
"""

from __future__ import annotations

from datetime import date


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def segment_prefix(prefix: str, instance: str, day: date, segment: int) -> str:
    return _join(prefix, instance, f"date={day.isoformat()}", f"segment={segment:04d}") + "/"


def segment_csv_key(prefix: str, instance: str, day: date, segment: int, table: str) -> str:
    return segment_prefix(prefix, instance, day, segment) + f"{table}.csv.gz"


def segment_manifest_key(prefix: str, instance: str, day: date, segment: int) -> str:
    return segment_prefix(prefix, instance, day, segment) + "_manifest.json"


def copy_manifest_key(prefix: str, instance: str, day: date, segment: int, table: str) -> str:
    """The Redshift COPY manifest listing one table's CSV objects of one segment."""
    return segment_prefix(prefix, instance, day, segment) + f"_copy/{table}.manifest"


def data_schema_version_key(prefix: str, instance: str, fingerprint: str) -> str:
    return _join(prefix, instance, f"v{fingerprint}.json")


def data_schema_latest_key(prefix: str, instance: str) -> str:
    return _join(prefix, instance, "latest.json")


def microbatch_manifest_key(prefix: str, instance: str, day: date, manifest_id: str) -> str:
    """The Redshift-format manifest of one micro-batch: ``PREFIX/INSTANCE/dt=DAY/ID.manifest``,
    written before its run is requested (the run reads it back)."""
    return _join(prefix, instance, f"dt={day.isoformat()}", f"{manifest_id}.manifest")
