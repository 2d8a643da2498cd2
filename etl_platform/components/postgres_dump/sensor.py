"""The dump sensor and the schedules of one dump pipeline instance (bodies; the component
declares them).

The sensor short-polls the instance's SQS queue within the tick budget. A message is one S3
notification: ``s3:TestEvent`` is acknowledged and ignored; an object-created event for the
dump's ``manifest.json`` adds the dump's partition and requests ``clean_dump`` + ``target``
with run key = object key + ETag (a replayed event launches nothing); events for a dump's other
files are acknowledged. Anything else (not JSON, another event, another bucket, outside the
prefix) is left in the queue and the queue's redrive policy moves
it to the DLQ after its receive count (it is received again after ``poison_visibility_s``, about
one tick, rather than the queue's visibility timeout).

A message is deleted only after its run request is recorded: this tick's receipt handles go
into the cursor, which Dagster stores together with the run requests, and the next tick deletes
them. A tick that fails records nothing; its messages return after the visibility timeout and
their run keys dedupe the replay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from etl_platform.core.s3_events import parse_message_body
from etl_platform.core.scrub.layout import announced_dump_key, events_prefix
from etl_platform.resources import ObjectStoreResource, QueueResource

from .dump import new_dump_key
from .dump_objects import DumpLocation, delete_dump, read_manifest

DUMP_TAG = "etl_platform/dump"
EVENT_TAG = "etl_platform/dump_event"
TICK_BUDGET_S = 20.0
MAX_MESSAGES_PER_TICK = 200


@dataclass(frozen=True)
class SensorSettings:
    instance: str
    queue_name: str
    extract_bucket: str
    extract_prefix: str
    partitions_name: str
    asset_selection: Sequence[dg.AssetKey]
    poison_visibility_s: int = 30


def run_tags(instance: str, dump_key: str, event: str | None = None) -> dict[str, str]:
    """``etl_platform/dump`` = instance/dump: the run-queue limit that keeps two runs of one
    dump apart (``dagster.yaml``: ``applyLimitPerUniqueValue``)."""
    tags = {DUMP_TAG: f"{instance}/{dump_key}"}
    if event:
        tags[EVENT_TAG] = event[:255]
    return tags


def _already_requested(instance: dg.DagsterInstance, run_key: str) -> bool:
    runs = instance.get_run_records(dg.RunsFilter(tags={EVENT_TAG: run_key[:255]}), limit=1)
    return bool(runs)


def _acknowledge(context: dg.SensorEvaluationContext, queue: QueueResource, url: str) -> None:
    """Delete the messages whose run requests the previous tick recorded."""
    pending = json.loads(context.cursor or "{}").get("ack", [])
    if not pending:
        return
    try:
        queue.delete(url, pending)
    except Exception as exc:  # an expired receipt: the message returns, its run key dedupes it
        context.log.warning(f"acknowledging {len(pending)} messages failed: {exc}")


def dump_sensor_tick(
    context: dg.SensorEvaluationContext, queue: QueueResource, settings: SensorSettings
) -> dg.SensorResult:
    url = queue.queue_url(settings.queue_name, setting="queue_name")
    _acknowledge(context, queue, url)
    deadline = time.monotonic() + TICK_BUDGET_S
    seen: set[str] = set()
    ack: list[str] = []
    requested: dict[str, str] = {}  # run key → dump key
    while time.monotonic() < deadline and len(seen) < MAX_MESSAGES_PER_TICK:
        fresh = [m for m in queue.receive(url, max_messages=10) if m.message_id not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message.message_id)
            parsed = parse_message_body(
                message.body,
                bucket=settings.extract_bucket,
                prefix=events_prefix(settings.extract_prefix),
                object_details=False,
            )
            if parsed.poison is not None:
                context.log.warning(
                    f"queue {settings.queue_name}: message {message.message_id} (received "
                    f"{message.receive_count} times) is not a dump event: {parsed.poison}; "
                    "left for the DLQ"
                )
                queue.change_visibility(url, message.receipt_handle, settings.poison_visibility_s)
                continue
            for event in parsed.events:
                dump_key = announced_dump_key(settings.extract_prefix, event.key)
                if dump_key is not None:
                    requested[f"{event.key}:{event.etag}"] = dump_key
            ack.append(message.receipt_handle)
    known = set(context.instance.get_dynamic_partitions(settings.partitions_name))
    requests = [
        dg.RunRequest(
            run_key=run_key,
            partition_key=dump_key,
            asset_selection=list(settings.asset_selection),
            tags=run_tags(settings.instance, dump_key, run_key),
        )
        for run_key, dump_key in sorted(requested.items())
        if not _already_requested(context.instance, run_key)
    ]
    new_partitions = sorted({r.partition_key for r in requests} - known)  # type: ignore[misc]
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[
            dg.AddDynamicPartitionsRequest(settings.partitions_name, new_partitions)
        ]
        if new_partitions
        else [],
        cursor=json.dumps({"ack": ack}),
    )


def dump_schedule_tick(
    context: dg.ScheduleEvaluationContext, instance: str, partitions_name: str, raw_key: dg.AssetKey
) -> dg.RunRequest:
    """A new dump: a partition named after the tick time, and a run of ``raw_dump`` for it."""
    dump_key = new_dump_key(context.scheduled_execution_time)
    context.instance.add_dynamic_partitions(partitions_name, [dump_key])
    return dg.RunRequest(
        run_key=dump_key,
        partition_key=dump_key,
        asset_selection=[raw_key],
        tags=run_tags(instance, dump_key),
    )


@dataclass(frozen=True)
class ReconcileSettings:
    instance: str
    partitions_name: str
    extract_bucket: str
    extract_prefix: str
    load_bucket: str
    load_prefix: str
    retention_days: int
    asset_selection: Sequence[dg.AssetKey]


def reconcile_tick(
    context: dg.ScheduleEvaluationContext, store: ObjectStoreResource, settings: ReconcileSettings
) -> list[dg.RunRequest]:
    """Request every dump whose raw dump is complete and whose clean dump is not verified (a
    sensor never requests a run key twice: this is how a failed scrub gets another try), and
    prune dumps older than the retention (objects first, then the partition)."""
    now = context.scheduled_execution_time or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.retention_days)
    requests = []
    for dump_key in context.instance.get_dynamic_partitions(settings.partitions_name):
        raw = DumpLocation(
            settings.extract_bucket, settings.extract_prefix, dump_key, "extract_bucket"
        )
        clean = DumpLocation(settings.load_bucket, settings.load_prefix, dump_key, "load_bucket")
        raw_manifest, clean_manifest = read_manifest(store, raw), read_manifest(store, clean)
        created = _created_at(clean_manifest or raw_manifest)
        if created is not None and created < cutoff:
            delete_dump(store, raw)
            delete_dump(store, clean)
            context.instance.delete_dynamic_partition(settings.partitions_name, dump_key)
            context.log.info(f"pruned dump {dump_key} (created {created.isoformat()})")
            continue
        verified = (clean_manifest or {}).get("verified")
        retry = raw_manifest is not None and not verified
        if retry and not _in_flight(context, settings, dump_key):
            requests.append(
                dg.RunRequest(
                    run_key=f"reconcile:{dump_key}:{now.isoformat()}",
                    partition_key=dump_key,
                    asset_selection=list(settings.asset_selection),
                    tags=run_tags(settings.instance, dump_key),
                )
            )
    return requests


def _in_flight(
    context: dg.ScheduleEvaluationContext, settings: ReconcileSettings, dump_key: str
) -> bool:
    statuses = [
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
    ]
    tags = run_tags(settings.instance, dump_key)
    return bool(context.instance.get_run_records(dg.RunsFilter(tags=tags, statuses=statuses)))


def _created_at(manifest: dict[str, Any] | None) -> datetime | None:
    if not manifest:
        return None
    stamp = manifest.get("raw_created_at") or manifest.get("created_at")
    return datetime.fromisoformat(stamp) if stamp else None
