"""The failure policy wraps each DynamoDB step whole: a terminal error after the segment scan
fails the step once (no retry rescans the segment), naming the input; a transient one retries."""

from __future__ import annotations

import dagster as dg
import pytest

from etl_platform.components.run_policy import step_failure_policy

from .dynamo_pipeline import DAY, Pipeline, entity_items, failure_text, make_component, make_table


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _step_events(result: dg.ExecuteInProcessResult) -> list[dg.DagsterEventType]:
    return [e.event_type for e in result.all_events]


def test_a_segment_extract_failing_terminally_after_its_scan_is_not_retried(
    local_stack, instance, unique_name
):
    make_table(unique_name, entity_items(30))
    # The data bucket does not exist: the extract scans the segment, then its first write to
    # the bucket (withdrawing the old manifest) fails with S3's NoSuchBucket, a terminal error.
    missing = f"{unique_name}-gone"
    component = make_component(
        unique_name, segments=2, entity_rule={"attribute": "sk"}, data_bucket=missing
    )
    pipeline = Pipeline(component, instance)
    assert pipeline.materialize("data_schemas").success

    result = pipeline.materialize("segment_csv", pipeline.segment_key(DAY, 1), raise_on_error=False)
    assert not result.success
    events = _step_events(result)
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events
    assert dg.DagsterEventType.STEP_RESTARTED not in events
    assert events.count(dg.DagsterEventType.STEP_START) == 1
    scans = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if "scanned" in (entry.user_message or "")
    ]
    assert len(scans) == 1, f"the segment was scanned {len(scans)} times: {scans}"
    assert "segment 1 of 2026-11-02: scanned" in scans[0]

    message = failure_text(result)
    assert f"extract of segment 1 of {DAY} from DynamoDB table {unique_name!r}" in message
    assert f"s3://{missing}/" in message
    assert "NoSuchBucket" in message
    assert f"data_bucket {missing!r}: no such bucket" in message


def test_the_failure_description_names_the_step_arguments():
    @step_failure_policy("load of segment {segment} of {table!r}")
    def load(table: str, segment: int) -> None:
        raise KeyError("no column 'x'")

    with pytest.raises(dg.Failure) as failure:
        load("orders", segment=3)
    assert failure.value.description.startswith("load of segment 3 of 'orders': KeyError")
    assert failure.value.allow_retries is False


def test_a_transient_error_is_left_to_the_retry_policy():
    @step_failure_policy("scan of {table}")
    def scan(table: str) -> None:
        raise ConnectionResetError("connection reset by peer")

    with pytest.raises(ConnectionResetError):
        scan("orders")
