"""How the DynamoDB pipeline's tables are shown in the UI: column schemas and markdown."""

from __future__ import annotations

import dagster as dg

from etl_platform.core.dynamo import DataSchemaSet, DataTable


def column_schema(table: DataTable) -> dg.TableSchema:
    """``dagster/column_schema`` of one warehouse table: type label and attribute path."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.type_label,
                description=".".join(c.path) or None,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in table.columns
        ]
    )


def main_table_schema(schema_set: DataSchemaSet) -> dict[str, dg.TableSchema]:
    """``{"dagster/column_schema": ...}`` of the one main (non-child) table when there is
    exactly one; nothing when there are several (one per entity type: the UI's column view
    takes one table, so ``table_schemas`` lists them all instead of a null entry here)."""
    main = [t for t in schema_set.tables if t.parent is None]
    return {"dagster/column_schema": column_schema(main[0])} if len(main) == 1 else {}


def schemas_markdown(schema_set: DataSchemaSet) -> dg.MarkdownMetadataValue:
    """Every table of a data-schema set: key, columns, types and the attribute paths."""
    lines = []
    for table in schema_set.tables:
        parent = f" (child of `{table.parent}`)" if table.parent else ""
        lines.append(f"**{table.name}**{parent}: key {', '.join(table.primary_key) or '-'}")
        lines.append("")
        lines.append("| column | type | attribute path |")
        lines.append("|---|---|---|")
        for c in table.columns:
            lines.append(f"| {c.name} | {c.type_label} | {'.'.join(c.path)} |")
        lines.append("")
    return dg.MetadataValue.md("\n".join(lines))


def per_second(count: int, seconds: float) -> float:
    return round(count / max(seconds, 1e-9), 1)
