"""Observations: what a table's items look like, folded into a mergeable tree.

:func:`observe` folds wire-format items into :class:`SchemaObservations`: per entity and
attribute path, the shapes (scalar / map / list) and scalar kinds seen, digit counts of numbers,
and presence counts. :func:`merge_observations` is associative and commutative, so per-segment
observations merge in any grouping and order to the same result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import SchemaConfig
from .naming import canonical_json
from .wire_values import clip, entity_of, is_strict_timestamp, number_digits

# Shapes and scalar kinds observed at a path, as bit sets (merge = bitwise or).
SHAPE_SCALAR, SHAPE_MAP, SHAPE_LIST = 1, 2, 4
KIND_INT, KIND_DECIMAL, KIND_TIMESTAMP, KIND_TEXT, KIND_BOOL, KIND_BINARY = 1, 2, 4, 8, 16, 32


def _number_kind(value: str) -> tuple[int, int, int]:
    int_digits, scale, is_int = number_digits(value)
    return (KIND_INT if is_int else KIND_DECIMAL), int_digits, scale


class PathObservation:
    """What was seen at one attribute path (or list element position)."""

    __slots__ = ("children", "elem", "int_digits", "kinds", "nulls", "scale", "seen", "shapes")

    def __init__(self) -> None:
        self.seen = 0
        self.nulls = 0
        self.shapes = 0
        self.kinds = 0
        self.int_digits = 0
        self.scale = 0
        self.children: dict[str, PathObservation] = {}
        self.elem: PathObservation | None = None

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
    def from_dict(cls, data: Mapping[str, Any]) -> PathObservation:
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


def _merge_paths(a: PathObservation | None, b: PathObservation | None) -> PathObservation | None:
    if a is None and b is None:
        return None
    out = PathObservation()
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
        merged = _merge_paths(a_children.get(key), b_children.get(key))
        assert merged is not None
        out.children[key] = merged
    out.elem = _merge_paths(a.elem if a else None, b.elem if b else None)
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

    def value(self, node: PathObservation, av: Any, path: tuple[str, ...]) -> None:
        if type(av) is not dict or len(av) != 1:
            raise ValueError(
                f"attribute {_show_path(path)}: expected a one-key DynamoDB attribute value "
                f"like {{'S': ...}}, got {clip(av)}"
            )
        for tag, v in av.items():
            handler = self.dispatch.get(tag)
            if handler is None:
                raise ValueError(f"attribute {_show_path(path)}: unknown DynamoDB type {tag!r}")
            node.seen += 1
            handler(node, v, path)

    def _s(self, node: PathObservation, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, str, "S", path)
        node.shapes |= SHAPE_SCALAR
        node.kinds |= KIND_TIMESTAMP if is_strict_timestamp(v) else KIND_TEXT

    def _n(self, node: PathObservation, v: Any, path: tuple[str, ...]) -> None:
        node.shapes |= SHAPE_SCALAR
        try:
            kind, int_digits, scale = _number_kind(v)
        except (ValueError, TypeError):
            raise ValueError(f"attribute {_show_path(path)}: {clip(v)} is not a number") from None
        node.kinds |= kind
        if int_digits > node.int_digits:
            node.int_digits = int_digits
        if scale > node.scale:
            node.scale = scale

    def _bool(self, node: PathObservation, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, bool, "BOOL", path)
        node.shapes |= SHAPE_SCALAR
        node.kinds |= KIND_BOOL

    def _b(self, node: PathObservation, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, (bytes, bytearray, str), "B", path)
        node.shapes |= SHAPE_SCALAR
        node.kinds |= KIND_BINARY

    def _null(self, node: PathObservation, v: Any, path: tuple[str, ...]) -> None:
        node.nulls += 1

    def _m(self, node: PathObservation, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, dict, "M", path)
        if not v:  # an empty map counts as NULL (a path holding only those gets JSON)
            node.nulls += 1
            return
        node.shapes |= SHAPE_MAP
        children = node.children
        for key, cav in v.items():
            child = children.get(key)
            if child is None:
                child = children[key] = PathObservation()
            self.value(child, cav, (*path, key))

    def _list_elem(self, node: PathObservation) -> PathObservation:
        node.shapes |= SHAPE_LIST
        if node.elem is None:
            node.elem = PathObservation()
        return node.elem

    def _l(self, node: PathObservation, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, list, "L", path)
        elem = self._list_elem(node)
        for e in v:
            self.value(elem, e, (*path, "[]"))

    def _ss(self, node: PathObservation, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, (list, tuple, set, frozenset), "SS", path)
        elem = self._list_elem(node)
        for e in v:
            elem.seen += 1
            self._s(elem, e, (*path, "[]"))

    def _ns(self, node: PathObservation, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, (list, tuple, set, frozenset), "NS", path)
        elem = self._list_elem(node)
        for e in v:
            elem.seen += 1
            self._n(elem, e, (*path, "[]"))

    def _bs(self, node: PathObservation, v: Any, path: tuple[str, ...]) -> None:
        _expect(v, (list, tuple, set, frozenset), "BS", path)
        elem = self._list_elem(node)
        for e in v:
            elem.seen += 1
            self._b(elem, e, (*path, "[]"))


def _expect(value: Any, types: type | tuple[type, ...], tag: str, path: tuple[str, ...]) -> None:
    if not isinstance(value, types):
        raise ValueError(f"attribute {_show_path(path)}: {tag} value {clip(value)} is malformed")


def _show_path(path: Iterable[str]) -> str:
    return ".".join(repr(p) if p != "[]" else "[]" for p in path) or "<item>"


@dataclass(frozen=True, eq=False)
class SchemaObservations:
    """Mergeable inference state of one DynamoDB table: per entity, the tree of what was seen."""

    config: SchemaConfig
    entities: Mapping[str | None, PathObservation] = field(default_factory=dict)

    @property
    def item_count(self) -> int:
        return sum(node.seen for node in self.entities.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "entities": [
                {"entity": name, "items": self.entities[name].to_dict()}
                for name in sorted(self.entities, key=entity_sort_key)
            ]
        }

    @classmethod
    def from_dict(cls, config: SchemaConfig, data: Mapping[str, Any]) -> SchemaObservations:
        return cls(
            config,
            {e["entity"]: PathObservation.from_dict(e["items"]) for e in data.get("entities", [])},
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
            if depth and node.shapes != SHAPE_MAP:
                return None
            child = node.children.get(part)
            if child is None or child.seen - child.nulls != present or present == 0:
                return None
            node, present = child, child.seen - child.nulls
        if node.shapes == SHAPE_MAP:
            return "M"
        if node.shapes != SHAPE_SCALAR:
            return None
        kinds = node.kinds
        if not kinds & ~(KIND_INT | KIND_DECIMAL):
            return "N"
        if not kinds & ~(KIND_TIMESTAMP | KIND_TEXT):
            return "S"
        return {KIND_BOOL: "BOOL", KIND_BINARY: "B"}.get(kinds)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchemaObservations):
            return NotImplemented
        return self.config == other.config and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(canonical_json(self.to_dict()))


def entity_sort_key(name: str | None) -> tuple[int, str]:
    return (0, "") if name is None else (1, name)


def observe(items: Iterable[Mapping[str, Any]], config: SchemaConfig) -> SchemaObservations:
    """Fold wire-format items into observations (one pass, memory bounded by distinct paths)."""
    observer = _Observer()
    rule = config.entity_rule
    roots: dict[str | None, PathObservation] = {}
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError(f"expected a DynamoDB item (a mapping), got {clip(item)}")
        entity = entity_of(item, rule)
        root = roots.get(entity)
        if root is None:
            root = roots[entity] = PathObservation()
        root.seen += 1
        root.shapes |= SHAPE_MAP
        children = root.children
        for key, av in item.items():
            child = children.get(key)
            if child is None:
                child = children[key] = PathObservation()
            observer.value(child, av, (key,))
    return SchemaObservations(config, roots)


def merge_observations(a: SchemaObservations, b: SchemaObservations) -> SchemaObservations:
    """Union of two observations of the same table (associative and commutative)."""
    if a.config != b.config:
        raise ValueError(
            f"cannot merge observations of different configs: {a.config} vs {b.config}"
        )
    entities: dict[str | None, PathObservation] = {}
    for name in sorted(a.entities.keys() | b.entities.keys(), key=entity_sort_key):
        merged = _merge_paths(a.entities.get(name), b.entities.get(name))
        assert merged is not None
        entities[name] = merged
    return SchemaObservations(a.config, entities)
