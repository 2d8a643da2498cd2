"""The warehouse dialect is one frozen value, and nothing outside ``core/warehouse/`` asks which
dialect it holds: code reads the dialect's fields."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import etl_platform
from etl_platform.core.table_spec import ColumnKind
from etl_platform.core.warehouse import (
    DIALECTS,
    Dialect,
    LoadedRowCount,
    LoadMethod,
    PublishLock,
    RedshiftNulls,
    parse_dialect,
)

PACKAGE = Path(etl_platform.__file__).parent
#: ``dialect is ...``, ``dialect == ...``, ``sql_dialect is not ...``: a comparison of dialects
DIALECT_COMPARISON = re.compile(r"dialect\)?\s*(?:is|==|!=)\s", re.IGNORECASE)


def test_no_dialect_comparisons_outside_the_warehouse_package():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "core" / "warehouse"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if DIALECT_COMPARISON.search(line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == [], "read a Dialect field instead:\n" + "\n".join(offenders)


def test_the_builders_do_not_compare_dialects_either():
    for path in sorted((PACKAGE / "core" / "warehouse").glob("*.py")):
        assert not DIALECT_COMPARISON.search(path.read_text()), path.name


@pytest.mark.parametrize("dialect", DIALECTS.values())
def test_a_dialect_is_frozen_and_complete(dialect):
    with pytest.raises(dataclasses.FrozenInstanceError):
        dialect.csv_null = "\x00"  # type: ignore[misc]
    assert set(dialect.types) == set(ColumnKind)
    assert parse_dialect(dialect.name) is dialect
    assert len({dialect, parse_dialect(dialect.name.upper())}) == 1  # hashable, one value


def test_the_differences_are_named_fields():
    pg, rs = Dialect.POSTGRES, Dialect.REDSHIFT
    assert (pg.max_identifier_bytes, rs.max_identifier_bytes) == (63, 127)
    assert (pg.folds_identifiers_to_lower_case, rs.folds_identifiers_to_lower_case) == (
        False,
        True,
    )
    assert (pg.load_method, rs.load_method) == (
        LoadMethod.COPY_FROM_STDIN,
        LoadMethod.COPY_FROM_S3_MANIFEST,
    )
    assert (pg.supports_lock_timeout, rs.supports_lock_timeout) == (True, False)
    assert pg.publish_lock is PublishLock.ADVISORY_LOCK
    assert (pg.max_varchar_bytes, rs.max_varchar_bytes) == (None, 65535)
    assert (pg.max_numeric_precision, rs.max_numeric_precision) == (None, 38)
    assert (pg.csv_null, pg.csv_binary_prefix) == ("", "\\x")
    assert pg.loaded_row_count is LoadedRowCount.CURSOR_ROWCOUNT
    assert pg.staging_copy_options == ()
    # issue 8 (points 1, 10, 11): the Redshift fields
    assert (rs.csv_null, rs.redshift_nulls) == ("\x00", RedshiftNulls.NUL_BYTE)
    assert rs.csv_binary_prefix == ""
    assert rs.loaded_row_count is LoadedRowCount.PG_LAST_COPY_COUNT
    assert rs.publish_lock is PublishLock.LOCK_TABLE
    assert rs.staging_copy_options == ("COMPUPDATE OFF", "STATUPDATE OFF")


def test_binary_text_follows_the_prefix():
    assert Dialect.POSTGRES.binary_text(b"\x00\xff") == "\\x00ff"
    assert Dialect.REDSHIFT.binary_text(b"\x0a") == "0a"
    assert Dialect.REDSHIFT.binary_text(memoryview(b"")) == ""


def test_fold_identifier_folds_ascii_only_where_the_dialect_folds():
    assert Dialect.REDSHIFT.fold_identifier("Sales_EU") == "sales_eu"
    assert Dialect.REDSHIFT.fold_identifier("ÉtéX") == "Étéx"  # Redshift folds ASCII letters
    assert Dialect.POSTGRES.fold_identifier("Sales_EU") == "Sales_EU"


def test_inconsistent_dialects_are_refused():
    with pytest.raises(ValueError, match="needs CSV NULL marker"):
        dataclasses.replace(Dialect.REDSHIFT, redshift_nulls=RedshiftNulls.EMPTY_AS_NULL)
    with pytest.raises(ValueError, match="COPY from S3 only"):
        dataclasses.replace(Dialect.POSTGRES, redshift_nulls=RedshiftNulls.EMPTY_AS_NULL)
    with pytest.raises(ValueError, match="json_from_scalar lacks"):
        dataclasses.replace(Dialect.REDSHIFT, json_from_scalar={})
