"""The plain ``flow_hour``/``flow_day`` points InfluxDB keeps beside the packed day rollups,
read back from a real InfluxDB: they must say exactly what the packed rows say, also after a
day is rewritten with fewer hours, a meter moves to another resource, or a rebuild."""

from __future__ import annotations

import math

import pandas as pd

from parkflow.model import Direction, MeterKey
from parkflow.store import InfluxStore
from parkflow.store.influx.flow_lines import FLOW_DAY, FLOW_HOUR
from parkflow.store.rollup_rows import DayRollup
from parkflow.timeunits import DAY_MS, HOUR_MS
from service.rollups import RollupWorker
from tests.support.simulated import fill_with_simulated_park

DAY0 = 1_716_914_800_000 - 7 * HOUR_MS  # 2024-05-28 local midnight at +07:00
Tags = tuple[str, str, str, str, str]
NAN = math.nan


def flows(
    store: InfluxStore, measurement: str, field: str = "quantity"
) -> dict[tuple[Tags, int], float]:
    """Every point of a flow measurement: (park, tenant, meter, resource, direction), time."""
    tags = ("park", "tenant", "meter", "resource", "direction")
    q = f'SELECT "{field}" FROM "{measurement}" GROUP BY ' + ", ".join(f'"{t}"' for t in tags)
    out: dict[tuple[Tags, int], float] = {}
    for s in store._http.select(q):
        p, t, m, r, d = (s["tags"][name] for name in tags)
        for ts, value in s["values"]:
            out[((p, t, m, r, d), int(ts))] = float(value)
    return out


Points = dict[tuple[Tags, int], float]


def expected(rows: list[DayRollup]) -> tuple[Points, Points, Points]:
    hours: Points = {}
    totals: Points = {}
    coverage: Points = {}
    for r in rows:
        tags = (r.park, r.tenant, r.meter, r.resource, str(r.direction))
        totals[(tags, r.day_ms)] = r.total
        coverage[(tags, r.day_ms)] = r.coverage
        for i, q in enumerate(r.hours):
            if not math.isnan(q):
                hours[(tags, r.day_ms + i * HOUR_MS)] = q
    return hours, totals, coverage


def assert_flows_match(store: InfluxStore, rows: list[DayRollup]) -> None:
    hours, totals, coverage = expected(rows)
    assert flows(store, FLOW_HOUR) == hours
    assert flows(store, FLOW_DAY) == totals
    assert flows(store, FLOW_DAY, "coverage") == coverage


def day(
    meter: str, n: int, hours: list[float], resource: str = "water", tenant: str = "t1"
) -> DayRollup:
    key = MeterKey("p1", tenant, meter)
    return DayRollup.build(key, resource, Direction.OUT, DAY0 + n * DAY_MS, hours)


def test_plain_points_follow_the_packed_rows_through_rewrites(influx_store: InfluxStore) -> None:
    full = [i * 1.5 + 0.25 for i in range(24)]
    gappy = [NAN] * 6 + [2.0, 0.0, 3.5] + [NAN] * 15
    odd = day("m 1,x=y'z\"", 1, gappy, tenant="t/(1) ä")  # escaped in lines and in DELETEs
    rows = [day("m1", 0, full), day("m1", 1, gappy), day("m2", 0, [NAN] * 24), odd]
    influx_store.write_rollups(rows)
    assert_flows_match(influx_store, rows)
    assert len(flows(influx_store, FLOW_HOUR)) == 24 + 3 + 3  # none for an hour without data

    fewer = day("m1", 0, [NAN] * 12 + full[12:])  # the morning lost its data
    moved = day("m1", 1, gappy, resource="steam")  # the registry moved the meter
    odd_fewer = day(odd.meter, 1, [NAN] * 7 + gappy[7:], tenant=odd.tenant)
    influx_store.write_rollups([fewer, moved, odd_fewer])
    now = [fewer, moved, rows[2], odd_fewer]
    assert_flows_match(influx_store, now)
    # the packed rows say the same
    packed = influx_store.get_rollups([(r.key, r.day_ms) for r in now])
    assert sorted(expected(packed)[0].items()) == sorted(expected(now)[0].items())


def test_rebuild_backfills_the_plain_points_of_existing_rollups(influx_store: InfluxStore) -> None:
    end = int(pd.Timestamp("2026-11-20T05:00:00Z").value // 1_000_000)
    registry = fill_with_simulated_park(influx_store, end, 3)
    packed = influx_store.day_rollups(None, end - 5 * DAY_MS, end + DAY_MS)
    assert len(packed) > 60
    rows = influx_store.get_rollups(
        [
            (MeterKey(p, t, m), int(d))
            for p, t, m, d in packed[["park", "tenant", "meter", "day"]].itertuples(index=False)
        ]
    )
    assert_flows_match(influx_store, rows)
    # rollups written before the plain points existed: gone, then rebuilt
    influx_store._http.query_text(f'DROP MEASUREMENT "{FLOW_HOUR}"; DROP MEASUREMENT "{FLOW_DAY}"')
    assert flows(influx_store, FLOW_DAY) == {}
    stats = RollupWorker(influx_store, registry, margin_ms=0).rebuild(end - 4 * DAY_MS, end)
    assert stats.rows_changed == 0 and stats.rows_written == len(rows)
    assert_flows_match(influx_store, rows)
