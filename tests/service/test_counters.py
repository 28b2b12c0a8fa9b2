"""Meter maths: cumulative, delta and rate readings to interval quantities, and hourly buckets."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkflow.model import MeterKind, dedupe_points
from parkflow.timeunits import HOUR_MS
from service.rollups.counters import (
    Interval,
    Replacement,
    bucketize,
    counter_step,
    intervals,
    replaced_step,
)

MIN = 60_000
DAY = 86_400_000

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- counters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "rollover", "step"),
    [
        (100.0, 110.0, None, 10.0),
        (100.0, 100.0, None, 0.0),
        (100.0, 5.0, None, 5.0),  # reset: counted from 0 to 5
        (100.0, -3.0, None, 0.0),  # a reset to a negative register never gives negative use
        (999_990.0, 10.0, 1_000_000.0, 20.0),  # rollover explains the drop
        (999_990.0, 0.0, 1_000_000.0, 10.0),
        (600_000.0, 100.0, 1_000_000.0, 400_100.0),  # a wrap of 40% is still plausible
        (400_000.0, 100.0, 1_000_000.0, 100.0),  # a wrap of 60% is not: a reset
        (1_200_000.0, 5.0, 1_000_000.0, 5.0),  # above the modulus: cannot be a wrap
        (100.0, 5.0, 1_000_000.0, 5.0),  # a wrap would be 999905: a reset
    ],
)
def test_counter_step(previous: float, current: float, rollover: float | None, step: float) -> None:
    assert counter_step(previous, current, rollover) == pytest.approx(step)


def test_cumulative_intervals_with_resets_and_rollover() -> None:
    pts = [(0, 100.0), (10, 110.0), (20, 125.0), (30, 5.0), (40, 20.0), (50, 20.0), (60, 32.0)]
    got = intervals(MeterKind.CUMULATIVE, pts)
    assert got == [
        Interval(0, 10, 10.0),
        Interval(10, 20, 15.0),
        Interval(20, 30, 5.0),
        Interval(30, 40, 15.0),
        Interval(40, 50, 0.0),
        Interval(50, 60, 12.0),
    ]
    wrap = [(0, 999_990.0), (10, 999_995.0), (20, 3.0), (30, 10.0)]
    assert [i.quantity for i in intervals(MeterKind.CUMULATIVE, wrap, rollover=1_000_000)] == [
        5.0,
        8.0,
        7.0,
    ]
    # the same drop without a declared modulus is a reset: 3 counted since it
    assert [i.quantity for i in intervals(MeterKind.CUMULATIVE, wrap)] == [5.0, 3.0, 7.0]
    assert intervals(MeterKind.CUMULATIVE, []) == []
    assert intervals(MeterKind.CUMULATIVE, [(5, 1.0)]) == []


def test_duplicates_count_once_and_the_last_value_for_a_timestamp_wins() -> None:
    pts = [(0, 1.0), (10, 4.0), (10, 4.0), (0, 1.0), (20, 9.0)]
    assert dedupe_points(pts) == [(0, 1.0), (10, 4.0), (20, 9.0)]
    assert [i.quantity for i in intervals(MeterKind.CUMULATIVE, pts)] == [3.0, 5.0]
    assert dedupe_points([(10, 4.0), (10, 6.0)]) == [(10, 6.0)]  # a correction replaces


def test_delta_intervals() -> None:
    got = intervals(MeterKind.DELTA, [(20, 2.0), (0, 5.0), (50, 1.5)])
    assert got == [Interval(0, 0, 5.0), Interval(0, 20, 2.0), Interval(20, 50, 1.5)]


def test_rate_integration_trapezoid_previous_and_max_gap() -> None:
    h = HOUR_MS
    pts = [(0, 10.0), (h, 20.0), (h + h // 2, 20.0), (4 * h, 30.0), (5 * h, 30.0)]
    trap = intervals(MeterKind.RATE, pts, integration="trapezoid", max_gap_ms=h)
    prev = intervals(MeterKind.RATE, pts, integration="previous", max_gap_ms=h)
    # the 2.5 h gap is no data, not zero and not interpolated; a gap of exactly max_gap counts
    assert trap == [
        Interval(0, h, 15.0),
        Interval(h, h + h // 2, 10.0),
        Interval(4 * h, 5 * h, 30.0),
    ]
    assert prev == [
        Interval(0, h, 10.0),
        Interval(h, h + h // 2, 10.0),
        Interval(4 * h, 5 * h, 30.0),
    ]
    wide = intervals(MeterKind.RATE, pts, max_gap_ms=3 * h)
    assert sum(i.quantity for i in wide) == pytest.approx(15 + 10 + 2.5 * 25 + 30)


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown meter kind"):
        intervals("gauge", [(0, 1.0), (1, 2.0)])  # type: ignore[arg-type]


_series = st.dictionaries(
    st.integers(0, 10 * HOUR_MS), st.floats(0, 1e6, allow_nan=False), max_size=30
).map(lambda d: sorted(d.items()))


@SETTINGS
@given(
    _series,
    st.sampled_from(list(MeterKind)),
    st.sampled_from([None, 1_000_000.0]),
    st.randoms(use_true_random=False),
    st.integers(0, 10),
)
def test_out_of_order_and_duplicated_input_gives_the_sorted_answer(
    series: list[tuple[int, float]],
    kind: MeterKind,
    rollover: float | None,
    rnd: random.Random,
    dupes: int,
) -> None:
    messy = series + [rnd.choice(series) for _ in range(dupes if series else 0)]
    rnd.shuffle(messy)
    expected = intervals(kind, series, rollover=rollover)
    assert intervals(kind, messy, rollover=rollover) == expected
    assert all(i.quantity >= 0 for i in expected)  # non-negative input never gives negative use


@SETTINGS
@given(st.integers(0, 10**6), st.lists(st.floats(0, 1e4, allow_nan=False), max_size=40))
def test_a_monotone_counter_sums_to_last_minus_first(start: int, steps: list[float]) -> None:
    values = [float(start)]
    for s in steps:
        values.append(values[-1] + s)
    pts = [(i * MIN, v) for i, v in enumerate(values)]
    total = sum(i.quantity for i in intervals(MeterKind.CUMULATIVE, pts, rollover=1e12))
    assert total == pytest.approx(values[-1] - values[0], rel=1e-9, abs=1e-6)


@SETTINGS
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=40))
def test_cumulative_use_is_never_negative(values: list[float]) -> None:
    pts = [(i * MIN, v) for i, v in enumerate(values)]
    for rollover in (None, 1e5, 1e6):
        assert all(i.quantity >= 0 for i in intervals(MeterKind.CUMULATIVE, pts, rollover=rollover))


def test_bucketize_splits_across_hour_boundaries() -> None:
    h = HOUR_MS
    # 00:30 -> 01:30, 10 units: half in each hour
    assert bucketize([Interval(h // 2, h + h // 2, 10.0)]) == {0: 5.0, h: 5.0}
    # 00:45 -> 03:15: 15 min, 60, 60, 15 of 150 minutes
    got = bucketize([Interval(45 * MIN, 3 * h + 15 * MIN, 150.0)])
    assert got == pytest.approx({0: 15.0, h: 60.0, 2 * h: 60.0, 3 * h: 15.0})
    # (00:00, 01:00] is the first hour only: intervals are closed at the end
    assert bucketize([Interval(0, h, 7.0)]) == {0: 7.0}
    assert bucketize([Interval(h, 2 * h, 7.0)]) == {h: 7.0}
    # an instantaneous quantity at 01:00 belongs to the hour that ends there
    assert bucketize([Interval(h, h, 3.0)]) == {0: 3.0}
    assert bucketize([Interval(h + 1, h + 1, 3.0)]) == {h: 3.0}
    # 15-minute buckets
    assert bucketize([Interval(0, 30 * MIN, 4.0)], bucket_ms=15 * MIN) == {0: 2.0, 15 * MIN: 2.0}
    assert bucketize([]) == {}


_intervals = st.lists(
    st.tuples(
        st.integers(-5 * HOUR_MS, 50 * HOUR_MS),
        st.integers(0, 7 * HOUR_MS),
        st.floats(-1e6, 1e6, allow_nan=False),
    ).map(lambda t: Interval(t[0], t[0] + t[1], t[2])),
    max_size=20,
)


@SETTINGS
@given(_intervals, st.sampled_from([HOUR_MS, 15 * MIN, DAY]))
def test_bucketize_conserves_totals(items: list[Interval], bucket_ms: int) -> None:
    out = bucketize(items, bucket_ms)
    total = sum(i.quantity for i in items)
    scale = sum(abs(i.quantity) for i in items)
    assert sum(out.values()) == pytest.approx(total, abs=1e-9 * max(scale, 1.0))
    assert all(b % bucket_ms == 0 for b in out)
    for b in out:  # only buckets that an interval touches
        assert any(i.start_ms - bucket_ms <= b <= i.end_ms for i in items)


def test_rollover_is_applied_in_the_stored_unit() -> None:
    """A litre register wrapping at 1e8 L is stored in m3: its wrap is at 1e5 m3, not a reset."""
    from parkflow.registry.schema import Meter
    from service.rollups.compute import MeterMaths

    meter = Meter(
        id="w",
        resource="water.potable",
        direction="in",
        unit="L",
        kind="cumulative",
        rollover=100_000_000,
    )
    maths = MeterMaths.of(meter)
    assert maths.rollover == pytest.approx(100_000.0)
    # 99,990 m3 -> 10 m3 across the wrap: 20 m3 used, not 10 (a reset would lose the old count)
    quantities = [i.quantity for i in maths.intervals([(0, 99_990.0), (HOUR_MS, 10.0)])]
    assert quantities == [pytest.approx(20.0)]


# --- declared replacements ----------------------------------------------------------------------


def test_a_declared_replacement_counts_both_registers() -> None:
    """Old register 1000 -> removed at 1004; new one installed at 2, read 7 later: 4 + 5."""
    pts = [(0, 990.0), (HOUR_MS, 1000.0), (2 * HOUR_MS, 7.0), (3 * HOUR_MS, 9.0)]
    swap = Replacement(at_ms=90 * MIN, initial=2.0, final=1004.0)
    got = intervals(MeterKind.CUMULATIVE, pts, replacements=[swap])
    assert [i.quantity for i in got] == [10.0, 9.0, 2.0]
    # Undeclared, the drop is guessed as a reset to zero: 7, not 9.
    assert [i.quantity for i in intervals(MeterKind.CUMULATIVE, pts)] == [10.0, 7.0, 2.0]


def test_a_new_register_that_starts_high_is_not_counted_from_zero() -> None:
    """A reconditioned meter fitted at 10,000: its first reading 10,005 is 5, not 9,505."""
    pts = [(0, 400.0), (HOUR_MS, 500.0), (2 * HOUR_MS, 10_005.0)]
    swap = Replacement(at_ms=HOUR_MS + 1, initial=10_000.0)  # no final reading known
    got = intervals(MeterKind.CUMULATIVE, pts, replacements=[swap])
    assert [i.quantity for i in got] == [100.0, 5.0]
    assert intervals(MeterKind.CUMULATIVE, pts)[1].quantity == 9_505.0


def test_a_reading_at_the_replacement_instant_is_the_new_registers() -> None:
    pts = [(0, 50.0), (HOUR_MS, 3.0), (2 * HOUR_MS, 8.0)]
    at_reading = intervals(
        MeterKind.CUMULATIVE, pts, replacements=[Replacement(HOUR_MS, 1.0, 60.0)]
    )
    assert [i.quantity for i in at_reading] == [10.0 + 2.0, 5.0]
    at_start = intervals(MeterKind.CUMULATIVE, pts, replacements=[Replacement(0, 1.0, 60.0)])
    # (0, 1h] does not hold 0: the drop to 3 is guessed as a reset, as without a declaration
    assert [i.quantity for i in at_start] == [3.0, 5.0]


@pytest.mark.parametrize(
    ("previous", "current", "between", "rollover", "step"),
    [
        (100.0, 30.0, [Replacement(1, 0.0, 120.0)], None, 50.0),
        (100.0, 30.0, [Replacement(1, 0.0, None)], None, 30.0),
        (100.0, 30.0, [Replacement(1, 10.0, 90.0)], None, 20.0),  # a final below: nothing
        # two registers swapped before the next reading: the middle one counted 40 - 5
        (100.0, 30.0, [Replacement(1, 0.0, 110.0), Replacement(2, 5.0, 40.0)], None, 75.0),
        # the new register wrapped before its first stored reading
        (100.0, 10.0, [Replacement(1, 990.0, 100.0)], 1000.0, 20.0),
    ],
)
def test_replaced_step(
    previous: float,
    current: float,
    between: list[Replacement],
    rollover: float | None,
    step: float,
) -> None:
    assert replaced_step(previous, current, between, rollover) == pytest.approx(step)


def test_replacements_are_read_in_the_meters_unit_and_at_their_instant() -> None:
    from parkflow.registry.schema import Meter
    from service.rollups.compute import MeterMaths

    meter = Meter.model_validate(
        {
            "id": "w",
            "resource": "water.potable",
            "direction": "in",
            "unit": "L",
            "kind": "cumulative",
            "replaced": [
                {"at": "2025-03-04T10:00:00+07:00", "initial_reading": 2000, "final_reading": 9000}
            ],
        }
    )
    maths = MeterMaths.of(meter)
    at_ms = 1_741_057_200_000  # 2025-03-04 03:00 UTC
    [swap] = maths.replacements
    assert swap.at_ms == at_ms
    assert swap.initial == pytest.approx(2.0)
    assert swap.final == pytest.approx(9.0)
    got = maths.intervals([(at_ms - HOUR_MS, 8.0), (at_ms + HOUR_MS, 5.0)])  # m3, as stored
    assert [i.quantity for i in got] == [pytest.approx(1.0 + 3.0)]
