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

* ``NULL``, an empty map and a map of only NULLs (recursively) at a path that holds nothing
  else -> a JSON column holding the value as written (``null``, ``{}``, ``{"a":null}``), so
  such an attribute is told from a missing one (SQL NULL); next to other values they are NULL;
* number vs string -> TEXT, holding each number's exact original representation;
* BOOLEAN or BINARY vs any other scalar kind -> JSON (no lossless text form exists);
* a scalar vs a map or a list, or a map vs a list, at the same path -> one JSON column there
  (the whole value, maps and lists included, as compact JSON with exact numbers).

Maps flatten into columns joined with ``__`` (``address__city``), to any depth. Lists and sets
become child tables ``<table>__<path>`` keyed by the parent's key columns plus an element index
(``idx``; nested lists add ``idx_2``, ...); a scalar element is the ``value`` column, a map
element flattens into columns like an item. The parent gets a column ``<path>__count``
(role ``list_length``) with the element count, so an empty list (0) is told from a missing or
NULL one (NULL). A JSON column stays JSON when re-inferred or evolved (never narrows). Sets are
emitted sorted (strings by code point, numbers by value, binaries by bytes). With
``list_mode="json"`` lists and sets are JSON columns.

Key attributes are the main table's primary key. Their columns are never TIMESTAMPTZ: two
strings naming the same instant are distinct DynamoDB keys and must stay distinct.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..table_spec import ColumnKind
from .config import ColumnRole, ListMode, SchemaConfig
from .data_schema import DataColumn, DataSchemaSet, DataTable
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
from .schema_naming import (
    ColumnDraft,
    TableDraft,
    column_identity,
    key_columns,
    parent_key_columns,
    table_names,
    value_columns,
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


def _column_draft(
    node: PathObservation, path: tuple[str, ...], rows: int, kind: ColumnKind
) -> ColumnDraft:
    precision = scale = None
    if kind is ColumnKind.DECIMAL:
        scale = node.scale
        precision = max(1, node.int_digits + node.scale)
    nullable = (node.seen - node.nulls) < rows
    return ColumnDraft(path, kind, precision, scale, nullable)


def _walk(
    draft: TableDraft,
    node: PathObservation,
    path: tuple[str, ...],
    mode: ListMode,
    skip: frozenset[str],
    json_pins: frozenset[str] = frozenset(),
) -> None:
    shapes = node.shapes
    if shapes == 0 or draft.column_identity(path) in json_pins:
        # Only ever NULL or empty maps (JSON keeps what was there), or a JSON column before
        # (JSON never narrows).
        if node.seen:
            draft.columns.append(_column_draft(node, path, draft.rows, ColumnKind.JSON))
        return
    if shapes == SHAPE_MAP:
        for key in sorted(node.children):
            if not path and key in skip:
                continue
            _walk(draft, node.children[key], (*path, key), mode, skip, json_pins)
    elif shapes == SHAPE_SCALAR:
        draft.columns.append(_column_draft(node, path, draft.rows, _scalar_kind(node.kinds)))
    elif shapes == SHAPE_LIST and mode is ListMode.CHILD_TABLES:
        assert node.elem is not None
        draft.children.append((path, node.elem))
        length = _column_draft(node, path, draft.rows, ColumnKind.BIGINT)
        length.role = ColumnRole.LIST_LENGTH
        draft.columns.append(length)
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
    table_pins, column_pins, json_pins = _pins(previous)
    drafts = _drafts(observations, json_pins)
    names = table_names(drafts, config, table_pins)
    key_kinds = _key_kinds(drafts, observations)
    max_bytes = config.max_name_bytes
    tables: dict[str, DataTable] = {}
    for d in drafts:
        if d.parent is None:
            fixed = key_columns(config.key_attributes, key_kinds[d.entity], max_bytes)
        else:
            fixed = parent_key_columns(tables[names[d.parent.identity]])
        pins = column_pins.get(d.identity, {})
        name = names[d.identity]
        tables[name] = DataTable(
            name=name,
            entity=d.entity,
            list_path=d.list_path,
            parent=None if d.parent is None else names[d.parent.identity],
            columns=(*fixed, *value_columns(d, fixed, pins, max_bytes)),
            primary_key=tuple(c.name for c in fixed),
            rows_observed=d.rows,
        )
    return DataSchemaSet(
        config=config,
        tables=tuple(tables[n] for n in sorted(tables)),
        observations=observations,
    )


def _pins(
    previous: DataSchemaSet | None,
) -> tuple[dict[str, str], dict[str, dict[str, str]], set[str]]:
    """Table names and value (and list-length) column names of ``previous``, by table and
    column identity, and the identities of its JSON columns (JSON never narrows)."""
    table_pins: dict[str, str] = {}
    column_pins: dict[str, dict[str, str]] = {}
    json_pins: set[str] = set()
    if previous is not None:
        for t in previous.tables:
            table_pins[t.identity] = t.name
            pins = column_pins[t.identity] = {}
            for c in t.columns:
                if c.role in (ColumnRole.VALUE, ColumnRole.LIST_LENGTH):
                    identity = column_identity(t.entity, t.list_path, c.path, c.role)
                    pins[identity] = c.name
                    if c.kind is ColumnKind.JSON:
                        json_pins.add(identity)
    return table_pins, column_pins, json_pins


def _drafts(observations: SchemaObservations, json_pins: set[str]) -> list[TableDraft]:
    """Per entity its main table, then its child tables (one per list, at any depth); a path
    that was a JSON column in ``json_pins`` stays one."""
    pinned = frozenset(json_pins)
    config = observations.config
    keys = config.key_attributes
    drafts: list[TableDraft] = []
    for entity in sorted(observations.entities, key=entity_sort_key):
        root = observations.entities[entity]
        main = TableDraft(entity, (), None, root.seen)
        _walk(main, root, (), config.list_mode, frozenset(keys), pinned)
        drafts.append(main)
        pending = [main]
        while pending:
            parent = pending.pop()
            for path, elem in parent.children:
                child = TableDraft(entity, (*parent.list_path, path), parent, elem.seen)
                _walk(child, elem, (), config.list_mode, frozenset(), pinned)
                drafts.append(child)
                pending.append(child)
    return drafts


def _key_kinds(
    drafts: list[TableDraft], observations: SchemaObservations
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


_NAMED_ROLES = (ColumnRole.VALUE, ColumnRole.LIST_LENGTH)


def _same_name(a: DataColumn, b: DataColumn | None) -> bool:
    return b is not None and a.name == b.name


def _joined_kind(a: DataColumn, b: DataColumn | None) -> DataColumn:
    """``a``, as JSON when ``b`` is (JSON never narrows, whichever set had it)."""
    if b is not None and b.kind is ColumnKind.JSON and a.kind is not ColumnKind.JSON:
        return DataColumn(a.name, a.path, ColumnKind.JSON, None, None, a.nullable, a.role)
    return a


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
        cols_b = {(c.path, c.role): c for c in tb.columns if c.role in _NAMED_ROLES}
        agreed = tuple(
            _joined_kind(c, cols_b.get((c.path, c.role)))
            for c in ta.columns
            if c.role not in _NAMED_ROLES or _same_name(c, cols_b.get((c.path, c.role)))
        )
        previous_tables.append(
            DataTable(ta.name, ta.entity, ta.list_path, ta.parent, agreed, ta.primary_key)
        )
    merged = merge_observations(a.observations, b.observations)
    previous = DataSchemaSet(a.config, tuple(previous_tables), merged)
    return build_schema_set(merged, previous)
