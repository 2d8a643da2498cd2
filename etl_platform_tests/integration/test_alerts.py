"""The platform's one alert path: a failed run of each pipeline reaches SNS (moto) through the
single run-failure sensor declared in ``etl_platform/definitions.py``. An SQS queue subscribed
to the topic receives the message, as an on-call inbox would."""

from __future__ import annotations

import json
import time

import boto3
import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from etl_platform.components import alerts
from etl_platform.resources import NotificationResource

from .dynamo_pipeline import Pipeline, make_component
from .test_lake_component import component, lake, materialize  # noqa: F401  (fixture)

UI_URL = "https://dagster.example.com"


@pytest.fixture
def alert_inbox(local_stack, unique_name) -> dict[str, str]:
    """An SNS topic with an SQS queue subscribed to it."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=f"alerts-{unique_name}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"alerts-{unique_name}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return {"topic": topic, "queue_url": queue_url}


def _evaluate_alert_sensor(
    instance: dg.DagsterInstance, run_id: str, settings: alerts.AlertSettings
) -> None:
    """One evaluation of the platform sensor for the failed run ``run_id``."""
    run = instance.get_run_by_id(run_id)
    failure = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)[0]
    sensor = alerts.platform_failure_sensor(settings)
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=failure.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"sns": NotificationResource()},
    ).for_run_failure()
    sensor(context)


def _received(queue_url: str) -> dict:
    sqs = boto3.client("sqs")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1
        ).get("Messages", [])
        if messages:
            return json.loads(messages[0]["Body"])
    raise AssertionError("no alert reached the subscribed queue")


def _assert_alert(body: dict, run_id: str, asset: str, partition: str) -> str:
    assert body["Subject"].startswith(f"etl_platform: run {run_id[:8]} failed")
    text = body["Message"]
    assert f"run_id: {run_id}" in text
    assert f"assets: {asset}" in text
    assert f"partition: {partition}" in text
    assert f"link: {UI_URL}/runs/{run_id}" in text
    error_line = next(line for line in text.splitlines() if line.startswith("error: "))
    assert len(error_line) > len("error: ") and "\n" not in error_line
    return text


def test_a_failed_lake_run_reaches_sns(lake, alert_inbox):  # noqa: F811  (fixture)
    c = component(lake, [{"name": "no_such_table", "date_column": "ts"}])
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(c, "no_such_table", instance, partition="2026-03-01", raise_on_error=False)
    assert not result.success

    settings = alerts.AlertSettings(topic_arn=alert_inbox["topic"], ui_url=UI_URL)
    _evaluate_alert_sensor(instance, result.run_id, settings)

    text = _assert_alert(
        _received(alert_inbox["queue_url"]), result.run_id, "lake/t/no_such_table", "2026-03-01"
    )
    assert "table no_such_table not found" in text
    assert lake["dsn"] not in text  # the source DSN never leaves the process


def test_a_failed_dynamodb_run_reaches_sns(local_stack, alert_inbox, unique_name):
    # No DynamoDB table of that name: the segment extract fails naming the table.
    pipeline = Pipeline(make_component(unique_name), dg.DagsterInstance.ephemeral())
    partition = pipeline.segment_key("2026-11-02", 1)
    result = pipeline.materialize("segment_csv", partition, raise_on_error=False)
    assert not result.success

    settings = alerts.AlertSettings(topic_arn=alert_inbox["topic"], ui_url=UI_URL)
    _evaluate_alert_sensor(pipeline.instance, result.run_id, settings)

    text = _assert_alert(
        _received(alert_inbox["queue_url"]),
        result.run_id,
        f"s3/{unique_name}/segment_csv",
        "2026-11-02|1",
    )
    assert unique_name in text.split("error: ", 1)[1].splitlines()[0]


def test_without_a_topic_the_sensor_skips_and_says_why(lake):  # noqa: F811  (fixture)
    c = component(lake, [{"name": "no_such_table", "date_column": "ts"}])
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(c, "no_such_table", instance, partition="2026-03-01", raise_on_error=False)
    run = instance.get_run_by_id(result.run_id)
    failure = instance.all_logs(result.run_id, of_type=DagsterEventType.RUN_FAILURE)[0]
    sensor = alerts.platform_failure_sensor(alerts.AlertSettings(topic_arn=None))
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=failure.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"sns": NotificationResource()},
    ).for_run_failure()
    skipped = sensor(context)
    assert isinstance(skipped, dg.SkipReason) and alerts.TOPIC_ENV in skipped.skip_message


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv(alerts.TOPIC_ENV, "arn:aws:sns:us-east-1:123456789012:x")
    monkeypatch.setenv(alerts.UI_URL_ENV, "https://ui.example/")
    settings = alerts.AlertSettings.from_env()
    assert settings.topic_arn == "arn:aws:sns:us-east-1:123456789012:x"
    assert settings.run_link("abc") == "https://ui.example/runs/abc"
    monkeypatch.delenv(alerts.TOPIC_ENV)
    monkeypatch.delenv(alerts.UI_URL_ENV)
    assert alerts.AlertSettings.from_env() == alerts.AlertSettings(None, alerts.DEFAULT_UI_URL)


def test_the_code_location_has_exactly_one_run_failure_sensor_over_every_job(local_stack):
    from etl_platform.definitions import defs

    loaded = defs()
    failure_sensors = [
        s for s in loaded.sensors or [] if isinstance(s, dg.RunStatusSensorDefinition)
    ]
    # declared with no monitored jobs: Dagster then watches every job of the code location
    assert [s.name for s in failure_sensors] == [alerts.ALERT_SENSOR]


def _materialize_demo(key: list[str], partition: str, instance: dg.DagsterInstance):
    from etl_platform.definitions import defs

    asset_key = dg.AssetKey(key)
    return dg.materialize(
        [defs().resolve_assets_def(asset_key)],  # bound to the platform's resources
        selection=[asset_key],
        partition_key=partition,
        instance=instance,
        raise_on_error=False,
    )


def test_a_failed_dump_run_reaches_sns(local_stack, alert_inbox):
    # A scrub of a dump that was never taken: the step fails naming the dump.
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("postgres_dump_demo", ["no-such-dump"])
    result = _materialize_demo(["s3", "demo", "clean_dump"], "no-such-dump", instance)
    assert not result.success

    settings = alerts.AlertSettings(topic_arn=alert_inbox["topic"], ui_url=UI_URL)
    _evaluate_alert_sensor(instance, result.run_id, settings)

    text = _assert_alert(
        _received(alert_inbox["queue_url"]), result.run_id, "s3/demo/clean_dump", "no-such-dump"
    )
    assert "no-such-dump" in text.split("error: ", 1)[1].splitlines()[0]
    assert local_stack.scrub_key() not in text  # the pseudonymization key never leaves


def test_a_failed_microbatch_run_reaches_sns(local_stack, alert_inbox, monkeypatch):
    # A bulk load of a day against a warehouse that cannot be reached: the error names the
    # setting, never the password.
    monkeypatch.setenv("ETL_WAREHOUSE_DSN", "postgresql://loader:secret@127.0.0.1:9/nowhere")
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize_demo(["warehouse", "orders_demo", "orders"], "2026-11-02", instance)
    assert not result.success

    settings = alerts.AlertSettings(topic_arn=alert_inbox["topic"], ui_url=UI_URL)
    _evaluate_alert_sensor(instance, result.run_id, settings)

    text = _assert_alert(
        _received(alert_inbox["queue_url"]),
        result.run_id,
        "warehouse/orders_demo/orders",
        "2026-11-02",
    )
    assert "secret" not in text
