"""The code location: every pipeline instance declared under ``defs/``, the shared resources, and
the platform-wide pieces, declared once here: the automation condition sensor and the one
run-failure alert sensor (SNS) for every pipeline, both running from the start."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from etl_platform.components.alerts import platform_failure_sensor
from etl_platform.resources import platform_resources

AUTOMATION_SENSOR = "platform_automation_sensor"


def platform_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates every asset's automation condition (daily crons, eager staging and publish), on by
    default so a fresh instance runs them without a click in the UI."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Runs the platform's declared automation: daily extracts, eager loads.",
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Component instances found under ``etl_platform/defs/`` with the platform resources."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(
            resources=platform_resources(),
            sensors=[platform_automation_sensor(), platform_failure_sensor()],
        ),
    )
