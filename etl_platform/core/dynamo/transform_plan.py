"""Transform plans: a data-schema set as a tree of attribute specs per table.

A table's attributes form a tree of spec tuples ``(op, index, tag, arg, column)``: op VALUE:
column ``index``, ``tag`` the usual type tag, ``arg`` its encoder (None = the value as is, tag
None = JSON); op MAP: ``arg`` is the nested attrs dict; op LIST: ``arg`` is the child table's
plan, ``index`` the parent's list-length column (-1: none, a data-schema cached before it).
Per table the transformer generates straight-line Python (:mod:`.transform_codegen`: one
dict probe per known attribute, a local per column, common encodings inline): a main table's
``fill(item)`` appends the item's rows to its table and its child tables; a child table's
``fill(element, parent key, index)`` returns the element's row and ``emit(value, parent key)``
appends a list's rows. Tables with very many attributes use the interpreter
(:mod:`.interpret`) instead. A misfit raises :class:`~.unfit.Misfit`; the transformer then
re-runs the item through the interpreter (:func:`~.interpret.diagnose`) to name the first
offending path in a canonical order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from ..table_spec import ColumnKind
from .config import ColumnRole
from .data_schema import DataColumn, DataTable
from .encoders import (
    bigint_text,
    binary_text,
    boolean_text,
    decimal_encoder,
    json_base64,
    json_number,
    memoized,
    number_text,
    timestamp_text,
)

Row = tuple[str | None, ...]
Spec = tuple[int, int, str | None, Any, Any]

OP_VALUE, OP_MAP, OP_LIST = 0, 1, 2
LIST_TAGS = ("L", "SS", "NS", "BS")
INDEX_TEXT = tuple(str(i) for i in range(4096))


class Plan:
    """One table's transform: where its rows go (``out``), its element spec (child tables),
    the compiled ``fill`` / ``emit`` and the interpreter's ``interp``, and the plans whose rows
    a misfit must roll back (``descendants`` of a main table, ``subtree`` of a child)."""

    __slots__ = (
        "descendants",
        "elem",
        "emit",
        "fill",
        "interp",
        "key_width",
        "list_path",
        "out",
        "scalar",
        "subtree",
        "table",
        "width",
    )

    def __init__(self, table: DataTable) -> None:
        self.table = table
        self.out: list[Row] = []
        self.key_width = len(table.primary_key)
        self.width = len(table.columns)
        self.list_path = table.list_path[-1] if table.list_path else ()
        self.elem: Spec = (OP_MAP, -1, "M", {}, None)
        self.fill: Callable[..., tuple[Row, list | None]] = _unset_fill
        self.interp: Callable[..., tuple[Row, list | None]] = _unset_fill
        self.emit: Callable[[Any, Row], None] = _unset_fill
        self.descendants: list[Plan] = []
        self.subtree: list[Plan] = [self]
        # For scalar elements: type tag -> encoder (None = as is) of the tags that fit.
        self.scalar: dict[str, Callable[[Any], str] | None] | None = None


def _unset_fill(*args: Any) -> tuple[Row, list | None]:
    raise AssertionError("plan not compiled")


def value_spec(column: DataColumn, index: int, binary: Callable[[Any], str] = binary_text) -> Spec:
    """The spec of a column; ``binary`` encodes binary values (the warehouse dialect's text)."""
    kind = column.kind
    if kind is ColumnKind.TEXT:
        return (OP_VALUE, index, "S", None, column)
    if kind is ColumnKind.BIGINT:
        return (OP_VALUE, index, "N", bigint_text, column)
    if kind is ColumnKind.DECIMAL:
        assert column.precision is not None and column.scale is not None
        encoder = memoized(decimal_encoder(column.precision, column.scale))
        return (OP_VALUE, index, "N", encoder, column)
    if kind is ColumnKind.TIMESTAMPTZ:
        return (OP_VALUE, index, "S", timestamp_text, column)
    if kind is ColumnKind.BOOLEAN:
        return (OP_VALUE, index, "BOOL", boolean_text, column)
    if kind is ColumnKind.BINARY:
        return (OP_VALUE, index, "B", binary, column)
    return (OP_VALUE, index, None, None, column)


def place(attrs: dict[str, Spec], path: tuple[str, ...], spec: Spec) -> None:
    """Put ``spec`` at ``path`` in a nested attrs dict, creating map specs on the way."""
    for part in path[:-1]:
        existing = attrs.get(part)
        if existing is None:
            nested: dict[str, Spec] = {}
            attrs[part] = (OP_MAP, -1, "M", nested, None)
            attrs = nested
        elif existing[0] == OP_MAP:
            attrs = existing[3]
        else:
            raise ValueError(f"data-schema path {path} crosses a non-map attribute")
    if path[-1] in attrs:
        raise ValueError(f"data-schema maps attribute path {path} twice")
    attrs[path[-1]] = spec


def count_attributes(attrs: dict[str, Spec]) -> int:
    return sum(1 + (count_attributes(s[3]) if s[0] == OP_MAP else 0) for s in attrs.values())


def scalar_encoders(spec: Spec) -> dict[str, Callable[[Any], str] | None] | None:
    """For a scalar element column: the type tags that fit it and their encoders."""
    op, _, tag, encoder, column = spec
    if op != OP_VALUE:
        return None
    if column.kind is ColumnKind.JSON:
        return {"S": encode_basestring, "N": json_number, "B": json_base64, "BOOL": boolean_text}
    if column.kind is ColumnKind.TEXT:
        return {"S": None, "N": number_text}
    assert tag is not None
    return {tag: encoder}


@dataclass
class TablePlans:
    """The plans of one data-schema set: per table name, per entity its main table's plan, and
    per main table name the attrs tree its generated ``fill`` reads."""

    by_table: dict[str, Plan] = field(default_factory=dict)
    mains: dict[str | None, Plan] = field(default_factory=dict)
    main_attrs: dict[str, dict[str, Spec]] = field(default_factory=dict)


def build_plans(
    tables: Iterable[DataTable], binary: Callable[[Any], str] = binary_text
) -> TablePlans:
    """Plans of ``tables`` (parents before children), each child's list spec placed in its
    parent, scalar element encoders set and every plan linked to its main table and ancestors
    (not compiled yet). ``binary`` encodes binary values for the warehouse dialect."""
    by_name = {t.name: t for t in tables}
    out = TablePlans()
    for name in sorted(by_name, key=lambda n: (len(by_name[n].list_path), n)):
        table = by_name[name]
        plan = out.by_table[name] = Plan(table)
        attrs = _table_attrs(plan, binary)
        if table.parent is None:
            if table.entity in out.mains:
                raise ValueError(f"entity {table.entity!r} has two main tables")
            out.mains[table.entity] = plan
            out.main_attrs[name] = attrs
        else:
            _attach_child(out, plan, attrs)
    plans = out.by_table
    for plan in plans.values():
        if plan.table.parent is not None:
            plan.scalar = scalar_encoders(plan.elem)
    for plan in plans.values():
        if plan.table.parent is None:
            continue
        out.mains[plan.table.entity].descendants.append(plan)
        ancestor = plans.get(plan.table.parent or "")
        while ancestor is not None and ancestor.table.parent is not None:
            ancestor.subtree.append(plan)
            ancestor = plans.get(ancestor.table.parent or "")
    return out


def _table_attrs(plan: Plan, binary: Callable[[Any], str]) -> dict[str, Spec]:
    """The attrs tree of ``plan``'s key and value columns; a scalar element's value column
    becomes ``plan.elem``."""
    attrs: dict[str, Spec] = {}
    for index, column in enumerate(plan.table.columns):
        if column.role is ColumnRole.KEY or (column.role is ColumnRole.VALUE and column.path):
            place(attrs, column.path, value_spec(column, index, binary))
        elif column.role is ColumnRole.VALUE:
            plan.elem = value_spec(column, index, binary)
    return attrs


def _attach_child(plans: TablePlans, plan: Plan, attrs: dict[str, Spec]) -> None:
    """Make ``plan``'s elements maps of ``attrs`` (if any) and place its list spec in its
    parent: in the parent's attrs tree, or as the parent's element (a list of lists)."""
    table = plan.table
    name = table.name
    if attrs:
        plan.elem = (OP_MAP, -1, "M", attrs, None)
    parent = plans.by_table.get(table.parent or "")
    if parent is None:
        raise ValueError(f"child table {name!r} has no parent table {table.parent!r}")
    path = table.list_path[-1]
    length_column = next(
        (
            index
            for index, column in enumerate(parent.table.columns)
            if column.role is ColumnRole.LIST_LENGTH and column.path == path
        ),
        -1,
    )
    list_spec: Spec = (OP_LIST, length_column, "L", plan, None)
    if parent.table.parent is None:
        place(plans.main_attrs[parent.table.name], path, list_spec)
    elif path:
        if parent.elem[0] != OP_MAP:
            raise ValueError(f"child table {name!r}: parent elements are not maps")
        place(parent.elem[3], path, list_spec)
    else:
        parent.elem = list_spec
