"""Issue 9 acceptance on the local stack: the dump pipeline end to end through Dagster (a
sensor tick driven here), a new column failing the scrub, poison and duplicate SQS messages.
Restore kills and reader loops are in test_dump_restore.py."""

from __future__ import annotations

import gzip
import json
import re
import time

import boto3
import dagster as dg
import psycopg
import pytest

from etl_platform.components.postgres_dump.component import PostgresDumpPipeline
from etl_platform.resources import ObjectStoreResource, PgToolsResource, QueueResource

from .dump_world import (
    HMAC_ENV,
    HMAC_VALUE,
    RULES,
    make_buckets,
    pii_values,
    seed_source,
    table_rows,
)


def make_queue(name: str, bucket: str, max_receives: int = 3) -> tuple[str, str]:
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "300",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return url, dlq


class Pipeline:
    """One component instance on per-test buckets, queue and databases, run in-process."""

    def __init__(self, name: str, source: str, target_env: str) -> None:
        self.extract, self.load = f"{name}-x", f"{name}-l"
        make_buckets(self.extract, self.load)
        self.queue_url, self.dlq_url = make_queue(name, self.extract)
        self.component = PostgresDumpPipeline(
            instance=name,
            source_dsn_env="ETL_TEST_SOURCE_DSN",
            extract_bucket=self.extract,
            queue_name=name,
            dlq_name=f"{name}-dlq",
            scrub_rules=RULES,
            hmac_key_env=HMAC_ENV,
            load_bucket=self.load,
            target_dsn_env=target_env,
            scrub_workers=2,
            poison_visibility_seconds=1,
        )
        self.resources = {
            "s3": ObjectStoreResource(),
            "sqs": QueueResource(),
            "pg_tools": PgToolsResource(),
        }
        self.defs = dg.Definitions.merge(
            self.component.build_defs(None),  # type: ignore[arg-type]
            dg.Definitions(resources=self.resources),
        )
        self.instance = dg.DagsterInstance.ephemeral()
        self.source = source
        self.cursor: str | None = None

    def key(self, system: str, thing: str) -> dg.AssetKey:
        return self.component.key(system, thing)

    def materialize(self, keys, partition: str, tags=None, raise_on_error=True):
        assets = [a for a in self.defs.assets if isinstance(a, dg.AssetsDefinition)]
        return dg.materialize(
            assets,
            selection=keys,
            partition_key=partition,
            resources=self.resources,
            instance=self.instance,
            tags=tags,
            raise_on_error=raise_on_error,
        )

    def take_dump(self, dump_key: str) -> dg.ExecuteInProcessResult:
        self.instance.add_dynamic_partitions(self.component.name, [dump_key])
        return self.materialize([self.key("s3", "raw_dump")], dump_key)

    def log_lines(self, run_id: str) -> list[str]:
        return [e.user_message for e in self.instance.all_logs(run_id) if e.user_message]

    def tick(self) -> dg.SensorResult:
        sensor = self.defs.get_sensor_def(f"{self.component.name}_dump_sensor")
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=self.defs,
            resources=self.resources,
        )
        result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, request.partition_keys
            )
        self.cursor = result.cursor
        return result

    def launch(self, request: dg.RunRequest, raise_on_error=True):
        return self.materialize(
            request.asset_selection,
            request.partition_key,
            tags={**request.tags, "dagster/run_key": request.run_key},
            raise_on_error=raise_on_error,
        )


@pytest.fixture
def pipeline(local_stack, fresh_database, stack_state, unique_name, monkeypatch):
    monkeypatch.setenv(HMAC_ENV, HMAC_VALUE)
    monkeypatch.setenv("ETL_TEST_SOURCE_DSN", fresh_database)
    target = f"{unique_name}_target"
    with psycopg.connect(stack_state.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{target}"')
    monkeypatch.setenv("ETL_TEST_TARGET_DSN", stack_state.dsn(target))
    seed_source(fresh_database)
    yield Pipeline(unique_name, fresh_database, "ETL_TEST_TARGET_DSN")
    with psycopg.connect(stack_state.dsn("postgres"), autocommit=True) as conn:
        for suffix in ("", "__next", "__previous"):
            conn.execute(f'DROP DATABASE IF EXISTS "{target}{suffix}" WITH (FORCE)')


def _all_text(dsn: str) -> str:
    """Every row of every table in the target, as text."""
    with psycopg.connect(dsn) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT quote_ident(table_name) FROM information_schema.tables "
                "WHERE table_schema = 'public'"
            )
        ]
        return "\n".join(
            str(row[0]) for t in tables for row in conn.execute(f"SELECT t::text FROM {t} t")
        )


def _matching(lines: list[str], pattern: str) -> list[str]:
    return [line for line in lines if re.search(pattern, line)]


COUNT_RATE = r"[\d,]+ {unit}, [\d,]+ {unit}/s"
OF_TOTAL_ETA = r", \d+% of [\d,]+, ETA \d"


def test_end_to_end_dump_sensor_scrub_restore(pipeline, stack_state, monkeypatch):
    monkeypatch.setenv("ETL_PROGRESS_INTERVAL_S", "0")  # a progress line at every update
    dump_run = pipeline.take_dump("d1")
    result = pipeline.tick()
    assert [(r.partition_key, r.run_key.split(":")[0]) for r in result.run_requests] == [
        ("d1", "dumps/d1/manifest.json")
    ]
    run = pipeline.launch(result.run_requests[0])
    assert run.success
    target_dsn = stack_state.dsn(f"{pipeline.component.instance}_target")
    # no original email, phone or name left in any column of the target...
    target_text = _all_text(target_dsn)
    assert [v for v in pii_values() if v.decode() in target_text] == []
    # ...or in the clean dump's bytes, every object of which requested encryption
    s3 = boto3.client("s3")
    clean = b""
    for obj in s3.list_objects_v2(Bucket=pipeline.load)["Contents"]:
        got = s3.get_object(Bucket=pipeline.load, Key=obj["Key"])
        assert got["ServerSideEncryption"] == "AES256", obj["Key"]
        body = got["Body"].read()
        clean += gzip.decompress(body) if obj["Key"].endswith(".gz") else body
    assert [v for v in pii_values() if v in clean] == []
    # the raw dump is gone once its clean dump is verified (keep_raw_dumps_days: 0)
    assert s3.list_objects_v2(Bucket=pipeline.extract).get("KeyCount") == 0
    # non-PII data identical, foreign keys hold
    for query in (
        "SELECT id, customer_id, amount, note FROM orders ORDER BY id",
        "SELECT * FROM products ORDER BY id",
        "SELECT id, tier, created_at FROM customers ORDER BY id",
        "SELECT id, customer_id, country FROM addresses ORDER BY id",
    ):
        assert table_rows(target_dsn, query) == table_rows(pipeline.source, query)
    orphans = table_rows(
        target_dsn,
        "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.email = o.contact_email "
        "WHERE o.contact_email IS NOT NULL AND (c.id IS NULL OR c.id <> o.customer_id)",
    )
    assert orphans == [(0,)]
    with psycopg.connect(target_dsn) as conn:
        fks = conn.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").fetchone()
    assert fks == (3,)
    # metadata reports rows, actions and the residual scan; secrets appear nowhere
    clean_mat = pipeline.instance.get_latest_materialization_event(pipeline.key("s3", "clean_dump"))
    metadata = clean_mat.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["rows_per_table"].value["public.audit_log"] == {"before": 50, "after": 0}
    assert metadata["residual_scan"].value["hits"] == 0
    assert metadata["columns_per_action"].value["fake_email"] == 2
    logs = "\n".join(str(e) for e in pipeline.instance.all_logs(run.run_id))
    assert HMAC_VALUE not in logs
    # every long step logged progress: counts, rates, and an ETA where the total is known
    dumped = pipeline.log_lines(dump_run.run_id)
    assert _matching(dumped, r"^pg_dump of d1: done, [\d,]+ bytes in ")
    upload = COUNT_RATE.format(unit="bytes") + OF_TOTAL_ETA
    assert _matching(
        dumped, rf"^upload of \d+ files to s3://{pipeline.extract}/dumps/d1/: {upload}"
    )
    lines = pipeline.log_lines(run.run_id)
    assert _matching(lines, r"^scrub of d1: " + COUNT_RATE.format(unit="bytes") + OF_TOTAL_ETA)
    assert _matching(lines, r"^scrub of d1: 5 tables, [\d,]+ tables/s, 100% of 5, ETA 0s")
    assert _matching(lines, r"^scrub of d1, table public.customers: [\d,]+ bytes, .*% of ")
    download = COUNT_RATE.format(unit="bytes") + OF_TOTAL_ETA
    assert _matching(
        lines, rf"^download of \d+ files from s3://{pipeline.load}/clean/d1/: {download}"
    )
    target = pipeline.component.instance + "_target"
    restored = COUNT_RATE.format(unit="tables") + OF_TOTAL_ETA
    assert _matching(
        lines, rf"^pg_restore of s3://{pipeline.load}/clean/d1/ into {target}: {restored}"
    )
    assert _matching(lines, rf"^pg_restore of \S+ into {target}: 5 tables, .*100% of 5, ETA 0s")
    assert _matching(lines, rf"^verification of {target}__next: 5 tables, .*100% of 5, ETA 0s")
    # a replayed event (same key + ETag) requests nothing
    assert pipeline.tick().run_requests == []


def test_new_column_fails_the_scrub_naming_it_nothing_reaches_the_load_bucket(pipeline):
    with psycopg.connect(pipeline.source) as conn:
        conn.execute("ALTER TABLE customers ADD COLUMN secondary_email text")
    pipeline.take_dump("d2")
    (request,) = pipeline.tick().run_requests
    result = pipeline.launch(request, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "customers.secondary_email: no rule" in str(failure.event_specific_data.error)
    assert boto3.client("s3").list_objects_v2(Bucket=pipeline.load).get("KeyCount") == 0


def _event(bucket: str, key: str, etag: str) -> str:
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "eTag": etag}},
    }
    return json.dumps({"Records": [record]})


def _queue_count(url: str) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def test_poison_message_reaches_the_dlq_valid_ones_are_processed_once(pipeline):
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    s3.put_object(Bucket=pipeline.extract, Key="dumps/a b+c/manifest.json", Body=b"{}")
    sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody="not json at all")
    sqs.send_message(
        QueueUrl=pipeline.queue_url,
        MessageBody=_event("some-other-bucket", "dumps/x/manifest.json", "e0"),
    )
    s3.put_object(Bucket=pipeline.extract, Key="dumps/d9/0001.dat.gz", Body=b"x")  # not a manifest
    for _ in range(2):  # the same event delivered twice
        sqs.send_message(
            QueueUrl=pipeline.queue_url,
            MessageBody=_event(pipeline.extract, "dumps/d3/manifest.json", "e3"),
        )
    requested = []
    for _ in range(6):
        result = pipeline.tick()
        requested += [(r.partition_key, r.run_key) for r in result.run_requests]
        for request in result.run_requests:  # record a run per request, as the daemon would
            noop = dg.asset(name="noop")(lambda: None)
            dg.materialize([noop], instance=pipeline.instance, tags=request.tags)
        time.sleep(1.2)
    # the duplicate was requested once; the event's key "a+b%2Bc" decoded by unquote_plus
    assert sorted(p for p, _ in requested) == ["a b+c", "d3"]
    assert _queue_count(pipeline.queue_url) == 0
    dlq = sqs.receive_message(QueueUrl=pipeline.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"][:15] for m in dlq) == sorted(
        ["not json at all", _event("some-other-bucket", "x", "y")[:15]]
    )
    # a replay of a processed event launches nothing
    sqs.send_message(
        QueueUrl=pipeline.queue_url,
        MessageBody=_event(pipeline.extract, "dumps/d3/manifest.json", "e3"),
    )
    assert pipeline.tick().run_requests == []
