"""DynamoDB wire JSON: the items of a raw Scan/Query response page, parsed one at a time."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def iter_wire_items(
    page: str | bytes, fields: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """The items of one raw DynamoDB Scan/Query response body (wire JSON), parsed one at a
    time: about twice as fast as ``json.loads`` of the whole page (less garbage-collector and
    cache churn) and the items can be transformed as they come. Other top-level fields
    (``Count``, ``LastEvaluatedKey``) go into ``fields`` when given (complete once the
    iterator is exhausted). ``B`` values stay base64 text, which the transform accepts."""
    text = page.decode("utf-8") if isinstance(page, (bytes, bytearray)) else page
    scan = _DECODER.scan_once
    skip = _WHITESPACE.match
    space = " \t\n\r"
    i = 0
    try:
        i = _object_start(text)
        if text[i] == "}":
            return
        while True:
            key, i = _member_key(text, i)
            if key != "Items":
                value, i = scan(text, i)
                if fields is not None:
                    fields[key] = value
            else:
                i = _array_start(text, i)
                if text[i] == "]":
                    i += 1
                else:
                    while True:
                        item, i = scan(text, i)
                        yield item
                        c = text[i]
                        if c in space:
                            i = skip(text, i).end()
                            c = text[i]
                        if c == ",":
                            i += 1
                            if text[i] in space:
                                i = skip(text, i).end()
                        elif c == "]":
                            i += 1
                            break
                        else:
                            raise ValueError(f"expected ',' or ']' at offset {i}")
            i, done = _member_end(text, i)
            if done:
                return
    except IndexError:
        raise ValueError("DynamoDB page JSON ends early (truncated body?)") from None
    except StopIteration:
        raise ValueError(f"DynamoDB page is not valid JSON at offset {i}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"DynamoDB page is not valid JSON: {e}") from None


def _object_start(text: str) -> int:
    """Offset of the first member (or the closing brace) of the page's top-level object."""
    i = _WHITESPACE.match(text, 0).end()
    if text[i] != "{":
        raise ValueError(f"a DynamoDB page is a JSON object, got {text[i : i + 20]!r}")
    return _WHITESPACE.match(text, i + 1).end()


def _member_key(text: str, i: int) -> tuple[str, int]:
    """The member name at offset ``i`` and the offset of its value."""
    key, i = _DECODER.scan_once(text, i)
    i = _WHITESPACE.match(text, i).end()
    if text[i] != ":":
        raise ValueError(f"expected ':' at offset {i}")
    return key, _WHITESPACE.match(text, i + 1).end()


def _array_start(text: str, i: int) -> int:
    """Offset of the first element (or the closing bracket) of the ``Items`` array at ``i``."""
    if text[i] != "[":
        raise ValueError(f"'Items' is not a JSON array (offset {i})")
    return _WHITESPACE.match(text, i + 1).end()


def _member_end(text: str, i: int) -> tuple[int, bool]:
    """After a member's value: the offset of the next member, or ``(i, True)`` at the end of
    the object."""
    i = _WHITESPACE.match(text, i).end()
    if text[i] == ",":
        return _WHITESPACE.match(text, i + 1).end(), False
    if text[i] == "}":
        return i, True
    raise ValueError(f"expected ',' or '}}' at offset {i}")
