"""The store seam: one write method that the pipeline depends on, plus the reads others need.

Besides readings and quarantine, every store keeps what the rollup worker needs so that nothing
lives in process memory: *change markers* written in the same write as the readings (which
meter-hours changed, and when), day *rollups* (24 hourly quantities per meter and local day),
and a little named *state* (the worker's watermark).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from parkflow.model import Direction, MeterKey, QuarantinedMessage, Reading, Rejection, WriteBatch
from parkflow.timeunits import HOUR_MS, HOURS_PER_DAY

if TYPE_CHECKING:  # pandas is imported lazily: the ingestor never needs it
    import pandas as pd

HOUR_COLUMNS = tuple(f"h{i:02d}" for i in range(HOURS_PER_DAY))
ROLLUP_COLUMNS = (
    "park",
    "tenant",
    "meter",
    "resource",
    "direction",
    "day",
    "total",
    "coverage",
    *HOUR_COLUMNS,
)

Clock = Callable[[], int]
Point = tuple[int, float]  # (ts_ms, value)


def wall_clock_ms() -> int:
    """The default clock for change markers: wall time, because several hosts compare it."""
    return time.time_ns() // 1_000_000


def hour_of(ts_ms: int) -> int:
    """Start of the UTC hour holding ``ts_ms`` (floor, also for times before 1970)."""
    return ts_ms - ts_ms % HOUR_MS


def touched_hours(readings: Iterable[Reading]) -> dict[MeterKey, set[int]]:
    """The UTC hours each meter got readings in: what a write marks as changed."""
    raw: dict[tuple[str, str, str], set[int]] = {}
    for r in readings:  # on the ingest path: one tuple per reading, one key per meter
        key = (r.park, r.tenant, r.meter)
        hours = raw.get(key)
        if hours is None:
            raw[key] = hours = set()
        hours.add(r.ts_ms - r.ts_ms % HOUR_MS)
    return {MeterKey(*key): hours for key, hours in raw.items()}


@dataclass(frozen=True, slots=True)
class ReadingQuery:
    """Which readings to read back; ``None`` means no restriction. Times are epoch ms, end exclusive."""

    park: str | None = None
    tenant: str | None = None
    meter: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DayRollup:
    """One meter's quantities over one park-local day.

    ``day_ms`` is the UTC instant of local midnight (the park's standard offset, see
    ``service.rollups.compute``); ``hours[i]`` is the quantity (canonical unit) that flowed in
    ``[day_ms + i h, day_ms + (i + 1) h)``, NaN when no data covers that hour. ``total`` is the
    sum of the hours with data and ``coverage`` the share of hours with data.
    """

    park: str
    tenant: str
    meter: str
    resource: str
    direction: Direction
    day_ms: int
    hours: tuple[float, ...]
    total: float
    coverage: float

    @classmethod
    def build(
        cls,
        key: MeterKey,
        resource: str,
        direction: Direction,
        day_ms: int,
        hours: Sequence[float],
    ) -> DayRollup:
        if len(hours) != HOURS_PER_DAY:
            raise ValueError(f"a day rollup has {HOURS_PER_DAY} hours, got {len(hours)}")
        values = tuple(float(h) for h in hours)
        present = [h for h in values if not math.isnan(h)]
        return cls(
            key.park,
            key.tenant,
            key.meter,
            resource,
            direction,
            day_ms,
            values,
            math.fsum(present),
            len(present) / HOURS_PER_DAY,
        )

    @property
    def key(self) -> MeterKey:
        return MeterKey(self.park, self.tenant, self.meter)

    def same_as(self, other: DayRollup) -> bool:
        """Equality that treats NaN hours as equal (dataclass ``==`` does not)."""
        return (
            self.key == other.key
            and (self.resource, self.direction, self.day_ms)
            == (other.resource, other.direction, other.day_ms)
            and all(
                a == b or (math.isnan(a) and math.isnan(b))
                for a, b in zip(self.hours, other.hours, strict=True)
            )
            and self.total == other.total
            and self.coverage == other.coverage
        )


@dataclass(frozen=True, slots=True)
class MeterRange:
    """One meter's readings in ``[start_ms, end_ms)``, asked for with their neighbours."""

    key: MeterKey
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class RangeData:
    """What ``read_ranges`` returns per range: the points in it, sorted by time, and the
    last point before it and the first point at or after its end (``None`` if there is none)."""

    range: MeterRange
    before: Point | None
    points: tuple[Point, ...]
    after: Point | None


def rollup_frame(rows: Sequence[DayRollup]) -> pd.DataFrame:
    """``day_rollups``' frame from row objects (used by the stores that hold rows in memory)."""
    import numpy as np

    hours = np.array([r.hours for r in rows], dtype=np.float64).reshape(len(rows), HOURS_PER_DAY)
    return build_rollup_frame(
        park=[r.park for r in rows],
        tenant=[r.tenant for r in rows],
        meter=[r.meter for r in rows],
        resource=[r.resource for r in rows],
        direction=[str(r.direction) for r in rows],
        day=np.array([r.day_ms for r in rows], dtype=np.int64),
        total=np.array([r.total for r in rows], dtype=np.float64),
        coverage=np.array([r.coverage for r in rows], dtype=np.float64),
        hours=hours,
    )


def build_rollup_frame(
    *,
    park: object,
    tenant: object,
    meter: object,
    resource: object,
    direction: object,
    day: object,
    total: object,
    coverage: object,
    hours: object,
) -> pd.DataFrame:
    """The one place the ``day_rollups`` columns and dtypes are defined, sorted by key and day."""
    import numpy as np
    import pandas as pd

    matrix = np.asarray(hours, dtype=np.float64).reshape(-1, HOURS_PER_DAY)
    columns: dict[str, object] = {
        "park": np.asarray(park, dtype=object),
        "tenant": np.asarray(tenant, dtype=object),
        "meter": np.asarray(meter, dtype=object),
        "resource": np.asarray(resource, dtype=object),
        "direction": np.asarray(direction, dtype=object),
        "day": np.asarray(day, dtype=np.int64),
        "total": np.asarray(total, dtype=np.float64),
        "coverage": np.asarray(coverage, dtype=np.float64),
    }
    for i, name in enumerate(HOUR_COLUMNS):
        columns[name] = matrix[:, i]
    frame = pd.DataFrame(columns, columns=list(ROLLUP_COLUMNS))
    frame = frame.sort_values(["park", "tenant", "meter", "day"], kind="stable")
    return frame.reset_index(drop=True)


class Store(ABC):
    """Durable storage of readings and quarantined input, plus rollups and their bookkeeping.

    ``write`` returns only when everything in the batch is durable; it raises
    ``StoreUnavailable`` or ``StoreRejected`` otherwise. Writing the same reading
    again (same park, tenant, meter, ts_ms) replaces it: the store is idempotent. So are
    quarantine records: a rejection is identified by (message_id, index) and a message by its
    message_id, and reads return one of each however often they were written.

    Every ``write`` also records, with the same durability as the readings, a change marker
    per (meter, UTC hour) it wrote readings in, stamped with the store's clock at that write
    attempt. The rollup worker finds its work with ``changes_since``; because the markers are
    in the store, several ingestors can write and the worker can restart without losing any.
    """

    @abstractmethod
    def write(self, batch: WriteBatch) -> None: ...

    @abstractmethod
    def readings(self, query: ReadingQuery) -> list[Reading]:
        """Readings sorted by (park, tenant, meter, ts_ms)."""

    @abstractmethod
    def quarantined(
        self, reason: str | None = None, since_ms: int | None = None, limit: int = 1000
    ) -> list[Rejection]:
        """Most recent first, one per identity (message_id, index) however often written."""

    @abstractmethod
    def quarantined_messages(
        self, rejections: Sequence[Rejection]
    ) -> dict[str, QuarantinedMessage]:
        """The raw messages these rejections point to, by message_id (missing ones left out)."""

    @abstractmethod
    def quarantine_counts(self) -> dict[str, int]:
        """Quarantined records by reason, one per identity."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``StoreUnavailable`` when the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def write_many(self, batches: Sequence[WriteBatch]) -> None:
        for batch in batches:
            self.write(batch)

    # -- change markers ------------------------------------------------------------------------

    @abstractmethod
    def changes_since(self, after_ms: int, until_ms: int) -> list[tuple[MeterKey, int]]:
        """(meter, hour_ms) pairs whose marker was written in ``(after_ms, until_ms]``,
        sorted and without repeats."""

    @abstractmethod
    def prune_changes(self, before_ms: int) -> None:
        """Forget markers written before ``before_ms`` (the worker is past them)."""

    # -- reads for the rollup worker -----------------------------------------------------------

    @abstractmethod
    def neighbours(
        self, key: MeterKey, start_ms: int, end_ms: int
    ) -> tuple[Reading | None, Reading | None]:
        """The last reading strictly before ``start_ms`` and the first at or after ``end_ms``."""

    def read_ranges(self, ranges: Sequence[MeterRange]) -> list[RangeData]:
        """Points and neighbours of many ranges at once, in the order asked.

        This default asks range by range; stores with a per-request cost batch them.
        """
        out: list[RangeData] = []
        for rng in ranges:
            k = rng.key
            points = self.readings(
                ReadingQuery(k.park, k.tenant, k.meter, rng.start_ms, rng.end_ms)
            )
            before, after = self.neighbours(k, rng.start_ms, rng.end_ms)
            out.append(
                RangeData(
                    rng,
                    None if before is None else (before.ts_ms, before.value),
                    tuple(dedupe_points((r.ts_ms, r.value) for r in points)),
                    None if after is None else (after.ts_ms, after.value),
                )
            )
        return out

    # -- rollups -------------------------------------------------------------------------------

    @abstractmethod
    def write_rollups(self, rows: Sequence[DayRollup]) -> None:
        """Insert or replace rows by (park, tenant, meter, day_ms)."""

    @abstractmethod
    def get_rollups(self, wanted: Collection[tuple[MeterKey, int]]) -> list[DayRollup]:
        """The stored rows for these (meter, day_ms) pairs; missing ones are left out."""

    @abstractmethod
    def day_rollups(self, park: str | None, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Rows with ``start_ms <= day_ms < end_ms`` (of one park, or all), as a frame with
        ``ROLLUP_COLUMNS``: ids as strings, ``day`` int64 ms, the rest float64 with NaN for
        hours without data; sorted by park, tenant, meter, day."""

    # -- small named state ---------------------------------------------------------------------

    @abstractmethod
    def get_state(self, name: str) -> int | None:
        """An integer saved with ``set_state`` (``None`` if never set)."""

    @abstractmethod
    def set_state(self, name: str, value: int) -> None: ...


def dedupe_points(points: Iterable[Point]) -> list[Point]:
    """Sorted points, one per timestamp (the last wins), as the stores' identity says.

    InfluxDB may hold two points at one ts_ms when a meter's resource or direction changed."""
    by_ts: dict[int, float] = {}
    for ts, value in points:
        by_ts[ts] = value
    return sorted(by_ts.items())
