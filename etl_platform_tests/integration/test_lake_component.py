"""The lake export component, materialized for real on the session stack (pgserver + moto).

Each test gets its own source database, bucket and Glue database. Parquet is read back from the
moto S3 endpoint with pyarrow and compared value by value with the source rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from dagster._core.events import DagsterEventType
from dagster._core.instance.ref import InstanceRef
from pyarrow import fs

from etl_platform.components.lake_export import (
    COUNT_CHECK,
    DRY_RUN_TAG,
    GLUE_CHECK,
    MEDIAN_CHECK,
    READ_BACK_CHECK,
    LakeExport,
    day_export,
)
from etl_platform.core import lake as le
from etl_platform.core import s3_layout
from etl_platform.resources import platform_resources

ALL_CHECKS = {COUNT_CHECK, READ_BACK_CHECK, GLUE_CHECK, MEDIAN_CHECK}
REPO = Path(__file__).resolve().parents[2]
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


# ------------------------------------------------------------------------------- helpers


@pytest.fixture
def lake(local_stack, stack_env, fresh_database, unique_name, monkeypatch) -> dict[str, Any]:
    """An empty bucket, a Glue database name (not created) and a source database whose DSN is
    in an environment variable of its own, as a deployment would have it."""
    env_name = f"LX_SOURCE_{unique_name.upper()}"
    monkeypatch.setenv(env_name, fresh_database)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=unique_name)
    return {
        "dsn": fresh_database,
        "env": env_name,
        "bucket": unique_name,
        "glue_database": f"db_{unique_name}",
        "s3": s3,
        "glue": boto3.client("glue"),
        "endpoint": stack_env["AWS_ENDPOINT_URL"],
    }


def component(lake: dict[str, Any], tables: list[dict[str, Any]], **kw: Any) -> LakeExport:
    return LakeExport.resolve_from_dict(attrs_of(lake, tables, **kw))


def defs_of(c: LakeExport) -> dg.Definitions:
    return dg.component_defs(component=c, resources=platform_resources())


def materialize(
    c: LakeExport,
    table: str,
    instance: dg.DagsterInstance,
    *,
    partition: str | None = None,
    first: str | None = None,
    last: str | None = None,
    run_config: Any = None,
    selection: Any = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    d = defs_of(c)
    tags = {RANGE_START: first, RANGE_END: last} if first else None
    return dg.materialize(
        list(d.assets or []),
        selection=selection or [dg.AssetKey(["lake", c.instance, table])],
        resources=platform_resources(),
        instance=instance,
        partition_key=partition,
        tags=tags,
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def s3fs(lake: dict[str, Any]) -> fs.S3FileSystem:
    endpoint = lake["endpoint"]
    return fs.S3FileSystem(
        access_key="local",
        secret_key="local",
        region="us-east-1",
        endpoint_override=endpoint.split("://", 1)[1],
        scheme=endpoint.split("://", 1)[0],
    )


def listing(lake: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Every object of the bucket under prefix → ETag."""
    out = {}
    for page in (
        lake["s3"].get_paginator("list_objects_v2").paginate(Bucket=lake["bucket"], Prefix=prefix)
    ):
        out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return out


def read_day(lake: dict[str, Any], table: str, day: date) -> pa.Table:
    prefix = s3_layout.lake_partition_prefix("warehouse-lake", table, day)
    keys = sorted(listing(lake, prefix))
    assert keys, f"no parts under {prefix}"
    filesystem = s3fs(lake)
    return pa.concat_tables(
        pq.read_table(f"{lake['bucket']}/{k}", filesystem=filesystem) for k in keys
    )


def source_rows(dsn: str, sql_text: str, window: tuple[datetime, datetime]) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        cur = conn.execute(sql_text, window)
        names = [d.name for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    """(partition, check name) → AssetCheckEvaluation."""
    out = {}
    for ev in result.get_asset_check_evaluations():
        key = (ev.partition, ev.check_name)
        assert key not in out, f"two evaluations of {key}"
        out[key] = ev
    return out


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetMaterialization]:
    out = {}
    for event in result.get_asset_materialization_events():
        m = event.step_materialization_data.materialization
        out[m.partition] = m
    return out


def days(first: date, n: int) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range(n)]


# ---------------------------------------------------------------- edges, exact values, reruns

EDGE_DDL = """
CREATE TABLE edge (
    id bigint, ts timestamptz, amount numeric(38,10), doc jsonb, tags text[], note text,
    local_ts timestamp, flag boolean)
"""
NOTE = 'first line\nsecond line\r\nthird "quoted", back\\slash\ttab, é ✓ 🎉\n'
BIG = "9999999999999999999999999999.9999999999"  # 38 digits: the largest numeric(38,10)
EDGE_ROWS = [
    # id, ts (as stored, any offset), amount, doc, tags, note, local_ts, flag
    (1, "2026-02-28 23:59:59.999999+00", BIG, '{"a": [1, 2.5, null]}', ["a"], NOTE, None, True),
    (2, "2026-03-01 00:00:00+00", f"-{BIG}", '"just a string"', [], "x", None, False),
    (3, "2026-03-01 05:30:00+05:30", "0.0000000001", "[]", ["x", None], None, None, None),
    (4, "2026-03-01 00:29:59.999999+00:30", "0", "{}", None, "", None, True),
    (5, "2026-02-28 19:00:00-05", "-0.0000000001", None, ["", "multi\nline"], NOTE, None, True),
    (
        6,
        "2026-03-01 23:59:59.999999+00",
        "1.5",
        '{"s": "l1\\nl2 ✓", "n": {"k": "v"}}',
        ['quote"s, comma', "back\\slash"],
        "one\ntwo",
        "2026-03-01 12:34:56.123456",
        False,
    ),
    (7, "2026-03-01 22:00:00-02", "2", '{"late": true}', ["z"], "next day", None, True),
    (8, "2026-03-02 00:00:00+00", "3", None, None, None, "2026-03-02 00:00:00", None),
    # every column NULL but the date column
    (None, "2026-03-01 12:00:00+00", None, None, None, None, None, None),
    # no date: in no day at all
    (10, None, "4", '{"no": "day"}', ["n"], "never exported", None, True),
]
EDGE_DAYS = {  # UTC day -> ids (None: the all-NULL row)
    "2026-02-28": {1, 4},
    "2026-03-01": {2, 3, 5, 6, None},
    "2026-03-02": {7, 8},
}
EDGE_SELECT = "SELECT * FROM edge WHERE ts >= %s AND ts < %s"


def seed_edge(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(EDGE_DDL)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO edge VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s)", EDGE_ROWS
            )


def parsed_json(row: dict) -> dict:
    """A lake row with its jsonb column (JSON text in Parquet) parsed, as psycopg returns it."""
    return {**row, "doc": None if row["doc"] is None else json.loads(row["doc"])}


def _sort_key(row: dict) -> tuple:
    return (row["id"] is None, row["id"] or 0)


def test_each_day_holds_exactly_its_rows_glue_lists_them_and_rerun_changes_nothing(
    lake, monkeypatch
):
    seed_edge(lake["dsn"])
    c = component(lake, [{"name": "public.edge", "date_column": "ts"}], start_date="2026-02-20")
    instance = dg.DagsterInstance.ephemeral()
    monkeypatch.setenv("ETL_PROGRESS_INTERVAL_S", "0")  # log every batch

    result = materialize(c, "edge", instance, first="2026-02-28", last="2026-03-02")
    assert result.success
    assert len(instance.get_runs()) == 1  # the three days are one run
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("export of public.edge 2026-03-01: 5 rows," in m for m in messages)

    # each day's Parquet holds exactly that day's rows, with the source's values
    for day, ids in EDGE_DAYS.items():
        window = le.day_window(date.fromisoformat(day))
        lake_rows = sorted(
            (parsed_json(r) for r in read_day(lake, "edge", date.fromisoformat(day)).to_pylist()),
            key=_sort_key,
        )
        want = sorted(source_rows(lake["dsn"], EDGE_SELECT, window), key=_sort_key)
        assert {r["id"] for r in lake_rows} == ids, day
        assert lake_rows == want, day
    day1 = {r["id"]: r for r in read_day(lake, "edge", date(2026, 3, 1)).to_pylist()}
    assert str(day1[2]["amount"]) == f"-{BIG}"
    assert day1[5]["note"] == NOTE and day1[5]["tags"] == ["", "multi\nline"]
    assert day1[3]["ts"] == datetime(2026, 3, 1, tzinfo=UTC)
    assert day1[6]["ts"] == datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert all(v is None for k, v in day1[None].items() if k != "ts")
    schema = read_day(lake, "edge", date(2026, 3, 1)).schema
    assert schema.field("amount").type == pa.decimal128(38, 10)
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("tags").type == pa.list_(pa.string())
    assert schema.field("doc").type == pa.string()

    # Glue lists exactly the exported partitions, at their prefixes
    glue = lake["glue"]
    parts = glue.get_partitions(DatabaseName=lake["glue_database"], TableName="edge")["Partitions"]
    assert sorted(p["Values"] for p in parts) == [
        ["2026", "02", "28"],
        ["2026", "03", "01"],
        ["2026", "03", "02"],
    ]
    for p in parts:
        y, m, d = p["Values"]
        assert p["StorageDescriptor"]["Location"] == (
            f"s3://{lake['bucket']}/warehouse-lake/edge/year={y}/month={m}/day={d}/"
            f"run={result.run_id}/"
        )
    table = glue.get_table(DatabaseName=lake["glue_database"], Name="edge")["Table"]
    types = {col["Name"]: col["Type"] for col in table["StorageDescriptor"]["Columns"]}
    assert types["amount"] == "decimal(38,10)" and types["tags"] == "array<string>"

    # one materialization and four passing checks per day, each tagged with its partition
    mats = materializations(result)
    assert sorted(mats) == sorted(EDGE_DAYS)
    for day, ids in EDGE_DAYS.items():
        md = mats[day].metadata
        assert md["dagster/row_count"].value == len(ids)
        assert md["files"].value == 1 and md["bytes"].value > 0
        assert md["compression"].value == "zstd" and md["compression_ratio"].value > 0
        assert [c.name for c in md["dagster/column_schema"].schema.columns][:3] == [
            "id",
            "ts",
            "amount",
        ]
        assert md["s3_uris"].value == [
            f"s3://{lake['bucket']}/warehouse-lake/edge/year={day[:4]}/month={day[5:7]}/"
            f"day={day[8:]}/run={result.run_id}/part-00000.parquet"
        ]
    evs = evaluations(result)
    assert set(evs) == {(d, ck) for d in EDGE_DAYS for ck in ALL_CHECKS}
    assert all(ev.passed for ev in evs.values()), [ev for ev in evs.values() if not ev.passed]
    assert all(ev.target_materialization_data is not None for ev in evs.values())

    # re-running a day writes byte-identical parts under its own prefix, and the earlier run's
    # parts and a part of the older flat layout (directly under day=DD/) go away
    before = listing(lake)
    stale = s3_layout.lake_part_key("warehouse-lake", "edge", date(2026, 3, 1), 1)
    lake["s3"].put_object(Bucket=lake["bucket"], Key=stale, Body=b"left by an earlier run")
    rerun = materialize(c, "edge", instance, partition="2026-03-01")
    assert rerun.success
    after = listing(lake)
    renamed = {k.replace(result.run_id, rerun.run_id): e for k, e in before.items()}
    day_key = "day=01/run="
    assert {k: e for k, e in after.items() if day_key not in k} == {
        k: e for k, e in before.items() if day_key not in k
    }
    assert {k: e for k, e in after.items() if day_key in k} == {
        k: e for k, e in renamed.items() if day_key in k
    }  # same ETags: byte-identical objects
    assert materializations(rerun)["2026-03-01"].metadata["superseded_parts_deleted"].value == 2
    parts_after = glue.get_partitions(DatabaseName=lake["glue_database"], TableName="edge")
    assert sorted(p["Values"] for p in parts_after["Partitions"]) == sorted(
        p["Values"] for p in parts
    )
    assert all(ev.passed for ev in evaluations(rerun).values())

    # checks alone re-validate what is there without exporting: a missing Glue partition fails
    glue.delete_partition(
        DatabaseName=lake["glue_database"], TableName="edge", PartitionValues=["2026", "02", "28"]
    )
    # (execute_in_process refuses partition_key= when no asset is selected: tag the run)
    checks_job = dg.define_asset_job(
        "edge_checks",
        selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["lake", "t", "edge"])),
        partitions_def=c.partitions(),
    )
    checks_only = (
        dg.Definitions(assets=defs_of(c).assets, jobs=[checks_job], resources=platform_resources())
        .resolve_job_def("edge_checks")
        .execute_in_process(
            instance=instance, tags={"dagster/partition": "2026-02-28"}, raise_on_error=False
        )
    )
    assert not checks_only.success  # the Glue check is blocking
    evs = evaluations(checks_only)
    assert not evs[("2026-02-28", GLUE_CHECK)].passed
    assert evs[("2026-02-28", COUNT_CHECK)].passed and evs[("2026-02-28", READ_BACK_CHECK)].passed
    assert not materializations(checks_only)
    assert listing(lake) == after

    # a day without rows is a partition with one empty, readable part and passing checks
    empty = materialize(c, "edge", instance, partition="2026-02-27")
    assert empty.success and all(ev.passed for ev in evaluations(empty).values())
    assert read_day(lake, "edge", date(2026, 2, 27)).num_rows == 0
    assert materializations(empty)["2026-02-27"].metadata["dagster/row_count"].value == 0


# -------------------------------------------------------------- 30-day backfill in one run


def seed_daily(dsn: str, first: date, n_days: int, per_day: int) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE daily (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v text)"
        )
        rows = []
        for d in range(n_days):
            for i in range(per_day):
                ts = datetime.combine(first + timedelta(days=d), datetime.min.time(), UTC)
                rows.append((d * 100 + i, ts + timedelta(hours=5 * i), f"row {d}/{i}"))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO daily VALUES (%s, %s, %s)", rows)


DEFS_FILE = """
import json, os
import dagster as dg
from etl_platform.components.lake_export import LakeExport
from etl_platform.resources import platform_resources

defs = dg.component_defs(
    component=LakeExport.resolve_from_dict(json.loads(os.environ["LX_COMPONENT"])),
    resources=platform_resources(),
)
"""


def dg_launch(tmp_path: Path, attrs: dict[str, Any], *args: str) -> Path:
    """``dg launch ARGS`` against the component built from ``attrs`` (a code location file of
    its own, so the test does not depend on the project's other instances), in a fresh
    DAGSTER_HOME, which is returned."""
    defs_file = tmp_path / "lake_defs.py"
    defs_file.write_text(DEFS_FILE)
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home), "LX_COMPONENT": json.dumps(attrs)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [str(Path(sys.executable).with_name("dg")), "launch", *args, "-f", str(defs_file)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home


def attrs_of(lake: dict[str, Any], tables: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {
        "instance": "t",
        "source_dsn_env": lake["env"],
        "bucket": lake["bucket"],
        "prefix": "warehouse-lake",
        "glue_database": lake["glue_database"],
        "start_date": "2026-01-01",
        "tables": tables,
        **kw,
    }


def test_thirty_day_backfill_is_one_run_via_dg_launch_and_all_checks_pass(lake, tmp_path):
    first = date(2026, 1, 1)
    seed_daily(lake["dsn"], first, 31, 4)
    attrs = attrs_of(
        lake,
        [{"name": "daily", "date_column": "created_at", "primary_key": ["id"]}],
        compression="snappy",
    )
    t0 = time.monotonic()
    home = dg_launch(
        tmp_path, attrs, "--assets", "lake/t/daily", "--partition-range", "2026-01-01...2026-01-30"
    )
    elapsed = time.monotonic() - t0

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    try:
        runs = instance.get_runs()
        assert len(runs) == 1, f"{len(runs)} runs"  # the whole range is one run
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert runs[0].tags[RANGE_START] == "2026-01-01"
        key = dg.AssetKey(["lake", "t", "daily"])
        expected_days = days(first, 30)
        assert sorted(instance.get_materialized_partitions(key)) == expected_days
        infos = instance.event_log_storage.get_asset_check_partition_info(
            [dg.AssetCheckKey(key, name) for name in ALL_CHECKS]
        )
        by_check: dict[str, dict[str, str]] = {}
        for info in infos:
            by_check.setdefault(info.check_key.name, {})[info.partition_key] = (
                info.latest_execution_status.value
            )
            assert info.is_current  # each check targets the day's materialization
        assert set(by_check) == ALL_CHECKS
        for name, statuses in by_check.items():
            assert statuses == {d: "SUCCEEDED" for d in expected_days}, name
    finally:
        instance.dispose()

    # exactly the range landed, one snappy part per day, and Glue lists exactly those days
    keys = listing(lake)
    assert len(keys) == 30 and "day=31" not in "".join(keys)
    assert (
        pq.ParquetFile(f"{lake['bucket']}/{sorted(keys)[0]}", filesystem=s3fs(lake))
        .metadata.row_group(0)
        .column(0)
        .compression
        == "SNAPPY"
    )
    values = lake["glue"].get_partitions(DatabaseName=lake["glue_database"], TableName="daily")
    assert sorted("-".join(p["Values"]) for p in values["Partitions"]) == expected_days
    table = lake["glue"].get_table(DatabaseName=lake["glue_database"], Name="daily")["Table"]
    assert table["Parameters"]["primary_key"] == "id"
    print(f"dg launch of a 30-day range: {elapsed:.1f}s")

    # a day with far fewer rows than its trailing week warns, without failing the run
    with psycopg.connect(lake["dsn"]) as conn:
        conn.execute("DELETE FROM daily WHERE id BETWEEN 2901 AND 2903")  # 2026-01-30: 4 → 1
    instance = dg.DagsterInstance.ephemeral()
    c = LakeExport.resolve_from_dict(attrs)
    result = materialize(c, "daily", instance, partition="2026-01-30")
    assert result.success
    evs = evaluations(result)
    warn = evs[("2026-01-30", MEDIAN_CHECK)]
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    assert warn.metadata["trailing_median"].value == 4.0
    assert all(evs[("2026-01-30", n)].passed for n in ALL_CHECKS - {MEDIAN_CHECK})
    assert read_day(lake, "daily", date(2026, 1, 30)).num_rows == 1


# ------------------------------------------------------------------------------- dry run


def test_dry_run_reports_counts_and_writes_nothing(lake, tmp_path):
    seed_edge(lake["dsn"])
    c = component(lake, [{"name": "edge", "date_column": "ts"}], start_date="2026-02-20")
    instance = dg.DagsterInstance.ephemeral()
    run_config = {"ops": {c.op_name(c.tables[0]): {"config": {"dry_run": True}}}}
    result = materialize(
        c, "edge", instance, first="2026-02-28", last="2026-03-02", run_config=run_config
    )
    assert result.success
    observed = {
        e.event_specific_data.asset_observation.partition: (
            e.event_specific_data.asset_observation.metadata["source_rows"].value
        )
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_OBSERVATION
    }
    assert observed == {d: len(ids) for d, ids in EDGE_DAYS.items()}
    assert not result.get_asset_materialization_events()
    assert not result.get_asset_check_evaluations()

    # the dry-run job (checks not selected, marked by a run tag) does the same, launched the
    # way an operator would: `dg launch --job ... --partition-range ...`
    home = dg_launch(
        tmp_path,
        attrs_of(lake, [{"name": "edge", "date_column": "ts"}], start_date="2026-02-20"),
        "--job",
        c.dry_run_job_name,
        "--partition-range",
        "2026-02-28...2026-03-02",
    )
    cli_instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    try:
        (run,) = cli_instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags[DRY_RUN_TAG] == "true"
        key = dg.AssetKey(["lake", "t", "edge"])
        assert not cli_instance.get_materialized_partitions(key)
        planned = cli_instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
        ).records
        assert not planned  # no checks in a dry run
    finally:
        cli_instance.dispose()

    assert listing(lake) == {}  # no S3 object
    names = [db["Name"] for db in lake["glue"].get_databases()["DatabaseList"]]
    assert lake["glue_database"] not in names  # no Glue call at all


# ------------------------------------------------------------------ demo instance, schedule


def test_demo_instance_and_daily_schedule_for_the_previous_day():
    spec = yaml.safe_load((REPO / "etl_platform/defs/lake_demo/defs.yaml").read_text())
    assert spec["type"] == "etl_platform.components.LakeExport"
    c = LakeExport.resolve_from_dict(spec["attributes"])
    defs = defs_of(c)
    dg.Definitions.validate_loadable(defs)
    keys = {a.key.to_user_string() for a in defs.assets or []}
    for t in ("customers", "orders", "events"):
        assert {f"postgres/demo/{t}", f"lake/demo/{t}"} <= keys
    # failures reach SNS through the platform sensor (test_alerts.py), not a lake sensor
    assert not list(defs.sensors or [])

    schedule = defs.get_schedule_def("lake_demo_daily_schedule")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    tick = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2026-11-20"]
    job = defs.resolve_job_def("lake_demo_daily")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "lake/demo/customers",
        "lake/demo/orders",
        "lake/demo/events",
    }


def test_config_mistakes_are_refused_at_load():
    base = {
        "instance": "x",
        "bucket": "lake-b",
        "glue_database": "g",
        "start_date": "2026-01-01",
        "tables": [{"name": "orders", "date_column": "created_at"}],
    }
    LakeExport.resolve_from_dict(base)
    mistakes = {
        "is not YYYY-MM-DD": {"start_date": "2026-1-1x"},
        "use lowercase": {"instance": "Demo-1"},
        "two tables named 'orders'": {
            "tables": [
                {"name": "public.orders", "date_column": "a"},
                {"name": "sales.Orders", "date_column": "b"},
            ]
        },
        "primary key columns": {
            "tables": [{"name": "o", "date_column": "d", "columns": ["d"], "primary_key": ["id"]}]
        },
        "compression": {"compression": "gzip"},
    }
    for match, change in mistakes.items():
        with pytest.raises(Exception, match=match):
            LakeExport.resolve_from_dict({**base, **change})
    # a schema-qualified, mixed-case table gets a lowercase lake name unless one is given
    c = LakeExport.resolve_from_dict(
        {**base, "tables": [{"name": "Sales.Orders", "date_column": "d", "lake_name": "so"}]}
    )
    assert c.lake_key(c.tables[0]) == dg.AssetKey(["lake", "x", "so"])


def test_transient_failure_retries_the_step_and_skips_days_already_exported(lake, monkeypatch):
    from etl_platform.core.retry import TransientError

    seed_edge(lake["dsn"])
    c = component(lake, [{"name": "edge", "date_column": "ts"}], start_date="2026-02-20")
    real_export, calls = day_export.export_day, []

    def flaky_export(source, table, date_column, window, **kw):
        calls.append(window[0].date().isoformat())
        if calls.count("2026-03-01") == 1 and calls[-1] == "2026-03-01":
            raise TransientError("connection reset by peer (simulated)")
        return real_export(source, table, date_column, window, **kw)

    monkeypatch.setattr(day_export, "export_day", flaky_export)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(c, "edge", instance, first="2026-02-28", last="2026-03-02")
    assert result.success
    # attempt 1: 02-28, 03-01 (fails); attempt 2: skips 02-28, then 03-01 and 03-02
    assert calls == ["2026-02-28", "2026-03-01", "2026-03-01", "2026-03-02"]
    mats = [
        e.step_materialization_data.materialization.partition
        for e in result.get_asset_materialization_events()
    ]
    assert sorted(mats) == ["2026-02-28", "2026-03-01", "2026-03-02"]
    # every day checked (2026-02-28 twice: once per attempt), every check passing
    evs = result.get_asset_check_evaluations()
    assert {(ev.partition, ev.check_name) for ev in evs} == {
        (d, ck) for d in EDGE_DAYS for ck in ALL_CHECKS
    }
    assert all(ev.passed for ev in evs)
