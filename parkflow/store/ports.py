"""The store's ports: narrow interfaces, each what one kind of caller needs.

The ingestor needs a ``ReadingSink`` (and ``Checkpoints`` for its session and layout marks),
the rollup worker a ``ChangeLog``, ``ReadingLog`` reads, a ``RollupRepository`` and
``Checkpoints``, detection only the ``RollupRepository``, the operator's views the
``QuarantineLog``, realised savings the ``SavingsLog``. A backend (SQLite, InfluxDB, memory) implements them all, and one contract
suite (tests) holds every backend to the same behaviour; callers depend on the port they use,
so a fake for a unit test is one small class.

Besides readings and quarantine, every store keeps what the rollup worker needs so that
nothing lives in process memory: *change markers* written in the same write as the readings
(which meter-hours changed, and when), day *rollups*, and a few named *checkpoints* (the
worker's watermark, an ingestor's session and subscription layout).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from parkflow.model import (
    MeterKey,
    Point,
    QuarantinedMessage,
    Reading,
    Rejection,
    WriteBatch,
    dedupe_points,
)
from parkflow.store.rollup_rows import DayRollup
from parkflow.store.savings_rows import SavingsPoint
from parkflow.timeunits import HOUR_MS, now_ms

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Clock = Callable[[], int]
wall_clock_ms = now_ms  # the default clock for change markers: several hosts compare it


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


class ReadingSink(Protocol):
    """Where the ingestor writes: ``write`` returns only when everything in the batch is
    durable, else raises ``StoreUnavailable`` (try again) or ``StoreRejected`` (the data
    itself is refused). Writing the same reading again (same park, tenant, meter, ts_ms)
    replaces it: writes are idempotent. So are quarantine records: a rejection is identified by
    (message_id, index) and a message by its message_id.

    Every ``write`` also records, with the same durability as the readings, a change marker per
    (meter, UTC hour) it wrote readings in, stamped with the store's clock at that attempt; the
    rollup worker finds its work there, so several ingestors can write and the worker can
    restart without losing any."""

    def write(self, batch: WriteBatch) -> None: ...

    def ping(self) -> None:
        """Raise ``StoreUnavailable`` when the store cannot be reached."""


class ReadingLog(Protocol):
    """Stored readings read back."""

    def readings(self, query: ReadingQuery) -> list[Reading]:
        """Readings sorted by (park, tenant, meter, ts_ms)."""

    def neighbours(
        self, key: MeterKey, start_ms: int, end_ms: int
    ) -> tuple[Reading | None, Reading | None]:
        """The last reading strictly before ``start_ms`` and the first at or after ``end_ms``."""

    def read_ranges(self, ranges: Sequence[MeterRange]) -> list[RangeData]:
        """Points and neighbours of many ranges at once, in the order asked."""


class QuarantineLog(Protocol):
    """What was not stored as a reading, and why."""

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
        """Most recent first, one per identity (message_id, index) however often written.

        ``None`` means no restriction; received in ``[since_ms, until_ms)``. The ids filter on
        what a record was attributed to: a message that named no registered meter (unknown
        park, tenant or meter, a bad topic) has none and matches only without them, so that a
        tenant's view never shows what someone else's gateway sent on its name."""

    def quarantined_messages(
        self, rejections: Sequence[Rejection]
    ) -> dict[str, QuarantinedMessage]:
        """The raw messages these rejections point to, by message_id (missing ones left out)."""

    def quarantine_counts(self) -> dict[str, int]:
        """Quarantined records by reason, one per identity."""


class ChangeLog(Protocol):
    """The change markers writes leave."""

    def changes_since(self, after_ms: int, until_ms: int) -> list[tuple[MeterKey, int]]:
        """(meter, hour_ms) pairs whose marker was written in ``(after_ms, until_ms]``,
        sorted and without repeats."""

    def prune_changes(self, before_ms: int) -> None:
        """Forget markers written before ``before_ms`` (the worker is past them)."""


class RollupRepository(Protocol):
    """Day rollups, by (meter, local day)."""

    def write_rollups(self, rows: Sequence[DayRollup]) -> None:
        """Insert or replace rows by (park, tenant, meter, day_ms)."""

    def get_rollups(self, wanted: Collection[tuple[MeterKey, int]]) -> list[DayRollup]:
        """The stored rows for these (meter, day_ms) pairs; missing ones are left out."""

    def day_rollups(self, park: str | None, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Rows with ``start_ms <= day_ms < end_ms`` (of one park, or all), as a frame with
        ``ROLLUP_COLUMNS``: ids as strings, ``day`` int64 ms, the rest float64 with NaN for
        hours without data; sorted by park, tenant, meter, day."""

    def rollup_hours(self, keys: Sequence[MeterKey], start_ms: int, days: int) -> np.ndarray:
        """The hours of these meters over ``days`` consecutive days from ``start_ms`` (a local
        midnight), as one float64 array ``(len(keys), days, 24)``: what ``get_rollups`` gives
        for each (meter, ``start_ms + d * DAY_MS``), NaN where it gives no row or the hour has
        no data. Columnar, for the readers of many meter-days (realised savings): no row
        object per meter-day."""


class SavingsLog(Protocol):
    """Exchanges' realised savings per day, their own measurement next to the readings."""

    def write_savings(self, points: Sequence[SavingsPoint]) -> None:
        """Insert or replace points by (park, exchange, day_ms): a day recomputed is one point."""

    def savings_points(self, park: str | None, start_ms: int, end_ms: int) -> list[SavingsPoint]:
        """Points with ``start_ms <= day_ms < end_ms`` (of one park, or all), sorted by park,
        exchange, day."""


class Checkpoints(Protocol):
    """A few named integers that must outlive a process (the newest write wins)."""

    def get_checkpoint(self, name: str) -> int | None:
        """The value saved with ``set_checkpoint`` (``None`` if never set)."""

    def set_checkpoint(self, name: str, value: int) -> None: ...


class Store(
    ReadingSink,
    ReadingLog,
    QuarantineLog,
    ChangeLog,
    RollupRepository,
    SavingsLog,
    Checkpoints,
    Protocol,
):
    """Everything a backend provides: what the composition roots open and close."""

    def close(self) -> None:
        """Release connections."""


def read_ranges_one_by_one(log: ReadingLog, ranges: Sequence[MeterRange]) -> list[RangeData]:
    """``read_ranges`` for a store without a per-request cost: range by range."""
    out: list[RangeData] = []
    for rng in ranges:
        k = rng.key
        points = log.readings(ReadingQuery(k.park, k.tenant, k.meter, rng.start_ms, rng.end_ms))
        before, after = log.neighbours(k, rng.start_ms, rng.end_ms)
        out.append(
            RangeData(
                rng,
                None if before is None else (before.ts_ms, before.value),
                tuple(dedupe_points((r.ts_ms, r.value) for r in points)),
                None if after is None else (after.ts_ms, after.value),
            )
        )
    return out
