"""Column transforms: a :class:`~.rules.ColumnRule` and the instance's secret key → a function
from a raw COPY text field to its replacement.

Keyed pseudonyms are a keyed MAC of the raw field bytes: BLAKE2b in its keyed mode (RFC 7693,
a MAC in the role of HMAC, without HMAC's two passes: 4x faster than ``hmac.digest`` with
SHA-256 here, and the per-value hash is the scrub's largest CPU cost), with a per-action tag as
BLAKE2's personalization. One value maps to one output in every table and column, so joins and
foreign keys on hashed or faked columns still hold; without the key the outputs cannot be
recomputed from guessed inputs.

Collisions: a truncated digest over many values collides (12 hex characters over 5M values
give ~4% odds), so the defaults are wide (``hash``: 128 bits; ``fake_email``: 80 bits, 128 with
``unique``) and ``fake_phone`` with ``unique: true`` is a keyed *permutation* of the phone's
digits (a Feistel network over 15-digit numbers), which cannot collide at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache

from .copy_text import NULL, FieldRewrite, decode_field, encode_field
from .rules import ColumnRule

FIRST_NAMES = (
    "Alex Sam Robin Jordan Taylor Morgan Casey Jamie Riley Avery Quinn Harper Rowan Emery "
    "Charlie Dana Drew Elliot Finley Hayden Jesse Kai Lee Logan Marley Noel Parker Reese Sage "
    "Skyler Toby Val"
).split()
LAST_NAMES = (
    "Smith Jones Brown Taylor Wilson Evans Thomas Johnson Roberts Walker Wright Robinson "
    "Thompson White Hughes Edwards Green Hall Wood Harris Lewis Martin Jackson Clarke Clark "
    "Turner Hill Scott Cooper Morris Ward Moore"
).split()
_CACHE_SIZE = 1 << 16
_NOT_DIGITS = bytes(c for c in range(256) if not 0x30 <= c <= 0x39)
_PHONE_DOMAIN = 10**15  # "+" and 15 digits: the E.164 maximum
_FEISTEL_HALF_BITS = 25  # 2**50 > 10**15: cycle-walk the few outputs beyond the domain


class TransformError(ValueError):
    """A transform cannot be built (no key for a keyed action)."""


def digest(key: bytes, tag: bytes, raw: bytes) -> bytes:
    """32 bytes of keyed BLAKE2b of ``raw``; ``tag`` (up to 16 bytes) separates the actions."""
    return hashlib.blake2b(raw, key=key[:64], person=tag[:16], digest_size=32).digest()


def _cached(fn: Callable[[bytes], bytes]) -> FieldRewrite:
    """NULL passes through; repeated values (foreign keys, common names) hit a bounded cache."""
    cached = lru_cache(maxsize=_CACHE_SIZE)(fn)

    def rewrite(raw: bytes) -> bytes:
        return raw if raw == NULL else cached(raw)

    return rewrite


def hash_rewrite(key: bytes, rule: ColumnRule) -> FieldRewrite:
    if rule.output == "int":
        return _cached(
            lambda raw: str(int.from_bytes(digest(key, b"hash", raw)[:8], "big") >> 1).encode()
        )
    return _cached(lambda raw: digest(key, b"hash", raw)[: rule.length].hex().encode())


def fake_email_rewrite(key: bytes, rule: ColumnRule) -> FieldRewrite:
    width = 16 if rule.unique else 10
    domain = rule.domain.encode()
    return _cached(
        lambda raw: b"u" + digest(key, b"email", raw)[:width].hex().encode() + b"@" + domain
    )


def _letters(data: bytes, count: int) -> str:
    number = int.from_bytes(data, "big")
    out = []
    for _ in range(count):
        number, index = divmod(number, 26)
        out.append(chr(ord("a") + index))
    return "".join(out).capitalize()


def fake_name_rewrite(key: bytes, rule: ColumnRule) -> FieldRewrite:
    def fake(raw: bytes) -> bytes:
        d = digest(key, b"name", raw)
        name = f"{FIRST_NAMES[d[0] % len(FIRST_NAMES)]} {LAST_NAMES[d[1] % len(LAST_NAMES)]}"
        if rule.unique:
            name += " " + _letters(d[2:14], 16)  # 26**16 ≈ 2**75
        return name.encode()

    return _cached(fake)


def _feistel(key: bytes, value: int, rounds: int = 6) -> int:
    mask = (1 << _FEISTEL_HALF_BITS) - 1
    left, right = value >> _FEISTEL_HALF_BITS, value & mask
    for r in range(rounds):
        f = int.from_bytes(digest(key, b"phone%d" % r, right.to_bytes(4, "big"))[:4], "big")
        left, right = right, left ^ (f & mask)
    return (left << _FEISTEL_HALF_BITS) | right


def permute_phone_number(key: bytes, value: int) -> int:
    """A keyed bijection of ``[0, 10**15)`` (cycle walking over a 50-bit Feistel network)."""
    if not 0 <= value < _PHONE_DOMAIN:
        raise ValueError("phone number out of the 15-digit domain")
    value = _feistel(key, value)
    while value >= _PHONE_DOMAIN:
        value = _feistel(key, value)
    return value


def fake_phone_rewrite(key: bytes, rule: ColumnRule) -> FieldRewrite:
    def fake(raw: bytes) -> bytes:
        digits = raw.translate(None, _NOT_DIGITS) if rule.unique else b""
        if 0 < len(digits) <= 14:
            number = permute_phone_number(key, int(b"1" + digits))
            return b"+%015d" % number
        number = int.from_bytes(digest(key, b"phone", raw)[:8], "big") % 10**7
        return b"+1555%07d" % number

    return _cached(fake)


def mask_rewrite(rule: ColumnRule) -> FieldRewrite:
    def mask(raw: bytes) -> bytes:
        value = decode_field(raw) or ""
        keep_first, keep_last = rule.first, rule.last
        if len(value) <= keep_first + keep_last:
            return encode_field(rule.char * len(value))
        hidden = rule.char * (len(value) - keep_first - keep_last)
        tail = value[len(value) - keep_last :] if keep_last else ""
        return encode_field(value[:keep_first] + hidden + tail)

    return _cached(mask)


def column_rewrite(rule: ColumnRule, key: bytes | None) -> FieldRewrite | None:
    """The rewrite of one column, or ``None`` for ``keep`` (the field is not touched)."""
    action = rule.action
    if action == "keep":
        return None
    if action == "null":
        return lambda raw: NULL
    if action == "constant":
        encoded = encode_field(rule.value)
        return lambda raw: raw if raw == NULL else encoded
    if action == "mask":
        return mask_rewrite(rule)
    if not key:
        raise TransformError(f"{action} needs the scrub HMAC key")
    builders = {
        "hash": hash_rewrite,
        "fake_email": fake_email_rewrite,
        "fake_name": fake_name_rewrite,
        "fake_phone": fake_phone_rewrite,
    }
    return builders[action](key, rule)
