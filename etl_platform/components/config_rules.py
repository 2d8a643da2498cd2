"""Load-time rules shared by every component's model: a config error that needs no I/O is
raised while the YAML loads, so `dg check` names the file and the field."""

from __future__ import annotations

from dagster._utils.schedules import is_valid_cron_string

from etl_platform.core.s3_layout import check_bucket_name

__all__ = ["check_bucket_name", "check_cron"]


def check_cron(value: str | None) -> str | None:
    """A five-field cron string Dagster can schedule (``0 4 * * 1``), or None."""
    if value is not None and not is_valid_cron_string(value):
        raise ValueError(
            f"cron string {value!r} is not a valid five-field cron expression "
            "(minute hour day-of-month month day-of-week, e.g. '0 4 * * 1')"
        )
    return value
