"""DynamoDB data-schemas: what a table's items look like once flattened into warehouse tables.

A *data-schema* is the metadata of the data (column names and types), not a warehouse schema.
One data-schema set describes one DynamoDB table: one main table per *entity* (the whole table
by default, or one per entity type when an :class:`EntityRule` such as "prefix of ``sk`` before
``#``" is configured) plus, with ``list_mode="child_tables"``, one child table per list or set
attribute. Items are the boto3 low-level wire format (``{"attr": {"S": "..."}}``, numbers as
strings, ``B`` as bytes or as the wire's base64 text).

Inference happens in two steps so that segments can be inferred in parallel:

* :func:`observe` folds items into :class:`SchemaObservations`: per attribute path, the shapes
  (scalar / map / list) and scalar kinds seen, digit counts of numbers, and presence counts.
  :func:`merge_observations` is associative and commutative, so per-segment observations merge
  in any grouping and order to the same result.
* :func:`build_schema_set` turns observations into tables and columns (names, kinds,
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

Names are lowercase ``[a-z0-9_]`` (accents folded, other characters replaced by ``_``), at most
``max_name_bytes``. Two paths that normalize to the same name are disambiguated by an 8-hex-digit
SHA-1 suffix of the original path (a path already spelled like its name keeps the plain name);
overlong names are cut and suffixed the same way. Each column records its original path.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .table_spec import ColumnKind, ColumnSpec, TableSpec

__all__ = [
    "FORMAT_VERSION",
    "ColumnChange",
    "ColumnRole",
    "TIMESTAMP_PATTERN",
    "DataColumn",
    "DataSchemaSet",
    "DataTable",
    "EntityRule",
    "ListMode",
    "SchemaConfig",
    "SchemaDiff",
    "SchemaObservations",
    "build_schema_set",
    "carries_data",
    "diff",
    "entity_of",
    "evolve_schema_set",
    "infer_schema_set",
    "is_strict_timestamp",
    "merge_observations",
    "merge_schema_sets",
    "normalize_name",
    "number_digits",
    "observe",
    "to_table_specs",
]

FORMAT_VERSION = 1
_FORMAT = "etl_platform.dynamo_data_schema"

# Shapes and scalar kinds observed at a path, as bit sets (merge = bitwise or).
_SCALAR, _MAP, _LIST = 1, 2, 4
_K_INT, _K_DEC, _K_TS, _K_TEXT, _K_BOOL, _K_BIN = 1, 2, 4, 8, 16, 32
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

TIMESTAMP_PATTERN = re.compile(
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:0[0-9]|1[0-5]):[0-5][0-9])"
)
_NUM_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME_BAD = re.compile(r"[^a-z0-9_]+")
_NAME_ALNUM = re.compile(r"[a-z0-9]")
_SUFFIX_HEX = 8


class ListMode(StrEnum):
    CHILD_TABLES = "child_tables"
    JSON = "json"


class ColumnRole(StrEnum):
    KEY = "key"
    PARENT_KEY = "parent_key"
    INDEX = "index"
    VALUE = "value"


@dataclass(frozen=True)
class EntityRule:
    """Entity type of an item = the part of string attribute ``attribute`` before the first
    ``separator``. Items without the attribute, with a non-string value, without the separator
    or with an empty prefix belong to the default entity."""

    attribute: str
    separator: str

    def __post_init__(self) -> None:
        if not self.attribute or not self.separator:
            raise ValueError(f"entity rule needs an attribute and a separator, got {self!r}")


@dataclass(frozen=True)
class SchemaConfig:
    """How items of one DynamoDB table map to tables. ``table`` names the default entity unless
    ``default_entity`` is given."""

    table: str
    hash_key: str
    range_key: str | None = None
    entity_rule: EntityRule | None = None
    default_entity: str | None = None
    list_mode: ListMode = ListMode.CHILD_TABLES
    max_name_bytes: int = 127

    def __post_init__(self) -> None:
        if not self.table or not self.hash_key:
            raise ValueError(f"schema config needs a table and a hash key, got {self!r}")
        if self.range_key == self.hash_key:
            raise ValueError(f"range key {self.range_key!r} equals the hash key")
        object.__setattr__(self, "list_mode", ListMode(self.list_mode))
        if self.max_name_bytes < 24:
            raise ValueError(f"max_name_bytes must be >= 24, got {self.max_name_bytes}")

    @property
    def key_attributes(self) -> tuple[str, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    def to_dict(self) -> dict[str, Any]:
        rule = self.entity_rule
        return {
            "table": self.table,
            "hash_key": self.hash_key,
            "range_key": self.range_key,
            "entity_rule": None
            if rule is None
            else {"attribute": rule.attribute, "separator": rule.separator},
            "default_entity": self.default_entity,
            "list_mode": self.list_mode.value,
            "max_name_bytes": self.max_name_bytes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchemaConfig:
        rule = data.get("entity_rule")
        return cls(
            table=data["table"],
            hash_key=data["hash_key"],
            range_key=data.get("range_key"),
            entity_rule=None if rule is None else EntityRule(rule["attribute"], rule["separator"]),
            default_entity=data.get("default_entity"),
            list_mode=ListMode(data.get("list_mode", ListMode.CHILD_TABLES)),
            max_name_bytes=int(data.get("max_name_bytes", 127)),
        )


# --------------------------------------------------------------------------------------------
# Scalar classification


def is_strict_timestamp(value: str) -> bool:
    """True for ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)``, a real calendar date, year
    >= 1, at most microseconds (what ``timestamptz`` stores without rounding)."""
    if TIMESTAMP_PATTERN.fullmatch(value) is None:
        return False
    if value[8:10] < "29":
        return True
    try:
        date(int(value[:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return False
    return True


def number_digits(value: str) -> tuple[int, int, bool]:
    """``(integer digits, scale, fits int64)`` of a DynamoDB number string, exactly.

    Integer digits exclude leading zeros; scale counts the fractional digits of the positional
    form (``1E-130`` has scale 130, ``1.50`` scale 2). Raises ``ValueError`` for anything that
    is not a finite decimal number."""
    body = value[1:] if value[:1] in "-+" else value
    ip, dot, fp = body.partition(".")
    if ip.isascii() and ip.isdigit() and (not dot or (fp.isascii() and fp.isdigit())):
        digits = len(ip.lstrip("0"))
        if fp:
            return digits, len(fp), False
        return digits, 0, digits < 19 or _INT64_MIN <= int(value) <= _INT64_MAX
    if not isinstance(value, str) or _NUM_RE.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a DynamoDB number")
    d = Decimal(value)
    _, digs, exp = d.as_tuple()
    assert isinstance(exp, int)
    n = len(digs)
    if exp >= 0:
        ndig = 0 if d.is_zero() else n + exp
        return ndig, 0, _INT64_MIN <= int(d) <= _INT64_MAX
    scale = -exp
    int_digits = max(0, n - scale)
    if d.is_zero():
        int_digits = 0
    integral = d == d.to_integral_value()
    return int_digits, scale, integral and _INT64_MIN <= int(d) <= _INT64_MAX


def _number_kind(value: str) -> tuple[int, int, int]:
    int_digits, scale, is_int = number_digits(value)
    return (_K_INT if is_int else _K_DEC), int_digits, scale


# --------------------------------------------------------------------------------------------
# Observations


class _Node:
    """What was seen at one attribute path (or list element position)."""

    __slots__ = ("children", "elem", "int_digits", "kinds", "nulls", "scale", "seen", "shapes")

    def __init__(self) -> None:
        self.seen = 0
        self.nulls = 0
        self.shapes = 0
        self.kinds = 0
        self.int_digits = 0
        self.scale = 0
        self.children: dict[str, _Node] = {}
        self.elem: _Node | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seen": self.seen,
            "nulls": self.nulls,
            "shapes": self.shapes,
            "kinds": self.kinds,
            "int_digits": self.int_digits,
            "scale": self.scale,
        }
        if self.children:
            out["children"] = {k: self.children[k].to_dict() for k in sorted(self.children)}
        if self.elem is not None:
            out["elem"] = self.elem.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _Node:
        node = cls()
        node.seen = int(data["seen"])
        node.nulls = int(data["nulls"])
        node.shapes = int(data["shapes"])
        node.kinds = int(data["kinds"])
        node.int_digits = int(data["int_digits"])
        node.scale = int(data["scale"])
        node.children = {k: cls.from_dict(v) for k, v in data.get("children", {}).items()}
        elem = data.get("elem")
        node.elem = None if elem is None else cls.from_dict(elem)
        return node


def _merge_nodes(a: _Node | None, b: _Node | None) -> _Node | None:
    if a is None and b is None:
        return None
    out = _Node()
    for src in (a, b):
        if src is None:
            continue
        out.seen += src.seen
        out.nulls += src.nulls
        out.shapes |= src.shapes
        out.kinds |= src.kinds
        out.int_digits = max(out.int_digits, src.int_digits)
        out.scale = max(out.scale, src.scale)
    a_children = a.children if a is not None else {}
    b_children = b.children if b is not None else {}
    for key in sorted(a_children.keys() | b_children.keys()):
        merged = _merge_nodes(a_children.get(key), b_children.get(key))
        assert merged is not None
        out.children[key] = merged
    out.elem = _merge_nodes(a.elem if a else None, b.elem if b else None)
    return out


class _Observer:
    def __init__(self) -> None:
        self.dispatch = {
            "S": self._s,
            "N": self._n,
            "BOOL": self._bool,
            "B": self._b,
            "NULL": self._null,
            "M": self._m,
            "L": self._l,
            "SS": self._ss,
            "NS": self._ns,
            "BS": self._bs,
        }

    def value(self, node: _Node, av: Any, path: tuple[str, ...]) -> None:
        if type(av) is not dict or len(av) != 1:
            raise ValueError(
                f"attribute {_show_path(path)}: expected a one-key DynamoDB attribute value "
                f"like {{'S': ...}}, got {_clip(av)}"
            )
        for tag, v in av.items():
            handler = self.dispatch.get(tag)
            if handler is None:
                raise ValueError(f"attribute {_show_path(path)}: unknown DynamoDB type {tag!r}")
            node.seen += 1
            handler(node, v, path)

    def _s(self, node: _Node, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, str, "S", path)
        node.shapes |= _SCALAR
        node.kinds |= _K_TS if is_strict_timestamp(v) else _K_TEXT

    def _n(self, node: _Node, v: Any, path: tuple[str, ...]) -> None:
        node.shapes |= _SCALAR
        try:
            kind, int_digits, scale = _number_kind(v)
        except (ValueError, TypeError):
            raise ValueError(f"attribute {_show_path(path)}: {_clip(v)} is not a number") from None
        node.kinds |= kind
        if int_digits > node.int_digits:
            node.int_digits = int_digits
        if scale > node.scale:
            node.scale = scale

    def _bool(self, node: _Node, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, bool, "BOOL", path)
        node.shapes |= _SCALAR
        node.kinds |= _K_BOOL

    def _b(self, node: _Node, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, (bytes, bytearray, str), "B", path)
        node.shapes |= _SCALAR
        node.kinds |= _K_BIN

    def _null(self, node: _Node, v: Any, path: tuple[str, ...]) -> None:
        node.nulls += 1

    def _m(self, node: _Node, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, dict, "M", path)
        if not _map_has_data(v):
            node.nulls += 1
            return
        node.shapes |= _MAP
        children = node.children
        for key, cav in v.items():
            child = children.get(key)
            if child is None:
                child = children[key] = _Node()
            self.value(child, cav, (*path, key))

    def _list_elem(self, node: _Node) -> _Node:
        node.shapes |= _LIST
        if node.elem is None:
            node.elem = _Node()
        return node.elem

    def _l(self, node: _Node, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, list, "L", path)
        elem = self._list_elem(node)
        for e in v:
            self.value(elem, e, (*path, "[]"))

    def _ss(self, node: _Node, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, (list, tuple, set, frozenset), "SS", path)
        elem = self._list_elem(node)
        for e in v:
            elem.seen += 1
            self._s(elem, e, (*path, "[]"))

    def _ns(self, node: _Node, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, (list, tuple, set, frozenset), "NS", path)
        elem = self._list_elem(node)
        for e in v:
            elem.seen += 1
            self._n(elem, e, (*path, "[]"))

    def _bs(self, node: _Node, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, (list, tuple, set, frozenset), "BS", path)
        elem = self._list_elem(node)
        for e in v:
            elem.seen += 1
            self._b(elem, e, (*path, "[]"))


def _expect(value: Any, types: type | tuple[type, ...], tag: str, path: tuple[str, ...]) -> None:
    if not isinstance(value, types):
        raise ValueError(f"attribute {_show_path(path)}: {tag} value {_clip(value)} is malformed")


def _show_path(path: Iterable[str]) -> str:
    return ".".join(repr(p) if p != "[]" else "[]" for p in path) or "<item>"


def _clip(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def carries_data(av: Any) -> bool:
    """False for NULL and for maps holding only such values (empty maps included): they
    flatten to nothing, so they count as NULL."""
    if type(av) is not dict or len(av) != 1:
        raise ValueError(f"expected a one-key DynamoDB attribute value, got {_clip(av)}")
    if "NULL" in av:
        return False
    m = av.get("M")
    if m is None:
        return True
    return any(map(carries_data, m.values()))


def _map_has_data(m: dict) -> bool:
    """Lenient :func:`carries_data` of a map's content: malformed values count as data (the
    observer then reports them with their path)."""
    for av in m.values():
        if type(av) is not dict or len(av) != 1:
            return True
        if "NULL" in av:
            continue
        inner = av.get("M")
        if type(inner) is not dict or _map_has_data(inner):
            return True
    return False


def entity_of(item: Mapping[str, Any], rule: EntityRule | None) -> str | None:
    """The entity type of a wire-format item under ``rule``; None = the default entity."""
    if rule is None:
        return None
    av = item.get(rule.attribute)
    if av is None:
        return None
    value = av.get("S")
    if value is None:
        return None
    prefix, sep, _ = value.partition(rule.separator)
    return prefix if sep and prefix else None


@dataclass(frozen=True, eq=False)
class SchemaObservations:
    """Mergeable inference state of one DynamoDB table: per entity, the tree of what was seen."""

    config: SchemaConfig
    entities: Mapping[str | None, _Node] = field(default_factory=dict)

    @property
    def item_count(self) -> int:
        return sum(node.seen for node in self.entities.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "entities": [
                {"entity": name, "items": self.entities[name].to_dict()}
                for name in sorted(self.entities, key=_entity_sort_key)
            ]
        }

    @classmethod
    def from_dict(cls, config: SchemaConfig, data: Mapping[str, Any]) -> SchemaObservations:
        return cls(
            config,
            {e["entity"]: _Node.from_dict(e["items"]) for e in data.get("entities", [])},
        )

    def steady_tag(self, entity: str | None, path: Sequence[str]) -> str | None:
        """The one wire type tag (``S``, ``N``, ``BOOL``, ``B`` or ``M``) the attribute at
        ``path`` had, non-null, in every observed item of ``entity`` (every item whose
        enclosing maps were there); None when it varied, was missing or NULL somewhere. The
        transform compiles such attributes to a faster path (others still work)."""
        node = self.entities.get(entity)
        if node is None:
            return None
        present = node.seen
        for depth, part in enumerate(path):
            if depth and node.shapes != _MAP:
                return None
            child = node.children.get(part)
            if child is None or child.seen - child.nulls != present or present == 0:
                return None
            node, present = child, child.seen - child.nulls
        if node.shapes == _MAP:
            return "M"
        if node.shapes != _SCALAR:
            return None
        kinds = node.kinds
        if not kinds & ~(_K_INT | _K_DEC):
            return "N"
        if not kinds & ~(_K_TS | _K_TEXT):
            return "S"
        return {_K_BOOL: "BOOL", _K_BIN: "B"}.get(kinds)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchemaObservations):
            return NotImplemented
        return self.config == other.config and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(_canonical(self.to_dict()))


def _entity_sort_key(name: str | None) -> tuple[int, str]:
    return (0, "") if name is None else (1, name)


def observe(items: Iterable[Mapping[str, Any]], config: SchemaConfig) -> SchemaObservations:
    """Fold wire-format items into observations (one pass, memory bounded by distinct paths)."""
    observer = _Observer()
    rule = config.entity_rule
    roots: dict[str | None, _Node] = {}
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError(f"expected a DynamoDB item (a mapping), got {_clip(item)}")
        entity = entity_of(item, rule)
        root = roots.get(entity)
        if root is None:
            root = roots[entity] = _Node()
        root.seen += 1
        root.shapes |= _MAP
        children = root.children
        for key, av in item.items():
            child = children.get(key)
            if child is None:
                child = children[key] = _Node()
            observer.value(child, av, (key,))
    return SchemaObservations(config, roots)


def merge_observations(a: SchemaObservations, b: SchemaObservations) -> SchemaObservations:
    """Union of two observations of the same table (associative and commutative)."""
    if a.config != b.config:
        raise ValueError(
            f"cannot merge observations of different configs: {a.config} vs {b.config}"
        )
    entities: dict[str | None, _Node] = {}
    for name in sorted(a.entities.keys() | b.entities.keys(), key=_entity_sort_key):
        merged = _merge_nodes(a.entities.get(name), b.entities.get(name))
        assert merged is not None
        entities[name] = merged
    return SchemaObservations(a.config, entities)


# --------------------------------------------------------------------------------------------
# Data-schema


@dataclass(frozen=True)
class DataColumn:
    """One column: ``path`` is the attribute path inside the table's row source (the item for a
    main table, the list element for a child table; ``()`` = the element itself). Key, parent
    key and index columns have ``role`` other than ``value``; a key or parent key column's path
    is the key attribute's name, an index column's path (and a parent index's) is ``()``."""

    name: str
    path: tuple[str, ...]
    kind: ColumnKind
    precision: int | None = None
    scale: int | None = None
    nullable: bool = True
    role: ColumnRole = ColumnRole.VALUE

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": list(self.path),
            "kind": self.kind.value,
            "precision": self.precision,
            "scale": self.scale,
            "nullable": self.nullable,
            "role": self.role.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataColumn:
        return cls(
            name=data["name"],
            path=tuple(data["path"]),
            kind=ColumnKind(data["kind"]),
            precision=data.get("precision"),
            scale=data.get("scale"),
            nullable=bool(data.get("nullable", True)),
            role=ColumnRole(data.get("role", ColumnRole.VALUE)),
        )

    @property
    def type_label(self) -> str:
        if self.kind is ColumnKind.DECIMAL:
            return f"decimal({self.precision},{self.scale})"
        return self.kind.value


@dataclass(frozen=True)
class DataTable:
    """One table of an entity. ``list_path`` locates its rows: ``()`` for the main table (one
    row per item); for a child table, one attribute path per list nesting level (a path inside
    the enclosing element; ``()`` when the element is itself a list)."""

    name: str
    entity: str | None
    list_path: tuple[tuple[str, ...], ...]
    parent: str | None
    columns: tuple[DataColumn, ...]
    primary_key: tuple[str, ...]
    rows_observed: int = 0

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def identity(self) -> str:
        return _canonical([self.entity, [list(p) for p in self.list_path]])

    def column(self, name: str) -> DataColumn:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entity": self.entity,
            "list_path": [list(p) for p in self.list_path],
            "parent": self.parent,
            "primary_key": list(self.primary_key),
            "rows_observed": self.rows_observed,
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataTable:
        return cls(
            name=data["name"],
            entity=data.get("entity"),
            list_path=tuple(tuple(p) for p in data.get("list_path", [])),
            parent=data.get("parent"),
            columns=tuple(DataColumn.from_dict(c) for c in data["columns"]),
            primary_key=tuple(data["primary_key"]),
            rows_observed=int(data.get("rows_observed", 0)),
        )

    def to_table_spec(self) -> TableSpec:
        key = set(self.primary_key)
        return TableSpec(
            name=self.name,
            columns=tuple(
                ColumnSpec(
                    name=c.name,
                    kind=c.kind,
                    precision=c.precision,
                    scale=c.scale,
                    nullable=c.name not in key,
                )
                for c in self.columns
            ),
            primary_key=self.primary_key,
        )


@dataclass(frozen=True)
class DataSchemaSet:
    """The data-schemas of one DynamoDB table: its tables (sorted by name) and the observations
    they were built from (kept so the set can evolve without re-scanning)."""

    config: SchemaConfig
    tables: tuple[DataTable, ...]
    observations: SchemaObservations

    @property
    def fingerprint(self) -> str:
        """Stable hash of the config and the tables' layout (names, paths, kinds, precision,
        keys; not counts or observed nullability): equal fingerprints, same warehouse tables."""
        payload = {
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "tables": [_layout(t) for t in self.tables],
        }
        return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:16]

    def table(self, name: str) -> DataTable:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"data-schema set of {self.config.table!r} has no table {name!r}")

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    def main_table(self, entity: str | None) -> DataTable | None:
        for t in self.tables:
            if t.entity == entity and not t.list_path:
                return t
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "config": self.config.to_dict(),
            "tables": [t.to_dict() for t in self.tables],
            "observations": self.observations.to_dict(),
        }

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys and tables): same set, same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSchemaSet:
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a DynamoDB data-schema set (format {data.get('format')!r})")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"data-schema set format version {version!r} is not {FORMAT_VERSION}: re-infer it"
            )
        config = SchemaConfig.from_dict(data["config"])
        out = cls(
            config=config,
            tables=tuple(
                sorted((DataTable.from_dict(t) for t in data["tables"]), key=lambda t: t.name)
            ),
            observations=SchemaObservations.from_dict(config, data["observations"]),
        )
        stored = data.get("fingerprint")
        if stored is not None and stored != out.fingerprint:
            raise ValueError(
                f"data-schema set of {config.table!r}: fingerprint {stored!r} does not match its "
                f"content ({out.fingerprint!r}); the document was altered or is corrupt"
            )
        return out

    @classmethod
    def from_json(cls, text: str | bytes) -> DataSchemaSet:
        return cls.from_dict(json.loads(text))

    def to_table_specs(self) -> tuple[TableSpec, ...]:
        return tuple(t.to_table_spec() for t in self.tables)


def to_table_specs(schema_set: DataSchemaSet) -> tuple[TableSpec, ...]:
    """The warehouse tables of a data-schema set (only key columns are NOT NULL: a cached
    data-schema must accept tomorrow's items that lack an attribute)."""
    return schema_set.to_table_specs()


def _layout(table: DataTable) -> dict[str, Any]:
    data = table.to_dict()
    data.pop("rows_observed")
    for column in data["columns"]:
        column.pop("nullable")
    return data


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Names


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    name = _NAME_BAD.sub("_", folded)
    if not _NAME_ALNUM.search(name):
        # Nothing readable survives (CJK, emoji, punctuation): a stable name from the text,
        # so `名前` and `😀` do not both become `_` and depend on collision suffixes.
        return "a_" + _short_hash(text)
    return name


def normalize_name(path: Iterable[str]) -> str:
    """Lowercase ``[a-z0-9_]`` name of an attribute path, components joined with ``__``
    (before length limits and disambiguation)."""
    return "__".join(_fold(part) for part in path) or "_"


def _short_hash(identity: str, length: int = _SUFFIX_HEX) -> str:
    return hashlib.sha1(identity.encode()).hexdigest()[:length]


def _cut(name: str, max_bytes: int) -> str:
    return name.encode()[:max_bytes].decode(errors="ignore")


def _with_suffix(base: str, identity: str, max_bytes: int, length: int = _SUFFIX_HEX) -> str:
    suffix = "_" + _short_hash(identity, length)
    return _cut(base, max_bytes - len(suffix)) + suffix


@dataclass(frozen=True)
class _NameRequest:
    identity: str
    base: str
    lossless: bool
    rank: tuple[int, str]


def _assign_names(
    requests: list[_NameRequest],
    taken: set[str],
    pins: Mapping[str, str],
    max_bytes: int,
) -> dict[str, str]:
    """Deterministic unique names: pinned names first, then per base name the lossless request
    (if any) keeps the base and the others get a hash suffix."""
    out: dict[str, str] = {}
    taken = set(taken)
    for req in sorted(requests, key=lambda r: r.identity):
        pinned = pins.get(req.identity)
        if pinned is not None and pinned not in taken:
            out[req.identity] = pinned
            taken.add(pinned)
    groups: dict[str, list[_NameRequest]] = {}
    for req in requests:
        if req.identity in out:
            continue
        base = req.base
        lossless = req.lossless
        if len(base.encode()) > max_bytes:
            base = _with_suffix(base, req.identity, max_bytes)
            lossless = True
        groups.setdefault(base, []).append(_NameRequest(req.identity, base, lossless, req.rank))
    for base in sorted(groups):
        members = sorted(groups[base], key=lambda r: r.rank)
        winner: _NameRequest | None = None
        if base not in taken:
            if len(members) == 1:
                winner = members[0]
            else:
                winner = next((m for m in members if m.lossless), None)
        for member in members:
            if member is winner:
                name = base
            else:
                length = _SUFFIX_HEX
                name = _with_suffix(base, member.identity, max_bytes, length)
                while name in taken:
                    length += 4
                    name = _with_suffix(base, member.identity, max_bytes, length)
            out[member.identity] = name
            taken.add(name)
    return out


# --------------------------------------------------------------------------------------------
# Building tables from observations


def _scalar_kind(kinds: int) -> ColumnKind:
    if kinds & (_K_BOOL | _K_BIN):
        if kinds == _K_BOOL:
            return ColumnKind.BOOLEAN
        if kinds == _K_BIN:
            return ColumnKind.BINARY
        return ColumnKind.JSON
    numeric = kinds & (_K_INT | _K_DEC)
    stringy = kinds & (_K_TS | _K_TEXT)
    if numeric and stringy:
        return ColumnKind.TEXT
    if stringy:
        return ColumnKind.TEXT if kinds & _K_TEXT else ColumnKind.TIMESTAMPTZ
    return ColumnKind.DECIMAL if kinds & _K_DEC else ColumnKind.BIGINT


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
    children: list[tuple[tuple[str, ...], _Node]] = field(default_factory=list)

    @property
    def identity(self) -> str:
        return _canonical([self.entity, [list(p) for p in self.list_path]])

    def column_identity(self, path: tuple[str, ...]) -> str:
        return _canonical([self.entity, [list(p) for p in self.list_path], list(path)])


def _column_draft(node: _Node, path: tuple[str, ...], rows: int, kind: ColumnKind) -> _ColumnDraft:
    precision = scale = None
    if kind is ColumnKind.DECIMAL:
        scale = node.scale
        precision = max(1, node.int_digits + node.scale)
    nullable = (node.seen - node.nulls) < rows
    return _ColumnDraft(path, kind, precision, scale, nullable)


def _walk(
    draft: _TableDraft, node: _Node, path: tuple[str, ...], mode: ListMode, skip: frozenset[str]
) -> None:
    shapes = node.shapes
    if shapes == 0:
        return
    if shapes == _MAP:
        for key in sorted(node.children):
            if not path and key in skip:
                continue
            _walk(draft, node.children[key], (*path, key), mode, skip)
    elif shapes == _SCALAR:
        draft.columns.append(_column_draft(node, path, draft.rows, _scalar_kind(node.kinds)))
    elif shapes == _LIST and mode is ListMode.CHILD_TABLES:
        assert node.elem is not None
        draft.children.append((path, node.elem))
    else:
        draft.columns.append(_column_draft(node, path, draft.rows, ColumnKind.JSON))


def _key_kind(node: _Node | None, attribute: str, entity: str | None, rows: int) -> ColumnKind:
    if node is None or node.shapes != _SCALAR or node.nulls or node.seen != rows:
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
    table_pins: dict[str, str] = {}
    column_pins: dict[str, dict[str, str]] = {}
    if previous is not None:
        for t in previous.tables:
            table_pins[t.identity] = t.name
            column_pins[t.identity] = {
                _canonical([t.entity, [list(p) for p in t.list_path], list(c.path)]): c.name
                for c in t.columns
                if c.role is ColumnRole.VALUE
            }
    keys = config.key_attributes
    drafts: list[_TableDraft] = []
    for entity in sorted(observations.entities, key=_entity_sort_key):
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

    max_bytes = config.max_name_bytes
    mains = []
    for d in drafts:
        if d.parent is None:
            base, lossless = _entity_base(config, d.entity)
            mains.append(_NameRequest(d.identity, base, lossless, (0, d.identity)))
    table_names = _assign_names(mains, set(), table_pins, max_bytes)
    # Children are named level by level from their parent's final name, after every main table.
    depth = 1
    while True:
        level = []
        for d in drafts:
            if len(d.list_path) != depth:
                continue
            assert d.parent is not None
            last = d.list_path[-1]
            base = f"{table_names[d.parent.identity]}__{normalize_name(last) if last else 'value'}"
            level.append(_NameRequest(d.identity, base, False, (depth, d.identity)))
        if not level:
            break
        table_names.update(_assign_names(level, set(table_names.values()), table_pins, max_bytes))
        depth += 1

    key_kinds = []
    for d in drafts:
        if d.parent is None:
            root = observations.entities[d.entity]
            key_kinds.append(
                tuple(_key_kind(root.children.get(k), k, d.entity, root.seen) for k in keys)
            )

    tables: dict[str, DataTable] = {}
    main_index = 0
    for d in drafts:
        if d.parent is None:
            kinds = key_kinds[main_index]
            main_index += 1
            key_requests = [
                _NameRequest(f"key:{k}", normalize_name([k]), normalize_name([k]) == k, (0, k))
                for k in keys
            ]
            key_names = _assign_names(key_requests, set(), {}, max_bytes)
            fixed = [
                DataColumn(key_names[f"key:{k}"], (k,), kind, nullable=False, role=ColumnRole.KEY)
                for k, kind in zip(keys, kinds, strict=True)
            ]
        else:
            parent_table = tables[table_names[d.parent.identity]]
            fixed = [
                DataColumn(
                    c.name, c.path, c.kind, c.precision, c.scale, False, ColumnRole.PARENT_KEY
                )
                for c in parent_table.columns
                if c.name in parent_table.primary_key
            ]
            idx = _index_name(c.name for c in fixed)
            fixed.append(
                DataColumn(idx, (), ColumnKind.BIGINT, nullable=False, role=ColumnRole.INDEX)
            )
        reserved = {c.name for c in fixed}
        requests = []
        for col in d.columns:
            if col.path:
                base = normalize_name(col.path)
                lossless = base == "__".join(col.path)
            else:
                base, lossless = "value", True
            requests.append(
                _NameRequest(
                    d.column_identity(col.path),
                    base,
                    lossless,
                    (len(col.path), _canonical(list(col.path))),
                )
            )
        names = _assign_names(requests, reserved, column_pins.get(d.identity, {}), max_bytes)
        value_columns = sorted(
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
        name = table_names[d.identity]
        tables[name] = DataTable(
            name=name,
            entity=d.entity,
            list_path=d.list_path,
            parent=None if d.parent is None else table_names[d.parent.identity],
            columns=(*fixed, *value_columns),
            primary_key=tuple(c.name for c in fixed),
            rows_observed=d.rows,
        )
    return DataSchemaSet(
        config=config,
        tables=tuple(tables[n] for n in sorted(tables)),
        observations=observations,
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


# --------------------------------------------------------------------------------------------
# Diff


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
