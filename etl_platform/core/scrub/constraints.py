"""Rules that the restore would reject, found before anything is written: the archive's keys
(``pg_restore --section=post-data``: primary keys, UNIQUE constraints and single-column unique
indexes, foreign keys) checked against the plan.

- A foreign key holds in the target only if both ends get the same rule: a value maps to one
  output per rule (``fake_email`` and ``fake_email`` with ``unique`` differ in width), and a
  truncated table cannot be referenced by rows that stay.
- A primary key or single-column UNIQUE column breaks on a rule that repeats values:
  ``constant``, ``mask``, and ``fake_name``/``fake_phone`` without ``unique``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .archive import IDENT, QUALIFIED_NAME, split_columns, split_qualified
from .rules import ColumnRule, ScrubRules, display_name

if TYPE_CHECKING:
    from .coverage import TablePlan

_FOREIGN_KEY = re.compile(
    rf"^ALTER TABLE (?:ONLY )?({QUALIFIED_NAME})\n\s+ADD CONSTRAINT ({IDENT}) FOREIGN KEY "
    rf"\(([^)]*)\) REFERENCES ({QUALIFIED_NAME})\(([^)]*)\)",
    re.M,
)
_UNIQUE_KEY = re.compile(
    rf"^ALTER TABLE (?:ONLY )?({QUALIFIED_NAME})\n\s+ADD CONSTRAINT ({IDENT}) "
    r"(PRIMARY KEY|UNIQUE)(?: NULLS NOT DISTINCT)? \(([^)]*)\)",
    re.M,
)
_UNIQUE_INDEX = re.compile(
    rf"^CREATE UNIQUE INDEX ({IDENT}) ON (?:ONLY )?({QUALIFIED_NAME}) USING \w+ \(({IDENT})\)", re.M
)
REPEATING = frozenset({"constant", "mask"})
NEEDS_UNIQUE = frozenset({"fake_name", "fake_phone"})


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    references: str
    referenced: tuple[str, ...]


@dataclass(frozen=True)
class Constraints:
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    unique: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column) → kind


def parse_constraints(post_data_script: str) -> Constraints:
    """The post-data script → foreign keys and single-column unique keys."""
    foreign_keys = [
        ForeignKey(
            name,
            split_qualified(table),
            split_columns(columns),
            split_qualified(references),
            split_columns(referenced),
        )
        for table, name, columns, references, referenced in _FOREIGN_KEY.findall(post_data_script)
    ]
    unique: dict[tuple[str, str], str] = {}
    for table, _, kind, columns in _UNIQUE_KEY.findall(post_data_script):
        names = split_columns(columns)
        if len(names) == 1:
            unique[(split_qualified(table), names[0])] = kind
    for _, table, column in _UNIQUE_INDEX.findall(post_data_script):
        unique.setdefault((split_qualified(table), split_columns(column)[0]), "UNIQUE")
    return Constraints(foreign_keys, unique)


_TRUNCATED = ColumnRule(action="truncate_table")


def _rule(
    table: str, column: str, plans: Mapping[str, TablePlan], rules: ScrubRules
) -> ColumnRule | None:
    """The rule the plan gives ``table.column`` (a partitioned table without data of its own:
    its rules), ``_TRUNCATED``, or None when unknown."""
    plan = plans.get(table)
    if plan is not None:
        return _TRUNCATED if plan.truncate else plan.rules.get(column)
    table_rules = rules.for_table(table)
    if table_rules is None:
        return None
    if table_rules.truncate:
        return _TRUNCATED
    return table_rules.rule_for(column)


def _describe(rule: ColumnRule) -> str:
    return rule.action + (" unique" if rule.unique else "")


def _same(a: ColumnRule, b: ColumnRule) -> bool:
    return replace(a, reason=None, scan=True) == replace(b, reason=None, scan=True)


def _foreign_key_problems(
    key: ForeignKey, plans: Mapping[str, TablePlan], rules: ScrubRules
) -> list[str]:
    problems = []
    for column, referenced in zip(key.columns, key.referenced, strict=False):
        child = _rule(key.table, column, plans, rules)
        parent = _rule(key.references, referenced, plans, rules)
        if child is None or parent is None or child is _TRUNCATED or child.action == "null":
            continue
        where = f"{display_name(key.table, column)} → {display_name(key.references, referenced)}"
        if parent is _TRUNCATED:
            problems.append(f"{where}: the referenced table is truncated (foreign key {key.name})")
        elif (child.scrubs or parent.scrubs) and not _same(child, parent):
            problems.append(
                f"{where}: rules differ ({_describe(child)} vs {_describe(parent)}), so foreign "
                f"key {key.name} would break in the target: give both the same rule"
            )
    return problems


def constraint_problems(
    plans: Sequence[TablePlan], rules: ScrubRules, constraints: Constraints
) -> list[str]:
    """What the restore of this plan would reject, each naming ``table.column``."""
    by_table = {plan.table.qualified: plan for plan in plans}
    problems = []
    for (table, column), kind in sorted(constraints.unique.items()):
        rule = _rule(table, column, by_table, rules)
        if rule is None or rule is _TRUNCATED:
            continue
        if rule.action in REPEATING or (rule.action in NEEDS_UNIQUE and not rule.unique):
            problems.append(
                f"{display_name(table, column)}: {_describe(rule)} repeats values on a {kind} "
                "column (the restore would fail): use unique: true, hash or fake_email"
            )
    for key in constraints.foreign_keys:
        problems += _foreign_key_problems(key, by_table, rules)
    return problems
