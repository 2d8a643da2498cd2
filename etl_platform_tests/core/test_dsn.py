"""DSN redaction: a password never reaches a message, in either libpq DSN form."""

from __future__ import annotations

import pytest

from etl_platform.core.dsn import redact_dsn, split_password


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://etl:s3cret@db.example:5432/warehouse",
        "host=db.example port=5432 user=etl password=s3cret dbname=warehouse",
    ],
)
def test_password_is_split_off_in_both_forms(dsn):
    safe, password = split_password(dsn)
    assert password == "s3cret"
    assert "s3cret" not in safe and "s3cret" not in redact_dsn(dsn)
    assert "db.example" in safe and "warehouse" in safe


def test_unparseable_dsn_is_not_echoed():
    assert redact_dsn("host='unterminated password=s3cret") == "<unparseable DSN>"
    assert split_password("postgresql:///x") == ("dbname=x", None)
