"""The overview's flows and a meter's daily series from a day-rollups frame, and which ranked
rows exclude each other. Pure."""

from __future__ import annotations

import math

from parkflow.model import Direction, MeterKey
from parkflow.store.rollup_rows import DayRollup, rollup_frame
from parkflow.timeunits import DAY_MS
from service.web import flows
from service.web.pages import alternatives

D0 = 1_795_107_600_000  # a park-local midnight


def _row(
    tenant: str, meter: str, resource: str, direction: str, day: int, per_hour: float
) -> DayRollup:
    hours = [per_hour] * 24 if per_hour >= 0 else [math.nan] * 24
    return DayRollup.build(
        MeterKey("p", tenant, meter), resource, Direction(direction), D0 + day * DAY_MS, hours
    )


FRAME = rollup_frame(
    [
        _row("a", "a-water", "water.potable", "in", 0, 10.0),
        _row("a", "a-water", "water.potable", "in", 1, 20.0),
        _row("a", "a-water2", "water.potable", "in", 0, 1.0),
        _row("b", "b-water", "water.potable", "in", 0, 5.0),
        _row("b", "b-eff", "water.treated_effluent", "out", 0, 2.0),
        _row("b", "b-eff", "water.treated_effluent", "out", 1, -1.0),  # no data that day
    ]
)
UNITS = {
    ("a", "a-water"): "m3",
    ("a", "a-water2"): "m3",
    ("b", "b-water"): "m3",
    ("b", "b-eff"): "m3",
}


def test_flows_add_a_tenants_meters_by_resource_and_direction() -> None:
    rows = flows.flows(FRAME, UNITS, days=2)
    got = {(f.resource, f.tenant, f.direction): f for f in rows}
    a = got[("water.potable", "a", "in")]
    assert a.total == 24 * (10 + 20 + 1) and a.per_day == a.total / 2
    assert a.coverage == (1 + 1 + 1) / (2 * 2)  # three meter-days of four
    assert got[("water.treated_effluent", "b", "out")].coverage == 0.5
    # largest first within a resource
    potable = flows.by_resource(rows)[("water.potable", "m3")]
    assert [f.tenant for f in potable] == ["a", "b"]


def test_coverage_counts_meters_without_any_row_as_no_data() -> None:
    assert flows.coverage(FRAME, meters=4, days=2) == (5 * 1.0 + 0.0) / 8
    assert flows.coverage(FRAME.iloc[0:0], meters=4, days=2) == 0.0
    assert flows.coverage(FRAME, meters=0, days=2) is None


def test_a_meters_days_leave_a_missing_day_missing() -> None:
    starts = flows.day_starts(FRAME, D0 - 3600_000, D0 + 3 * DAY_MS, DAY_MS)
    assert starts == [D0, D0 + DAY_MS, D0 + 2 * DAY_MS]
    assert flows.daily(FRAME, "b", "b-eff", starts) == [48.0, None, None]
    assert flows.daily(FRAME, "a", "a-water", starts) == [240.0, 480.0, None]
    assert flows.daily(FRAME, "b", "a-water", starts) == [None, None, None]  # not b's meter


def test_rows_offering_the_same_surplus_exclude_each_other() -> None:
    rows = [
        {"id": "s1>x", "surplus_id": "s1", "rank": 1},
        {"id": "s1>y", "surplus_id": "s1", "rank": 3},
        {"id": "s1>z", "surplus_id": "s1", "rank": 4},
        {"id": "s2>x", "surplus_id": "s2", "rank": 2},
    ]
    assert alternatives(rows) == {"s1>x": [3, 4], "s1>y": [1, 4], "s1>z": [1, 3], "s2>x": []}
