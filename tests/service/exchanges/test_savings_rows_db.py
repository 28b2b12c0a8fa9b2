"""Verified days replaced whole, however a write groups them (SQLite and PostgreSQL): an
hour's update rewrites one day of many exchanges, a recomputation many days of a few."""

from __future__ import annotations

from datetime import date, timedelta

from service.exchanges.repository import ExchangeRepository
from service.exchanges.savings import DaySavings
from service.state import Database

DAY = date(2026, 10, 1)


def row(exchange: str, day: date, park_vnd: int) -> DaySavings:
    return DaySavings(
        exchange=exchange, park="p1", day=day, hours_measured=24, coverage=1.0, quantity=1.0,
        supplier_vnd=0, receiver_vnd=park_vnd, park_vnd=park_vnd, water_m3=1.0, co2e_t=0.0,
        landfill_t=0.0, factor_year=None, check_quantity=None, loss=None, disagrees=False,
        unpriced_hours=0,
    )  # fmt: skip


def test_days_are_replaced_whole_by_exchange_and_by_day(database: Database) -> None:
    repo = ExchangeRepository(database)
    ids = [f"x{i}" for i in range(5)]
    for x in ids:
        repo.create(x, "p1", "ops", "ops", now_ms=1)
    days = [DAY + timedelta(days=d) for d in range(3)]
    repo.write_savings([row(x, d, 100) for x in ids for d in days], now_ms=2)
    # an hour's update: one day of five exchanges (deleted by day)
    repo.write_savings([row(x, days[2], 200) for x in ids], now_ms=3)
    # a recomputation of one exchange's three days (deleted by exchange)
    repo.write_savings([row("x0", d, 300) for d in days], now_ms=4)
    got = {(r.exchange, r.day): r.park_vnd for r in repo.savings(park="p1")}
    expected = {(x, d): 100 for x in ids for d in days}
    expected |= {(x, days[2]): 200 for x in ids}
    expected |= {("x0", d): 300 for d in days}
    assert got == expected  # one row per (exchange, day), the latest
    assert row("x1", days[2], 200) in repo.savings(exchange_id="x1")  # the whole row
