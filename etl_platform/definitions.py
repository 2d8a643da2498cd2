"""The code location: every pipeline instance declared under ``defs/`` plus shared resources."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from etl_platform.resources import platform_resources


@dg.definitions
def defs() -> dg.Definitions:
    """Component instances found under ``etl_platform/defs/`` with the platform resources."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources=platform_resources()),
    )
