"""Micro-batch loading, pure: which events load, in which manifests, and the sensor's memory."""

from etl_platform.core.microbatch.cursor import SEEN_LIMIT, SensorMemory
from etl_platform.core.microbatch.events import (
    DatedEvent,
    DayPattern,
    drop_duplicate_events,
    event_fingerprint,
)
from etl_platform.core.microbatch.manifest import (
    BatchLimits,
    Manifest,
    ManifestFile,
    group_into_manifests,
)

__all__ = [
    "SEEN_LIMIT",
    "BatchLimits",
    "DatedEvent",
    "DayPattern",
    "Manifest",
    "ManifestFile",
    "SensorMemory",
    "drop_duplicate_events",
    "event_fingerprint",
    "group_into_manifests",
]
