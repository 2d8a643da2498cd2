"""Warehouse names for attribute paths, entities and lists.

Names are lowercase ``[a-z0-9_]`` (accents folded, other characters replaced by ``_``), at most
``max_name_bytes``. Two paths that normalize to the same name are disambiguated by an 8-hex-digit
SHA-1 suffix of the original path (a path already spelled like its name keeps the plain name);
overlong names are cut and suffixed the same way. Each column records its original path.
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


def normalize_name(path: Iterable[str]) -> str:
    """Lowercase ``[a-z0-9_]`` name of an attribute path, components joined with ``__``
    (before length limits and disambiguation)."""
    return "__".join(_fold(part) for part in path) or "_"


def _short_hash(identity: str, length: int = _SUFFIX_HEX) -> str:
    return hashlib.sha1(identity.encode()).hexdigest()[:length]


def _cut(name: str, max_bytes: int) -> str:
    return name.encode()[:max_bytes].decode(errors="ignore")


def _with_suffix(base: str, identity: str, max_bytes: int, length: int = _SUFFIX_HEX) -> str:
    suffix = "_" + _short_hash(identity, length)
    return _cut(base, max_bytes - len(suffix)) + suffix


@dataclass(frozen=True)
class NameRequest:
    """One thing to name: its ``identity`` (stable across runs), the ``base`` name it would
    like, whether that base spells the original exactly (``lossless``) and its ``rank`` among
    requests for the same base."""

    identity: str
    base: str
    lossless: bool
    rank: tuple[int, str]


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
            base = _with_suffix(base, req.identity, max_bytes)
            lossless = True
        groups.setdefault(base, []).append(NameRequest(req.identity, base, lossless, req.rank))
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
                name = _with_suffix(base, member.identity, max_bytes, length)
                while name in taken:
                    length += 4
                    name = _with_suffix(base, member.identity, max_bytes, length)
            out[member.identity] = name
            taken.add(name)
    return out
