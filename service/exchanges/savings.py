"""Realised savings of an exchange, measured and verified as IPMVP Option B (retrofit
isolation: every parameter measured at the exchange's boundary).

Savings = adjusted baseline - reporting-period cost. The baseline is what each party would
have paid without the exchange for the quantity metered that hour (the receiver buying it at
its displaced price, the supplier disposing of it), the reporting-period cost what it pays
with the exchange (the transfer price, transport, treatment). Per party and once for the park:
the park's line is the baseline less the costs, in which the transfer price cancels, computed
on its own so that nobody's gain is counted twice; the parties' booked dong are its shares
(largest remainder), so they add up to it to the dong.

Pure and per day: a day's row depends on that day's 24 hourly quantities (the day rollups)
and the prices in force that day only, so a late reading recomputes exactly the days its
rollups touched, and a reading written twice gives the same row. Hours without data are a
gap: reported with the day's coverage, never filled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from parkflow.timeunits import HOURS_PER_DAY
from service.exchanges.model import (
    COSTS,
    Benefit,
    Exchange,
    Factor,
    Item,
    Method,
    Price,
    Side,
    factor_for,
    price_at,
)
from service.exchanges.pipeline import Projection

_DONG = Decimal(1)
_MICRO = Decimal("0.000001")  # quantities are valued to a millionth of a unit: no float drift


def dong(amount: Decimal) -> int:
    """Booked money: whole dong, half to even (no systematic drift over many days)."""
    return int(amount.quantize(_DONG, rounding=ROUND_HALF_EVEN))


def split(park: Decimal, supplier: Decimal, receiver: Decimal) -> tuple[int, int, int]:
    """The park's whole dong, and the parties' shares of it by largest remainder: the two
    booked figures add up to the park's to the dong, and neither side absorbs the rounding."""
    total = dong(park)
    floors = [int(x.to_integral_value(rounding=ROUND_FLOOR)) for x in (supplier, receiver)]
    fractions = [supplier - floors[0], receiver - floors[1]]
    order = sorted(range(2), key=lambda i: fractions[i], reverse=True)
    extra = total - sum(floors)
    for i in order[: max(0, extra)]:
        floors[i] += 1
    return total, floors[0], floors[1]


def exact(quantity: float) -> Decimal:
    return Decimal(repr(quantity)).quantize(_MICRO, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Rates:
    """Each party's and the park's dong per unit exchanged in one local hour."""

    receiver: Decimal  # displaced - transfer - the costs the receiver pays
    supplier: Decimal  # avoided disposal + transfer - the costs the supplier pays
    park: Decimal  # displaced + avoided disposal - all costs (the transfer cancels)
    priced: bool  # a displaced price is in force


def hourly_rates(prices: tuple[Price, ...], day: date) -> tuple[Rates, ...]:
    """The 24 hours' rates in force on ``day``. They change only on prices' effective dates,
    so they are built once per set of prices in force (the latest date of each item on or
    before the day) and shared by every day that has the same set."""
    latest: dict[Item, date] = {}
    for p in prices:
        if p.effective <= day and p.effective > latest.get(p.item, date.min):
            latest[p.item] = p.effective
    # on the latest of those dates, every item's in-force date is the same as on ``day``
    as_of = max(latest.values(), default=date.min)
    return _rates(prices, as_of)


@lru_cache(maxsize=4096)
def _rates(prices: tuple[Price, ...], day: date) -> tuple[Rates, ...]:
    out: list[Rates] = []
    for hour in range(HOURS_PER_DAY):
        displaced = price_at(prices, Item.DISPLACED, day, hour)
        disposal = price_at(prices, Item.AVOIDED_DISPOSAL, day, hour)
        transfer = price_at(prices, Item.TRANSFER, day, hour)
        d = displaced.vnd_per_unit if displaced else Decimal(0)
        a = disposal.vnd_per_unit if disposal else Decimal(0)
        t = transfer.vnd_per_unit if transfer else Decimal(0)
        cost = {Side.SUPPLIER: Decimal(0), Side.RECEIVER: Decimal(0)}
        for item in COSTS:
            p = price_at(prices, item, day, hour)
            if p is not None and p.paid_by is not None:
                cost[p.paid_by] += p.vnd_per_unit
        out.append(
            Rates(
                receiver=d - t - cost[Side.RECEIVER],
                supplier=a + t - cost[Side.SUPPLIER],
                park=d + a - cost[Side.RECEIVER] - cost[Side.SUPPLIER],
                priced=displaced is not None,
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class DaySavings:
    """One exchange's verified day. Quantities in the exchange's unit; money in dong."""

    exchange: str
    park: str
    day: date
    hours_measured: int
    coverage: float  # hours with data / 24: the rest is a gap, not counted
    quantity: float
    supplier_vnd: int
    receiver_vnd: int
    park_vnd: int
    water_m3: float
    co2e_t: float
    landfill_t: float
    factor_year: int | None  # the year of the emission factor used
    check_quantity: float | None  # the other side's meter over the hours both measured
    loss: float | None  # supplier side - receiver side over those hours
    disagrees: bool  # |loss| beyond the tolerance
    unpriced_hours: int  # hours with a quantity and no displaced price: valued at 0


def valued_hours(exchange: Exchange, meter_hours: Sequence[float]) -> list[float]:
    """The exchanged quantity per local hour, NaN where the meter has no data."""
    m = exchange.metering
    if len(meter_hours) != HOURS_PER_DAY:
        raise ValueError(f"a day has {HOURS_PER_DAY} hours, got {len(meter_hours)}")
    if m.method is Method.SUPPLIER_SHARE:
        assert m.share is not None
        share = float(m.share)
        return [q * share for q in meter_hours]
    if m.method is Method.RECEIVER_REDUCTION:
        assert m.baseline_per_hour is not None
        base = m.baseline_per_hour
        return [base - q for q in meter_hours]  # NaN stays NaN; below zero is a real loss
    return list(meter_hours)


def day_savings(
    exchange: Exchange,
    day: date,
    meter_hours: Sequence[float],
    check_hours: Sequence[float] | None = None,
) -> DaySavings:
    """The day's savings from the valued meter's 24 hourly quantities (and the check meter's)."""
    hours = valued_hours(exchange, meter_hours)
    rates = hourly_rates(exchange.prices, day)
    supplier = receiver = park = Decimal(0)
    total = Decimal(0)
    measured = unpriced = 0
    active = exchange.active(day)
    for hour, q in enumerate(hours):
        if not active or math.isnan(q):
            continue
        measured += 1
        qd = exact(q)
        total += qd
        r = rates[hour]
        if not r.priced and qd:
            unpriced += 1
        receiver += qd * r.receiver
        supplier += qd * r.supplier
        park += qd * r.park
    return day_row(
        exchange,
        day,
        measured,
        total,
        split(park, supplier, receiver),
        unpriced,
        reconcile(exchange, hours, check_hours),
        factor_for(exchange.factors, day.year),
    )


def day_row(
    exchange: Exchange,
    day: date,
    measured: int,
    total: Decimal,
    vnd: tuple[int, int, int],
    unpriced: int,
    reconciled: tuple[float | None, float | None, bool],
    factor: Factor | None,
) -> DaySavings:
    """A day's row from its figures (``day_savings``'s and ``valuation``'s alike): the
    quantity, the booked dong (park, supplier, receiver), what it counts as besides money."""
    park_vnd, supplier_vnd, receiver_vnd = vnd
    check_q, loss, disagrees = reconciled
    co2e = total * factor.t_per_unit if factor else Decimal(0)
    quantity = float(total)
    return DaySavings(
        exchange=exchange.id,
        park=exchange.park,
        day=day,
        hours_measured=measured,
        coverage=measured / HOURS_PER_DAY,
        quantity=quantity,
        supplier_vnd=supplier_vnd,
        receiver_vnd=receiver_vnd,
        park_vnd=park_vnd,
        water_m3=quantity if exchange.benefit is Benefit.WATER else 0.0,
        co2e_t=float(co2e),
        landfill_t=quantity if exchange.benefit is Benefit.LANDFILL else 0.0,
        factor_year=factor.year if factor else None,
        check_quantity=check_q,
        loss=loss,
        disagrees=disagrees,
        unpriced_hours=unpriced,
    )


def reconcile(
    exchange: Exchange, hours: Sequence[float], check: Sequence[float] | None
) -> tuple[float | None, float | None, bool]:
    """Both sides over the hours both measured: the loss (supplier minus receiver) and
    whether it is beyond the tolerance of the larger side."""
    if check is None:
        return None, None, False
    both = [(q, c) for q, c in zip(hours, check, strict=True) if not math.isnan(q + c)]
    if not both:
        return None, None, False
    return compared(exchange, math.fsum(q for q, _ in both), math.fsum(c for _, c in both))


def compared(exchange: Exchange, valued: float, other: float) -> tuple[float, float, bool]:
    """``reconcile`` from the two sides' sums over the hours both measured."""
    supplier, receiver = (
        (valued, other) if exchange.metering.valued_side is Side.SUPPLIER else (other, valued)
    )
    loss = supplier - receiver
    scale = max(abs(supplier), abs(receiver))
    return other, loss, scale > 0 and abs(loss) > exchange.metering.tolerance * scale


@dataclass(frozen=True, slots=True)
class PeriodSavings:
    """Days summed: a month (``period`` YYYY-MM), a cumulative total (``period`` "total"),
    or the park (``exchange`` "*")."""

    exchange: str
    period: str
    days: int  # days with a row
    days_with_gaps: int
    coverage: float  # measured hours / hours of the days covered
    quantity: float
    supplier_vnd: int
    receiver_vnd: int
    park_vnd: int
    water_m3: float
    co2e_t: float
    landfill_t: float
    disagreeing_days: int
    projected_quantity: float | None = None
    projected_park_vnd: int | None = None

    @property
    def realised_share(self) -> float | None:
        """Realised / projected quantity (None without a projection)."""
        if not self.projected_quantity:
            return None
        return self.quantity / self.projected_quantity


def summed(
    exchange: str,
    period: str,
    rows: Sequence[DaySavings],
    projection: Projection | None = None,
) -> PeriodSavings:
    hours = sum(r.hours_measured for r in rows)
    days = len(rows)
    projected_q = projected_vnd = None
    if projection is not None:
        projected_q = projection.quantity_per_day * days
        projected_vnd = dong(Decimal(projection.park_vnd_per_year) * days / Decimal(365))
    return PeriodSavings(
        exchange=exchange,
        period=period,
        days=days,
        days_with_gaps=sum(1 for r in rows if r.hours_measured < HOURS_PER_DAY),
        coverage=hours / (days * HOURS_PER_DAY) if days else 0.0,
        quantity=math.fsum(r.quantity for r in rows),
        supplier_vnd=sum(r.supplier_vnd for r in rows),
        receiver_vnd=sum(r.receiver_vnd for r in rows),
        park_vnd=sum(r.park_vnd for r in rows),
        water_m3=math.fsum(r.water_m3 for r in rows),
        co2e_t=math.fsum(r.co2e_t for r in rows),
        landfill_t=math.fsum(r.landfill_t for r in rows),
        disagreeing_days=sum(1 for r in rows if r.disagrees),
        projected_quantity=projected_q,
        projected_park_vnd=projected_vnd,
    )


def monthly(
    rows: Iterable[DaySavings], projection: Projection | None = None
) -> list[PeriodSavings]:
    """One row per exchange and calendar month, oldest first."""
    groups: dict[tuple[str, str], list[DaySavings]] = {}
    for r in sorted(rows, key=lambda r: (r.exchange, r.day)):
        groups.setdefault((r.exchange, f"{r.day:%Y-%m}"), []).append(r)
    return [summed(ex, month, rs, projection) for (ex, month), rs in groups.items()]


def cumulative(
    exchange: str, rows: Iterable[DaySavings], projection: Projection | None = None
) -> PeriodSavings:
    return summed(exchange, "total", [r for r in rows if r.exchange == exchange], projection)


PARK = "*"


def park_total(period: str, rows: Sequence[DaySavings]) -> PeriodSavings:
    """The park over all its exchanges: each exchange's park line once (a party's gain is
    already inside it, never added on top)."""
    out = summed(PARK, period, rows)
    return out


def underperforming(
    rows: Sequence[DaySavings], projection: Projection, share: float, days: int
) -> tuple[bool, list[float]]:
    """Whether the last ``days`` measured days (coverage > 0; a gap is no evidence of under-
    performance) each delivered less than ``share`` of the projected quantity per day, and
    those days' shares (coverage-scaled: a half-measured day is compared with half a day)."""
    measured = [r for r in sorted(rows, key=lambda r: r.day) if r.hours_measured > 0]
    recent = measured[-days:]
    if projection.quantity_per_day <= 0 or len(recent) < days:
        return False, []
    shares = [r.quantity / (projection.quantity_per_day * r.coverage) for r in recent]
    return all(s < share for s in shares), shares
