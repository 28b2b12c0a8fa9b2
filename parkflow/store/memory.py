"""In-memory stores, one per port, for unit tests of the code above the ports and as the
reference the contract suite holds the durable backends to. ``MemoryStore`` combines them.

Readings, quarantine and change markers share one class because one ``write`` puts all three
down together; rollups and checkpoints are written on their own and have classes of their own.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from parkflow.model import MeterKey, QuarantinedMessage, Reading, Rejection, WriteBatch
from parkflow.store.ports import (
    Clock,
    MeterRange,
    RangeData,
    ReadingQuery,
    read_ranges_one_by_one,
    touched_hours,
    wall_clock_ms,
)
from parkflow.store.rollup_rows import DayRollup, no_hours, rollup_frame
from parkflow.store.savings_rows import SavingsPoint
from parkflow.timeunits import DAY_MS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class MemoryCheckpoints:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}

    def get_checkpoint(self, name: str) -> int | None:
        with self._lock:
            return self._values.get(name)

    def set_checkpoint(self, name: str, value: int) -> None:
        with self._lock:
            self._values[name] = value


class MemoryRollups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[MeterKey, int], DayRollup] = {}

    def write_rollups(self, rows: Sequence[DayRollup]) -> None:
        with self._lock:
            for row in rows:
                self._rows[(row.key, row.day_ms)] = row

    def get_rollups(self, wanted: Collection[tuple[MeterKey, int]]) -> list[DayRollup]:
        with self._lock:
            return [self._rows[w] for w in dict.fromkeys(wanted) if w in self._rows]

    def day_rollups(self, park: str | None, start_ms: int, end_ms: int) -> pd.DataFrame:
        with self._lock:
            rows = [
                r
                for (key, day), r in self._rows.items()
                if (park is None or key.park == park) and start_ms <= day < end_ms
            ]
        return rollup_frame(rows)

    def rollup_hours(self, keys: Sequence[MeterKey], start_ms: int, days: int) -> np.ndarray:
        out = no_hours(len(keys), days)
        with self._lock:
            for i, key in enumerate(keys):
                for d in range(days):
                    row = self._rows.get((key, start_ms + d * DAY_MS))
                    if row is not None:
                        out[i, d] = row.hours
        return out


class MemoryReadings:
    """Readings, quarantine and the change markers of their writes."""

    def __init__(self, *, clock: Clock = wall_clock_ms) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._readings: dict[tuple[str, str, str, int], Reading] = {}
        self._rejections: dict[str, Rejection] = {}  # by rid: the first write is kept
        self._messages: dict[str, QuarantinedMessage] = {}
        self._changes: dict[tuple[MeterKey, int], int] = {}  # (meter, hour_ms) -> written_ms
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

    def ping(self) -> None:
        return None

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

    def neighbours(
        self, key: MeterKey, start_ms: int, end_ms: int
    ) -> tuple[Reading | None, Reading | None]:
        series = self.readings(ReadingQuery(key.park, key.tenant, key.meter))
        times = [r.ts_ms for r in series]
        i = bisect.bisect_left(times, start_ms)
        j = bisect.bisect_left(times, end_ms)
        return (series[i - 1] if i > 0 else None, series[j] if j < len(series) else None)

    def read_ranges(self, ranges: Sequence[MeterRange]) -> list[RangeData]:
        return read_ranges_one_by_one(self, ranges)

    def quarantined(
        self,
        reason: str | None = None,
        since_ms: int | None = None,
        limit: int = 1000,
        *,
        until_ms: int | None = None,
        park: str | None = None,
        tenant: str | None = None,
        meter: str | None = None,
    ) -> list[Rejection]:
        with self._lock:
            rows = [
                q
                for q in self._rejections.values()
                if (reason is None or q.reason == reason)
                and (since_ms is None or q.received_ms >= since_ms)
                and (until_ms is None or q.received_ms < until_ms)
                and (park is None or q.park == park)
                and (tenant is None or q.tenant == tenant)
                and (meter is None or q.meter == meter)
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

    def changes_since(self, after_ms: int, until_ms: int) -> list[tuple[MeterKey, int]]:
        with self._lock:
            found = {k for k, written in self._changes.items() if after_ms < written <= until_ms}
        return sorted(found, key=lambda kh: (kh[0].park, kh[0].tenant, kh[0].meter, kh[1]))

    def prune_changes(self, before_ms: int) -> None:
        with self._lock:
            self._changes = {k: w for k, w in self._changes.items() if w >= before_ms}


class MemorySavings:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._savings: dict[tuple[str, str, int], SavingsPoint] = {}

    def write_savings(self, points: Sequence[SavingsPoint]) -> None:
        with self._lock:
            for p in points:
                self._savings[(p.park, p.exchange, p.day_ms)] = p

    def savings_points(self, park: str | None, start_ms: int, end_ms: int) -> list[SavingsPoint]:
        with self._lock:
            return [
                self._savings[k]
                for k in sorted(self._savings)
                if (park is None or k[0] == park) and start_ms <= k[2] < end_ms
            ]


class MemoryStore(MemoryReadings, MemoryRollups, MemorySavings, MemoryCheckpoints):
    """Every port in memory."""

    def __init__(self, *, clock: Clock = wall_clock_ms) -> None:
        MemoryReadings.__init__(self, clock=clock)  # one lock, shared by all three
        self._rows: dict[tuple[MeterKey, int], DayRollup] = {}
        self._savings: dict[tuple[str, str, int], SavingsPoint] = {}
        self._values: dict[str, int] = {}

    def close(self) -> None:
        return None
