"""A source database with PII across tables linked by foreign keys, its scrub rules, and the
pipeline settings pointing at per-test buckets (shared by the dump pipeline's tests)."""

from __future__ import annotations

import boto3
import psycopg

HMAC_ENV = "ETL_TEST_SCRUB_KEY"
HMAC_VALUE = "test-only-scrub-key-0123456789abcdef"
CUSTOMERS = 300

SCHEMA = """
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    full_name text NOT NULL,
    email text NOT NULL UNIQUE CHECK (email LIKE '%_@_%._%'),
    phone text CHECK (phone ~ '^\\+?[0-9 ().-]{7,20}$'),
    tier text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE addresses (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    street text NOT NULL,
    city text NOT NULL,
    country text NOT NULL
);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    contact_email text REFERENCES customers(email),
    amount numeric(12,2) NOT NULL,
    note text
);
CREATE TABLE audit_log (id bigint PRIMARY KEY, actor_email text, message text);
CREATE TABLE products (id int PRIMARY KEY, label text NOT NULL, price numeric(8,2));
"""

RULES = {
    "tables": {
        "customers": {
            "columns": {
                "id": "keep",
                "full_name": "fake_name",
                "email": {"action": "fake_email", "unique": True},
                "phone": {"action": "fake_phone", "unique": True},
                "tier": "keep",
                "created_at": "keep",
            }
        },
        "addresses": {
            "columns": {
                "id": "keep",
                "customer_id": "keep",
                "street": {"action": "mask", "first": 0, "last": 0},
                "city": {"action": "constant", "value": "Springfield"},
                "country": "keep",
            }
        },
        "orders": {
            "columns": {
                "id": "keep",
                "customer_id": "keep",
                "contact_email": {"action": "fake_email", "unique": True},
                "amount": "keep",
                "note": "keep",
            }
        },
        "audit_log": "truncate_table",
        "products": "keep_all",
    }
}


def email(i: int) -> str:
    return f"person.{i}@mail-{i % 7}.example.com"


def phone(i: int) -> str:
    return f"+44 20 7946 {i:04d}"


def name(i: int) -> str:
    return f"Realname{i} Surname{i}"


def seed_source(dsn: str, customers: int = CUSTOMERS) -> None:
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
        with cur.copy("COPY customers FROM STDIN") as copy:
            for i in range(customers):
                tier = "gold\tand\\more\nlines" if i % 50 == 0 else "basic"
                copy.write_row((i, name(i), email(i), phone(i), tier, "2026-11-01T10:00:00Z"))
        with cur.copy("COPY addresses FROM STDIN") as copy:
            for i in range(customers):
                copy.write_row((i, i, f"{i} Real Street", f"City{i}", "GB"))
        with cur.copy("COPY orders FROM STDIN") as copy:
            for i in range(customers * 3):
                c = i % customers
                copy.write_row((i, c, email(c) if i % 2 else None, i * 1.25, f"order {i}"))
        with cur.copy("COPY audit_log FROM STDIN") as copy:
            for i in range(50):
                copy.write_row((i, email(i), f"{name(i)} logged in"))
        with cur.copy("COPY products FROM STDIN") as copy:
            for i in range(20):
                copy.write_row((i, f"product {i}", i * 3.5))


def pii_values(customers: int = CUSTOMERS) -> list[bytes]:
    """Every original email, phone and name (as COPY text bytes)."""
    out = []
    for i in range(customers):
        out += [email(i).encode(), phone(i).encode(), name(i).encode()]
    return out


def make_buckets(*names: str) -> None:
    s3 = boto3.client("s3")
    for bucket in names:
        s3.create_bucket(Bucket=bucket)


def table_rows(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()
