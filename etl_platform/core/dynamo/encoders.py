"""Scalar value encoders: DynamoDB wire values -> the text of a warehouse column.

* DECIMAL: the number's positional text (``1E+2`` -> ``100``, ``1E-130`` -> ``0.00...01``),
  digit for digit what PostgreSQL ``numeric`` parses back to the same value; BIGINT likewise.
* TEXT: the string untouched (newlines, quotes, backslashes, ``nan``, ``NULL``, ``""``, any
  length); a number in a TEXT column (number vs string widening) is its original text.
* TIMESTAMPTZ: the original string (validated strict ISO-8601 with offset).
* BINARY: PostgreSQL hex ``bytea`` text ``\\x0a1b...``. BOOLEAN: ``true`` / ``false``.
* JSON: compact JSON, map keys sorted, numbers exactly as DynamoDB holds them (never a float),
  sets sorted, binaries as base64 strings.

An encoder raises :class:`~.unfit.Misfit` for a value its column cannot hold and
``ValueError`` for a malformed wire value.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

from .unfit import Misfit
from .wire_values import clip, is_strict_timestamp, number_digits

_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def decimal_text(value: str) -> str:
    """Positional text of a DynamoDB number (no exponent), exactly the same value."""
    number_digits(value)
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return format(Decimal(value), "f")


def bigint_text(value: str) -> str:
    body = value[1:] if value[:1] == "-" else value
    if len(body) < 19 and body.isdigit() and body.isascii():
        return value
    int_digits, scale, fits = number_digits(value)
    if not fits:
        raise Misfit(f"number {shown(value)} does not fit a BIGINT column")
    return str(int(Decimal(value)))


def decimal_encoder(precision: int, scale: int) -> Callable[[str], str]:
    int_max = precision - scale

    def encode(value: str) -> str:
        ip, _, fp = value.partition(".")
        if ip[:1] == "-":
            ip = ip[1:]
        if ip.isdigit() and value.isascii() and (not fp or fp.isdigit()):
            if len(fp) <= scale and len(ip.lstrip("0")) <= int_max:
                return value
        else:
            int_digits, value_scale, _ = number_digits(value)
            if value_scale <= scale and int_digits <= int_max:
                return decimal_text(value)
        raise Misfit(f"number {shown(value)} does not fit DECIMAL({precision},{scale})")

    return encode


def memoized(encode: Callable[[str], str], limit: int = 4096) -> Callable[[str], str]:
    """``encode`` remembering up to ``limit`` results (numbers repeat: amounts, scores)."""
    cache: dict[str, str] = {}
    get = cache.get

    def memo(value: str) -> str:
        out = get(value)
        if out is None:
            out = encode(value)
            if len(cache) < limit:
                cache[value] = out
        return out

    return memo


def timestamp_text(value: str) -> str:
    if type(value) is str and is_strict_timestamp(value):
        return value
    raise Misfit(f"string {shown(value)} is not a strict ISO-8601 timestamp with offset")


def boolean_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise ValueError(f"BOOL value {shown(value)} is not a boolean")


def bytes_of(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"B value {shown(value)} is not base64") from None
    raise ValueError(f"B value {shown(value)} is neither bytes nor base64 text")


def binary_text(value: Any) -> str:
    if type(value) is bytes:
        return "\\x" + value.hex()
    return "\\x" + bytes_of(value).hex()


def json_number(value: str) -> str:
    if type(value) is str and _JSON_NUMBER.fullmatch(value):
        return value
    return decimal_text(value)


def json_base64(value: Any) -> str:
    return '"' + base64.b64encode(bytes_of(value)).decode() + '"'


def _json_set(tag: str, values: Any) -> str:
    if tag == "SS":
        parts = [encode_basestring(v) for v in sorted(values)]
    elif tag == "NS":
        parts = [json_number(v) for v in sorted_numbers(values)]
    else:
        parts = [json_base64(v) for v in sorted(values, key=bytes_of)]
    return "[" + ",".join(parts) + "]"


def _decimal_key(value: str) -> Decimal:
    number_digits(value)
    return Decimal(value)


def sorted_numbers(values: Iterable[str]) -> list[str]:
    """Number strings in numeric order (integers compare as int, the rest as Decimal)."""
    try:
        return sorted(values, key=int)
    except ValueError:
        return sorted(values, key=_decimal_key)


def number_text(value: str) -> str:
    number_digits(value)
    return value


def json_text(av: Mapping[str, Any]) -> str:
    """Compact JSON of one wire value: numbers exact, map keys and sets sorted."""
    for tag, v in av.items():
        if tag == "S":
            return encode_basestring(v)
        if tag == "N":
            return json_number(v)
        if tag == "M":
            return (
                "{"
                + ",".join(encode_basestring(k) + ":" + json_text(v[k]) for k in sorted(v))
                + "}"
            )
        if tag == "L":
            return "[" + ",".join([json_text(e) for e in v]) + "]"
        if tag == "BOOL":
            return boolean_text(v)
        if tag == "NULL":
            return "null"
        if tag == "B":
            return json_base64(v)
        if tag in ("SS", "NS", "BS"):
            return _json_set(tag, v)
        raise ValueError(f"unknown DynamoDB type {tag!r}")
    raise ValueError("empty DynamoDB attribute value {}")


def shown(value: Any) -> str:
    """``repr`` of a value for a transform error message, cut to 60 characters."""
    return clip(value, 60)


def tag_of(av: Any) -> str:
    if type(av) is not dict or len(av) != 1:
        raise ValueError(f"expected a one-key DynamoDB attribute value, got {shown(av)}")
    return next(iter(av))
