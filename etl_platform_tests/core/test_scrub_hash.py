"""The ``hash`` action is HMAC-SHA256 of the value (COPY escapes undone), keyed with the scrub
secret: checked against Python's own ``hmac.new``, so a pseudonym can be recomputed elsewhere."""

from __future__ import annotations

import gzip
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl_platform.core.scrub import encode_field
from etl_platform.core.scrub.chunks import ChunkScrubber, ChunkSpec
from etl_platform.core.scrub.rules import ColumnRule
from etl_platform.core.scrub.transforms import batch_rewrite, column_rewrite

KEY = b"test-only-scrub-key-0123456789abcdef"
pg_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


def reference_hex(value: str, length: int = 16) -> bytes:
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()[: 2 * length].encode()


def reference_int(value: str) -> bytes:
    mac = hmac.new(KEY, value.encode(), hashlib.sha256).digest()
    return b"%d" % (int.from_bytes(mac[:8], "big") >> 1)


ESCAPED = [
    "plain@example.com",
    "tab\there",
    "two\nlines\r\n",
    "back\\slash \\N not null",
    "ünïcødé ✓ 名前",
    "\b\f\v controls",
    "",
]


@pytest.mark.parametrize("value", ESCAPED)
@pytest.mark.parametrize("length", [8, 16, 32])
def test_hash_is_hmac_sha256_of_the_unescaped_value(value, length):
    raw = encode_field(value)
    rewrite = column_rewrite(ColumnRule(action="hash", length=length), KEY)
    assert rewrite is not None and rewrite(raw) == reference_hex(value, length)
    as_int = column_rewrite(ColumnRule(action="hash", output="int"), KEY)
    assert as_int is not None and as_int(raw) == reference_int(value)


def test_octal_and_hex_escapes_hash_as_the_bytes_they_stand_for():
    rewrite = batch_rewrite(ColumnRule(action="hash"), KEY)
    assert rewrite is not None
    assert rewrite([b"a\\101\\x42"]) == [reference_hex("aAB")]


@given(st.lists(pg_text, max_size=40))
def test_hash_of_a_column_equals_hmac_of_each_value(values):
    rewrite = batch_rewrite(ColumnRule(action="hash"), KEY)
    assert rewrite is not None
    assert rewrite([encode_field(v) for v in values]) == [reference_hex(v) for v in values]


@given(st.lists(st.one_of(st.none(), pg_text), min_size=1, max_size=30))
def test_hash_through_a_chunk_equals_hmac_and_keeps_null(values):
    """The worker path (split rows, column cache, join) gives the same pseudonyms."""
    spec = ChunkSpec("public.t", 2, scrubbed=((1, "t.v", ColumnRule(action="hash")),))
    rows = b"".join(b"%d\t%s\n" % (i, encode_field(v)) for i, v in enumerate(values))
    scrubber = ChunkScrubber(spec, KEY)
    result = scrubber.scrub(rows)
    out = gzip.decompress(result.gzip).split(b"\n")[:-1]
    expected = [b"\\N" if v is None else reference_hex(v) for v in values]
    assert [line.split(b"\t")[1] for line in out] == expected
