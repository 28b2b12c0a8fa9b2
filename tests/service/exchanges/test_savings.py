"""Realised savings worked by hand, to the last dong: the figures below are computed in the
comments from the prices and quantities, not by the code under test."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import pytest

from parkflow.errors import InputError
from service.exchanges.model import (
    Benefit,
    Exchange,
    Factor,
    Item,
    Metering,
    Method,
    Price,
    Side,
    check_new_price,
)
from service.exchanges.pipeline import Projection
from service.exchanges.savings import (
    cumulative,
    day_savings,
    monthly,
    park_total,
    underperforming,
)

NAN = math.nan


def water_exchange(**kw: object) -> Exchange:
    prices = (
        Price(Item.DISPLACED, date(2026, 9, 1), Decimal(17_000)),
        Price(Item.DISPLACED, date(2026, 9, 16), Decimal(18_500)),  # the tariff rises mid-month
        Price(Item.AVOIDED_DISPOSAL, date(2026, 9, 1), Decimal(9_000)),
        Price(Item.TRANSFER, date(2026, 9, 1), Decimal(5_000)),
        Price(Item.TREATMENT, date(2026, 9, 1), Decimal(2_500), paid_by=Side.SUPPLIER),
    )
    fields: dict[str, object] = {
        "id": "x1",
        "park": "p1",
        "supplier": "wwtp",
        "receiver": "det",
        "resource": "water.reclaimed",
        "unit": "m3",
        "benefit": Benefit.WATER,
        "metering": Metering(Method.TRANSFER_METER, "reuse-line", check_meter="det-in"),
        "start": date(2026, 9, 1),
        "prices": prices,
        "factors": (Factor(2026, Decimal("0.0004")),),
    }
    fields.update(kw)
    return Exchange(**fields)  # type: ignore[arg-type]


def test_a_water_exchange_over_a_month_with_a_price_change_mid_month() -> None:
    ex = water_exchange()
    rows = [
        day_savings(ex, date(2026, 9, 1) + timedelta(days=i), [10.1234] * 24) for i in range(30)
    ]
    # a day: 24 x 10.1234 = 242.9616 m3
    # 1-15 Sep: receiver 242.9616 x (17,000 - 5,000) = 2,915,539.2
    #           supplier 242.9616 x (9,000 + 5,000 - 2,500) = 2,794,058.4
    #           park     242.9616 x (17,000 + 9,000 - 2,500) = 5,709,597.6 -> 5,709,598
    #           largest remainder: supplier (.4) gets the dong -> 2,794,059 + 2,915,539
    first = rows[0]
    assert (first.park_vnd, first.supplier_vnd, first.receiver_vnd) == (
        5_709_598,
        2_794_059,
        2_915_539,
    )
    # 16-30 Sep: receiver 242.9616 x 13,500 = 3,279,981.6; supplier 2,794,058.4;
    #            park 242.9616 x 25,000 = 6,074,040 -> receiver (.6) gets the dong
    last = rows[-1]
    assert (last.park_vnd, last.supplier_vnd, last.receiver_vnd) == (
        6_074_040,
        2_794_058,
        3_279_982,
    )
    assert rows[14].receiver_vnd == 2_915_539 and rows[15].receiver_vnd == 3_279_982
    (month,) = monthly(rows)
    # supplier 15 x 2,794,059 + 15 x 2,794,058 = 83,821,755
    # receiver 15 x 2,915,539 + 15 x 3,279,982 = 92,932,815
    # park     15 x 5,709,598 + 15 x 6,074,040 = 176,754,570 (= 83,821,755 + 92,932,815)
    assert (month.period, month.supplier_vnd, month.receiver_vnd, month.park_vnd) == (
        "2026-09",
        83_821_755,
        92_932_815,
        176_754_570,
    )
    assert month.water_m3 == pytest.approx(30 * 242.9616)  # 7,288.848 m3
    assert month.co2e_t == pytest.approx(7_288.848 * 0.0004)
    assert month.coverage == 1.0 and month.days_with_gaps == 0
    total = cumulative("x1", rows)
    assert total.park_vnd == 176_754_570 and total.days == 30


def test_a_heat_exchange_valued_by_time_of_use_hours() -> None:
    peak, off = (10, 17, 18, 19), (22, 23, 0, 1, 2, 3)
    normal = tuple(h for h in range(24) if h not in peak + off)
    day0 = date(2026, 10, 1)
    prices = (
        Price(Item.DISPLACED, day0, Decimal(3_000), hours=peak),
        Price(Item.DISPLACED, day0, Decimal(1_100), hours=off),
        Price(Item.DISPLACED, day0, Decimal(1_800), hours=normal),
        Price(Item.TRANSFER, day0, Decimal(800)),
    )
    ex = water_exchange(
        id="heat",
        resource="heat.steam",
        unit="kWh",
        benefit=Benefit.ENERGY,
        metering=Metering(Method.TRANSFER_METER, "steam-line"),
        start=day0,
        prices=prices,
        factors=(),
    )
    row = day_savings(ex, day0, [500.0] * 24)
    # displaced: peak 4 h x 500 x 3,000 = 6,000,000; off-peak 6 x 500 x 1,100 = 3,300,000;
    # normal 14 x 500 x 1,800 = 12,600,000; together 21,900,000 = the park's
    # transfer 12,000 kWh x 800 = 9,600,000: the supplier's; receiver 21,900,000 - 9,600,000
    assert (row.park_vnd, row.supplier_vnd, row.receiver_vnd) == (
        21_900_000,
        9_600_000,
        12_300_000,
    )
    assert row.water_m3 == 0 and row.co2e_t == 0 and row.factor_year is None
    # one hour more at peak moves the day by exactly 500 x 3,000 (receiver) and 500 x 800
    hours = [500.0] * 24
    hours[18] = 1_000.0
    bumped = day_savings(ex, day0, hours)
    assert bumped.park_vnd - row.park_vnd == 1_500_000
    assert bumped.supplier_vnd - row.supplier_vnd == 400_000


def test_a_by_product_with_a_gap_is_reported_not_filled() -> None:
    day0 = date(2026, 10, 5)
    prices = (
        Price(Item.DISPLACED, day0, Decimal(1_200_000)),
        Price(Item.AVOIDED_DISPOSAL, day0, Decimal(350_000)),
        Price(Item.TRANSFER, day0, Decimal(100_000)),
        Price(Item.TRANSPORT, day0, Decimal(150_000), paid_by=Side.RECEIVER),
    )
    ex = water_exchange(
        id="ash",
        resource="waste.fly_ash",
        unit="t",
        benefit=Benefit.LANDFILL,
        metering=Metering(Method.SUPPLIER_SHARE, "ash-out", share=Decimal("0.6")),
        start=day0,
        prices=prices,
        factors=(),
    )
    hours = [0.5] * 24
    for h in range(8, 14):
        hours[h] = NAN  # the weighbridge's gateway was down from 08:00 to 14:00
    row = day_savings(ex, day0, hours)
    # 18 h x 0.5 t x 0.6 = 5.4 t; the 6 missing hours are not estimated
    assert row.quantity == pytest.approx(5.4) and row.landfill_t == pytest.approx(5.4)
    assert (row.hours_measured, row.coverage) == (18, 0.75)
    # receiver 5.4 x (1,200,000 - 100,000 - 150,000) = 5,130,000
    # supplier 5.4 x (350,000 + 100,000) = 2,430,000; park 5.4 x 1,400,000 = 7,560,000
    assert (row.park_vnd, row.supplier_vnd, row.receiver_vnd) == (
        7_560_000,
        2_430_000,
        5_130_000,
    )
    (month,) = monthly([row])
    assert month.days_with_gaps == 1 and month.coverage == 0.75


def test_the_year_boundary_takes_each_years_emission_factor() -> None:
    factors = (
        Factor(2026, Decimal("0.0006592")),
        Factor(2027, Decimal("0.0006")),
    )
    ex = water_exchange(
        id="solar",
        unit="kWh",
        benefit=Benefit.ENERGY,
        metering=Metering(Method.TRANSFER_METER, "pv-export"),
        start=date(2026, 12, 1),
        factors=factors,
    )
    dec31 = day_savings(ex, date(2026, 12, 31), [50.0] * 24)
    jan1 = day_savings(ex, date(2027, 1, 1), [50.0] * 24)
    jan1_2028 = day_savings(ex, date(2028, 1, 1), [50.0] * 24)
    # 1,200 kWh x 0.0006592 = 0.79104 t; x 0.0006 = 0.72 t
    assert (dec31.co2e_t, dec31.factor_year) == (0.79104, 2026)
    assert (jan1.co2e_t, jan1.factor_year) == (0.72, 2027)
    assert jan1_2028.factor_year == 2027  # not yet published: the latest, and it says so
    months = monthly([dec31, jan1])
    assert [m.period for m in months] == ["2026-12", "2027-01"]


def test_reconciliation_gives_the_loss_and_flags_a_disagreement() -> None:
    ex = water_exchange()
    day = date(2026, 9, 3)
    ok = day_savings(ex, day, [10.0] * 24, [9.8] * 24)  # 2% lost on the way
    assert ok.loss == pytest.approx(24 * 0.2) and not ok.disagrees
    bad = day_savings(ex, day, [10.0] * 24, [9.0] * 24)  # 10%: beyond the 5% tolerance
    assert bad.disagrees
    gap = [9.0] * 24
    gap[0] = NAN
    partial = day_savings(ex, day, [10.0] * 24, gap)  # compared over the hours both measured
    assert partial.check_quantity == pytest.approx(23 * 9.0)
    assert partial.loss == pytest.approx(23 * 1.0)


def test_a_receiver_reduction_is_its_baseline_less_its_meter() -> None:
    ex = water_exchange(
        metering=Metering(Method.RECEIVER_REDUCTION, "det-in", baseline_per_hour=30.0)
    )
    row = day_savings(ex, date(2026, 9, 2), [20.0] * 24)
    assert row.quantity == pytest.approx(240.0)


def test_days_outside_the_exchange_and_the_park_total() -> None:
    ex = water_exchange(end=date(2026, 9, 10))
    before = day_savings(ex, date(2026, 8, 31), [10.0] * 24)
    after = day_savings(ex, date(2026, 9, 11), [10.0] * 24)
    assert before.quantity == 0 and before.park_vnd == 0 and after.hours_measured == 0
    a = day_savings(ex, date(2026, 9, 2), [10.0] * 24)
    b = day_savings(water_exchange(id="x2"), date(2026, 9, 2), [5.0] * 24)
    park = park_total("2026-09", [a, b])
    assert park.park_vnd == a.park_vnd + b.park_vnd
    assert park.supplier_vnd + park.receiver_vnd == park.park_vnd


def test_under_performance_needs_n_measured_days_below_the_share() -> None:
    ex = water_exchange()
    proj = Projection(240.0, 1, 1, 1)
    low = [day_savings(ex, date(2026, 9, d), [5.0] * 24) for d in range(1, 4)]  # 50%
    assert underperforming(low, proj, 0.7, 3)[0]
    assert not underperforming(low[:2], proj, 0.7, 3)[0]  # two days are not three
    good = day_savings(ex, date(2026, 9, 4), [10.0] * 24)
    assert not underperforming([*low, good], proj, 0.7, 3)[0]
    half = [10.0] * 12 + [NAN] * 12  # half a day measured at full rate: not under
    assert not underperforming(
        [day_savings(ex, date(2026, 9, d), half) for d in range(5, 8)], proj, 0.7, 3
    )[0]


def test_prices_change_forward_only() -> None:
    existing = list(water_exchange().prices)
    with pytest.raises(InputError, match="forward only"):
        check_new_price(existing, Price(Item.DISPLACED, date(2026, 9, 10), Decimal(1)))
    with pytest.raises(InputError, match="already set"):
        check_new_price(existing, Price(Item.DISPLACED, date(2026, 9, 16), Decimal(1)))
    with pytest.raises(InputError, match="who pays"):
        check_new_price(existing, Price(Item.TRANSPORT, date(2026, 9, 1), Decimal(1)))
    check_new_price(existing, Price(Item.DISPLACED, date(2026, 10, 1), Decimal(19_000)))
