"""Warehouse SQL for PostgreSQL and Amazon Redshift: builders, not executors.

Every builder returns ``psycopg.sql.Composed`` (or a list of them, meant for one transaction)
and never touches a connection, so the SQL of both dialects is unit-tested without a server
(Redshift's is also parsed by sqlglot's Redshift dialect). What differs between the two engines
is one frozen value, :class:`Dialect` (:mod:`.dialect`); the builders read its fields.

* :mod:`.dialect` — the capabilities value and its two instances, :func:`parse_dialect`;
* :mod:`.identifiers` — the one quoting path (every identifier validated, then
  ``psycopg.sql.Identifier``); values are parameters, or ``sql.Literal`` where a statement
  cannot take parameters (Redshift ``COPY`` options, ``SET``);
* :mod:`.ddl` — column types, table specs, platform-owned schema names, CREATE/DROP;
* :mod:`.file_format` — a load's file format: gzip CSV with validated COPY options, or Parquet;
* :mod:`.parquet_csv` — Parquet record batches as the platform's CSV, for ``COPY FROM STDIN``;
* :mod:`.copy` — ``COPY FROM STDIN``, Redshift ``COPY ... MANIFEST`` and its manifest;
* :mod:`.columnar_stage` — Redshift: a Parquet file's own stage table (COPY takes no column list);
* :mod:`.load_errors` — a failed Redshift COPY's ``stl_load_errors`` rows and the message;
* :mod:`.centralize` — the new schema's tables from every segment's staging;
* :mod:`.checks` — row count, duplicate key and orphan queries;
* :mod:`.publish` — swap, rollback, dependent views, publish lock and marker;
* :mod:`.staging` — the extract a staging schema holds, and staging retention;
* :mod:`.merge` — the micro-batch merge plan;
* :mod:`.merge_load` — a micro-batch load's transaction: stage, dedupe, merge or append;
* :mod:`.session` — the one session-timeouts builder.

Executing: no statement here takes parameters except those documented with ``%s``
(:func:`dependent_views_query`, the advisory lock and the publish marker). Execute the others
*without* a params argument: when params are given (even ``()``), psycopg reads a ``%`` inside
a quoted identifier as a placeholder and fails.
"""

from . import merge_load
from .centralize import centralize
from .checks import duplicate_key_count_query, orphan_count_query, row_count_query
from .copy import copy_from_stdin, copy_manifest, last_copy_count_query, redshift_copy
from .ddl import (
    SchemaRole,
    add_primary_key,
    column_type,
    create_schema,
    create_table,
    drop_owned_schema,
    is_owned_schema,
    new_schema_name,
    previous_schema_name,
    publish_lock_schema_name,
    recreate_owned_schema,
    staging_schema_name,
    type_notes,
    validate_table_spec,
)
from .dialect import (
    DIALECTS,
    Dialect,
    LoadedRowCount,
    LoadMethod,
    MergeStyle,
    PublishLock,
    RedshiftNulls,
    parse_dialect,
)
from .file_format import CsvOptions, FileFormat, FileKind
from .identifiers import catalog_name, identifier, qualified_name, require_folded
from .load_errors import LOAD_ERROR_COLUMNS, LoadErrorRow, copy_failure_message, load_errors_query
from .merge import MERGE_BATCH_TABLE, MERGE_RANK_COLUMN, merge_plan
from .publish import (
    GRANTABLE_PRIVILEGES,
    PUBLISH_LOCK_TABLE,
    PUBLISH_MARKER_TABLE,
    advisory_lock,
    advisory_lock_key,
    create_publish_marker,
    dependent_views_query,
    grant_statements,
    insert_publish_marker,
    lock_table_setup_statements,
    lock_table_statements,
    publish_marker_exists_query,
    publish_marker_query,
    rollback_statements,
    swap_statements,
)
from .session import session_timeouts
from .staging import (
    STAGING_RECORD_TABLE,
    create_staging_record,
    expired_staging_schemas,
    staging_prefix_pattern,
    staging_record_query,
    staging_schemas_query,
    table_exists_query,
)

__all__ = [
    "GRANTABLE_PRIVILEGES",
    "grant_statements",
    "DIALECTS",
    "LOAD_ERROR_COLUMNS",
    "MERGE_BATCH_TABLE",
    "MERGE_RANK_COLUMN",
    "PUBLISH_LOCK_TABLE",
    "PUBLISH_MARKER_TABLE",
    "CsvOptions",
    "Dialect",
    "FileFormat",
    "FileKind",
    "LoadErrorRow",
    "LoadMethod",
    "LoadedRowCount",
    "MergeStyle",
    "PublishLock",
    "RedshiftNulls",
    "STAGING_RECORD_TABLE",
    "SchemaRole",
    "add_primary_key",
    "advisory_lock",
    "advisory_lock_key",
    "catalog_name",
    "centralize",
    "column_type",
    "copy_from_stdin",
    "copy_manifest",
    "copy_failure_message",
    "create_publish_marker",
    "create_schema",
    "create_staging_record",
    "create_table",
    "dependent_views_query",
    "drop_owned_schema",
    "duplicate_key_count_query",
    "expired_staging_schemas",
    "identifier",
    "insert_publish_marker",
    "is_owned_schema",
    "last_copy_count_query",
    "load_errors_query",
    "lock_table_setup_statements",
    "lock_table_statements",
    "merge_plan",
    "new_schema_name",
    "orphan_count_query",
    "parse_dialect",
    "previous_schema_name",
    "publish_lock_schema_name",
    "publish_marker_exists_query",
    "publish_marker_query",
    "qualified_name",
    "recreate_owned_schema",
    "redshift_copy",
    "require_folded",
    "rollback_statements",
    "row_count_query",
    "session_timeouts",
    "staging_prefix_pattern",
    "staging_record_query",
    "staging_schema_name",
    "staging_schemas_query",
    "swap_statements",
    "table_exists_query",
    "type_notes",
    "validate_table_spec",
    # micro-batch loads: the submodule (merge_load.MergeKeys, merge_load.merge_statements, ...)
    "merge_load",
]
