"""The interpreter: items -> rows by walking a plan's attrs tree, with the same results as
the generated code. Tables with very many attributes (and ``generate_code=False``) use it, it
names the first offending path of an unfit item (:func:`diagnose`), and its slow paths are
what the generated code falls back to for anything unusual."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..table_spec import ColumnKind
from .data_schema import DataColumn
from .encoders import bytes_of, json_text, shown, sorted_numbers, tag_of
from .transform_plan import INDEX_TEXT, LIST_TAGS, OP_LIST, OP_VALUE, Plan, Row, Spec
from .unfit import Misfit
from .wire_values import carries_data, number_digits

# Slow paths shared with the generated code (paths relative to the value they get).


def value_slow(column: DataColumn, av: Any) -> str | None:
    tag = tag_of(av)
    kind = column.kind
    if kind is ColumnKind.JSON:
        return json_text(av)
    if tag == "NULL" or (tag == "M" and not av["M"]):
        return None
    if kind is ColumnKind.TEXT and tag == "N":
        number_digits(av["N"])
        return av["N"]
    raise Misfit(
        f"{tag} value {shown(av[tag])} does not fit {column.type_label} column {column.name!r}"
    )


def json_value(av: Any) -> str:
    """A JSON column's text: NULL is JSON ``null`` (SQL NULL means the attribute is missing)."""
    return json_text(av)


def list_length(av: Any) -> str | None:
    """A list-length column's text: the element count of a list or set, else NULL."""
    for tag, value in av.items():
        if tag in LIST_TAGS:
            return INDEX_TEXT[len(value)] if len(value) < len(INDEX_TEXT) else str(len(value))
    return None


def map_slow(av: Any) -> None:
    tag = tag_of(av)
    if tag != "NULL":
        raise Misfit(f"{tag} value where the data-schema has a map")


def extra_attributes(attrs: dict[str, Spec], m: Mapping[str, Any]) -> None:
    """An attribute the data-schema does not know is a misfit, even NULL or an empty map:
    the widened data-schema gives it a column that keeps it apart from a missing one."""
    for name, av in m.items():
        if name not in attrs:
            carries_data(av)  # a malformed value is a bad item, not a misfit
            raise Misfit("is not in the data-schema", (name,))


# The interpreter.


def _fill(attrs: dict[str, Spec], m: Mapping[str, Any], row: list[Any], pending: list) -> None:
    name = ""
    try:
        for name, av in m.items():
            spec = attrs.get(name)
            if spec is None:
                carries_data(av)  # a malformed value is a bad item, not a misfit
                raise Misfit("is not in the data-schema")
            _put(spec, av, row, pending)
    except Misfit as e:
        e.path = (name, *e.path)
        raise


def _put(spec: Spec, av: Any, row: list[Any], pending: list) -> None:
    op, i, tag, arg, col = spec
    if op == OP_VALUE:
        v = av.get(tag) if tag is not None else None
        if v is None:
            row[i] = value_slow(col, av)
        else:
            row[i] = v if arg is None else arg(v)
        return
    if op == OP_LIST:
        if i >= 0:
            row[i] = list_length(av)
        pending.append((arg, av))
        return
    v = av.get(tag)
    if v is None:
        map_slow(av)
    else:
        _fill(arg, v, row, pending)


def interpreted_rows(plan: Plan, attrs: dict[str, Spec]) -> Callable[..., Any]:
    """``rows(item) -> (main row, pending lists)``: the interpreter, also used to diagnose."""
    width = plan.width

    def rows(item: Mapping[str, Any]) -> tuple[Row, list]:
        row: list[Any] = [None] * width
        pending: list = []
        _fill(attrs, item, row, pending)
        return tuple(row), pending

    return rows


def interpreted_main(plan: Plan) -> Callable[..., Any]:
    rows = plan.interp
    key_width = plan.key_width

    def fill(item: Mapping[str, Any]) -> None:
        row, pending = rows(item)
        if None in row[:key_width]:
            missing_key(item)
        if pending:
            key = row[:key_width]
            lengths = [len(p.out) for p in plan.descendants]
            try:
                for child, av in pending:
                    child.emit(av, key)
            except BaseException:
                truncate_rows(plan.descendants, lengths)
                raise
        plan.out.append(row)

    return fill


def interpreted_element(plan: Plan) -> Callable[..., Any]:
    width = plan.width
    key_width = plan.key_width
    spec = plan.elem

    def fill(av: Any, key: Row, idx: str) -> tuple[Row, list]:
        row: list[Any] = [None] * width
        row[: key_width - 1] = key
        row[key_width - 1] = idx
        pending: list = []
        _put(spec, av, row, pending)
        return tuple(row), pending

    return fill


def truncate_rows(plans: list[Plan], lengths: list[int]) -> None:
    for plan, length in zip(plans, lengths, strict=True):
        del plan.out[length:]


def missing_key(item: Any) -> None:
    raise ValueError("item lacks its key attributes (or one is NULL)")


SET_ELEMENT_TAG = {"SS": "S", "NS": "N", "BS": "B"}
_NO_ENCODER: Any = object()


def set_values(tag: str, values: Any) -> list[Any]:
    if tag == "SS":
        return sorted(values)
    if tag == "NS":
        return sorted_numbers(values)
    return sorted(values, key=bytes_of)


def emit_children(plan: Plan, av: Any, parent_key: Row, diagnose: bool = False) -> None:
    """Append the rows of one list or set value (and of lists nested in its elements);
    ``diagnose`` uses the interpreter (see :func:`diagnose`)."""
    if type(av) is not dict or len(av) != 1:
        raise ValueError(f"expected a one-key DynamoDB attribute value, got {shown(av)}")
    ((tag, value),) = av.items()
    if tag not in LIST_TAGS:
        if tag == "NULL" or (tag == "M" and not value):
            return
        raise Misfit(f"{tag} value where the data-schema has a list or set", plan.list_path)
    scalar = plan.scalar
    if tag != "L":
        element_tag = SET_ELEMENT_TAG[tag]
        values = set_values(tag, value)
        if scalar is not None and element_tag in scalar:
            _emit_set(plan, values, scalar[element_tag], parent_key)
            return
        value = [{element_tag: v} for v in values]
    if scalar is not None:
        _emit_scalar_elements(plan, value, parent_key, diagnose)
    else:
        _emit_elements(plan, value, parent_key, diagnose)


def _emit_set(
    plan: Plan, values: list[Any], encode: Callable[[Any], str] | None, parent_key: Row
) -> None:
    """Rows of a sorted set whose element type fits the scalar element column."""
    append = plan.out.append
    idx = 0
    try:
        for idx, v in enumerate(values):
            append(
                (
                    *parent_key,
                    INDEX_TEXT[idx] if idx < 4096 else str(idx),
                    v if encode is None else encode(v),
                )
            )
    except Misfit as e:
        _locate(e, plan, idx)
        raise


def _emit_scalar_elements(plan: Plan, value: Any, parent_key: Row, diagnose: bool) -> None:
    """Rows of a list into a scalar element column: fitting elements encoded here, the rest
    through the element ``fill``."""
    append = plan.out.append
    scalar = plan.scalar
    assert scalar is not None
    fill = plan.interp if diagnose else plan.fill
    idx = 0
    try:
        for idx, element in enumerate(value):
            index = INDEX_TEXT[idx] if idx < 4096 else str(idx)
            if type(element) is dict and len(element) == 1:
                ((element_tag, v),) = element.items()
                encode = scalar.get(element_tag, _NO_ENCODER)
                if encode is not _NO_ENCODER:
                    append((*parent_key, index, v if encode is None else encode(v)))
                    continue
            append(fill(element, parent_key, index)[0])
    except Misfit as e:
        _locate(e, plan, idx)
        raise


def _emit_elements(plan: Plan, value: Any, parent_key: Row, diagnose: bool) -> None:
    """Rows of a list of map or list elements, and the rows of lists nested in them."""
    append = plan.out.append
    fill = plan.interp if diagnose else plan.fill
    key_width = plan.key_width
    idx = 0
    try:
        for idx, element in enumerate(value):
            row, pending = fill(element, parent_key, INDEX_TEXT[idx] if idx < 4096 else str(idx))
            append(row)
            if pending:
                key = row[:key_width]
                for child, child_av in pending:
                    if diagnose:
                        emit_children(child, child_av, key, diagnose)
                    else:
                        child.emit(child_av, key)
    except Misfit as e:
        _locate(e, plan, idx)
        raise


def _locate(error: Misfit, plan: Plan, idx: int) -> None:
    """Prefix ``error``'s path with the list's path in its element and the element index."""
    error.path = (*plan.list_path, f"[{idx}]", *error.path)


def canonical_item(value: Any) -> Any:
    """A copy of an item or wire value with map keys sorted at every level."""
    if type(value) is not dict:
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "M" and type(inner) is dict:
            return {"M": {k: canonical_item(inner[k]) for k in sorted(inner)}}
        if tag == "L" and type(inner) is list:
            return {"L": [canonical_item(e) for e in inner]}
        if tag in LIST_TAGS or tag in ("S", "N", "B", "BOOL", "NULL"):
            return value
    return {k: canonical_item(value[k]) for k in sorted(value)}


def interpreted_emitter(plan: Plan) -> Callable[[Any, Row], None]:
    def emit(av: Any, key: Row) -> None:
        emit_children(plan, av, key)

    return emit


def diagnose(plan: Plan, item: Mapping[str, Any]) -> Misfit | None:
    """The first misfit of ``item`` in a canonical order (attributes sorted at every level,
    the item before its lists), the same whichever engine found a misfit."""
    lengths = [len(p.out) for p in plan.descendants]
    try:
        row, pending = plan.interp(canonical_item(item))
        key = row[: plan.key_width]
        for child, child_av in pending or ():
            emit_children(child, child_av, key, diagnose=True)
    except Misfit as e:
        return e
    finally:
        truncate_rows(plan.descendants, lengths)
    return None
