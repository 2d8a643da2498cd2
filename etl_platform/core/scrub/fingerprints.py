"""The residual scan's "original value left behind" check over a whole dump, in bounded memory.

Chunks report int64 fingerprints of the originals of scrubbed columns and of the distinct
values of kept/masked text columns (:mod:`.chunks`). This keeps both sides and at the end
counts, per checked column, its distinct values whose fingerprint is also an original's.

Complete while both sides together hold at most ``max_values`` fingerprints (8 bytes each;
1M by default: 8 MB).
Past that, both sides keep only fingerprints whose low ``bits`` are zero (the same rule on both
sides, so the check stays exact on the sample: a value is in or out everywhere) and the report
says ``sampled`` with the fraction. ``sample_fraction`` below 1 samples from the start.
"""

from __future__ import annotations

import math

import numpy as np


class FingerprintSample:
    def __init__(self, sample_fraction: float = 1.0, max_values: int = 1_000_000) -> None:
        if not 0 < sample_fraction <= 1:
            raise ValueError(f"residual sample fraction {sample_fraction} is not in (0, 1]")
        self.bits = max(0, math.ceil(-math.log2(sample_fraction) - 1e-9))
        self.max_values = max_values
        self.originals_seen = 0
        self._originals: list[np.ndarray] = []
        self._checked: dict[str, list[np.ndarray]] = {}
        self._held = 0

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
        parts = self._checked.setdefault(column, [])
        self._add(parts, np.frombuffer(data, dtype=np.int64))
        if len(parts) > 64:  # kept columns repeat their values: fold them
            self._held -= sum(map(len, parts))
            parts[:] = [_distinct(parts)]
            self._held += len(parts[0])

    def clear_checked(self) -> None:
        """Forget the checked side (the clean data was replaced: custom SQL ran on it)."""
        self._held -= sum(len(p) for parts in self._checked.values() for p in parts)
        self._checked = {}

    def _add(self, parts: list[np.ndarray], values: np.ndarray) -> None:
        values = self._keep(values)
        if len(values):
            parts.append(values.copy())  # not a view of the caller's buffer
            self._held += len(values)
        while self._held > self.max_values:
            self.bits += 1
            self._held = 0
            for group in (self._originals, *self._checked.values()):
                for index, part in enumerate(group):  # one part at a time: no second copy
                    group[index] = self._keep(part)
                    self._held += len(group[index])
                group[:] = [part for part in group if len(part)]

    def hits(self) -> dict[str, int]:
        """Per checked column: distinct values that are originals of a scrubbed column."""
        found: dict[str, int] = {}
        for column, parts in self._checked.items():
            checked = _distinct(parts)
            seen = np.zeros(len(checked), dtype=bool)
            for originals in self._originals:
                at = np.searchsorted(checked, originals)
                inside = at < len(checked)
                at, originals = at[inside], originals[inside]
                seen[at[checked[at] == originals]] = True
            if seen.any():
                found[column] = int(seen.sum())
        return found

    def summary(self) -> dict[str, object]:
        return {
            "original_values_seen": self.originals_seen,
            "original_values_checked": sum(map(len, self._originals)),
            "sampled": self.bits > 0,
            "sample_fraction": self.fraction,
        }


def _distinct(parts: list[np.ndarray]) -> np.ndarray:
    """The sorted distinct values of all parts."""
    if not parts:
        return np.zeros(0, dtype=np.int64)
    merged = np.concatenate(parts)
    merged.sort()
    if len(merged) > 1:
        merged = merged[np.concatenate(([True], merged[1:] != merged[:-1]))]
    return merged
