"""The code location loads: with no pipeline instances, and with the shipped demo instances."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from etl_platform.resources import platform_resources


def test_definitions_load_with_no_instances():
    defs = dg.Definitions(resources=platform_resources())
    defs.validate_loadable(defs)
    assert set(defs.resources or {}) >= {"dynamodb", "s3", "sqs", "glue", "warehouse", "pg_tools"}


def test_demo_instances_load(local_stack):
    from etl_platform.definitions import defs

    loaded = defs()
    dg.Definitions.validate_loadable(loaded)
    graph = loaded.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys, "the demo instances define no assets"
    for asset_key in graph.get_all_asset_keys():
        node = graph.get(asset_key)
        if node.is_materializable:
            assert node.description, f"{asset_key.to_user_string()} has no docstring"


def test_dagster_definitions_validate_cli(local_stack):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
