"""Warehouse names for attribute paths, entities and lists.

Names are lowercase ``[a-z0-9_]`` (accents folded, other characters replaced by ``_``), at most
``max_name_bytes``. A name that SQL would need quoted -- one starting with a digit, or a reserved
word of PostgreSQL or Redshift -- gets a ``_`` prefix (``2fa`` -> ``_2fa``, ``order`` ->
``_order``). Two paths that normalize to the same name are disambiguated by an 8-hex-digit SHA-1
suffix of the attribute path alone (not of the entity or table it lands in: the same attribute
gets the same suffix with or without an entity rule); a path already spelled like its name keeps
the plain name. Overlong names are cut and suffixed the same way. Each column records its
original path.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_NAME_BAD = re.compile(r"[^a-z0-9_]+")
_NAME_ALNUM = re.compile(r"[a-z0-9]")
_SUFFIX_HEX = 8

# Words neither PostgreSQL 16 (reserved, and reserved "(can be function or type)":
# https://www.postgresql.org/docs/16/sql-keywords-appendix.html) nor Amazon Redshift
# (https://docs.aws.amazon.com/redshift/latest/dg/r_pg_keywords.html) accept as an unquoted
# column or table name.
RESERVED_WORDS = frozenset(
    """
    aes128 aes256 all allowoverwrite analyse analyze and any array as asc asymmetric
    authorization az64 backup between binary blanksasnull both bytedict bzip2 case cast check
    collate collation column concurrently constraint create credentials cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user
    current_user_id default deferrable deflate defrag delta delta32k desc disable distinct do
    else emptyasnull enable encode encrypt encryption end except explicit false fetch for
    foreign freeze from full globaldict256 globaldict64k grant group gzip having identity
    ignore ilike in initially inner intersect interval into is isnull join language lateral
    leading left like limit localtime localtimestamp lun luns lzo lzop minus mostly16 mostly32
    mostly8 natural new not notnull null nulls off offline offset oid old on only open or
    order outer overlaps parallel partition percent permissions pivot placing primary raw
    readratio recover references rejectlog resort respect restore returning right select
    session_user similar snapshot some symmetric sysdate system system_user table tablesample
    tag tdes text255 text32k then timestamp to top trailing true truncatecolumns type union
    unique unnest unpivot user using variadic verbose wallet when where window with without
    """.split()
)


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the identity of a table or column path, and the text a
    fingerprint hashes."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    name = _NAME_BAD.sub("_", folded)
    if not _NAME_ALNUM.search(name):
        # Nothing readable survives (CJK, emoji, punctuation): a stable name from the text,
        # so `名前` and `😀` do not both become `_` and depend on collision suffixes.
        return "a_" + _short_hash(text)
    return name


def joined_name(path: Iterable[str]) -> str:
    """Lowercase ``[a-z0-9_]`` spelling of an attribute path, components joined with ``__``
    (no prefix: for the tail of a longer name)."""
    return "__".join(_fold(part) for part in path) or "_"


def unquoted_name(name: str) -> str:
    """``name`` with a ``_`` prefix when SQL would need it quoted (a leading digit or a
    reserved word of PostgreSQL or Redshift)."""
    if name[:1].isdigit() or name in RESERVED_WORDS:
        return "_" + name
    return name


def normalize_name(path: Iterable[str]) -> str:
    """Lowercase ``[a-z0-9_]`` name of an attribute path, components joined with ``__``, that
    SQL accepts unquoted (before length limits and disambiguation)."""
    return unquoted_name(joined_name(path))


def _short_hash(identity: str, length: int = _SUFFIX_HEX) -> str:
    return hashlib.sha1(identity.encode()).hexdigest()[:length]


def _cut(name: str, max_bytes: int) -> str:
    return name.encode()[:max_bytes].decode(errors="ignore")


def _with_suffix(base: str, identity: str, max_bytes: int, length: int = _SUFFIX_HEX) -> str:
    suffix = "_" + _short_hash(identity, length)
    return _cut(base, max_bytes - len(suffix)) + suffix


@dataclass(frozen=True)
class NameRequest:
    """One thing to name: its ``identity`` (stable across runs, the key of pinned names), the
    ``base`` name it would like, whether that base spells the original exactly (``lossless``),
    its ``rank`` among requests for the same base, and the text its hash suffix is made of
    (``suffix_source``: the attribute path alone; default the identity)."""

    identity: str
    base: str
    lossless: bool
    rank: tuple[int, str]
    suffix_source: str | None = None

    @property
    def hashed(self) -> str:
        return self.identity if self.suffix_source is None else self.suffix_source


def assign_names(
    requests: list[NameRequest],
    taken: set[str],
    pins: Mapping[str, str],
    max_bytes: int,
) -> dict[str, str]:
    """Deterministic unique names: pinned names first, then per base name the lossless request
    (if any) keeps the base and the others get a hash suffix."""
    out: dict[str, str] = {}
    taken = set(taken)
    for req in sorted(requests, key=lambda r: r.identity):
        pinned = pins.get(req.identity)
        if pinned is not None and pinned not in taken:
            out[req.identity] = pinned
            taken.add(pinned)
    groups: dict[str, list[NameRequest]] = {}
    for req in requests:
        if req.identity in out:
            continue
        base = req.base
        lossless = req.lossless
        if len(base.encode()) > max_bytes:
            base = _with_suffix(base, req.hashed, max_bytes)
            lossless = True
        groups.setdefault(base, []).append(
            NameRequest(req.identity, base, lossless, req.rank, req.suffix_source)
        )
    for base in sorted(groups):
        members = sorted(groups[base], key=lambda r: r.rank)
        winner: NameRequest | None = None
        if base not in taken:
            if len(members) == 1:
                winner = members[0]
            else:
                winner = next((m for m in members if m.lossless), None)
        for member in members:
            if member is winner:
                name = base
            else:
                length = _SUFFIX_HEX
                name = _with_suffix(base, member.hashed, max_bytes, length)
                while name in taken:
                    length += 4
                    name = _with_suffix(base, member.hashed, max_bytes, length)
            out[member.identity] = name
            taken.add(name)
    return out
