"""`etl-platform demo seed` builds the whole demo world once, and a second seed changes nothing."""

from __future__ import annotations

import json

import boto3
import psycopg

from etl_platform.local import demo


def test_demo_world_is_complete_and_idempotent(local_stack, stack_env):
    # seeds whatever is missing: another test on this session's stack may have seeded it first
    demo.seed_demo_world()

    dynamodb = boto3.client("dynamodb")
    scanned = sum(
        page["Count"]
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=demo.DYNAMO_TABLE, Select="COUNT"
        )
    )
    assert scanned == demo.DYNAMO_ITEMS
    kinds = {
        item["sk"]["S"].split("#")[0]
        for item in dynamodb.scan(TableName=demo.DYNAMO_TABLE, Limit=200)["Items"]
    }
    assert kinds == {"ORG", "GROUP", "FINDING", "EVENT"}

    s3 = boto3.client("s3")
    assert set(demo.BUCKETS.values()) <= {b["Name"] for b in s3.list_buckets()["Buckets"]}
    sqs = boto3.client("sqs")
    for bucket, queue in demo.QUEUES.values():
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        assert json.loads(attributes["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 3
        notification = s3.get_bucket_notification_configuration(Bucket=bucket)
        assert notification["QueueConfigurations"][0]["QueueArn"].endswith(f":{queue}")
    assert boto3.client("glue").get_database(Name=demo.GLUE_DATABASE)["Database"]["Name"]

    with psycopg.connect(stack_env["ETL_SOURCE_DSN"]) as conn:
        counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in demo.SOURCE_TABLES
        }
    assert all(n > 0 for n in counts.values())

    second = demo.seed_demo_world()
    assert second["items"] == 0 and second["source_rows"] == 0
