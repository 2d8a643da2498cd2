"""Load-time checks of a DynamoDB instance's YAML: every config error that needs no I/O.

Each check is a pydantic field validator (or is called by the model validator), so a bad value
fails ``dg check yaml`` with the file, the field and the rule it breaks. Nothing here depends
on the clock in a way that could make a valid YAML stop loading: the partition bound is a
warning against a horizon, never an error.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta

from etl_platform.core import warehouse as warehouse_sql

#: DynamoDB's limit on ``TotalSegments`` of a parallel scan.
DYNAMODB_MAX_SEGMENTS = 1_000_000
#: Dagster's UI and storage degrade past about this many partitions of one asset.
MAX_PARTITIONS = 100_000
#: How far past today the days × segments bound is checked.
PARTITION_HORIZON = timedelta(days=2 * 365)
#: The environment variable the warehouse resource takes its dialect from.
DIALECT_ENV = "ETL_WAREHOUSE_DIALECT"

_INSTANCE = re.compile(r"^[a-z][a-z0-9_]*$")
_DYNAMODB_TABLE = re.compile(r"^[A-Za-z0-9_.\-]{3,255}$")
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]*$")
# The longest partition slug a staging schema name gets: YYYYMMDD_ plus the segment number.
_STAGING_DAY = date(2000, 1, 1)


class PartitionBoundWarning(UserWarning):
    """An instance's days × segments passes Dagster's practical partition bound in time."""


def check_instance_name(value: str) -> str:
    """Part of every asset key, job, schedule and S3 key: lowercase letters, digits and _."""
    if not isinstance(value, str):
        return value  # pydantic reports the type
    if not _INSTANCE.match(value):
        raise ValueError(
            f"instance {value!r}: use lowercase letters, digits and _, starting with a letter "
            "(it is part of asset keys, job names and S3 keys)"
        )
    return value


def check_table_name(value: str) -> str:
    """DynamoDB table names: 3 to 255 of ``A-Z a-z 0-9 _ - .``."""
    if not isinstance(value, str):
        return value  # pydantic reports the type
    if not _DYNAMODB_TABLE.match(value):
        raise ValueError(
            f"table_name {value!r} is not a DynamoDB table name: 3 to 255 characters of "
            "letters, digits, '_', '-' and '.'"
        )
    return value


def check_attribute_name(value: str) -> str:
    """The entity rule's attribute: a DynamoDB attribute name, 1 to 65,535 bytes."""
    if not 1 <= len(value.encode("utf-8")) <= 65535:
        raise ValueError(
            f"entity_rule.attribute {value[:80]!r}: a DynamoDB attribute name is 1 to 65,535 bytes"
        )
    return value


def check_separator(value: str) -> str:
    if not value:
        raise ValueError("entity_rule.separator must not be empty")
    return value


def check_schema_name(value: str) -> str:
    """A warehouse schema name as both dialects keep it: lower case (Redshift folds
    identifiers to lower case), letters, digits and _."""
    if not isinstance(value, str):
        return value  # pydantic reports the type
    if value != value.lower():
        raise ValueError(
            f"target_schema {value!r}: use lower case; Redshift folds identifiers to lower "
            f"case, so it would publish {value.lower()!r}"
        )
    if not _SCHEMA.match(value):
        raise ValueError(
            f"target_schema {value!r}: use lowercase letters, digits and _, not starting "
            "with a digit"
        )
    return value


def check_start_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"start_date {value!r} is not YYYY-MM-DD") from exc
    if len(value) != 10:
        raise ValueError(f"start_date {value!r} is not YYYY-MM-DD")
    return value


def warehouse_dialect_from_env() -> warehouse_sql.Dialect | None:
    """The dialect the warehouse resource is built with, when ``ETL_WAREHOUSE_DIALECT`` is
    set; None when it is not (the resource then defaults to PostgreSQL)."""
    value = os.environ.get(DIALECT_ENV)
    if not value:
        return None
    try:
        return warehouse_sql.parse_dialect(value)
    except ValueError as exc:
        raise ValueError(f"{DIALECT_ENV}: {exc}") from exc


def check_published_schema(target_schema: str, total_segments: int) -> None:
    """``target_schema`` and every schema name derived from it (``__new``, ``__previous``, the
    longest ``__staging__<date>_<segment>``) are identifiers the warehouse keeps as written:
    already lower case (Redshift folds identifiers to lower case, so a mixed-case name would
    be a different schema there) and within the byte limit of the dialect named
    by ``ETL_WAREHOUSE_DIALECT``; unset, the stricter rule (PostgreSQL's 63 bytes) applies."""
    known = warehouse_dialect_from_env()
    dialect = known or warehouse_sql.Dialect.POSTGRES
    rule = (
        f"{dialect.name} ({DIALECT_ENV})"
        if known
        else f"the stricter rule, PostgreSQL's, because {DIALECT_ENV} is unset"
    )
    check_schema_name(target_schema)
    if warehouse_sql.is_owned_schema(target_schema):
        raise ValueError(
            f"target_schema {target_schema!r} ends like a platform-owned schema (__new, "
            "__previous, __swap, __staging__*); pick another name"
        )
    longest_staging = warehouse_sql.staging_schema_name(
        target_schema, f"{_STAGING_DAY.strftime('%Y%m%d')}_{total_segments - 1:04d}"
    )
    derived = [
        ("target_schema", target_schema),
        ("its previous version", warehouse_sql.previous_schema_name(target_schema)),
        ("its staging schema", longest_staging),
    ]
    limit = dialect.max_identifier_bytes
    for what, name in derived:
        size = len(name.encode("utf-8"))
        if size > limit or "\x00" in name or not name:
            raise ValueError(
                f"target_schema {target_schema!r}: {what} {name!r} is {size} bytes; "
                f"identifiers are at most {limit} bytes under {rule} and no NUL: use a "
                "shorter target_schema"
            )


def partition_bound_note(start: date, total_segments: int, today: date | None = None) -> str | None:
    """A warning when the date × segment partitions (one per day since ``start`` per segment)
    pass :data:`MAX_PARTITIONS` before today + :data:`PARTITION_HORIZON`; None otherwise.

    Never an error: the count grows by ``total_segments`` every day, and a YAML that loads
    today must load tomorrow. The note says on which day the bound is passed."""
    today = today or datetime.now(UTC).date()
    horizon = today + PARTITION_HORIZON
    days = (horizon - start).days + 1
    if days * total_segments <= MAX_PARTITIONS:
        return None
    crossing = start + timedelta(days=MAX_PARTITIONS // total_segments)
    when = "already" if crossing <= today else f"on {crossing.isoformat()}"
    return (
        f"Partition bound: start_date {start.isoformat()} × {total_segments} segments passes "
        f"Dagster's practical bound of {MAX_PARTITIONS:,} partitions per asset {when} "
        f"(checked to {horizon.isoformat()}); the UI and run storage slow down past it. Move "
        "start_date later or use fewer segments (docs/dynamo-etl.md, 'Sizing')."
    )


def check_grants(value: dict[str, list[str]]) -> dict[str, list[str]]:
    """``grants``: role names as both engines keep them (lower case: Redshift folds them) and
    table privileges both engines grant; the error names the role and the privilege."""
    for role in value:
        if not _SCHEMA.match(role):
            raise ValueError(
                f"grants: role {role!r}: use lowercase letters, digits and _, not starting with "
                "a digit (Redshift folds role names to lower case)"
            )
    try:
        warehouse_sql.grant_statements("redshift", "grants_check", value)
    except ValueError as exc:
        raise ValueError(f"grants: {exc}") from None
    return value
