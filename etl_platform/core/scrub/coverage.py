"""Fail closed: every column of every table in the dump must be covered by a rule, column by
column or by the table's ``keep_all``/``truncate_table``. The result is the plan the scrub
executes; any gap is an error naming every uncovered ``table.column``.

A partition (pg_dump stores each one's rows as a table of its own) takes the rules of its
nearest partitioned table that has rules, unless it has rules of its own: one rule covers the
partitions of every month, including next month's. Legacy inheritance (``INHERITS``) does not
count: a child may add columns of its own, and needs its own rules."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .archive import DumpTable
from .constraints import Constraints, constraint_problems
from .detector import detect_pii
from .rules import KEEP, ColumnRule, ScrubRules, TableRules, display_name


class CoverageError(ValueError):
    """The rules do not cover the dump; ``problems`` lists each ``table.column`` and why."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"scrub rules do not cover the dump ({len(self.problems)} problems): "
            + "; ".join(self.problems)
        )


@dataclass(frozen=True)
class TablePlan:
    """What the scrub does to one table's data file."""

    table: DumpTable
    truncate: bool = False
    rules: dict[str, ColumnRule] = field(default_factory=dict)  # every column, in COPY order
    rules_of: str = ""  # the table whose rules apply: this one, or a partitioned table above it

    @property
    def scrubbed_columns(self) -> list[str]:
        return [c for c, r in self.rules.items() if r.scrubs]

    @property
    def copies_unchanged(self) -> bool:
        return not self.truncate and not self.scrubbed_columns


@dataclass(frozen=True)
class ScrubPlan:
    tables: list[TablePlan]
    unused_rules: list[str]  # rules naming tables or columns the dump does not have

    def columns_per_action(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for plan in self.tables:
            if plan.truncate:
                counts["truncate_table"] += len(plan.table.columns)
            else:
                counts.update(r.action for r in plan.rules.values())
        return dict(sorted(counts.items()))


def _table_rules(rules: ScrubRules, table: DumpTable) -> TableRules | None:
    """The table's own rules, else those of its nearest partitioned table that has some."""
    for name in (table.qualified, *table.partition_of):
        found = rules.for_table(name)
        if found is not None:
            return found
    return None


def _uncovered(table: DumpTable) -> list[str]:
    hint = ""
    if table.partition_of:
        hint = f" (a partition of {display_name(table.partition_of[-1])}: a rule there covers it)"
    return [f"{display_name(table.qualified, c)}: no rule{hint}" for c in table.columns]


def _column_rules(
    table: DumpTable, table_rules: TableRules, problems: list[str]
) -> dict[str, ColumnRule]:
    column_rules: dict[str, ColumnRule] = {}
    for column in table.columns:
        rule = table_rules.columns.get(column)
        if rule is None and table_rules.keep_all:
            flagged = detect_pii(column)
            if flagged and not (table_rules.reason or "").strip():
                problems.append(
                    f"{display_name(table.qualified, column)}: kept by keep_all but named "
                    f"like {'/'.join(sorted(flagged))}: give it a rule or the table a reason"
                )
            rule = KEEP
        if rule is None:
            problems.append(f"{display_name(table.qualified, column)}: no rule")
            continue
        if rule.action == "null" and column in table.not_null:
            problems.append(
                f"{display_name(table.qualified, column)}: null on a NOT NULL column "
                "(the restore would fail): use constant, hash or a fake_* action"
            )
        column_rules[column] = rule
    return column_rules


def plan_scrub(
    rules: ScrubRules, tables: Sequence[DumpTable], constraints: Constraints | None = None
) -> ScrubPlan:
    """The plan for this dump, or :class:`CoverageError` naming every uncovered column (and
    every flagged column kept through ``keep_all`` without a table ``reason``) and, given the
    archive's ``constraints``, every rule its restore would reject."""
    problems: list[str] = []
    plans: list[TablePlan] = []
    for table in tables:
        table_rules = _table_rules(rules, table)
        if table_rules is None:
            problems.extend(_uncovered(table))
        elif table_rules.truncate:
            plans.append(TablePlan(table, truncate=True, rules_of=table_rules.name))
        else:
            column_rules = _column_rules(table, table_rules, problems)
            plans.append(TablePlan(table, rules=column_rules, rules_of=table_rules.name))
    if constraints is not None:
        problems += constraint_problems(plans, rules, constraints)
    if problems:
        raise CoverageError(problems)
    return ScrubPlan(plans, _unused_rules(rules, plans))


def _unused_rules(rules: ScrubRules, plans: list[TablePlan]) -> list[str]:
    """Rules naming a table no data file uses, or a column none of its tables has."""
    used = {plan.rules_of for plan in plans}
    unused = [display_name(t) for t in rules.tables if t not in used]
    for name in sorted(used):
        columns = {c for plan in plans if plan.rules_of == name for c in plan.table.columns}
        unused += [display_name(name, c) for c in rules.tables[name].columns if c not in columns]
    return unused
