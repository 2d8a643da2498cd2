"""The warehouse dialect: every way PostgreSQL and Amazon Redshift differ, as one frozen value.

Modelled on dlt's ``DestinationCapabilitiesContext``: the SQL builders, the CSV writer and the
warehouse resource read named fields of a :class:`Dialect` instead of asking which dialect they
hold. There are two instances, :attr:`Dialect.POSTGRES` and :attr:`Dialect.REDSHIFT`, looked up
by name with :func:`parse_dialect`. A Redshift fix (issue 8: lossless NULLs, VARBYTE hex,
``pg_last_copy_count()``, a publish lock table) is a change of one field here; each Redshift
value cites the AWS page it relies on in ``docs/redshift.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar

from etl_platform.core.table_spec import ColumnKind

__all__ = [
    "DIALECTS",
    "Dialect",
    "LoadMethod",
    "LoadedRowCount",
    "MergeStyle",
    "PublishLock",
    "RedshiftNulls",
    "parse_dialect",
]


class LoadMethod(StrEnum):
    """How CSV objects in S3 reach a table."""

    #: ``COPY ... FROM STDIN``: the resource downloads each object and streams it in.
    COPY_FROM_STDIN = "copy_from_stdin"
    #: ``COPY ... FROM 's3://.../manifest' MANIFEST IAM_ROLE ...``: the warehouse reads S3.
    COPY_FROM_S3_MANIFEST = "copy_from_s3_manifest"


class LoadedRowCount(StrEnum):
    """Where the number of rows a COPY loaded is read."""

    #: the cursor's ``rowcount`` (the ``COPY n`` command tag)
    CURSOR_ROWCOUNT = "cursor_rowcount"
    #: ``SELECT pg_last_copy_count()`` after the COPY (Redshift)
    PG_LAST_COPY_COUNT = "pg_last_copy_count"


class PublishLock(StrEnum):
    """How publishes and rollbacks of one target are serialized."""

    #: a session ``pg_advisory_lock`` on a connection of its own
    ADVISORY_LOCK = "advisory_lock"
    #: ``LOCK TABLE`` of a lock table, inside the publishing transaction
    LOCK_TABLE = "lock_table"
    #: not guarded by the warehouse (a run concurrency limit of 1 must do it)
    NONE = "none"


class MergeStyle(StrEnum):
    """How a micro-batch is merged into its target (see ``merge_plan``)."""

    #: ``DELETE ... USING`` the batch's latest rows, then ``INSERT`` the keys now absent
    DELETE_USING_INSERT = "delete_using_insert"


class RedshiftNulls(StrEnum):
    """How a Redshift COPY tells NULL from the empty string. Redshift's CSV reader cannot do it
    the way PostgreSQL does: for CHAR/VARCHAR columns an unquoted empty field and ``""`` load
    the same (both ``''`` without ``EMPTYASNULL``, both NULL with it); non-character columns
    always load an empty field as NULL.

    * ``NUL_BYTE`` (the Redshift default, lossless): ``NULL AS '\\000'``; the writer puts a
      lone NUL byte in a NULL field and ``""`` for the empty string. NUL cannot collide with
      data: PostgreSQL text cannot hold it, DynamoDB strings that hold it are refused by the
      CSV writer (naming the row and column), and COPY loads a field as NULL only when it is
      exactly the marker.
    * ``EMPTY_AS_NULL`` (the old behaviour, lossy): ``EMPTYASNULL``. Every NULL stays NULL; an
      empty string in a text (or DECIMAL-as-VARCHAR) column loads as NULL. Only for files
      written with the empty NULL marker.
    """

    EMPTY_AS_NULL = "empty_as_null"
    NUL_BYTE = "nul_byte"


#: The CSV NULL marker each Redshift NULL mode needs from the writer.
_CSV_NULL_OF: dict[RedshiftNulls, str] = {
    RedshiftNulls.EMPTY_AS_NULL: "",
    RedshiftNulls.NUL_BYTE: "\x00",
}


@dataclass(frozen=True, repr=False)
class Dialect:
    """Everything the platform does differently on one warehouse engine."""

    #: the setting's value (``WarehouseResource.dialect``): ``"postgres"`` or ``"redshift"``
    name: str
    #: the engine's name in messages
    title: str
    # --- identifiers
    #: longest identifier in UTF-8 bytes (PostgreSQL truncates beyond NAMEDATALEN-1 = 63)
    max_identifier_bytes: int
    #: quoted identifiers are folded to lower case (Redshift without
    #: ``enable_case_sensitive_identifier``): ``"userId"`` and ``"userid"`` are one column
    folds_identifiers_to_lower_case: bool
    # --- types
    #: SQL type per logical column kind (DECIMAL: see the two limits below)
    types: Mapping[ColumnKind, str] = field(hash=False)
    #: widest VARCHAR in bytes; None = unbounded ``text``
    max_varchar_bytes: int | None
    #: widest NUMERIC precision; None = DECIMAL is unconstrained ``numeric`` (exact, keeps the
    #: input's scale). A DECIMAL of unknown or larger precision is stored as the widest VARCHAR.
    max_numeric_precision: int | None
    #: per kind, what the type cannot do that the logical kind promises (asset metadata)
    column_notes: Mapping[ColumnKind, str] = field(hash=False)
    #: per kind of the source column, the template turning it into a JSON value when a column
    #: is widened to JSON: text and timestamps become JSON *strings*, numbers and booleans JSON
    #: numbers and booleans (PostgreSQL ``to_jsonb``; Redshift ``CAST(... AS SUPER)``, which
    #: keeps a VARCHAR a string instead of parsing it; see docs/redshift.md)
    json_from_scalar: Mapping[ColumnKind, str] = field(hash=False)
    #: template turning the text of an exact number (a DECIMAL the dialect stores as text)
    #: into a JSON number
    json_from_number_text: str
    #: template turning a JSON column into comparable text (merge tie-breaks)
    json_as_text: str
    # --- CSV and loads
    #: the CSV field that means NULL (``""`` = unquoted empty field; ``"\\x00"`` = a NUL byte)
    csv_null: str
    #: prefix of the hex text of a binary value in CSV (bytea reads ``\\x...``)
    csv_binary_prefix: str
    #: Redshift COPY's NULL handling (None: the dialect does not COPY from S3)
    redshift_nulls: RedshiftNulls | None
    load_method: LoadMethod
    #: options every COPY into a (transient) staging table adds: Redshift's ``COMPUPDATE OFF
    #: STATUPDATE OFF`` skip the compression analysis and statistics a table rebuilt per load
    #: does not need
    staging_copy_options: tuple[str, ...]
    loaded_row_count: LoadedRowCount
    # --- sessions and concurrency
    #: ``SET lock_timeout`` exists (else lock waits are bounded by ``statement_timeout`` only)
    supports_lock_timeout: bool
    #: ``SET LOCAL`` is used for transaction-scoped settings (else plain ``SET``)
    supports_set_local: bool
    publish_lock: PublishLock
    merge_style: MergeStyle
    #: ``LOCK TABLE target IN <mode> MODE`` before a merge; None = no lock (Redshift runs
    #: SERIALIZABLE and its LOCK would block readers too: conflicts are retried instead)
    merge_lock_mode: str | None
    # --- micro-batch loads (``merge_load``)
    #: ``SET TRANSACTION ISOLATION LEVEL`` a micro-batch load starts with; None = the engine's
    #: only level (Redshift is always SERIALIZABLE). PostgreSQL's REPEATABLE READ turns a
    #: concurrent write to a merged row into a 40001 to retry instead of a lost update
    load_isolation_level: str | None
    #: ``LOCK TABLE target IN <mode> MODE`` a micro-batch load takes before its snapshot, so two
    #: loads of one table queue (SHARE UPDATE EXCLUSIVE conflicts with itself, not with readers
    #: or other writers); None = no lock (Redshift: conflicts surface as 40001 and are retried)
    load_lock_mode: str | None
    #: a merge into a table with a unique index on exactly its key can be ONE ``INSERT ... ON
    #: CONFLICT DO UPDATE ... WHERE`` statement (PostgreSQL); else the portable delete-insert
    supports_on_conflict_upsert: bool
    #: ``CREATE TEMP TABLE ... ON COMMIT DROP`` exists (Redshift's temporary tables take no
    #: ``ON COMMIT`` and live until the session ends)
    temp_table_on_commit_drop: bool
    #: an identity column numbers rows in COPY order, file after file (PostgreSQL); else each
    #: file's rows are stamped with its ordinal after its COPY (Redshift's IDENTITY values are
    #: not in load order)
    identity_numbers_copied_rows: bool
    #: ``CREATE TABLE t (LIKE parent, more columns)`` in one statement (PostgreSQL: one catalog
    #: change instead of two, ~3 ms of a micro-batch's fixed cost); else ``LIKE`` alone, then
    #: ``ALTER TABLE ... ADD COLUMN`` (the platform does not rely on the mixed form on Redshift)
    create_like_takes_columns: bool
    # --- connections
    #: ``client_encoding`` to ask for (Redshift reports UNICODE); None = the server's
    client_encoding: str | None
    #: psycopg may prepare statements server-side (Redshift lacks ``DEALLOCATE ALL``)
    prepared_statements: bool
    # --- access
    #: keyword before a role grantee in ``GRANT ... TO``: ``ROLE`` on Redshift (a bare name is
    #: a user there), none on PostgreSQL (every grantee is a role)
    grantee_keyword: str = ""

    POSTGRES: ClassVar[Dialect]
    REDSHIFT: ClassVar[Dialect]

    def __post_init__(self) -> None:
        if self.csv_null not in ("", "\x00"):
            raise ValueError(
                f"dialect {self.name}: CSV NULL marker must be '' or '\\x00', got {self.csv_null!r}"
            )
        if self.redshift_nulls is not None and _CSV_NULL_OF[self.redshift_nulls] != self.csv_null:
            raise ValueError(
                f"dialect {self.name}: COPY NULL mode {self.redshift_nulls.value} needs CSV NULL "
                f"marker {_CSV_NULL_OF[self.redshift_nulls]!r}, got {self.csv_null!r}"
            )
        missing = [kind.value for kind in ColumnKind if kind not in self.json_from_scalar]
        if missing:
            raise ValueError(f"dialect {self.name}: json_from_scalar lacks {missing}")
        if (self.load_method is LoadMethod.COPY_FROM_S3_MANIFEST) != (
            self.redshift_nulls is not None
        ):
            raise ValueError(f"dialect {self.name}: a NULL mode is for COPY from S3 only")

    def __repr__(self) -> str:
        return f"Dialect({self.name!r})"

    def __str__(self) -> str:
        return self.name

    @property
    def copies_parquet_by_position(self) -> bool:
        """The warehouse reads Parquet files itself and maps their columns to the table's by
        position, with no column list (Redshift's ``COPY ... FORMAT AS PARQUET``); a load
        from STDIN turns Parquet into CSV matched by column name instead."""
        return self.load_method is LoadMethod.COPY_FROM_S3_MANIFEST

    def binary_text(self, value: bytes | bytearray | memoryview) -> str:
        """A binary value as the CSV text this dialect's binary type loads: ``\\x0aff`` for
        PostgreSQL's bytea, plain ``0aff`` for Redshift's VARBYTE."""
        return self.csv_binary_prefix + bytes(value).hex()

    def fold_identifier(self, name: str) -> str:
        """``name`` as the engine's catalog stores it: ASCII letters lower-cased where the
        dialect folds identifiers (Redshift folds quoted names too), else unchanged."""
        if self.folds_identifiers_to_lower_case:
            return name.translate(_ASCII_LOWER)
        return name


_REDSHIFT_VARCHAR = 65535
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SUPER = "CAST({} AS SUPER)"

Dialect.POSTGRES = Dialect(
    name="postgres",
    title="PostgreSQL",
    max_identifier_bytes=63,
    folds_identifiers_to_lower_case=False,
    types=MappingProxyType(
        {
            ColumnKind.TEXT: "text",
            ColumnKind.BIGINT: "bigint",
            ColumnKind.DECIMAL: "numeric",
            ColumnKind.BOOLEAN: "boolean",
            ColumnKind.BINARY: "bytea",
            ColumnKind.TIMESTAMPTZ: "timestamptz",
            ColumnKind.JSON: "jsonb",
        }
    ),
    max_varchar_bytes=None,
    max_numeric_precision=None,
    column_notes=MappingProxyType({}),
    json_from_scalar=MappingProxyType({kind: "to_jsonb({})" for kind in ColumnKind}),
    json_from_number_text="to_jsonb(CAST({} AS numeric))",
    json_as_text="CAST({} AS text)",
    csv_null="",
    csv_binary_prefix="\\x",
    redshift_nulls=None,
    load_method=LoadMethod.COPY_FROM_STDIN,
    staging_copy_options=(),
    loaded_row_count=LoadedRowCount.CURSOR_ROWCOUNT,
    supports_lock_timeout=True,
    supports_set_local=True,
    publish_lock=PublishLock.ADVISORY_LOCK,
    merge_style=MergeStyle.DELETE_USING_INSERT,
    merge_lock_mode="SHARE ROW EXCLUSIVE",
    load_isolation_level="REPEATABLE READ",
    load_lock_mode="SHARE UPDATE EXCLUSIVE",
    supports_on_conflict_upsert=True,
    temp_table_on_commit_drop=True,
    identity_numbers_copied_rows=True,
    create_like_takes_columns=True,
    client_encoding=None,
    prepared_statements=True,
)

Dialect.REDSHIFT = Dialect(
    name="redshift",
    title="Redshift",
    max_identifier_bytes=127,
    folds_identifiers_to_lower_case=True,
    types=MappingProxyType(
        {
            ColumnKind.TEXT: f"VARCHAR({_REDSHIFT_VARCHAR})",
            ColumnKind.BIGINT: "BIGINT",
            ColumnKind.DECIMAL: "NUMERIC",
            ColumnKind.BOOLEAN: "BOOLEAN",
            ColumnKind.BINARY: "VARBYTE",
            ColumnKind.TIMESTAMPTZ: "TIMESTAMPTZ",
            ColumnKind.JSON: "SUPER",
        }
    ),
    max_varchar_bytes=_REDSHIFT_VARCHAR,
    max_numeric_precision=38,
    column_notes=MappingProxyType(
        {
            ColumnKind.DECIMAL: (
                "Redshift COPY truncates (does not reject) digits beyond the declared scale"
            ),
            ColumnKind.TEXT: (
                f"at most {_REDSHIFT_VARCHAR} bytes on Redshift; longer values fail the load "
                "(never truncated)"
            ),
            ColumnKind.BINARY: (
                "VARBYTE (64000 bytes by default) on Redshift; CSV carries it as hex without the "
                "\\x prefix PostgreSQL's bytea expects"
            ),
            ColumnKind.JSON: "SUPER on Redshift: CSV value must be serialized JSON",
        }
    ),
    # a VARCHAR cast to SUPER is a SUPER string (JSON_PARSE would read "123" as a number and
    # fail on "abc"); date/time types do not cast to SUPER, so timestamps go through VARCHAR;
    # VARBYTE becomes its hex text
    json_from_scalar=MappingProxyType(
        {
            ColumnKind.TEXT: _SUPER,
            ColumnKind.BIGINT: _SUPER,
            ColumnKind.DECIMAL: _SUPER,
            ColumnKind.BOOLEAN: _SUPER,
            ColumnKind.BINARY: "CAST(FROM_VARBYTE({}, 'hex') AS SUPER)",
            ColumnKind.TIMESTAMPTZ: f"CAST(CAST({{}} AS VARCHAR({_REDSHIFT_VARCHAR})) AS SUPER)",
            ColumnKind.JSON: "{}",
        }
    ),
    json_from_number_text="JSON_PARSE({})",
    json_as_text="JSON_SERIALIZE({})",
    # NULL is a lone NUL byte, COPY ... NULL AS '\000': "" and NULL stay distinct
    csv_null="\x00",
    # VARBYTE reads plain hex
    csv_binary_prefix="",
    redshift_nulls=RedshiftNulls.NUL_BYTE,
    load_method=LoadMethod.COPY_FROM_S3_MANIFEST,
    staging_copy_options=("COMPUPDATE OFF", "STATUPDATE OFF"),
    loaded_row_count=LoadedRowCount.PG_LAST_COPY_COUNT,
    supports_lock_timeout=False,
    supports_set_local=False,
    publish_lock=PublishLock.LOCK_TABLE,
    merge_style=MergeStyle.DELETE_USING_INSERT,
    merge_lock_mode=None,
    load_isolation_level=None,
    load_lock_mode=None,
    supports_on_conflict_upsert=False,
    temp_table_on_commit_drop=False,
    identity_numbers_copied_rows=False,
    create_like_takes_columns=False,
    client_encoding="UTF8",
    prepared_statements=False,
    grantee_keyword="ROLE",
)

#: The dialects by setting value.
DIALECTS: Mapping[str, Dialect] = MappingProxyType(
    {d.name: d for d in (Dialect.POSTGRES, Dialect.REDSHIFT)}
)


def parse_dialect(value: str | Dialect, *, setting: str = "dialect") -> Dialect:
    """The :class:`Dialect` named ``value`` (``"postgres"``/``"redshift"``, case and surrounding
    blanks ignored); ``ValueError`` naming the setting, the bad value and the allowed ones."""
    if isinstance(value, Dialect):
        return value
    found = DIALECTS.get(str(value).strip().lower())
    if found is None:
        allowed = ", ".join(repr(name) for name in DIALECTS)
        raise ValueError(
            f"unknown warehouse dialect {value!r} (setting `{setting}`); allowed: {allowed}"
        )
    return found
