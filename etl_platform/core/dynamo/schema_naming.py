"""Drafts of a data-schema's tables and columns, and the names they get.

A draft is what inference saw at one entity/list path (:mod:`.infer` builds them); here its
tables are named (main tables first, then children level by level from their parent's final
name), its key columns laid out and its value and list-length columns named around them.
Names pinned by a previous set are kept; hash suffixes come from the attribute path alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..table_spec import ColumnKind
from .config import ColumnRole, SchemaConfig
from .data_schema import DataColumn, DataTable
from .naming import (
    NameRequest,
    assign_names,
    canonical_json,
    joined_name,
    normalize_name,
    unquoted_name,
)
from .observe import PathObservation


@dataclass
class ColumnDraft:
    path: tuple[str, ...]
    kind: ColumnKind
    precision: int | None
    scale: int | None
    nullable: bool
    role: ColumnRole = ColumnRole.VALUE


def column_identity(
    entity: str | None,
    list_path: tuple[tuple[str, ...], ...],
    path: tuple[str, ...],
    role: ColumnRole = ColumnRole.VALUE,
) -> str:
    """The stable identity of a value or list-length column (the key of its pinned name)."""
    identity: list[Any] = [entity, [list(p) for p in list_path], list(path)]
    if role is not ColumnRole.VALUE:
        identity.append(role.value)
    return canonical_json(identity)


@dataclass
class TableDraft:
    entity: str | None
    list_path: tuple[tuple[str, ...], ...]
    parent: TableDraft | None
    rows: int
    columns: list[ColumnDraft] = field(default_factory=list)
    children: list[tuple[tuple[str, ...], PathObservation]] = field(default_factory=list)

    @property
    def identity(self) -> str:
        return canonical_json([self.entity, [list(p) for p in self.list_path]])

    def column_identity(self, path: tuple[str, ...], role: ColumnRole = ColumnRole.VALUE) -> str:
        return column_identity(self.entity, self.list_path, path, role)


def _index_name(taken: Iterable[str]) -> str:
    taken = set(taken)
    if "idx" not in taken:
        return "idx"
    n = 2
    while f"idx_{n}" in taken:
        n += 1
    return f"idx_{n}"


def _entity_base(config: SchemaConfig, entity: str | None) -> tuple[str, bool]:
    raw = entity if entity is not None else (config.default_entity or config.table)
    base = normalize_name([raw])
    return base, base == raw


def table_names(
    drafts: list[TableDraft], config: SchemaConfig, table_pins: Mapping[str, str]
) -> dict[str, str]:
    """Table name per draft identity: main tables first, then children level by level."""
    max_bytes = config.max_name_bytes
    mains = []
    for d in drafts:
        if d.parent is None:
            base, lossless = _entity_base(config, d.entity)
            mains.append(NameRequest(d.identity, base, lossless, (0, d.identity)))
    names = assign_names(mains, set(), table_pins, max_bytes)
    # Children are named level by level from their parent's final name, after every main table.
    depth = 1
    while True:
        level = []
        for d in drafts:
            if len(d.list_path) != depth:
                continue
            assert d.parent is not None
            last = d.list_path[-1]
            base = f"{names[d.parent.identity]}__{joined_name(last) if last else 'value'}"
            level.append(NameRequest(d.identity, base, False, (depth, d.identity)))
        if not level:
            break
        names.update(assign_names(level, set(names.values()), table_pins, max_bytes))
        depth += 1
    return names


def key_columns(
    keys: tuple[str, ...], kinds: tuple[ColumnKind, ...], max_bytes: int
) -> list[DataColumn]:
    """A main table's key columns, in key attribute order."""
    key_requests = [
        NameRequest(f"key:{k}", normalize_name([k]), normalize_name([k]) == k, (0, k), k)
        for k in keys
    ]
    key_names = assign_names(key_requests, set(), {}, max_bytes)
    return [
        DataColumn(key_names[f"key:{k}"], (k,), kind, nullable=False, role=ColumnRole.KEY)
        for k, kind in zip(keys, kinds, strict=True)
    ]


def parent_key_columns(parent_table: DataTable) -> list[DataColumn]:
    """A child table's leading columns: its parent's primary key, then an element index."""
    fixed = [
        DataColumn(c.name, c.path, c.kind, c.precision, c.scale, False, ColumnRole.PARENT_KEY)
        for c in parent_table.columns
        if c.name in parent_table.primary_key
    ]
    idx = _index_name(c.name for c in fixed)
    fixed.append(DataColumn(idx, (), ColumnKind.BIGINT, nullable=False, role=ColumnRole.INDEX))
    return fixed


def value_columns(
    d: TableDraft, fixed: list[DataColumn], pins: Mapping[str, str], max_bytes: int
) -> list[DataColumn]:
    """The value (and list-length) columns of a draft, named around its ``fixed`` columns,
    sorted by name. Hash suffixes come from the attribute path alone."""
    reserved = {c.name for c in fixed}
    requests = []
    for col in d.columns:
        base, lossless = _column_base(col)
        suffix_source = canonical_json(list(col.path))
        if col.role is ColumnRole.LIST_LENGTH:
            suffix_source = canonical_json([*col.path, "#count"])
        requests.append(
            NameRequest(
                d.column_identity(col.path, col.role),
                base,
                lossless,
                (len(col.path), canonical_json([list(col.path), col.role.value])),
                suffix_source,
            )
        )
    names = assign_names(requests, reserved, pins, max_bytes)
    return sorted(
        (
            DataColumn(
                names[d.column_identity(col.path, col.role)],
                col.path,
                col.kind,
                col.precision,
                col.scale,
                col.nullable,
                col.role,
            )
            for col in d.columns
        ),
        key=lambda c: c.name,
    )


def _column_base(col: ColumnDraft) -> tuple[str, bool]:
    """The name a column would like and whether it spells its path exactly."""
    if col.role is ColumnRole.LIST_LENGTH:
        return unquoted_name(f"{joined_name(col.path) if col.path else 'value'}__count"), False
    if col.path:
        base = normalize_name(col.path)
        return base, base == "__".join(col.path)
    return "value", True
