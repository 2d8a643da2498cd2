"""Run-failure alerts: a sensor that publishes a failed run (run id, job, assets, partition, the
steps' errors) to an SNS topic. The lake uses it today; it is meant to become the platform's one
failure sensor for every pipeline.

Messages carry what the steps' failures say; the failure policy makes those name the bad input
and never a secret (DSNs are redacted before they reach an error).
"""

from collections.abc import Callable, Collection, Sequence

import dagster as dg

from etl_platform.resources import NotificationResource

MAX_ERROR_CHARS = 4000

FailureMessage = Callable[[dg.RunFailureSensorContext], tuple[str, str] | None]


def run_targets(
    run: dg.DagsterRun,
    ours: Sequence[dg.AssetKey],
    job_names: Collection[str],
    instance: dg.DagsterInstance | None = None,
) -> list[dg.AssetKey]:
    """The assets of ``ours`` that a run targeted (empty: not our run). From the run's asset
    (check) selection, the job name, or else the assets the run planned."""
    selected = set(run.asset_selection or ())
    selected |= {ck.asset_key for ck in run.asset_check_selection or ()}
    if run.job_name in job_names and not selected:
        selected = set(ours)
    if not selected and instance is not None:  # e.g. an ad-hoc asset job
        planned = instance.get_records_for_run(
            run.run_id,
            of_type={
                dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
            },
        ).records
        for record in planned:
            event = record.event_log_entry.dagster_event
            if event is None:
                continue
            if event.asset_key is not None:
                selected.add(event.asset_key)
            elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                selected.add(event.asset_check_planned_data.asset_key)
    return [k for k in ours if k in selected]


def run_partition(tags: dict[str, str]) -> str:
    """The run's partition, or its partition range ``first...last``, or ``(none)``."""
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    if "dagster/asset_partition_range_start" in tags:
        return (
            f"{tags['dagster/asset_partition_range_start']}..."
            f"{tags.get('dagster/asset_partition_range_end', '')}"
        )
    return "(none)"


def step_errors(context: dg.RunFailureSensorContext) -> str:
    """One line per failed step (the failure's description, else its error), capped."""
    errors = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data if data else None
        if user is not None and user.description:
            text = user.description
        elif data is not None and data.error is not None:
            text = data.error.message.strip()
        else:
            text = event.message or ""
        errors.append(f"- step {event.step_key}: {text}")
    if not errors:
        error = context.failure_event.event_specific_data
        message = getattr(getattr(error, "error", None), "message", None)
        errors.append(f"- {(message or context.failure_event.message or '').strip()}")
    error_text = "\n".join(errors)
    if len(error_text) > MAX_ERROR_CHARS:
        error_text = error_text[:MAX_ERROR_CHARS] + "\n[truncated]"
    return error_text


def failure_message(
    context: dg.RunFailureSensorContext,
    *,
    ours: Sequence[dg.AssetKey],
    job_names: Collection[str],
    subject_prefix: str,
    headline: str,
) -> tuple[str, str] | None:
    """Subject and body of the alert for a failed run that targeted ``ours`` (None otherwise)."""
    run = context.dagster_run
    keys = run_targets(run, ours, job_names, context.instance)
    if not keys:
        return None
    subject = f"{subject_prefix}: run {run.run_id[:8]} failed"
    body = "\n".join(
        [
            headline,
            f"run_id: {run.run_id}",
            f"job: {run.job_name}",
            f"assets: {', '.join(k.to_user_string() for k in keys)}",
            f"partition: {run_partition(run.tags)}",
            "error:",
            step_errors(context),
        ]
    )
    return subject, body


def run_failure_alert_sensor(
    *, name: str, description: str, topic_arn: str | None, message: FailureMessage
) -> dg.SensorDefinition:
    """A run-failure sensor (running by default) publishing ``message(context)`` to SNS."""

    @dg.run_failure_sensor(
        name=name,
        description=description,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
    )
    def _alert(context: dg.RunFailureSensorContext, sns: NotificationResource) -> None:
        text = message(context)
        if text is None or topic_arn is None:
            return
        subject, body = text
        message_id = sns.publish(topic_arn, subject, body)
        context.log.info(
            f"published failure of run {context.dagster_run.run_id} to {topic_arn} ({message_id})"
        )

    return _alert
