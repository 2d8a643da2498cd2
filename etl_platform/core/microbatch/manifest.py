"""Manifests: which files one micro-batch run loads, in which order, in Redshift's format.

Files of one day are ordered by event time, then key (the order breaks timestamp ties: the
later file wins) and cut into manifests of at most ``max_files`` files and ``max_bytes`` bytes
(a single larger file goes alone). A manifest's id is a digest of its instance, day and files
(URL and ETag), so writing it again gives the same id, object key and run key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from etl_platform.core.microbatch.events import DatedEvent
from etl_platform.core.s3_layout import s3_uri

__all__ = ["BatchLimits", "Manifest", "ManifestFile", "group_into_manifests"]


@dataclass(frozen=True)
class BatchLimits:
    """How big a manifest may grow."""

    max_files: int = 100
    max_bytes: int = 1024**3

    def __post_init__(self) -> None:
        if self.max_files < 1 or self.max_bytes < 1:
            raise ValueError(
                f"batching needs max_files >= 1 and max_bytes >= 1, got {self.max_files} "
                f"and {self.max_bytes}"
            )


@dataclass(frozen=True)
class ManifestFile:
    """One file of a manifest: where it is, its size and ETag, when S3 announced it."""

    url: str
    size: int
    etag: str
    event_time: datetime | None

    def as_config(self) -> dict[str, Any]:
        when = self.event_time.isoformat() if self.event_time else None
        return {"url": self.url, "size": self.size, "etag": self.etag, "event_time": when}

    @classmethod
    def from_config(cls, value: Mapping[str, Any]) -> ManifestFile:
        when = value.get("event_time")
        return cls(
            url=str(value["url"]),
            size=int(value["size"]),
            etag=str(value.get("etag") or ""),
            event_time=datetime.fromisoformat(when) if when else None,
        )


@dataclass(frozen=True)
class Manifest:
    """The files of one load of one day, in load order."""

    instance: str
    day: date
    files: tuple[ManifestFile, ...]

    def __post_init__(self) -> None:
        if not self.files:
            raise ValueError(f"manifest of {self.instance} for {self.day} has no files")
        urls = [f.url for f in self.files]
        if len(set(urls)) != len(urls):
            raise ValueError(f"manifest of {self.instance} for {self.day} lists a file twice")

    @property
    def manifest_id(self) -> str:
        digest = hashlib.sha256(f"{self.instance}\x00{self.day.isoformat()}".encode())
        for f in self.files:
            digest.update(f"\x00{f.url}\x00{f.etag}".encode())
        return f"{self.instance}-{self.day:%Y%m%d}-{digest.hexdigest()[:20]}"

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def redshift_json(self) -> dict[str, Any]:
        """Redshift's COPY manifest: ``entries`` of ``url``, ``mandatory: true`` (a missing file
        fails the load instead of loading less) and ``meta.content_length``."""
        return {
            "entries": [
                {"url": f.url, "mandatory": True, "meta": {"content_length": f.size}}
                for f in self.files
            ]
        }

    def redshift_bytes(self) -> bytes:
        return json.dumps(self.redshift_json(), ensure_ascii=False, indent=1).encode("utf-8")


def _sort_key(item: DatedEvent) -> tuple[datetime, str, str]:
    return (item.event.event_time, item.event.key, item.event.sequencer)


def _sequencer_order(sequencer: str) -> tuple[int, str]:
    # S3 sequencers of one key compare as hex strings of equal length (pad the shorter one)
    return (len(sequencer.lstrip("0")), sequencer.lstrip("0"))


def _latest_per_key(events: Iterable[DatedEvent]) -> list[DatedEvent]:
    latest: dict[tuple[str, str], DatedEvent] = {}
    for item in events:
        e = item.event
        known = latest.get((e.bucket, e.key))
        if known is None or (e.event_time, _sequencer_order(e.sequencer)) >= (
            known.event.event_time,
            _sequencer_order(known.event.sequencer),
        ):
            latest[(e.bucket, e.key)] = item
    return list(latest.values())


def group_into_manifests(
    instance: str, events: Iterable[DatedEvent], limits: BatchLimits
) -> list[Manifest]:
    """Cut events into manifests, one day each, by the limits; days in order, files of a day by
    event time then key. Two versions of one key in the batch load once (the object holds the
    later one now). Every other event lands in exactly one manifest."""
    by_day: dict[date, list[DatedEvent]] = {}
    for item in _latest_per_key(events):
        by_day.setdefault(item.day, []).append(item)
    manifests: list[Manifest] = []
    for day in sorted(by_day):
        current: list[ManifestFile] = []
        size = 0
        for item in sorted(by_day[day], key=_sort_key):
            e = item.event
            entry = ManifestFile(s3_uri(e.bucket, e.key), e.size, e.etag, e.event_time)
            full = len(current) >= limits.max_files or size + e.size > limits.max_bytes
            if current and full:
                manifests.append(Manifest(instance, day, tuple(current)))
                current, size = [], 0
            current.append(entry)
            size += e.size
        if current:
            manifests.append(Manifest(instance, day, tuple(current)))
    return manifests
