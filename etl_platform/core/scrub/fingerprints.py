"""The residual scan's "original value left behind" check over a whole dump, in bounded memory.

Chunks report int64 fingerprints of the originals of scrubbed columns and of the distinct
values of kept/masked text columns (:mod:`.chunks`). This collects both sides, deduplicated,
and at the end counts, per checked column, its distinct values whose fingerprint is also an
original's. Complete while both sides together hold at most ``max_values`` distinct
fingerprints; past that, both sides keep only fingerprints whose low ``bits`` are zero (the
same rule on both sides, so the check stays exact on the sample) and the report says
``sampled`` with the fraction. ``sample_fraction`` below 1 samples from the start.
"""

from __future__ import annotations

import math

import numpy as np


class FingerprintSample:
    def __init__(self, sample_fraction: float = 1.0, max_values: int = 2_000_000) -> None:
        if not 0 < sample_fraction <= 1:
            raise ValueError(f"residual sample fraction {sample_fraction} is not in (0, 1]")
        self.bits = max(0, math.ceil(-math.log2(sample_fraction) - 1e-9))
        self.max_values = max_values
        self.originals_seen = 0
        self._originals: list[np.ndarray] = []
        self._checked: dict[str, list[np.ndarray]] = {}
        self._pending = 0

    @property
    def fraction(self) -> float:
        return 1.0 / (1 << self.bits)

    def _keep(self, values: np.ndarray) -> np.ndarray:
        if not self.bits:
            return values
        return values[(values & ((1 << self.bits) - 1)) == 0]

    def add_originals(self, data: bytes) -> None:
        values = np.frombuffer(data, dtype=np.int64)
        self.originals_seen += len(values)
        self._add(self._originals, values)

    def add_checked(self, column: str, data: bytes) -> None:
        self._add(self._checked.setdefault(column, []), np.frombuffer(data, dtype=np.int64))

    def _add(self, parts: list[np.ndarray], values: np.ndarray) -> None:
        values = self._keep(values)
        if len(values):
            parts.append(values)
            self._pending += len(values)
        if self._pending > self.max_values // 4 + 1024:
            self._compact()

    def _compact(self) -> None:
        groups = [self._originals, *self._checked.values()]
        for parts in groups:
            _dedupe(parts)
        while sum(len(p[0]) for p in groups if p) > self.max_values:
            self.bits += 1
            for parts in groups:
                if parts:
                    parts[0] = self._keep(parts[0])
        self._pending = 0

    def hits(self) -> dict[str, int]:
        """Per checked column: distinct values that are originals of a scrubbed column."""
        self._compact()
        if not self._originals:
            return {}
        originals = self._originals[0]
        found = {}
        for column, parts in self._checked.items():
            count = int(np.isin(parts[0], originals, assume_unique=True).sum()) if parts else 0
            if count:
                found[column] = count
        return found

    def summary(self) -> dict[str, object]:
        self._compact()
        return {
            "original_values_seen": self.originals_seen,
            "original_values_checked": len(self._originals[0]) if self._originals else 0,
            "sampled": self.bits > 0,
            "sample_fraction": self.fraction,
        }


def _dedupe(parts: list[np.ndarray]) -> None:
    """Replace the parts by one sorted array of their distinct values."""
    if len(parts) > 1 or (parts and not _is_unique_sorted(parts[0])):
        merged = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
        merged.sort()
        if len(merged) > 1:
            merged = merged[np.concatenate(([True], merged[1:] != merged[:-1]))]
        parts[:] = [merged]


def _is_unique_sorted(values: np.ndarray) -> bool:
    return bool(len(values) < 2 or np.all(values[1:] > values[:-1]))
