"""Fail closed: every column of every table in the dump must be covered by a rule, column by
column or by the table's ``keep_all``/``truncate_table``. The result is the plan the scrub
executes; any gap is an error naming every uncovered ``table.column``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .archive import DumpTable
from .detector import detect_pii
from .rules import ColumnRule, ScrubRules, display_name

KEEP = ColumnRule(action="keep")


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


def plan_scrub(rules: ScrubRules, tables: Sequence[DumpTable]) -> ScrubPlan:
    """The plan for this dump, or :class:`CoverageError` naming every uncovered column (and
    every flagged column kept through ``keep_all`` without a table ``reason``)."""
    problems: list[str] = []
    plans: list[TablePlan] = []
    seen: set[str] = set()
    for table in tables:
        seen.add(table.qualified)
        table_rules = rules.for_table(table.qualified)
        if table_rules is None:
            problems.extend(f"{display_name(table.qualified, c)}: no rule" for c in table.columns)
            continue
        if table_rules.truncate:
            plans.append(TablePlan(table, truncate=True))
            continue
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
            column_rules[column] = rule
        plans.append(TablePlan(table, rules=column_rules))
    if problems:
        raise CoverageError(problems)
    unused = [display_name(t) for t in rules.tables if t not in seen]
    for plan in plans:
        table_rules = rules.for_table(plan.table.qualified)
        assert table_rules is not None
        unused += [
            display_name(plan.table.qualified, c)
            for c in table_rules.columns
            if c not in plan.table.columns
        ]
    return ScrubPlan(plans, unused)
