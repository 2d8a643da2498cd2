"""The source PostgreSQL databases the lake exports, as a Dagster resource: it reads the DSN
from the environment at run time and hands out a :class:`~.source_database.SourceDatabase`
(connections with timeouts, catalog lookup, window counts, the ADBC record-batch stream).

The DSN is a secret: it is read from an environment variable at run time (``dsn_env``, or the one
a pipeline instance names) and only its redacted form ever reaches a message.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from .source_database import BATCH_SIZE_HINT_OPTION, SourceDatabase, SourcePostgresError

__all__ = [
    "BATCH_SIZE_HINT_OPTION",
    "SourceDatabase",
    "SourcePostgresError",
    "SourcePostgresResource",
]


class SourcePostgresResource(dg.ConfigurableResource):
    """The source PostgreSQL databases of the lake pipelines. The DSN is a secret read at run
    time from the environment variable ``dsn_env`` (or the one a pipeline instance names)."""

    dsn_env: str = Field(
        default="ETL_SOURCE_DSN",
        description="Environment variable holding the source DSN (read at run time, never logged).",
    )
    connect_timeout_s: int = Field(default=15, ge=1, description="Bound on opening a session.")

    def database(
        self, dsn_env: str | None = None, *, statement_timeout_ms: int | None = None
    ) -> SourceDatabase:
        """The database whose DSN is in ``dsn_env`` (default: the resource's ``dsn_env``); every
        session it opens has ``statement_timeout_ms`` (None: no limit)."""
        name = dsn_env or self.dsn_env
        dsn = dg.EnvVar(name).get_value()
        if not dsn:
            raise SourcePostgresError(
                f"environment variable {name} (setting `dsn_env`, the source DSN) is not set"
            )
        return SourceDatabase(
            dsn,
            setting=f"environment variable {name}",
            statement_timeout_ms=statement_timeout_ms,
            connect_timeout_s=self.connect_timeout_s,
        )
