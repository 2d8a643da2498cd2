"""What changed between two data-schema sets: tables and columns added or removed, and column
types widened (up the type lattice, or to more digits) or narrowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..table_spec import ColumnKind
from .data_schema import DataColumn, DataSchemaSet

_WIDER = {
    (ColumnKind.BIGINT, ColumnKind.DECIMAL),
    (ColumnKind.BIGINT, ColumnKind.TEXT),
    (ColumnKind.DECIMAL, ColumnKind.TEXT),
    (ColumnKind.TIMESTAMPTZ, ColumnKind.TEXT),
}


def _widens(old: DataColumn, new: DataColumn) -> bool:
    if old.kind is new.kind:
        if old.kind is ColumnKind.DECIMAL:
            assert old.precision is not None and new.precision is not None
            assert old.scale is not None and new.scale is not None
            return new.scale >= old.scale and (new.precision - new.scale) >= (
                old.precision - old.scale
            )
        return True
    return new.kind is ColumnKind.JSON or (old.kind, new.kind) in _WIDER


@dataclass(frozen=True)
class ColumnChange:
    table: str
    column: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class SchemaDiff:
    """What changed between two data-schema sets, by table and column name."""

    added_tables: tuple[str, ...] = ()
    removed_tables: tuple[str, ...] = ()
    added_columns: tuple[ColumnChange, ...] = ()
    removed_columns: tuple[ColumnChange, ...] = ()
    widened_columns: tuple[ColumnChange, ...] = ()
    narrowed_columns: tuple[ColumnChange, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (
            self.added_tables
            or self.removed_tables
            or self.added_columns
            or self.removed_columns
            or self.widened_columns
            or self.narrowed_columns
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for UI metadata)."""

        def cols(changes: tuple[ColumnChange, ...]) -> list[str]:
            out = []
            for c in changes:
                if c.old is not None and c.new is not None:
                    out.append(f"{c.table}.{c.column}: {c.old} -> {c.new}")
                else:
                    out.append(f"{c.table}.{c.column}: {c.new or c.old}")
            return out

        return {
            "added_tables": list(self.added_tables),
            "removed_tables": list(self.removed_tables),
            "added_columns": cols(self.added_columns),
            "removed_columns": cols(self.removed_columns),
            "widened_columns": cols(self.widened_columns),
            "narrowed_columns": cols(self.narrowed_columns),
        }


def diff(old: DataSchemaSet | None, new: DataSchemaSet) -> SchemaDiff:
    """Added/removed tables and columns and type changes from ``old`` to ``new`` (a change up
    the type lattice or to more digits is *widened*, anything else *narrowed*). Observed
    nullability is not compared: warehouse columns other than keys are always nullable."""
    old_tables = {t.name: t for t in old.tables} if old is not None else {}
    new_tables = {t.name: t for t in new.tables}
    added_cols: list[ColumnChange] = []
    removed_cols: list[ColumnChange] = []
    widened: list[ColumnChange] = []
    narrowed: list[ColumnChange] = []
    for name in sorted(old_tables.keys() & new_tables.keys()):
        old_cols = {c.name: c for c in old_tables[name].columns}
        new_cols = {c.name: c for c in new_tables[name].columns}
        for c in sorted(new_cols.keys() - old_cols.keys()):
            added_cols.append(ColumnChange(name, c, None, new_cols[c].type_label))
        for c in sorted(old_cols.keys() - new_cols.keys()):
            removed_cols.append(ColumnChange(name, c, old_cols[c].type_label, None))
        for c in sorted(old_cols.keys() & new_cols.keys()):
            o, n = old_cols[c], new_cols[c]
            if (o.kind, o.precision, o.scale) == (n.kind, n.precision, n.scale):
                continue
            change = ColumnChange(name, c, o.type_label, n.type_label)
            (widened if _widens(o, n) else narrowed).append(change)
    return SchemaDiff(
        added_tables=tuple(sorted(new_tables.keys() - old_tables.keys())),
        removed_tables=tuple(sorted(old_tables.keys() - new_tables.keys())),
        added_columns=tuple(added_cols),
        removed_columns=tuple(removed_cols),
        widened_columns=tuple(widened),
        narrowed_columns=tuple(narrowed),
    )
