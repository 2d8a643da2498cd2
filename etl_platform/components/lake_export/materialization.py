"""What a day's materialization reports: footer figures of the parts written, the column schema,
and the metadata the UI shows (rows, files, bytes, compression, rates, S3 URIs, Glue partition)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from etl_platform.core import lake, s3_layout

if TYPE_CHECKING:
    from .component import LakeExport, LakeTable


@dataclass
class PartStats:
    """Parquet footer figures of the parts of one export."""

    uncompressed: int = 0
    compressed: int = 0
    row_groups: int = 0

    @property
    def ratio(self) -> float | None:
        return round(self.uncompressed / self.compressed, 3) if self.compressed else None


@dataclass
class MeasuringSink:
    """Reads each part's footer, then hands the part to ``inner`` (the upload)."""

    inner: lake.PartSink
    stats: PartStats = field(default_factory=PartStats)

    def __call__(self, part: lake.FinishedPart) -> str:
        md = pq.read_metadata(part.path if part.path is not None else part.file)
        part.file.seek(0)
        for i in range(md.num_row_groups):
            rg = md.row_group(i)
            for j in range(rg.num_columns):
                col = rg.column(j)
                self.stats.uncompressed += col.total_uncompressed_size
                self.stats.compressed += col.total_compressed_size
        self.stats.row_groups += md.num_row_groups
        return self.inner(part)


def column_schema(schema: pa.Schema, primary_key: Sequence[str] = ()) -> dg.TableSchema:
    """``dagster/column_schema`` of a lake table: Arrow type, PostgreSQL type as description
    (and the source column's name when the lake name differs)."""
    renamed = lake.source_column_names(schema)
    columns = []
    for f in schema:
        pg_type = (f.metadata or {}).get(lake.PG_TYPE_METADATA_KEY)
        description = pg_type.decode() if pg_type else None
        source = renamed.get(f.name, f.name)
        if f.name in renamed:
            description = f"{description or ''} (source column {source!r})".strip()
        columns.append(
            dg.TableColumn(
                name=f.name,
                type=str(f.type),
                description=description,
                constraints=dg.TableColumnConstraints(
                    nullable=f.nullable, unique=list(primary_key) == [source]
                ),
            )
        )
    return dg.TableSchema(columns=columns)


def day_metadata(
    lake_: LakeExport,
    table: LakeTable,
    day: date,
    result: lake.ExportResult,
    stats: PartStats,
    seconds: float,
    superseded_deleted: int,
    location: str,
) -> dict[str, Any]:
    """The metadata of one day's materialization; ``location`` is the export's own prefix, the
    one the Glue partition now points at."""
    y, m, d = s3_layout.partition_values(day)
    renamed = lake.source_column_names(result.schema)
    return {
        **({"source_column_names": dg.MetadataValue.json(renamed)} if renamed else {}),
        "dagster/row_count": result.rows,
        "dagster/column_schema": column_schema(result.schema, table.primary_key or ()),
        "dagster/table_name": f"{lake_.glue_database}.{table.lake_table}",
        "rows": result.rows,
        "files": len(result.parts),
        "bytes": result.bytes,
        "row_groups": stats.row_groups,
        "compression": lake_.compression,
        "compression_ratio": stats.ratio,
        "duration_s": round(seconds, 3),
        "export_s": round(result.duration_s, 3),
        "rows_per_second": round(result.rows / max(seconds, 1e-9), 1),
        "location": dg.MetadataValue.path(location),
        "s3_uris": dg.MetadataValue.json(
            [s3_layout.s3_uri(lake_.bucket, k) for k in result.locations]
        ),
        "superseded_parts_deleted": superseded_deleted,
        "glue_partition": f"{lake_.glue_database}.{table.lake_table} year={y}/month={m}/day={d}",
        "window_utc": lake.window_label(day),
    }
