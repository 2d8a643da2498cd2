"""Lake column names: every source column gets a name that Athena (Trino), Spark and Hive read
unquoted, deterministically, distinct within the table, with the source name recorded.

A source name that is already plain (``^[a-z_][a-z0-9_]*$``, at most 255 characters, not one of
Trino's reserved keywords, not a partition key ``year``/``month``/``day``) is kept as it is, so
well-named tables land unchanged. Any other name is normalized: accents dropped (NFKD), lower
case, every run of other characters one ``_``, leading and trailing ``_`` trimmed (empty: ``col``),
``c_`` before a leading digit, ``_`` after a reserved word or partition key. When a normalized name
would collide (with a kept name or another normalized one), it gets ``_`` and the first hex digits
of the SHA-256 of the source name, longer until distinct: the result depends on the table's set
of names only, never on their order.

Reserved keywords: Trino's list, which Athena engine 3 uses for ``SELECT`` statements
(https://docs.aws.amazon.com/athena/latest/ug/reserved-words.html,
https://trino.io/docs/current/language/reserved.html).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

import pyarrow as pa

from etl_platform.core.s3_layout import PARTITION_KEYS

from .arrow_types import PG_COLUMN_METADATA_KEY

MAX_NAME_CHARS = 255
"""Glue's limit on a column name."""
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")
_OTHER = re.compile(r"[^a-z0-9]+")
_SUFFIX_START = 8

RESERVED_KEYWORDS = frozenset(
    """
    alter and as between by case cast constraint create cross cube current_catalog current_date
    current_path current_role current_schema current_time current_timestamp current_user
    deallocate delete describe distinct drop else end escape except execute exists extract false
    for from full group grouping having in inner insert intersect into is join json_array
    json_exists json_object json_query json_table json_value left like listagg localtime
    localtimestamp natural normalize not null on or order outer prepare recursive right rollup
    select skip table then trim true uescape union unnest using values when where with
    """.split()
)


def is_plain_name(name: str) -> bool:
    """True when ``name`` needs no quoting in Athena/Trino/Hive and is no partition key."""
    return (
        bool(_PLAIN.match(name))
        and len(name) <= MAX_NAME_CHARS
        and name not in RESERVED_KEYWORDS
        and name not in PARTITION_KEYS
    )


def normalized_name(name: str) -> str:
    """The plain form of ``name`` before collisions are resolved (see the module docstring)."""
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    base = _OTHER.sub("_", ascii_.lower().replace("_", " ")).strip("_") or "col"
    if base[0].isdigit():
        base = "c_" + base
    base = base[: MAX_NAME_CHARS - 1 - 64 - 1]  # room for "_" and a suffix, and a trailing "_"
    if base in RESERVED_KEYWORDS or base in PARTITION_KEYS:
        base += "_"
    return base


def _suffixed(base: str, source: str, digits: int) -> str:
    return f"{base}_{hashlib.sha256(source.encode('utf-8')).hexdigest()[:digits]}"


def lake_column_names(source_names: Iterable[str]) -> dict[str, str]:
    """Source column name → lake column name, for every name of one table (names must be
    distinct, as in a PostgreSQL table). Plain names map to themselves."""
    names = list(source_names)
    if len(set(names)) != len(names):
        dup = sorted(n for n, c in Counter(names).items() if c > 1)
        raise ValueError(f"column names listed twice: {dup}")
    mapping = {n: n for n in names if is_plain_name(n)}
    taken = set(mapping)
    changed = sorted(n for n in names if n not in mapping)
    bases = {n: normalized_name(n) for n in changed}
    base_counts = Counter(bases.values())
    # first the normalized names nobody else wants, then the colliding ones with a suffix
    for n in changed:
        if base_counts[bases[n]] == 1 and bases[n] not in taken:
            mapping[n] = bases[n]
            taken.add(bases[n])
    for n in changed:
        if n in mapping:
            continue
        digits = _SUFFIX_START
        candidate = _suffixed(bases[n], n, digits)
        while candidate in taken:
            digits += 1
            candidate = (
                _suffixed(bases[n], n, digits)
                if digits <= 64
                else f"{_suffixed(bases[n], n, 64)}_{digits}"  # a source name took the hash
            )
        mapping[n] = candidate
        taken.add(candidate)
    return {n: mapping[n] for n in names}


def source_column_names(schema: pa.Schema) -> dict[str, str]:
    """Lake name → source name of the fields of ``schema`` that were renamed (read from the
    ``postgres.column`` field metadata)."""
    out = {}
    for f in schema:
        source = (f.metadata or {}).get(PG_COLUMN_METADATA_KEY)
        if source is not None:
            out[f.name] = source.decode()
    return out
