"""``parkflow meters``: per registered meter, the last reading, the readings and the total over a
period, and whether it is stale; figures declared by hand, on SQLite and a real InfluxDB."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkflow.cli import EXIT_BAD_INPUT, EXIT_OK, main
from parkflow.model import Direction, MeterKey, MeterKind, Reading, WriteBatch
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from parkflow.store import Store
from parkflow.store.ports import MeterRange, RangeData
from service.meters import bucket_quantities
from service.rollups.compute import MeterMaths, quantity_between

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
H = 3_600_000
M = H // 60
REG = load_registry(SAMPLE_REGISTRY)
WATER = "songlam/thep-an/thep-water"  # cumulative m3, rolls over at 1e6
ELEC = "songlam/thep-an/thep-elec"  # rate kW, trapezoid, gaps over 1 h not integrated
SCALE = "songlam/thep-an/thep-scale"  # delta, stored in t
DET_WATER = "songlam/det-phuoc/det-water"  # cumulative, a litre register wrapping at 1e8 L
SILENT = "songlam/thep-an/thep-heat"  # no readings at all


def _readings(meter: str, points: list[tuple[int, float]]) -> list[Reading]:
    rm = REG.meter(*meter.split("/"))
    assert rm is not None
    m = rm.meter
    return [
        Reading(rm.park.id, rm.tenant.id, m.id, m.resource, Direction(m.direction), ts, v)
        for ts, v in points
    ]


def _window_data(store: Store) -> None:
    store.write(
        WriteBatch(
            readings=(
                # 100 -> 110 over 2 h, half of it in the window: 5; then +20; a reset to 5: 5;
                # 5 -> 25 over 2 h, half in the window: 10. Total 40 m3.
                *_readings(
                    WATER,
                    [(T0 - H, 100), (T0 + H, 110), (T0 + 2 * H, 130), (T0 + 3 * H, 5)],
                ),
                *_readings(WATER, [(T0 + 5 * H, 25)]),
                # 10 kW for two hours: 20 kWh
                *_readings(ELEC, [(T0, 10), (T0 + H, 10), (T0 + 2 * H, 10)]),
                # deltas: 2 t over (-30 min, +30 min], half in: 1; then 3. Total 4 t.
                *_readings(SCALE, [(T0 - 30 * M, 1), (T0 + 30 * M, 2), (T0 + 90 * M, 3)]),
                # the register wraps at 1e5 m3 as stored: 99 990 -> 10 is 20 m3, then +5
                *_readings(DET_WATER, [(T0, 99_990), (T0 + H, 10), (T0 + 2 * H, 15)]),
            )
        )
    )


def _meters(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, dict[str, Any]]:
    assert main(["meters", "--registry", str(SAMPLE_REGISTRY), "--json", *argv]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    return {f"{r['park']}/{r['tenant']}/{r['meter']}": r for r in doc["meters"]}


def test_meters_reports_last_reading_count_total_and_staleness(
    env_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    _window_data(env_store)
    window = ("--since", "2026-01-01", "--until", "2026-01-01T04:00Z")
    got = _meters(capsys, *window)
    assert len(got) == len(REG.meters())

    water = got[WATER]
    assert (water["last_ms"], water["last_value"]) == (T0 + 3 * H, 5.0)
    assert water["last"] == "2026-01-01T03:00:00.000Z"
    assert water["readings"] == 3
    assert water["total"] == pytest.approx(40.0)
    assert (water["total_unit"], water["total_basis"]) == ("m3", "register increase")
    assert water["stale"] is False  # an hour old: not older than max_gap_s

    elec = got[ELEC]
    assert elec["readings"] == 3 and elec["total"] == pytest.approx(20.0)
    assert (elec["total_unit"], elec["value_unit"]) == ("kWh", "kWh/h")
    assert elec["total_basis"] == "integrated rate"
    assert elec["stale"] is True  # two hours old
    assert got[SCALE]["total"] == pytest.approx(4.0)
    assert got[SCALE]["total_basis"] == "sum of deltas"
    assert got[DET_WATER]["total"] == pytest.approx(25.0)

    silent = got[SILENT]
    assert silent["last_ms"] is None and silent["readings"] == 0
    assert silent["total"] is None and silent["stale"] is True

    # the last reading is the last before the end, even when the period holds none
    later = _meters(capsys, "--since", "2026-01-01T03:30Z", "--until", "2026-01-01T03:45Z")
    assert later[WATER]["readings"] == 0 and later[WATER]["last_ms"] == T0 + 3 * H
    assert later[WATER]["total"] == pytest.approx(20 * 15 / 120)  # a slice of 5 -> 25
    strict = _meters(capsys, *window, "--stale-after-s", "1800")
    assert strict[WATER]["stale"] is True and strict[WATER]["stale_after_s"] == 1800

    tenant = _meters(capsys, *window, "--tenant", "thep-an")
    assert set(tenant) == {k for k in got if k.startswith("songlam/thep-an/")}

    assert main(["meters", "--registry", str(SAMPLE_REGISTRY), *window]) == EXIT_OK
    table = capsys.readouterr().out
    line = next(ln for ln in table.splitlines() if ln.startswith(WATER + " "))
    assert "2026-01-01T03:00:00.000Z" in line and " 40 " in line and line.endswith("no")
    assert "register increase" in table and "max_gap_s" in table


def test_meters_refuses_an_empty_period_and_unknown_meters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["meters", "--registry", str(SAMPLE_REGISTRY)]
    assert main([*base, "--since", "2026-01-02", "--until", "2026-01-01"]) == EXIT_BAD_INPUT
    assert "before" in capsys.readouterr().err
    assert main([*base, "--tenant", "nobody"]) == EXIT_BAD_INPUT
    assert "no registered meter" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "points", "start", "end", "expected"),
    [
        (MeterKind.CUMULATIVE, [(0, 0.0), (2 * H, 10.0)], 0, H, 5.0),  # half the interval
        (MeterKind.CUMULATIVE, [(0, 0.0), (2 * H, 10.0)], 2 * H, 3 * H, None),  # none after
        (MeterKind.CUMULATIVE, [(0, 50.0), (H, 10.0)], 0, H, 10.0),  # a reset
        (MeterKind.DELTA, [(0, 7.0)], 0, H, 7.0),  # a first delta counts where it falls
        (MeterKind.DELTA, [(H, 7.0)], 0, H, None),  # the end is excluded
        (MeterKind.RATE, [(0, 4.0), (H, 8.0)], 0, H, 6.0),  # trapezoid
        (MeterKind.RATE, [(0, 4.0), (3 * H, 4.0)], 0, 3 * H, None),  # a gap is no data
    ],
)
def test_quantity_between(
    kind: MeterKind,
    points: list[tuple[int, float]],
    start: int,
    end: int,
    expected: float | None,
) -> None:
    got = quantity_between(MeterMaths(kind), None, points, None, start, end)
    assert got == (None if expected is None else pytest.approx(expected))


@st.composite
def _ranges(draw: st.DrawFn) -> tuple[MeterMaths, RangeData, int, int, int]:
    kind = draw(st.sampled_from(list(MeterKind)))
    maths = MeterMaths(kind, rollover=1000.0 if kind is MeterKind.CUMULATIVE else None)
    start = T0 + draw(st.integers(0, 4)) * 7 * M
    end = start + draw(st.integers(1, 12)) * H + draw(st.integers(0, 59)) * M
    times = sorted(
        set(draw(st.lists(st.integers(start - 2 * H, end + 2 * H), min_size=0, max_size=40)))
    )
    value, points = 0.0, []
    for ts in times:
        step = draw(st.floats(0, 50, allow_nan=False))
        value = (value + step) % 1000.0 if kind is MeterKind.CUMULATIVE else step
        points.append((ts, value))
    inside = tuple(p for p in points if start <= p[0] < end)
    before = next((p for p in reversed(points) if p[0] < start), None)
    after = next((p for p in points if p[0] >= end), None)
    key = MeterRange(MeterKey("p", "t", "m"), start, end)
    bucket = draw(st.sampled_from([15 * M, H, 2 * H + 7 * M]))
    return maths, RangeData(key, before, inside, after), bucket, start, end


@given(_ranges())
def test_buckets_are_each_buckets_own_period_total(
    case: tuple[MeterMaths, RangeData, int, int, int],
) -> None:
    """The buckets, made in one pass, equal ``quantity_between`` of each bucket on its own (the
    period total's rule), to the last bit, with its readings and last value."""
    maths, data, bucket, start, end = case
    got = bucket_quantities(maths, data, bucket, start, end)
    edges = [*range(start, end, bucket), end]
    assert [b.start_ms for b in got] == edges[:-1]
    series = ([data.before] if data.before else []) + list(data.points)
    series += [data.after] if data.after else []
    for b, (b0, b1) in zip(got, pairwise(edges), strict=True):
        inside = [p for p in data.points if b0 <= p[0] < b1]
        before = next((p for p in reversed(series) if p[0] < b0), None)
        after = next((p for p in series if p[0] >= b1), None)
        assert b.total == quantity_between(maths, before, inside, after, b0, b1)
        assert b.readings == len(inside)
        assert b.last_value == (inside[-1][1] if inside else None)
