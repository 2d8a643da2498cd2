"""The Redshift Parquet staging path's parts that run here (no Redshift cluster): the footer
read by two ranged GETs from S3 (moto over HTTP), and the file stage's statements run on real
PostgreSQL, with a positional ``COPY ... FROM STDIN`` (no column list) standing in for
Redshift's positional ``COPY ... FORMAT AS PARQUET``: a file whose columns are in another order
than the target's lands in the stage by column name, stamped with its ordinal."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from etl_platform.core.warehouse import Dialect, columnar_stage
from etl_platform.core.warehouse import merge_load as wml
from etl_platform.core.warehouse.parquet_csv import parquet_csv_chunks
from etl_platform.resources import ObjectStoreResource, WarehouseResource
from etl_platform.resources.copy_input import parquet_object_columns

T = datetime(2026, 11, 30, 8, tzinfo=UTC)
FILE_ORDER = ["val", "ts", "id", "region"]  # the target's order is id, region, ts, val


def test_a_parquet_file_in_another_column_order_stages_by_name(local_stack, stack_env, unique_name):
    table = pa.table(
        {
            "val": pa.array(["a", None], pa.string()),
            "ts": pa.array([T, None], pa.timestamp("us", tz="UTC")),
            "id": pa.array([1, 2], pa.int64()),
            "region": pa.array(["eu", "us"], pa.string()),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    data = out.getvalue()
    store = ObjectStoreResource()
    store.ensure_bucket(unique_name)
    store.put_bytes(data, unique_name, "f.parquet")
    uri = f"s3://{unique_name}/f.parquet"
    target = ["id", "region", "ts", "val"]

    file_columns = parquet_object_columns(store, uri, target, setting="source_bucket")
    assert file_columns == FILE_ORDER

    redshift = Dialect.REDSHIFT  # its stage SQL is also PostgreSQL's
    warehouse = WarehouseResource(dsn=stack_env["ETL_WAREHOUSE_DSN"])
    with warehouse.transaction() as conn:
        conn.execute(f"CREATE SCHEMA {unique_name}")
        conn.execute(
            f"CREATE TABLE {unique_name}.t (id bigint NOT NULL, region text, ts timestamptz, "
            "val text)"
        )
        for statement in wml.create_stage(redshift, unique_name, "t"):
            conn.execute(statement)
        conn.execute(columnar_stage.create_file_stage(redshift, file_columns))
        copy = sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(
            sql.Identifier(columnar_stage.FILE_STAGE_TABLE)
        )
        with conn.cursor().copy(copy) as positional:  # no column list, as Redshift's
            for chunk in parquet_csv_chunks(data, file_columns, uri):
                positional.write(chunk)
        for statement in columnar_stage.file_stage_into_stage(redshift, target, 4):
            conn.execute(statement)
        staged = conn.execute(
            f"SELECT id, region, ts, val, {wml.LOAD_ORDER_COLUMN} FROM {wml.STAGE_TABLE} "
            "ORDER BY id"
        ).fetchall()
        gone = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname = %s", [columnar_stage.FILE_STAGE_TABLE]
        ).fetchone()
    assert staged == [(1, "eu", T, "a", 4), (2, "us", None, None, 4)]
    assert gone == (0,)
