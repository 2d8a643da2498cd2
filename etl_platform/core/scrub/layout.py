"""Where a dump archive lives in S3, and which dump an S3 event announces.

A dump is a pg_dump directory archive under ``PREFIX/DUMP_KEY/`` (``toc.dat`` and one
``NNNN.dat.gz`` per table) whose ``manifest.json`` is written last: the manifest's creation is
the event that announces a complete dump, and the same layout holds the clean dump in the load
bucket. ``DUMP_KEY`` is the dump's dynamic partition key. The events themselves are parsed by
:mod:`etl_platform.core.s3_events` (the one S3 notification parser).
"""

from __future__ import annotations

import re

MANIFEST = "manifest.json"
TOC = "toc.dat"
_DUMP_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._=+:-]{0,127}$")


def dump_root(prefix: str, dump_key: str) -> str:
    return f"{prefix.strip('/')}/{dump_key}/" if prefix.strip("/") else f"{dump_key}/"


def dump_object_key(prefix: str, dump_key: str, name: str) -> str:
    return dump_root(prefix, dump_key) + name


def valid_dump_key(dump_key: str) -> bool:
    return bool(_DUMP_KEY.match(dump_key))


def events_prefix(prefix: str) -> str:
    """The key prefix every object of the dumps under ``prefix`` starts with (``""`` for the
    bucket's root): what the event parser checks keys against."""
    root = prefix.strip("/")
    return f"{root}/" if root else ""


def announced_dump_key(prefix: str, key: str) -> str | None:
    """The dump whose ``manifest.json`` is ``key`` (a key under :func:`events_prefix`), or None
    for any other object of a dump."""
    rest = key[len(events_prefix(prefix)) :]
    parts = rest.split("/")
    if len(parts) == 2 and parts[1] == MANIFEST and valid_dump_key(parts[0]):
        return parts[0]
    return None
