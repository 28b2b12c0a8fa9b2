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
        factors=(Factor(2026, Decimal("0.0004")), Factor(2027, Decimal("0.00035"))),
    )
    days = [DAY0 + timedelta(days=i) for i in range(n)]
    meter = np.array(
        draw(st.lists(st.lists(quantity, min_size=24, max_size=24), min_size=n, max_size=n))
    )
    check = None
    if metering.check_meter:
        check = np.array(
            draw(st.lists(st.lists(quantity, min_size=24, max_size=24), min_size=n, max_size=n))
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
