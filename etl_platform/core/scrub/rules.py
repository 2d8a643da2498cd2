"""The scrub rules of one dump pipeline instance: what happens to every column of every table.

The YAML shape (under the instance's ``scrub_rules``)::

    tables:
      customers:                       # or public.customers; other schemas must be qualified
        columns:
          id: keep
          email: {action: fake_email, unique: true}
          phone: fake_phone
          full_name: fake_name
          notes: "null"                # quoted: a bare YAML null means the same action
          iban: {action: mask, first: 2, last: 4}
          tier: {action: constant, value: standard}
          login: {action: keep, reason: "a handle chosen by the customer, not a name"}
      orders: keep_all                 # every column kept (flagged names need a reason)
      audit_log: truncate_table        # no rows at all
    custom_sql: []                     # optional statements run in a scratch database

Rules are checked here without I/O: unknown actions, options that do not belong to an action,
a ``keep`` on a column the name detector flags without a ``reason``. Whether the rules cover the
dump is :mod:`.coverage`'s job, because only the dump knows its columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .detector import detect_pii

COLUMN_ACTIONS = frozenset(
    {"keep", "null", "hash", "fake_email", "fake_name", "fake_phone", "constant", "mask"}
)
SCRUBBING_ACTIONS = COLUMN_ACTIONS - {"keep"}
TABLE_ACTIONS = frozenset({"keep_all", "truncate_table"})
_OPTIONS = {
    "keep": {"reason", "scan"},
    "null": set(),
    "hash": {"length", "output", "unique"},
    "fake_email": {"unique", "domain"},
    "fake_name": {"unique"},
    "fake_phone": {"unique"},
    "constant": {"value"},
    "mask": {"first", "last", "char"},
}


class RuleError(ValueError):
    """A scrub rule is malformed; the message names ``table.column`` and the setting."""


@dataclass(frozen=True)
class ColumnRule:
    """What happens to one column's values. NULL stays NULL for every action but ``constant``
    (which writes its value only over non-NULL values, too: a NULL carries no PII)."""

    action: str
    reason: str | None = None
    scan: bool = True  # keep: include in the residual pattern scan
    unique: bool = False  # pseudonyms wide enough (or bijective) for a UNIQUE column
    length: int = 16  # hash: digest bytes (hex doubles it)
    output: str = "text"  # hash: "text" (hex) or "int" (a positive bigint)
    domain: str = "example.invalid"  # fake_email
    value: str | None = None  # constant
    first: int = 0  # mask
    last: int = 0  # mask
    char: str = "*"  # mask

    @property
    def scrubs(self) -> bool:
        return self.action in SCRUBBING_ACTIONS


KEEP = ColumnRule(action="keep")


@dataclass(frozen=True)
class TableRules:
    """The rules of one table, keyed by its qualified name ``schema.table``."""

    name: str
    columns: Mapping[str, ColumnRule] = field(default_factory=dict)
    keep_all: bool = False
    truncate: bool = False
    reason: str | None = None

    def rule_for(self, column: str) -> ColumnRule | None:
        """The column's own rule, else ``keep`` under ``keep_all``, else None (uncovered)."""
        rule = self.columns.get(column)
        return KEEP if rule is None and self.keep_all else rule


@dataclass(frozen=True)
class ScrubRules:
    tables: Mapping[str, TableRules]
    custom_sql: tuple[str, ...] = ()

    def for_table(self, qualified: str) -> TableRules | None:
        return self.tables.get(qualified)


def qualify(table: str) -> str:
    """``customers`` → ``public.customers``; ``sales.orders`` stays."""
    return table if "." in table else f"public.{table}"


def display_name(qualified: str, column: str | None = None) -> str:
    """``public.customers`` → ``customers`` (other schemas stay qualified), plus ``.column``."""
    table = qualified.removeprefix("public.")
    return table if column is None else f"{table}.{column}"


def parse_column_rule(where: str, column: str, raw: Any) -> ColumnRule:
    """One column's rule from its YAML: an action name, ``None`` (the ``null`` action), or a
    mapping with ``action`` and that action's options."""
    if raw is None:
        raw = {"action": "null"}
    if isinstance(raw, str):
        raw = {"action": raw}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("action"), str):
        raise RuleError(f"scrub rule {where}: expected an action name or {{action: ...}}")
    action = raw["action"]
    if action not in COLUMN_ACTIONS:
        raise RuleError(
            f"scrub rule {where}: unknown action {action!r} (one of {sorted(COLUMN_ACTIONS)})"
        )
    options = {k: v for k, v in raw.items() if k != "action"}
    unknown = set(options) - _OPTIONS[action]
    if unknown:
        raise RuleError(f"scrub rule {where}: {sorted(unknown)} do not apply to {action}")
    rule = _build_rule(where, action, options)
    flagged = detect_pii(column)
    if action == "keep" and flagged and not (rule.reason or "").strip():
        raise RuleError(
            f"scrub rule {where}: keep on a column named like {'/'.join(sorted(flagged))} "
            "needs a reason"
        )
    return rule


def _build_rule(where: str, action: str, options: dict[str, Any]) -> ColumnRule:
    try:
        rule = ColumnRule(action=action, **options)
    except TypeError as exc:
        raise RuleError(f"scrub rule {where}: {exc}") from exc
    ints = {"length": rule.length, "first": rule.first, "last": rule.last}
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in ints.values()):
        raise RuleError(f"scrub rule {where}: length/first/last must be non-negative integers")
    if action == "hash" and not 8 <= rule.length <= 32:
        raise RuleError(f"scrub rule {where}: hash length must be 8..32 bytes")
    if rule.output not in ("text", "int"):
        raise RuleError(f"scrub rule {where}: hash output must be 'text' or 'int'")
    if action == "constant" and rule.value is not None and not isinstance(rule.value, str):
        rule = ColumnRule(action=action, value=str(rule.value))
    if action == "mask" and len(rule.char) != 1:
        raise RuleError(f"scrub rule {where}: mask char must be one character")
    return rule


def parse_table_rules(table: str, raw: Any) -> TableRules:
    qualified = qualify(table)
    where = display_name(qualified)
    if isinstance(raw, str):
        raw = {raw: True}
    if not isinstance(raw, Mapping):
        raise RuleError(f"scrub rule {where}: expected columns, keep_all or truncate_table")
    unknown = set(raw) - {"columns", "keep_all", "truncate_table", "reason"}
    if unknown:
        raise RuleError(f"scrub rule {where}: unknown settings {sorted(unknown)}")
    keep_all, truncate = bool(raw.get("keep_all")), bool(raw.get("truncate_table"))
    columns_raw = raw.get("columns") or {}
    if not isinstance(columns_raw, Mapping):
        raise RuleError(f"scrub rule {where}.columns: expected a mapping of column to rule")
    if keep_all and truncate:
        raise RuleError(f"scrub rule {where}: keep_all and truncate_table exclude each other")
    if truncate and columns_raw:
        raise RuleError(f"scrub rule {where}: truncate_table takes no column rules")
    columns = {
        str(name): parse_column_rule(display_name(qualified, str(name)), str(name), rule)
        for name, rule in columns_raw.items()
    }
    return TableRules(qualified, columns, keep_all, truncate, raw.get("reason"))


def parse_rules(raw: Mapping[str, Any]) -> ScrubRules:
    """The instance's ``scrub_rules`` YAML → :class:`ScrubRules` (raises :class:`RuleError`)."""
    unknown = set(raw) - {"tables", "custom_sql"}
    if unknown:
        raise RuleError(f"scrub_rules: unknown settings {sorted(unknown)}")
    tables_raw = raw.get("tables") or {}
    if not isinstance(tables_raw, Mapping):
        raise RuleError("scrub_rules.tables: expected a mapping of table to rules")
    tables: dict[str, TableRules] = {}
    for name, table_raw in tables_raw.items():
        parsed = parse_table_rules(str(name), table_raw)
        if parsed.name in tables:
            raise RuleError(f"scrub rule {display_name(parsed.name)}: listed twice")
        tables[parsed.name] = parsed
    custom = raw.get("custom_sql") or []
    if not isinstance(custom, list) or not all(isinstance(s, str) for s in custom):
        raise RuleError("scrub_rules.custom_sql: expected a list of SQL statements")
    return ScrubRules(tables, tuple(custom))
