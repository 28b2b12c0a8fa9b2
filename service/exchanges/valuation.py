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
  ``savings.split`` splits their Decimals (half to even, largest remainder), in integers.

Pure; ``tests/service/exchanges/test_valuation.py`` checks it against ``day_savings`` over
random exchanges, prices, bands and hours.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

import numpy as np

from service.exchanges.model import Exchange, Method, factor_for
from service.exchanges.savings import (
    DaySavings,
    Rates,
    day_row,
    exact,
    hourly_rates,
    reconcile,
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
    n = len(days)
    if meter.shape != (n, 24):
        raise ValueError(f"a row of 24 hours per day, got {meter.shape} for {n} days")
    valued = valued_matrix(exchange, meter)
    units, present = micro_units(valued)
    active = np.array([exchange.active(d) for d in days], dtype=bool).reshape(n, 1)
    present = present & active
    units = np.where(present, units, 0)
    measured = present.sum(axis=1)
    totals = units.sum(axis=1)
    # the rates in force change only on prices' effective dates: days grouped by the latest
    effective = sorted({p.effective for p in exchange.prices})
    groups: dict[date, list[int]] = {}
    for i, day in enumerate(days):
        k = bisect_right(effective, day)
        groups.setdefault(effective[k - 1] if k else date.min, []).append(i)
    money: list[tuple[int, int, int, int, int]] = [(0, 0, 0, 0, 1)] * n
    for as_of, rows in groups.items():
        b = _bands(hourly_rates(exchange.prices, as_of))
        masks = np.array([band.hours for band in b.bands], dtype=np.int64)  # bands x 24
        unpriced_mask = np.array([not band.priced for band in b.bands], dtype=bool)
        sub = units[rows]
        sums = (sub @ masks.T).tolist()  # days x bands, exact in int64
        nonzero = ((sub != 0).astype(np.int64) @ masks[unpriced_mask].T).sum(axis=1).tolist()
        denominator = 10 ** (6 + b.scale)
        for r, i in enumerate(rows):
            receiver = supplier = park = 0
            for s_b, band in zip(sums[r], b.bands, strict=True):
                receiver += s_b * band.receiver
                supplier += s_b * band.supplier
                park += s_b * band.park
            money[i] = (park, supplier, receiver, int(nonzero[r]), denominator)
    factors = {y: factor_for(exchange.factors, y) for y in {d.year for d in days}}
    out: list[DaySavings] = []
    for i, day in enumerate(days):
        park, supplier, receiver, unpriced, denominator = money[i]
        reconciled = (
            reconcile(exchange, valued[i].tolist(), check[i].tolist())
            if check is not None
            else (None, None, False)
        )
        out.append(
            day_row(
                exchange,
                day,
                int(measured[i]),
                Decimal(int(totals[i])).scaleb(-6),
                split_scaled(park, supplier, receiver, denominator),
                unpriced,
                reconciled,
                factors[day.year],
            )
        )
    return out
