"""Items that do not fit a data-schema set: the policy for them and how they are reported."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class UnfitPolicy(StrEnum):
    FAIL = "fail"
    EVOLVE = "evolve"


class Misfit(Exception):
    """The value at ``path`` does not fit the data-schema (raised inside the transform, which
    reports it as an :class:`UnfitItem`)."""

    def __init__(self, reason: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


@dataclass(frozen=True)
class UnfitItem:
    """An item the data-schema cannot hold as it is: its key, the first offending attribute
    path (``"[3]"`` marks a list element) and why."""

    key: tuple[tuple[str, str], ...]
    path: tuple[str, ...]
    reason: str
    table: str | None
    item: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def message(self) -> str:
        key = ", ".join(f"{k}={v}" for k, v in self.key) or "<no key>"
        where = ".".join(self.path) if self.path else "<item>"
        table = f" (table {self.table!r})" if self.table else ""
        return f"item {key}{table}: attribute {where}: {self.reason}"


class DataSchemaMismatch(ValueError):
    """An item does not fit the cached data-schema set (policy ``fail``)."""

    def __init__(self, unfit: UnfitItem, table: str) -> None:
        super().__init__(
            f"{unfit.message} (DynamoDB table {table!r}; policy 'fail': refresh the "
            "data-schemas or run with policy 'evolve')"
        )
        self.unfit = unfit
