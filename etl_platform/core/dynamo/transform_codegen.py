"""The code generator: per table, straight-line Python that turns items into rows.

A main table's ``fill(item)`` probes each known attribute once, keeps a local per column,
encodes common cases inline and appends the item's rows (lists first, so a misfit leaves no
main row behind); attributes steady in the observations are subscripted directly, falling back
to the general code. A child table gets ``fill(element, key, idx)`` and ``emit(value, key)``.
A misfit raises :class:`~.unfit.Misfit` without a path; the transformer names it through the
interpreter. The Python here emits that code: the emitted functions are long by design (one
line group per attribute), the functions that emit them are not.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ..table_spec import ColumnKind
from .data_schema import DataColumn
from .encoders import bytes_of, sorted_numbers
from .interpret import (
    SET_ELEMENT_TAG,
    emit_children,
    extra_attributes,
    json_value,
    list_length,
    map_slow,
    missing_key,
    truncate_rows,
    value_slow,
)
from .observe import SchemaObservations
from .transform_plan import INDEX_TEXT, OP_LIST, OP_MAP, OP_VALUE, Plan, Row, Spec
from .unfit import Misfit
from .wire_values import TIMESTAMP_PATTERN

#: A list-length column's text by element count, up to one more than a list loop takes.
COUNT_TEXT = (*INDEX_TEXT, str(len(INDEX_TEXT)))


class CodeGen:
    """Lines of Python source and the namespace their constants live in (``K<n>``)."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "_Unfit": Misfit,
            "_value_slow": value_slow,
            "_json_value": json_value,
            "_map_slow": map_slow,
            "_extra": extra_attributes,
            "_list_length": list_length,
        }
        self.lines: list[str] = []
        self.uses_lists = False
        # Main tables keep each list value in its own local (``l0``...) instead of ``pending``,
        # with the plan's constant and the parent's list-length column (-1: none).
        self.list_locals: list[tuple[str, str, int]] | None = None
        # For main tables: path -> the wire tag every observed item had there (or None).
        self.steady: Callable[[tuple[str, ...]], str | None] | None = None

    def const(self, value: Any) -> str:
        name = f"K{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def value(self, spec: Spec, path: tuple[str, ...], depth: int, indent: int) -> None:
        """Code for the wire value in local ``av`` (not None) at ``path``."""
        op, i, tag, arg, col = spec
        if op == OP_VALUE:
            if tag is None:
                self.emit(indent, f"c{i} = _json_value(av)")
                return
            self.emit(indent, f"v = av.get({tag!r})")
            self.emit(indent, "if v is not None:")
            self.emit(indent + 1, f"c{i} = {self.encoding(col.kind, arg, col)}")
            self.emit(indent, "elif 'NULL' not in av:")
            self.emit(indent + 1, f"c{i} = _value_slow({self.const(col)}, av)")
        elif op == OP_MAP:
            m = f"m{depth + 1}"
            self.emit(indent, f"{m} = av.get('M')")
            self.emit(indent, f"if {m} is not None:")
            self.level(arg, m, path, depth + 1, indent + 1)
            self.emit(indent, "else:")
            self.emit(indent + 1, "_map_slow(av)")
        else:
            self.list_value(i, arg, indent)

    def list_value(self, length_column: int, plan: Plan, indent: int) -> None:
        """Code keeping the list in local ``av`` for its child table's rows (and setting the
        parent's list-length column, if any). A main table sets the length where its list
        loop already holds the elements (:func:`list_code`); elsewhere it is set here, inline
        for a list and through ``_list_length`` for anything else."""
        if self.list_locals is not None:
            name = f"l{len(self.list_locals)}"
            self.list_locals.append((name, self.const(plan), length_column))
            self.emit(indent, f"{name} = av")
            return
        if length_column >= 0:
            self.namespace["COUNT"] = COUNT_TEXT
            self.emit(indent, "v = av.get('L')")
            self.emit(
                indent,
                f"c{length_column} = COUNT[len(v)] if v is not None and len(v) < "
                f"{len(COUNT_TEXT)} else _list_length(av)",
            )
        self.uses_lists = True
        self.emit(indent, f"pending.append(({self.const(plan)}, av))")

    def encoding(
        self,
        kind: ColumnKind,
        encoder: Callable[[Any], str] | None,
        column: DataColumn | None = None,
    ) -> str:
        """Expression encoding local ``v``: common cases inline, the rest via ``encoder``."""
        if encoder is None:
            return "v"
        call = f"{self.const(encoder)}(v)"
        if kind is ColumnKind.BOOLEAN:
            return f"'true' if v is True else 'false' if v is False else {call}"
        if kind is ColumnKind.BIGINT:
            return f"v if v.isdigit() and len(v) < 19 and v.isascii() else {call}"
        if kind is ColumnKind.DECIMAL and column is not None and column.scale == 0:
            return f"v if v.isdigit() and len(v) <= {column.precision} and v.isascii() else {call}"
        if kind is ColumnKind.TIMESTAMPTZ:
            match = self.const(TIMESTAMP_PATTERN.fullmatch)
            return f"v if {match}(v) is not None and v[8:10] < '29' else {call}"
        return call

    def level(
        self, attrs: dict[str, Spec], source: str, path: tuple[str, ...], depth: int, indent: int
    ) -> None:
        """Code for the map in local ``source``: one probe per known attribute, then a check
        that nothing unknown is left."""
        get, count = f"g{depth}", f"n{depth}"
        self.emit(indent, f"{get} = {source}.get")
        self.emit(indent, f"{count} = 0")
        for name, spec in attrs.items():
            self.emit(indent, f"av = {get}({name!r})")
            self.emit(indent, "if av is not None:")
            self.emit(indent + 1, f"{count} += 1")
            self.value(spec, (*path, name), depth, indent + 1)
        self.emit(indent, f"if {count} != len({source}):")
        self.emit(indent + 1, f"_extra({self.const(attrs)}, {source})")

    def steady_spec(self, spec: Spec, path: tuple[str, ...]) -> bool:
        op, _, tag, _, _ = spec
        if op == OP_LIST or tag is None or self.steady is None:
            return False
        return self.steady(path) == tag

    def steady_count(self, attrs: dict[str, Spec], path: tuple[str, ...]) -> int:
        return sum(self.steady_spec(spec, (*path, name)) for name, spec in attrs.items())

    def fast_level(
        self, attrs: dict[str, Spec], source: str, path: tuple[str, ...], depth: int, indent: int
    ) -> None:
        """Like :meth:`level`, but attributes steady in the observations are subscripted
        directly (a missing one raises ``KeyError``, caught by the caller)."""
        get, count = f"g{depth}", f"n{depth}"
        self.emit(indent, f"{count} = {self.steady_count(attrs, path)}")
        optional = [
            name for name, spec in attrs.items() if not self.steady_spec(spec, (*path, name))
        ]
        if optional:
            self.emit(indent, f"{get} = {source}.get")
        for name, spec in attrs.items():
            here = (*path, name)
            op, i, tag, arg, col = spec
            if name in optional:
                self.emit(indent, f"av = {get}({name!r})")
                self.emit(indent, "if av is not None:")
                self.emit(indent + 1, f"{count} += 1")
                self.value(spec, here, depth, indent + 1)
            elif op == OP_VALUE and arg is None:
                self.emit(indent, f"c{i} = {source}[{name!r}][{tag!r}]")
            elif op == OP_VALUE:
                self.emit(indent, f"v = {source}[{name!r}][{tag!r}]")
                self.emit(indent, f"c{i} = {self.encoding(col.kind, arg, col)}")
            else:
                m = f"m{depth + 1}"
                self.emit(indent, f"{m} = {source}[{name!r}]['M']")
                self.fast_level(arg, m, here, depth + 1, indent)
        self.emit(indent, f"if {count} != len({source}):")
        self.emit(indent + 1, f"_extra({self.const(attrs)}, {source})")

    def function(self, header: str, body: Callable[[], None], width: int, first: int) -> None:
        """``header``, the column locals, then ``body``. A misfit raises ``Misfit`` without a
        path: the transformer re-runs the item through the interpreter to name it."""
        outer, self.lines = self.lines, []
        body()
        inner, self.lines = self.lines, outer
        self.emit(0, header)
        columns = [f"c{i}" for i in range(first, width)]
        columns += [name for name, _, _ in self.list_locals or ()]
        if columns:
            self.emit(1, " = ".join(columns) + " = None")
        if self.uses_lists:
            self.emit(1, "pending = []")
        self.lines.extend(inner)

    def compile(self, name: str) -> Callable[..., Any]:
        source = "\n".join(self.lines) + "\n"
        code = compile(source, f"<data-schema {name}>", "exec")
        exec(code, self.namespace)
        return self.namespace["fill"]


def generated_main(
    plan: Plan, attrs: dict[str, Spec], observations: SchemaObservations
) -> Callable[..., Any]:
    """``fill(item)``: appends the item's row to the main table and its lists' rows to the
    child tables (children first: a misfit leaves no main row behind).

    Attributes that every observed item had with one type are read straight
    (``item["a"]["S"]``); an item that lacks one or has it otherwise falls back (``KeyError``)
    to the general code, which probes every attribute."""
    gen = CodeGen()
    gen.list_locals = []
    gen.function("def fill(item):", lambda: gen.level(attrs, "item", (), 0, 1), plan.width, 0)
    _main_tail(gen, plan)
    general = gen.compile(plan.table.name)

    fast = CodeGen()
    fast.list_locals = []
    fast.steady = lambda path: observations.steady_tag(plan.table.entity, path)
    if not fast.steady_count(attrs, ()):
        return general

    def body() -> None:
        fast.emit(1, "try:")
        fast.fast_level(attrs, "item", (), 0, 2)
        fast.emit(1, "except (KeyError, TypeError):")
        fast.emit(2, f"return {fast.const(general)}(item)")

    fast.function("def fill(item):", body, plan.width, 0)
    _main_tail(fast, plan)
    return fast.compile(f"{plan.table.name} (steady attributes)")


def _main_tail(gen: CodeGen, plan: Plan) -> None:
    """The end of a main ``fill``: key check, list rows, then the main row."""
    gen.namespace["_missing_key"] = missing_key
    gen.namespace["_truncate"] = truncate_rows
    keys = [f"c{i}" for i in range(plan.key_width)]
    gen.emit(1, f"if {' or '.join(f'{k} is None' for k in keys)}:")
    gen.emit(2, "_missing_key(item)")
    assert gen.list_locals is not None
    if gen.list_locals:
        # A misfit in a list removes the rows its item already added (lengths are taken per
        # present list, so fitting items pay little).
        gen.emit(1, f"key = ({', '.join(keys)},)")
        for n, (name, child, _) in enumerate(gen.list_locals):
            subtree = gen.namespace[child].subtree
            gen.emit(1, f"if {name} is not None:")
            if len(subtree) == 1:
                gen.emit(2, f"s{n} = len({child}.out)")
            else:
                gen.emit(2, f"s{n} = [len(p.out) for p in {gen.const(subtree)}]")
        gen.emit(1, "try:")
        for name, child, length_column in gen.list_locals:
            gen.emit(2, f"if {name} is not None:")
            count = f"c{length_column}" if length_column >= 0 else None
            list_code(gen, gen.namespace[child], name, "key", 3, count)
        gen.emit(1, "except BaseException:")
        for n, (name, child, _) in enumerate(gen.list_locals):
            subtree = gen.namespace[child].subtree
            gen.emit(2, f"if {name} is not None:")
            if len(subtree) == 1:
                gen.emit(3, f"del {child}.out[s{n}:]")
            else:
                gen.emit(3, f"_truncate({gen.const(subtree)}, s{n})")
        gen.emit(2, "raise")
    columns = ", ".join(f"c{i}" for i in range(plan.width))
    gen.emit(1, f"{gen.const(plan)}.out.append(({columns},))")


def generated_element(plan: Plan) -> Callable[..., Any]:
    gen = CodeGen()
    first = plan.key_width
    gen.function(
        "def fill(av, key, idx):", lambda: gen.value(plan.elem, (), 0, 1), plan.width, first
    )
    values = "".join(f", c{i}" for i in range(first, plan.width))
    gen.emit(1, f"return key + (idx{values},), {'pending' if gen.uses_lists else 'None'}")
    return gen.compile(plan.table.name)


_SET_SORT = {"SS": sorted, "NS": sorted_numbers, "BS": lambda v: sorted(v, key=bytes_of)}


def list_code(
    gen: CodeGen, plan: Plan, av: str, key: str, indent: int, count: str | None = None
) -> None:
    """Code appending the rows of the list or set value in local ``av`` to ``plan``'s table:
    sets and lists of the expected element type in a tight loop (element values encoded
    inline), anything unusual (NULL, other element types, misfits, very long lists) through
    ``emit_children``. ``count``: the local of the parent's list-length column, if any."""
    this = gen.const(plan)
    fill = gen.const(plan.fill)
    limit = len(INDEX_TEXT)
    gen.namespace["IDX"] = INDEX_TEXT
    branches = _set_branches(gen, plan, this, key)
    branches.append(("L", partial(_list_loop, gen, plan, this, fill, key)))
    if count is not None:
        gen.namespace["COUNT"] = COUNT_TEXT
    for list_tag, body in branches:
        gen.emit(indent, f"values = {av}.get({list_tag!r})")
        gen.emit(indent, f"if values is not None and len(values) <= {limit}:")
        if count is not None:  # COUNT holds one more entry than the limit
            gen.emit(indent + 1, f"{count} = COUNT[len(values)]")
        body(indent + 1)
        gen.emit(indent, "else:")
        indent += 1
    if count is not None:
        gen.emit(indent, f"{count} = _list_length({av})")
    gen.emit(indent, f"{gen.const(emit_children)}({this}, {av}, {key})")


def _set_branches(
    gen: CodeGen, plan: Plan, this: str, key: str
) -> list[tuple[str, Callable[[int], None]]]:
    """Per set type whose elements fit a scalar element column, the emitter of its loop (the
    element expression is made now, the loop when emitted)."""
    _, _, tag, encoder, column = plan.elem
    branches: list[tuple[str, Callable[[int], None]]] = []
    if plan.scalar is None:
        return branches
    for set_tag, element_tag in SET_ELEMENT_TAG.items():
        if element_tag not in plan.scalar:
            continue
        if element_tag == tag:
            expression = gen.encoding(column.kind, encoder, column)
        else:
            other = plan.scalar[element_tag]
            expression = "v" if other is None else f"{gen.const(other)}(v)"
        branches.append((set_tag, partial(_set_loop, gen, this, key, set_tag, expression)))
    return branches


def _set_loop(gen: CodeGen, this: str, key: str, set_tag: str, expression: str, at: int) -> None:
    """A loop over the set in local ``values``, sorted, appending one row per element."""
    gen.emit(at, f"append = {this}.out.append")
    gen.emit(at, "i = 0")
    if set_tag == "NS":
        gen.emit(at, "if len(values) > 1:")
        gen.emit(at + 1, "try:")
        gen.emit(at + 2, "values = sorted(values, key=int)")
        gen.emit(at + 1, "except ValueError:")
        gen.emit(at + 2, f"values = {gen.const(sorted_numbers)}(values)")
        gen.emit(at, "for v in values:")
    else:
        order = gen.const(_SET_SORT[set_tag])
        gen.emit(at, f"for v in (values if len(values) < 2 else {order}(values)):")
    gen.emit(at + 1, f"append({key} + (IDX[i], {expression}))")
    gen.emit(at + 1, "i += 1")


def _list_loop(gen: CodeGen, plan: Plan, this: str, fill: str, key: str, at: int) -> None:
    """A loop over the list in local ``values``: scalar elements of the expected type encoded
    inline, other elements through the element ``fill`` (and their nested lists' rows)."""
    _, _, tag, encoder, column = plan.elem
    gen.emit(at, f"append = {this}.out.append")
    gen.emit(at, "i = 0")
    gen.emit(at, "for e in values:")
    if plan.scalar is not None and tag is not None:
        gen.emit(at + 1, f"v = e.get({tag!r})")
        gen.emit(at + 1, "if v is None:")
        gen.emit(at + 2, f"append({fill}(e, {key}, IDX[i])[0])")
        gen.emit(at + 1, "else:")
        value = gen.encoding(column.kind, encoder, column)
        gen.emit(at + 2, f"append({key} + (IDX[i], {value}))")
    elif plan.scalar is not None:
        gen.emit(at + 1, f"append({fill}(e, {key}, IDX[i])[0])")
    else:
        gen.emit(at + 1, f"row, pending = {fill}(e, {key}, IDX[i])")
        gen.emit(at + 1, "append(row)")
        gen.emit(at + 1, "if pending:")
        gen.emit(at + 2, f"sub = row[:{plan.key_width}]")
        gen.emit(at + 2, "for child, child_av in pending:")
        gen.emit(at + 3, "child.emit(child_av, sub)")
    gen.emit(at + 1, "i += 1")


def generated_emitter(plan: Plan) -> Callable[[Any, Row], None]:
    """``emit(av, parent_key)``: the rows of one list or set value into ``plan``'s table."""
    gen = CodeGen()
    gen.emit(0, "def fill(av, key):")
    list_code(gen, plan, "av", "key", 1)
    return gen.compile(f"{plan.table.name} rows")
