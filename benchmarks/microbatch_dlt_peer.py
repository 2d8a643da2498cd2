"""dlt's ``merge`` disposition on the micro-batch benchmark's files (run by a venv with dlt).

    <venv with dlt[postgres]>/bin/python benchmarks/microbatch_dlt_peer.py DSN DIR PER

Loads the ``*.csv.gz`` files of DIR in name order into ``bench_dlt.t`` of the PostgreSQL at
DSN with ``write_disposition={"disposition": "merge", "strategy": "delete-insert"}``,
``primary_key="id"`` and ``dedup_sort`` desc on ``ts``, PER files per ``pipeline.run``. Prints
``{"seconds": ...}``. Kept free of ``etl_platform`` imports: dlt lives in its own venv (the
``bench`` extra), not in the platform's.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse


def _rows(paths: list[Path]):
    for path in paths:
        with gzip.open(path, "rt", newline="") as f:
            for k, ts, val, amount in csv.reader(f):
                yield {
                    "id": int(k),
                    "ts": datetime.fromisoformat(ts),
                    "val": val,
                    "amount": Decimal(amount),
                }


def main() -> None:
    import dlt

    dsn, folder, per = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    parsed = urlparse(dsn)
    host = parse_qs(parsed.query).get("host", ["localhost"])[0]
    # a unix-socket directory travels percent-encoded in the host part of a libpq URI
    credentials = (
        f"postgresql://{parsed.username or 'postgres'}:@{quote(host, safe='')}:5432"
        f"/{parsed.path.lstrip('/')}"
    )
    files = sorted(folder.glob("*.csv.gz"))
    pipeline = dlt.pipeline(
        pipeline_name="bench_dlt",
        destination=dlt.destinations.postgres(credentials=credentials),
        dataset_name="bench_dlt",
        pipelines_dir=tempfile.mkdtemp(prefix="dlt_pipes_"),
    )
    started = time.perf_counter()
    for start in range(0, len(files), per):
        resource = dlt.resource(
            _rows(files[start : start + per]),
            name="t",
            write_disposition={"disposition": "merge", "strategy": "delete-insert"},
            primary_key="id",
            columns={"ts": {"dedup_sort": "desc"}},
        )
        pipeline.run(resource)
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2)}))


if __name__ == "__main__":
    main()
