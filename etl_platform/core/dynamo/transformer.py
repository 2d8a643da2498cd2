"""DynamoDB items -> warehouse rows, exactly as a cached data-schema set describes them.

Items are boto3 low-level wire values (``{"attr": {"N": "1.5"}}``); ``B`` may be bytes (what
botocore returns) or base64 text (the raw wire JSON). Each item yields one row of its entity's
main table and, per list or set attribute, one row per element in the child table (parent key
columns, 0-based element index, element columns). Rows are tuples of ``str | None`` in column
order (encodings in :mod:`.encoders`), ready for :mod:`etl_platform.core.csv_encoding` and a
``COPY`` with explicit columns. NULL (and a missing attribute) is ``None``.

Nothing is dropped or coerced silently. An attribute the data-schema does not know, a value
whose type does not fit its column (a string in a BIGINT column, more digits than the DECIMAL
precision, a map where a scalar was seen, an entity type not seen before) makes the item
*unfit*: policy ``fail`` raises :class:`DataSchemaMismatch` naming the item key and attribute
path; policy ``evolve`` leaves the item's rows out and reports it in ``TransformBatch.unfit``,
so the caller can widen the data-schema (:meth:`ItemTransformer.evolved_schema_set`) and
re-run. ``NULL``, an empty map and a map of only NULLs flatten to nothing, so they fit any
column (a JSON column keeps a map as written) and an unknown attribute holding one is no loss.

Speed: the per-table code is generated once per data-schema set (:mod:`.transform_codegen`);
raw pages parsed item by item with :func:`~.wire.iter_wire_items` avoid ``json.loads``'s
page-wide garbage-collector churn. See ``benchmarks/dynamo_transform.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..warehouse.dialect import Dialect
from .data_schema import DataSchemaSet, DataTable
from .encoders import binary_text, bytes_of, shown
from .infer import evolve_schema_set
from .interpret import (
    diagnose,
    interpreted_element,
    interpreted_emitter,
    interpreted_main,
    interpreted_rows,
)
from .observe import SchemaObservations
from .transform_codegen import generated_element, generated_emitter, generated_main
from .transform_plan import OP_MAP, Plan, Row, Spec, build_plans, count_attributes
from .unfit import DataSchemaMismatch, Misfit, UnfitItem, UnfitPolicy
from .wire_values import entity_of

CODEGEN_MAX_ATTRIBUTES = 96


@dataclass
class TransformBatch:
    """Rows per table name (every table of the set, possibly empty) for a batch of items."""

    rows: dict[str, list[Row]]
    items: int = 0
    unfit: list[UnfitItem] = field(default_factory=list)

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()}


class ItemTransformer:
    """A data-schema set compiled for fast transformation of many batches of items (compile
    once per segment, call :meth:`transform` per page; one instance per thread).

    ``generate_code=False`` uses the interpreter everywhere (same results, slower; the tests
    compare both). Binary values are encoded as ``dialect`` loads them (PostgreSQL ``\\x…``
    hex by default, Redshift plain hex for VARBYTE)."""

    def __init__(
        self,
        schema_set: DataSchemaSet,
        *,
        on_unfit: UnfitPolicy | str = UnfitPolicy.FAIL,
        generate_code: bool = True,
        dialect: Dialect = Dialect.POSTGRES,
    ) -> None:
        self.schema_set = schema_set
        self.on_unfit = UnfitPolicy(on_unfit)
        self.dialect = dialect
        config = schema_set.config
        self._rule = config.entity_rule
        self._key_attributes = config.key_attributes
        self._compile(generate_code)

    @property
    def tables(self) -> tuple[DataTable, ...]:
        return self.schema_set.tables

    def _compile(self, generate_code: bool) -> None:
        built = build_plans(self.schema_set.tables, binary_encoder(self.dialect))
        self._plans: dict[str, Plan] = built.by_table
        self._mains: dict[str | None, Plan] = built.mains
        for plan in built.by_table.values():
            if plan.table.parent is not None:
                _compile_child(plan, generate_code)
        observations = self.schema_set.observations
        for name, plan in built.by_table.items():
            if plan.table.parent is None:
                _compile_main(plan, built.main_attrs[name], observations, generate_code)

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
                    raise Misfit(f"entity {entity_of(item, rule)!r} is not in the data-schema")
                plan.fill(item)
            except Misfit as e:
                if plan is not None:
                    e = diagnose(plan, item) or e
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
                raise ValueError(f"item {key_text or shown(item)}: bad DynamoDB item: {e}") from e
        return TransformBatch(rows, count, unfit)

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


def binary_encoder(dialect: Dialect) -> Callable[[Any], str]:
    """How binary values (bytes, or the base64 text of raw wire JSON) become CSV text for
    ``dialect``: PostgreSQL keeps the fast ``\\x`` encoder, others use
    :meth:`~etl_platform.core.warehouse.dialect.Dialect.binary_text`."""
    if dialect.binary_text(b"\x01") == binary_text(b"\x01"):
        return binary_text

    def encode(value: Any) -> str:
        return dialect.binary_text(value if type(value) is bytes else bytes_of(value))

    return encode


def _compile_child(plan: Plan, generate_code: bool) -> None:
    """A child table's element ``fill`` and list ``emit``: generated, or the interpreter when
    asked or when its elements have very many attributes."""
    plan.interp = interpreted_element(plan)
    elem_attrs = plan.elem[3] if plan.elem[0] == OP_MAP else {}
    small = count_attributes(elem_attrs) <= CODEGEN_MAX_ATTRIBUTES
    plan.fill = generated_element(plan) if generate_code and small else plan.interp
    plan.emit = generated_emitter(plan) if generate_code else interpreted_emitter(plan)


def _compile_main(
    plan: Plan, attrs: dict[str, Spec], observations: SchemaObservations, generate_code: bool
) -> None:
    """A main table's ``fill`` (after its child tables': the generated code calls theirs)."""
    plan.interp = interpreted_rows(plan, attrs)
    small = count_attributes(attrs) <= CODEGEN_MAX_ATTRIBUTES
    plan.fill = (
        generated_main(plan, attrs, observations)
        if generate_code and small
        else interpreted_main(plan)
    )


def transform_items(
    schema_set: DataSchemaSet,
    items: Iterable[Mapping[str, Any]],
    *,
    on_unfit: UnfitPolicy | str = UnfitPolicy.FAIL,
    dialect: Dialect = Dialect.POSTGRES,
) -> TransformBatch:
    """One-off :meth:`ItemTransformer.transform` (compile once and reuse for many pages)."""
    return ItemTransformer(schema_set, on_unfit=on_unfit, dialect=dialect).transform(items)
