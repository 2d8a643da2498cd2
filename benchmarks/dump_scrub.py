"""Benchmark: Postgres dump → S3 → scrub → S3 → restore, against the two chains it is measured by.

One process starts its own local stack (moto server + pgserver) in a temporary directory,
creates a source of about ``--mb`` MB of COPY text in two tables of equal size (``people``: PII
in name, email and phone; ``events``: no PII), then times, in the same run:

  (a) no scrub: pg_dump -Fd → S3 → download → pg_restore (the floor)
  (b) ours: pg_dump -Fd → S3 → streaming scrub (workers, ISA-L) → S3 → swap restore
  (c) the seed's way: (a) into a scratch database, UPDATE the PII columns, pg_dump again → S3 →
      download → pg_restore

Usage::

    python -m benchmarks.dump_scrub --mb 1100 --rounds 3  # the issue's size (a quiet machine)
    python -m benchmarks.dump_scrub --mb 40       # smoke, well under a minute

Goals: (b) <= 1.3x (a); (c) reported (expected >= 2x (a)); scrub MB/s; peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from etl_platform.components.postgres_dump.dump import DumpSettings, take_dump
from etl_platform.components.postgres_dump.dump_objects import DumpLocation, download_files
from etl_platform.components.postgres_dump.restore import RestoreSettings, restore_dump
from etl_platform.components.postgres_dump.scrub import ScrubSettings, scrub_dump
from etl_platform.core.scrub import parse_rules
from etl_platform.local.stack import LocalStack
from etl_platform.resources import ObjectStoreResource, PgToolsResource

ROW_BYTES = 100  # about, in COPY text, for both tables
RULES = {
    "tables": {
        "people": {
            "columns": {
                "id": "keep",
                "full_name": "fake_name",
                "email": {"action": "fake_email", "unique": True},
                "phone": "fake_phone",
                "note": "keep",
            }
        },
        "events": "keep_all",
    }
}
SEED_UPDATE = """UPDATE people SET full_name = 'Name ' || substr(md5(full_name), 1, 8),
    email = 'u' || md5(email) || '@example.invalid', phone = '+1555' || substr(md5(phone), 1, 7)"""


def make_source(dsn: str, mb: int) -> int:
    rows = max(1000, mb * 1_000_000 // ROW_BYTES // 2)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE people (id bigint PRIMARY KEY, full_name text, email text UNIQUE, "
            "phone text, note text)"
        )
        conn.execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, person_id bigint REFERENCES people(id), "
            "kind text, at timestamptz, payload text)"
        )
        conn.execute(
            "INSERT INTO people SELECT g, 'Person ' || g, 'person' || g || '@mail.example.com', "
            "'+44 20 ' || lpad(g::text, 8, '0'), repeat('x', 30) FROM generate_series(1, %s) g",
            (rows,),
        )
        conn.execute(
            "INSERT INTO events SELECT g, g, 'click', now(), repeat('y', 52) "
            "FROM generate_series(1, %s) g",
            (rows,),
        )
    return rows


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (``/proc/stat``: every state
    but idle and iowait), to tell how much of a chain's wall time both cores were working."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int, children: bool = True) -> float:
    """utime + stime (+ cutime + cstime: children already reaped) of ``pid``, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(v) for v in fields[11 : 15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def stack_cpu_s(moto_pid: int, postmaster_pid: int) -> dict[str, float]:
    """CPU seconds so far of: this process and its children (the step code, its scrub
    workers, pg_dump and pg_restore, once they have ended), the moto server, and PostgreSQL
    (the postmaster, its ended backends and the live ones)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    postgres = _process_cpu_s(postmaster_pid)
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if parent == postmaster_pid:
                postgres += _process_cpu_s(int(pid), children=False)
    return {
        "ours": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
        "moto": _process_cpu_s(moto_pid, children=False),
        "postgres": postgres,
    }


class TreeRss:
    """Peak RSS, sampled every 0.1 s, of the Python processes our chain runs: this process (the
    driver: Dagster-importing step code, S3 transfers) plus its scrub worker processes. The
    pg_dump/pg_restore binaries, PostgreSQL and the moto server are not counted."""

    def __init__(self, moto_pid: int, postmaster_pid: int) -> None:
        self._pids = (moto_pid, postmaster_pid)
        self.peak_total = self.peak_driver = self.peak_workers = self.peak_pss = 0.0
        self.phase, self.phase_peak = "setup", 0.0
        self.phases: dict[str, float] = {}
        self.process_peaks: dict[str, dict[str, float]] = {}  # phase → process → peak RSS
        self.cpu_s: dict[str, float] = {}  # phase → the machine's busy CPU seconds
        self.cpu_by: dict[str, dict[str, float]] = {}  # phase → ours/moto/postgres CPU s
        self._busy_at = machine_busy_s()
        self._by_at = stack_cpu_s(*self._pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _rss_mb(pid: int | str, field: str = "Rss:") -> float:
        """RSS (every resident page, shared library pages counted in each process) or, with
        ``Pss:``, the proportional share (shared pages divided among their processes)."""
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith(field):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    @staticmethod
    def _workers() -> list[str]:
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmd:
                    if b"scrub_worker.py" not in cmd.read():
                        continue
                with open(f"/proc/{pid}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                        pids.append(pid)
            except OSError:
                continue
        return pids

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            driver = self._rss_mb(os.getpid())
            pids = self._workers()
            workers = sum(self._rss_mb(p) for p in pids)
            pss = sum(self._rss_mb(p, "Pss:") for p in [os.getpid(), *pids])
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_driver = max(self.peak_driver, driver)
            self.peak_workers = max(self.peak_workers, workers)
            self.peak_total = max(self.peak_total, driver + workers)
            self.phase_peak = max(self.phase_peak, driver + workers)
            peaks = self.process_peaks.setdefault(self.phase, {})
            for name, mb in (("driver", driver), *((f"worker {p}", self._rss_mb(p)) for p in pids)):
                peaks[name] = max(peaks.get(name, 0.0), mb)

    def mark(self, phase: str) -> None:
        """Start a new phase; the peak of the one before is kept under its name, and the
        machine's busy CPU seconds during it under ``cpu_s``."""
        busy, by = machine_busy_s(), stack_cpu_s(*self._pids)
        if self.phase != "setup":
            self.cpu_s[self.phase] = busy - self._busy_at
            self.cpu_by[self.phase] = {k: round(v - self._by_at[k], 2) for k, v in by.items()}
        self._busy_at, self._by_at = busy, by
        self.phases[self.phase], self.phase, self.phase_peak = self.phase_peak, phase, 0.0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def fresh_db(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def restore_raw(store, pg_tools, where: DumpLocation, dsn: str) -> None:
    names = [o["Key"][len(where.root) :] for o in store.list_objects(where.bucket, where.root)]
    with tempfile.TemporaryDirectory() as tmp:
        download_files(store, where, [n for n in names if n != "manifest.json"], Path(tmp))
        pg_tools.restore_directory(dsn, Path(tmp), setting="the benchmark's target")


def _rounded(value: object) -> object:
    return round(value, 3) if isinstance(value, float) else value


def chain_a(rss: TreeRss, n: int, store, pg_tools, state, dump: DumpSettings) -> dict:
    """(a) no scrub: dump → S3 → download → pg_restore; wall seconds of each stage."""
    rss.mark(f"a{n}_dump")
    started = time.monotonic()
    take_dump(dump, store, pg_tools, f"a{n}")
    dumped = time.monotonic()
    rss.mark(f"a{n}_restore")
    fresh_db(state.dsn("postgres"), f"bench_a{n}")
    where = DumpLocation("bench-x", "dumps", f"a{n}")
    restore_raw(store, pg_tools, where, state.dsn(f"bench_a{n}"))
    done = time.monotonic()
    return {
        "a_no_scrub_s": done - started,
        "a_stage_dump_s": dumped - started,
        "a_stage_restore_s": done - dumped,
    }


def chain_b(
    rss: TreeRss, n: int, store, pg_tools, state, dump: DumpSettings, scrub: ScrubSettings
) -> dict:
    """(b) ours: dump → S3 → scrub → S3 → swap restore; wall seconds of each stage."""
    rss.mark(f"b{n}_dump")
    started = time.monotonic()
    take_dump(dump, store, pg_tools, f"b{n}")
    dumped = time.monotonic()
    rss.mark(f"b{n}_scrub")
    report = scrub_dump(scrub, parse_rules(RULES), store, pg_tools, f"b{n}")
    rss.mark(f"b{n}_restore")
    fresh_db(state.dsn("postgres"), f"bench_b{n}")
    os.environ["BENCH_TARGET_DSN"] = state.dsn(f"bench_b{n}")
    target = RestoreSettings("bench-l", "clean", "BENCH_TARGET_DSN")
    restored = restore_dump(target, store, pg_tools, f"b{n}")
    timed = {
        "b_ours_s": time.monotonic() - started,
        "b_stage_dump_s": dumped - started,
        "b_stage_scrub_step_s": report["seconds"],
        "scrub_s": report["scrub_seconds"],
        "scrub_text_mb": report["scrub_text_mb"],
        "scrub_text_mb_per_s": report["scrub_text_mb_per_s"],
        "residual_originals_seen": report["residual"]["original_values_seen"],
        "residual_sample_fraction": report["residual"]["sample_fraction"],
    }
    for stage in ("download", "restore", "swap"):
        timed[f"b_stage_restore_{stage}_s"] = restored[f"{stage}_seconds"]
    return timed


def quiet_server(admin: str, source: str) -> None:
    """No background work in this benchmark's own PostgreSQL while chains are timed: the
    source is vacuumed, frozen and analyzed up front, and autovacuum is off, so the vacuum of
    one chain's freshly restored tables does not land in the next chain's time."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET autovacuum = off")
        conn.execute("SELECT pg_reload_conf()")
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("VACUUM (FREEZE, ANALYZE)")


def seed_chain(store, pg_tools, state, dump: DumpSettings) -> float:
    """(c): the seed's way; returns its wall seconds."""
    admin = state.dsn("postgres")
    started = time.monotonic()
    take_dump(dump, store, pg_tools, "c")
    fresh_db(admin, "bench_scratch")
    restore_raw(store, pg_tools, DumpLocation("bench-x", "dumps", "c"), state.dsn("bench_scratch"))
    with psycopg.connect(state.dsn("bench_scratch")) as conn:
        conn.execute(SEED_UPDATE)
    os.environ["BENCH_SCRATCH_DSN"] = state.dsn("bench_scratch")
    take_dump(DumpSettings("BENCH_SCRATCH_DSN", "bench-l", "seed"), store, pg_tools, "c")
    fresh_db(admin, "bench_c")
    restore_raw(store, pg_tools, DumpLocation("bench-l", "seed", "c"), state.dsn("bench_c"))
    return time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=1100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="(a) and (b) alternated N times")
    ap.add_argument(
        "--no-seed", action="store_true", help="skip (c), the seed's way (minutes at 1 GB)"
    )
    ap.add_argument(
        "--glibc-arenas",
        action="store_true",
        help="keep glibc's default malloc arenas instead of the platform's MALLOC_ARENA_MAX=2",
    )
    args = ap.parse_args()
    if "MALLOC_ARENA_MAX" not in os.environ and not args.glibc_arenas:
        # the platform's setting (deploy/Dockerfile, etl-platform dev): read at process start
        env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
        os.execve(
            sys.executable, [sys.executable, "-m", "benchmarks.dump_scrub", *sys.argv[1:]], env
        )
    root = Path(tempfile.mkdtemp(prefix="etl_bench_dump_"))
    stack = LocalStack(root)
    state = stack.up()
    os.environ.update(stack.env())
    os.environ["BENCH_SCRUB_KEY"] = "benchmark-key-0123456789abcdef"
    try:
        store, pg_tools = ObjectStoreResource(), PgToolsResource()
        for bucket in ("bench-x", "bench-l"):
            store.ensure_bucket(bucket)
        admin = state.dsn("postgres")
        fresh_db(admin, "bench_source")
        os.environ["BENCH_SOURCE_DSN"] = state.dsn("bench_source")
        rows = make_source(state.dsn("bench_source"), args.mb)
        quiet_server(admin, state.dsn("bench_source"))
        dump = DumpSettings("BENCH_SOURCE_DSN", "bench-x", "dumps")
        results: dict[str, Any] = {}
        with psycopg.connect(state.dsn("bench_source")) as conn:
            results["source_table_mb"] = float(
                conn.execute(
                    "SELECT sum(pg_table_size(c.oid)) / 1e6 FROM pg_class c "
                    "WHERE c.relname IN ('people', 'events')"
                ).fetchone()[0]
            )
        rss = TreeRss(state.moto_pid, state.postgres_pid)
        scrub = ScrubSettings(
            "bench-x", "dumps", "bench-l", "clean", "BENCH_SCRUB_KEY", workers=args.workers
        )
        rounds = []
        for n in range(1, args.rounds + 1):  # (a) and (b) alternate: drift hits both
            timed = {**chain_a(rss, n, store, pg_tools, state, dump)}
            timed.update(chain_b(rss, n, store, pg_tools, state, dump, scrub))
            timed["b_over_a"] = timed["b_ours_s"] / timed["a_no_scrub_s"]
            rounds.append(timed)
        for name in rounds[0]:
            results[name] = statistics.median(r[name] for r in rounds)
        results["b_over_a_per_round"] = [round(r["b_over_a"], 3) for r in rounds]
        results["peak_rss_mb_driver_plus_workers"] = rss.peak_total

        if not args.no_seed:
            rss.mark("c")
            results["c_seed_s"] = seed_chain(store, pg_tools, state, dump)
        rss.mark("end")
        rss.stop()
        results.update({f"peak_rss_mb_during_{k}": v for k, v in rss.phases.items()})
        results.update({f"machine_cpu_s_during_{k}": v for k, v in rss.cpu_s.items()})
        usage = resource.getrusage
        results.update(
            malloc_arena_max=os.environ.get("MALLOC_ARENA_MAX", "glibc default"),
            rows_per_table=rows,
            mb_copy_text=args.mb,
            c_over_a=results.get("c_seed_s", 0.0) / results["a_no_scrub_s"],
            peak_rss_mb_driver=rss.peak_driver,
            peak_rss_mb_workers=rss.peak_workers,
            peak_rss_mb_run=rss.peak_total,
            peak_pss_mb_run=rss.peak_pss,
            peak_rss_mb_self_getrusage=usage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )
        print(json.dumps({k: _rounded(v) for k, v in results.items()}, indent=1))
        peaks = {ph: {k: round(v) for k, v in p.items()} for ph, p in rss.process_peaks.items()}
        print(json.dumps({"peak_rss_mb_per_process": peaks}, indent=1))
        print(json.dumps({"cpu_s_per_phase": rss.cpu_by}, indent=1))
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
