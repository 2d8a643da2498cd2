"""Step: roll the published schema back (runbook: "restore yesterday's tables").

Swaps the published schema with its kept ``__previous`` version in one transaction, under the
publish lock; running it again rolls forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from etl_platform.core import warehouse as warehouse_sql
from etl_platform.resources import WarehouseResource

from ..run_policy import step_failure_policy

if TYPE_CHECKING:
    from .component import DynamoTableEtl


@step_failure_policy("rollback of {config.target_schema!r}")
def rollback_publish(
    config: DynamoTableEtl, context: dg.OpExecutionContext, warehouse: WarehouseResource
) -> None:
    """Swap the published schema with its kept previous version, in one transaction.
    Running it again rolls forward."""
    target = config.target_schema
    with warehouse.publish_lock(target, context.log):
        warehouse.run_statements(warehouse_sql.rollback_statements(warehouse.sql_dialect, target))
    context.log.info(f"{target} and {warehouse_sql.previous_schema_name(target)} swapped")
