"""Every resource against the real local stack: moto server over HTTP and pgserver PostgreSQL."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import time
import tracemalloc

import boto3
import psycopg
import pytest

from etl_platform.resources import (
    CatalogResource,
    DynamoDBResource,
    ObjectStoreResource,
    PgToolsResource,
    QueueResource,
    WarehouseResource,
    copy_input,
)
from etl_platform.resources.copy_input import COPY_CHUNK_BYTES


class _PatternStream(io.RawIOBase):
    """A readable stream of ``size`` pseudo-random bytes that never exists whole in memory."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.digest = hashlib.sha256()
        self.block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = min(len(buffer), self.remaining, len(self.block))
        buffer[:n] = self.block[:n]
        self.digest.update(self.block[:n])
        self.remaining -= n
        return n


class _HashingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.digest.update(data)
        self.size += len(data)
        return len(data)


def test_scan_segments_are_disjoint_and_complete(local_stack, unique_name):
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=unique_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, 300, 25):
        client.batch_write_item(
            RequestItems={
                unique_name: [
                    {"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "n": {"N": str(i)}}}}
                    for i in range(start, start + 25)
                ]
            }
        )
    dynamodb = DynamoDBResource()
    seen: list[str] = []
    pages = 0
    for segment in range(4):
        for page in dynamodb.scan_segment(unique_name, segment, 4, page_size=20):
            pages += 1
            seen.extend(item["pk"]["S"] for item in page)
    assert len(seen) == len(set(seen)) == 300
    assert pages > 4  # paginated
    assert dynamodb.key_attributes(unique_name) == ("pk", None)
    with pytest.raises(ValueError, match="segment 4 is outside"):
        next(dynamodb.scan_segment(unique_name, 4, 4))


def test_scan_paginates_binary_keys_and_keeps_exact_values(local_stack, unique_name):
    """Raw-body parsing: a LastEvaluatedKey holding bytes resumes the scan correctly, and
    numbers/binaries arrive exactly as stored (numbers as text, binaries as base64)."""
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=unique_name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "B"}],
        BillingMode="PAY_PER_REQUEST",
    )
    keys = [bytes([i, 255 - i, 0]) for i in range(40)]
    for key in keys:
        client.put_item(
            TableName=unique_name,
            Item={"k": {"B": key}, "n": {"N": "12345678901234567890123456789012345678"}},
        )
    # One segment: moto's parallel scan fails on binary hash keys (it utf-8 encodes them).
    items = [
        item
        for page in DynamoDBResource().scan_segment(unique_name, 0, 1, page_size=7)
        for item in page
    ]
    assert sorted(base64.b64decode(i["k"]["B"]) for i in items) == sorted(keys)
    assert {i["n"]["N"] for i in items} == {"12345678901234567890123456789012345678"}


def test_s3_stream_round_trip_of_50mb_with_bounded_memory(local_stack, unique_name):
    store = ObjectStoreResource(multipart_threshold_mb=8, multipart_chunk_mb=8)
    store.ensure_bucket(unique_name)
    source = _PatternStream(50 * 1024 * 1024)
    tracemalloc.start()
    try:
        size = store.upload_stream(io.BufferedReader(source), unique_name, "big/object.bin")
        sink = _HashingSink()
        store.download_to(unique_name, "big/object.bin", sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == sink.size == 50 * 1024 * 1024
    assert sink.digest.hexdigest() == source.digest.hexdigest()
    assert peak < 45 * 1024 * 1024, f"peak Python allocation {peak / 2**20:.1f} MiB"
    assert [o["Key"] for o in store.list_objects(unique_name, "big/")] == ["big/object.bin"]


def test_sqs_receive_delete_and_redrive_to_dead_letter_queue(local_stack, unique_name):
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName=f"{unique_name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.create_queue(
        QueueName=unique_name,
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )
    queues = QueueResource()
    url = queues.queue_url(unique_name)
    sqs.send_message(QueueUrl=url, MessageBody="good")
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    received = queues.receive(url, max_messages=10)
    assert sorted(m.body for m in received) == ["good", "poison"]
    good = next(m for m in received if m.body == "good")
    queues.delete(url, [good.receipt_handle])
    poison = next(m for m in received if m.body == "poison")
    queues.change_visibility(url, poison.receipt_handle, 0)
    again = queues.receive(url)
    assert [m.body for m in again] == ["poison"] and again[0].receive_count == 2
    queues.change_visibility(url, again[0].receipt_handle, 0)
    assert queues.receive(url) == []  # third receive moves it to the DLQ
    assert [m.body for m in queues.receive(dlq)] == ["poison"]


def test_glue_registration_is_idempotent(local_stack, unique_name):
    catalog = CatalogResource()
    catalog.ensure_database(unique_name)
    catalog.ensure_database(unique_name)
    table_input = {
        "Name": "events",
        "StorageDescriptor": {
            "Columns": [{"Name": "id", "Type": "bigint"}],
            "Location": "s3://lake/events/",
        },
        "PartitionKeys": [{"Name": "day", "Type": "string"}],
        "TableType": "EXTERNAL_TABLE",
    }
    catalog.ensure_table(unique_name, table_input)
    catalog.ensure_table(unique_name, table_input)
    partition = {
        "Values": ["2024-01-02"],
        "StorageDescriptor": {**table_input["StorageDescriptor"], "Location": "s3://lake/e/d/"},
    }
    catalog.ensure_partition(unique_name, "events", partition)
    catalog.ensure_partition(unique_name, "events", partition)
    assert catalog.list_partition_values(unique_name, "events") == [["2024-01-02"]]
    assert catalog.get_partition(unique_name, "events", ["2024-01-03"]) is None


def test_warehouse_loads_multiline_quoted_csv_from_s3(local_stack, stack_env, unique_name):
    store = ObjectStoreResource()
    store.ensure_bucket(unique_name)
    rows = [
        ("1", 'first line\nsecond, with "quotes"\r\nthird', ""),
        ("2", None, "nan"),
        ("3", "back\\slash \\N NULL", "emoji 🚀 עברית"),
    ]

    def field(v):
        return "" if v is None else '"' + v.replace('"', '""') + '"'

    text = "".join(",".join(field(v) for v in row) + "\n" for row in rows)
    store.put_bytes(gzip.compress(text.encode()), unique_name, "part-0.csv.gz")
    warehouse = WarehouseResource(dsn=stack_env["ETL_WAREHOUSE_DSN"])
    with warehouse.transaction() as conn:
        conn.execute(f"CREATE SCHEMA {unique_name}")
        conn.execute(f"CREATE TABLE {unique_name}.t (id bigint, a text, b text)")
        result = warehouse.load_csv_objects(
            conn,
            unique_name,
            "t",
            ["id", "a", "b"],
            [f"s3://{unique_name}/part-0.csv.gz"],
            store,
        )
    assert result.rows == 3
    with warehouse.connect() as conn:
        got = conn.execute(f"SELECT id::text, a, b FROM {unique_name}.t ORDER BY id").fetchall()
    assert got == rows


def test_create_if_missing_survives_a_concurrent_creator(local_stack, stack_env, unique_name):
    """PostgreSQL's ``IF NOT EXISTS`` does not lock: a session whose CREATE waits on another's
    uncommitted CREATE of the same name fails with a duplicate key once that one commits (the
    first two loads of a new micro-batch target, launched in one tick, did exactly this)."""
    import threading

    from psycopg import sql

    warehouse = WarehouseResource(dsn=stack_env["ETL_WAREHOUSE_DSN"])
    schema = sql.Identifier(unique_name)
    statements = [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema),
        sql.SQL("CREATE TABLE IF NOT EXISTS {}.t (id bigint)").format(schema),
    ]
    errors: list[BaseException] = []
    with warehouse.connect() as first:
        for statement in statements:
            first.execute(statement)  # uncommitted: the second creator waits on its names

        def second() -> None:
            try:
                warehouse.create_if_missing(statements, f"the table {unique_name}.t")
            except BaseException as exc:
                errors.append(exc)

        racer = threading.Thread(target=second)
        racer.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the second creator waits on a lock
            waiting = first.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE %s",
                (f"%{unique_name}%",),
            ).fetchone()
            if waiting and waiting[0]:
                break
            time.sleep(0.05)
        first.commit()
        racer.join(30)
    assert not errors, errors
    with warehouse.connect() as conn:
        assert conn.execute(f"SELECT count(*) FROM {unique_name}.t").fetchone() == (0,)


def test_warehouse_statement_timeout_stops_a_stuck_query(local_stack, stack_env):
    warehouse = WarehouseResource(dsn=stack_env["ETL_WAREHOUSE_DSN"], statement_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled):
        with warehouse.connect() as conn:
            conn.execute("SELECT pg_sleep(30)")
    assert time.monotonic() - started < 10


#: Redshift's stl_load_errors and pg_last_copy_id(), recreated in a PostgreSQL database with the
#: column types of the STL_LOAD_ERRORS reference (CHAR columns come back blank-padded)
_STL_LOAD_ERRORS = [
    "CREATE TABLE stl_load_errors (query integer, filename char(256), line_number bigint, "
    "colname char(127), type char(10), position integer, err_code integer, "
    "err_reason char(100), raw_field_value char(1024))",
    "CREATE FUNCTION pg_last_copy_id() RETURNS integer LANGUAGE sql AS 'SELECT 4567'",
]


def test_warehouse_redshift_copy_failure_names_file_line_column_and_reason(
    local_stack, fresh_database, unique_name
):
    """The resource's Redshift load path on a failed COPY: it ends the aborted transaction,
    reads the session's ``stl_load_errors`` rows for ``pg_last_copy_id()`` and raises an error
    naming the S3 object, line, column and reason. Redshift cannot run here: PostgreSQL stands
    in with a recorded ``stl_load_errors`` (and rejects the Redshift COPY as a syntax error,
    which plays the failed COPY)."""
    from etl_platform.resources.warehouse import WarehouseLoadError

    store = ObjectStoreResource()
    store.ensure_bucket(unique_name)
    uri = f"s3://{unique_name}/extract/part-0.csv.gz"
    store.put_bytes(gzip.compress(b'1,""\n2,\x00\n'), unique_name, "extract/part-0.csv.gz")
    with psycopg.connect(fresh_database, autocommit=True) as setup:
        for statement in _STL_LOAD_ERRORS:
            setup.execute(statement)
        setup.execute(
            "INSERT INTO stl_load_errors VALUES (4567, %s, 2, 'note', 'varchar', 0, 1204, "
            "'String length exceeds DDL length', 'xyz'), (1, 's3://old/file', 9, 'id', "
            "'int8', 0, 1207, 'an older COPY', '')",
            (uri,),
        )
        setup.execute(f"CREATE SCHEMA {unique_name}")
        setup.execute(f"CREATE TABLE {unique_name}.t (id bigint, note text)")
    warehouse = WarehouseResource(
        dsn=fresh_database,
        dialect="redshift",
        iam_role_arn="arn:aws:iam::123456789012:role/redshift-load",
    )
    with pytest.raises(WarehouseLoadError) as failure:
        with warehouse.transaction() as conn:
            conn.execute(f"INSERT INTO {unique_name}.t VALUES (0, 'kept out')")
            warehouse.load_csv_objects(
                conn,
                unique_name,
                "t",
                ["id", "note"],
                [uri],
                store,
                manifest_uri=f"s3://{unique_name}/extract/manifest.json",
            )
    message = str(failure.value)
    assert message.startswith(
        f'Redshift COPY into {unique_name}.t failed: {uri} line 2, column "note" (varchar): '
        "String length exceeds DDL length [code 1204], value 'xyz' (COPY said: "
    )
    assert "an older COPY" not in message
    assert isinstance(failure.value.__cause__, psycopg.Error)
    with psycopg.connect(fresh_database) as check:  # the load's transaction left nothing
        assert check.execute(f"SELECT count(*) FROM {unique_name}.t").fetchone() == (0,)
    manifest = json.loads(store.get_bytes(unique_name, "extract/manifest.json"))
    assert [e["url"] for e in manifest["entries"]] == [uri]


def test_pg_dump_restore_round_trip_through_s3(local_stack, fresh_database, stack_state):
    store = ObjectStoreResource()
    bucket = "dumps-roundtrip"
    store.ensure_bucket(bucket)
    with psycopg.connect(fresh_database) as conn:
        conn.execute("CREATE TABLE people (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO people VALUES (1, 'multi\nline'), (2, NULL)")
    tools = PgToolsResource()
    dump = tools.dump_to_s3(
        fresh_database, store, bucket, "db/dump.pgc", setting="source", bucket_setting="bucket"
    )
    assert dump.bytes > 0
    assert [o["Key"] for o in store.list_objects(bucket, "db/")] == ["db/dump.pgc"]
    target = stack_state.dsn("restore_target")
    where = {"setting": "target", "bucket_setting": "bucket"}
    tools.restore_from_s3(target, store, bucket, "db/dump.pgc", **where)
    tools.restore_from_s3(target, store, bucket, "db/dump.pgc", **where)  # repeatable
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT id, note FROM people ORDER BY id").fetchall() == [
            (1, "multi\nline"),
            (2, None),
        ]
        conn.execute("DROP TABLE people")


def test_failed_pg_dump_leaves_no_object(local_stack, stack_state):
    store = ObjectStoreResource()
    store.ensure_bucket("dumps-failed")
    from etl_platform.resources.pg_tools import PgToolError

    dsn = stack_state.dsn("no_such_db")
    with pytest.raises(PgToolError, match="no_such_db") as error:
        PgToolsResource().dump_to_s3(
            dsn,
            store,
            "dumps-failed",
            "x/dump.pgc",
            setting="source_dsn_env 'SRC'",
            bucket_setting="extract_bucket",
        )
    assert "pg_dump of the database in source_dsn_env 'SRC' failed" in str(error.value)
    assert dsn not in str(error.value)
    assert list(store.list_objects("dumps-failed", "x/")) == []


@pytest.mark.parametrize("small_limit", [None, 100])
def test_gzip_objects_inflate_small_ones_whole_and_large_ones_in_chunks(monkeypatch, small_limit):
    """A small object is one chunk (one COPY write, no thread); past the limit it is streamed
    in chunks. Both give the same bytes, multi-member gzip included, and a corrupt object is an
    error naming it."""
    if small_limit is not None:
        monkeypatch.setattr(copy_input, "SMALL_OBJECT_BYTES", small_limit)
    data = b"".join(b"%d,row %d\n" % (i, i) for i in range(300_000))  # ~4 MB, > 1 chunk
    half = len(data) // 2
    body = gzip.compress(data[:half]) + gzip.compress(data[half:])
    chunks = list(copy_input.gunzipped_chunks(lambda: io.BytesIO(body), "s3://b/k.csv.gz"))
    assert b"".join(chunks) == data
    if small_limit is None:
        assert len(chunks) == 1
    else:
        assert len(chunks) > 1 and max(map(len, chunks)) <= COPY_CHUNK_BYTES
    with pytest.raises(RuntimeError, match="reading s3://b/bad.csv.gz failed"):
        list(copy_input.gunzipped_chunks(lambda: io.BytesIO(body[:-30]), "s3://b/bad.csv.gz"))
