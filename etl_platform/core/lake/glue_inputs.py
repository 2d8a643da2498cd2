"""Glue inputs of the lake (pure): the external Parquet table and one partition per day.

Glue column names are the lake's (:mod:`.column_names`: plain lowercase names); names colliding
once lowercased, or with ``year``/``month``/``day``, are refused as a defence. Column comments
carry the PostgreSQL type and, for a renamed column, the source name; the table parameter
``source_column_names`` maps every renamed column to its source name (JSON). Partitions are added
explicitly (``batch_create_partition``), never by MSCK.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pyarrow as pa

from etl_platform.core.s3_layout import PARTITION_KEYS, partition_suffix, partition_values

from .arrow_types import MAX_DECIMAL128_PRECISION, PG_COLUMN_METADATA_KEY, PG_TYPE_METADATA_KEY
from .column_names import source_column_names
from .errors import UnsupportedColumnError

SOURCE_COLUMN_NAMES_PARAMETER = "source_column_names"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

_SIMPLE_HIVE_TYPES = (
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_int8, "tinyint"),
    (pa.types.is_int16, "smallint"),
    (pa.types.is_int32, "int"),
    (pa.types.is_int64, "bigint"),
    (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"),
    (pa.types.is_string, "string"),
    (pa.types.is_large_string, "string"),
    (pa.types.is_binary, "binary"),
    (pa.types.is_large_binary, "binary"),
    (pa.types.is_date32, "date"),
    (pa.types.is_timestamp, "timestamp"),
)


def hive_type(t: pa.DataType) -> str:
    """The Hive/Glue type of an Arrow type: ``decimal(18,4)``, ``timestamp``, ``array<string>``."""
    for matches, name in _SIMPLE_HIVE_TYPES:
        if matches(t):
            return name
    if pa.types.is_decimal(t):
        if t.precision > MAX_DECIMAL128_PRECISION:
            raise UnsupportedColumnError(f"decimal precision {t.precision} exceeds Hive's 38")
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_struct(t):
        inner = ",".join(f"{f.name}:{hive_type(f.type)}" for f in t)
        return f"struct<{inner}>"
    if pa.types.is_map(t):
        return f"map<{hive_type(t.key_type)},{hive_type(t.item_type)}>"
    raise UnsupportedColumnError(f"no Hive type for Arrow type {t}")


def glue_columns(schema: pa.Schema) -> list[dict[str, str]]:
    """Glue ``Columns`` of a schema; comments carry the PostgreSQL type. Names must stay distinct
    once lowercased (Hive folds case) and must not collide with the partition keys."""
    seen: dict[str, str] = {}
    cols = []
    for f in schema:
        low = f.name.lower()
        if low in PARTITION_KEYS:
            raise UnsupportedColumnError(
                f"column {f.name!r} collides with the partition key {low!r}"
            )
        if low in seen:
            raise UnsupportedColumnError(
                f"columns {seen[low]!r} and {f.name!r} collide once lowercased"
            )
        seen[low] = f.name
        col = {"Name": low, "Type": hive_type(f.type)}
        pg = (f.metadata or {}).get(PG_TYPE_METADATA_KEY)
        source = (f.metadata or {}).get(PG_COLUMN_METADATA_KEY)
        if pg or source:
            comment = f"postgres: {pg.decode()}" if pg else "postgres:"
            if source:
                comment += f", column {json.dumps(source.decode(), ensure_ascii=False)}"
            col["Comment"] = comment[:255]
        cols.append(col)
    return cols


def _storage_descriptor(schema: pa.Schema, location: str, compression: str) -> dict[str, Any]:
    return {
        "Columns": glue_columns(schema),
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "Compressed": True,
        "SerdeInfo": {
            "SerializationLibrary": PARQUET_SERDE,
            "Parameters": {"serialization.format": "1"},
        },
        "Parameters": {"classification": "parquet", "parquet.compression": compression.upper()},
        "StoredAsSubDirectories": False,
    }


def _location_dir(location: str) -> str:
    if not location.startswith("s3://"):
        raise ValueError(f"Glue locations are s3:// URIs, got {location!r}")
    return location if location.endswith("/") else location + "/"


def glue_table_input(
    name: str,
    schema: pa.Schema,
    location: str,
    *,
    compression: str = "zstd",
    description: str | None = None,
) -> dict[str, Any]:
    """Glue ``TableInput`` for a lake table (``create_table``/``update_table``): an external
    Parquet table at ``location`` (``s3://bucket/PREFIX/TABLE/``) partitioned by string keys
    ``year``/``month``/``day``."""
    if not name or name != name.lower() or "." in name:
        raise ValueError(f"Glue table names are lowercase without dots, got {name!r}")
    table_input: dict[str, Any] = {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "EXTERNAL": "TRUE",
            "classification": "parquet",
            "parquet.compression": compression.upper(),
            SOURCE_COLUMN_NAMES_PARAMETER: json.dumps(
                source_column_names(schema), ensure_ascii=False, sort_keys=True
            ),
        },
        "StorageDescriptor": _storage_descriptor(schema, _location_dir(location), compression),
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in PARTITION_KEYS],
    }
    if description:
        table_input["Description"] = description
    return table_input


def glue_partition_input(
    table_location: str,
    schema: pa.Schema,
    day: date,
    *,
    compression: str = "zstd",
    location: str | None = None,
) -> dict[str, Any]:
    """Glue ``PartitionInput`` of one day (``batch_create_partition``; not MSCK): values
    ``["YYYY", "MM", "DD"]``, location ``location`` (one export's prefix, under the day's
    directory) or by default ``table_location + year=YYYY/month=MM/day=DD/``."""
    day_dir = _location_dir(table_location) + partition_suffix(day)
    if location is None:
        location = day_dir
    location = _location_dir(location)
    if not location.startswith(day_dir):
        raise ValueError(f"partition location {location!r} is not under the day's {day_dir!r}")
    return {
        "Values": list(partition_values(day)),
        "StorageDescriptor": _storage_descriptor(schema, location, compression),
        "Parameters": {},
    }


# Fields of an existing table that the lake does not manage but an update must keep.
_KEPT_TABLE_FIELDS = ("Owner", "Retention", "TargetTable")


def _managed_view(table: dict[str, Any]) -> dict[str, Any]:
    """The parts of a Glue table (``get_table`` output or a ``TableInput``) the lake manages."""
    sd = table.get("StorageDescriptor", {})
    serde = sd.get("SerdeInfo", {})
    return {
        "TableType": table.get("TableType"),
        "Description": table.get("Description"),
        "Parameters": table.get("Parameters", {}),
        "PartitionKeys": [(k["Name"], k["Type"]) for k in table.get("PartitionKeys", [])],
        "Columns": [(c["Name"], c["Type"], c.get("Comment")) for c in sd.get("Columns", [])],
        "Location": sd.get("Location"),
        "InputFormat": sd.get("InputFormat"),
        "OutputFormat": sd.get("OutputFormat"),
        "Serde": (serde.get("SerializationLibrary"), serde.get("Parameters", {})),
        "SdParameters": sd.get("Parameters", {}),
        "Compressed": sd.get("Compressed"),
    }


def glue_table_update(existing: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any] | None:
    """The ``TableInput`` that brings ``existing`` (``get_table``'s ``Table``) to ``desired``,
    or None when it already matches (an ``update_table`` would only add a table version).

    Parameters (the table's and the storage descriptor's) are merged: keys set by hand or by
    other tools are kept, the lake's own keys take the desired values. The owner and retention
    are kept; columns, partition keys, location, formats and serde are the desired ones."""
    sd_existing = existing.get("StorageDescriptor", {})
    sd = dict(desired["StorageDescriptor"])
    sd["Parameters"] = {**sd_existing.get("Parameters", {}), **sd.get("Parameters", {})}
    merged = {k: existing[k] for k in _KEPT_TABLE_FIELDS if k in existing}
    merged.update(desired)
    merged["Parameters"] = {**existing.get("Parameters", {}), **desired.get("Parameters", {})}
    merged["StorageDescriptor"] = sd
    if _managed_view(existing) == _managed_view(merged):
        return None
    return merged
