"""DynamoDB items -> warehouse tables: data-schema inference, naming, the item transform, wire
JSON parsing and the extract of one scan segment. Pure: no clients, no I/O beyond the file
objects a caller hands in.

Modules, in import order (each imports only the ones above it):

* :mod:`.config` -- :class:`SchemaConfig` (keys, entity rule, list mode, name limit);
* :mod:`.wire_values` -- strict timestamps, number digits, NULL-ness, an item's entity;
* :mod:`.naming` -- warehouse names for attribute paths, collision suffixes;
* :mod:`.observe` -- :func:`observe` items into mergeable :class:`SchemaObservations`;
* :mod:`.data_schema` -- :class:`DataSchemaSet` of :class:`DataTable` / :class:`DataColumn`,
  its JSON form and fingerprint;
* :mod:`.infer` -- build, infer, evolve and merge data-schema sets (the type lattice);
* :mod:`.schema_diff` -- :func:`diff` of two sets;
* :mod:`.unfit` -- items that do not fit a set: policy, report, error;
* :mod:`.encoders` -- scalar wire values -> column text, :func:`json_text`;
* :mod:`.transform_plan`, :mod:`.interpret`, :mod:`.transform_codegen` -- a set compiled into
  per-table plans, run by the interpreter or by generated code;
* :mod:`.transformer` -- :class:`ItemTransformer`: items -> rows per table;
* :mod:`.csv_output` -- the CSV writer for a table; :mod:`.wire` -- :func:`iter_wire_items`;
* :mod:`.segment_extract` -- :func:`extract_segment`: one scan segment -> one CSV per table.
"""

from .config import ColumnRole, EntityRule, ListMode, SchemaConfig
from .csv_output import csv_plain_columns, open_csv_writer
from .data_schema import FORMAT_VERSION, DataColumn, DataSchemaSet, DataTable, to_table_specs
from .encoders import decimal_text, json_text
from .infer import build_schema_set, evolve_schema_set, infer_schema_set, merge_schema_sets
from .naming import normalize_name
from .observe import SchemaObservations, merge_observations, observe
from .schema_diff import ColumnChange, SchemaDiff, diff
from .segment_extract import SegmentExtract, SegmentSchemaUnstable, TableOutput, extract_segment
from .transformer import ItemTransformer, TransformBatch, transform_items
from .unfit import DataSchemaMismatch, UnfitItem, UnfitPolicy
from .wire import iter_wire_items
from .wire_values import (
    TIMESTAMP_PATTERN,
    carries_data,
    entity_of,
    is_strict_timestamp,
    number_digits,
)

__all__ = [
    "FORMAT_VERSION",
    "TIMESTAMP_PATTERN",
    "ColumnChange",
    "ColumnRole",
    "DataColumn",
    "DataSchemaMismatch",
    "DataSchemaSet",
    "DataTable",
    "EntityRule",
    "ItemTransformer",
    "ListMode",
    "SchemaConfig",
    "SchemaDiff",
    "SchemaObservations",
    "SegmentExtract",
    "SegmentSchemaUnstable",
    "TableOutput",
    "TransformBatch",
    "UnfitItem",
    "UnfitPolicy",
    "build_schema_set",
    "carries_data",
    "csv_plain_columns",
    "decimal_text",
    "diff",
    "entity_of",
    "evolve_schema_set",
    "extract_segment",
    "infer_schema_set",
    "is_strict_timestamp",
    "iter_wire_items",
    "json_text",
    "merge_observations",
    "merge_schema_sets",
    "normalize_name",
    "number_digits",
    "observe",
    "open_csv_writer",
    "to_table_specs",
    "transform_items",
]
