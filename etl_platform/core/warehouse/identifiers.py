"""Identifiers: the one quoting path.

Every identifier is validated before quoting: non-empty, no NUL, and at most the dialect's
:attr:`~etl_platform.core.warehouse.dialect.Dialect.max_identifier_bytes`. PostgreSQL silently
*truncates* longer names, so two long names could collide; we refuse instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

from .dialect import Dialect, parse_dialect

__all__ = [
    "catalog_name",
    "checked_identifier",
    "column_list",
    "identifier",
    "qualified_name",
    "require_folded",
]


def checked_identifier(dialect: Dialect, name: str, what: str = "identifier") -> str:
    """``name`` if it is a valid identifier in ``dialect``; the error names ``what`` it is."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {type(name).__name__}")
    if name == "":
        raise ValueError(f"{what} must not be empty")
    if "\x00" in name:
        raise ValueError(f"{what} {name!r} contains a NUL character")
    size = len(name.encode("utf-8"))
    limit = dialect.max_identifier_bytes
    if size > limit:
        raise ValueError(
            f"{what} {name!r} is {size} bytes in UTF-8; {dialect.name} allows {limit} "
            f"(longer names would be truncated and could collide)"
        )
    return name


def catalog_name(dialect: Dialect | str, name: str, what: str = "identifier") -> str:
    """``name`` as the catalog (``information_schema``, ``pg_namespace``) stores it, for a
    lookup parameter: validated, then folded to lower case where the dialect folds identifiers
    (Redshift stores ``"Sales"`` as ``sales``; comparing the unfolded name finds nothing)."""
    dialect = parse_dialect(dialect)
    return dialect.fold_identifier(checked_identifier(dialect, name, what))


def require_folded(dialect: Dialect | str, name: str, what: str = "identifier") -> str:
    """``name`` if the dialect stores it unchanged; ``ValueError`` naming it and its folded
    form otherwise. For names the platform later looks up in the catalog by their text
    (schemas): refusing upper case up front keeps every such lookup right on Redshift, with or
    without ``enable_case_sensitive_identifier``."""
    dialect = parse_dialect(dialect)
    folded = catalog_name(dialect, name, what)
    if folded != name:
        raise ValueError(
            f"{what} {name!r} has upper-case letters; {dialect.title} folds identifiers to lower "
            f"case, so catalog lookups by this name would miss it: use {folded!r}"
        )
    return name


def identifier(dialect: Dialect | str, name: str) -> sql.Identifier:
    """``name`` validated for ``dialect`` and quoted as one identifier."""
    return sql.Identifier(checked_identifier(parse_dialect(dialect), name))


def qualified_name(dialect: Dialect | str, schema: str | None, name: str) -> sql.Identifier:
    """``"schema"."name"`` (or just ``"name"`` when ``schema`` is None, e.g. temp tables)."""
    dialect = parse_dialect(dialect)
    if schema is None:
        return sql.Identifier(checked_identifier(dialect, name, "table name"))
    return sql.Identifier(
        checked_identifier(dialect, schema, "schema name"),
        checked_identifier(dialect, name, "table name"),
    )


def column_list(dialect: Dialect, names: Iterable[str], prefix: str | None = None) -> sql.Composed:
    """``"a", "b"`` (or ``"prefix"."a", ...``); a list must not be empty."""
    if prefix is None:
        parts = [sql.Identifier(checked_identifier(dialect, n, "column name")) for n in names]
    else:
        parts = [
            sql.Identifier(prefix, checked_identifier(dialect, n, "column name")) for n in names
        ]
    if not parts:
        raise ValueError("a column list must not be empty")
    return sql.SQL(", ").join(parts)
