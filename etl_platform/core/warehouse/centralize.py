"""Centralize: rebuild a published table in the new schema from every segment's staging table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from psycopg import sql

from etl_platform.core.table_spec import ColumnKind, ColumnSpec, TableSpec

from .ddl import column_type, create_table
from .dialect import Dialect, parse_dialect
from .identifiers import column_list, qualified_name

__all__ = ["centralize"]


def _widening_expr(
    dialect: Dialect, target: ColumnSpec, source: ColumnSpec | None
) -> sql.Composable:
    """How a segment's column becomes the published column: as is when the types agree, NULL
    when the segment's data-schema had no such column, else a cast to the wider type. JSON
    from a scalar goes through the dialect's :attr:`~Dialect.json_from_scalar` for the source
    kind, so text and timestamps become JSON strings (never a parse of raw text), numbers and
    booleans JSON numbers and booleans; a DECIMAL the dialect stores as text is parsed as a
    JSON number (:attr:`~Dialect.json_from_number_text`)."""
    if source is None:
        return sql.SQL("CAST(NULL AS {})").format(column_type(dialect, target))
    column = sql.Identifier(source.name)
    if (source.kind, source.precision, source.scale) == (
        target.kind,
        target.precision,
        target.scale,
    ) or (source.kind is target.kind and target.kind is not ColumnKind.DECIMAL):
        return column
    if target.kind is ColumnKind.JSON:
        kind = ColumnKind(source.kind)
        stored_as_text = column_type(dialect, source) == column_type(
            dialect, ColumnSpec(source.name, ColumnKind.TEXT)
        )
        if kind is ColumnKind.DECIMAL and stored_as_text:
            return sql.SQL(dialect.json_from_number_text).format(column)
        return sql.SQL(dialect.json_from_scalar[kind]).format(column)
    return sql.SQL("CAST({} AS {})").format(column, column_type(dialect, target))


def centralize(
    dialect: Dialect | str,
    spec: TableSpec,
    segment_schemas: Sequence[str],
    target_schema: str,
    *,
    segment_specs: Mapping[str, TableSpec | None] | None = None,
) -> list[sql.Composed]:
    """Statements that rebuild ``target_schema.<table>`` from the same table in every segment
    staging schema: create-or-replace with explicit DDL from ``spec`` (without the primary key
    constraint: run the checks, then ``add_primary_key``), then one
    ``INSERT INTO target (cols) SELECT cols FROM segment.table`` per segment, so types are the
    spec's, not whatever ``CREATE TABLE AS`` would infer. Run them in one transaction.

    ``segment_specs`` gives, per segment schema, the spec its table was staged with when that
    differs from ``spec`` (a segment extracted with an older or narrower data-schema): columns
    it lacks load as NULL, narrower ones are cast to the published type (a number or timestamp
    widened to text takes the warehouse's canonical text form). ``None`` for a segment means
    the table is absent there and the segment contributes no rows to it."""
    dialect = parse_dialect(dialect)
    if not segment_schemas:
        raise ValueError(f"centralize {spec.name!r}: no segment schemas given")
    if len(set(segment_schemas)) != len(segment_schemas):
        raise ValueError(f"centralize {spec.name!r}: a segment schema is listed twice")
    statements = create_table(dialect, target_schema, spec, primary_key=False)
    target = qualified_name(dialect, target_schema, spec.name)
    columns = column_list(dialect, spec.column_names)
    for segment in segment_schemas:
        source = qualified_name(dialect, segment, spec.name)
        if segment_specs is None or segment not in segment_specs:
            select: sql.Composable = columns
        elif segment_specs[segment] is None:
            continue
        else:
            staged = {c.name: c for c in segment_specs[segment].columns}  # type: ignore[union-attr]
            select = sql.SQL(", ").join(
                _widening_expr(dialect, column, staged.get(column.name)) for column in spec.columns
            )
        statements.append(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, columns, select, source)
        )
    return statements
