"""DynamoDB items -> warehouse rows, exactly as a cached data-schema set describes them.

Items are boto3 low-level wire values (``{"attr": {"N": "1.5"}}``); ``B`` may be bytes (what
botocore returns) or base64 text (the raw wire JSON). Each item yields one row of its entity's
main table and, per list or set attribute, one row per element in the child table (parent key
columns, 0-based element index, element columns). Rows are tuples of ``str | None`` in column
order, ready for :mod:`etl_platform.core.csv_encoding` and a ``COPY`` with explicit columns:

* DECIMAL: the number's positional text (``1E+2`` -> ``100``, ``1E-130`` -> ``0.00...01``),
  digit for digit what PostgreSQL ``numeric`` parses back to the same value; BIGINT likewise.
* TEXT: the string untouched (newlines, quotes, backslashes, ``nan``, ``NULL``, ``""``, any
  length); a number in a TEXT column (number vs string widening) is its original text.
* TIMESTAMPTZ: the original string (validated strict ISO-8601 with offset).
* BINARY: PostgreSQL hex ``bytea`` text ``\\x0a1b...``. BOOLEAN: ``true`` / ``false``.
* JSON: compact JSON, map keys sorted, numbers exactly as DynamoDB holds them (never a float),
  sets sorted, binaries as base64 strings.
* NULL (and a missing attribute): ``None``.

Nothing is dropped or coerced silently. An attribute the data-schema does not know, a value
whose type does not fit its column (a string in a BIGINT column, more digits than the DECIMAL
precision, a map where a scalar was seen, an entity type not seen before) makes the item
*unfit*: policy ``fail`` raises :class:`DataSchemaMismatch` naming the item key and attribute
path; policy ``evolve`` leaves the item's rows out and reports it in ``TransformBatch.unfit``,
so the caller can widen the data-schema (:meth:`ItemTransformer.evolved_schema_set`) and
re-run. ``NULL``, an empty map and a map of only NULLs flatten to nothing, so they fit any
column (a JSON column keeps a map as written) and an unknown attribute holding one is no loss.

Speed: the per-table code is generated once per data-schema set (``ItemTransformer``); raw
pages parsed item by item with :func:`iter_wire_items` avoid ``json.loads``'s page-wide
garbage-collector churn. See ``benchmarks/dynamo_transform.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from json.encoder import encode_basestring
from typing import IO, Any

from .csv_encoding import CsvGzipWriter
from .dynamo_schema import (
    TIMESTAMP_PATTERN,
    ColumnRole,
    DataColumn,
    DataSchemaSet,
    DataTable,
    SchemaObservations,
    carries_data,
    entity_of,
    evolve_schema_set,
    is_strict_timestamp,
    number_digits,
)
from .table_spec import ColumnKind

__all__ = [
    "DataSchemaMismatch",
    "ItemTransformer",
    "TransformBatch",
    "UnfitItem",
    "UnfitPolicy",
    "csv_plain_columns",
    "decimal_text",
    "iter_wire_items",
    "json_text",
    "open_csv_writer",
    "transform_items",
]

Row = tuple[str | None, ...]

_OP_VALUE, _OP_MAP, _OP_LIST = 0, 1, 2
_LIST_TAGS = ("L", "SS", "NS", "BS")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class UnfitPolicy(StrEnum):
    FAIL = "fail"
    EVOLVE = "evolve"


class _Unfit(Exception):
    """Internal: the value at ``path`` does not fit the data-schema."""

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


@dataclass
class TransformBatch:
    """Rows per table name (every table of the set, possibly empty) for a batch of items."""

    rows: dict[str, list[Row]]
    items: int = 0
    unfit: list[UnfitItem] = field(default_factory=list)

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()}


# --------------------------------------------------------------------------------------------
# Value encoders


def decimal_text(value: str) -> str:
    """Positional text of a DynamoDB number (no exponent), exactly the same value."""
    number_digits(value)
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return format(Decimal(value), "f")


def _bigint(value: str) -> str:
    body = value[1:] if value[:1] == "-" else value
    if len(body) < 19 and body.isdigit() and body.isascii():
        return value
    int_digits, scale, fits = number_digits(value)
    if not fits:
        raise _Unfit(f"number {_clip(value)} does not fit a BIGINT column")
    return str(int(Decimal(value)))


def _decimal(precision: int, scale: int) -> Callable[[str], str]:
    int_max = precision - scale

    def encode(value: str) -> str:
        ip, _, fp = value.partition(".")
        if ip[:1] == "-":
            ip = ip[1:]
        if ip.isdigit() and value.isascii() and (not fp or fp.isdigit()):
            if len(fp) <= scale and len(ip.lstrip("0")) <= int_max:
                return value
        else:
            int_digits, value_scale, _ = number_digits(value)
            if value_scale <= scale and int_digits <= int_max:
                return decimal_text(value)
        raise _Unfit(f"number {_clip(value)} does not fit DECIMAL({precision},{scale})")

    return encode


def _memoized(encode: Callable[[str], str], limit: int = 4096) -> Callable[[str], str]:
    """``encode`` remembering up to ``limit`` results (numbers repeat: amounts, scores)."""
    cache: dict[str, str] = {}
    get = cache.get

    def memo(value: str) -> str:
        out = get(value)
        if out is None:
            out = encode(value)
            if len(cache) < limit:
                cache[value] = out
        return out

    return memo


def _timestamp(value: str) -> str:
    if type(value) is str and is_strict_timestamp(value):
        return value
    raise _Unfit(f"string {_clip(value)} is not a strict ISO-8601 timestamp with offset")


def _boolean(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise ValueError(f"BOOL value {_clip(value)} is not a boolean")


def _bytes_of(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"B value {_clip(value)} is not base64") from None
    raise ValueError(f"B value {_clip(value)} is neither bytes nor base64 text")


def _binary(value: Any) -> str:
    if type(value) is bytes:
        return "\\x" + value.hex()
    return "\\x" + _bytes_of(value).hex()


def _json_number(value: str) -> str:
    if type(value) is str and _JSON_NUMBER.fullmatch(value):
        return value
    return decimal_text(value)


def _b64(value: Any) -> str:
    return '"' + base64.b64encode(_bytes_of(value)).decode() + '"'


def _json_set(tag: str, values: Any) -> str:
    if tag == "SS":
        parts = [encode_basestring(v) for v in sorted(values)]
    elif tag == "NS":
        parts = [_json_number(v) for v in _sorted_numbers(values)]
    else:
        parts = [_b64(v) for v in sorted(values, key=_bytes_of)]
    return "[" + ",".join(parts) + "]"


def _decimal_key(value: str) -> Decimal:
    number_digits(value)
    return Decimal(value)


def _sorted_numbers(values: Iterable[str]) -> list[str]:
    """Number strings in numeric order (integers compare as int, the rest as Decimal)."""
    try:
        return sorted(values, key=int)
    except ValueError:
        return sorted(values, key=_decimal_key)


def _number_text(value: str) -> str:
    number_digits(value)
    return value


def _scalar_encoders(spec: Spec) -> dict[str, Callable[[Any], str] | None] | None:
    """For a scalar element column: the type tags that fit it and their encoders."""
    op, _, tag, encoder, column = spec
    if op != _OP_VALUE:
        return None
    if column.kind is ColumnKind.JSON:
        return {"S": encode_basestring, "N": _json_number, "B": _b64, "BOOL": _boolean}
    if column.kind is ColumnKind.TEXT:
        return {"S": None, "N": _number_text}
    assert tag is not None
    return {tag: encoder}


def json_text(av: Mapping[str, Any]) -> str:
    """Compact JSON of one wire value: numbers exact, map keys and sets sorted."""
    for tag, v in av.items():
        if tag == "S":
            return encode_basestring(v)
        if tag == "N":
            return _json_number(v)
        if tag == "M":
            return (
                "{"
                + ",".join(encode_basestring(k) + ":" + json_text(v[k]) for k in sorted(v))
                + "}"
            )
        if tag == "L":
            return "[" + ",".join([json_text(e) for e in v]) + "]"
        if tag == "BOOL":
            return _boolean(v)
        if tag == "NULL":
            return "null"
        if tag == "B":
            return _b64(v)
        if tag in ("SS", "NS", "BS"):
            return _json_set(tag, v)
        raise ValueError(f"unknown DynamoDB type {tag!r}")
    raise ValueError("empty DynamoDB attribute value {}")


def _clip(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tag_of(av: Any) -> str:
    if type(av) is not dict or len(av) != 1:
        raise ValueError(f"expected a one-key DynamoDB attribute value, got {_clip(av)}")
    return next(iter(av))


# --------------------------------------------------------------------------------------------
# Plans. A table's attributes form a tree of spec tuples ``(op, index, tag, arg, column)``:
# op VALUE: column ``index``, ``tag`` the usual type tag, ``arg`` its encoder (None = the value
# as is, tag None = JSON); op MAP: ``arg`` is the nested attrs dict; op LIST: ``arg`` is the
# child table's plan. Per table the transformer generates straight-line Python (one dict probe
# per known attribute, a local per column, common encodings inline): a main table's
# ``fill(item)`` appends the item's rows to its table and its child tables; a child table's
# ``fill(element, parent key, index)`` returns the element's row and ``emit(value, parent
# key)`` appends a list's rows. Tables with very many attributes use the interpreter instead.
# A misfit raises ``_Unfit``; the transformer then re-runs the item through the interpreter
# (``_diagnose``) to name the first offending path in a canonical order.

Spec = tuple[int, int, str | None, Any, Any]
_CODEGEN_MAX_ATTRIBUTES = 96
_INDEX_TEXT = tuple(str(i) for i in range(4096))


class _Plan:
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
        self.elem: Spec = (_OP_MAP, -1, "M", {}, None)
        self.fill: Callable[..., tuple[Row, list | None]] = _unset_fill
        self.interp: Callable[..., tuple[Row, list | None]] = _unset_fill
        self.emit: Callable[[Any, Row], None] = _unset_fill
        self.descendants: list[_Plan] = []
        self.subtree: list[_Plan] = [self]
        # For scalar elements: type tag -> encoder (None = as is) of the tags that fit.
        self.scalar: dict[str, Callable[[Any], str] | None] | None = None


def _unset_fill(*args: Any) -> tuple[Row, list | None]:
    raise AssertionError("plan not compiled")


def _value_spec(column: DataColumn, index: int) -> Spec:
    kind = column.kind
    if kind is ColumnKind.TEXT:
        return (_OP_VALUE, index, "S", None, column)
    if kind is ColumnKind.BIGINT:
        return (_OP_VALUE, index, "N", _bigint, column)
    if kind is ColumnKind.DECIMAL:
        assert column.precision is not None and column.scale is not None
        encoder = _memoized(_decimal(column.precision, column.scale))
        return (_OP_VALUE, index, "N", encoder, column)
    if kind is ColumnKind.TIMESTAMPTZ:
        return (_OP_VALUE, index, "S", _timestamp, column)
    if kind is ColumnKind.BOOLEAN:
        return (_OP_VALUE, index, "BOOL", _boolean, column)
    if kind is ColumnKind.BINARY:
        return (_OP_VALUE, index, "B", _binary, column)
    return (_OP_VALUE, index, None, None, column)


def _place(attrs: dict[str, Spec], path: tuple[str, ...], spec: Spec) -> None:
    """Put ``spec`` at ``path`` in a nested attrs dict, creating map specs on the way."""
    for part in path[:-1]:
        existing = attrs.get(part)
        if existing is None:
            nested: dict[str, Spec] = {}
            attrs[part] = (_OP_MAP, -1, "M", nested, None)
            attrs = nested
        elif existing[0] == _OP_MAP:
            attrs = existing[3]
        else:
            raise ValueError(f"data-schema path {path} crosses a non-map attribute")
    if path[-1] in attrs:
        raise ValueError(f"data-schema maps attribute path {path} twice")
    attrs[path[-1]] = spec


def _count_attributes(attrs: dict[str, Spec]) -> int:
    return sum(1 + (_count_attributes(s[3]) if s[0] == _OP_MAP else 0) for s in attrs.values())


# Slow paths shared by both fill flavours (paths relative to the value they get).


def _value_slow(column: DataColumn, av: Any) -> str | None:
    tag = _tag_of(av)
    if tag == "NULL":
        return None
    kind = column.kind
    if kind is ColumnKind.JSON:
        return json_text(av)
    if tag == "M" and not carries_data(av):
        return None
    if kind is ColumnKind.TEXT and tag == "N":
        number_digits(av["N"])
        return av["N"]
    raise _Unfit(
        f"{tag} value {_clip(av[tag])} does not fit {column.type_label} column {column.name!r}"
    )


def _json_value(av: Any) -> str | None:
    return None if "NULL" in av else json_text(av)


def _map_slow(av: Any) -> None:
    tag = _tag_of(av)
    if tag != "NULL":
        raise _Unfit(f"{tag} value where the data-schema has a map")


def _extra(attrs: dict[str, Spec], m: Mapping[str, Any]) -> None:
    for name, av in m.items():
        if name not in attrs and carries_data(av):
            raise _Unfit("is not in the data-schema", (name,))


# The interpreter.


def _fill(attrs: dict[str, Spec], m: Mapping[str, Any], row: list[Any], pending: list) -> None:
    name = ""
    try:
        for name, av in m.items():
            spec = attrs.get(name)
            if spec is None:
                if "NULL" in av or not carries_data(av):
                    continue
                raise _Unfit("is not in the data-schema")
            _put(spec, av, row, pending)
    except _Unfit as e:
        e.path = (name, *e.path)
        raise


def _put(spec: Spec, av: Any, row: list[Any], pending: list) -> None:
    op, i, tag, arg, col = spec
    if op == _OP_VALUE:
        v = av.get(tag) if tag is not None else None
        if v is None:
            row[i] = _value_slow(col, av)
        else:
            row[i] = v if arg is None else arg(v)
        return
    if op == _OP_LIST:
        pending.append((arg, av))
        return
    v = av.get(tag)
    if v is None:
        _map_slow(av)
    else:
        _fill(arg, v, row, pending)


def _interpreted_rows(plan: _Plan, attrs: dict[str, Spec]) -> Callable[..., Any]:
    """``rows(item) -> (main row, pending lists)``: the interpreter, also used to diagnose."""
    width = plan.width

    def rows(item: Mapping[str, Any]) -> tuple[Row, list]:
        row: list[Any] = [None] * width
        pending: list = []
        _fill(attrs, item, row, pending)
        return tuple(row), pending

    return rows


def _interpreted_main(plan: _Plan) -> Callable[..., Any]:
    rows = plan.interp
    key_width = plan.key_width

    def fill(item: Mapping[str, Any]) -> None:
        row, pending = rows(item)
        if None in row[:key_width]:
            _missing_key(item)
        if pending:
            key = row[:key_width]
            lengths = [len(p.out) for p in plan.descendants]
            try:
                for child, av in pending:
                    child.emit(av, key)
            except BaseException:
                _truncate(plan.descendants, lengths)
                raise
        plan.out.append(row)

    return fill


def _interpreted_element(plan: _Plan) -> Callable[..., Any]:
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


# The code generator.


class _CodeGen:
    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "_Unfit": _Unfit,
            "_value_slow": _value_slow,
            "_json_value": _json_value,
            "_map_slow": _map_slow,
            "_extra": _extra,
        }
        self.lines: list[str] = []
        self.uses_lists = False
        # Main tables keep each list value in its own local (``l0``...) instead of ``pending``.
        self.list_locals: list[tuple[str, str]] | None = None
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
        if op == _OP_VALUE:
            if tag is None:
                self.emit(indent, f"c{i} = _json_value(av)")
                return
            self.emit(indent, f"v = av.get({tag!r})")
            self.emit(indent, "if v is not None:")
            self.emit(indent + 1, f"c{i} = {self.encoding(col.kind, arg, col)}")
            self.emit(indent, "elif 'NULL' not in av:")
            self.emit(indent + 1, f"c{i} = _value_slow({self.const(col)}, av)")
        elif op == _OP_MAP:
            m = f"m{depth + 1}"
            self.emit(indent, f"{m} = av.get('M')")
            self.emit(indent, f"if {m} is not None:")
            self.level(arg, m, path, depth + 1, indent + 1)
            self.emit(indent, "else:")
            self.emit(indent + 1, "_map_slow(av)")
        elif self.list_locals is not None:
            name = f"l{len(self.list_locals)}"
            self.list_locals.append((name, self.const(arg)))
            self.emit(indent, f"{name} = av")
        else:
            self.uses_lists = True
            self.emit(indent, f"pending.append(({self.const(arg)}, av))")

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
        if op == _OP_LIST or tag is None or self.steady is None:
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
            elif op == _OP_VALUE and arg is None:
                self.emit(indent, f"c{i} = {source}[{name!r}][{tag!r}]")
            elif op == _OP_VALUE:
                self.emit(indent, f"v = {source}[{name!r}][{tag!r}]")
                self.emit(indent, f"c{i} = {self.encoding(col.kind, arg, col)}")
            else:
                m = f"m{depth + 1}"
                self.emit(indent, f"{m} = {source}[{name!r}]['M']")
                self.fast_level(arg, m, here, depth + 1, indent)
        self.emit(indent, f"if {count} != len({source}):")
        self.emit(indent + 1, f"_extra({self.const(attrs)}, {source})")

    def function(self, header: str, body: Callable[[], None], width: int, first: int) -> None:
        """``header``, the column locals, then ``body``. A misfit raises ``_Unfit`` without a
        path: the transformer re-runs the item through the interpreter to name it."""
        outer, self.lines = self.lines, []
        body()
        inner, self.lines = self.lines, outer
        self.emit(0, header)
        columns = [f"c{i}" for i in range(first, width)]
        columns += [name for name, _ in self.list_locals or ()]
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


def _generated_main(
    plan: _Plan, attrs: dict[str, Spec], observations: SchemaObservations
) -> Callable[..., Any]:
    """``fill(item)``: appends the item's row to the main table and its lists' rows to the
    child tables (children first: a misfit leaves no main row behind).

    Attributes that every observed item had with one type are read straight
    (``item["a"]["S"]``); an item that lacks one or has it otherwise falls back (``KeyError``)
    to the general code, which probes every attribute."""
    gen = _CodeGen()
    gen.list_locals = []
    gen.function("def fill(item):", lambda: gen.level(attrs, "item", (), 0, 1), plan.width, 0)
    _main_tail(gen, plan)
    general = gen.compile(plan.table.name)

    fast = _CodeGen()
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


def _main_tail(gen: _CodeGen, plan: _Plan) -> None:
    """The end of a main ``fill``: key check, list rows, then the main row."""
    gen.namespace["_missing_key"] = _missing_key
    gen.namespace["_truncate"] = _truncate
    keys = [f"c{i}" for i in range(plan.key_width)]
    gen.emit(1, f"if {' or '.join(f'{k} is None' for k in keys)}:")
    gen.emit(2, "_missing_key(item)")
    assert gen.list_locals is not None
    if gen.list_locals:
        # A misfit in a list removes the rows its item already added (lengths are taken per
        # present list, so fitting items pay little).
        gen.emit(1, f"key = ({', '.join(keys)},)")
        for n, (name, child) in enumerate(gen.list_locals):
            subtree = gen.namespace[child].subtree
            gen.emit(1, f"if {name} is not None:")
            if len(subtree) == 1:
                gen.emit(2, f"s{n} = len({child}.out)")
            else:
                gen.emit(2, f"s{n} = [len(p.out) for p in {gen.const(subtree)}]")
        gen.emit(1, "try:")
        for name, child in gen.list_locals:
            gen.emit(2, f"if {name} is not None:")
            _list_code(gen, gen.namespace[child], name, "key", 3)
        gen.emit(1, "except BaseException:")
        for n, (name, child) in enumerate(gen.list_locals):
            subtree = gen.namespace[child].subtree
            gen.emit(2, f"if {name} is not None:")
            if len(subtree) == 1:
                gen.emit(3, f"del {child}.out[s{n}:]")
            else:
                gen.emit(3, f"_truncate({gen.const(subtree)}, s{n})")
        gen.emit(2, "raise")
    columns = ", ".join(f"c{i}" for i in range(plan.width))
    gen.emit(1, f"{gen.const(plan)}.out.append(({columns},))")


def _truncate(plans: list[_Plan], lengths: list[int]) -> None:
    for plan, length in zip(plans, lengths, strict=True):
        del plan.out[length:]


def _missing_key(item: Any) -> None:
    raise ValueError("item lacks its key attributes (or one is NULL)")


def _generated_element(plan: _Plan) -> Callable[..., Any]:
    gen = _CodeGen()
    first = plan.key_width
    gen.function(
        "def fill(av, key, idx):", lambda: gen.value(plan.elem, (), 0, 1), plan.width, first
    )
    values = "".join(f", c{i}" for i in range(first, plan.width))
    gen.emit(1, f"return key + (idx{values},), {'pending' if gen.uses_lists else 'None'}")
    return gen.compile(plan.table.name)


_SET_ELEMENT_TAG = {"SS": "S", "NS": "N", "BS": "B"}
_NO_ENCODER: Any = object()


def _set_values(tag: str, values: Any) -> list[Any]:
    if tag == "SS":
        return sorted(values)
    if tag == "NS":
        return _sorted_numbers(values)
    return sorted(values, key=_bytes_of)


def _emit_children(plan: _Plan, av: Any, parent_key: Row, diagnose: bool = False) -> None:
    """Append the rows of one list or set value (and of lists nested in its elements);
    ``diagnose`` uses the interpreter (see ``ItemTransformer._diagnose``)."""
    if type(av) is not dict or len(av) != 1:
        raise ValueError(f"expected a one-key DynamoDB attribute value, got {_clip(av)}")
    ((tag, value),) = av.items()
    if tag not in _LIST_TAGS:
        if not carries_data(av):
            return
        raise _Unfit(f"{tag} value where the data-schema has a list or set", plan.list_path)
    append = plan.out.append
    scalar = plan.scalar
    idx = 0
    try:
        if tag != "L":
            element_tag = _SET_ELEMENT_TAG[tag]
            values = _set_values(tag, value)
            if scalar is not None and element_tag in scalar:
                encode = scalar[element_tag]
                for idx, v in enumerate(values):
                    append(
                        (
                            *parent_key,
                            _INDEX_TEXT[idx] if idx < 4096 else str(idx),
                            v if encode is None else encode(v),
                        )
                    )
                return
            value = [{element_tag: v} for v in values]
        fill = plan.interp if diagnose else plan.fill
        if scalar is not None:
            for idx, element in enumerate(value):
                index = _INDEX_TEXT[idx] if idx < 4096 else str(idx)
                if type(element) is dict and len(element) == 1:
                    ((element_tag, v),) = element.items()
                    encode = scalar.get(element_tag, _NO_ENCODER)
                    if encode is not _NO_ENCODER:
                        append((*parent_key, index, v if encode is None else encode(v)))
                        continue
                append(fill(element, parent_key, index)[0])
            return
        key_width = plan.key_width
        for idx, element in enumerate(value):
            row, pending = fill(element, parent_key, _INDEX_TEXT[idx] if idx < 4096 else str(idx))
            append(row)
            if pending:
                key = row[:key_width]
                for child, child_av in pending:
                    if diagnose:
                        _emit_children(child, child_av, key, diagnose)
                    else:
                        child.emit(child_av, key)
    except _Unfit as e:
        e.path = (*plan.list_path, f"[{idx}]", *e.path)
        raise


def _canonical(value: Any) -> Any:
    """A copy of an item or wire value with map keys sorted at every level."""
    if type(value) is not dict:
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "M" and type(inner) is dict:
            return {"M": {k: _canonical(inner[k]) for k in sorted(inner)}}
        if tag == "L" and type(inner) is list:
            return {"L": [_canonical(e) for e in inner]}
        if tag in _LIST_TAGS or tag in ("S", "N", "B", "BOOL", "NULL"):
            return value
    return {k: _canonical(value[k]) for k in sorted(value)}


def _interpreted_emitter(plan: _Plan) -> Callable[[Any, Row], None]:
    def emit(av: Any, key: Row) -> None:
        _emit_children(plan, av, key)

    return emit


_SET_SORT = {"SS": sorted, "NS": _sorted_numbers, "BS": lambda v: sorted(v, key=_bytes_of)}


def _list_code(gen: _CodeGen, plan: _Plan, av: str, key: str, indent: int) -> None:
    """Code appending the rows of the list or set value in local ``av`` to ``plan``'s table:
    sets and lists of the expected element type in a tight loop (element values encoded
    inline), anything unusual (NULL, other element types, misfits, very long lists) through
    ``_emit_children``."""
    this = gen.const(plan)
    fill = gen.const(plan.fill)
    limit = len(_INDEX_TEXT)
    gen.namespace["IDX"] = _INDEX_TEXT
    _, _, tag, encoder, column = plan.elem
    branches: list[tuple[str, Callable[[int], None]]] = []
    if plan.scalar is not None:
        for set_tag, element_tag in _SET_ELEMENT_TAG.items():
            if element_tag not in plan.scalar:
                continue
            if element_tag == tag:
                expression = gen.encoding(column.kind, encoder, column)
            else:
                other = plan.scalar[element_tag]
                expression = "v" if other is None else f"{gen.const(other)}(v)"

            def set_loop(at: int, set_tag: str = set_tag, expression: str = expression) -> None:
                gen.emit(at, f"append = {this}.out.append")
                gen.emit(at, "i = 0")
                if set_tag == "NS":
                    gen.emit(at, "if len(values) > 1:")
                    gen.emit(at + 1, "try:")
                    gen.emit(at + 2, "values = sorted(values, key=int)")
                    gen.emit(at + 1, "except ValueError:")
                    gen.emit(at + 2, f"values = {gen.const(_sorted_numbers)}(values)")
                    gen.emit(at, "for v in values:")
                else:
                    order = gen.const(_SET_SORT[set_tag])
                    gen.emit(at, f"for v in (values if len(values) < 2 else {order}(values)):")
                gen.emit(at + 1, f"append({key} + (IDX[i], {expression}))")
                gen.emit(at + 1, "i += 1")

            branches.append((set_tag, set_loop))

    def list_loop(at: int) -> None:
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

    branches.append(("L", list_loop))
    for list_tag, body in branches:
        gen.emit(indent, f"values = {av}.get({list_tag!r})")
        gen.emit(indent, f"if values is not None and len(values) <= {limit}:")
        body(indent + 1)
        gen.emit(indent, "else:")
        indent += 1
    gen.emit(indent, f"{gen.const(_emit_children)}({this}, {av}, {key})")


def _generated_emitter(plan: _Plan) -> Callable[[Any, Row], None]:
    """``emit(av, parent_key)``: the rows of one list or set value into ``plan``'s table."""
    gen = _CodeGen()
    gen.emit(0, "def fill(av, key):")
    _list_code(gen, plan, "av", "key", 1)
    return gen.compile(f"{plan.table.name} rows")


# --------------------------------------------------------------------------------------------


class ItemTransformer:
    """A data-schema set compiled for fast transformation of many batches of items (compile
    once per segment, call :meth:`transform` per page; one instance per thread).

    ``generate_code=False`` uses the interpreter everywhere (same results, slower; the tests
    compare both)."""

    def __init__(
        self,
        schema_set: DataSchemaSet,
        *,
        on_unfit: UnfitPolicy | str = UnfitPolicy.FAIL,
        generate_code: bool = True,
    ) -> None:
        self.schema_set = schema_set
        self.on_unfit = UnfitPolicy(on_unfit)
        config = schema_set.config
        self._rule = config.entity_rule
        self._key_attributes = config.key_attributes
        self._plans: dict[str, _Plan] = {}
        self._mains: dict[str | None, _Plan] = {}
        self._compile(generate_code)

    @property
    def tables(self) -> tuple[DataTable, ...]:
        return self.schema_set.tables

    def _compile(self, generate_code: bool) -> None:
        tables = {t.name: t for t in self.schema_set.tables}
        plans = self._plans
        main_attrs: dict[str, dict[str, Spec]] = {}
        for name in sorted(tables, key=lambda n: (len(tables[n].list_path), n)):
            table = tables[name]
            plan = plans[name] = _Plan(table)
            attrs: dict[str, Spec] = {}
            for index, column in enumerate(table.columns):
                if column.role is ColumnRole.KEY or (
                    column.role is ColumnRole.VALUE and column.path
                ):
                    _place(attrs, column.path, _value_spec(column, index))
                elif column.role is ColumnRole.VALUE:
                    plan.elem = _value_spec(column, index)
            if table.parent is None:
                if table.entity in self._mains:
                    raise ValueError(f"entity {table.entity!r} has two main tables")
                self._mains[table.entity] = plan
                main_attrs[name] = attrs
                continue
            if attrs:
                plan.elem = (_OP_MAP, -1, "M", attrs, None)
            parent = plans.get(table.parent or "")
            if parent is None:
                raise ValueError(f"child table {name!r} has no parent table {table.parent!r}")
            list_spec: Spec = (_OP_LIST, -1, "L", plan, None)
            path = table.list_path[-1]
            if parent.table.parent is None:
                _place(main_attrs[parent.table.name], path, list_spec)
            elif path:
                if parent.elem[0] != _OP_MAP:
                    raise ValueError(f"child table {name!r}: parent elements are not maps")
                _place(parent.elem[3], path, list_spec)
            else:
                parent.elem = list_spec
        for plan in plans.values():
            if plan.table.parent is not None:
                plan.scalar = _scalar_encoders(plan.elem)
        for plan in plans.values():
            if plan.table.parent is None:
                continue
            self._mains[plan.table.entity].descendants.append(plan)
            ancestor = plans.get(plan.table.parent or "")
            while ancestor is not None and ancestor.table.parent is not None:
                ancestor.subtree.append(plan)
                ancestor = plans.get(ancestor.table.parent or "")
            plan.interp = _interpreted_element(plan)
            elem_attrs = plan.elem[3] if plan.elem[0] == _OP_MAP else {}
            small = _count_attributes(elem_attrs) <= _CODEGEN_MAX_ATTRIBUTES
            plan.fill = _generated_element(plan) if generate_code and small else plan.interp
            plan.emit = _generated_emitter(plan) if generate_code else _interpreted_emitter(plan)
        for name, plan in plans.items():
            if plan.table.parent is None:
                attrs = main_attrs[name]
                plan.interp = _interpreted_rows(plan, attrs)
                small = _count_attributes(attrs) <= _CODEGEN_MAX_ATTRIBUTES
                plan.fill = (
                    _generated_main(plan, attrs, self.schema_set.observations)
                    if generate_code and small
                    else _interpreted_main(plan)
                )

    def transform(self, items: Iterable[Mapping[str, Any]]) -> TransformBatch:
        """Rows of ``items`` per table. Policy ``fail`` raises :class:`DataSchemaMismatch` at
        the first unfit item; policy ``evolve`` reports unfit items and leaves their rows out."""
        rows: dict[str, list[Row]] = {}
        for name, table_plan in self._plans.items():
            table_plan.out = rows[name] = []
        evolve = self.on_unfit is UnfitPolicy.EVOLVE
        rule = self._rule
        rule_attribute = rule.attribute if rule is not None else ""
        separator = rule.separator if rule is not None else ""
        mains = self._mains
        default_plan = mains.get(None)
        unfit: list[UnfitItem] = []
        count = 0
        for item in items:
            count += 1
            plan = default_plan
            if rule is not None:
                av = item.get(rule_attribute)
                if av is not None:
                    value = av.get("S")
                    if value is not None:
                        prefix, sep, _ = value.partition(separator)
                        if sep and prefix:
                            plan = mains.get(prefix)
            try:
                if plan is None:
                    raise _Unfit(f"entity {entity_of(item, rule)!r} is not in the data-schema")
                plan.fill(item)
            except _Unfit as e:
                if plan is not None:
                    e = self._diagnose(plan, item) or e
                problem = UnfitItem(
                    self._key_of(item),
                    e.path,
                    e.reason,
                    None if plan is None else plan.table.name,
                    item,
                )
                if not evolve:
                    raise DataSchemaMismatch(problem, self.schema_set.config.table) from None
                unfit.append(problem)
            except (ValueError, TypeError, AttributeError, KeyError, ArithmeticError) as e:
                key_text = ", ".join(f"{k}={v}" for k, v in self._key_of(item))
                raise ValueError(f"item {key_text or _clip(item)}: bad DynamoDB item: {e}") from e
        return TransformBatch(rows, count, unfit)

    @staticmethod
    def _diagnose(plan: _Plan, item: Mapping[str, Any]) -> _Unfit | None:
        """The first misfit of ``item`` in a canonical order (attributes sorted at every
        level, the item before its lists), the same whichever engine found a misfit."""
        lengths = [len(p.out) for p in plan.descendants]
        try:
            row, pending = plan.interp(_canonical(item))
            key = row[: plan.key_width]
            for child, child_av in pending or ():
                _emit_children(child, child_av, key, diagnose=True)
        except _Unfit as e:
            return e
        finally:
            _truncate(plan.descendants, lengths)
        return None

    def _key_of(self, item: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        out = []
        for attribute in self._key_attributes:
            av = item.get(attribute) if isinstance(item, Mapping) else None
            if isinstance(av, dict) and len(av) == 1:
                value = next(iter(av.values()))
                if isinstance(value, (bytes, bytearray)):
                    value = "0x" + bytes(value).hex()
                out.append((attribute, repr(value)))
            else:
                out.append((attribute, "<missing>"))
        return tuple(out)

    def evolved_schema_set(self, unfit: Iterable[UnfitItem]) -> DataSchemaSet:
        """This transformer's data-schema set widened to fit the ``unfit`` items (names kept)."""
        return evolve_schema_set(self.schema_set, (u.item for u in unfit))


_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def iter_wire_items(
    page: str | bytes, fields: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """The items of one raw DynamoDB Scan/Query response body (wire JSON), parsed one at a
    time: about twice as fast as ``json.loads`` of the whole page (less garbage-collector and
    cache churn) and the items can be transformed as they come. Other top-level fields
    (``Count``, ``LastEvaluatedKey``) go into ``fields`` when given (complete once the
    iterator is exhausted). ``B`` values stay base64 text, which the transform accepts."""
    text = page.decode("utf-8") if isinstance(page, (bytes, bytearray)) else page
    scan = _DECODER.scan_once
    skip = _WHITESPACE.match
    space = " \t\n\r"
    i = 0
    try:
        i = skip(text, 0).end()
        if text[i] != "{":
            raise ValueError(f"a DynamoDB page is a JSON object, got {text[i : i + 20]!r}")
        i = skip(text, i + 1).end()
        if text[i] == "}":
            return
        while True:
            key, i = scan(text, i)
            i = skip(text, i).end()
            if text[i] != ":":
                raise ValueError(f"expected ':' at offset {i}")
            i = skip(text, i + 1).end()
            if key == "Items":
                if text[i] != "[":
                    raise ValueError(f"'Items' is not a JSON array (offset {i})")
                i = skip(text, i + 1).end()
                if text[i] == "]":
                    i += 1
                else:
                    while True:
                        item, i = scan(text, i)
                        yield item
                        c = text[i]
                        if c in space:
                            i = skip(text, i).end()
                            c = text[i]
                        if c == ",":
                            i += 1
                            if text[i] in space:
                                i = skip(text, i).end()
                        elif c == "]":
                            i += 1
                            break
                        else:
                            raise ValueError(f"expected ',' or ']' at offset {i}")
            else:
                value, i = scan(text, i)
                if fields is not None:
                    fields[key] = value
            i = skip(text, i).end()
            if text[i] == ",":
                i = skip(text, i + 1).end()
            elif text[i] == "}":
                return
            else:
                raise ValueError(f"expected ',' or '}}' at offset {i}")
    except IndexError:
        raise ValueError("DynamoDB page JSON ends early (truncated body?)") from None
    except StopIteration:
        raise ValueError(f"DynamoDB page is not valid JSON at offset {i}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"DynamoDB page is not valid JSON: {e}") from None


_PLAIN_KINDS = frozenset(
    {
        ColumnKind.BIGINT,
        ColumnKind.DECIMAL,
        ColumnKind.BOOLEAN,
        ColumnKind.BINARY,
        ColumnKind.TIMESTAMPTZ,
    }
)


def csv_plain_columns(table: DataTable) -> tuple[bool, ...]:
    """Per column, whether its encoded values never need CSV quoting and are never empty
    (the ``plain`` argument of :class:`~etl_platform.core.csv_encoding.CsvGzipWriter`)."""
    return tuple(c.kind in _PLAIN_KINDS for c in table.columns)


def open_csv_writer(table: DataTable, fileobj: IO[bytes], **options: Any) -> CsvGzipWriter:
    """The platform CSV writer for ``table``'s rows (no header: ``COPY`` lists the columns);
    ``options`` go to :class:`~etl_platform.core.csv_encoding.CsvGzipWriter`."""
    return CsvGzipWriter(
        fileobj, columns=table.column_names, plain=csv_plain_columns(table), **options
    )


def transform_items(
    schema_set: DataSchemaSet,
    items: Iterable[Mapping[str, Any]],
    *,
    on_unfit: UnfitPolicy | str = UnfitPolicy.FAIL,
) -> TransformBatch:
    """One-off :meth:`ItemTransformer.transform` (compile once and reuse for many pages)."""
    return ItemTransformer(schema_set, on_unfit=on_unfit).transform(items)
