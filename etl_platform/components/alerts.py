"""The platform's one alert path: a run-failure sensor over every job of the code location
(DynamoDB, lake, and any pipeline added later, with nothing to declare) that publishes each
failed run to one SNS topic: run id, job, asset(s), partition, the error's first line, the
failed steps' errors and a link to the run in the Dagster UI.

Declared once, in ``etl_platform/definitions.py``; components declare no failure sensors.
Settings come from the environment: ``ETL_ALERT_TOPIC_ARN`` (unset: the sensor skips, saying so)
and ``ETL_DAGSTER_UI_URL`` (the UI's base URL for the link). Messages carry what the steps'
failures say; the failure policy makes those name the bad input and never a secret (DSNs are
redacted before they reach an error).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import dagster as dg

from etl_platform.resources import NotificationResource

ALERT_SENSOR = "platform_run_failure_alert"
TOPIC_ENV = "ETL_ALERT_TOPIC_ARN"
UI_URL_ENV = "ETL_DAGSTER_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:3000"
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go (``topic_arn``; None: nowhere) and the UI base URL for run links."""

    topic_arn: str | None
    ui_url: str = DEFAULT_UI_URL

    @classmethod
    def from_env(cls) -> AlertSettings:
        topic = os.environ.get(TOPIC_ENV) or None
        ui_url = (os.environ.get(UI_URL_ENV) or DEFAULT_UI_URL).rstrip("/")
        return cls(topic_arn=topic, ui_url=ui_url)

    def run_link(self, run_id: str) -> str:
        return f"{self.ui_url}/runs/{run_id}"


def run_assets(run: dg.DagsterRun, instance: dg.DagsterInstance | None = None) -> list[str]:
    """The assets a run targeted: its asset (check) selection, else the assets it planned
    (e.g. a job selecting assets), else none (an op job)."""
    selected = set(run.asset_selection or ())
    selected |= {ck.asset_key for ck in run.asset_check_selection or ()}
    if not selected and instance is not None:
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
    return sorted(k.to_user_string() for k in selected)


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


def step_errors(context: dg.RunFailureSensorContext) -> list[str]:
    """One entry per failed step (the failure's description, else its error); the run's own
    failure message when no step failed (e.g. the run worker died)."""
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
        errors.append(f"step {event.step_key}: {text.strip()}")
    if not errors:
        error = context.failure_event.event_specific_data
        message = getattr(getattr(error, "error", None), "message", None)
        errors.append((message or context.failure_event.message or "").strip())
    return errors


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "(no message)")


def failure_message(
    context: dg.RunFailureSensorContext, settings: AlertSettings
) -> tuple[str, str]:
    """Subject and body of the alert for one failed run."""
    run = context.dagster_run
    assets = run_assets(run, context.instance)
    errors = step_errors(context)
    details = "\n".join(f"- {e}" for e in errors)
    if len(details) > MAX_ERROR_CHARS:
        details = details[:MAX_ERROR_CHARS] + "\n[truncated]"
    what = assets[0] if len(assets) == 1 else run.job_name
    subject = f"etl_platform: run {run.run_id[:8]} failed ({what})"
    body = "\n".join(
        [
            f"Dagster run failed: {what}",
            f"run_id: {run.run_id}",
            f"job: {run.job_name}",
            f"assets: {', '.join(assets) or '(none: op job)'}",
            f"partition: {run_partition(run.tags)}",
            f"error: {first_line(errors[0])}",
            f"link: {settings.run_link(run.run_id)}",
            "failed steps:",
            details,
        ]
    )
    return subject, body


def platform_failure_sensor(settings: AlertSettings | None = None) -> dg.SensorDefinition:
    """The one run-failure sensor (every job of the code location; running by default)."""
    settings = settings or AlertSettings.from_env()
    target = settings.topic_arn or f"nowhere: {TOPIC_ENV} is unset"

    @dg.run_failure_sensor(
        name=ALERT_SENSOR,
        description=f"Publishes every failed run of every pipeline (run id, assets, partition, "
        f"error, link) to SNS ({target}).",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
    )
    def _alert(
        context: dg.RunFailureSensorContext, sns: NotificationResource
    ) -> dg.SkipReason | None:
        if settings.topic_arn is None:
            return dg.SkipReason(f"{TOPIC_ENV} is unset: failed runs are not published")
        subject, body = failure_message(context, settings)
        message_id = sns.publish(settings.topic_arn, subject, body)
        context.log.info(
            f"published failure of run {context.dagster_run.run_id} to "
            f"{settings.topic_arn} ({message_id})"
        )
        return None

    return _alert
