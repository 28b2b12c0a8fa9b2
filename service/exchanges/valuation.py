"""Many days of one exchange valued at once, to the same dong as ``savings.day_savings``.

``day_savings`` is the definition: each hour's quantity rounded to a millionth of a unit
(``exact``), valued at that hour's rates in Decimal. A year of a thousand exchanges is nine
million hours, too many for a Decimal per hour, so here the same sums are made in integers:

- the quantities of all the days become micro-units at once (numpy rounds half to even, as
  ``exact`` does); an hour whose float product could sit on the other side of a half
  (within a thousandth of one) or is too large for that bound, is rounded by ``exact``
  itself, so every hour's micro-units are ``exact``'s;
- the hours of a day with the same rates form a band (a tariff's peak, normal and off-peak
  hours, or the whole day): a band's money is its micro-units' sum times its rate, an integer
  at the scale of the rates' decimals;
- the days are grouped by the prices in force; a day's sums stay integers and are split as
  ``savings.split`` splits their Decimals (half to even, largest remainder), in integers:
  int64 arrays where a bound proves nothing overflows, Python integers beyond it;
- the rest of the row (quantity, tCO2e) is one correctly rounded float64 operation on exact
  integers where that equals Decimal's ``float()``, Decimal beyond; the check meter's sums
  stay ``math.fsum``'s.

The days come out as columns (``columns.SavingsColumns``), not a row object per day.

Pure; ``tests/service/exchanges/test_valuation.py`` checks it against ``day_savings`` over
random exchanges, prices, bands and hours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from itertools import compress

import numpy as np

from parkflow.timeunits import HOURS_PER_DAY
from service.exchanges.columns import SavingsColumns
from service.exchanges.model import Benefit, Exchange, Method, factor_for
from service.exchanges.savings import (
    DaySavings,
    Rates,
    compared,
    exact,
    hourly_rates,
)

_RISKY = 1e-3  # a float product this close to a half may round the other way
_LARGEST = 1e6  # beyond this many units an hour, the float product's error exceeds _RISKY


@dataclass(frozen=True, slots=True)
class _Band:
    hours: np.ndarray  # bool, 24
    receiver: int  # the rate times 10**scale
    supplier: int
    park: int
    priced: bool


@dataclass(frozen=True, slots=True)
class _Bands:
    scale: int  # decimals of the rates
    bands: tuple[_Band, ...]


@lru_cache(maxsize=4096)
def _bands(rates: tuple[Rates, ...]) -> _Bands:
    decimals = [
        -int(r.as_tuple().exponent)
        for x in rates
        for r in (x.receiver, x.supplier, x.park)
        if int(r.as_tuple().exponent) < 0
    ]
    scale = max(decimals, default=0)
    groups: dict[tuple[Decimal, Decimal, Decimal, bool], list[int]] = {}
    for hour, x in enumerate(rates):
        groups.setdefault((x.receiver, x.supplier, x.park, x.priced), []).append(hour)
    bands = []
    for (receiver, supplier, park, priced), hours in groups.items():
        mask = np.zeros(len(rates), dtype=bool)
        mask[hours] = True
        bands.append(
            _Band(
                mask,
                _scaled(receiver, scale),
                _scaled(supplier, scale),
                _scaled(park, scale),
                priced,
            )
        )
    return _Bands(scale, tuple(bands))


def _scaled(rate: Decimal, scale: int) -> int:
    out = rate.scaleb(scale)
    assert out == out.to_integral_value(), (rate, scale)
    return int(out)


def valued_matrix(exchange: Exchange, meter: np.ndarray) -> np.ndarray:
    """``savings.valued_hours`` of every row (day) at once: the same float operations."""
    m = exchange.metering
    if m.method is Method.SUPPLIER_SHARE:
        assert m.share is not None
        return meter * float(m.share)
    if m.method is Method.RECEIVER_REDUCTION:
        assert m.baseline_per_hour is not None
        return m.baseline_per_hour - meter
    return meter


def micro_units(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each hour as ``exact`` rounds it, in millionths (int64), and where there was data."""
    present = ~np.isnan(q)
    x = np.where(present, q, 0.0) * 1e6
    units = np.rint(x)
    risky = present & ((np.abs(x - np.floor(x) - 0.5) < _RISKY) | ~(np.abs(q) < _LARGEST))
    out = units.astype(np.int64)
    for i, j in zip(*np.nonzero(risky), strict=True):
        out[i, j] = int(exact(float(q[i, j])).scaleb(6))
    return out, present


def split_scaled(park: int, supplier: int, receiver: int, denominator: int) -> tuple[int, int, int]:
    """``savings.split`` of ``park / denominator`` etc., in integers: the park's whole dong
    half to even, the parties' shares by largest remainder."""
    q, r = divmod(park, denominator)
    total = q + 1 if 2 * r > denominator or (2 * r == denominator and q % 2) else q
    floors = [supplier // denominator, receiver // denominator]
    fractions = [supplier - floors[0] * denominator, receiver - floors[1] * denominator]
    order = (0, 1) if fractions[0] >= fractions[1] else (1, 0)  # ``split``'s stable order
    extra = total - sum(floors)
    for i in order[: max(0, extra)]:
        floors[i] += 1
    return total, floors[0], floors[1]


def days_savings(
    exchange: Exchange,
    days: Sequence[date],
    meter: np.ndarray,
    check: np.ndarray | None = None,
) -> list[DaySavings]:
    """``day_savings`` of each of ``days`` (rows of ``meter``: 24 hourly quantities of the
    valued meter; ``check``: the check meter's, NaN where it has none)."""
    return days_columns(exchange, np.array(days, dtype="datetime64[D]"), meter, check).rows()


def days_columns(
    exchange: Exchange,
    days: np.ndarray,
    meter: np.ndarray,
    check: np.ndarray | None = None,
) -> SavingsColumns:
    """``days_savings`` as columns (``days``: datetime64[D]), no row object per day."""
    n = len(days)
    if meter.shape != (n, 24):
        raise ValueError(f"a row of 24 hours per day, got {meter.shape} for {n} days")
    ordinal = days.astype(np.int64)  # days since 1970-01-01
    valued = valued_matrix(exchange, meter)
    units, present = micro_units(valued)
    active = ordinal >= _epoch_day(exchange.start)
    if exchange.end is not None:
        active &= ordinal <= _epoch_day(exchange.end)
    present = present & active[:, None]
    units = np.where(present, units, 0)
    measured = present.sum(axis=1)
    totals = units.sum(axis=1)
    park, supplier, receiver, unpriced = _money(exchange, ordinal, units)
    quantity = _quantities(totals)
    zeros = np.zeros(n, dtype=np.float64)
    factor_year, factor_set, co2e = _carbon(exchange, days, totals)
    check_q, check_set, loss, loss_set, disagrees = _reconciled(exchange, valued, check)
    return SavingsColumns(
        exchange=np.full(n, exchange.id, dtype=object),
        park=np.full(n, exchange.park, dtype=object),
        day=days.astype("datetime64[D]"),
        hours_measured=measured.astype(np.int64),
        coverage=measured / HOURS_PER_DAY,
        quantity=quantity,
        supplier_vnd=supplier,
        receiver_vnd=receiver,
        park_vnd=park,
        water_m3=quantity if exchange.benefit is Benefit.WATER else zeros,
        co2e_t=co2e,
        landfill_t=quantity if exchange.benefit is Benefit.LANDFILL else zeros,
        factor_year=factor_year,
        check_quantity=check_q,
        loss=loss,
        disagrees=disagrees,
        unpriced_hours=unpriced,
        factor_year_set=factor_set,
        check_quantity_set=check_set,
        loss_set=loss_set,
    )


_EPOCH = date(1970, 1, 1)
_INT_BOUND = 2**62  # |sums of products| below it stay exact in int64, with room to double
_FLOAT_EXACT = 2**53  # integers below it are exact in float64
_POWERS = 22  # 10**k is exact in float64 up to here


def _epoch_day(day: date) -> int:
    return (day - _EPOCH).days


def _money(
    exchange: Exchange, ordinal: np.ndarray, units: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each day's (park, supplier, receiver) whole dong as ``savings.split`` books them, and
    its unpriced hours. Days are grouped by the prices in force (the rates change only on
    prices' effective dates); a group is summed in int64 when its bound proves no sum can
    overflow, else in Python integers."""
    n = len(ordinal)
    park = np.zeros(n, dtype=np.int64)
    supplier = np.zeros(n, dtype=np.int64)
    receiver = np.zeros(n, dtype=np.int64)
    unpriced = np.zeros(n, dtype=np.int64)
    effective = sorted({p.effective for p in exchange.prices})
    group = np.searchsorted(
        np.array([_epoch_day(d) for d in effective], dtype=np.int64), ordinal, side="right"
    )  # bisect_right: the latest effective date on or before the day
    for k in np.unique(group).tolist():
        rows = np.flatnonzero(group == k)
        b = _bands(hourly_rates(exchange.prices, effective[k - 1] if k else date.min))
        masks = np.array([band.hours for band in b.bands], dtype=np.int64)  # bands x 24
        unpriced_mask = np.array([not band.priced for band in b.bands], dtype=bool)
        sub = units[rows]
        unpriced[rows] = ((sub != 0).astype(np.int64) @ masks[unpriced_mask].T).sum(axis=1)
        denominator = 10 ** (6 + b.scale)
        rates = np.array(
            [(band.park, band.supplier, band.receiver) for band in b.bands], dtype=object
        )  # bands x 3, Python integers
        largest = max((abs(int(r)) for r in rates.flat), default=0)
        # in float64: an int64 sum could wrap; its rounding is far inside the bound's margin
        volume = float(np.abs(sub.astype(np.float64)).sum(axis=1).max(initial=0.0))
        if largest < _INT_BOUND and volume * largest < _INT_BOUND and denominator < _INT_BOUND:
            sums = (sub @ masks.T) @ rates.astype(np.int64)  # days x 3, exact in int64
            p, s, r = _split(sums[:, 0], sums[:, 1], sums[:, 2], denominator)
        else:  # beyond int64's bound: each day in Python integers
            exact_sums = np.array((sub @ masks.T).tolist(), dtype=object) @ rates
            booked = [split_scaled(int(a), int(b), int(c), denominator) for a, b, c in exact_sums]
            p, s, r = (np.array(x, dtype=np.int64).reshape(-1) for x in zip(*booked, strict=True))
        park[rows], supplier[rows], receiver[rows] = p, s, r
    return park, supplier, receiver, unpriced


def _split(
    park: np.ndarray, supplier: np.ndarray, receiver: np.ndarray, denominator: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``split_scaled`` of every day at once (int64, no value near its bound)."""
    q, r = np.divmod(park, denominator)
    total = q + ((2 * r > denominator) | ((2 * r == denominator) & (q % 2 == 1)))
    floor_s, floor_r = supplier // denominator, receiver // denominator
    supplier_first = supplier - floor_s * denominator >= receiver - floor_r * denominator
    extra = total - floor_s - floor_r
    one, two = extra >= 1, extra >= 2
    return (
        total,
        floor_s + np.where(supplier_first, one, two),
        floor_r + np.where(supplier_first, two, one),
    )


def _scaled_floats(values: np.ndarray, coefficient: int, exponent: int) -> np.ndarray | None:
    """``float`` of each exact ``v * coefficient * 10**exponent`` (integers ``v``), or None
    beyond the bounds that make it exact: within float64's exact integers and powers of ten,
    the product is exact and one float64 operation rounds it correctly, as Decimal's
    ``float()`` does."""
    largest = int(np.abs(values).max(initial=0)) * abs(coefficient)
    if largest >= _FLOAT_EXACT or abs(exponent) > _POWERS:
        return None
    product = (values if coefficient == 1 else values * coefficient).astype(np.float64)
    if exponent < 0:
        return product / float(10**-exponent)
    return product * float(10**exponent)


def _quantities(micro: np.ndarray) -> np.ndarray:
    """``float(Decimal(micro).scaleb(-6))`` of each day's micro-units."""
    fast = _scaled_floats(micro, 1, -6)
    if fast is not None:
        return fast
    return np.array([float(Decimal(int(v)).scaleb(-6)) for v in micro.tolist()])


def _carbon(
    exchange: Exchange, days: np.ndarray, totals: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each day's factor year (and where there is one) and its tCO2e: ``day_row``'s
    ``total * factor.t_per_unit`` in Decimal, then ``float``."""
    n = len(days)
    year = np.zeros(n, dtype=np.int64)
    given = np.zeros(n, dtype=bool)
    co2e = np.zeros(n, dtype=np.float64)
    years = days.astype("datetime64[Y]").astype(np.int64) + 1970
    for y in np.unique(years).tolist():
        factor = factor_for(exchange.factors, y)
        if factor is None:
            continue  # Decimal(0): 0.0
        rows = np.flatnonzero(years == y)
        year[rows], given[rows] = factor.year, True
        co2e[rows] = _times(totals[rows], factor.t_per_unit)
    return year, given, co2e


def _times(micro: np.ndarray, rate: Decimal) -> np.ndarray:
    """``float(Decimal(micro).scaleb(-6) * rate)`` of each integer: the rate as its integer
    coefficient and exponent; a zero product keeps Decimal's sign (negative when exactly one
    factor is)."""
    sign, digits, exponent = rate.as_tuple()
    out = None
    if isinstance(exponent, int):  # not NaN or infinity
        coefficient = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        out = _scaled_floats(micro, coefficient, exponent - 6)
    if out is None:
        return np.array([float(Decimal(int(v)).scaleb(-6) * rate) for v in micro.tolist()])
    zero = out == 0
    if zero.any():
        negative = (micro < 0) != bool(sign)
        out[zero] = np.where(negative[zero], -0.0, 0.0)
    return out


def _reconciled(
    exchange: Exchange, valued: np.ndarray, check: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``reconcile`` of every day: check quantity and loss (each with where it is set) and
    whether they disagree. The sums stay ``math.fsum``'s over the hours both sides measured."""
    n = len(valued)
    if check is None:
        none = np.zeros(n, dtype=bool)
        return np.zeros(n), none, np.zeros(n), none, none
    both = ~np.isnan(valued + check)
    other_q = np.zeros(n)
    loss = np.zeros(n)
    given = np.zeros(n, dtype=bool)
    disagrees = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(both.any(axis=1))
    for i, v, c, b in zip(
        rows.tolist(), valued[rows].tolist(), check[rows].tolist(), both[rows].tolist(), strict=True
    ):
        other, lost, off = compared(exchange, math.fsum(compress(v, b)), math.fsum(compress(c, b)))
        other_q[i], loss[i], given[i], disagrees[i] = other, lost, True, off
    return other_q, given, loss, given.copy(), disagrees
