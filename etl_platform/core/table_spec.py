"""The warehouse-neutral description of a table: what a data-schema becomes in SQL.

Every pipeline that creates warehouse tables describes them with these types; the dialect
renders them (``etl_platform.core.warehouse``). Kinds are logical, not SQL: ``DECIMAL`` is
exact whatever the dialect, ``JSON`` is ``jsonb`` on PostgreSQL and ``SUPER`` on Redshift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ColumnKind(StrEnum):
    TEXT = "text"
    BIGINT = "bigint"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    BINARY = "binary"
    TIMESTAMPTZ = "timestamptz"
    JSON = "json"


@dataclass(frozen=True)
class ColumnSpec:
    """One column. ``precision``/``scale`` only for DECIMAL (None = unconstrained)."""

    name: str
    kind: ColumnKind
    precision: int | None = None
    scale: int | None = None
    nullable: bool = True


@dataclass(frozen=True)
class TableSpec:
    """One table: ordered columns and the primary key (column names, possibly empty)."""

    name: str
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)
