"""A DynamoDB instance's YAML is checked when it loads: every error that needs no I/O names the
field (``dg check defs`` the instance, ``dg check yaml`` the file and line of numeric rules),
and no valid YAML stops loading as time passes."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pydantic
import pytest

from etl_platform.components.dynamo_etl import DynamoTableEtl
from etl_platform.components.dynamo_etl.validation import (
    MAX_PARTITIONS,
    PartitionBoundWarning,
    partition_bound_note,
)
from etl_platform.resources import platform_resources

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {
    "instance": "orders",
    "table_name": "orders",
    "target_schema": "orders_pub",
    "start_date": "2026-11-01",
    "data_bucket": "etl-data",
    "schema_cache_bucket": "etl-cache",
}


@pytest.fixture(autouse=True)
def dialect_unset(monkeypatch):
    monkeypatch.delenv("ETL_WAREHOUSE_DIALECT", raising=False)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("instance", "Orders", "instance 'Orders': use lowercase letters"),
        ("table_name", "ab", "table_name 'ab' is not a DynamoDB table name"),
        ("table_name", "orders/2024", "not a DynamoDB table name"),
        ("target_schema", "Orders_Pub", "Redshift folds identifiers to lower case"),
        ("target_schema", "orders-pub", "use lowercase letters, digits and _"),
        ("target_schema", "orders__previous", "ends like a platform-owned schema"),
        ("data_bucket", "etl_data", "bucket 'etl_data' is not a valid S3 bucket name"),
        ("data_bucket", "my..bucket", "no two adjacent periods"),
        ("schema_cache_bucket", "192.168.1.10", "not formatted as an IP address"),
        ("schema_cache_bucket", "xn--cache", "reserved prefix"),
        ("schema_refresh_cron", "0 25 * * 1", "cron string '0 25 * * 1'"),
        ("daily_extract_cron", "every day at 2", "cron string 'every day at 2'"),
        ("total_segments", 0, "greater than or equal to 1"),
        ("total_segments", 1_000_001, "less than or equal to 1000000"),
        ("start_date", "2026-13-01", "start_date '2026-13-01' is not YYYY-MM-DD"),
        ("scan_page_size", 0, "greater than or equal to 1"),
        ("entity_rule", {"attribute": ""}, "a DynamoDB attribute name is 1 to 65,535 bytes"),
        ("entity_rule", {"attribute": "sk", "separator": ""}, "separator must not be empty"),
    ],
)
def test_a_bad_value_is_refused_at_load_naming_the_field(field, value, message):
    with pytest.raises(pydantic.ValidationError) as info:
        DynamoTableEtl(**{**BASE, field: value})
    text = str(info.value)
    assert field in text and message in text, text


def test_a_good_instance_loads_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        component = DynamoTableEtl(
            **BASE, total_segments=100, daily_extract_cron="15 2 * * *", scan_page_size=1
        )
    assert component.total_segments == 100
    # DynamoDB's own limit loads too; only the partition bound warns
    with pytest.warns(PartitionBoundWarning):
        assert DynamoTableEtl(**BASE, total_segments=1_000_000).total_segments == 1_000_000


# 50 bytes: the schema fits everywhere, its longest staging schema (74 bytes) only on Redshift.
LONG_SCHEMA = "s" * 50


def test_derived_schema_names_are_checked_against_the_stricter_rule_when_the_dialect_is_unknown():
    with pytest.raises(pydantic.ValidationError) as info:
        DynamoTableEtl(**{**BASE, "target_schema": LONG_SCHEMA})
    text = str(info.value)
    assert "its staging schema" in text and "at most 63 bytes" in text
    assert "the stricter rule, PostgreSQL's, because ETL_WAREHOUSE_DIALECT is unset" in text


def test_derived_schema_names_follow_the_dialect_of_the_environment(monkeypatch):
    monkeypatch.setenv("ETL_WAREHOUSE_DIALECT", "redshift")
    assert DynamoTableEtl(**{**BASE, "target_schema": LONG_SCHEMA}).target_schema == LONG_SCHEMA
    with pytest.raises(pydantic.ValidationError, match="at most 127 bytes under redshift"):
        DynamoTableEtl(**{**BASE, "target_schema": "s" * 110})
    monkeypatch.setenv("ETL_WAREHOUSE_DIALECT", "postgres")
    with pytest.raises(pydantic.ValidationError, match="at most 63 bytes under postgres"):
        DynamoTableEtl(**{**BASE, "target_schema": LONG_SCHEMA})
    monkeypatch.setenv("ETL_WAREHOUSE_DIALECT", "oracle")
    with pytest.raises(pydantic.ValidationError, match="ETL_WAREHOUSE_DIALECT.*oracle"):
        DynamoTableEtl(**BASE)


# -- the days x segments bound: a warning against a horizon, never a load failure ----------


def test_the_partition_bound_is_a_warning_shown_at_load_and_on_the_assets():
    with pytest.warns(PartitionBoundWarning, match="instance 'orders'.*Partition bound"):
        component = DynamoTableEtl(**{**BASE, "start_date": "2020-01-01", "total_segments": 64})
    defs = dg.Definitions.merge(
        dg.component_defs(component=component), dg.Definitions(resources=platform_resources())
    )
    graph = defs.resolve_asset_graph()
    for thing in ("segment_csv", "staging"):
        key = dg.AssetKey(["s3" if thing == "segment_csv" else "warehouse", "orders", thing])
        assert "Partition bound: start_date 2020-01-01 × 64 segments" in (
            graph.get(key).description or ""
        )


def test_the_bound_note_names_the_day_it_is_passed_within_the_horizon():
    start, today = date(2026, 11, 1), date(2026, 11, 30)
    assert partition_bound_note(start, 4, today=today) is None
    note = partition_bound_note(start, 200, today=today)
    crossing = start + timedelta(days=MAX_PARTITIONS // 200)
    assert note is not None and f"on {crossing.isoformat()}" in note
    assert "already" in (partition_bound_note(date(2000, 1, 1), 100, today=today) or "")


@pytest.mark.parametrize("years_later", [0, 1, 5, 50, 500])
def test_a_yaml_valid_today_still_loads_any_day_later(years_later):
    """The bound grows every day: on any later day the check warns, it never raises."""
    start = date(2026, 11, 1)
    today = start + timedelta(days=365 * years_later)
    for segments in (1, 4, 1000, 1_000_000):
        note = partition_bound_note(start, segments, today=today)
        assert note is None or note.startswith("Partition bound")


# -- through the dg CLI: the file, the line and the field -----------------------------------


def _dg_project(root: Path, attributes: str) -> Path:
    """A one-instance dg project using this repo's component registry."""
    (root / "badproj" / "defs" / "orders").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "badproj"\nversion = "0"\n\n[tool.dg]\ndirectory_type = "project"\n'
        '\n[tool.dg.project]\nroot_module = "badproj"\n'
        'registry_modules = ["etl_platform.components"]\n'
    )
    (root / "badproj" / "__init__.py").write_text("")
    (root / "badproj" / "definitions.py").write_text(
        "from pathlib import Path\n\nimport dagster as dg\n\n\n@dg.definitions\n"
        "def defs() -> dg.Definitions:\n"
        "    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)\n"
    )
    yaml = root / "badproj" / "defs" / "orders" / "defs.yaml"
    yaml.write_text(f"type: etl_platform.components.DynamoTableEtl\nattributes:\n{attributes}")
    return yaml


def _dg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(REPO_ROOT)]))
    return subprocess.run(
        [str(Path(sys.executable).parent / "dg"), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _attributes(**overrides: Any) -> str:
    values = {**BASE, **overrides}
    return "".join(
        f"  {k}: {v!r}\n" if isinstance(v, str) else f"  {k}: {v}\n" for k, v in values.items()
    )


def test_dg_check_yaml_names_the_file_line_and_field(tmp_path):
    """Numbers and shapes are in the YAML schema (a string field also accepts a template, so
    string rules run at load: see the next test)."""
    yaml = _dg_project(tmp_path, _attributes(total_segments=0))
    result = _dg(tmp_path, "check", "yaml")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{yaml}:" in output and "attributes.total_segments" in output


def test_dg_check_defs_names_the_component_field_and_rule(tmp_path):
    _dg_project(tmp_path, _attributes(schema_refresh_cron="0 25 * * 1", data_bucket="etl_data"))
    result = _dg(tmp_path, "check", "defs")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "orders" in output and "schema_refresh_cron" in output
    assert "cron string '0 25 * * 1' is not a valid five-field cron expression" in output
    assert "data_bucket" in output and "'etl_data' is not a valid S3 bucket name" in output
