"""Micro-batch merge vs its peers, on the same gzip CSV files in S3, in one process run.

    python -m benchmarks.microbatch_merge [--files 100] [--rows 10000] [--dup 0.2] [--rounds 3]

Issue 10's setup: ``files`` gzip CSVs of ``rows`` rows, ``dup`` of the rows repeating an earlier
key (within or across files, older or newer), merged into PostgreSQL keeping the latest ``ts``:

* ours, per manifest of one file and per manifest of every file (``load_manifest``: COPY
  through ``WarehouseResource`` into a stage, then the set-based merge, in one transaction);
* ``executemany``: row-by-row ``INSERT ... ON CONFLICT DO UPDATE WHERE newer``, a file per
  transaction;
* the near-limit: a hand-rolled COPY -> temp table -> one ``INSERT ... SELECT DISTINCT ON ...
  ON CONFLICT`` per file;
* dlt's ``merge`` disposition (delete-insert, ``dedup_sort``) with ``--dlt-python`` pointing at
  a venv that has the ``bench`` extra (``dlt[postgres]``), in a subprocess
  (``microbatch_dlt_peer.py``); skipped otherwise.

Every output is compared with an expectation computed here in Python. Starts its own local
stack in a temporary directory and stops it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import psycopg

from etl_platform.components.microbatch.load import LoadTarget, load_manifest
from etl_platform.core.microbatch import DayPattern, Manifest, ManifestFile
from etl_platform.core.retry import RetrySettings
from etl_platform.core.warehouse import merge_load as wml
from etl_platform.local.stack import LocalStack
from etl_platform.resources import ObjectStoreResource, WarehouseResource

BUCKET, T0 = "bench-landing", datetime(2026, 11, 30, tzinfo=UTC)
DDL = "CREATE TABLE {t} (id bigint PRIMARY KEY, ts timestamptz, val text, amount numeric)"


class _Log:
    def info(self, message: str) -> None:
        pass  # progress lines

    def warning(self, message: str) -> None:
        print("warning:", message)


class _Context:
    log = _Log()


def make_files(files: int, rows: int, dup: float) -> list[list[tuple]]:
    rng = random.Random(10)
    out, next_id = [], 0
    for f in range(files):
        batch = []
        for r in range(rows):
            if next_id and rng.random() < dup:
                key = rng.randrange(next_id)
            else:
                key, next_id = next_id, next_id + 1
            ts = T0 + timedelta(seconds=f * rows + r + rng.randint(-5000, 5000))
            batch.append((key, ts, f"v{f}-{r}", f"{rng.randint(0, 10**6)}.{r % 100:02d}"))
        out.append(batch)
    return out


def expected(files: list[list[tuple]]) -> dict:
    table: dict = {}
    for rows in files:  # latest ts wins; a tie goes to the later row or file
        for row in rows:
            if row[0] not in table or row[1] >= table[row[0]][1]:
                table[row[0]] = row
    return table


def csv_gz(rows: list[tuple]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(
        (k, ts.isoformat(), v, a) for k, ts, v, a in rows
    )
    return gzip.compress(buf.getvalue().encode(), compresslevel=1, mtime=0)


def reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench CASCADE")
        conn.execute("CREATE SCHEMA bench")
        conn.execute(DDL.format(t="bench.t"))


def table(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id, ts, val, amount::text FROM bench.t").fetchall()
    return {r[0]: tuple(r) for r in rows}


def ours(dsn: str, keys: list[str], sizes: list[int], per: int, store: ObjectStoreResource) -> None:
    """``store``'s S3 client is made before the clock starts, as the peers' client is (making a
    boto3 client costs a few hundred ms of CPU: a process's cost, not a merge's)."""
    warehouse = WarehouseResource(dsn=dsn)
    target = LoadTarget(
        instance="bench", schema="bench", table="t", source_bucket=BUCKET, source_prefix="",
        manifest_bucket=BUCKET, manifest_prefix="manifests",
        day_pattern=DayPattern("dt=YYYY-MM-DD/"),
        merge_keys=wml.MergeKeys(("id",), "ts"), retry=RetrySettings(3, 0.1, 1.0),
    )  # fmt: skip
    for start in range(0, len(keys), per):
        files = tuple(
            ManifestFile(f"s3://{BUCKET}/{k}", s, "", None)
            for k, s in zip(keys[start : start + per], sizes[start : start + per], strict=True)
        )
        manifest = Manifest("bench", T0.date(), files)
        load_manifest(_Context(), target, warehouse, store, manifest, f"s3://{BUCKET}/m/{start}")


def _file_rows(s3, key: str) -> list[list[str]]:
    body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).decode()
    return list(csv.reader(io.StringIO(body)))


def executemany(dsn: str, keys: list[str], s3) -> None:
    upsert = (
        "INSERT INTO bench.t AS t (id, ts, val, amount) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts, val = EXCLUDED.val, "
        "amount = EXCLUDED.amount WHERE EXCLUDED.ts >= t.ts"
    )
    with psycopg.connect(dsn) as conn:
        for key in keys:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(upsert, _file_rows(s3, key))


def near_limit(dsn: str, keys: list[str], s3) -> None:
    with psycopg.connect(dsn) as conn:
        for key in keys:
            data = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE s (id bigint, ts timestamptz, val text, amount numeric, "
                    "n bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DROP"
                )
                with cur.copy("COPY s (id, ts, val, amount) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(data)
                cur.execute(
                    "INSERT INTO bench.t AS t (id, ts, val, amount) SELECT DISTINCT ON (id) "
                    "id, ts, val, amount FROM s ORDER BY id, ts DESC, n DESC "
                    "ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts, val = EXCLUDED.val, "
                    "amount = EXCLUDED.amount WHERE EXCLUDED.ts >= t.ts"
                )


def run_dlt(dsn: str, bodies: list[bytes], python: str | None, want: dict, total: int) -> dict:
    """dlt's merge in its own venv (``--dlt-python``), per file and per all files; how many
    keys end up different from the expectation (dlt's delete-insert lets an older row of a
    later batch replace a newer stored row)."""
    if not python:
        return {"skipped": "no --dlt-python given (a venv with the `bench` extra)"}
    folder = Path(tempfile.mkdtemp(prefix="bench_dlt_files_"))
    out: dict = {}
    try:
        for i, body in enumerate(bodies):
            (folder / f"part-{i:04d}.csv.gz").write_bytes(body)
        script = Path(__file__).with_name("microbatch_dlt_peer.py")
        for per in (1, len(bodies)):
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DROP SCHEMA IF EXISTS bench_dlt CASCADE")
            done = subprocess.run(
                [python, str(script), dsn, str(folder), str(per)],
                capture_output=True,
                text=True,
                timeout=3600,
            )
            if done.returncode != 0:
                out[f"per {per}"] = {"failed": done.stderr[-800:]}
                continue
            seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
            with psycopg.connect(dsn) as conn:
                rows = conn.execute("SELECT id, ts, val, amount::text FROM bench_dlt.t").fetchall()
            # dlt stores numeric(38,9): compare amounts as numbers
            got = {r[0]: (*r[:3], Decimal(r[3])) for r in rows}
            same = {k: (*w[:3], Decimal(w[3])) for k, w in want.items()}
            differ = sum(1 for k in same.keys() | got.keys() if same.get(k) != got.get(k))
            out[f"per {per}"] = {
                "seconds": seconds,
                "rows_per_s": round(total / seconds),
                "keys_differing_from_expectation": differ,
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dup", type=float, default=0.2)
    parser.add_argument("--dlt-python", help="python of a venv with dlt[postgres] installed")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every method this many times, round-robin, and report the median (a shared "
        "machine's load drifts: one sequential pass can favour whichever method ran last)",
    )
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="etl_bench_mb_")
    stack = LocalStack(Path(root))
    stack.up()
    os.environ.update(stack.env())
    try:
        dsn = stack.env()["ETL_WAREHOUSE_DSN"]
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        data = make_files(args.files, args.rows, args.dup)
        keys, sizes, bodies = [], [], []
        for i, rows in enumerate(data):
            body = csv_gz(rows)
            keys.append(f"dt=2026-11-30/part-{i:04d}.csv.gz")
            sizes.append(len(body))
            bodies.append(body)
            s3.put_object(Bucket=BUCKET, Key=keys[-1], Body=body)
        want = {k: (k, ts, v, a) for k, (_, ts, v, a) in expected(data).items()}
        total = args.files * args.rows
        store = ObjectStoreResource()
        store.client()
        methods = {
            "ours, manifest of 1 file": lambda: ours(dsn, keys, sizes, 1, store),
            f"ours, manifest of {args.files} files": lambda: ours(
                dsn, keys, sizes, args.files, store
            ),
            "executemany INSERT ON CONFLICT": lambda: executemany(dsn, keys, s3),
            "near-limit COPY + upsert per file": lambda: near_limit(dsn, keys, s3),
        }
        report: dict = {"files": args.files, "rows_per_file": args.rows, "dup": args.dup}
        timings: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(max(1, args.rounds)):
            for name, fn in methods.items():
                reset(dsn)
                started = time.perf_counter()
                fn()
                timings[name].append(time.perf_counter() - started)
                same = table(dsn) == want and report.get(name, {}).get("equals_expectation", True)
                seconds = statistics.median(timings[name])
                report[name] = {"seconds": round(seconds, 2), "rows_per_s": round(total / seconds)}
                report[name]["equals_expectation"] = same
        report["dlt merge (delete-insert, dedup_sort)"] = run_dlt(
            dsn, bodies, args.dlt_python, want, total
        )
        limit = report["near-limit COPY + upsert per file"]["rows_per_s"]
        report["ours_1_file_vs_near_limit"] = round(
            report["ours, manifest of 1 file"]["rows_per_s"] / limit, 2
        )
        peer = report["dlt merge (delete-insert, dedup_sort)"].get("per 1", {})
        if "rows_per_s" in peer:
            report["ours_1_file_vs_dlt_1_file"] = round(
                report["ours, manifest of 1 file"]["rows_per_s"] / peer["rows_per_s"], 2
            )
        print(json.dumps(report, indent=2))
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
