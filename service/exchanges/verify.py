"""Realised savings kept current: the day rollups of each exchange's meters read from the
store, the days computed (``savings.py``, pure), and only the days whose figures changed
written back, to the operational database (the API's) and to the time-series store as their
own measurement (the dashboards').

Recomputing is safe and cheap: a day depends on its rollups only, so the window is simply
recomputed and compared with what is stored. A late reading has already changed the rollups
of the days it touched (the rollup worker recomputes them), so exactly those days differ and
are rewritten; a reading written twice changes no rollup, hence no day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from parkflow.model import MeterKey
from parkflow.registry import Registry
from parkflow.store.ports import RollupRepository, SavingsLog
from parkflow.store.savings_rows import SavingsPoint
from parkflow.timeunits import DAY_MS
from service.exchanges.columns import SavingsColumns, concat, differing
from service.exchanges.model import Exchange
from service.exchanges.repository import ExchangeRepository
from service.exchanges.savings import DaySavings
from service.exchanges.valuation import days_columns
from service.rollups.compute import standard_offset_ms


def day_ms_of(day: date, offset_ms: int) -> int:
    """The UTC instant of ``day``'s local midnight, as the rollups key their days."""
    return (day - date(1970, 1, 1)).days * DAY_MS - offset_ms


def days_between(start: date, end: date) -> list[date]:
    """``start`` to ``end``, end exclusive."""
    return [start + timedelta(days=i) for i in range((end - start).days)]


def compute(
    rollups: RollupRepository,
    registry: Registry,
    exchanges: Sequence[Exchange],
    start: date,
    end: date,
) -> list[DaySavings]:
    """Every exchange's days in ``[start, end)`` it was active on, from the stored rollups."""
    return compute_columns(rollups, registry, exchanges, start, end).rows()


def compute_columns(
    rollups: RollupRepository,
    registry: Registry,
    exchanges: Sequence[Exchange],
    start: date,
    end: date,
) -> SavingsColumns:
    """``compute`` as columns: each park's meters read as one array over the period
    (``rollup_hours``), each exchange's active days (one run of days) valued at once."""
    n = (end - start).days
    if n <= 0:
        return concat([])
    keys: dict[str, dict[MeterKey, int]] = {}  # park -> meter -> row of its hours
    for ex in exchanges:
        if ex.park in registry.parks:
            at = keys.setdefault(ex.park, {})
            for name in (ex.metering.meter, ex.metering.check_meter):
                if name:
                    at.setdefault(_key(registry, ex.park, name), len(at))
    hours = {
        park: rollups.rollup_hours(
            list(at), day_ms_of(start, standard_offset_ms(registry.parks[park].timezone)), n
        )
        for park, at in keys.items()
    }
    first_day = np.datetime64(start, "D")
    parts: list[SavingsColumns] = []
    for ex in exchanges:
        if ex.park not in hours:
            continue
        lo = max(start, ex.start)
        hi = end if ex.end is None else min(end, ex.end + timedelta(days=1))
        if lo >= hi:
            continue
        a, b = (lo - start).days, (hi - start).days
        at, cube = keys[ex.park], hours[ex.park]
        m = ex.metering
        meter = cube[at[_key(registry, ex.park, m.meter)], a:b]
        check = cube[at[_key(registry, ex.park, m.check_meter)], a:b] if m.check_meter else None
        days = first_day + np.arange(a, b)
        parts.append(days_columns(ex, days, meter, check))
    return concat(parts)


def _key(registry: Registry, park: str, meter: str) -> MeterKey:
    tenant = registry.owner_of(park, meter)
    if tenant is None:
        # not an error of the data: the registry lost a meter an exchange is metered by
        return MeterKey(park, "", meter)
    return MeterKey(park, tenant, meter)


@dataclass(frozen=True, slots=True)
class Refreshed:
    computed: int  # days computed
    changed_columns: SavingsColumns  # days whose figures differ from what was stored

    @property
    def changed(self) -> list[DaySavings]:
        """Those days as rows (made when asked: a first verification's year kept as a row
        object per day was 365,000 objects for the collector to walk in every later pass)."""
        return self.changed_columns.rows()


# days recomputed, compared and written at a time: a year of a large park is read and held a
# quarter at a time, so memory is bounded by the window, not by the period asked for. As
# columns a quarter of 1,000 exchanges is tens of MB (the first write, every day a row to
# write, the most); a month's windows tripled the valuation's calls, one per exchange each
WINDOW_DAYS = 92
WRITE_ROWS = 20_000


def refresh(
    repo: ExchangeRepository,
    rollups: RollupRepository,
    sink: SavingsLog | None,
    registry: Registry,
    start: date,
    end: date,
    *,
    park: str | None = None,
    now_ms: int | None = None,
) -> Refreshed:
    """Recompute ``[start, end)`` for the metered exchanges and write the days that changed,
    a window of ``WINDOW_DAYS`` at a time, at most ``WRITE_ROWS`` days a write (what is
    written stays written: recomputing is idempotent)."""
    exchanges = repo.metered(park)
    offsets = {
        ex.park: standard_offset_ms(registry.parks[ex.park].timezone)
        for ex in exchanges
        if ex.park in registry.parks
    }
    computed = 0
    changed: list[SavingsColumns] = []
    lo = start
    while lo < end:
        hi = min(end, lo + timedelta(days=WINDOW_DAYS))
        fresh = compute_columns(rollups, registry, exchanges, lo, hi)
        stored = repo.savings_columns(park=park, start=lo, end=hi)
        differ = np.flatnonzero(differing(fresh, stored))
        del stored
        # written a slice at a time: a first verification rewrites every day of the window,
        # and each row's statement parameters and point are only needed while it is written
        for first in range(0, len(differ), WRITE_ROWS):
            rows = fresh.rows(differ[first : first + WRITE_ROWS])
            repo.write_savings(rows, now_ms)
            if sink is not None:
                sink.write_savings([point(r, offsets[r.park]) for r in rows])
        changed.append(fresh.take(differ))
        computed += len(fresh)
        lo = hi
    return Refreshed(computed, concat(changed))


def point(r: DaySavings, offset_ms: int) -> SavingsPoint:
    """A day as the time-series store keeps it: at the day's local midnight."""
    return SavingsPoint(
        park=r.park,
        exchange=r.exchange,
        day_ms=day_ms_of(r.day, offset_ms),
        quantity=r.quantity,
        coverage=r.coverage,
        supplier_vnd=r.supplier_vnd,
        receiver_vnd=r.receiver_vnd,
        park_vnd=r.park_vnd,
        water_m3=r.water_m3,
        co2e_t=r.co2e_t,
        landfill_t=r.landfill_t,
        disagrees=r.disagrees,
    )
