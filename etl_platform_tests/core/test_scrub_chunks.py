"""The column-at-a-time chunk scrub agrees with the row-at-a-time rewriter, whatever the chunking;
residual fingerprints and counts; row chunks stop at the terminator."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl_platform.core.scrub import CopyDataRewriter, column_rewrite, encode_field
from etl_platform.core.scrub.archive import DumpTable
from etl_platform.core.scrub.chunks import ChunkScrubber, ChunkSpec, RowBlock, tabs_per_row_are
from etl_platform.core.scrub.copy_text import CopyFormatError, RowChunks
from etl_platform.core.scrub.coverage import TablePlan
from etl_platform.core.scrub.fingerprints import FingerprintSample
from etl_platform.core.scrub.rules import ColumnRule

KEY = b"k" * 32
ACTIONS = ["keep", "null", "hash", "fake_email", "fake_name", "fake_phone", "constant", "mask"]
pg_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
field_value = st.one_of(st.none(), pg_text, st.sampled_from(["same", "x@y.example.com"]))


def _plan(rules: list[ColumnRule]) -> TablePlan:
    columns = tuple(f"c{i}" for i in range(len(rules)))
    table = DumpTable("public.t", 1, columns, {c: "text" for c in columns})
    return TablePlan(table, rules=dict(zip(columns, rules, strict=True)))


def _rule(action: str) -> ColumnRule:
    options = {"constant": {"value": "v"}, "mask": {"first": 1, "last": 1}}.get(action, {})
    return ColumnRule(action=action, **options)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=4),
    st.data(),
    st.integers(1, 200),
)
def test_chunk_scrub_equals_the_row_rewriter_for_any_columns_and_chunking(actions, data, size):
    rules = [_rule(a) for a in actions]
    rows = data.draw(st.lists(st.lists(field_value, min_size=len(rules), max_size=len(rules))))
    text = b"".join(b"\t".join(encode_field(v) for v in row) + b"\n" for row in rows)
    rewrites = {i: column_rewrite(r, KEY) for i, r in enumerate(rules)}
    expected = CopyDataRewriter({i: f for i, f in rewrites.items() if f}).feed(text)
    scrubber = ChunkScrubber(ChunkSpec.from_plan(_plan(rules)), KEY)
    chunks = RowChunks(size)
    pieces = [c for i in range(0, len(text), 7) for c in chunks.feed(text[i : i + 7])]
    pieces.append(chunks.finish())
    out = b""
    for piece in pieces:
        result = scrubber.scrub(piece)
        assert result.rows == piece.count(b"\n")
        out += gzip.decompress(result.gzip) if result.gzip else b""
    assert out == expected


def test_misaligned_rows_fail_naming_the_table():
    with pytest.raises(CopyFormatError, match="public.t"):
        RowBlock(b"a\tb\tc\nd\ne\tf\tg\th\tx\n", 3, "public.t")
    with pytest.raises(CopyFormatError, match="public.t"):
        RowBlock(b"a\tb\n", 3, "public.t")


def test_row_chunks_stop_at_the_terminator_and_keep_the_tail():
    chunks = RowChunks(4)
    data = b"1\ta\n2\tb\n3\tc\n\\.\n\n\n"
    got = [c for i in range(0, len(data), 3) for c in chunks.feed(data[i : i + 3])]
    got.append(chunks.finish())
    assert b"".join(got) == b"1\ta\n2\tb\n3\tc\n" and all(g.endswith(b"\n") for g in got if g)
    assert chunks.tail == b"\\.\n\n\n"


def test_chunk_reports_originals_kept_values_patterns_and_identity():
    rules = [_rule("keep"), _rule("fake_email"), ColumnRule(action="constant", value="short")]
    spec = ChunkSpec.from_plan(_plan(rules))
    result = ChunkScrubber(spec, KEY).scrub(
        b"alice@example.com\tbob@example.com\tshort\ncall +44 20 7946 0958\talice@example.com\tx\n"
    )
    assert result.hits == {
        ("t.c0", "email_pattern"): 1,
        ("t.c0", "phone_pattern"): 1,
        ("t.c2", "unchanged_by_rule"): 1,
    }
    sample = FingerprintSample()
    sample.add_originals(result.originals)
    for column, values in result.checked.items():
        sample.add_checked(column, values)
    assert sample.hits() == {"t.c0": 1}  # alice's original address is still in c0


def test_fingerprint_sample_stays_bounded_and_exact_on_its_sample():
    import numpy as np

    sample = FingerprintSample(max_values=1000)
    originals = np.arange(0, 20_000, dtype=np.int64) * 7919
    sample.add_originals(originals.tobytes())
    sample.add_checked("t.c", originals[::97].tobytes())
    assert sample.hits()["t.c"] > 0
    summary = sample.summary()
    assert summary["sampled"] and summary["original_values_checked"] <= 1000
    assert summary["original_values_seen"] == 20_000


@given(st.lists(st.text("a\t", max_size=8), max_size=20), st.integers(0, 4))
def test_row_width_check_agrees_with_counting_each_line(lines, tabs):
    rows = "".join(line + "\n" for line in lines).encode()
    expected = all(line.count("\t") == tabs for line in lines)
    assert tabs_per_row_are(rows, tabs) == expected
