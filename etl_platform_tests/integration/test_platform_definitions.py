"""The platform-wide pieces that definitions.py declares."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg


def test_automation_sensor_runs_by_default(local_stack):
    from etl_platform.definitions import AUTOMATION_SENSOR, defs

    loaded = defs()
    sensor = loaded.get_sensor_def(AUTOMATION_SENSOR)
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status is dg.DefaultSensorStatus.RUNNING
    automated = [
        node.key
        for node in loaded.resolve_asset_graph().asset_nodes
        if node.automation_condition is not None
    ]
    assert automated, "no demo asset declares an automation condition"
    selected = sensor.asset_selection.resolve(loaded.resolve_asset_graph())
    assert set(automated) <= selected


SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")


def _partitions(pdef: dg.PartitionsDefinition | None) -> Any:
    if pdef is None:
        return None
    if isinstance(pdef, dg.MultiPartitionsDefinition):
        return {d.name: _partitions(d.partitions_def) for d in pdef.partitions_defs}
    if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        return {"cron": pdef.cron_schedule, "start": pdef.start.date().isoformat()}
    if isinstance(pdef, dg.DynamicPartitionsDefinition):
        return {"dynamic": pdef.name}
    if isinstance(pdef, dg.StaticPartitionsDefinition):
        keys = pdef.get_partition_keys()
        return {"static": len(keys), "first": keys[0], "last": keys[-1]}
    return type(pdef).__name__


def definitions_snapshot(loaded: dg.Definitions) -> dict[str, Any]:
    """What users and other code rely on: asset keys, their partitions and pools, checks,
    sensors, schedules and jobs of the demo instances."""
    graph = loaded.resolve_asset_graph()
    assets = {}
    for node in sorted(graph.asset_nodes, key=lambda n: n.key.to_user_string()):
        assets[node.key.to_user_string()] = {
            "materializable": node.is_materializable,
            "group": node.group_name,
            "partitions": _partitions(node.partitions_def),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
            "pools": sorted(node.pools or ()),
        }
    repo = loaded.get_repository_def()
    return {
        "assets": assets,
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "schedules": sorted(
            f"{s.name} {s.cron_schedule} {s.default_status.value}" for s in repo.schedule_defs
        ),
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
    }


def test_definitions_snapshot(local_stack):
    """The demo instances' contract. After an intended change, regenerate with
    ``ETL_UPDATE_SNAPSHOT=1 pytest -k definitions_snapshot`` and review the diff."""
    from etl_platform.definitions import defs

    got = definitions_snapshot(defs())
    if os.environ.get("ETL_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(SNAPSHOT.read_text())
    assert got == want
