"""The platform-wide pieces that definitions.py declares."""

from __future__ import annotations

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
