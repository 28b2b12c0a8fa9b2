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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from parkflow.model import MeterKey
from parkflow.registry import Registry
from parkflow.store.ports import RollupRepository, SavingsLog
from parkflow.store.savings_rows import SavingsPoint
from parkflow.timeunits import DAY_MS, HOURS_PER_DAY
from service.exchanges.model import Exchange
from service.exchanges.repository import ExchangeRepository
from service.exchanges.savings import DaySavings
from service.exchanges.valuation import days_savings
from service.rollups.compute import standard_offset_ms

_NO_DATA = (math.nan,) * HOURS_PER_DAY


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
    wanted: dict[tuple[MeterKey, int], None] = {}
    plans: list[tuple[Exchange, date, tuple[MeterKey, int], tuple[MeterKey, int] | None]] = []
    for ex in exchanges:
        park = registry.parks.get(ex.park)
        if park is None:
            continue
        offset = standard_offset_ms(park.timezone)
        m = ex.metering
        valued = _key(registry, ex.park, m.meter)
        check = _key(registry, ex.park, m.check_meter) if m.check_meter else None
        for day in days_between(max(start, ex.start), end):
            if not ex.active(day):
                continue
            d_ms = day_ms_of(day, offset)
            v = (valued, d_ms)
            c = None if check is None else (check, d_ms)
            wanted[v] = None
            if c is not None:
                wanted[c] = None
            plans.append((ex, day, v, c))
    # keyed by plain tuples: a MeterKey made and hashed per row was a tenth of the pass
    rows = {
        (r.park, r.tenant, r.meter, r.day_ms): r.hours for r in rollups.get_rollups(list(wanted))
    }

    def hours_of(at: tuple[MeterKey, int] | None) -> tuple[float, ...]:
        if at is None:
            return _NO_DATA
        k, d = at
        return rows.get((k.park, k.tenant, k.meter, d), _NO_DATA)

    out: list[DaySavings] = []
    # each exchange's days valued at once (``valuation``: the same dong as ``day_savings``)
    by_exchange: dict[int, list[tuple[date, tuple[MeterKey, int], tuple[MeterKey, int] | None]]]
    by_exchange = {}
    exchange_of: dict[int, Exchange] = {}
    for ex, day, v, c in plans:
        by_exchange.setdefault(id(ex), []).append((day, v, c))
        exchange_of[id(ex)] = ex
    for key, items in by_exchange.items():
        ex = exchange_of[key]
        meter = np.array([hours_of(v) for _, v, _ in items], dtype=float)
        check_rows = None
        if ex.metering.check_meter:
            check_rows = np.array([hours_of(c) for _, _, c in items], dtype=float)
        out += days_savings(ex, [d for d, _, _ in items], meter, check_rows)
    return out


def _key(registry: Registry, park: str, meter: str) -> MeterKey:
    tenant = registry.owner_of(park, meter)
    if tenant is None:
        # not an error of the data: the registry lost a meter an exchange is metered by
        return MeterKey(park, "", meter)
    return MeterKey(park, tenant, meter)


@dataclass(frozen=True, slots=True)
class Refreshed:
    computed: int  # days computed
    changed: list[DaySavings]  # days whose figures differ from what was stored


# days recomputed, compared and written at a time: a year of a large park is read and held a
# month at a time, so memory is bounded by the window, not by the period asked for
WINDOW_DAYS = 31


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
    a window of ``WINDOW_DAYS`` at a time (a window written stays written: recomputing is
    idempotent)."""
    exchanges = repo.metered(park)
    offsets = {
        ex.park: standard_offset_ms(registry.parks[ex.park].timezone)
        for ex in exchanges
        if ex.park in registry.parks
    }
    computed = 0
    changed: list[DaySavings] = []
    lo = start
    while lo < end:
        hi = min(end, lo + timedelta(days=WINDOW_DAYS))
        fresh = compute(rollups, registry, exchanges, lo, hi)
        stored = {(r.exchange, r.day): r for r in repo.savings(park=park, start=lo, end=hi)}
        differ = [r for r in fresh if stored.get((r.exchange, r.day)) != r]
        del stored
        repo.write_savings(differ, now_ms)
        if sink is not None and differ:
            sink.write_savings([point(r, offsets[r.park]) for r in differ])
        computed += len(fresh)
        changed += differ
        lo = hi
    return Refreshed(computed, changed)


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
