"""Column transforms: a :class:`~.rules.ColumnRule` and the instance's secret key → a function
from a list of raw COPY text fields (non-NULL) to their replacements (:func:`batch_rewrite`),
or from one field to its replacement (:func:`column_rewrite`, the same function per value).

What each keyed action computes (``key``: the bytes of ``hmac_key_env``'s value):

- ``hash``: HMAC-SHA256(key, value), the value being the field unescaped (COPY text escapes
  undone: the bytes the database stores). Text output: the first ``length`` bytes in lower-case
  hex, i.e. ``left(encode(hmac(value, key, 'sha256'), 'hex'), 2 * length)`` in pgcrypto or
  ``hmac.new(key, value, 'sha256').hexdigest()[: 2 * length]`` in Python. ``output: int``: the
  first 8 bytes as a big-endian unsigned integer shifted right by one (a positive bigint),
  ``int.from_bytes(mac[:8], 'big') >> 1``, in SQL
  ``(('x' || left(encode(hmac(value, key, 'sha256'), 'hex'), 16))::bit(64) >> 1)::bigint``.
- ``fake_email``, ``fake_name``, ``fake_phone``: a keyed PRF of the raw field bytes computed for
  a whole column at once (:class:`~.prf.KeyedColumnPrf`: EMAC, AES-256 CBC-MAC re-encrypted
  under a second key, per-action keys derived from ``key`` with keyed BLAKE2b), formatted as
  described on each builder. These are pseudonyms, not meant to be recomputed elsewhere.

One value maps to one output in every table and column, so joins and foreign keys on hashed or
faked columns still hold; without the key the outputs cannot be recomputed from guessed inputs.

Collisions: a truncated digest over many values collides (12 hex characters over 5M values
give ~4% odds), so the defaults are wide (``hash``: 128 bits; ``fake_email``: 80 bits, 100 with
``unique``, whose odds are about n²/2¹⁰¹: 4·10⁻¹³ for a billion addresses) and ``fake_phone``
with ``unique: true`` is a keyed *permutation* of the phone's digits (a Feistel network over
15-digit numbers, keyed BLAKE2b rounds), which cannot collide.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import lru_cache, partial

import numpy as np

from .copy_text import NULL, FieldRewrite, decode_field, encode_field, unescape_field
from .prf import KeyedColumnPrf, base32_digits, decimal_digits, hex_digits, rows_of
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
_NAMES = [f"{first} {last}".encode() for first in FIRST_NAMES for last in LAST_NAMES]
_LOWER = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_CACHE_SIZE = 1 << 16
_NOT_DIGITS = bytes(c for c in range(256) if not 0x30 <= c <= 0x39)
_PHONE_DOMAIN = 10**15  # "+" and 15 digits: the E.164 maximum
_FEISTEL_HALF_BITS = 25  # 2**50 > 10**15: cycle-walk the few outputs beyond the domain


ColumnBatch = Callable[[list[bytes]], list[bytes]]


class TransformError(ValueError):
    """A transform cannot be built (no key for a keyed action)."""


def keyed(key: bytes, tag: bytes) -> Callable[[bytes], bytes]:
    """``raw`` → 32 bytes of keyed BLAKE2b; ``tag`` (up to 16 bytes) separates the actions.
    The keyed state is built once and copied per value (half the cost of keying each call)."""
    base = hashlib.blake2b(key=key[:64], person=tag[:16], digest_size=32)

    def mac(raw: bytes) -> bytes:
        h = base.copy()
        h.update(raw)
        return h.digest()

    return mac


def digest(key: bytes, tag: bytes, raw: bytes) -> bytes:
    """32 bytes of keyed BLAKE2b of ``raw`` (one-off; rewrites use :func:`keyed`)."""
    return hashlib.blake2b(raw, key=key[:64], person=tag[:16], digest_size=32).digest()


def _cached(fn: Callable[[bytes], bytes]) -> FieldRewrite:
    """NULL passes through; repeated values (foreign keys, common names) hit a bounded cache."""
    cached = lru_cache(maxsize=_CACHE_SIZE)(fn)

    def rewrite(raw: bytes) -> bytes:
        return raw if raw == NULL else cached(raw)

    return rewrite


def hmac_sha256_digests(key: bytes, values: list[bytes]) -> np.ndarray:
    """``(n, 32)`` uint8: HMAC-SHA256 of each unescaped field (OpenSSL's one-shot HMAC)."""
    mac = partial(hmac.digest, key, digest="sha256")
    macs = b"".join(map(mac, map(unescape_field, values)))
    return np.frombuffer(macs, dtype=np.uint8).reshape(len(values), 32)


def hash_batch(key: bytes, rule: ColumnRule) -> ColumnBatch:
    """HMAC-SHA256 of the value: ``length`` bytes as hex, or with ``output: int`` the first 8
    bytes big-endian shifted right by one (a positive bigint)."""
    if rule.output == "int":

        def as_int(values: list[bytes]) -> list[bytes]:
            words = hmac_sha256_digests(key, values)[:, :8].copy().view(">u8")[:, 0]
            return list(map(b"%d".__mod__, (words >> np.uint64(1)).tolist()))

        return as_int
    length = rule.length

    def as_hex(values: list[bytes]) -> list[bytes]:
        digests = hmac_sha256_digests(key, values)[:, :length]
        return rows_of(hex_digits(digests), count=len(values))

    return as_hex


def fake_email_batch(key: bytes, rule: ColumnRule) -> ColumnBatch:
    """``u`` + base32 characters of the keyed PRF + ``@domain``: 16 characters (80 bits), 20
    with ``unique`` (100 bits). Short on purpose: the clean dump and the restored index hold
    every one of them."""
    prf = KeyedColumnPrf(key, b"email")
    width = 20 if rule.unique else 16
    domain = b"@" + rule.domain.encode()
    return lambda values: rows_of(
        b"u", base32_digits(prf.digests(values), width), domain, count=len(values)
    )


def fake_name_batch(key: bytes, rule: ColumnRule) -> ColumnBatch:
    """First and last name from 10 bits; ``unique`` adds 14 letters (about 66 more bits)."""
    prf = KeyedColumnPrf(key, b"name")

    def fake(values: list[bytes]) -> list[bytes]:
        digests = prf.digests(values)
        index = ((digests[:, 0].astype(np.int64) << 8) | digests[:, 1]) & 1023
        names = list(map(_NAMES.__getitem__, index.tolist()))
        if not rule.unique:
            return names
        letters = _LOWER[digests[:, 2:16] % 26]
        letters[:, 0] -= 32  # capitalized
        suffixes = rows_of(letters, count=len(values))
        return list(map(b" ".join, zip(names, suffixes, strict=True)))

    return fake


@lru_cache(maxsize=8)
def _round_macs(key: bytes, rounds: int = 6) -> tuple[Callable[[bytes], bytes], ...]:
    return tuple(keyed(key, b"phone%d" % r) for r in range(rounds))


def _feistel(key: bytes, value: int) -> int:
    mask = (1 << _FEISTEL_HALF_BITS) - 1
    left, right = value >> _FEISTEL_HALF_BITS, value & mask
    for mac in _round_macs(key):
        f = int.from_bytes(mac(right.to_bytes(4, "big"))[:4], "big")
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


def fake_phone_batch(key: bytes, rule: ColumnRule) -> ColumnBatch:
    """``+1555`` and 7 keyed digits; ``unique``: a keyed permutation of the phone's digits
    (values without 1-14 digits fall back to the former)."""
    prf = KeyedColumnPrf(key, b"phone")

    def fake(values: list[bytes]) -> list[bytes]:
        digits = decimal_digits(prf.digests(values), 7)
        return rows_of(b"+1555", digits, count=len(values))

    if not rule.unique:
        return fake

    def permuted(values: list[bytes]) -> list[bytes]:
        out = []
        for raw in values:
            digits = raw.translate(None, _NOT_DIGITS)
            if 0 < len(digits) <= 14:
                out.append(b"+%015d" % permute_phone_number(key, int(b"1" + digits)))
            else:
                out += fake([raw])
        return out

    return permuted


def mask_rewrite(rule: ColumnRule) -> FieldRewrite:
    def mask(raw: bytes) -> bytes:
        value = decode_field(raw) or ""
        keep_first, keep_last = rule.first, rule.last
        if len(value) <= keep_first + keep_last:
            return encode_field(rule.char * len(value))
        hidden = rule.char * (len(value) - keep_first - keep_last)
        tail = value[len(value) - keep_last :] if keep_last else ""
        return encode_field(value[:keep_first] + hidden + tail)

    return mask


def batch_rewrite(rule: ColumnRule, key: bytes | None) -> ColumnBatch | None:
    """The rewrite of a list of non-NULL fields, or ``None`` for ``keep``. NULL stays NULL
    for every action: callers pass NULL through (see :func:`column_rewrite`)."""
    action = rule.action
    if action == "keep":
        return None
    if action == "null":
        return lambda values: [NULL] * len(values)
    if action == "constant":
        encoded = encode_field(rule.value)
        return lambda values: [encoded] * len(values)
    if action == "mask":
        mask = mask_rewrite(rule)
        return lambda values: list(map(mask, values))
    if not key:
        raise TransformError(f"{action} needs the scrub HMAC key")
    builders = {
        "hash": hash_batch,
        "fake_email": fake_email_batch,
        "fake_name": fake_name_batch,
        "fake_phone": fake_phone_batch,
    }
    return builders[action](key, rule)


def column_rewrite(rule: ColumnRule, key: bytes | None) -> FieldRewrite | None:
    """The rewrite of one field, NULL passed through and repeated values cached, or ``None``
    for ``keep`` (the field is not touched). The scrub itself rewrites whole columns with
    :func:`batch_rewrite`; this is the same function one value at a time."""
    batch = batch_rewrite(rule, key)
    return None if batch is None else _cached(lambda raw: batch([raw])[0])
