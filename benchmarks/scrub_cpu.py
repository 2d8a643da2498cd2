"""CPU cost of the streaming scrub per MB of COPY text, one process, no database or S3.

Builds the COPY text of ``benchmarks/dump_scrub.py``'s two tables (``people``: fake_name,
fake_email unique, fake_phone and a kept text column; ``events``: keep_all), gzips it as
``pg_dump -Z1`` would, then measures with ``time.process_time`` (CPU seconds: the machine is
shared, wall time is not a measure) each stage of the scrub of one table in one process:

- driver: inflate the data file and cut it into chunks of whole rows (``table_scrub``);
- worker: :class:`ChunkScrubber` per chunk (split, rewrite, residual fingerprints, gzip);
- driver: fold the residual fingerprints into the sample.

Usage::

    python -m benchmarks.scrub_cpu --mb 100 [--profile people]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

from isal import isal_zlib

from benchmarks.dump_scrub import RULES
from etl_platform.components.postgres_dump.table_scrub import CHUNK_BYTES, gunzip_blocks
from etl_platform.core.scrub.archive import DumpTable
from etl_platform.core.scrub.chunks import ChunkScrubber, ChunkSpec
from etl_platform.core.scrub.copy_text import RowChunks
from etl_platform.core.scrub.coverage import plan_scrub
from etl_platform.core.scrub.fingerprints import FingerprintSample
from etl_platform.core.scrub.rules import parse_rules

KEY = b"benchmark-key-0123456789abcdef"
COLUMNS = {
    "people": ("id", "full_name", "email", "phone", "note"),
    "events": ("id", "person_id", "kind", "at", "payload"),
}
TYPES = {
    "people": ("bigint", "text", "text", "text", "text"),
    "events": ("bigint", "bigint", "text", "timestamp with time zone", "text"),
}


def copy_text(table: str, rows: int) -> bytes:
    if table == "people":
        line = "{0}\tPerson {0}\tperson{0}@mail.example.com\t+44 20 {0:08d}\t" + "x" * 30 + "\n"
    else:
        line = "{0}\t{0}\tclick\t2026-12-01 03:04:11.123456+00\t" + "y" * 52 + "\n"
    return "".join(line.format(i) for i in range(1, rows + 1)).encode()


def spec_of(table: str) -> ChunkSpec:
    dump_table = DumpTable(
        f"public.{table}", 1, COLUMNS[table], dict(zip(COLUMNS[table], TYPES[table], strict=True))
    )
    plan = plan_scrub(parse_rules(RULES), [dump_table])
    return ChunkSpec.from_plan(plan.tables[0])


def measure(table: str, rows: int, profile: bool) -> dict[str, float]:
    text = copy_text(table, rows)
    gz = isal_zlib.compress(text + b"\\.\n\n\n", 1, wbits=31)
    spec = spec_of(table)
    rewrite = table == "people"
    scrubber = ChunkScrubber(spec, KEY)
    sample = FingerprintSample()
    times = dict.fromkeys(("inflate_and_chunk", "scrub", "fold"), 0.0)
    profiler = cProfile.Profile() if profile else None
    start = time.process_time()
    chunks = RowChunks(CHUNK_BYTES)
    pieces = [c for block in gunzip_blocks(io.BytesIO(gz)) for c in chunks.feed(block)]
    pieces.append(chunks.finish())
    times["inflate_and_chunk"] = time.process_time() - start
    if profiler:
        profiler.enable()
    start = time.process_time()
    results = [scrubber.scrub(rows, rewrite) for rows in pieces]
    times["scrub"] = time.process_time() - start
    if profiler:
        profiler.disable()
    start = time.process_time()
    for result in results:
        sample.add_originals(result.originals)
        for column, data in result.checked.items():
            sample.add_checked(column, data)
    sample.hits()
    times["fold"] = time.process_time() - start
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    mb = len(text) / 1e6
    return {"mb": mb, **{f"{k}_s_per_mb": v / mb for k, v in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--profile", choices=("people", "events"))
    args = ap.parse_args()
    rows = args.mb * 1_000_000 // 100
    for table in ("people", "events"):
        result = measure(table, rows, args.profile == table)
        total = sum(v for k, v in result.items() if k.endswith("_s_per_mb"))
        cells = " ".join(f"{k}={v * 1000:.2f}ms" for k, v in result.items() if k != "mb")
        print(f"{table}: {result['mb']:.0f} MB, CPU {total * 1000:.2f} ms/MB ({cells})")


if __name__ == "__main__":
    main()
