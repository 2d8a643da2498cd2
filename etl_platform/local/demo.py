"""The demo world the shipped pipeline instances run against on the local stack.

Seeding is idempotent per part: the AWS side (moto keeps it in memory, so it is gone after a
restart) and the source PostgreSQL database (kept on disk under ``.local/``) are each created
only when missing, unless ``force`` is given.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import psycopg
from psycopg import sql

DYNAMO_TABLE = "demo_platform"
DYNAMO_ITEMS = 3000
BUCKETS = {
    "etl_data": "etl-data",
    "etl_cache": "etl-cache",
    "pg_extract": "pg-extract",
    "pg_load": "pg-load",
    "lake": "lake",
    "loader_landing": "loader-landing",
}
QUEUES = {
    "pg_dumps": ("pg-extract", "pg-dumps"),
    "loader_events": ("loader-landing", "loader-events"),
}
GLUE_DATABASE = "lake_demo"
ALERT_TOPIC = "etl-alerts"
SOURCE_DAYS = 10


def _client(service: str) -> Any:
    return boto3.client(service, region_name=os.environ.get("AWS_REGION", "us-east-1"))


def _demo_items(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Items of a single-table design: ORG, GROUP, FINDING and EVENT entities keyed by ``sk``."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    items: list[dict[str, Any]] = []
    for i in range(count):
        org = f"ORG#{i % 25:03d}"
        kind = ("ORG", "GROUP", "FINDING", "EVENT")[i % 4]
        when = (base + timedelta(minutes=37 * i)).isoformat()
        item: dict[str, Any] = {"pk": org, "sk": f"{kind}#{i:06d}", "created_at": when}
        if kind == "ORG":
            item.update(
                name=f"Organisation {i}",
                settings={"max_users": Decimal(rng.randint(1, 500)), "billing": {"plan": "pro"}},
                tags={"demo", f"tier{i % 3}"},
            )
        elif kind == "GROUP":
            item.update(
                name=f"group-{i}",
                members=[{"email": f"user{j}@example.test", "role": "admin"} for j in range(3)],
                quota=Decimal("12345678901234567890123456789012345678"),
            )
        elif kind == "FINDING":
            item.update(
                title=f"Finding {i}",
                description=f'Line one of finding {i}\nline two, with "quotes", commas\n',
                severity=Decimal(str(round(rng.uniform(0, 10), 1))),
                cvss={"vector": "AV:N/AC:L", "scores": {"base": Decimal("7.5")}},
                evidence=bytes(rng.getrandbits(8) for _ in range(16)),
                open=rng.random() < 0.5,
            )
        else:
            item.update(
                action=rng.choice(["login", "logout", "export"]),
                amount=Decimal(rng.randint(-(10**15), 10**15)),
                ratio=Decimal("1E-30"),
                path=["a", "b", "c"][: rng.randint(1, 3)],
            )
        items.append(item)
    return items


def seed_dynamodb(force: bool = False) -> int:
    client = _client("dynamodb")
    existing = client.list_tables()["TableNames"]
    if DYNAMO_TABLE in existing and not force:
        return 0
    if DYNAMO_TABLE not in existing:
        client.create_table(
            TableName=DYNAMO_TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    table = boto3.resource("dynamodb", region_name=os.environ.get("AWS_REGION", "us-east-1")).Table(
        DYNAMO_TABLE
    )
    with table.batch_writer() as batch:
        for item in _demo_items(DYNAMO_ITEMS, random.Random(7)):
            batch.put_item(Item=item)
    return DYNAMO_ITEMS


def seed_aws(force: bool = False) -> dict[str, Any]:
    s3, sqs = _client("s3"), _client("sqs")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in BUCKETS.values():
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
    queues: dict[str, str] = {}
    for bucket, queue in QUEUES.values():
        dlq_url = sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        url = sqs.create_queue(
            QueueName=queue,
            Attributes={
                "VisibilityTimeout": "300",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
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
        queues[queue] = url
    glue = _client("glue")
    try:
        glue.create_database(DatabaseInput={"Name": GLUE_DATABASE})
    except glue.exceptions.AlreadyExistsException:
        pass
    topic = _client("sns").create_topic(Name=ALERT_TOPIC)["TopicArn"]
    items = seed_dynamodb(force)
    return {"buckets": sorted(BUCKETS.values()), "queues": queues, "topic": topic, "items": items}


SOURCE_TABLES = {
    "customers": """
        CREATE TABLE customers (
            id bigint PRIMARY KEY, full_name text NOT NULL, email text, phone text,
            notes text, signed_up_at timestamptz NOT NULL)""",
    "orders": """
        CREATE TABLE orders (
            id bigint PRIMARY KEY, customer_id bigint REFERENCES customers(id),
            amount numeric(18,4) NOT NULL, currency text NOT NULL,
            created_at timestamptz NOT NULL, details jsonb,
            shipping_address text, shipping_phone text)""",
    "events": """
        CREATE TABLE events (
            id bigint PRIMARY KEY, occurred_at timestamptz NOT NULL, kind text,
            payload jsonb, tags text[])""",
    "support_tickets": """
        CREATE TABLE support_tickets (
            id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
            order_id bigint REFERENCES orders(id), opened_at timestamptz NOT NULL,
            contact_email text, subject text NOT NULL, body text)""",
}
CUSTOMERS = 500
ORDERS = 5000
EVENTS = 5000
TICKETS = 800


def customer_email(i: int) -> str:
    return f"customer{i}@example.test"


def customer_phone(i: int) -> str:
    return f"+1-555-{i:04d}"


def seed_source_postgres(dsn: str, force: bool = False) -> int:
    """Dated rows over the last ``SOURCE_DAYS`` days. PII spans tables linked by foreign keys:
    ``customers`` (name, email, phone, notes) ← ``orders`` (shipping address and phone) and
    ← ``support_tickets`` (the customer's email as a column and inside the free-text body)."""
    rng = random.Random(11)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=SOURCE_DAYS)
    with psycopg.connect(dsn) as conn:
        present = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
            )
        }
        if set(SOURCE_TABLES) <= present and not force:
            return 0
        for name in reversed(list(SOURCE_TABLES)):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        for ddl in SOURCE_TABLES.values():
            conn.execute(ddl)
        with conn.cursor() as cur:
            rows = _copy_customers(cur, rng, start) + _copy_orders(cur, rng, start)
            rows += _copy_events(cur, rng, start) + _copy_tickets(cur, rng, start)
    return rows


def _copy_customers(cur: psycopg.Cursor, rng: random.Random, start: datetime) -> int:
    columns = "id, full_name, email, phone, notes, signed_up_at"
    with cur.copy(f"COPY customers ({columns}) FROM STDIN") as copy:
        for i in range(CUSTOMERS):
            signed_up = start + timedelta(minutes=rng.randint(0, SOURCE_DAYS * 1440 - 1))
            copy.write_row(
                (
                    i,
                    f"Customer {i}",
                    customer_email(i),
                    customer_phone(i),
                    "prefers email\nsecond line",
                    signed_up,
                )
            )
    return CUSTOMERS


def _copy_orders(cur: psycopg.Cursor, rng: random.Random, start: datetime) -> int:
    columns = "id, customer_id, amount, currency, created_at, details, shipping_address, "
    columns += "shipping_phone"
    with cur.copy(f"COPY orders ({columns}) FROM STDIN") as copy:
        for i in range(ORDERS):
            customer = rng.randrange(CUSTOMERS)
            copy.write_row(
                (
                    i,
                    customer,
                    Decimal(rng.randint(100, 10**7)) / 100,
                    rng.choice(["EUR", "USD"]),
                    start + timedelta(seconds=rng.randint(0, SOURCE_DAYS * 86400 - 1)),
                    json.dumps({"channel": rng.choice(["web", "app"])}),
                    f"{customer} Real Street, Flat {i % 9}, Leeds LS{customer % 30} 4AB",
                    customer_phone(customer) if i % 3 else None,
                )
            )
    return ORDERS


def _copy_events(cur: psycopg.Cursor, rng: random.Random, start: datetime) -> int:
    with cur.copy("COPY events (id, occurred_at, kind, payload, tags) FROM STDIN") as copy:
        for i in range(EVENTS):
            copy.write_row(
                (
                    i,
                    start + timedelta(seconds=rng.randint(0, SOURCE_DAYS * 86400 - 1)),
                    rng.choice(["click", "view"]),
                    json.dumps({"n": i}),
                    ["demo", rng.choice(["a", "b"])],
                )
            )
    return EVENTS


def _copy_tickets(cur: psycopg.Cursor, rng: random.Random, start: datetime) -> int:
    columns = "id, customer_id, order_id, opened_at, contact_email, subject, body"
    with cur.copy(f"COPY support_tickets ({columns}) FROM STDIN") as copy:
        for i in range(TICKETS):
            customer = rng.randrange(CUSTOMERS)
            copy.write_row(
                (
                    i,
                    customer,
                    rng.randrange(ORDERS) if i % 2 else None,
                    start + timedelta(seconds=rng.randint(0, SOURCE_DAYS * 86400 - 1)),
                    customer_email(customer),
                    rng.choice(["Late delivery", "Refund", "Wrong size"]),
                    f"Hello, please reply to {customer_email(customer)} or call "
                    f"{customer_phone(customer)}.\nThanks, Customer {customer}",
                )
            )
    return TICKETS


def seed_demo_world(force: bool = False) -> dict[str, Any]:
    """Create whatever part of the demo world is missing (all of it with ``force``)."""
    summary = seed_aws(force)
    summary["source_rows"] = seed_source_postgres(os.environ["ETL_SOURCE_DSN"], force)
    return summary
