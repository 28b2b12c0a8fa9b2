"""The rollup worker: turns change markers into corrected day rows, then moves its watermark.

Each ``run_once`` reads the markers written in ``(watermark - margin, now - margin]``. The
margin covers writes still in flight when their marker was stamped and small clock skew
between ingestor hosts; markers seen twice only cost a recomputation, which is idempotent.

Only the hours that can have changed are recomputed, not whole days: a live cycle over
thousands of meters then reads about three hours of readings per meter instead of a whole
day's. For every run of changed hours ``[a, b)`` the worker reads ``[a - 1h, b + 1h)`` with
the neighbour on each side and recomputes those hours (an interval touching a changed reading
ends at its neighbour, which for meters reporting at least hourly lies within that hour of
padding). When the neighbour lies further out (a sparse meter, a gap), the interval reaching
it spreads over more hours, possibly several days; a second read recomputes exactly those. The
new hours are merged into the stored day rows.

The merge reads and rewrites rows, so run one worker per store; a second one running at the
same time could put back an hour the first had just corrected.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from parkflow.errors import StoreError, StoreRejected
from parkflow.model import Direction, MeterKey
from parkflow.registry.registry import Registry
from parkflow.store.ports import (
    ChangeLog,
    Checkpoints,
    MeterRange,
    RangeData,
    ReadingLog,
    RollupRepository,
)
from parkflow.store.rollup_rows import DayRollup
from parkflow.timeunits import DAY_MS, HOUR_MS
from service.rollups.compute import (
    MeterMaths,
    hour_quantities,
    local_day,
    local_hour,
    merge_day,
    standard_offset_ms,
)

log = logging.getLogger("parkflow.rollups")

WATERMARK = "rollups.watermark"
_BEGINNING = -(2**62)  # before any marker: a first run takes everything there is
NAN = math.nan


class RollupStore(ChangeLog, ReadingLog, RollupRepository, Checkpoints, Protocol):
    """What the worker needs of a store: the markers, the readings, the rows, its watermark."""


@dataclass
class RunStats:
    """What one ``run_once`` or ``rebuild`` did."""

    changes: int = 0  # (meter, hour) markers read
    meters: int = 0  # registry meters with work
    unknown_meters: int = 0  # meters with markers but not in the registry (skipped)
    ranges: int = 0  # hour ranges recomputed, extensions included
    extensions: int = 0  # of which reach beyond the padded range (sparse data, gaps)
    points: int = 0  # readings read
    rows_written: int = 0
    rows_changed: int = 0  # of which differ from the stored row (or are new)
    watermark: int | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class _Meter:
    key: MeterKey
    resource: str
    direction: Direction
    maths: MeterMaths
    offset_ms: int


@dataclass(frozen=True, slots=True)
class _Work:
    """Recompute local hours ``[start_ms, end_ms)``; ``dirty`` is the changed part of it."""

    meter: _Meter
    start_ms: int
    end_ms: int
    dirty_start: int
    dirty_end: int


class RollupWorker:
    """Keeps the store's day rollups equal to a from-scratch computation over its readings.

    ``batch_meters`` ranges are read per store request batch (InfluxDB gets a few
    multi-statement requests per batch); ranges longer than ``max_range_ms`` are split so that
    a big import never loads more than that per meter at once.
    """

    def __init__(
        self,
        store: RollupStore,
        registry: Registry,
        margin_ms: int = 30_000,
        *,
        batch_meters: int = 500,
        max_range_ms: int = DAY_MS,
        keep_changes_ms: int = DAY_MS,
        prune_every_ms: int = HOUR_MS,
    ) -> None:
        if margin_ms < 0 or batch_meters < 1 or max_range_ms < HOUR_MS:
            raise ValueError("margin_ms >= 0, batch_meters >= 1 and max_range_ms >= 1 h")
        self.store = store
        self.registry = registry
        self.margin_ms = margin_ms
        self.batch_meters = batch_meters
        self.max_range_ms = max_range_ms - max_range_ms % HOUR_MS
        self.keep_changes_ms = keep_changes_ms
        self.prune_every_ms = prune_every_ms
        self._meters: dict[MeterKey, _Meter] = {}
        for rm in registry.meters():
            m = rm.meter
            self._meters[rm.key] = _Meter(
                rm.key,
                m.resource,
                m.direction,
                MeterMaths.of(m),
                standard_offset_ms(rm.park.timezone),
            )
        self._pruned_at: int | None = None

    # -- the live cycle ------------------------------------------------------------------------

    def run_once(self, now_ms: int) -> RunStats:
        started = time.perf_counter()
        stats = RunStats()
        watermark = self.store.get_checkpoint(WATERMARK)
        until = now_ms - self.margin_ms
        after = _BEGINNING if watermark is None else watermark - self.margin_ms
        stats.watermark = watermark
        if until <= after:
            return stats
        changes = self.store.changes_since(after, until)
        stats.changes = len(changes)
        dirty: dict[MeterKey, set[int]] = {}
        unknown: set[MeterKey] = set()
        for key, hour in changes:
            if key in self._meters:
                dirty.setdefault(key, set()).add(hour)
            else:
                unknown.add(key)
        if unknown:
            stats.unknown_meters = len(unknown)
            names = sorted(f"{k.park}/{k.tenant}/{k.meter}" for k in unknown)
            log.warning(
                "skipping changes of %d meter(s) not in the registry: %s",
                len(names),
                ", ".join(names[:5]) + (", ..." if len(names) > 5 else ""),
            )
        stats.meters = len(dirty)
        work = [w for key in sorted(dirty, key=_order) for w in self._dirty_work(key, dirty[key])]
        self._process(work, stats, expand=True)
        if watermark is None or until > watermark:
            self.store.set_checkpoint(WATERMARK, until)
            stats.watermark = until
        self._prune(until)
        stats.seconds = time.perf_counter() - started
        log.info(
            "rollup cycle done",
            extra={
                "changes": stats.changes,
                "meters": stats.meters,
                "ranges": stats.ranges,
                "rows": stats.rows_written,
                "seconds": round(stats.seconds, 3),
            },
        )
        return stats

    def _dirty_work(self, key: MeterKey, hours: Iterable[int]) -> Iterator[_Work]:
        """Changed UTC hours -> runs of local hours, padded by an hour, split if long."""
        meter = self._meters[key]
        off = meter.offset_ms
        local = sorted(
            {local_hour(h, off) for h in hours} | {local_hour(h + HOUR_MS - 1, off) for h in hours}
        )
        runs: list[list[int]] = []
        for h in local:
            # Runs closer than the padding would overlap once padded: make them one.
            if runs and h <= runs[-1][1] + 2 * HOUR_MS:
                runs[-1][1] = h + HOUR_MS
            else:
                runs.append([h, h + HOUR_MS])
        for a, b in runs:
            for lo in range(a, b, self.max_range_ms):
                hi = min(b, lo + self.max_range_ms)
                yield _Work(meter, lo - HOUR_MS, hi + HOUR_MS, lo, hi)

    # -- rebuilding ----------------------------------------------------------------------------

    def rebuild(self, start_ms: int, end_ms: int) -> RunStats:
        """Recompute every registry meter's local days overlapping ``[start_ms, end_ms)``.

        For a registry change (a meter's kind, rollover or gap changed) or data that has no
        change markers (written before markers existed). Days that lose all their data keep a
        row with every hour NaN. Change markers and the watermark are left alone.
        """
        started = time.perf_counter()
        stats = RunStats()
        meters = sorted(self._meters.values(), key=lambda m: _order(m.key))
        stats.meters = len(meters)
        by_offset: dict[int, list[_Meter]] = {}
        for m in meters:
            by_offset.setdefault(m.offset_ms, []).append(m)
        for off, group in by_offset.items():
            first = local_day(start_ms, off)
            last = local_day(end_ms - 1, off) + DAY_MS
            for lo in range(first, last, self.max_range_ms):
                hi = min(last, lo + self.max_range_ms)
                work = [_Work(m, lo, hi, lo, hi) for m in group]
                self._process(work, stats, expand=False, rewrite=True)
        stats.seconds = time.perf_counter() - started
        return stats

    # -- shared machinery ----------------------------------------------------------------------

    def _process(
        self, work: Sequence[_Work], stats: RunStats, *, expand: bool, rewrite: bool = False
    ) -> None:
        for first in range(0, len(work), self.batch_meters):
            batch = work[first : first + self.batch_meters]
            results = self._compute(batch, stats)
            if expand:
                extra = [e for w, data in results for e in self._extensions(w, data[0])]
                stats.extensions += len(extra)
                results += self._compute(extra, stats)
            self._merge([(w, q) for w, (_, q) in results], stats, rewrite=rewrite)

    def _compute(
        self, work: Sequence[_Work], stats: RunStats
    ) -> list[tuple[_Work, tuple[RangeData, dict[int, float]]]]:
        if not work:
            return []
        datas = self.store.read_ranges(
            [MeterRange(w.meter.key, w.start_ms, w.end_ms) for w in work]
        )
        stats.ranges += len(work)
        out = []
        for w, data in zip(work, datas, strict=True):
            stats.points += len(data.points)
            m = w.meter
            q = hour_quantities(
                m.maths, data.before, data.points, data.after, w.start_ms, w.end_ms, m.offset_ms
            )
            out.append((w, (data, q)))
        return out

    def _extensions(self, w: _Work, data: RangeData) -> Iterator[_Work]:
        """Hours beyond the padded range whose intervals end at a changed reading.

        If no reading lies in the padding before the changed hours, the interval from the
        ``before`` neighbour to the first reading after it may have changed, and it covers
        every hour from the neighbour's on; likewise after the changed hours.
        """
        m = w.meter
        off = m.offset_ms
        pts = data.points
        if data.before is not None and (not pts or pts[0][0] >= w.dirty_start):
            nxt = pts[0] if pts else data.after
            if nxt is not None and m.maths.joins(data.before[0], nxt[0]):
                yield from self._split(m, local_hour(data.before[0], off), w.start_ms)
        if data.after is not None and (not pts or pts[-1][0] < w.dirty_end):
            prv = pts[-1] if pts else data.before
            if prv is not None and m.maths.joins(prv[0], data.after[0]):
                # An interval is closed at its end: a reading on an hour boundary ends the
                # hour before it.
                yield from self._split(m, w.end_ms, local_hour(data.after[0] - 1, off) + HOUR_MS)

    def _split(self, meter: _Meter, start: int, end: int) -> Iterator[_Work]:
        for lo in range(start, end, self.max_range_ms):
            hi = min(end, lo + self.max_range_ms)
            yield _Work(meter, lo, hi, lo, hi)

    def _merge(
        self,
        results: Sequence[tuple[_Work, dict[int, float]]],
        stats: RunStats,
        *,
        rewrite: bool = False,
    ) -> None:
        """Put recomputed hours into the stored day rows and write the rows that changed, or
        every row when ``rewrite``: a rebuild also fills what a store derives from the rows
        it is given (the plain points InfluxDB keeps beside the packed rows)."""
        updates: dict[tuple[MeterKey, int], tuple[_Meter, dict[int, float]]] = {}
        for w, quantities in results:
            m = w.meter
            for hour in range(w.start_ms, w.end_ms, HOUR_MS):
                day = local_day(hour, m.offset_ms)
                slot = updates.setdefault((m.key, day), (m, {}))[1]
                slot[(hour - day) // HOUR_MS] = quantities.get(hour, NAN)
        if not updates:
            return
        existing = {(r.key, r.day_ms): r for r in self.store.get_rollups(list(updates))}
        rows: list[DayRollup] = []
        for (key, day), (m, hours) in updates.items():
            old = existing.get((key, day))
            row = merge_day(old, key, m.resource, m.direction, day, hours)
            if row is None:
                continue
            changed = old is None or not row.same_as(old)
            stats.rows_changed += changed
            if rewrite or changed:
                rows.append(row)
        if rows:
            try:
                self.store.write_rollups(rows)
            except StoreRejected:
                rows = self._write_one_by_one(rows)
        stats.rows_written += len(rows)

    def _write_one_by_one(self, rows: Sequence[DayRollup]) -> list[DayRollup]:
        """One meter-day the store refuses must not stop the rollups of the whole park."""
        written = []
        for row in rows:
            try:
                self.store.write_rollups([row])
            except StoreRejected as exc:
                log.error(
                    "store refused a day rollup; skipping it",
                    extra={
                        "meter": f"{row.park}/{row.tenant}/{row.meter}",
                        "day_ms": row.day_ms,
                        "error": str(exc)[:300],
                    },
                )
            else:
                written.append(row)
        return written

    def _prune(self, until: int) -> None:
        """Drop markers well behind the watermark, at most every ``prune_every_ms``."""
        if self._pruned_at is not None and until - self._pruned_at < self.prune_every_ms:
            return
        try:
            self.store.prune_changes(until - self.margin_ms - self.keep_changes_ms)
            self._pruned_at = until
        except StoreError:
            log.exception("pruning change markers failed; will try again")


def _order(key: MeterKey) -> tuple[str, str, str]:
    return (key.park, key.tenant, key.meter)
