"""Rollups: the pure maths by hand, then the worker against SQLite and a real InfluxDB.

Every worker test ends with the same check: the day rows in the store equal a from-scratch
computation over every reading the store holds (``assert_matches_scratch``); that shared
check, and the backends it runs on, are why these stay in one file.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkflow.model import Direction, MeterKey, MeterKind, Reading, WriteBatch
from parkflow.registry import Registry, parse_registry
from parkflow.store import InfluxStore, MemoryStore, ReadingQuery, SqliteStore, Store
from parkflow.store.rollup_rows import DayRollup
from parkflow.timeunits import DAY_MS, HOUR_MS
from service.rollups.compute import (
    MeterMaths,
    from_scratch,
    hour_quantities,
    local_day,
    rollups_for_range,
    standard_offset_ms,
)
from service.rollups.worker import WATERMARK, RollupWorker
from tests.support.influx import InfluxServer
from tests.support.registries import build, changed

NAN = math.nan
MIN = 60_000
VN = 7 * HOUR_MS  # Asia/Ho_Chi_Minh, no DST
# Local midnight 2024-06-01 in Ho Chi Minh City is 2024-05-31 17:00 UTC.
D = int(datetime(2024, 5, 31, 17, tzinfo=UTC).timestamp() * 1000)
KEY = MeterKey("p1", "t1", "m1")
MARGIN = 30_000

REGISTRY_YAML = """
version: 1
parks:
  - id: p1
    name: Park one
    timezone: Asia/Ho_Chi_Minh
    tenants:
      - id: t1
        name: Tenant one
        meters:
          - {id: cum, resource: water.potable, direction: in, unit: m3, kind: cumulative,
             rollover: 1000}
          - {id: dlt, resource: waste.sludge, direction: out, unit: t, kind: delta}
          - {id: trap, resource: energy.electricity, direction: in, unit: kW, kind: rate}
          - {id: prev, resource: energy.steam, direction: out, unit: kW, kind: rate,
             integration: previous, max_gap_s: 5400}
  - id: p2
    name: Park two
    timezone: Asia/Kolkata
    tenants:
      - id: t9
        name: Tenant nine
        meters:
          - {id: k-cum, resource: water.potable, direction: in, unit: m3, kind: cumulative}
"""
REGISTRY = parse_registry(REGISTRY_YAML)
METERS = {rm.meter.id: rm for rm in REGISTRY.meters()}


def at(hours: float = 0, minutes: float = 0, day: int = 0) -> int:
    """Epoch ms of local (Ho Chi Minh) time ``hours:minutes`` on 2024-06-01 + ``day``."""
    return D + day * DAY_MS + round(hours * HOUR_MS + minutes * MIN)


def hours_of(rows: list[DayRollup], day_ms: int) -> list[float]:
    [row] = [r for r in rows if r.day_ms == day_ms]
    return list(row.hours)


def expect_hours(got: list[float], want: dict[int, float]) -> None:
    for i, value in enumerate(got):
        if i in want:
            assert value == pytest.approx(want[i], abs=1e-12), f"h{i:02d}"
        else:
            assert math.isnan(value), f"h{i:02d} should be NaN, is {value}"


def rows(maths: MeterMaths, points: list[tuple[int, float]], offset: int = VN) -> list[DayRollup]:
    return from_scratch(maths, KEY, "water.potable", Direction.IN, points, offset)


# -- pure maths ------------------------------------------------------------------------------


def test_standard_offsets_ignore_dst() -> None:
    assert standard_offset_ms("Asia/Ho_Chi_Minh") == 7 * HOUR_MS
    assert standard_offset_ms("Europe/Berlin") == HOUR_MS  # +01:00 even in summer
    assert standard_offset_ms("Asia/Kolkata") == 5 * HOUR_MS + 30 * MIN
    assert local_day(at(0), VN) == D
    assert local_day(at(0) - 1, VN) == D - DAY_MS
    assert local_day(at(23, 59), VN) == D


def test_cumulative_with_reset_and_rollover() -> None:
    maths = MeterMaths(MeterKind.CUMULATIVE, rollover=1000)
    points = [
        (at(0), 100.0),
        (at(0, 30), 110.0),
        (at(1), 130.0),  # (0:30, 1:00] ends on the boundary: hour 0
        (at(1, 30), 5.0),  # a drop no wrap explains: reset, counted 5 from zero
        (at(2), 15.0),
        (at(3), 990.0),
        (at(3, 30), 10.0),  # wrapped at 1000: 20
    ]
    [day] = rows(maths, points)
    expect_hours(list(day.hours), {0: 30.0, 1: 15.0, 2: 975.0, 3: 20.0})
    assert day.total == pytest.approx(1040.0)
    assert day.coverage == pytest.approx(4 / 24)
    assert day.day_ms == D


def test_delta_spreads_over_the_gap_and_first_reading_is_instantaneous() -> None:
    maths = MeterMaths(MeterKind.DELTA)
    points = [(at(0, 15), 3.0), (at(0, 45), 4.0), (at(2, 15), 6.0)]
    [day] = rows(maths, points)
    # (0:45, 2:15] carries 6 over 90 minutes: 1 in hour 0, 4 in hour 1, 1 in hour 2.
    expect_hours(list(day.hours), {0: 3.0 + 4.0 + 1.0, 1: 4.0, 2: 1.0})


def test_rate_trapezoid_previous_and_gap_is_no_data() -> None:
    points = [(at(0), 10.0), (at(0, 30), 20.0), (at(1), 20.0), (at(3), 50.0)]
    [trap] = rows(MeterMaths(MeterKind.RATE, integration="trapezoid"), points)
    # 10->20 kW for half an hour, then 20 kW for half an hour; 1:00-3:00 is a gap > 1 h.
    expect_hours(list(trap.hours), {0: 7.5 + 10.0})
    [prev] = rows(MeterMaths(MeterKind.RATE, integration="previous"), points)
    expect_hours(list(prev.hours), {0: 5.0 + 10.0})
    [long_gap] = rows(
        MeterMaths(MeterKind.RATE, integration="previous", max_gap_ms=2 * HOUR_MS), points
    )
    expect_hours(list(long_gap.hours), {0: 15.0, 1: 20.0, 2: 20.0})


def test_day_boundary_in_ho_chi_minh_time() -> None:
    maths = MeterMaths(MeterKind.CUMULATIVE)
    points = [(at(23, 45, day=-1), 100.0), (at(0), 110.0), (at(0, 15), 115.0)]
    before_day, day = rows(maths, points)
    # 23:45 -> 00:00 ends on local midnight: the previous day's last hour.
    assert (before_day.day_ms, day.day_ms) == (D - DAY_MS, D)
    assert datetime.fromtimestamp(D / 1000, UTC).hour == 17  # 00:00 +07:00
    expect_hours(list(before_day.hours), {23: 10.0})
    expect_hours(list(day.hours), {0: 5.0})


def test_half_hour_offset_aligns_hours_to_local_time() -> None:
    off = standard_offset_ms("Asia/Kolkata")
    midnight = local_day(D, off)
    maths = MeterMaths(MeterKind.CUMULATIVE)
    points = [(midnight - 30 * MIN, 0.0), (midnight + 30 * MIN, 60.0)]
    before_day, day = rows(maths, points, off)
    assert day.day_ms == midnight
    expect_hours(list(before_day.hours), {23: 30.0})
    expect_hours(list(day.hours), {0: 30.0})


def test_range_with_neighbours_equals_the_whole_series() -> None:
    maths = MeterMaths(MeterKind.CUMULATIVE)
    points = [(at(h, 20 * (h % 3)), float(h * h)) for h in range(-20, 50)]
    scratch = {r.day_ms: r for r in rows(maths, points)}
    inside = [p for p in points if D <= p[0] < D + DAY_MS]
    before = max(p for p in points if p[0] < D)
    after = min(p for p in points if p[0] >= D + DAY_MS)
    [day] = rollups_for_range(
        maths, KEY, "water.potable", Direction.IN, before, inside, after, D, D + DAY_MS, VN
    )
    assert day.same_as(scratch[D])
    assert hour_quantities(maths, before, inside, after, D + HOUR_MS, D + 2 * HOUR_MS, VN) == {
        D + HOUR_MS: scratch[D].hours[1]
    }


# -- the worker, against SQLite and InfluxDB -------------------------------------------------


class Clock:
    """The stores' marker clock, moved by the test."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def tick(self, ms: int = 1000) -> int:
        self.now += ms
        return self.now


StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite", "influx"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Clock, StoreFactory]]:
    """A clock and a factory of store instances that all open the same database."""
    clock = Clock(at(12, day=3))
    opened: list[Store] = []
    if request.param == "sqlite":

        def make() -> Store:
            opened.append(SqliteStore(tmp_path / "parkflow.db", clock=clock))
            return opened[-1]

    else:
        server: InfluxServer = request.getfixturevalue("influx_server")
        database = f"r_{uuid.uuid4().hex[:12]}"

        def make() -> Store:
            opened.append(InfluxStore(server.url, database, create_database=True, clock=clock))
            return opened[-1]

    yield clock, make
    for s in opened:
        s.close()
    if request.param == "influx":
        server.query(f'DROP DATABASE "{database}"')


def reading(meter: str, ts: int, value: float) -> Reading:
    rm = METERS[meter]
    return Reading(
        rm.park.id, rm.tenant.id, meter, rm.meter.resource, rm.meter.direction, ts, value
    )


def scratch_rows(
    store: Store, registry: Registry = REGISTRY
) -> dict[tuple[MeterKey, int], DayRollup]:
    out: dict[tuple[MeterKey, int], DayRollup] = {}
    for rm in registry.meters():
        k = rm.key
        points = [
            (r.ts_ms, r.value) for r in store.readings(ReadingQuery(k.park, k.tenant, k.meter))
        ]
        off = standard_offset_ms(rm.park.timezone)
        for row in from_scratch(
            MeterMaths.of(rm.meter), k, rm.meter.resource, rm.meter.direction, points, off
        ):
            out[(k, row.day_ms)] = row
    return out


def stored_rows(store: Store) -> dict[tuple[MeterKey, int], DayRollup]:
    frame = store.day_rollups(None, -(2**50), 2**50)
    out: dict[tuple[MeterKey, int], DayRollup] = {}
    hour_cols = [f"h{i:02d}" for i in range(24)]
    for rec in frame.to_dict("records"):
        key = MeterKey(rec["park"], rec["tenant"], rec["meter"])
        out[(key, int(rec["day"]))] = DayRollup(
            key.park,
            key.tenant,
            key.meter,
            rec["resource"],
            Direction(rec["direction"]),
            int(rec["day"]),
            tuple(float(rec[c]) for c in hour_cols),
            float(rec["total"]),
            float(rec["coverage"]),
        )
    return out


def assert_matches_scratch(store: Store) -> None:
    want = scratch_rows(store)
    got = stored_rows(store)
    assert sorted(got, key=str) == sorted(want, key=str)
    for k, row in want.items():
        assert got[k].same_as(row), f"{k}: stored {got[k]} != from scratch {row}"


def run(worker: RollupWorker, clock: Clock) -> int:
    """Run a cycle that takes every marker written so far; returns rows written."""
    return worker.run_once(clock() + MARGIN).rows_written


def series(meter: str, start: int, end: int, step: int, seed: int = 0) -> list[Reading]:
    """Plausible readings: a growing register, positive deltas or a wavy rate."""
    rng = random.Random(f"{meter}{seed}")
    out, total = [], 0.0
    for ts in range(start, end, step):
        total += rng.uniform(0, 5)
        value = {
            "cum": total % 1000,
            "k-cum": total,
            "dlt": rng.uniform(0, 2),
            "trap": 50 + 40 * math.sin(ts / HOUR_MS),
            "prev": rng.uniform(0, 100),
        }[meter]
        out.append(reading(meter, ts, value))
    return out


ALL_METERS = ("cum", "dlt", "trap", "prev", "k-cum")


def test_worker_in_order(backend: tuple[Clock, StoreFactory]) -> None:
    clock, make = backend
    store = make()
    worker = RollupWorker(store, REGISTRY, margin_ms=MARGIN)
    for day in range(2):
        for hour in range(0, 24, 6):
            start = at(hour, day=day)
            batch = [r for m in ALL_METERS for r in series(m, start, start + 6 * HOUR_MS, 10 * MIN)]
            store.write(WriteBatch(readings=tuple(batch)))
            clock.tick()
            run(worker, clock)
    assert_matches_scratch(store)
    assert len(stored_rows(store)) >= 2 * len(ALL_METERS)


def test_late_reading_corrects_its_bucket_and_the_previous_day(
    backend: tuple[Clock, StoreFactory],
) -> None:
    clock, make = backend
    store = make()
    worker = RollupWorker(store, REGISTRY, margin_ms=MARGIN)
    # Hourly cumulative readings over two days, but the one at local midnight is late.
    written = [reading("cum", at(h, day=-1), 10.0 * h) for h in range(48) if h != 24]
    store.write(WriteBatch(readings=tuple(written)))
    clock.tick()
    run(worker, clock)
    assert_matches_scratch(store)
    key = METERS["cum"].key
    before = stored_rows(store)
    # Without the midnight reading, (23:00, 01:00] spreads 20 over two hours.
    assert before[(key, D - DAY_MS)].hours[23] == pytest.approx(10.0)

    clock.tick(60_000)
    store.write(WriteBatch(readings=(reading("cum", at(0), 235.0),)))  # late and jumpy
    clock.tick()
    run(worker, clock)
    assert_matches_scratch(store)
    after = stored_rows(store)
    assert after[(key, D - DAY_MS)].hours[23] == pytest.approx(5.0)  # 230 -> 235
    assert after[(key, D)].hours[0] == pytest.approx(15.0)  # 235 -> 250
    assert after[(key, D)].hours[1:23] == before[(key, D)].hours[1:23]  # 23: no data


def test_sparse_meter_gap_spreads_over_days(backend: tuple[Clock, StoreFactory]) -> None:
    clock, make = backend
    store = make()
    worker = RollupWorker(store, REGISTRY, margin_ms=MARGIN)
    store.write(WriteBatch(readings=(reading("cum", at(12, day=-2), 0.0),)))
    clock.tick()
    run(worker, clock)
    store.write(WriteBatch(readings=(reading("cum", at(12, day=2), 96.0),)))  # 4 days later
    clock.tick()
    run(worker, clock)
    assert_matches_scratch(store)
    key = METERS["cum"].key
    got = stored_rows(store)
    assert [d for k, d in got if k == key] == [D + i * DAY_MS for i in range(-2, 3)]
    assert got[(key, D)].total == pytest.approx(24.0)
    # And a reading inside the gap, written late, splits it again.
    store.write(WriteBatch(readings=(reading("cum", at(12), 90.0),)))
    clock.tick()
    run(worker, clock)
    assert_matches_scratch(store)
    assert stored_rows(store)[(key, D - DAY_MS)].total == pytest.approx(45.0)


def test_out_of_order_and_duplicate_writes(backend: tuple[Clock, StoreFactory]) -> None:
    clock, make = backend
    store = make()
    worker = RollupWorker(store, REGISTRY, margin_ms=MARGIN)
    readings = [r for m in ALL_METERS for r in series(m, at(-3), at(30), 7 * MIN, seed=1)]
    rng = random.Random(7)
    rng.shuffle(readings)
    batches = [readings[i : i + 40] for i in range(0, len(readings), 40)]
    batches += rng.sample(batches, 5)  # redelivered
    for i, batch in enumerate(batches):
        store.write(WriteBatch(readings=tuple(batch)))
        clock.tick()
        if i % 4 == 0:
            run(worker, clock)
    run(worker, clock)
    assert_matches_scratch(store)


def test_two_ingestors_interleaved(backend: tuple[Clock, StoreFactory]) -> None:
    clock, make = backend
    ingestor_a, ingestor_b, service = make(), make(), make()
    worker = RollupWorker(service, REGISTRY, margin_ms=MARGIN)
    readings = [r for m in ALL_METERS for r in series(m, at(20, day=-1), at(6), 5 * MIN)]
    for i in range(0, len(readings), 25):
        (ingestor_a if i % 50 else ingestor_b).write(
            WriteBatch(readings=tuple(readings[i : i + 25]))
        )
        clock.tick(300)
        if i % 100 == 0:
            run(worker, clock)
    run(worker, clock)
    assert_matches_scratch(service)


def test_restarted_worker_continues_from_the_watermark(
    backend: tuple[Clock, StoreFactory],
) -> None:
    clock, make = backend
    store = make()
    first = RollupWorker(store, REGISTRY, margin_ms=MARGIN)
    store.write(WriteBatch(readings=tuple(series("cum", at(0), at(6), 10 * MIN))))
    clock.tick(2 * MARGIN)  # so that the next cycle's margin does not reach back to it
    stats = first.run_once(clock() + MARGIN)
    assert stats.changes == 6 and stats.watermark == clock()
    # Written while no worker runs: the next one must see it, and only it.
    clock.tick(120_000)
    store.write(WriteBatch(readings=tuple(series("cum", at(6), at(8), 10 * MIN, seed=2))))
    clock.tick()
    restarted_store = make()
    assert restarted_store.get_checkpoint(WATERMARK) == stats.watermark
    second = RollupWorker(restarted_store, REGISTRY, margin_ms=MARGIN)
    again = second.run_once(clock() + MARGIN)
    assert again.changes == 2
    assert_matches_scratch(restarted_store)
    for _ in range(2):  # the first may see them again: they are within its margin
        clock.tick(2 * MARGIN)
        last = second.run_once(clock() + MARGIN)
    assert last.changes == 0


def test_in_flight_write_within_the_margin_is_not_missed(
    backend: tuple[Clock, StoreFactory],
) -> None:
    clock, make = backend
    store = make()
    worker = RollupWorker(store, REGISTRY, margin_ms=MARGIN)
    store.write(WriteBatch(readings=(reading("dlt", at(1), 1.0),)))
    worker.run_once(clock() + MARGIN)
    # A write stamped 10 s before the last cycle's cut-off but visible only now.
    clock.now -= 10_000
    store.write(WriteBatch(readings=(reading("dlt", at(2), 2.0),)))
    clock.now += 20_000
    worker.run_once(clock() + MARGIN)
    assert_matches_scratch(store)


def test_unknown_meters_are_skipped_with_a_log_line(
    backend: tuple[Clock, StoreFactory], caplog: pytest.LogCaptureFixture
) -> None:
    clock, make = backend
    store = make()
    stranger = Reading("p1", "t1", "ghost", "water.potable", Direction.IN, at(1), 5.0)
    store.write(WriteBatch(readings=(stranger, reading("dlt", at(1), 1.0))))
    clock.tick()
    with caplog.at_level(logging.WARNING, logger="parkflow.rollups"):
        stats = RollupWorker(store, REGISTRY, margin_ms=MARGIN).run_once(clock() + MARGIN)
    assert stats.unknown_meters == 1 and stats.meters == 1
    assert "p1/t1/ghost" in caplog.text
    assert_matches_scratch(store)


def test_rebuild_after_a_registry_change(backend: tuple[Clock, StoreFactory]) -> None:
    clock, make = backend
    store = make()
    readings = [r for m in ALL_METERS for r in series(m, at(-5), at(40), 15 * MIN)]
    store.write(WriteBatch(readings=tuple(readings)))
    clock.tick()
    # Rolled up while the registry said "trapezoid": every row of that meter is now stale.
    parks = yaml.safe_load(REGISTRY_YAML)["parks"]
    stale = build(changed(parks[0], "prev", integration="trapezoid"), parks[1])
    RollupWorker(store, stale, margin_ms=MARGIN).run_once(clock() + MARGIN)
    prev = METERS["prev"].key
    assert not stored_rows(store)[(prev, D)].same_as(scratch_rows(store)[(prev, D)])
    stats = RollupWorker(store, REGISTRY, margin_ms=MARGIN).rebuild(at(-5), at(40))
    assert stats.rows_changed == 3  # the three days of "prev"; the rest was already right
    assert stats.rows_written == len(stored_rows(store))  # all rewritten (derived points too)
    assert_matches_scratch(store)


# -- the property ----------------------------------------------------------------------------

KINDS = ("cum", "dlt", "trap", "prev", "k-cum")


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Reading], list[list[int]]]:
    """A few meters' readings over three days (minute grid, often on hour boundaries), split
    into batches that are written in a random order, some twice."""
    readings: list[Reading] = []
    for meter in draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True)):
        times = draw(
            st.lists(
                st.one_of(
                    st.integers(-30, 50).map(lambda h: at(h)),
                    st.integers(-30 * 60, 50 * 60).map(lambda m: at(minutes=m)),
                ),
                min_size=1,
                max_size=25,
                unique=True,
            )
        )
        for ts in times:
            value = draw(st.floats(0, 2000, allow_nan=False).map(lambda v: round(v, 3)))
            readings.append(reading(meter, ts, value))
    order = draw(st.permutations(range(len(readings))))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(readings) - 1)), max_size=6)))
    batches: list[list[int]] = []
    last = 0
    for cut in [*cuts, len(readings)]:
        if cut > last:
            batches.append(list(order[last:cut]))
            last = cut
    repeats = draw(st.lists(st.sampled_from(batches), max_size=2))
    return readings, batches + repeats


def check_property(store: Store, clock: Clock, case: tuple[list[Reading], list[list[int]]]) -> None:
    readings, batches = case
    worker = RollupWorker(store, REGISTRY, margin_ms=MARGIN)
    for batch in batches:
        store.write(WriteBatch(readings=tuple(readings[i] for i in batch)))
        clock.tick()
        run(worker, clock)
    assert_matches_scratch(store)


@settings(max_examples=150, deadline=None)
@given(case=histories())
def test_property_random_batches_memory(case: tuple[list[Reading], list[list[int]]]) -> None:
    clock = Clock(at(12, day=3))
    check_property(MemoryStore(clock=clock), clock, case)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=histories())
def test_property_random_batches_sqlite(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[list[Reading], list[list[int]]]
) -> None:
    clock = Clock(at(12, day=3))
    store = SqliteStore(tmp_path_factory.mktemp("prop") / "p.db", clock=clock)
    try:
        check_property(store, clock, case)
    finally:
        store.close()


def test_extreme_stored_values_are_no_data_and_stop_no_other_meter(
    backend: tuple[Clock, StoreFactory],
) -> None:
    """Two finite register values can differ by more than a float holds (-1.7e308 then
    1.7e308): that step is no data, never an infinity that stops the park's rollups."""
    clock, make = backend
    store = make()
    extreme = [
        reading("k-cum", at(1), 10.0),
        reading("k-cum", at(1) + 10 * MIN, -1.7e308),
        reading("k-cum", at(1) + 20 * MIN, 1.7e308),
        reading("k-cum", at(1) + 30 * MIN, 1.7e308),
        reading("k-cum", at(2), 12.0),  # a reset from the absurd register: 12 from zero
        reading("k-cum", at(2) + 10 * MIN, 20.0),
    ]
    store.write(WriteBatch(readings=(*extreme, *series("dlt", at(1), at(3), 10 * MIN))))
    clock.tick()
    run(RollupWorker(store, REGISTRY, margin_ms=MARGIN), clock)
    assert_matches_scratch(store)
    rows = stored_rows(store)
    kcum = [r for (k, _), r in rows.items() if k.meter == "k-cum"]
    assert kcum and all(math.isfinite(r.total) for r in kcum)
    assert all(math.isnan(h) or abs(h) <= 1e12 for r in kcum for h in r.hours)
    assert math.fsum(r.total for r in kcum) == pytest.approx(12.0 + 8.0)
    assert any(k.meter == "dlt" for k, _ in rows)


def test_a_declared_meter_replacement_through_the_worker(
    backend: tuple[Clock, StoreFactory],
) -> None:
    """The registry says the water meter was replaced at 05:30 local: its new register started
    at 1000 and the old one ended at 153. The hour holding it counts 3 + 2, not a reset's 1002,
    however the readings arrive."""
    doc = yaml.safe_load(REGISTRY_YAML)
    [cum] = [m for m in doc["parks"][0]["tenants"][0]["meters"] if m["id"] == "cum"]
    cum.pop("rollover")
    swap = datetime.fromtimestamp(at(5, 30) / 1000, UTC).isoformat()
    cum["replaced"] = [{"at": swap, "initial_reading": 1000, "final_reading": 153}]
    registry = parse_registry(yaml.safe_dump(doc))
    key = METERS["cum"].key
    old = [reading("cum", at(h), 100.0 + 10 * h) for h in range(6)]  # 100 .. 150 at 05:00
    new = [reading("cum", at(h), 1002.0 + 10 * (h - 6)) for h in range(6, 10)]  # 1002 at 06:00
    clock, make = backend
    store = make()
    worker = RollupWorker(store, registry, margin_ms=MARGIN)
    for batch in (new, old):  # the new register's readings first: order must not matter
        store.write(WriteBatch(readings=tuple(batch)))
        clock.tick()
        run(worker, clock)
    got = stored_rows(store)
    assert got == {k: v for k, v in got.items() if k[0] == key}
    expect_hours(list(got[(key, D)].hours), {h: 10.0 for h in range(9)} | {5: 5.0})
    want = scratch_rows(store, registry)
    assert sorted(got, key=str) == sorted(want, key=str)
    assert all(got[k].same_as(row) for k, row in want.items())
