"""Loads: ``COPY`` statements for the platform's CSV, and Redshift's manifest.

The platform's files are RFC-4180 CSV where ``""`` is the empty string and NULL is the
dialect's marker: an unquoted empty field for PostgreSQL (``NULL ''`` in CSV mode, stated
explicitly), a lone NUL byte for Redshift (``NULL AS '\\000'``), whose CSV reader cannot tell
an unquoted empty field from ``""``: see
:class:`~etl_platform.core.warehouse.dialect.RedshiftNulls`.

**Never** ``TRUNCATECOLUMNS``, ``ACCEPTINVCHARS``, ``BLANKSASNULL``, ``TRIMBLANKS``,
``FILLRECORD``, ``ESCAPE`` (a backslash is data; the old ETL's escaping doubled them),
``NULL AS 'nan'``, or a ``MAXERROR`` above 0: a value that does not fit fails the load.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import sql

from .dialect import Dialect, LoadMethod, RedshiftNulls, parse_dialect
from .file_format import CsvOptions, FileFormat
from .identifiers import column_list, qualified_name

__all__ = ["copy_from_stdin", "copy_manifest", "last_copy_count_query", "redshift_copy"]


def _require_load_method(dialect: Dialect, method: LoadMethod, statement: str) -> None:
    if dialect.load_method is not method:
        raise ValueError(
            f"{statement} is not how the {dialect.name} dialect loads ({dialect.load_method})"
        )


def copy_from_stdin(
    schema: str | None,
    table: str,
    columns: Sequence[str],
    *,
    header: bool = False,
    dialect: Dialect | str = Dialect.POSTGRES,
    csv: CsvOptions | None = None,
) -> sql.Composed:
    """PostgreSQL ``COPY "schema"."table" (cols) FROM STDIN`` for the platform's CSV: RFC-4180,
    comma, ``"`` quote doubled inside fields, UTF-8, unquoted empty field = NULL, ``""`` = empty
    string. Every option is stated although most are CSV-mode defaults; no ESCAPE other than the
    quote (a backslash is data). ``csv`` replaces the delimiter, quote, NULL marker and header
    with a file's validated options (:class:`~.file_format.CsvOptions`)."""
    dialect = parse_dialect(dialect)
    _require_load_method(dialect, LoadMethod.COPY_FROM_STDIN, "COPY FROM STDIN")
    csv = csv if csv is not None else CsvOptions(header=header)
    null = dialect.csv_null if csv.null_marker is None else csv.null_marker
    options = sql.SQL("FORMAT csv, DELIMITER {}, QUOTE {}, NULL {}, ENCODING 'UTF8'{}").format(
        sql.Literal(csv.delimiter),
        sql.Literal(csv.quote),
        sql.Literal(null),
        sql.SQL(", HEADER true" if csv.header or header else ""),
    )
    return sql.SQL("COPY {} ({}) FROM STDIN ({})").format(
        qualified_name(dialect, schema, table), column_list(dialect, columns), options
    )


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


def _iam_role_sql(iam_role: str) -> sql.Composable:
    roles = [r.strip() for r in iam_role.split(",")]
    if iam_role.strip() == "default":
        return sql.SQL("default")
    if roles and all(_IAM_ROLE.match(r) for r in roles):
        return sql.Literal(",".join(roles))
    raise ValueError(
        f"IAM role {iam_role!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>), "
        "a comma-separated chain of them, or 'default'"
    )


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
    nulls: RedshiftNulls | None = None,
    staging: bool = True,
    dialect: Dialect | str = Dialect.REDSHIFT,
    file_format: FileFormat | None = None,
) -> sql.Composed:
    """Redshift ``COPY "schema"."table" (cols) FROM 's3://.../manifest' IAM_ROLE '...'
    [REGION '...'] FORMAT AS CSV QUOTE AS '"' DELIMITER ',' [GZIP] MANIFEST ENCODING UTF8
    TIMEFORMAT 'auto' NULL AS '\\000' [IGNOREHEADER 1] [COMPUPDATE OFF STATUPDATE OFF]
    MAXERROR 0``.

    ``iam_role`` is one role ARN, a comma-separated chain, or ``"default"``. The S3 URL, role
    and region are validated (no quotes or backslashes) and rendered with ``sql.Literal``: COPY
    takes no parameters. ``TIMEFORMAT 'auto'`` because a format string makes Redshift drop the
    UTC offset of TIMESTAMPTZ input. ``nulls`` defaults to the dialect's
    :attr:`~Dialect.redshift_nulls` (see :class:`RedshiftNulls` for the choice) and must agree
    with it: the files were written with the dialect's :attr:`~Dialect.csv_null`.
    ``staging=True`` (every platform COPY loads a table rebuilt for that load) adds the
    dialect's :attr:`~Dialect.staging_copy_options`.

    ``file_format`` (default: the platform's gzip CSV) gives a file's CSV options (``DELIMITER``,
    ``QUOTE AS``, ``IGNOREHEADER 1``, ``NULL AS``) or Parquet: ``FORMAT AS PARQUET MANIFEST
    [STATUPDATE OFF]`` and nothing else, the only parameters COPY from columnar files takes
    (no REGION, compression, CSV, NULL, time format or MAXERROR options: the file carries its
    types and NULLs, and any error fails the COPY), and **no column list**: COPY from columnar
    files puts the file's columns into the table's columns by position and needs as many of
    each, so ``table`` must have exactly the file's columns in the file's order (``columns``
    is not rendered; see :mod:`.columnar_stage`).
    """
    dialect = parse_dialect(dialect)
    _require_load_method(dialect, LoadMethod.COPY_FROM_S3_MANIFEST, "COPY FROM S3")
    _check_s3_url(manifest_url, "manifest URL")
    file_format = file_format if file_format is not None else FileFormat()
    target = qualified_name(dialect, schema, table)
    if not file_format.is_parquet:
        target = sql.SQL("{} ({})").format(target, column_list(dialect, columns))
    parts: list[sql.Composable] = [
        sql.SQL("COPY {} FROM {} IAM_ROLE {}").format(
            target, sql.Literal(manifest_url), _iam_role_sql(iam_role)
        )
    ]
    if region is not None:
        if file_format.is_parquet:
            raise ValueError("Redshift COPY from Parquet takes no REGION (same-region bucket)")
        if not _REGION.match(region):
            raise ValueError(f"AWS region {region!r} does not look like e.g. 'eu-west-1'")
        parts.append(sql.SQL("REGION {}").format(sql.Literal(region)))
    if file_format.is_parquet:
        options: list[sql.Composable] = [sql.SQL("FORMAT AS PARQUET MANIFEST")]
        if staging:
            statupdate = [o for o in dialect.staging_copy_options if o.startswith("STATUPDATE")]
            options += [sql.SQL(o) for o in statupdate]
    else:
        options = _redshift_csv_options(dialect, file_format.csv, gzip, header, nulls)
        if staging:
            options += [sql.SQL(o) for o in dialect.staging_copy_options]
        options.append(sql.SQL("MAXERROR 0"))
    return sql.SQL(" ").join(parts + options)


def _redshift_csv_options(
    dialect: Dialect, csv: CsvOptions, gzip: bool, header: bool, nulls: RedshiftNulls | None
) -> list[sql.Composable]:
    """The CSV options of a Redshift COPY, up to (not including) the staging options."""
    options: list[sql.Composable] = [
        sql.SQL("FORMAT AS CSV QUOTE AS {} DELIMITER {}").format(
            sql.Literal(csv.quote), sql.Literal(csv.delimiter)
        )
    ]
    if gzip:
        options.append(sql.SQL("GZIP"))
    options.append(sql.SQL("MANIFEST ENCODING UTF8 TIMEFORMAT 'auto'"))
    if csv.null_marker is not None:
        if nulls is not None:
            raise ValueError("give either the files' null_marker or a COPY NULL mode, not both")
        options.append(sql.SQL("NULL AS {}").format(sql.Literal(csv.null_marker)))
    else:
        nulls = RedshiftNulls(nulls if nulls is not None else dialect.redshift_nulls)
        if nulls is not dialect.redshift_nulls:
            raise ValueError(
                f"COPY NULL mode {nulls.value} does not match the files the {dialect.name} "
                f"dialect writes (NULL marker {dialect.csv_null!r}, mode "
                f"{dialect.redshift_nulls}): the load would turn values into NULL or NULL "
                "into text"
            )
        null = "EMPTYASNULL" if nulls is RedshiftNulls.EMPTY_AS_NULL else "NULL AS '\\000'"
        options.append(sql.SQL(null))
    if header or csv.header:
        options.append(sql.SQL("IGNOREHEADER 1"))
    return options


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


def last_copy_count_query() -> sql.SQL:
    """``SELECT pg_last_copy_count()``: the rows the session's last COPY loaded, for a dialect
    whose :attr:`~Dialect.loaded_row_count` is ``PG_LAST_COPY_COUNT`` (Redshift)."""
    return sql.SQL("SELECT pg_last_copy_count()")
