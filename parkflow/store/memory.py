"""A tiny in-memory store: for unit tests of code above the store seam and for the contract suite."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from parkflow.model import MeterKey, QuarantinedMessage, Reading, Rejection, WriteBatch
from parkflow.store.base import (
    Clock,
    DayRollup,
    ReadingQuery,
    Store,
    rollup_frame,
    touched_hours,
    wall_clock_ms,
)

if TYPE_CHECKING:
    import pandas as pd


class MemoryStore(Store):
    def __init__(self, *, clock: Clock = wall_clock_ms) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._readings: dict[tuple[str, str, str, int], Reading] = {}
        self._rejections: dict[str, Rejection] = {}  # by rid: the first write is kept
        self._messages: dict[str, QuarantinedMessage] = {}
        self._changes: dict[tuple[MeterKey, int], int] = {}  # (meter, hour_ms) -> written_ms
        self._rollups: dict[tuple[MeterKey, int], DayRollup] = {}
        self._state: dict[str, int] = {}
        self.writes = 0

    def write(self, batch: WriteBatch) -> None:
        with self._lock:
            for r in batch.readings:
                self._readings[(r.park, r.tenant, r.meter, r.ts_ms)] = r
            for q in batch.rejections:
                self._rejections.setdefault(q.rid, q)
            for m in batch.messages:
                self._messages.setdefault(m.message_id, m)
            written = self._clock()
            for key, hours in touched_hours(batch.readings).items():
                for hour in hours:
                    self._changes[(key, hour)] = written
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
                for q in self._rejections.values()
                if (reason is None or q.reason == reason)
                and (since_ms is None or q.received_ms >= since_ms)
            ]
        rows.sort(key=lambda q: q.received_ms, reverse=True)
        return rows[:limit]

    def quarantined_messages(
        self, rejections: Sequence[Rejection]
    ) -> dict[str, QuarantinedMessage]:
        with self._lock:
            return {
                r.message_id: self._messages[r.message_id]
                for r in rejections
                if r.message_id in self._messages
            }

    def quarantine_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            for q in self._rejections.values():
                counts[q.reason] = counts.get(q.reason, 0) + 1
        return counts

    def ping(self) -> None:
        return None

    # -- change markers ------------------------------------------------------------------------

    def changes_since(self, after_ms: int, until_ms: int) -> list[tuple[MeterKey, int]]:
        with self._lock:
            found = {k for k, written in self._changes.items() if after_ms < written <= until_ms}
        return sorted(found, key=lambda kh: (kh[0].park, kh[0].tenant, kh[0].meter, kh[1]))

    def prune_changes(self, before_ms: int) -> None:
        with self._lock:
            self._changes = {k: w for k, w in self._changes.items() if w >= before_ms}

    # -- reads for the rollup worker -----------------------------------------------------------

    def neighbours(
        self, key: MeterKey, start_ms: int, end_ms: int
    ) -> tuple[Reading | None, Reading | None]:
        series = self.readings(ReadingQuery(key.park, key.tenant, key.meter))
        times = [r.ts_ms for r in series]
        i = bisect.bisect_left(times, start_ms)
        j = bisect.bisect_left(times, end_ms)
        return (series[i - 1] if i > 0 else None, series[j] if j < len(series) else None)

    # -- rollups -------------------------------------------------------------------------------

    def write_rollups(self, rows: Sequence[DayRollup]) -> None:
        with self._lock:
            for row in rows:
                self._rollups[(row.key, row.day_ms)] = row

    def get_rollups(self, wanted: Collection[tuple[MeterKey, int]]) -> list[DayRollup]:
        with self._lock:
            return [self._rollups[w] for w in dict.fromkeys(wanted) if w in self._rollups]

    def day_rollups(self, park: str | None, start_ms: int, end_ms: int) -> pd.DataFrame:
        with self._lock:
            rows = [
                r
                for (key, day), r in self._rollups.items()
                if (park is None or key.park == park) and start_ms <= day < end_ms
            ]
        return rollup_frame(rows)

    # -- state ---------------------------------------------------------------------------------

    def get_state(self, name: str) -> int | None:
        with self._lock:
            return self._state.get(name)

    def set_state(self, name: str, value: int) -> None:
        with self._lock:
            self._state[name] = value
