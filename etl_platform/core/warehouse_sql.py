"""Warehouse SQL for PostgreSQL and Amazon Redshift: builders, not executors.

Every function here returns ``psycopg.sql.Composed`` (or a list of them, meant for one
transaction) and never touches a connection, so the SQL of both dialects is unit-tested
without a server. There is one quoting path: every identifier goes through
:func:`identifier` (``psycopg.sql.Identifier`` after validation); values are parameters, or
``sql.Literal`` where a statement cannot take parameters (Redshift ``COPY`` options, ``SET``).

Decisions worth knowing (each is repeated where it applies):

* **Identifiers** are validated before quoting: non-empty, no NUL, and at most 63 bytes on
  PostgreSQL / 127 on Redshift. PostgreSQL silently *truncates* longer names, so two long names
  could collide; we refuse instead. Redshift also folds identifiers to lower case unless
  ``enable_case_sensitive_identifier`` is on: ``"userId"`` and ``"userid"`` are one column
  there, and :func:`validate_table_spec` refuses such a pair for the Redshift dialect.
* **CSV NULLs.** The platform's files are RFC-4180 CSV where an unquoted empty field is NULL and
  ``""`` is the empty string. PostgreSQL reads that exactly (``NULL ''`` in CSV mode, stated
  explicitly). Redshift cannot: for CHAR/VARCHAR columns, without ``EMPTYASNULL`` both forms load
  as ``''`` and with it both load as NULL (non-character columns always load an empty field as
  NULL). See :class:`RedshiftNulls` for the choice and its cost.
* **Never** ``TRUNCATECOLUMNS``, ``ACCEPTINVCHARS``, ``BLANKSASNULL``, ``TRIMBLANKS``,
  ``FILLRECORD``, ``ESCAPE`` (a backslash is data; the old ETL's escaping doubled them),
  ``NULL AS 'nan'``, or a ``MAXERROR`` above 0: a value that does not fit fails the load.
* **Primary keys.** Redshift does not enforce them and its planner *trusts* them (a declared but
  violated key can make ``DISTINCT``/``GROUP BY`` results wrong), so :func:`centralize` creates
  tables without the key, the blocking checks run on plain tables, and
  :func:`add_primary_key` declares it afterwards (PostgreSQL then enforces it once more).
* **Swap** renames schemas in one transaction; see :func:`swap_statements` for what happens to
  views.
* **Executing.** No statement here takes parameters except :func:`dependent_views_query`
  (which quotes no identifier). Execute them *without* a params argument: when params are given
  (even ``()``), psycopg reads a ``%`` inside a quoted identifier as a placeholder and fails.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from psycopg import sql

from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec

__all__ = [
    "MAX_IDENTIFIER_BYTES",
    "MERGE_BATCH_TABLE",
    "MERGE_RANK_COLUMN",
    "REDSHIFT_MAX_NUMERIC_PRECISION",
    "REDSHIFT_MAX_VARCHAR_BYTES",
    "Dialect",
    "RedshiftNulls",
    "SchemaRole",
    "add_primary_key",
    "centralize",
    "column_type",
    "copy_from_stdin",
    "copy_manifest",
    "create_schema",
    "create_table",
    "dependent_views_query",
    "drop_owned_schema",
    "duplicate_key_count_query",
    "identifier",
    "is_owned_schema",
    "merge_plan",
    "new_schema_name",
    "orphan_count_query",
    "parse_dialect",
    "previous_schema_name",
    "qualified_name",
    "redshift_copy",
    "rollback_statements",
    "row_count_query",
    "session_timeouts",
    "staging_schema_name",
    "swap_statements",
    "type_notes",
    "validate_table_spec",
]


class Dialect(StrEnum):
    """The warehouse SQL dialect."""

    POSTGRES = "postgres"
    REDSHIFT = "redshift"


def parse_dialect(value: str | Dialect) -> Dialect:
    """``"postgres"``/``"redshift"`` (case and surrounding blanks ignored) to a :class:`Dialect`;
    ``ValueError`` naming the bad value and the allowed ones otherwise."""
    if isinstance(value, Dialect):
        return value
    normalized = str(value).strip().lower()
    for dialect in Dialect:
        if dialect.value == normalized:
            return dialect
    allowed = ", ".join(repr(d.value) for d in Dialect)
    raise ValueError(f"unknown warehouse dialect {value!r}; allowed: {allowed}")


# --------------------------------------------------------------------------------------------
# identifiers: the one quoting path
# --------------------------------------------------------------------------------------------

#: Longest identifier in bytes (UTF-8). PostgreSQL truncates beyond NAMEDATALEN-1 = 63.
MAX_IDENTIFIER_BYTES: dict[Dialect, int] = {Dialect.POSTGRES: 63, Dialect.REDSHIFT: 127}


def _check_identifier(dialect: Dialect, name: str, what: str = "identifier") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {type(name).__name__}")
    if name == "":
        raise ValueError(f"{what} must not be empty")
    if "\x00" in name:
        raise ValueError(f"{what} {name!r} contains a NUL character")
    size = len(name.encode("utf-8"))
    limit = MAX_IDENTIFIER_BYTES[dialect]
    if size > limit:
        raise ValueError(
            f"{what} {name!r} is {size} bytes in UTF-8; {dialect.value} allows {limit} "
            f"(longer names would be truncated and could collide)"
        )
    return name


def identifier(dialect: Dialect, name: str) -> sql.Identifier:
    """``name`` validated for ``dialect`` and quoted as one identifier."""
    return sql.Identifier(_check_identifier(parse_dialect(dialect), name))


def qualified_name(dialect: Dialect, schema: str | None, name: str) -> sql.Identifier:
    """``"schema"."name"`` (or just ``"name"`` when ``schema`` is None, e.g. temp tables)."""
    dialect = parse_dialect(dialect)
    if schema is None:
        return sql.Identifier(_check_identifier(dialect, name, "table name"))
    return sql.Identifier(
        _check_identifier(dialect, schema, "schema name"),
        _check_identifier(dialect, name, "table name"),
    )


def _column_list(dialect: Dialect, names: Iterable[str], prefix: str | None = None) -> sql.Composed:
    if prefix is None:
        parts = [sql.Identifier(_check_identifier(dialect, n, "column name")) for n in names]
    else:
        parts = [
            sql.Identifier(prefix, _check_identifier(dialect, n, "column name")) for n in names
        ]
    if not parts:
        raise ValueError("a column list must not be empty")
    return sql.SQL(", ").join(parts)


# --------------------------------------------------------------------------------------------
# types
# --------------------------------------------------------------------------------------------

REDSHIFT_MAX_VARCHAR_BYTES = 65535
REDSHIFT_MAX_NUMERIC_PRECISION = 38

_POSTGRES_TYPES: dict[ColumnKind, str] = {
    ColumnKind.TEXT: "text",
    ColumnKind.BIGINT: "bigint",
    ColumnKind.DECIMAL: "numeric",
    ColumnKind.BOOLEAN: "boolean",
    ColumnKind.BINARY: "bytea",
    ColumnKind.TIMESTAMPTZ: "timestamptz",
    ColumnKind.JSON: "jsonb",
}

_REDSHIFT_TYPES: dict[ColumnKind, str] = {
    ColumnKind.TEXT: f"VARCHAR({REDSHIFT_MAX_VARCHAR_BYTES})",
    ColumnKind.BIGINT: "BIGINT",
    ColumnKind.BOOLEAN: "BOOLEAN",
    ColumnKind.BINARY: "VARBYTE",
    ColumnKind.TIMESTAMPTZ: "TIMESTAMPTZ",
    ColumnKind.JSON: "SUPER",
}


def _check_column(column: ColumnSpec) -> None:
    kind = ColumnKind(column.kind)
    if kind is not ColumnKind.DECIMAL:
        if column.precision is not None or column.scale is not None:
            raise ValueError(
                f"column {column.name!r}: precision/scale are only for DECIMAL, not {kind.value}"
            )
        return
    p, s = column.precision, column.scale
    if p is None:
        if s is not None:
            raise ValueError(f"column {column.name!r}: DECIMAL scale {s} without a precision")
        return
    if p < 1:
        raise ValueError(f"column {column.name!r}: DECIMAL precision must be >= 1, got {p}")
    if s is not None and not 0 <= s <= p:
        raise ValueError(f"column {column.name!r}: DECIMAL scale must be within 0..{p}, got {s}")


def _redshift_decimal_fits(column: ColumnSpec) -> bool:
    return column.precision is not None and column.precision <= REDSHIFT_MAX_NUMERIC_PRECISION


def column_type(dialect: Dialect, column: ColumnSpec) -> sql.SQL:
    """The SQL type of ``column`` in ``dialect``.

    PostgreSQL: text, bigint, numeric (always unconstrained: exact and keeps the input scale),
    boolean, bytea, timestamptz, jsonb. Redshift: VARCHAR(65535), BIGINT, NUMERIC(p,s) when the
    precision is known and at most 38 (else VARCHAR(65535): exact digits, no arithmetic; see
    :func:`type_notes`), BOOLEAN, VARBYTE, TIMESTAMPTZ, SUPER.
    """
    dialect = parse_dialect(dialect)
    _check_column(column)
    kind = ColumnKind(column.kind)
    if dialect is Dialect.POSTGRES:
        return sql.SQL(_POSTGRES_TYPES[kind])
    if kind is ColumnKind.DECIMAL:
        if _redshift_decimal_fits(column):
            return sql.SQL(f"NUMERIC({int(column.precision or 0)},{int(column.scale or 0)})")
        return sql.SQL(f"VARCHAR({REDSHIFT_MAX_VARCHAR_BYTES})")
    return sql.SQL(_REDSHIFT_TYPES[kind])


def type_notes(dialect: Dialect, spec: TableSpec) -> dict[str, str]:
    """Per column, what the dialect's type cannot do that the logical kind promises (for asset
    metadata and docs). Empty on PostgreSQL, whose types hold every kind exactly."""
    dialect = parse_dialect(dialect)
    notes: dict[str, str] = {}
    if dialect is Dialect.POSTGRES:
        return notes
    for column in spec.columns:
        kind = ColumnKind(column.kind)
        if kind is ColumnKind.DECIMAL and not _redshift_decimal_fits(column):
            why = (
                "precision unknown"
                if column.precision is None
                else f"precision {column.precision} > {REDSHIFT_MAX_NUMERIC_PRECISION}"
            )
            notes[column.name] = (
                f"DECIMAL stored as VARCHAR({REDSHIFT_MAX_VARCHAR_BYTES}) on Redshift ({why}): "
                "digits exact, cast before arithmetic"
            )
        elif kind is ColumnKind.DECIMAL:
            notes[column.name] = (
                "Redshift COPY truncates (does not reject) digits beyond the declared scale"
            )
        elif kind is ColumnKind.TEXT:
            notes[column.name] = (
                f"at most {REDSHIFT_MAX_VARCHAR_BYTES} bytes on Redshift; longer values fail the "
                "load (never truncated)"
            )
        elif kind is ColumnKind.BINARY:
            notes[column.name] = (
                "VARBYTE (64000 bytes by default) on Redshift; CSV carries it as hex without the "
                "\\x prefix PostgreSQL's bytea expects"
            )
        elif kind is ColumnKind.JSON:
            notes[column.name] = "SUPER on Redshift: CSV value must be serialized JSON"
    return notes


def validate_table_spec(dialect: Dialect, spec: TableSpec) -> None:
    """Refuse a spec the dialect cannot hold faithfully: bad names, no columns, duplicate
    columns (case-insensitively on Redshift, which folds identifiers), key columns missing."""
    dialect = parse_dialect(dialect)
    _check_identifier(dialect, spec.name, "table name")
    if not spec.columns:
        raise ValueError(f"table {spec.name!r} has no columns")
    seen: dict[str, str] = {}
    for column in spec.columns:
        _check_identifier(dialect, column.name, f"column name in table {spec.name!r}")
        _check_column(column)
        key = column.name.lower() if dialect is Dialect.REDSHIFT else column.name
        if key in seen:
            extra = (
                " (Redshift folds identifiers to lower case)" if seen[key] != column.name else ""
            )
            raise ValueError(
                f"table {spec.name!r}: columns {seen[key]!r} and {column.name!r} collide{extra}"
            )
        seen[key] = column.name
    names = set(spec.column_names)
    missing = [k for k in spec.primary_key if k not in names]
    if missing:
        raise ValueError(f"table {spec.name!r}: primary key columns {missing} are not columns")
    if len(set(spec.primary_key)) != len(spec.primary_key):
        raise ValueError(f"table {spec.name!r}: primary key {spec.primary_key} repeats a column")


def _require_columns(spec: TableSpec, columns: Iterable[str], what: str) -> None:
    names = set(spec.column_names)
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"{what}: {missing} are not columns of table {spec.name!r}")


# --------------------------------------------------------------------------------------------
# schemas the platform owns
# --------------------------------------------------------------------------------------------


class SchemaRole(StrEnum):
    """Schemas the platform creates and may drop; published schemas are never dropped."""

    STAGING = "staging"
    NEW = "new"
    PREVIOUS = "previous"


_OWNED_SCHEMA = re.compile(r"^.+__(?:new|previous|swap|staging__[a-z0-9_]+)$", re.DOTALL)
_SLUG = re.compile(r"[^a-z0-9]+")


def _check_published(dialect: Dialect, published: str) -> None:
    _check_identifier(dialect, published, "published schema name")
    if is_owned_schema(published):
        raise ValueError(
            f"published schema name {published!r} ends like a platform-owned schema "
            "(__new, __previous, __swap, __staging__*); pick another name"
        )
    # the longest derived name must fit, or PostgreSQL would truncate it
    _check_identifier(dialect, previous_schema_name(published), "derived schema name")


def staging_schema_name(published: str, partition: str) -> str:
    """``<published>__staging__<partition slug>``: one staging schema per extract partition
    (e.g. ``"2024-01-02|7"`` → ``analytics__staging__2024_01_02_7``)."""
    slug = _SLUG.sub("_", partition.lower()).strip("_")
    if not slug:
        raise ValueError(f"partition {partition!r} has no letters or digits for a schema name")
    return f"{published}__{SchemaRole.STAGING.value}__{slug}"


def new_schema_name(published: str) -> str:
    """``<published>__new``: where :func:`centralize` builds the next version."""
    return f"{published}__{SchemaRole.NEW.value}"


def previous_schema_name(published: str) -> str:
    """``<published>__previous``: the version a swap replaced, kept for rollback."""
    return f"{published}__{SchemaRole.PREVIOUS.value}"


def _swap_schema_name(published: str) -> str:
    return f"{published}__swap"


def is_owned_schema(name: str) -> bool:
    """True for names this module derives (staging/new/previous/swap), i.e. droppable ones."""
    return bool(_OWNED_SCHEMA.match(name))


def create_schema(dialect: Dialect, schema: str) -> sql.Composed:
    """``CREATE SCHEMA IF NOT EXISTS "schema"``."""
    return sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(identifier(dialect, schema))


def drop_owned_schema(dialect: Dialect, schema: str) -> sql.Composed:
    """``DROP SCHEMA IF EXISTS "schema" CASCADE`` for a platform-owned schema only
    (:func:`is_owned_schema`); ``ValueError`` for any other name, published ones included."""
    if not is_owned_schema(schema):
        raise ValueError(
            f"refusing to DROP ... CASCADE schema {schema!r}: not a platform-owned "
            "staging/new/previous schema"
        )
    return sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(identifier(dialect, schema))


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


def recreate_owned_schema(dialect: Dialect, schema: str) -> list[sql.Composed]:
    """Drop (cascade) and create a schema the platform owns: a pristine staging or new schema.
    Run in the transaction that fills it, so a failure leaves the previous content."""
    return [drop_owned_schema(dialect, schema), create_schema(dialect, schema)]


def create_table(
    dialect: Dialect, schema: str | None, spec: TableSpec, *, primary_key: bool = True
) -> list[sql.Composed]:
    """Create-or-replace ``schema.table`` from ``spec``: ``DROP TABLE IF EXISTS`` (no CASCADE: a
    dependent view makes it fail instead of vanishing) then ``CREATE TABLE``. Key columns are
    always ``NOT NULL``; ``primary_key=False`` leaves the constraint for :func:`add_primary_key`
    (informational only on Redshift)."""
    dialect = parse_dialect(dialect)
    validate_table_spec(dialect, spec)
    table = qualified_name(dialect, schema, spec.name)
    keys = set(spec.primary_key)
    elements: list[sql.Composable] = []
    for column in spec.columns:
        not_null = (not column.nullable) or column.name in keys
        elements.append(
            sql.SQL("{} {}{}").format(
                sql.Identifier(column.name),
                column_type(dialect, column),
                sql.SQL(" NOT NULL") if not_null else sql.SQL(""),
            )
        )
    if primary_key and spec.primary_key:
        elements.append(sql.SQL("PRIMARY KEY ({})").format(_column_list(dialect, spec.primary_key)))
    return [
        sql.SQL("DROP TABLE IF EXISTS {}").format(table),
        sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(elements)),
    ]


def add_primary_key(dialect: Dialect, schema: str | None, spec: TableSpec) -> sql.Composed:
    """``ALTER TABLE ... ADD PRIMARY KEY (...)`` after the checks passed (PostgreSQL validates
    it again; Redshift records it for the planner)."""
    dialect = parse_dialect(dialect)
    validate_table_spec(dialect, spec)
    if not spec.primary_key:
        raise ValueError(f"table {spec.name!r} has no primary key to add")
    return sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
        qualified_name(dialect, schema, spec.name), _column_list(dialect, spec.primary_key)
    )


# --------------------------------------------------------------------------------------------
# loads
# --------------------------------------------------------------------------------------------


def copy_from_stdin(
    schema: str | None, table: str, columns: Sequence[str], *, header: bool = False
) -> sql.Composed:
    """PostgreSQL ``COPY "schema"."table" (cols) FROM STDIN`` for the platform's CSV: RFC-4180,
    comma, ``"`` quote doubled inside fields, UTF-8, unquoted empty field = NULL, ``""`` = empty
    string. Every option is stated although most are CSV-mode defaults; no ESCAPE other than the
    quote (a backslash is data)."""
    dialect = Dialect.POSTGRES
    options = "FORMAT csv, DELIMITER ',', QUOTE '\"', NULL '', ENCODING 'UTF8'"
    if header:
        options += ", HEADER true"
    return sql.SQL("COPY {} ({}) FROM STDIN ({})").format(
        qualified_name(dialect, schema, table), _column_list(dialect, columns), sql.SQL(options)
    )


class RedshiftNulls(StrEnum):
    """How a Redshift COPY tells NULL from the empty string. Redshift's CSV reader cannot do it
    the way PostgreSQL does: for CHAR/VARCHAR columns an unquoted empty field and ``""`` load
    the same (both ``''`` without ``EMPTYASNULL``, both NULL with it); non-character columns
    always load an empty field as NULL.

    * ``EMPTY_AS_NULL`` (default; the platform's files as they are): ``EMPTYASNULL``. Every NULL
      stays NULL; an empty string in a text (or DECIMAL-as-VARCHAR) column loads as NULL. Chosen
      over the opposite loss because sparse items make NULLs common and empty strings rare.
    * ``NUL_BYTE`` (lossless, needs Redshift-specific files): ``NULL AS '\\000'``; the writer
      must put a lone NUL byte in a NULL field and ``""`` for the empty string. NUL cannot
      collide with data (PostgreSQL text cannot hold it; Redshift ends a record at it).
    """

    EMPTY_AS_NULL = "empty_as_null"
    NUL_BYTE = "nul_byte"


_S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/[^'\\\x00-\x1f\x7f]+$")
_IAM_ROLE = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/\-]+$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")


def _check_s3_url(url: str, what: str) -> str:
    if not _S3_URL.match(url):
        raise ValueError(
            f"{what} {url!r} is not an s3://bucket/key URL without quotes, backslashes or "
            "control characters"
        )
    return url


def redshift_copy(
    schema: str | None,
    table: str,
    columns: Sequence[str],
    manifest_url: str,
    iam_role: str,
    *,
    region: str | None = None,
    gzip: bool = True,
    header: bool = False,
    nulls: RedshiftNulls = RedshiftNulls.EMPTY_AS_NULL,
) -> sql.Composed:
    """Redshift ``COPY "schema"."table" (cols) FROM 's3://.../manifest' IAM_ROLE '...'
    [REGION '...'] FORMAT AS CSV QUOTE AS '"' DELIMITER ',' [GZIP] MANIFEST ENCODING UTF8
    TIMEFORMAT 'auto' <NULL handling> MAXERROR 0``.

    ``iam_role`` is one role ARN, a comma-separated chain, or ``"default"``. The S3 URL, role
    and region are validated (no quotes or backslashes) and rendered with ``sql.Literal``: COPY
    takes no parameters. ``TIMEFORMAT 'auto'`` because a format string makes Redshift drop the
    UTC offset of TIMESTAMPTZ input. See :class:`RedshiftNulls` for the NULL choice.
    """
    dialect = Dialect.REDSHIFT
    _check_s3_url(manifest_url, "manifest URL")
    roles = [r.strip() for r in iam_role.split(",")]
    if iam_role.strip() == "default":
        role_sql: sql.Composable = sql.SQL("default")
    elif roles and all(_IAM_ROLE.match(r) for r in roles):
        role_sql = sql.Literal(",".join(roles))
    else:
        raise ValueError(
            f"IAM role {iam_role!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>), "
            "a comma-separated chain of them, or 'default'"
        )
    parts: list[sql.Composable] = [
        sql.SQL("COPY {} ({}) FROM {} IAM_ROLE {}").format(
            qualified_name(dialect, schema, table),
            _column_list(dialect, columns),
            sql.Literal(manifest_url),
            role_sql,
        )
    ]
    if region is not None:
        if not _REGION.match(region):
            raise ValueError(f"AWS region {region!r} does not look like e.g. 'eu-west-1'")
        parts.append(sql.SQL("REGION {}").format(sql.Literal(region)))
    options = ["FORMAT AS CSV QUOTE AS '\"' DELIMITER ','"]
    if gzip:
        options.append("GZIP")
    options += ["MANIFEST", "ENCODING UTF8", "TIMEFORMAT 'auto'"]
    nulls = RedshiftNulls(nulls)
    options.append("EMPTYASNULL" if nulls is RedshiftNulls.EMPTY_AS_NULL else "NULL AS '\\000'")
    if header:
        options.append("IGNOREHEADER 1")
    options.append("MAXERROR 0")
    parts.append(sql.SQL(" ".join(options)))
    return sql.SQL(" ").join(parts)


def copy_manifest(entries: Iterable[tuple[str, int]]) -> dict[str, Any]:
    """A Redshift COPY manifest (JSON-ready dict) for ``(s3_url, content_length)`` pairs, in the
    given order: every entry ``mandatory`` (a missing object fails the COPY instead of loading
    less) and carrying ``meta.content_length``. Duplicate URLs are refused (they would load
    twice), and so is an empty manifest (skip the COPY instead)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for url, length in entries:
        _check_s3_url(url, "manifest entry")
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"manifest entry {url!r}: content_length must be an int >= 0")
        if url in seen:
            raise ValueError(f"manifest lists {url!r} twice; it would be loaded twice")
        seen.add(url)
        out.append({"url": url, "mandatory": True, "meta": {"content_length": length}})
    if not out:
        raise ValueError("a COPY manifest needs at least one entry; skip the COPY instead")
    return {"entries": out}


# --------------------------------------------------------------------------------------------
# centralize
# --------------------------------------------------------------------------------------------


def _widening_expr(
    dialect: Dialect, target: ColumnSpec, source: ColumnSpec | None
) -> sql.Composable:
    """How a segment's column becomes the published column: as is when the types agree, NULL
    when the segment's data-schema had no such column, else a cast to the wider type (JSON
    from a scalar goes through ``to_jsonb`` on PostgreSQL and ``JSON_PARSE`` of the text form
    on Redshift)."""
    if source is None:
        return sql.SQL("CAST(NULL AS {})").format(column_type(dialect, target))
    column = sql.Identifier(source.name)
    if (source.kind, source.precision, source.scale) == (
        target.kind,
        target.precision,
        target.scale,
    ) or (source.kind is target.kind and target.kind is not ColumnKind.DECIMAL):
        return column
    if target.kind is ColumnKind.JSON:
        if dialect is Dialect.POSTGRES:
            return sql.SQL("to_jsonb({})").format(column)
        return sql.SQL("JSON_PARSE(CAST({} AS VARCHAR(65535)))").format(column)
    return sql.SQL("CAST({} AS {})").format(column, column_type(dialect, target))


def centralize(
    dialect: Dialect,
    spec: TableSpec,
    segment_schemas: Sequence[str],
    target_schema: str,
    *,
    segment_specs: Mapping[str, TableSpec | None] | None = None,
) -> list[sql.Composed]:
    """Statements that rebuild ``target_schema.<table>`` from the same table in every segment
    staging schema: create-or-replace with explicit DDL from ``spec`` (without the primary key
    constraint: run the checks, then :func:`add_primary_key`), then one
    ``INSERT INTO target (cols) SELECT cols FROM segment.table`` per segment, so types are the
    spec's, not whatever ``CREATE TABLE AS`` would infer. Run them in one transaction.

    ``segment_specs`` gives, per segment schema, the spec its table was staged with when that
    differs from ``spec`` (a segment extracted with an older or narrower data-schema): columns
    it lacks load as NULL, narrower ones are cast to the published type (a number or timestamp
    widened to text takes the warehouse's canonical text form). ``None`` for a segment means
    the table is absent there and the segment contributes no rows to it."""
    dialect = parse_dialect(dialect)
    if not segment_schemas:
        raise ValueError(f"centralize {spec.name!r}: no segment schemas given")
    if len(set(segment_schemas)) != len(segment_schemas):
        raise ValueError(f"centralize {spec.name!r}: a segment schema is listed twice")
    statements = create_table(dialect, target_schema, spec, primary_key=False)
    target = qualified_name(dialect, target_schema, spec.name)
    columns = _column_list(dialect, spec.column_names)
    for segment in segment_schemas:
        source = qualified_name(dialect, segment, spec.name)
        if segment_specs is None or segment not in segment_specs:
            select: sql.Composable = columns
        elif segment_specs[segment] is None:
            continue
        else:
            staged = {c.name: c for c in segment_specs[segment].columns}  # type: ignore[union-attr]
            select = sql.SQL(", ").join(
                _widening_expr(dialect, column, staged.get(column.name)) for column in spec.columns
            )
        statements.append(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, columns, select, source)
        )
    return statements


# --------------------------------------------------------------------------------------------
# blocking checks: each query returns one row with one bigint
# --------------------------------------------------------------------------------------------


def row_count_query(dialect: Dialect, schema: str | None, table: str) -> sql.Composed:
    """``SELECT count(*) FROM "schema"."table"``."""
    return sql.SQL("SELECT count(*) FROM {}").format(qualified_name(dialect, schema, table))


def duplicate_key_count_query(
    dialect: Dialect, schema: str | None, spec: TableSpec, key: Sequence[str] | None = None
) -> sql.Composed:
    """Number of key values held by more than one row (0 = unique). ``key`` defaults to the
    spec's primary key. Run it on tables without a declared key on Redshift (see module doc)."""
    dialect = parse_dialect(dialect)
    columns = tuple(key) if key is not None else spec.primary_key
    if not columns:
        raise ValueError(f"table {spec.name!r}: no key to check for duplicates")
    _require_columns(spec, columns, "duplicate-key check")
    cols = _column_list(dialect, columns)
    return sql.SQL(
        "SELECT count(*) FROM (SELECT {} FROM {} GROUP BY {} HAVING count(*) > 1) AS dup"
    ).format(cols, qualified_name(dialect, schema, spec.name), cols)


def orphan_count_query(
    dialect: Dialect,
    schema: str | None,
    child: str,
    child_columns: Sequence[str],
    parent: str,
    parent_columns: Sequence[str],
) -> sql.Composed:
    """Number of ``child`` rows whose ``child_columns`` match no ``parent`` row on
    ``parent_columns`` (pairwise). A child row with a NULL in its parent key counts as an orphan:
    child rows always carry their parent's key."""
    dialect = parse_dialect(dialect)
    if not child_columns or len(child_columns) != len(parent_columns):
        raise ValueError(
            f"orphan check {child!r} -> {parent!r}: child columns {list(child_columns)} and "
            f"parent columns {list(parent_columns)} must be non-empty and pair up"
        )
    conditions = [
        sql.SQL("{} = {}").format(
            sql.Identifier("p", _check_identifier(dialect, pc, "column name")),
            sql.Identifier("c", _check_identifier(dialect, cc, "column name")),
        )
        for cc, pc in zip(child_columns, parent_columns, strict=True)
    ]
    return sql.SQL(
        "SELECT count(*) FROM {} AS c WHERE NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})"
    ).format(
        qualified_name(dialect, schema, child),
        qualified_name(dialect, schema, parent),
        sql.SQL(" AND ").join(conditions),
    )


# --------------------------------------------------------------------------------------------
# atomic swap and rollback
# --------------------------------------------------------------------------------------------


def _rename_schema(dialect: Dialect, old: str, new: str) -> sql.Composed:
    return sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
        identifier(dialect, old), identifier(dialect, new)
    )


def swap_statements(
    dialect: Dialect, published: str, new: str, *, previous: str | None = None
) -> list[sql.Composed]:
    """Statements that put schema ``new`` in place of ``published`` and keep the replaced
    version as ``previous`` (default ``<published>__previous``). The caller runs them in ONE
    transaction (schema DDL is transactional on PostgreSQL; Redshift's ``ALTER SCHEMA`` page
    suggests exactly this rename-to-keep-a-backup and lists no transaction-block restriction,
    not verified against a cluster here; never ``ALTER TABLE APPEND``, which commits by itself):

    1. ``DROP SCHEMA IF EXISTS previous CASCADE`` — the copy before last;
    2. ``CREATE SCHEMA IF NOT EXISTS published`` — so step 3 needs no existence test (on the
       first publish, ``previous`` becomes an empty schema and rollback restores "empty");
    3. ``ALTER SCHEMA published RENAME TO previous``;
    4. ``ALTER SCHEMA new RENAME TO published``.

    Readers resolve ``published.t`` either before or after the commit, so they see one whole
    version, never an empty or half-loaded one (tested against PostgreSQL with readers running
    through 20 swaps). Two limits, both from PostgreSQL resolving names against the latest
    catalog rather than the query's snapshot: one statement reading *several* published tables
    while a swap commits may resolve them in two adjacent versions (each complete); and a
    statement whose snapshot predates the new version's data commit but whose name lookup
    happens after the swap would see that table empty. The second needs one statement to stall
    between snapshot and parse for longer than centralize + checks take, so it is not
    reachable in practice.

    Views: a PostgreSQL view (and a regular Redshift view) binds to tables by OID, not by name.
    A view on ``published.t`` therefore *follows the rename*: after the swap it reads
    ``previous.t`` (stale data), and the next swap's ``DROP ... CASCADE`` of ``previous`` would
    silently drop it — the old ETL's defect. CASCADE is only safe when nothing outside
    ``previous`` depends on it: run :func:`dependent_views_query` for ``previous`` first in the
    same transaction and abort (naming the views) if it returns rows. Redshift late-binding
    views (``WITH NO SCHEMA BINDING``) resolve names at query time and follow the swap
    correctly; on PostgreSQL, consumers should query the published tables by name or have their
    views recreated after each publish. Set a ``lock_timeout`` (PostgreSQL) for the swap: the
    drop waits for queries still reading ``previous``.
    """
    dialect = parse_dialect(dialect)
    _check_published(dialect, published)
    previous = previous or previous_schema_name(published)
    _check_identifier(dialect, new, "new schema name")
    if len({published, new, previous}) != 3:
        raise ValueError(
            f"swap needs three distinct schemas, got published={published!r}, new={new!r}, "
            f"previous={previous!r}"
        )
    return [
        drop_owned_schema(dialect, previous),
        create_schema(dialect, published),
        _rename_schema(dialect, published, previous),
        _rename_schema(dialect, new, published),
    ]


def rollback_statements(
    dialect: Dialect, published: str, *, previous: str | None = None
) -> list[sql.Composed]:
    """The inverse swap, for ONE transaction: ``published`` ↔ ``previous`` through a temporary
    name ``<published>__swap``. Running it twice restores the original state (roll forward).
    Fails (nothing changed) when ``previous`` does not exist. Views follow their tables' OIDs
    here too (see :func:`swap_statements`)."""
    dialect = parse_dialect(dialect)
    _check_published(dialect, published)
    previous = previous or previous_schema_name(published)
    temp = _swap_schema_name(published)
    _check_identifier(dialect, temp, "derived schema name")
    if previous in (published, temp):
        raise ValueError(f"rollback: previous schema {previous!r} clashes with {published!r}")
    return [
        _rename_schema(dialect, published, temp),
        _rename_schema(dialect, previous, published),
        _rename_schema(dialect, temp, previous),
    ]


def dependent_views_query(dialect: Dialect, schema: str) -> sql.Composed:
    """Views *outside* ``schema`` that depend on relations inside it, as rows
    ``(view_schema, view_name, table_schema, table_name)``. Empty means ``DROP SCHEMA ...
    CASCADE`` of ``schema`` drops nothing else. The schema name is a parameter (``%s``):
    execute with ``(schema,)``. Uses ``pg_depend``/``pg_rewrite``, present in both dialects'
    catalogs (checked on PostgreSQL; Redshift late-binding views record no dependency and are
    never affected)."""
    dialect = parse_dialect(dialect)
    _check_identifier(dialect, schema, "schema name")
    return sql.SQL(
        "SELECT DISTINCT vn.nspname AS view_schema, v.relname AS view_name, "
        "tn.nspname AS table_schema, t.relname AS table_name "
        "FROM pg_catalog.pg_depend AS d "
        "JOIN pg_catalog.pg_rewrite AS r ON r.oid = d.objid "
        "JOIN pg_catalog.pg_class AS v ON v.oid = r.ev_class "
        "JOIN pg_catalog.pg_namespace AS vn ON vn.oid = v.relnamespace "
        "JOIN pg_catalog.pg_class AS t ON t.oid = d.refobjid "
        "JOIN pg_catalog.pg_namespace AS tn ON tn.oid = t.relnamespace "
        "WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass "
        "AND d.refclassid = 'pg_catalog.pg_class'::regclass "
        "AND tn.nspname = %s AND vn.nspname <> tn.nspname "
        "ORDER BY 1, 2, 3, 4"
    ).format()


# --------------------------------------------------------------------------------------------
# merge (micro-batch loader)
# --------------------------------------------------------------------------------------------

#: Name of the rank column the merge adds to staging rows; refused as a data column name.
MERGE_RANK_COLUMN = "__etl_merge_rank"
#: Temporary table holding one (the latest) batch row per key during a merge.
MERGE_BATCH_TABLE = "__etl_merge_batch"


def _order_expr(dialect: Dialect, column: ColumnSpec, table_alias: str) -> sql.Composable:
    ref = sql.Identifier(table_alias, column.name)
    if ColumnKind(column.kind) is ColumnKind.JSON:
        # jsonb orders, but SUPER does not: compare the serialized text on both dialects
        if dialect is Dialect.REDSHIFT:
            return sql.SQL("JSON_SERIALIZE({})").format(ref)
        return sql.SQL("CAST({} AS text)").format(ref)
    return ref


def merge_plan(
    dialect: Dialect,
    spec: TableSpec,
    *,
    target_schema: str | None,
    staging_schema: str | None,
    timestamp_column: str,
    staging_table: str | None = None,
    tie_break: Sequence[str] | None = None,
    lock_target: bool = True,
) -> list[sql.Composed]:
    """Statements (ONE transaction) that merge a staging batch into ``target_schema.<spec.name>``
    keeping one row per primary key, the latest by ``timestamp_column``:

    1. PostgreSQL with ``lock_target``: ``LOCK TABLE target IN SHARE ROW EXCLUSIVE MODE``, so
       concurrent merges into one table queue instead of racing (readers are not blocked).
       Redshift runs SERIALIZABLE and reports such conflicts as serialization failures: retry
       them (``etl_platform.core.retry``); its ``LOCK`` would block readers as well.
    2. ``CREATE TEMP TABLE __etl_merge_batch AS`` the batch's latest row per key:
       ``ROW_NUMBER() OVER (PARTITION BY key ORDER BY ts DESC NULLS LAST, tie_break... DESC
       NULLS LAST) = 1``. ``tie_break`` defaults to every other column in spec order (JSON
       compared as text), so equal timestamps resolve the same way whatever order files came in.
    3. ``DELETE FROM target USING batch`` where the key matches and the batch row is
       newer-or-equal: ``batch.ts >= target.ts OR target.ts IS NULL``.
    4. ``INSERT INTO target`` every batch row whose key the target no longer has (a target row
       newer than the batch stays; that batch row is dropped).
    5. ``DROP TABLE __etl_merge_batch`` (a failed transaction rolls its creation back anyway).

    A NULL timestamp ranks as the oldest value, never as "absent": a key whose rows all have a
    NULL ts still gets a row, and a NULL-ts batch row replaces a NULL-ts target row (the later
    load wins, as for equal timestamps). This is the portable staging-table merge: Redshift's
    ``DELETE ... USING`` takes table names, and its ``DELETE`` no alias for the target, so the
    target's columns are qualified by full name. ``staging_schema=None`` names a temporary
    staging table (unqualified ``staging_table``).
    """
    dialect = parse_dialect(dialect)
    validate_table_spec(dialect, spec)
    if not spec.primary_key:
        raise ValueError(f"merge into {spec.name!r} needs a primary key")
    _require_columns(spec, [timestamp_column], "merge timestamp column")
    if timestamp_column in spec.primary_key:
        raise ValueError(f"merge timestamp column {timestamp_column!r} is part of the key")
    if MERGE_RANK_COLUMN in spec.column_names:
        raise ValueError(f"column name {MERGE_RANK_COLUMN!r} is reserved by the merge")
    if spec.name == MERGE_BATCH_TABLE:
        raise ValueError(f"table name {MERGE_BATCH_TABLE!r} is reserved by the merge")
    if (target_schema, spec.name) == (staging_schema, staging_table or spec.name):
        raise ValueError(f"merge of {spec.name!r}: staging and target are the same table")
    by_name = {c.name: c for c in spec.columns}
    if tie_break is None:
        tie = [n for n in spec.column_names if n not in spec.primary_key and n != timestamp_column]
    else:
        tie = list(tie_break)
        _require_columns(spec, tie, "merge tie-break")

    target = qualified_name(dialect, target_schema, spec.name)
    staging = qualified_name(dialect, staging_schema, staging_table or spec.name)
    batch = sql.Identifier(MERGE_BATCH_TABLE)
    rank = sql.Identifier(MERGE_RANK_COLUMN)
    keys = spec.primary_key
    columns = _column_list(dialect, spec.column_names)
    order = [
        sql.SQL("{} DESC NULLS LAST").format(_order_expr(dialect, by_name[n], "s"))
        for n in (timestamp_column, *tie)
    ]
    create_batch = sql.SQL(
        "CREATE TEMP TABLE {} AS SELECT {} FROM (SELECT {}, ROW_NUMBER() OVER (PARTITION BY {} "
        "ORDER BY {}) AS {} FROM {} AS s) AS ranked WHERE ranked.{} = 1"
    ).format(
        batch,
        _column_list(dialect, spec.column_names, "ranked"),
        _column_list(dialect, spec.column_names, "s"),
        _column_list(dialect, keys, "s"),
        sql.SQL(", ").join(order),
        rank,
        staging,
        rank,
    )

    def target_col(name: str) -> sql.Identifier:
        if target_schema is None:
            return sql.Identifier(spec.name, name)
        return sql.Identifier(target_schema, spec.name, name)

    def batch_col(name: str) -> sql.Identifier:
        return sql.Identifier(MERGE_BATCH_TABLE, name)

    key_match = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(target_col(k), batch_col(k)) for k in keys
    )
    ts_t, ts_b = target_col(timestamp_column), batch_col(timestamp_column)
    delete = sql.SQL("DELETE FROM {} USING {} WHERE {} AND ({} >= {} OR {} IS NULL)").format(
        target, batch, key_match, ts_b, ts_t, ts_t
    )
    absent = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("t", k), sql.Identifier("b", k)) for k in keys
    )
    insert = sql.SQL(
        "INSERT INTO {} ({}) SELECT {} FROM {} AS b WHERE NOT EXISTS (SELECT 1 FROM {} AS t "
        "WHERE {})"
    ).format(
        target,
        columns,
        _column_list(dialect, spec.column_names, "b"),
        batch,
        target,
        absent,
    )
    statements: list[sql.Composed] = []
    if lock_target and dialect is Dialect.POSTGRES:
        statements.append(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(target))
    statements += [create_batch, delete, insert, sql.SQL("DROP TABLE {}").format(batch)]
    return statements


# --------------------------------------------------------------------------------------------
# timeouts
# --------------------------------------------------------------------------------------------


def _check_ms(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be an int of milliseconds >= 0 (0 = none), got {value!r}")
    return value


def session_timeouts(
    dialect: Dialect,
    statement_timeout_ms: int,
    lock_timeout_ms: int | None = None,
    *,
    local: bool = False,
) -> list[sql.Composed]:
    """``SET statement_timeout`` (both) and ``SET lock_timeout`` (PostgreSQL only), in ms;
    ``local=True`` makes them ``SET LOCAL`` (this transaction only, PostgreSQL).

    Redshift has no ``lock_timeout``: the argument is ignored there and a lock wait is bounded
    only by ``statement_timeout`` (and WLM rules) of the waiting statement. Values are rendered
    with ``sql.Literal``: ``SET`` takes no parameters.
    """
    dialect = parse_dialect(dialect)
    scope = sql.SQL("SET LOCAL" if local and dialect is Dialect.POSTGRES else "SET")
    statements = [
        sql.SQL("{} statement_timeout = {}").format(
            scope, sql.Literal(_check_ms(statement_timeout_ms, "statement_timeout_ms"))
        )
    ]
    if lock_timeout_ms is not None and dialect is Dialect.POSTGRES:
        statements.append(
            sql.SQL("{} lock_timeout = {}").format(
                scope, sql.Literal(_check_ms(lock_timeout_ms, "lock_timeout_ms"))
            )
        )
    return statements


# --------------------------------------------------------------------------------------------
# serializing publishes
# --------------------------------------------------------------------------------------------


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` naming what is serialized."""
    digest = hashlib.blake2b(f"etl_platform:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def advisory_lock(dialect: Dialect, *, wait: bool) -> sql.SQL:
    """``SELECT pg_try_advisory_lock(%s)`` (returns whether it was taken) or, with ``wait``,
    ``SELECT pg_advisory_lock(%s)``; execute with ``(advisory_lock_key(name),)``. Session
    locks: released when the connection closes, or by the server when the client dies.
    PostgreSQL only: Redshift has no advisory locks."""
    if parse_dialect(dialect) is not Dialect.POSTGRES:
        raise ValueError("advisory locks exist on PostgreSQL only")
    function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    return sql.SQL("SELECT {}(%s)").format(sql.SQL(function))


# --------------------------------------------------------------------------------------------
# publish marker: which partition a published schema holds, travelling with it through swaps
# --------------------------------------------------------------------------------------------

PUBLISH_MARKER_TABLE = "_etl_publish"


def create_publish_marker(dialect: Dialect, schema: str) -> list[sql.Composed]:
    """``schema._etl_publish``: one row naming the partition date, the data-schema fingerprint
    and the run that published the schema. It is renamed with the schema, so the published,
    previous and new versions each say what they hold."""
    dialect = parse_dialect(dialect)
    table = qualified_name(dialect, schema, PUBLISH_MARKER_TABLE)
    return [
        sql.SQL("DROP TABLE IF EXISTS {}").format(table),
        sql.SQL(
            "CREATE TABLE {} (partition_date date NOT NULL, data_schema_fingerprint {} NOT NULL, "
            "run_id {} NOT NULL, published_at timestamptz NOT NULL)"
        ).format(
            table,
            column_type(dialect, ColumnSpec("f", ColumnKind.TEXT)),
            column_type(dialect, ColumnSpec("r", ColumnKind.TEXT)),
        ),
    ]


def insert_publish_marker(dialect: Dialect, schema: str) -> sql.Composed:
    """Insert the marker row; execute with ``(partition_date, fingerprint, run_id)``."""
    return sql.SQL(
        "INSERT INTO {} (partition_date, data_schema_fingerprint, run_id, published_at) "
        "VALUES (%s, %s, %s, CURRENT_TIMESTAMP)"
    ).format(qualified_name(parse_dialect(dialect), schema, PUBLISH_MARKER_TABLE))


def publish_marker_exists_query(dialect: Dialect) -> sql.Composed:
    """One row when ``schema`` has a marker table; execute with ``(schema,)``."""
    parse_dialect(dialect)
    return sql.SQL(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = {}"
    ).format(sql.Literal(PUBLISH_MARKER_TABLE))


def publish_marker_query(dialect: Dialect, schema: str) -> sql.Composed:
    """``(partition_date, run_id)`` of the schema's marker row."""
    return sql.SQL(
        "SELECT partition_date, run_id FROM {} ORDER BY published_at DESC LIMIT 1"
    ).format(qualified_name(parse_dialect(dialect), schema, PUBLISH_MARKER_TABLE))
