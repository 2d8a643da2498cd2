"""Staging load vs raw COPY: loading a staged gzip CSV from S3 into PostgreSQL
(``WarehouseResource.load_csv_objects``: S3 stream → gunzip → ``COPY FROM STDIN``) against a raw
``COPY FROM STDIN`` of the same CSV already uncompressed on local disk, in one process run.

    python -m benchmarks.warehouse_load [--rows 200000] [--repeat 3]

Starts its own local stack (moto server + pgserver) in a temporary directory and stops it.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import psycopg

from etl_platform.core.csv_encoding import CsvGzipWriter
from etl_platform.core.warehouse import copy_from_stdin
from etl_platform.local.stack import LocalStack

COLUMNS = ("id", "name", "amount", "note", "created_at", "flag")
DDL = (
    "CREATE TABLE {t} (id bigint, name text, amount numeric, note text, "
    "created_at timestamptz, flag boolean)"
)


def make_rows(n: int) -> list[tuple[str | None, ...]]:
    rng = random.Random(1)
    rows = []
    for i in range(n):
        rows.append(
            (
                str(i),
                f'customer {i} "quoted", comma',
                f"{rng.randint(0, 10**9)}.{rng.randint(0, 9999):04d}",
                None if i % 7 == 0 else "multi\nline note " * (i % 3 + 1),
                f"2024-01-{i % 28 + 1:02d}T12:00:00+00:00",
                "true" if i % 2 else "false",
            )
        )
    return rows


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench_load_"))
    stack = LocalStack(root / "stack")
    stack.up()
    os.environ.update(stack.env())
    try:
        from etl_platform.resources import ObjectStoreResource, WarehouseResource

        rows = make_rows(args.rows)
        buffer = io.BytesIO()
        with CsvGzipWriter(buffer, columns=COLUMNS) as writer:
            writer.write_rows(rows)
        gz = buffer.getvalue()
        raw_path = root / "rows.csv"
        raw_path.write_bytes(gzip.decompress(gz))
        store = ObjectStoreResource()
        store.ensure_bucket("bench-load")
        store.put_bytes(gz, "bench-load", "rows.csv.gz")
        dsn = stack.env()["ETL_WAREHOUSE_DSN"]
        warehouse = WarehouseResource(dsn=dsn)

        def raw_copy() -> None:
            with psycopg.connect(dsn) as conn:
                conn.execute("DROP TABLE IF EXISTS raw_t")
                conn.execute(DDL.format(t="raw_t"))
                with conn.cursor() as cur, cur.copy(copy_from_stdin(None, "raw_t", COLUMNS)) as cp:
                    with open(raw_path, "rb") as f:
                        while chunk := f.read(1 << 20):
                            cp.write(chunk)

        def ours() -> None:
            with warehouse.transaction() as conn:
                conn.execute("DROP TABLE IF EXISTS ours_t")
                conn.execute(DDL.format(t="ours_t"))
                result = warehouse.load_csv_objects(
                    conn, None, "ours_t", COLUMNS, ["s3://bench-load/rows.csv.gz"], store
                )
                assert result.rows == args.rows, result

        raw_copy()
        ours()  # warm both paths
        raw_times = [timed(raw_copy) for _ in range(args.repeat)]
        our_times = [timed(ours) for _ in range(args.repeat)]
        raw_best, our_best = min(raw_times), min(our_times)
        print(
            f"rows: {args.rows}, gzip CSV {len(gz) / 2**20:.1f} MiB, raw CSV "
            f"{raw_path.stat().st_size / 2**20:.1f} MiB"
        )
        print(f"raw COPY FROM STDIN (local uncompressed file): {args.rows / raw_best:,.0f} rows/s")
        print(
            f"staging load (S3 gzip stream -> COPY FROM STDIN): {args.rows / our_best:,.0f} rows/s"
        )
        ratio = raw_best / our_best
        verdict = "MET" if ratio >= 0.8 else "NOT MET"
        print(f"ratio staging/raw: {ratio:.2f}x (target >= 0.80x): {verdict}")
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
