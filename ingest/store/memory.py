"""A tiny in-memory store: for unit tests of code above the store seam and for the contract suite."""

from __future__ import annotations

import threading

from ingest.model import Reading, Rejection, WriteBatch
from ingest.store.base import ReadingQuery, Store


class MemoryStore(Store):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readings: dict[tuple[str, str, str, int], Reading] = {}
        self._rejections: list[Rejection] = []
        self.writes = 0

    def write(self, batch: WriteBatch) -> None:
        with self._lock:
            for r in batch.readings:
                self._readings[(r.park, r.tenant, r.meter, r.ts_ms)] = r
            self._rejections.extend(batch.rejections)
            self.writes += 1

    def readings(self, query: ReadingQuery) -> list[Reading]:
        with self._lock:
            items = sorted(self._readings.items())
        return [
            r
            for _, r in items
            if (query.park is None or r.park == query.park)
            and (query.tenant is None or r.tenant == query.tenant)
            and (query.meter is None or r.meter == query.meter)
            and (query.start_ms is None or r.ts_ms >= query.start_ms)
            and (query.end_ms is None or r.ts_ms < query.end_ms)
        ]

    def quarantined(
        self, reason: str | None = None, since_ms: int | None = None, limit: int = 1000
    ) -> list[Rejection]:
        with self._lock:
            rows = [
                q
                for q in self._rejections
                if (reason is None or q.reason == reason)
                and (since_ms is None or q.received_ms >= since_ms)
            ]
        rows.sort(key=lambda q: q.received_ms, reverse=True)
        return rows[:limit]

    def quarantine_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            for q in self._rejections:
                counts[q.reason] = counts.get(q.reason, 0) + 1
        return counts

    def ping(self) -> None:
        return None
