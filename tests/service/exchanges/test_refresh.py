"""A recomputation over several windows (real store: SQLite and InfluxDB; real database:
SQLite and PostgreSQL) writes exactly the days ``day_savings`` gives from each day's rollups
read one by one (the definition), then nothing when nothing changed, then only the day whose
rollup changed: the columnar reads, valuation and comparison agree with the row-by-row way,
however the changed days are sliced into writes."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from parkflow.model import Direction, MeterKey
from parkflow.store import Store
from parkflow.store.rollup_rows import DayRollup
from service.exchanges import verify
from service.exchanges.model import Benefit, Exchange, Factor, Item, Metering, Method, Price, Side
from service.exchanges.pipeline import Projection, Stage
from service.exchanges.repository import ExchangeRepository, Registration
from service.exchanges.savings import DaySavings, day_savings
from service.exchanges.verify import WINDOW_DAYS, day_ms_of, refresh
from service.rollups.compute import standard_offset_ms
from service.state import Database
from tests.support.registries import build, meter, park, tenant

REGISTRY = build(
    park(
        "p1",
        tenant(
            "s",
            meter("a-line", "water.treated_effluent", "out", "m3", "cumulative"),
            meter("b-line", "water.treated_effluent", "out", "m3", "cumulative"),
        ),
        tenant(
            "r",
            meter("a-check", "water.treated_effluent", "in", "m3", "cumulative"),
            meter("c-line", "water.treated_effluent", "in", "m3", "cumulative"),
        ),
    )
)
DAY0 = date(2026, 1, 1)
DAYS = WINDOW_DAYS * 2 + 20  # three windows
OFFSET = standard_offset_ms("Asia/Ho_Chi_Minh")
OWNER = {"a-line": "s", "b-line": "s", "a-check": "r", "c-line": "r"}


def operating(repo: ExchangeRepository, xid: str, metering: Metering, **kw: object) -> None:
    repo.create(xid, "p1", "ops", "ops", projection=Projection(240.0, 1, 1, 0), now_ms=1)
    repo.move(xid, Stage.SCREENED, "ops", now_ms=2)
    repo.move(xid, Stage.UNDER_STUDY, "ops", now_ms=3)
    start = kw.get("start", DAY0)
    end = kw.get("end")
    assert isinstance(start, date) and (end is None or isinstance(end, date))
    repo.register(
        xid,
        Registration(
            "s", "r", "water.treated_effluent", "m3", Benefit.WATER, "a-line", "c-line",
            metering, start, end,
        ),
    )  # fmt: skip
    repo.add_price(xid, Price(Item.DISPLACED, DAY0, Decimal("17000.5")), "ops")
    repo.add_price(xid, Price(Item.TREATMENT, DAY0, Decimal(2_500), Side.SUPPLIER), "ops")
    repo.add_price(xid, Price(Item.DISPLACED, DAY0 + timedelta(days=100), Decimal(18_000)), "ops")
    repo.add_factor(xid, Factor(2026, Decimal("0.00041")))
    repo.move(xid, Stage.AGREED, "ops", now_ms=4)
    repo.move(xid, Stage.OPERATING, "ops", now_ms=5)


def hours_of(store: Store, meter_id: str, day: date) -> list[float]:
    key = MeterKey("p1", OWNER.get(meter_id, ""), meter_id)
    found = store.get_rollups([(key, day_ms_of(day, OFFSET))])
    return list(found[0].hours) if found else [math.nan] * 24


def by_definition(store: Store, exchanges: list[Exchange]) -> dict[tuple[str, date], DaySavings]:
    out: dict[tuple[str, date], DaySavings] = {}
    for ex in exchanges:
        for i in range(DAYS):
            day = DAY0 + timedelta(days=i)
            if ex.active(day):
                m = ex.metering
                check = hours_of(store, m.check_meter, day) if m.check_meter else None
                out[(ex.id, day)] = day_savings(ex, day, hours_of(store, m.meter, day), check)
    return out


def test_a_recomputation_over_windows_equals_the_day_by_day_definition(
    database: Database, env_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "WRITE_ROWS", 50)  # several writes a window
    repo = ExchangeRepository(database)
    operating(repo, "xa", Metering(Method.TRANSFER_METER, "a-line", check_meter="a-check"))
    operating(
        repo, "xb", Metering(Method.SUPPLIER_SHARE, "b-line", share=Decimal("0.35")),
        start=DAY0 + timedelta(days=50), end=DAY0 + timedelta(days=150),
    )  # fmt: skip
    operating(repo, "xc", Metering(Method.RECEIVER_REDUCTION, "c-line", baseline_per_hour=12.0))
    operating(repo, "xg", Metering(Method.TRANSFER_METER, "lost-meter"))  # not in the registry
    rng = np.random.default_rng(5)
    rows = []
    for meter_id, tenant_id in OWNER.items():
        for i in range(DAYS):
            if rng.random() < 0.05:
                continue  # no rollup that day
            values = rng.uniform(0.0, 20.0, 24).round(4)
            values[rng.random(24) < 0.1] = np.nan
            day_ms = day_ms_of(DAY0 + timedelta(days=i), OFFSET)
            key = MeterKey("p1", tenant_id, meter_id)
            rows.append(
                DayRollup.build(key, "water.treated_effluent", Direction.OUT, day_ms, list(values))
            )
    env_store.write_rollups(rows)
    end = DAY0 + timedelta(days=DAYS)

    first = refresh(repo, env_store, env_store, REGISTRY, DAY0, end, now_ms=10)
    want = by_definition(env_store, repo.metered())
    assert first.computed == len(want) == 3 * DAYS + 101  # xb: days 50 to 150
    assert {(r.exchange, r.day): r for r in first.changed} == want
    assert repo.savings() == [want[k] for k in sorted(want)]
    assert refresh(repo, env_store, env_store, REGISTRY, DAY0, end, now_ms=11).changed == []

    # one more hour on one day of xb's meter: that day, and only it, is rewritten
    day = DAY0 + timedelta(days=120)
    key = MeterKey("p1", "s", "b-line")
    old = env_store.get_rollups([(key, day_ms_of(day, OFFSET))])[0]
    hours = [10.0 if math.isnan(h) else h + 1.0 for h in old.hours]
    env_store.write_rollups([DayRollup.build(key, old.resource, old.direction, old.day_ms, hours)])
    again = refresh(repo, env_store, env_store, REGISTRY, DAY0, end, now_ms=12)
    assert [(r.exchange, r.day) for r in again.changed] == [("xb", day)]
    assert again.changed[0] == by_definition(env_store, repo.metered())[("xb", day)]
