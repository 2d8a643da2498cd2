"""Sensor step: S3 events on SQS into manifests and micro-batch run requests.

Runbook of one tick:

1. Acknowledge what earlier ticks requested: delete the messages of every run key that is now a
   run (the order is manifest written, run requested, message deleted; a run key that never
   became a run leaves its messages to come back after their visibility timeout).
2. Short-poll the queue until it is empty, the tick's wait budget (``max_wait_seconds``) is
   spent, or the tick's message cap is reached. ``s3:TestEvent`` messages are deleted; poison
   messages (not an object-created event of the bucket and prefix) are logged with the reason
   and left undeleted (made visible again after ``poison_retry_after_seconds``), so the redrive
   policy moves them to the DLQ after ``maxReceiveCount`` receives.
3. Drop duplicate events (same key and ETag/sequencer, in this tick or remembered from earlier
   ones: those messages are acknowledged with the run that loads the original).
4. Group the rest into manifests by day and the batching limits, write each manifest to S3, and
   request one run per manifest: run key = manifest id, partition = its day, the manifest in the
   run config.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from etl_platform.components.microbatch.load import LoadTarget, write_manifest
from etl_platform.core.microbatch import (
    BatchLimits,
    DatedEvent,
    Manifest,
    SensorMemory,
    drop_duplicate_events,
    event_fingerprint,
    group_into_manifests,
)
from etl_platform.core.s3_events import ObjectCreated, parse_message_body
from etl_platform.core.s3_layout import s3_uri
from etl_platform.resources import ObjectStoreResource, QueueResource

MANIFEST_TAG = "etl_platform/manifest"
INSTANCE_TAG = "etl_platform/microbatch"
ATTEMPT_TAG = "etl_platform/manifest_attempt"


@dataclass(frozen=True)
class SensorSettings:
    queue: str
    limits: BatchLimits
    max_wait_s: float
    max_messages: int
    poison_retry_after_s: int
    op_name: str
    first_day: date


@dataclass
class TickHarvest:
    """What one tick received."""

    events: list[tuple[ObjectCreated, str]]  # event, receipt handle of its message
    test_events: list[str]
    poison: list[tuple[str, str, str]]  # message id, receipt handle, reason


def _existing_run_keys(instance: dg.DagsterInstance, run_keys: list[str]) -> set[str]:
    found: set[str] = set()
    for run_key in run_keys:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1)
        if runs:
            found.add(run_key)
    return found


def _poll(
    sqs: QueueResource, queue_url: str, target: LoadTarget, settings: SensorSettings
) -> TickHarvest:
    harvest = TickHarvest([], [], [])
    seen_ids: set[str] = set()
    deadline = time.monotonic() + settings.max_wait_s
    received = 0
    while received < settings.max_messages:
        wait = 1 if time.monotonic() + 1 < deadline else 0
        messages = sqs.receive(queue_url, max_messages=10, max_wait_s=wait)
        fresh = [m for m in messages if m.message_id not in seen_ids]
        if not fresh:
            break
        for message in fresh:
            seen_ids.add(message.message_id)
            received += 1
            parsed = parse_message_body(
                message.body, bucket=target.source_bucket, prefix=target.source_prefix
            )
            if parsed.test_event:
                harvest.test_events.append(message.receipt_handle)
            elif parsed.poison is not None:
                harvest.poison.append((message.message_id, message.receipt_handle, parsed.poison))
            else:
                harvest.events += [(e, message.receipt_handle) for e in parsed.events]
        if time.monotonic() >= deadline:
            break
    return harvest


def _run_request(
    target: LoadTarget, settings: SensorSettings, manifest: Manifest, uri: str
) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=manifest.manifest_id,
        partition_key=manifest.day.isoformat(),
        run_config=manifest_run_config(settings.op_name, manifest, uri),
        tags={MANIFEST_TAG: manifest.manifest_id, INSTANCE_TAG: target.instance, ATTEMPT_TAG: "1"},
    )


def manifest_run_config(op_name: str, manifest: Manifest, uri: str) -> dict[str, Any]:
    """The run config of a micro-batch run: the manifest's id, URI and files."""
    return {
        "ops": {
            op_name: {
                "config": {
                    "manifest_id": manifest.manifest_id,
                    "manifest_uri": uri,
                    "files": [f.as_config() for f in manifest.files],
                }
            }
        }
    }


def _within_partitions(
    dated: list[DatedEvent], first_day: date
) -> tuple[list[DatedEvent], list[DatedEvent]]:
    last_day = datetime.now(UTC).date() + timedelta(days=1)
    inside = [d for d in dated if first_day <= d.day <= last_day]
    return inside, [d for d in dated if not first_day <= d.day <= last_day]


def sqs_tick(
    context: dg.SensorEvaluationContext,
    target: LoadTarget,
    settings: SensorSettings,
    sqs: QueueResource,
    store: ObjectStoreResource,
) -> dg.SensorResult:
    """One tick of ``<I>_sqs_sensor`` (see the module docstring)."""
    memory = SensorMemory.from_cursor(context.cursor)
    queue_url = sqs.queue_url(settings.queue, setting="queue")
    deletable = memory.settle(_existing_run_keys(context.instance, list(memory.pending)))
    harvest = _poll(sqs, queue_url, target, settings)
    if deletable or harvest.test_events:
        sqs.delete(queue_url, deletable + harvest.test_events)
    for message_id, handle, reason in harvest.poison:
        context.log.warning(f"poison message {message_id} on {settings.queue}: {reason}")
        sqs.change_visibility(queue_url, handle, settings.poison_retry_after_s)

    handles: dict[str, list[str]] = defaultdict(list)
    for event, handle in harvest.events:
        handles[event_fingerprint(event)].append(handle)
    fresh, duplicates = drop_duplicate_events([e for e, _ in harvest.events], memory.seen)
    for event, run_key in duplicates:
        if run_key is not None:  # a version an earlier tick requested: ack with that run
            memory.acknowledge_after(run_key, handles.pop(event_fingerprint(event), []))
    dated, out_of_range = _within_partitions(
        [DatedEvent.of(e, target.day_pattern) for e in fresh], settings.first_day
    )
    for item in out_of_range:  # no partition to load into: left for redrive, like poison
        context.log.warning(
            f"{s3_uri(item.event.bucket, item.event.key)}: day {item.day} is outside the "
            f"partitions ({settings.first_day} to tomorrow); its message is left for the DLQ"
        )
        for handle in handles.pop(event_fingerprint(item.event), []):
            sqs.change_visibility(queue_url, handle, settings.poison_retry_after_s)
    fresh = [item.event for item in dated]
    requests: list[dg.RunRequest] = []
    for manifest in group_into_manifests(target.instance, dated, settings.limits):
        uri = write_manifest(target, store, manifest)  # durable before the run is requested
        requests.append(_run_request(target, settings, manifest, uri))
        urls = {f.url for f in manifest.files}
        fps = [event_fingerprint(e) for e in fresh if s3_uri(e.bucket, e.key) in urls]
        memory.remember(fps, manifest.manifest_id)
        for fp in fps:
            memory.acknowledge_after(manifest.manifest_id, handles.pop(fp, []))
    context.log.info(
        f"{settings.queue}: {len(harvest.events)} events, {len(duplicates)} duplicates, "
        f"{len(harvest.poison)} poison, {len(requests)} manifests"
    )
    if not requests:
        return dg.SensorResult(
            skip_reason=f"no new files on {settings.queue}", cursor=memory.to_cursor()
        )
    return dg.SensorResult(run_requests=requests, cursor=memory.to_cursor())
