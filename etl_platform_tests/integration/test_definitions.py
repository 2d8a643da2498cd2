"""The code location loads: with no pipeline instances, and with the shipped demo instances."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_dg_cli_checks_and_lists_the_pipeline_components():
    env = {k: v for k, v in os.environ.items()}
    for command in (["dg", "check", "yaml"], ["dg", "check", "defs"]):
        result = subprocess.run(
            [str(Path(sys.executable).parent / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "list", "components", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "etl_platform.components.DynamoTableEtl" in listed.stdout


def test_dagster_definitions_validate_module():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "etl_platform.definitions",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
