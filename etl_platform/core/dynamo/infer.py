"""Inference: data-schema sets built from observations, evolved and merged.

:func:`build_schema_set` turns observations into tables and columns (names, kinds,
precision/scale, nullability). Names of a ``previous`` set are kept (pinned), so re-inference
and evolution never rename an existing column.

The type lattice (join of everything observed at one attribute path; ``NULL`` only makes the
column nullable)::

    BIGINT  <  DECIMAL  <  TEXT      N: BIGINT while every value is an integer in int64 range,
    TIMESTAMPTZ  <  TEXT             else DECIMAL(precision, scale) exactly as observed.
    BOOLEAN, BINARY                  S: TIMESTAMPTZ while every value is a strict ISO-8601
    everything  <  JSON                 timestamp with an explicit offset or Z, else TEXT.

* ``NULL``, an empty map and a map of only NULLs (recursively) flatten to nothing: NULL;
* number vs string -> TEXT, holding each number's exact original representation;
* BOOLEAN or BINARY vs any other scalar kind -> JSON (no lossless text form exists);
* a scalar vs a map or a list, or a map vs a list, at the same path -> one JSON column there
  (the whole value, maps and lists included, as compact JSON with exact numbers).

Maps flatten into columns joined with ``__`` (``address__city``), to any depth. Lists and sets
become child tables ``<table>__<path>`` keyed by the parent's key columns plus an element index
(``idx``; nested lists add ``idx_2``, ...); a scalar element is the ``value`` column, a map
element flattens into columns like an item. Sets are emitted sorted (strings by code point,
numbers by value, binaries by bytes). With ``list_mode="json"`` lists and sets are JSON columns.

Key attributes are the main table's primary key. Their columns are never TIMESTAMPTZ: two
strings naming the same instant are distinct DynamoDB keys and must stay distinct.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..table_spec import ColumnKind
from .config import ColumnRole, ListMode, SchemaConfig
from .data_schema import DataColumn, DataSchemaSet, DataTable
from .naming import NameRequest, assign_names, canonical_json, joined_name, normalize_name
from .observe import (
    KIND_BINARY,
    KIND_BOOL,
    KIND_DECIMAL,
    KIND_INT,
    KIND_TEXT,
    KIND_TIMESTAMP,
    SHAPE_LIST,
    SHAPE_MAP,
    SHAPE_SCALAR,
    PathObservation,
    SchemaObservations,
    entity_sort_key,
    merge_observations,
    observe,
)


def _scalar_kind(kinds: int) -> ColumnKind:
    if kinds & (KIND_BOOL | KIND_BINARY):
        if kinds == KIND_BOOL:
            return ColumnKind.BOOLEAN
        if kinds == KIND_BINARY:
            return ColumnKind.BINARY
        return ColumnKind.JSON
    numeric = kinds & (KIND_INT | KIND_DECIMAL)
    stringy = kinds & (KIND_TIMESTAMP | KIND_TEXT)
    if numeric and stringy:
        return ColumnKind.TEXT
    if stringy:
        return ColumnKind.TEXT if kinds & KIND_TEXT else ColumnKind.TIMESTAMPTZ
    return ColumnKind.DECIMAL if kinds & KIND_DECIMAL else ColumnKind.BIGINT


@dataclass
class _ColumnDraft:
    path: tuple[str, ...]
    kind: ColumnKind
    precision: int | None
    scale: int | None
    nullable: bool


@dataclass
class _TableDraft:
    entity: str | None
    list_path: tuple[tuple[str, ...], ...]
    parent: _TableDraft | None
    rows: int
    columns: list[_ColumnDraft] = field(default_factory=list)
    children: list[tuple[tuple[str, ...], PathObservation]] = field(default_factory=list)

    @property
    def identity(self) -> str:
        return canonical_json([self.entity, [list(p) for p in self.list_path]])

    def column_identity(self, path: tuple[str, ...]) -> str:
        return canonical_json([self.entity, [list(p) for p in self.list_path], list(path)])


def _column_draft(
    node: PathObservation, path: tuple[str, ...], rows: int, kind: ColumnKind
) -> _ColumnDraft:
    precision = scale = None
    if kind is ColumnKind.DECIMAL:
        scale = node.scale
        precision = max(1, node.int_digits + node.scale)
    nullable = (node.seen - node.nulls) < rows
    return _ColumnDraft(path, kind, precision, scale, nullable)


def _walk(
    draft: _TableDraft,
    node: PathObservation,
    path: tuple[str, ...],
    mode: ListMode,
    skip: frozenset[str],
) -> None:
    shapes = node.shapes
    if shapes == 0:
        return
    if shapes == SHAPE_MAP:
        for key in sorted(node.children):
            if not path and key in skip:
                continue
            _walk(draft, node.children[key], (*path, key), mode, skip)
    elif shapes == SHAPE_SCALAR:
        draft.columns.append(_column_draft(node, path, draft.rows, _scalar_kind(node.kinds)))
    elif shapes == SHAPE_LIST and mode is ListMode.CHILD_TABLES:
        assert node.elem is not None
        draft.children.append((path, node.elem))
    else:
        draft.columns.append(_column_draft(node, path, draft.rows, ColumnKind.JSON))


def _key_kind(
    node: PathObservation | None, attribute: str, entity: str | None, rows: int
) -> ColumnKind:
    if node is None or node.shapes != SHAPE_SCALAR or node.nulls or node.seen != rows:
        raise ValueError(
            f"key attribute {attribute!r} of entity {entity!r} is not a non-null scalar in every "
            "item (is the key configured right?)"
        )
    kind = _scalar_kind(node.kinds)
    if kind is ColumnKind.TIMESTAMPTZ:
        return ColumnKind.TEXT
    if kind not in (ColumnKind.TEXT, ColumnKind.BIGINT, ColumnKind.DECIMAL, ColumnKind.BINARY):
        raise ValueError(f"key attribute {attribute!r} of entity {entity!r} has kind {kind}")
    return kind


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


def build_schema_set(
    observations: SchemaObservations, previous: DataSchemaSet | None = None
) -> DataSchemaSet:
    """Tables and columns for ``observations``; table and column names of ``previous`` are kept
    for the same entity/list/attribute paths."""
    config = observations.config
    if previous is not None and previous.config != config:
        raise ValueError(
            f"previous data-schema set has a different config: {previous.config} vs {config}"
        )
    table_pins, column_pins = _pins(previous)
    drafts = _drafts(observations)
    table_names = _table_names(drafts, config, table_pins)
    key_kinds = _key_kinds(drafts, observations)
    max_bytes = config.max_name_bytes
    tables: dict[str, DataTable] = {}
    for d in drafts:
        if d.parent is None:
            fixed = _key_columns(config.key_attributes, key_kinds[d.entity], max_bytes)
        else:
            fixed = _parent_key_columns(tables[table_names[d.parent.identity]])
        pins = column_pins.get(d.identity, {})
        name = table_names[d.identity]
        tables[name] = DataTable(
            name=name,
            entity=d.entity,
            list_path=d.list_path,
            parent=None if d.parent is None else table_names[d.parent.identity],
            columns=(*fixed, *_value_columns(d, fixed, pins, max_bytes)),
            primary_key=tuple(c.name for c in fixed),
            rows_observed=d.rows,
        )
    return DataSchemaSet(
        config=config,
        tables=tuple(tables[n] for n in sorted(tables)),
        observations=observations,
    )


def _pins(previous: DataSchemaSet | None) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Table names and value column names of ``previous``, by table and column identity."""
    table_pins: dict[str, str] = {}
    column_pins: dict[str, dict[str, str]] = {}
    if previous is not None:
        for t in previous.tables:
            table_pins[t.identity] = t.name
            column_pins[t.identity] = {
                canonical_json([t.entity, [list(p) for p in t.list_path], list(c.path)]): c.name
                for c in t.columns
                if c.role is ColumnRole.VALUE
            }
    return table_pins, column_pins


def _drafts(observations: SchemaObservations) -> list[_TableDraft]:
    """Per entity its main table, then its child tables (one per list, at any depth)."""
    config = observations.config
    keys = config.key_attributes
    drafts: list[_TableDraft] = []
    for entity in sorted(observations.entities, key=entity_sort_key):
        root = observations.entities[entity]
        main = _TableDraft(entity, (), None, root.seen)
        _walk(main, root, (), config.list_mode, frozenset(keys))
        drafts.append(main)
        pending = [main]
        while pending:
            parent = pending.pop()
            for path, elem in parent.children:
                child = _TableDraft(entity, (*parent.list_path, path), parent, elem.seen)
                _walk(child, elem, (), config.list_mode, frozenset())
                drafts.append(child)
                pending.append(child)
    return drafts


def _table_names(
    drafts: list[_TableDraft], config: SchemaConfig, table_pins: Mapping[str, str]
) -> dict[str, str]:
    """Table name per draft identity: main tables first, then children level by level."""
    max_bytes = config.max_name_bytes
    mains = []
    for d in drafts:
        if d.parent is None:
            base, lossless = _entity_base(config, d.entity)
            mains.append(NameRequest(d.identity, base, lossless, (0, d.identity)))
    table_names = assign_names(mains, set(), table_pins, max_bytes)
    # Children are named level by level from their parent's final name, after every main table.
    depth = 1
    while True:
        level = []
        for d in drafts:
            if len(d.list_path) != depth:
                continue
            assert d.parent is not None
            last = d.list_path[-1]
            base = f"{table_names[d.parent.identity]}__{joined_name(last) if last else 'value'}"
            level.append(NameRequest(d.identity, base, False, (depth, d.identity)))
        if not level:
            break
        table_names.update(assign_names(level, set(table_names.values()), table_pins, max_bytes))
        depth += 1
    return table_names


def _key_kinds(
    drafts: list[_TableDraft], observations: SchemaObservations
) -> dict[str | None, tuple[ColumnKind, ...]]:
    """Per entity, the column kinds of its key attributes (checked present in every item)."""
    keys = observations.config.key_attributes
    key_kinds = {}
    for d in drafts:
        if d.parent is None:
            root = observations.entities[d.entity]
            key_kinds[d.entity] = tuple(
                _key_kind(root.children.get(k), k, d.entity, root.seen) for k in keys
            )
    return key_kinds


def _key_columns(
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


def _parent_key_columns(parent_table: DataTable) -> list[DataColumn]:
    """A child table's leading columns: its parent's primary key, then an element index."""
    fixed = [
        DataColumn(c.name, c.path, c.kind, c.precision, c.scale, False, ColumnRole.PARENT_KEY)
        for c in parent_table.columns
        if c.name in parent_table.primary_key
    ]
    idx = _index_name(c.name for c in fixed)
    fixed.append(DataColumn(idx, (), ColumnKind.BIGINT, nullable=False, role=ColumnRole.INDEX))
    return fixed


def _value_columns(
    d: _TableDraft, fixed: list[DataColumn], pins: Mapping[str, str], max_bytes: int
) -> list[DataColumn]:
    """The value columns of a draft, named around its ``fixed`` columns, sorted by name."""
    reserved = {c.name for c in fixed}
    requests = []
    for col in d.columns:
        if col.path:
            base = normalize_name(col.path)
            lossless = base == "__".join(col.path)
        else:
            base, lossless = "value", True
        path_text = canonical_json(list(col.path))
        requests.append(
            NameRequest(
                d.column_identity(col.path), base, lossless, (len(col.path), path_text), path_text
            )
        )
    names = assign_names(requests, reserved, pins, max_bytes)
    return sorted(
        (
            DataColumn(
                names[d.column_identity(col.path)],
                col.path,
                col.kind,
                col.precision,
                col.scale,
                col.nullable,
                ColumnRole.VALUE,
            )
            for col in d.columns
        ),
        key=lambda c: c.name,
    )


def infer_schema_set(
    items: Iterable[Mapping[str, Any]],
    config: SchemaConfig,
    previous: DataSchemaSet | None = None,
) -> DataSchemaSet:
    """Observe ``items`` and build their data-schema set (names of ``previous`` kept)."""
    return build_schema_set(observe(items, config), previous)


def evolve_schema_set(
    schema_set: DataSchemaSet, items: Iterable[Mapping[str, Any]]
) -> DataSchemaSet:
    """``schema_set`` widened to also fit ``items`` (e.g. the items a transform reported as not
    fitting); existing table and column names are kept."""
    observed = observe(items, schema_set.config)
    return build_schema_set(merge_observations(schema_set.observations, observed), schema_set)


def merge_schema_sets(a: DataSchemaSet, b: DataSchemaSet) -> DataSchemaSet:
    """One set covering both (e.g. per-segment inferences): observations merged, names kept
    where both sets agree (commutative)."""
    pins_a = {t.identity: t for t in a.tables}
    pins_b = {t.identity: t for t in b.tables}
    previous_tables = []
    for identity in sorted(pins_a.keys() & pins_b.keys()):
        ta, tb = pins_a[identity], pins_b[identity]
        if ta.name != tb.name:
            continue
        cols_b = {c.path: c.name for c in tb.columns if c.role is ColumnRole.VALUE}
        agreed = tuple(
            c for c in ta.columns if c.role is not ColumnRole.VALUE or cols_b.get(c.path) == c.name
        )
        previous_tables.append(
            DataTable(ta.name, ta.entity, ta.list_path, ta.parent, agreed, ta.primary_key)
        )
    merged = merge_observations(a.observations, b.observations)
    previous = DataSchemaSet(a.config, tuple(previous_tables), merged)
    return build_schema_set(merged, previous)
