"""The overview's flows and a meter's daily series from a day-rollups frame, the period of
complete days, and which ranked rows compete. Pure."""

from __future__ import annotations

import math

from parkflow.model import Direction, MeterKey
from parkflow.store.rollup_rows import DayRollup, rollup_frame
from parkflow.timeunits import DAY_MS
from service.web import flows
from service.web.pages import alternatives, complete_days

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


def test_rows_offering_the_same_surplus_compete() -> None:
    rows = [
        {"id": "s1>x", "surplus_id": "s1", "rank": 1},
        {"id": "s1>y", "surplus_id": "s1", "rank": 3},
        {"id": "s1>z", "surplus_id": "s1", "rank": 4},
        {"id": "s2>x", "surplus_id": "s2", "rank": 2},
    ]
    assert alternatives(rows) == {"s1>x": [3, 4], "s1>y": [1, 4], "s1>z": [1, 3], "s2>x": []}


def test_rows_meeting_the_same_demand_compete_too() -> None:
    def row(oid: str, surplus: str, to: str, rank: int) -> dict[str, object]:
        return {
            "id": oid,
            "surplus_id": surplus,
            "rank": rank,
            "park": "p",
            "to_tenant": to,
            "to_meter": f"{to}-water",
            "demand_resource": "water.process",
        }

    rows = [row("s1>x", "s1", "x", 1), row("s2>x", "s2", "x", 2), row("s1>y", "s1", "y", 3)]
    # s1>x shares its surplus with s1>y and its receiver's demand with s2>x
    assert alternatives(rows) == {"s1>x": [2, 3], "s2>x": [1], "s1>y": [1]}


def test_the_period_ends_at_the_last_local_midnight() -> None:
    offset = 7 * 3_600_000  # D0 is 00:00 at +07:00
    noon = D0 + 12 * 3_600_000
    assert complete_days(noon, 7, offset) == (D0 - 7 * DAY_MS, D0)
    assert complete_days(D0, 1, offset) == (D0 - DAY_MS, D0)  # at midnight: that day is done
    assert complete_days(D0 - 1, 1, offset) == (D0 - 2 * DAY_MS, D0 - DAY_MS)


def test_per_day_is_over_the_days_with_data_and_coverage_over_the_elapsed_days() -> None:
    # the park's data begin on D0; a 90-day view ending D0 + 2 days has 2 elapsed days
    assert flows.elapsed_days(FRAME, D0 + 2 * DAY_MS, 90, DAY_MS) == 2
    assert flows.elapsed_days(FRAME, D0 + 2 * DAY_MS, 1, DAY_MS) == 1
    assert flows.elapsed_days(FRAME.iloc[0:0], D0, 90, DAY_MS) == 90
    rows = {(f.tenant, f.resource): f for f in flows.flows(FRAME, UNITS, days=2)}
    eff = rows[("b", "water.treated_effluent")]
    # 2 m3/h on D0, nothing on D0 + 1: 48 m3 on its one day with data, not 24 a day
    assert eff.total == 48 and eff.per_day == 48 and eff.coverage == 0.5


def test_a_fully_reporting_meter_is_fully_covered_in_every_view() -> None:
    """30 days of 1 m3 every hour, seen in the 7-, 28- and 90-day views ending at the last
    midnight: 24 m3 a day and 100 % in each (not 87 %, 97 % or 33 %)."""
    month = rollup_frame([_row("a", "a-water", "water.potable", "in", d, 1.0) for d in range(30)])
    end = D0 + 30 * DAY_MS
    for days in (7, 28, 90):
        start = end - days * DAY_MS
        frame = month[month["day"] >= start]
        elapsed = flows.elapsed_days(frame, end, days, DAY_MS)
        assert elapsed == min(days, 30)
        (flow,) = flows.flows(frame, UNITS, elapsed)
        assert flow.per_day == 24.0 and flow.coverage == 1.0, days
        assert flows.coverage(frame, 1, elapsed) == 1.0, days
