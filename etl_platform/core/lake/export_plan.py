"""The plan of one table's export, from its catalog: which columns, in which lake types, and the
type of the date column that assigns rows to days. Errors name the table and the column."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import pyarrow as pa

from .arrow_types import (
    DATE_COLUMN_TYPES,
    DEFAULT_UNCONSTRAINED_NUMERIC,
    ColumnPlan,
    PgColumn,
    plan_column,
)
from .column_names import lake_column_names
from .errors import LakeExportError, UnsupportedColumnError
from .source_sql import TableRef, ndims_alias


@dataclass(frozen=True)
class ExportPlan:
    """The planned columns of one table and the type of its date column."""

    table: TableRef
    plans: tuple[ColumnPlan, ...]
    date_column: str
    date_type: str

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema every Parquet part of the table carries (lake column names)."""
        return pa.schema([p.field for p in self.plans])

    @property
    def renamed_columns(self) -> dict[str, str]:
        """Lake name → source name of the columns whose lake name differs."""
        return {p.lake_name: p.name for p in self.plans if p.lake_name and p.lake_name != p.name}


def date_column_type(table: TableRef, catalog: Sequence[PgColumn], date_column: str) -> str:
    """The type of the date column (``timestamptz``, ``timestamp`` or ``date``); anything else,
    or a missing column, is refused naming the table and the column."""
    by_name = {c.name: c for c in catalog}
    if date_column not in by_name:
        raise LakeExportError(
            f"{table.display}: no date column {date_column!r} (columns: {', '.join(by_name)})",
            setting="date_column",
        )
    dcol = by_name[date_column]
    if dcol.element_type is not None or dcol.type_name not in DATE_COLUMN_TYPES:
        raise UnsupportedColumnError(
            f"{table.display}.{date_column}: date column has type {dcol.declared}; "
            f"expected timestamptz, timestamp or date",
            setting="date_column",
        )
    return dcol.type_name


def _select_columns(
    table: TableRef, catalog: Sequence[PgColumn], columns: Sequence[str] | None
) -> list[PgColumn]:
    by_name = {c.name: c for c in catalog}
    if columns is None:
        return list(catalog)
    if isinstance(columns, str):
        raise TypeError("columns must be a sequence of column names, not a string")
    seen: set[str] = set()
    out = []
    for name in columns:
        if name in seen:
            raise LakeExportError(
                f"{table.display}: column {name!r} listed twice", setting="columns"
            )
        seen.add(name)
        if name not in by_name:
            raise LakeExportError(
                f"{table.display}: no column {name!r} (columns: {', '.join(by_name)})",
                setting="columns",
            )
        out.append(by_name[name])
    if not out:
        raise LakeExportError(f"{table.display}: empty column list", setting="columns")
    return out


def plan_export(
    table: TableRef,
    catalog: Sequence[PgColumn],
    date_column: str,
    *,
    columns: Sequence[str] | None = None,
    as_text: Collection[str] = (),
    unconstrained_numeric: tuple[int, int] = DEFAULT_UNCONSTRAINED_NUMERIC,
) -> ExportPlan:
    """Plan the export of ``columns`` (default: all, in table order) of ``table``; ``as_text``
    columns are exported as their PostgreSQL text form. Each column gets its lake name
    (:func:`~.column_names.lake_column_names`: source names Athena cannot query unquoted are
    normalized; the source name is kept in the field metadata)."""
    date_type = date_column_type(table, catalog, date_column)
    unknown = set(as_text) - {c.name for c in catalog}
    if unknown:
        raise LakeExportError(
            f"{table.display}: as_text names unknown columns {sorted(unknown)}", setting="as_text"
        )
    plans = tuple(
        plan_column(
            table.display,
            c,
            as_text=c.name in as_text,
            unconstrained_numeric=unconstrained_numeric,
        )
        for c in _select_columns(table, catalog, columns)
    )
    lake_names = lake_column_names(p.name for p in plans)
    plans = tuple(replace(p, lake_name=lake_names[p.name]) for p in plans)
    reserved = {ndims_alias(i) for i in range(len(plans))} & {p.name for p in plans}
    if reserved:
        raise LakeExportError(f"{table.display}: column names {sorted(reserved)} are reserved")
    return ExportPlan(table, plans, date_column, date_type)
