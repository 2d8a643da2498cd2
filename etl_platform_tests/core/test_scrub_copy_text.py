"""COPY text fields, the streaming rewriter, the transforms and the residual scan."""

from __future__ import annotations

import base64
import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from etl_platform.core.scrub import (
    CopyDataRewriter,
    OriginalValues,
    ResidualCounts,
    ResidualScanner,
    column_rewrite,
    decode_field,
    encode_field,
    parse_rules,
)
from etl_platform.core.scrub.prf import base32_digits
from etl_platform.core.scrub.rules import ColumnRule
from etl_platform.core.scrub.transforms import batch_rewrite, permute_phone_number

KEY = b"k" * 32
pg_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@given(pg_text)
def test_field_encoding_round_trips_and_never_holds_delimiters(value):
    encoded = encode_field(value)
    assert b"\t" not in encoded and b"\n" not in encoded
    assert decode_field(encoded) == value


def test_decode_accepts_octal_hex_and_null():
    assert decode_field(b"\\N") is None
    assert decode_field(b"a\\101\\x42\\\\\\tz") == "aAB\\\tz"


def _row(values):
    return b"\t".join(encode_field(v) for v in values) + b"\n"


rows = st.lists(
    st.tuples(st.integers(0, 10**6), st.one_of(st.none(), pg_text), pg_text), max_size=30
)


@settings(max_examples=200)
@given(rows, st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_rewriter_is_independent_of_chunking_and_stops_at_terminator(table_rows, cuts):
    data = b"".join(_row([str(i), a, b]) for i, a, b in table_rows) + b"\\.\n\n\n"
    rewrites = {1: lambda raw: raw if raw == b"\\N" else b"X"}
    whole = CopyDataRewriter(rewrites)
    expected = whole.feed(data) + whole.finish()
    chunked = CopyDataRewriter(rewrites)
    out, position, step = [], 0, 0
    while position < len(data):
        size = cuts[step % len(cuts)]
        out.append(chunked.feed(data[position : position + size]))
        position, step = position + size, step + 1
    out.append(chunked.finish())
    assert b"".join(out) == expected
    assert chunked.rows == whole.rows == len(table_rows)
    counter = CopyDataRewriter({})
    position, step, passed = 0, 0, []
    while position < len(data):
        size = cuts[step % len(cuts)]
        passed.append(counter.feed(data[position : position + size]))
        position, step = position + size, step + 1
    passed.append(counter.finish())
    assert b"".join(passed) == data and counter.rows == len(table_rows) and counter.ended
    assert expected.endswith(b"\\.\n\n\n")
    for line, (i, a, b) in zip(expected.split(b"\n"), table_rows, strict=False):
        fields = line.split(b"\t")
        assert fields[0] == str(i).encode() and fields[2] == encode_field(b)
        assert fields[1] == (b"\\N" if a is None else b"X")


def _rewrite(action, **options):
    rewrite = column_rewrite(ColumnRule(action=action, **options), KEY)
    assert rewrite is not None
    return rewrite


EMAIL = re.compile(rb"^[a-z0-9]+@[a-z0-9.-]+\.[a-z]+$")
PHONE = re.compile(rb"^\+[0-9]{8,15}$")
NAME = re.compile(rb"^[A-Z][a-z]+( [A-Z][a-z]+)+$")


@given(pg_text.filter(bool))
def test_pseudonyms_are_deterministic_well_formed_and_never_null(value):
    raw = encode_field(value)
    for action, pattern in (("fake_email", EMAIL), ("fake_phone", PHONE), ("fake_name", NAME)):
        for unique in (False, True):
            rewrite = _rewrite(action, unique=unique)
            out = rewrite(raw)
            assert pattern.match(out), (action, out)
            assert _rewrite(action, unique=unique)(raw) == out
    assert len(_rewrite("hash")(raw)) == 32
    assert int(_rewrite("hash", output="int")(raw)) < 2**63
    assert _rewrite("fake_email")(b"\\N") == b"\\N"


@given(st.binary(min_size=16, max_size=16), st.integers(1, 25))
def test_base32_digits_are_rfc_4648_base32(digest, count):
    digests = np.frombuffer(digest, dtype=np.uint8).reshape(1, 16)
    expected = base64.b32encode(digest).lower()[:count]
    assert base32_digits(digests, count).tobytes() == expected


def test_unique_fake_emails_are_short_and_distinct():
    rewrite = batch_rewrite(ColumnRule(action="fake_email", unique=True), KEY)
    values = [b"person%d@mail.example.com" % i for i in range(200_000)]
    out = rewrite(values)
    assert len(set(out)) == len(values)
    assert {len(v) for v in out} == {len(b"u@example.invalid") + 20}


def test_keyed_outputs_depend_on_the_key():
    rule = ColumnRule(action="hash")
    assert column_rewrite(rule, b"a" * 32)(b"x") != column_rewrite(rule, b"b" * 32)(b"x")  # type: ignore[misc]


@settings(max_examples=50)
@given(st.lists(st.integers(0, 10**15 - 1), min_size=2, max_size=40, unique=True))
def test_unique_phone_permutation_is_injective_in_domain(numbers):
    out = [permute_phone_number(KEY, n) for n in numbers]
    assert len(set(out)) == len(out)
    assert all(0 <= n < 10**15 for n in out)


@given(pg_text, st.integers(0, 4), st.integers(0, 4))
def test_mask_keeps_only_the_ends(value, first, last):
    out = decode_field(_rewrite("mask", first=first, last=last)(encode_field(value)))
    assert out is not None and len(out) == len(value)
    if len(value) > first + last:
        assert out[:first] == value[:first] and out[len(out) - last :] == value[len(value) - last :]
        assert set(out[first : len(out) - last]) == {"*"}
    else:
        assert set(out) <= {"*"}


def test_null_constant_and_keep():
    assert column_rewrite(ColumnRule(action="keep"), None) is None
    assert _rewrite("null")(b"abc") == b"\\N"
    constant = _rewrite("constant", value="tab\there")
    assert constant(b"abc") == b"tab\\there" and constant(b"\\N") == b"\\N"


def test_residual_scan_counts_originals_and_patterns_per_column():
    originals = OriginalValues()
    for raw in (b"alice@example.com", b"\\N", b"abc"):
        originals.add(raw)
    assert originals.values == {b"alice@example.com"}  # NULL and short values are not kept
    scanner = ResidualScanner(frozenset(originals.values), {1: "c.notes", 2: "c.code"}, [1])
    scanner.scan_block(
        b"1\talice@example.com\tx\n"
        b"2\tcall +44 20 7946 0958\talice@example.com\n"
        b"3\t2026-11-30 10:00:00+00\tplain\n\\.\n\n"
    )
    assert dict(scanner.counts.hits) == {
        ("c.notes", "original_value"): 1,
        ("c.notes", "email_pattern"): 1,
        ("c.notes", "phone_pattern"): 1,
        ("c.code", "original_value"): 1,
    }


def test_wrapped_rewrites_count_identity_and_collect_originals():
    counts = ResidualCounts()
    originals = OriginalValues(max_values=3)
    rewrite = originals.wrap(lambda raw: raw if raw == b"same!" else b"X", "c.x", counts)
    for raw in (b"same!", b"\\N", b"other1", b"other2", b"other3", b"other4"):
        rewrite(raw)
    assert counts.total == 1
    assert originals.values == {b"same!", b"other1", b"other2", b"other3", b"other4"}
    originals.trim()
    assert len(originals.values) <= 3 and originals.sampled


def test_rules_and_transforms_together_keep_foreign_keys():
    rules = parse_rules(
        {"tables": {"a": {"columns": {"email": "hash"}}, "b": {"columns": {"ref": "hash"}}}}
    )
    a = column_rewrite(rules.for_table("public.a").columns["email"], KEY)  # type: ignore[union-attr]
    b = column_rewrite(rules.for_table("public.b").columns["ref"], KEY)  # type: ignore[union-attr]
    assert a(b"x@y.z") == b(b"x@y.z")  # type: ignore[misc]
