"""How the items of one DynamoDB table map to warehouse tables: key attributes, entity rule,
list mode and the name length limit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ListMode(StrEnum):
    CHILD_TABLES = "child_tables"
    JSON = "json"


class ColumnRole(StrEnum):
    KEY = "key"
    PARENT_KEY = "parent_key"
    INDEX = "index"
    VALUE = "value"
    #: a parent's column holding the element count of a list stored as a child table
    LIST_LENGTH = "list_length"


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
