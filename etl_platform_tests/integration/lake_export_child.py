"""A lake export of one day in a process of its own, for a test to SIGKILL midway.

``python lake_export_child.py ATTRS_JSON TABLE PARTITION`` materializes the real lake asset of
``TABLE`` for ``PARTITION`` (the component built from ``ATTRS_JSON``, the platform's resources,
an ephemeral instance) in parts of 10 rows. After its first part is uploaded the upload holds,
as a slow upload of a large day would, so the killing test finds the export midway whatever
the machine's speed: some parts under the export's own prefix, the Glue flip not yet done.
The environment (AWS endpoint, the source DSN variable) is the test's.
"""

from __future__ import annotations

import json
import sys
import time

import dagster as dg

from etl_platform.components.lake_export import LakeExport, day_export
from etl_platform.resources import platform_resources

REAL_EXPORT = day_export.export_day


def export_holding_after_first_part(source, table, date_column, window, *, sink, **kw):
    def sink_then_hold(part):
        location = sink(part)
        while True:  # the part is uploaded; the test kills this process here
            time.sleep(1)
        return location

    return REAL_EXPORT(
        source, table, date_column, window, sink=sink_then_hold, **{**kw, "part_rows": 10}
    )


def main(attrs_json: str, table: str, partition: str) -> None:
    day_export.export_day = export_holding_after_first_part
    component = LakeExport.resolve_from_dict(json.loads(attrs_json))
    defs = dg.component_defs(component=component, resources=platform_resources())
    dg.materialize(
        list(defs.assets or []),
        selection=[dg.AssetKey(["lake", component.instance, table])],
        resources=platform_resources(),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key=partition,
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
