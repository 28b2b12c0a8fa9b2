"""The year-at-once valuation equals ``day_savings`` (the definition, worked by hand in
test_savings.py) day by day, field by field, over random exchanges: metering methods, dated
prices with time-of-use bands and costs, factors, gaps, inactive days, quantities on and next
to the half a micro-unit where rounding could go either way."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.exchanges.model import Benefit, Exchange, Factor, Item, Metering, Method, Price, Side
from service.exchanges.savings import day_savings
from service.exchanges.valuation import days_savings

DAY0 = date(2026, 12, 20)  # a year boundary inside the window: each year's factor

money = st.decimals(min_value=-50_000, max_value=50_000, places=3, allow_nan=False)
hours_band = st.lists(st.integers(0, 23), min_size=1, max_size=10, unique=True).map(
    lambda xs: tuple(sorted(xs))
)


@st.composite
def prices(draw: st.DrawFn) -> tuple[Price, ...]:
    out: list[Price] = []
    for item in Item:
        if not draw(st.booleans()):
            continue
        paid_by = (
            draw(st.sampled_from(list(Side))) if item in (Item.TRANSPORT, Item.TREATMENT) else None
        )
        for offset in sorted(set(draw(st.lists(st.integers(0, 20), min_size=1, max_size=2)))):
            band = draw(st.one_of(st.just(()), hours_band))
            out.append(Price(item, DAY0 + timedelta(days=offset), draw(money), paid_by, band))
            if band:  # the rest of the day, at another price
                rest = tuple(h for h in range(24) if h not in band)
                if rest:
                    out.append(
                        Price(item, DAY0 + timedelta(days=offset), draw(money), paid_by, rest)
                    )
    return tuple(out)


factor = st.one_of(
    st.just(Decimal("0.0004")),
    st.decimals(min_value=-1, max_value=1, places=6, allow_nan=False),
    st.just(Decimal("-0")),  # a zero product keeps Decimal's sign
    st.just(Decimal("0.1234567890123456789")),  # beyond float64's exact products
    st.just(Decimal("2E+7")),  # a positive exponent
    st.just(Decimal("3E+40")),  # beyond float64's exact powers of ten
)

# a day's micro-units beyond float64's exact integers: in a few cases only, as one such hour
# takes its whole day off the float64 path
huge = st.one_of(st.floats(1e9, 1e10, allow_nan=False), st.just(math.nan))

quantity = st.one_of(
    st.floats(0, 500, allow_nan=False),
    st.floats(-5, 5, allow_nan=False),
    st.integers(0, 10**7).map(lambda n: n / 1e6 + 5e-7),  # on a half-micro-unit
    st.integers(0, 10**7).map(lambda n: (n + 0.5) / 1e6),
    st.floats(1e6, 3e6, allow_nan=False),  # beyond the float bound
    st.just(math.nan),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Exchange, list[date], np.ndarray, np.ndarray | None]:
    method = draw(st.sampled_from(list(Method)))
    metering = Metering(
        method,
        "m",
        share=draw(st.decimals("0.01", "1", places=4)) if method is Method.SUPPLIER_SHARE else None,
        baseline_per_hour=draw(st.floats(0, 300)) if method is Method.RECEIVER_REDUCTION else None,
        check_meter="c" if draw(st.booleans()) else None,
    )
    n = draw(st.integers(1, 15))
    ex = Exchange(
        id="x",
        park="p",
        supplier="s",
        receiver="r",
        resource="water.reclaimed",
        unit="m3",
        benefit=draw(st.sampled_from(list(Benefit))),
        metering=metering,
        start=DAY0 + timedelta(days=draw(st.integers(0, 3))),
        end=DAY0 + timedelta(days=draw(st.integers(5, 20))) if draw(st.booleans()) else None,
        prices=draw(prices()),
        factors=(Factor(2026, draw(factor)), Factor(2027, draw(factor))),
    )
    days = [DAY0 + timedelta(days=i) for i in range(n)]
    hour = st.one_of(quantity, huge) if draw(st.integers(0, 3)) == 0 else quantity
    meter = np.array(
        draw(st.lists(st.lists(hour, min_size=24, max_size=24), min_size=n, max_size=n))
    )
    check = None
    if metering.check_meter:
        check = np.array(
            draw(st.lists(st.lists(hour, min_size=24, max_size=24), min_size=n, max_size=n))
        )
    return ex, days, meter, check


@settings(max_examples=300, deadline=None)
@given(cases())
def test_many_days_at_once_equal_day_savings_to_the_dong(
    case: tuple[Exchange, list[date], np.ndarray, np.ndarray | None],
) -> None:
    ex, days, meter, check = case
    got = days_savings(ex, days, meter, check)
    want = [
        day_savings(ex, d, meter[i].tolist(), None if check is None else check[i].tolist())
        for i, d in enumerate(days)
    ]
    assert got == want
    sign = [(math.copysign(1, r.co2e_t), math.copysign(1, r.quantity)) for r in got]
    assert sign == [(math.copysign(1, r.co2e_t), math.copysign(1, r.quantity)) for r in want]


def test_halves_of_a_dong_are_booked_as_day_savings_books_them() -> None:
    """Exact ties, which random prices seldom hit: the park's half dong to even, the parties'
    equal remainders to the supplier first."""
    quantities = [0.5, 1.5, 2.5, -0.5, -1.5, 1.0, 3.0]
    ex = Exchange(
        id="x", park="p", supplier="s", receiver="r", resource="water.reclaimed", unit="m3",
        benefit=Benefit.WATER, metering=Metering(Method.TRANSFER_METER, "m"), start=DAY0,
        prices=(
            Price(Item.DISPLACED, DAY0, Decimal(1)),
            Price(Item.TRANSFER, DAY0, Decimal("0.5")),
        ),
    )  # fmt: skip
    days = [DAY0 + timedelta(days=i) for i in range(len(quantities))]
    meter = np.full((len(days), 24), math.nan)
    meter[:, 0] = quantities
    got = days_savings(ex, days, meter)
    assert got == [day_savings(ex, d, meter[i].tolist()) for i, d in enumerate(days)]
    assert [(r.park_vnd, r.supplier_vnd, r.receiver_vnd) for r in got] == [
        (0, 0, 0),
        (2, 1, 1),
        (2, 1, 1),
        (0, 0, 0),
        (-2, -1, -1),
        (1, 1, 0),
        (3, 2, 1),
    ]
