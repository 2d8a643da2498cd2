"""The sensor's memory between ticks, kept in its Dagster cursor (JSON, bounded).

* ``pending``: run key -> receipt handles of the messages that run loads. Messages are deleted
  only on a later tick, once the run with that key exists: the manifest is written first, the
  run requested second, the messages deleted last. A run key that never became a run drops its
  entry without deleting, so the messages come back after their visibility timeout.
* ``seen``: fingerprint of a loaded object version -> the run key that loads it, newest last,
  at most ``SEEN_LIMIT``: a redelivered or replayed event of a known version is acknowledged
  with that run instead of loading the file again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["SEEN_LIMIT", "SensorMemory"]

SEEN_LIMIT = 20_000


@dataclass
class SensorMemory:
    seen: dict[str, str] = field(default_factory=dict)
    pending: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> SensorMemory:
        if not cursor:
            return cls()
        try:
            raw = json.loads(cursor)
            seen = {str(k): str(v) for k, v in raw.get("seen", [])}
            pending = {str(k): [str(h) for h in v] for k, v in raw.get("pending", {}).items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"sensor cursor is not a micro-batch cursor: {exc}") from exc
        return cls(seen=seen, pending=pending)

    def to_cursor(self) -> str:
        return json.dumps(
            {"seen": [[k, v] for k, v in self.seen.items()], "pending": self.pending},
            separators=(",", ":"),
        )

    def remember(self, fingerprints: Iterable[str], run_key: str, limit: int = SEEN_LIMIT) -> None:
        for fp in fingerprints:
            self.seen.pop(fp, None)
            self.seen[fp] = run_key
        excess = len(self.seen) - limit
        if excess > 0:
            for fp in list(self.seen)[:excess]:
                del self.seen[fp]

    def acknowledge_after(self, run_key: str, receipt_handles: Iterable[str]) -> None:
        self.pending.setdefault(run_key, []).extend(receipt_handles)

    def settle(self, existing_run_keys: set[str]) -> list[str]:
        """Receipt handles now safe to delete (every run their message feeds exists); forget the
        rest, and what ``seen`` says of run keys that never became runs."""
        owners: dict[str, set[str]] = {}
        for run_key, handles in self.pending.items():
            for handle in handles:
                owners.setdefault(handle, set()).add(run_key)
        missing = set(self.pending) - existing_run_keys
        if missing:
            self.seen = {fp: rk for fp, rk in self.seen.items() if rk not in missing}
        self.pending = {}
        return [h for h, run_keys in owners.items() if run_keys <= existing_run_keys]
