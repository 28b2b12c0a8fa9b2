"""Verified days replaced whole, however a write groups them (SQLite and PostgreSQL): an
hour's update rewrites one day of many exchanges, a recomputation many days of a few."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import sqlalchemy as sa

from service.exchanges.repository import ExchangeRepository
from service.exchanges.savings import DaySavings
from service.state import Database
from service.state.tables import exchange_savings

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


def test_the_columnar_read_equals_the_row_read(database: Database) -> None:
    """``savings`` reads columns, the driver's values as they come; a row read through
    SQLAlchemy's types (the plain way) gives the same days, field by field and in order."""
    repo = ExchangeRepository(database)
    for x in ("x1", "x2", "x.3"):
        repo.create(x, "p1" if x != "x2" else "p2", "ops", "ops", now_ms=1)
    rows = [
        row("x1", DAY, 100),
        dataclasses.replace(
            row("x1", DAY + timedelta(days=1), -7),
            hours_measured=13, coverage=13 / 24, quantity=-0.0, supplier_vnd=-(2**62),
            receiver_vnd=2**62 - 7, water_m3=1 / 3, co2e_t=5e-324, factor_year=2026,
            check_quantity=0.0, loss=-1.5, disagrees=True, unpriced_hours=3,
        ),
        dataclasses.replace(row("x2", DAY, 5), park="p2", check_quantity=2.5, loss=None),
        row("x.3", DAY + timedelta(days=400), 9),
    ]  # fmt: skip
    repo.write_savings(rows, now_ms=2)

    def by_rows(**where: object) -> list[DaySavings]:
        c = exchange_savings.c
        query = sa.select(exchange_savings).order_by(c.exchange_id, c.day)
        for name, value in where.items():
            query = query.where(c[name] == value)
        with database.connect() as conn:
            found = conn.execute(query).mappings().all()
        fields = [f.name for f in dataclasses.fields(DaySavings) if f.name != "exchange"]
        return [DaySavings(exchange=r["exchange_id"], **{f: r[f] for f in fields}) for r in found]

    assert repo.savings() == by_rows() == sorted(rows, key=lambda r: (r.exchange, r.day))
    assert repo.savings(park="p2") == by_rows(park="p2") == [rows[2]]
    assert repo.savings(exchange_id="x1") == by_rows(exchange_id="x1") == rows[:2]
    later = repo.savings(start=DAY + timedelta(days=1), end=DAY + timedelta(days=401))
    assert later == [rows[3], rows[1]]  # by exchange ("x.3" sorts before "x1"), then day
    assert repo.savings(exchange_ids=["x2", "x.3"]) == [rows[3], rows[2]]
    assert repo.savings(park="nowhere") == []
    got = repo.savings()
    assert all(type(g.day) is date and type(g.disagrees) is bool for g in got)
    assert type(got[0].supplier_vnd) is int and type(got[0].factor_year) is type(None)
