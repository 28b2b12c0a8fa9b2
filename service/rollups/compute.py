"""Pure rollup maths: one meter's readings -> quantity per park-local hour -> day rows.

Local days use the park timezone's *standard* offset, ignoring daylight saving time: every day
is then 24 hours, a day row is a fixed 24-slot vector and an hour maps to its day by plain
arithmetic. Vietnamese parks (Asia/Ho_Chi_Minh, +07:00) observe no DST, so nothing is lost
there; a park in a DST zone would see its "local" days shifted by the DST hour in summer.
Offsets that are not whole hours (+05:30) work too: hours are aligned to local time.

An hour's quantity depends only on the intervals that overlap it, which are fixed by the
readings inside the hour and the nearest reading on each side. So a range of hours computed
from its readings plus the neighbour before and after equals the same hours computed from the
whole series, bit for bit: the same intervals are summed in the same order. That is what lets
the worker recompute only what changed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from parkflow.model import Direction, MeterKey, MeterKind, Point
from parkflow.registry.schema import Meter
from parkflow.store.rollup_rows import DayRollup
from parkflow.timeunits import DAY_MS, HOUR_MS, HOURS_PER_DAY
from service.rollups.counters import Interval, Replacement, bucketize, intervals

NAN = math.nan


@dataclass(frozen=True, slots=True)
class MeterMaths:
    """How one meter's readings turn into quantities (the registry fields that matter)."""

    kind: MeterKind
    rollover: float | None = None
    integration: str = "trapezoid"
    max_gap_ms: int = HOUR_MS
    replacements: tuple[Replacement, ...] = ()

    @classmethod
    def of(cls, meter: Meter) -> MeterMaths:
        # Stored readings are in the canonical unit; the registry gives the modulus and the
        # replaced registers' readings in the meter's own (a litre register wrapping at 1e8 L
        # wraps at 1e5 m3 as stored).
        scale = meter.to_canonical
        rollover = None if meter.rollover is None else meter.rollover * scale
        replacements = tuple(
            Replacement(
                round(r.at.timestamp() * 1000),
                r.initial_reading * scale,
                None if r.final_reading is None else r.final_reading * scale,
            )
            for r in meter.replaced or ()
        )
        return cls(
            meter.kind,
            rollover,
            meter.integration_rule,
            round(meter.max_gap_s * 1000),
            replacements,
        )

    def intervals(self, points: Iterable[Point]) -> list[Interval]:
        return intervals(
            self.kind,
            points,
            rollover=self.rollover,
            integration=self.integration,
            max_gap_ms=self.max_gap_ms,
            replacements=self.replacements,
        )

    def joins(self, t0: int, t1: int) -> bool:
        """Whether consecutive readings at t0 < t1 make an interval (rate meters skip gaps)."""
        return self.kind is not MeterKind.RATE or t1 - t0 <= self.max_gap_ms


@functools.lru_cache(maxsize=256)
def standard_offset_ms(timezone: str) -> int:
    """The zone's UTC offset without DST, as of 2024 (zones' history is not wanted here)."""
    zone = ZoneInfo(timezone)
    ref = datetime(2024, 1, 15, 12, tzinfo=zone)
    offset, dst = ref.utcoffset(), ref.dst()
    assert offset is not None and dst is not None
    return int((offset - dst).total_seconds() * 1000)


def local_day(ts_ms: int, offset_ms: int) -> int:
    """UTC ms of the local (standard time) midnight starting the day that holds ``ts_ms``."""
    local = ts_ms + offset_ms
    return local - local % DAY_MS - offset_ms


def local_hour(ts_ms: int, offset_ms: int) -> int:
    """UTC ms of the start of the local hour that holds ``ts_ms``."""
    local = ts_ms + offset_ms
    return local - local % HOUR_MS - offset_ms


def hour_quantities(
    maths: MeterMaths,
    before: Point | None,
    points: Sequence[Point],
    after: Point | None,
    start_ms: int,
    end_ms: int,
    offset_ms: int,
) -> dict[int, float]:
    """Quantity per local hour in ``[start_ms, end_ms)`` (keys: hour start, UTC ms).

    ``points`` are the readings in the range (sorted), ``before``/``after`` the neighbours
    just outside it. An hour that no interval overlaps is absent: no data, not zero.
    """
    series: list[Point] = [before] if before is not None else []
    series.extend(points)
    if after is not None:
        series.append(after)
    # Shift to local time so that buckets start on local hours, then shift back.
    shifted = [
        Interval(iv.start_ms + offset_ms, iv.end_ms + offset_ms, iv.quantity)
        for iv in maths.intervals(series)
    ]
    out: dict[int, float] = {}
    for bucket, quantity in bucketize(shifted, HOUR_MS).items():
        hour = bucket - offset_ms
        if start_ms <= hour < end_ms:
            out[hour] = quantity
    return out


def day_rows(
    key: MeterKey,
    resource: str,
    direction: Direction,
    hours: Mapping[int, float],
    offset_ms: int,
) -> list[DayRollup]:
    """Day rows for every local day that has an hour with data, sorted by day."""
    days: dict[int, list[float]] = {}
    for hour, quantity in hours.items():
        day = local_day(hour, offset_ms)
        days.setdefault(day, [NAN] * HOURS_PER_DAY)[(hour - day) // HOUR_MS] = quantity
    return [
        DayRollup.build(key, resource, direction, day, values)
        for day, values in sorted(days.items())
    ]


def rollups_for_range(
    maths: MeterMaths,
    key: MeterKey,
    resource: str,
    direction: Direction,
    before: Point | None,
    points: Sequence[Point],
    after: Point | None,
    start_day_ms: int,
    end_day_ms: int,
    offset_ms: int,
) -> list[DayRollup]:
    """The day rows of ``[start_day_ms, end_day_ms)`` (local midnights) from the readings in
    that range and the neighbour on each side; days without any data get no row."""
    hours = hour_quantities(maths, before, points, after, start_day_ms, end_day_ms, offset_ms)
    return day_rows(key, resource, direction, hours, offset_ms)


def from_scratch(
    maths: MeterMaths,
    key: MeterKey,
    resource: str,
    direction: Direction,
    points: Sequence[Point],
    offset_ms: int,
) -> list[DayRollup]:
    """Every day row of a meter's complete series: the reference the worker must match."""
    if not points:
        return []
    series = sorted(dict(points).items())
    # A day early: a first delta reading at local midnight counts in the previous hour.
    start = local_day(series[0][0], offset_ms) - DAY_MS
    end = local_day(series[-1][0], offset_ms) + DAY_MS
    return rollups_for_range(
        maths, key, resource, direction, None, series, None, start, end, offset_ms
    )


def merge_day(
    existing: DayRollup | None,
    key: MeterKey,
    resource: str,
    direction: Direction,
    day_ms: int,
    computed: Mapping[int, float],
) -> DayRollup | None:
    """A stored day row with some hours (index -> quantity, NaN = no data) recomputed.

    ``None`` when there is no row yet and the recomputed hours hold no data either, so that
    rows exist only for days that have data.
    """
    values = list(existing.hours) if existing is not None else [NAN] * HOURS_PER_DAY
    for index, quantity in computed.items():
        values[index] = quantity
    if existing is None and all(math.isnan(v) for v in values):
        return None
    return DayRollup.build(key, resource, direction, day_ms, values)


def quantity_between(
    maths: MeterMaths,
    before: Point | None,
    points: Sequence[Point],
    after: Point | None,
    start_ms: int,
    end_ms: int,
) -> float | None:
    """The quantity that flowed in ``[start_ms, end_ms)``, by the rollups' rule: each interval
    between readings counts in proportion to the time it overlaps the window (an
    instantaneous one, a first delta reading, where its time falls). ``None``: no interval
    overlaps the window, no data (not zero)."""
    series: list[Point] = [before] if before is not None else []
    series.extend(points)
    if after is not None:
        series.append(after)
    total: float | None = None
    for iv in maths.intervals(series):
        if iv.end_ms <= iv.start_ms:
            share = 1.0 if start_ms <= iv.end_ms < end_ms else 0.0
        else:
            overlap = min(iv.end_ms, end_ms) - max(iv.start_ms, start_ms)
            share = overlap / (iv.end_ms - iv.start_ms) if overlap > 0 else 0.0
        if share > 0:
            total = (total or 0.0) + iv.quantity * share
    return total
