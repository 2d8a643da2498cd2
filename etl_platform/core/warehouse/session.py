"""Session settings: the ONE builder of statement and lock timeouts."""

from __future__ import annotations

from psycopg import sql

from .dialect import Dialect, parse_dialect

__all__ = ["session_timeouts"]


def _check_ms(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be an int of milliseconds >= 0 (0 = none), got {value!r}")
    return value


def session_timeouts(
    dialect: Dialect | str,
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
    scope = sql.SQL("SET LOCAL" if local and dialect.supports_set_local else "SET")
    statements = [
        sql.SQL("{} statement_timeout = {}").format(
            scope, sql.Literal(_check_ms(statement_timeout_ms, "statement_timeout_ms"))
        )
    ]
    if lock_timeout_ms is not None and dialect.supports_lock_timeout:
        statements.append(
            sql.SQL("{} lock_timeout = {}").format(
                scope, sql.Literal(_check_ms(lock_timeout_ms, "lock_timeout_ms"))
            )
        )
    return statements
