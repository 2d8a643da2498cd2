"""Data-schemas: the tables and columns one DynamoDB table flattens into, and their JSON form.

A *data-schema* is the metadata of the data (column names and types), not a warehouse schema.
One :class:`DataSchemaSet` describes one DynamoDB table: one main table per *entity* plus, with
``list_mode="child_tables"``, one child table per list or set attribute. The set is cached as
deterministic JSON with a fingerprint of its layout, and keeps the observations it was built
from so it can evolve without re-scanning.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..table_spec import ColumnKind, ColumnSpec, TableSpec
from .config import ColumnRole, SchemaConfig
from .naming import canonical_json
from .observe import SchemaObservations

FORMAT_VERSION = 1
_FORMAT = "etl_platform.dynamo_data_schema"


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
        return canonical_json([self.entity, [list(p) for p in self.list_path]])

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
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]

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
