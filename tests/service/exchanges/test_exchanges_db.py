"""Exchanges in the operational database (SQLite and a real PostgreSQL) and realised savings
from readings in a real store (SQLite and a real InfluxDB): the pipeline recorded with who and
when, the frozen projection, prices forward only, and late or duplicate readings that change
exactly the days they touch, once."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal

import pytest

from parkflow.errors import InputError
from parkflow.model import Direction, Reading, WriteBatch
from parkflow.store import Store
from parkflow.timeunits import DAY_MS, HOUR_MS
from service.exchanges.model import (
    Benefit,
    Factor,
    Item,
    Metering,
    Method,
    Price,
    Side,
)
from service.exchanges.pipeline import Barrier, Projection, Stage
from service.exchanges.repository import ExchangeRepository, Registration
from service.exchanges.verify import day_ms_of, refresh
from service.rollups.compute import standard_offset_ms
from service.rollups.worker import RollupWorker
from service.state import Database
from tests.support.registries import build, meter, park, tenant

REGISTRY = build(
    park(
        "p1",
        tenant(
            "wwtp",
            meter("wwtp-effluent", "water.treated_effluent", "out", "m3", "cumulative"),
            # a flow meter on the reuse line: a gap longer than an hour is no data
            meter(
                "reuse-line",
                "water.treated_effluent",
                "out",
                "m3/h",
                "rate",
                integration="previous",
                max_gap_s=3600,
            ),
        ),
        tenant(
            "det",
            meter("det-water", "water.potable", "in", "m3", "cumulative"),
            meter("det-reuse-in", "water.treated_effluent", "in", "m3", "cumulative"),
        ),
    )
)
PROJ = Projection(240.0, 2_000_000_000, 1_000_000_000, 1_000_000_000, 0.0, 87_600.0, 0.0)
DAY0 = date(2026, 9, 1)
OFFSET = standard_offset_ms("Asia/Ho_Chi_Minh")
REGISTRATION = Registration(
    supplier="wwtp",
    receiver="det",
    resource="water.treated_effluent",
    unit="m3",
    benefit=Benefit.WATER,
    from_meter="wwtp-effluent",
    to_meter="det-water",
    metering=Metering(Method.TRANSFER_METER, "reuse-line", check_meter="det-reuse-in"),
    start=DAY0,
)


def agreed(repo: ExchangeRepository, xid: str = "x1") -> None:
    repo.create(xid, "p1", "ops-lan", "ops-lan", projection=PROJ, now_ms=1_000)
    for i, stage in enumerate((Stage.SCREENED, Stage.UNDER_STUDY)):
        repo.move(xid, stage, "ops-binh", now_ms=2_000 + i)
    repo.register(xid, REGISTRATION)
    repo.move(xid, Stage.AGREED, "ops-binh", "signed 2026-08-20", now_ms=3_000)


def test_the_pipeline_is_recorded_with_who_and_when(database: Database) -> None:
    repo = ExchangeRepository(database)
    repo.create(
        "x1",
        "p1",
        "ops-lan",
        "ops-lan",
        projection=PROJ,
        barrier=Barrier.LEGAL,
        legal_status="conditional",
        notes="from the 2026-06 workshop",
        now_ms=1_000,
    )
    with pytest.raises(InputError, match="already exists"):
        repo.create("x1", "p1", "ops", "ops")
    with pytest.raises(InputError, match="cannot move from identified to agreed"):
        repo.move("x1", Stage.AGREED, "ops-binh", now_ms=1_500)
    repo.move("x1", Stage.SCREENED, "ops-binh", "permit route known", now_ms=2_000)
    repo.move("x1", Stage.UNDER_STUDY, "ops-binh", now_ms=2_500)
    with pytest.raises(InputError, match="supplier and receiver named"):
        repo.move("x1", Stage.AGREED, "ops-binh", now_ms=2_600)
    repo.register("x1", REGISTRATION)
    entry = repo.move("x1", Stage.AGREED, "ops-chi", now_ms=3_000)
    assert entry.pipeline.frozen and entry.pipeline.projection == PROJ
    later = repo.update("x1", projection=Projection(100.0, 1, 1, 1), clear_barrier=True)
    assert later.pipeline.projection == PROJ and later.pipeline.barrier is None
    repo.move("x1", Stage.OPERATING, "ops-chi", now_ms=4_000)
    with pytest.raises(InputError, match="only its end date"):
        repo.register("x1", dataclasses.replace(REGISTRATION, unit="t"))
    moves = [(m.from_stage, m.to_stage, m.by, m.at_ms, m.note) for m in repo.moves("x1")]
    assert moves == [
        (None, Stage.IDENTIFIED, "ops-lan", 1_000, "from the 2026-06 workshop"),
        (Stage.IDENTIFIED, Stage.SCREENED, "ops-binh", 2_000, "permit route known"),
        (Stage.SCREENED, Stage.UNDER_STUDY, "ops-binh", 2_500, ""),
        (Stage.UNDER_STUDY, Stage.AGREED, "ops-chi", 3_000, ""),
        (Stage.AGREED, Stage.OPERATING, "ops-chi", 4_000, ""),
    ]
    got = repo.get("x1")
    assert got.registration == REGISTRATION and got.pipeline.legal_status == "conditional"
    assert [e.id for e in repo.entries("p1", [Stage.OPERATING])] == ["x1"]
    assert repo.entries("p1", [Stage.REJECTED]) == []


def test_prices_and_factors_are_kept_exactly_and_forward_only(database: Database) -> None:
    repo = ExchangeRepository(database)
    agreed(repo)
    repo.add_price("x1", Price(Item.DISPLACED, DAY0, Decimal("17000.5"), source="tariff"), "ops")
    repo.add_price("x1", Price(Item.TREATMENT, DAY0, Decimal(2_500), Side.SUPPLIER), "ops")
    band = Price(Item.TRANSFER, DAY0, Decimal(5_000), hours=(22, 23))
    repo.add_price("x1", band, "ops")
    with pytest.raises(InputError, match="forward only"):
        repo.add_price("x1", Price(Item.DISPLACED, DAY0 - timedelta(1), Decimal(1)), "ops")
    repo.add_factor("x1", Factor(2026, Decimal("0.0004"), "test"))
    with pytest.raises(InputError, match="has a factor for 2026"):
        repo.add_factor("x1", Factor(2026, Decimal("0.0005")))
    ex = repo.exchange("x1")
    assert ex.prices[0].vnd_per_unit == Decimal("17000.5") and ex.prices[2] == band
    assert ex.factors == (Factor(2026, Decimal("0.0004"), "test"),)
    assert repo.metered() == []  # agreed, not yet operating
    repo.move("x1", Stage.OPERATING, "ops", now_ms=5_000)
    assert [e.id for e in repo.metered("p1")] == ["x1"]


def _register(times: list[int], skip: set[int]) -> list[Reading]:
    """10 m3/h on the reuse line; the receiver's register counts 9.8 m3 an hour of it."""
    return [
        Reading("p1", "wwtp", "reuse-line", "water.treated_effluent", Direction.OUT, ts, 10.0)
        for ts in times
        if ts not in skip
    ] + [
        Reading(
            "p1", "det", "det-reuse-in", "water.treated_effluent", Direction.IN, ts, 1000 + 9.8 * i
        )
        for i, ts in enumerate(times)
    ]


def test_late_and_duplicate_readings_change_exactly_the_days_they_touch_once(
    database: Database, env_store: Store
) -> None:
    store = env_store
    repo = ExchangeRepository(database)
    agreed(repo)
    for price in (
        Price(Item.DISPLACED, DAY0, Decimal(17_000)),
        Price(Item.AVOIDED_DISPOSAL, DAY0, Decimal(9_000)),
        Price(Item.TRANSFER, DAY0, Decimal(5_000)),
        Price(Item.TREATMENT, DAY0, Decimal(2_500), Side.SUPPLIER),
    ):
        repo.add_price("x1", price, "ops")
    repo.add_factor("x1", Factor(2026, Decimal("0.0004")))
    repo.move("x1", Stage.OPERATING, "ops", now_ms=5_000)
    start_ms = day_ms_of(DAY0, OFFSET)
    values = [start_ms + h * HOUR_MS for h in range(3 * 24 + 1)]
    day2 = start_ms + DAY_MS
    late = {day2 + h * HOUR_MS for h in range(10, 14)}  # 4 readings on the second day, late
    store.write(WriteBatch(tuple(_register(values, late))))
    worker = RollupWorker(store, REGISTRY)
    end = DAY0 + timedelta(days=3)

    def roll_and_refresh() -> list[tuple[date, float, int]]:
        worker.rebuild(start_ms, start_ms + 3 * DAY_MS)
        done = refresh(repo, store, store, REGISTRY, DAY0, end, now_ms=9_000)
        return [(r.day, r.quantity, r.park_vnd) for r in done.changed]

    first = roll_and_refresh()
    assert [d for d, _, _ in first] == [DAY0, DAY0 + timedelta(1), DAY0 + timedelta(2)]
    rows = {r.day: r for r in repo.savings(exchange_id="x1")}
    full = rows[DAY0]
    # 24 h x 10 m3 = 240 m3; park 240 x (17,000 + 9,000 - 2,500) = 5,640,000
    # supplier 240 x (9,000 + 5,000 - 2,500) = 2,760,000; receiver 240 x (17,000 - 5,000)
    assert (full.quantity, full.park_vnd, full.supplier_vnd, full.receiver_vnd) == (
        240.0,
        5_640_000,
        2_760_000,
        2_880_000,
    )
    assert full.loss == pytest.approx(240 * 0.02) and not full.disagrees
    gap = rows[DAY0 + timedelta(1)]
    # no flow reading from 09:00 to 14:00: those 5 hours are a gap, not estimated
    assert (gap.hours_measured, gap.quantity, gap.park_vnd) == (19, 190.0, 190 * 23_500)
    assert gap.check_quantity == pytest.approx(19 * 9.8)  # compared over the same hours
    # the same readings again: no rollup changes, so no day does
    store.write(WriteBatch(tuple(_register(values, late))))
    assert roll_and_refresh() == []
    # the late readings arrive: the second day, and only it, is recomputed
    late_batch = [
        r for r in _register(values, set()) if r.ts_ms in late and r.meter == "reuse-line"
    ]
    store.write(WriteBatch(tuple(late_batch)))
    assert roll_and_refresh() == [(DAY0 + timedelta(1), 240.0, 5_640_000)]
    store.write(WriteBatch(tuple(late_batch)))  # and once more: nothing twice
    assert roll_and_refresh() == []
    points = store.savings_points("p1", start_ms, start_ms + 3 * DAY_MS)
    assert [(p.day_ms, p.park_vnd, p.coverage) for p in points] == [
        (start_ms + i * DAY_MS, 5_640_000, 1.0) for i in range(3)
    ]
    month = sum(r.park_vnd for r in repo.savings(park="p1", start=DAY0, end=end))
    assert month == 3 * 5_640_000
