"""PostgreSQL connection strings (libpq URI or ``key=value`` form) without their secrets.

Pure parsing (``psycopg.conninfo``); no connection is opened. Every resource that names a
database in a message, metadata or a child process's argv uses these.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["redact_dsn", "split_password"]


def split_password(dsn: str) -> tuple[str, str | None]:
    """The DSN (URI or ``key=value`` form) without its password, and the password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>", None
    password = params.pop("password", None)
    return make_conninfo(**params), None if password is None else str(password)


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages and metadata (both DSN forms)."""
    return split_password(dsn)[0]
