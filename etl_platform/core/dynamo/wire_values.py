"""Facts about single DynamoDB wire values (``{"S": ...}``, ``{"N": "1.5"}``, ...) that both
inference and the transform rely on: strict timestamps, exact number digits, values that
flatten to nothing, and the entity type of an item."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from .config import EntityRule

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

TIMESTAMP_PATTERN = re.compile(
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:0[0-9]|1[0-5]):[0-5][0-9])"
)
_NUM_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def is_strict_timestamp(value: str) -> bool:
    """True for ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)``, a real calendar date, year
    >= 1, at most microseconds (what ``timestamptz`` stores without rounding)."""
    if TIMESTAMP_PATTERN.fullmatch(value) is None:
        return False
    if value[8:10] < "29":
        return True
    try:
        date(int(value[:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return False
    return True


def number_digits(value: str) -> tuple[int, int, bool]:
    """``(integer digits, scale, fits int64)`` of a DynamoDB number string, exactly.

    Integer digits exclude leading zeros; scale counts the fractional digits of the positional
    form (``1E-130`` has scale 130, ``1.50`` scale 2). Raises ``ValueError`` for anything that
    is not a finite decimal number."""
    body = value[1:] if value[:1] in "-+" else value
    ip, dot, fp = body.partition(".")
    if ip.isascii() and ip.isdigit() and (not dot or (fp.isascii() and fp.isdigit())):
        digits = len(ip.lstrip("0"))
        if fp:
            return digits, len(fp), False
        return digits, 0, digits < 19 or INT64_MIN <= int(value) <= INT64_MAX
    if not isinstance(value, str) or _NUM_RE.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a DynamoDB number")
    d = Decimal(value)
    _, digs, exp = d.as_tuple()
    assert isinstance(exp, int)
    n = len(digs)
    if exp >= 0:
        ndig = 0 if d.is_zero() else n + exp
        return ndig, 0, INT64_MIN <= int(d) <= INT64_MAX
    scale = -exp
    int_digits = max(0, n - scale)
    if d.is_zero():
        int_digits = 0
    integral = d == d.to_integral_value()
    return int_digits, scale, integral and INT64_MIN <= int(d) <= INT64_MAX


def clip(value: Any, limit: int = 80) -> str:
    """``repr`` of ``value`` for an error message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def carries_data(av: Any) -> bool:
    """False for NULL and for maps holding only such values (empty maps included): they
    flatten to nothing, so they count as NULL."""
    if type(av) is not dict or len(av) != 1:
        raise ValueError(f"expected a one-key DynamoDB attribute value, got {clip(av)}")
    if "NULL" in av:
        return False
    m = av.get("M")
    if m is None:
        return True
    return any(map(carries_data, m.values()))


def entity_of(item: Mapping[str, Any], rule: EntityRule | None) -> str | None:
    """The entity type of a wire-format item under ``rule``; None = the default entity."""
    if rule is None:
        return None
    av = item.get(rule.attribute)
    if av is None:
        return None
    value = av.get("S")
    if value is None:
        return None
    prefix, sep, _ = value.partition(rule.separator)
    return prefix if sep and prefix else None
