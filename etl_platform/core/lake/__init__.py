"""Postgres → date-partitioned Parquet lake: the pure core (no connection, no client, no thread,
no temp file).

One lake partition is one table's rows whose date column falls in a half-open UTC window
``[day 00:00Z, next day 00:00Z)``. The export step streams the rows from PostgreSQL as Arrow
record batches (through ``SourcePostgresResource``), converts them to the exact lake types and
encodes them into Parquet parts of bounded size, which a sink uploads. Memory is bounded by one
row group plus a few record batches, whatever the size of the day.

The modules, in the order a daily export uses them:

* :mod:`.days`: the day's window;
* :mod:`.source_sql`: table names, the window predicate, the select/count/catalog SQL text;
* :mod:`.arrow_types` and :mod:`.export_plan`: each column's lake type, from the catalog;
* :mod:`.column_names`: each column's lake name (normalized when Athena would need quotes);
* :mod:`.convert`: driver batches → lake batches, refusing any value that would be lost;
* :mod:`.parts`: the Parquet part writer (batches in, parts to a sink);
* :mod:`.read_back`: the footer-only check of written parts;
* :mod:`.glue_inputs`: the Glue table and partition inputs.

The lake's S3 keys are in :mod:`etl_platform.core.s3_layout`.
"""

from .arrow_types import (
    DATE_COLUMN_TYPES,
    DEFAULT_UNCONSTRAINED_NUMERIC,
    PG_COLUMN_METADATA_KEY,
    PG_TYPE_METADATA_KEY,
    ColumnPlan,
    PgColumn,
    plan_column,
)
from .column_names import (
    RESERVED_KEYWORDS,
    is_plain_name,
    lake_column_names,
    normalized_name,
    source_column_names,
)
from .convert import BatchConverter
from .days import Window, check_window, day_window, window_label
from .errors import LakeExportError, ReadBackError, UnsupportedColumnError, ValueOutOfRangeError
from .export_plan import ExportPlan, date_column_type, plan_export
from .glue_inputs import (
    glue_columns,
    glue_partition_input,
    glue_table_input,
    glue_table_update,
    hive_type,
)
from .parts import (
    COMPRESSIONS,
    DEFAULT_PART_BYTES,
    DEFAULT_ROW_GROUP_BYTES,
    DEFAULT_ROW_GROUP_ROWS,
    ExportedPart,
    ExportResult,
    FinishedPart,
    MemoryPartFiles,
    ParquetPartWriter,
    PartFiles,
    PartSettings,
    PartSink,
    write_parts,
)
from .read_back import ReadBackReport, read_back_check
from .source_sql import (
    CATALOG_SQL,
    REGCLASS_SQL,
    SESSION_TIME_ZONE_SQL,
    TableRef,
    build_count_sql,
    build_select_sql,
    catalog_columns,
    parse_table_name,
    window_predicate_literals,
)

__all__ = [
    "CATALOG_SQL",
    "COMPRESSIONS",
    "DATE_COLUMN_TYPES",
    "DEFAULT_PART_BYTES",
    "DEFAULT_ROW_GROUP_BYTES",
    "DEFAULT_ROW_GROUP_ROWS",
    "DEFAULT_UNCONSTRAINED_NUMERIC",
    "PG_COLUMN_METADATA_KEY",
    "PG_TYPE_METADATA_KEY",
    "RESERVED_KEYWORDS",
    "REGCLASS_SQL",
    "SESSION_TIME_ZONE_SQL",
    "BatchConverter",
    "ColumnPlan",
    "ExportPlan",
    "ExportResult",
    "ExportedPart",
    "FinishedPart",
    "LakeExportError",
    "MemoryPartFiles",
    "ParquetPartWriter",
    "PartFiles",
    "PartSettings",
    "PartSink",
    "PgColumn",
    "ReadBackError",
    "ReadBackReport",
    "TableRef",
    "UnsupportedColumnError",
    "ValueOutOfRangeError",
    "Window",
    "build_count_sql",
    "build_select_sql",
    "catalog_columns",
    "check_window",
    "date_column_type",
    "day_window",
    "glue_columns",
    "glue_partition_input",
    "glue_table_input",
    "glue_table_update",
    "hive_type",
    "is_plain_name",
    "lake_column_names",
    "normalized_name",
    "parse_table_name",
    "plan_column",
    "plan_export",
    "read_back_check",
    "source_column_names",
    "window_label",
    "window_predicate_literals",
    "write_parts",
]
