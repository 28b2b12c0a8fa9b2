"""Surplus detection on small synthetic rollups with hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from parkflow.registry import Registry
from service.detect import Surplus, build_panels_from_days, find_surpluses, window_bounds
from service.knowledge import Knowledge, load_knowledge
from tests.support.registries import build, with_links
from tests.support.rollups import day_rollups

TZ = "Asia/Ho_Chi_Minh"  # UTC+7, no daylight saving
NOW = pd.Timestamp("2026-11-28 10:30", tz=TZ)
START = pd.Timestamp("2026-10-31", tz=TZ)  # 28 whole local days before NOW's date
DAYS = 28
CLOCK = np.tile(np.arange(24), DAYS)  # local clock hour of each window hour
DAY = np.repeat(np.arange(DAYS), 24)  # window day of each window hour

REGISTRY = """
version: 1
parks:
  - id: p
    name: P
    timezone: Asia/Ho_Chi_Minh
    tenants:
      - id: plant
        name: Plant
        meters:
          - {id: eff, resource: water.treated_effluent, direction: out, unit: m3, kind: delta, quality: {qcvn40_column: A}, destination: discharged}
          - {id: vent, resource: energy.steam, direction: out, unit: kWh, kind: delta, quality: {pressure_bar: 6, temperature_c: 165}, destination: vented}
          - {id: ash, resource: waste.fly_ash, direction: out, unit: t, kind: delta, destination: landfill}
          - {id: water, resource: water.potable, direction: in, unit: m3, kind: delta}
      - id: roof
        name: Roof Co
        meters:
          - {id: pv, resource: energy.solar_generation, direction: out, unit: kWh, kind: delta, destination: self_use, offsets: energy.electricity}
          - {id: grid, resource: energy.electricity, direction: in, unit: kWh, kind: delta}
          - {id: pv-alone, resource: energy.solar_generation, direction: out, unit: kWh, kind: delta, destination: self_use, offsets: energy.lpg}
      - id: taker
        name: Taker
        meters:
          - {id: t-water, resource: water.potable, direction: in, unit: m3, kind: delta}
          - {id: t-cool, resource: water.potable, direction: in, unit: m3, kind: delta}
    exchanges: []
"""


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_knowledge()


PARK = yaml.safe_load(REGISTRY)["parks"][0]


def registry(exchanges: str = "[]") -> Registry:
    """The test park with these registered exchanges (a YAML flow list, as a park writes them)."""
    return build(with_links(PARK, yaml.safe_load(exchanges)))


def rollup(
    reg: Registry, series: dict[str, np.ndarray], start: pd.Timestamp = START
) -> pd.DataFrame:
    """Day rollups of each meter's hourly values from ``start``; NaN hours have no data."""
    return day_rollups(reg, series, start)


def surpluses(days: pd.DataFrame, reg: Registry, knowledge: Knowledge) -> list[Surplus]:
    return find_surpluses(build_panels_from_days(days, reg, NOW, DAYS), reg, knowledge)


def by_meter(found: list[Surplus]) -> dict[str, Surplus]:
    return {s.meter: s for s in found}


def test_window_is_whole_local_days_before_now() -> None:
    start, end = window_bounds(NOW, TZ, DAYS)
    assert start == START.tz_convert("UTC") and end == pd.Timestamp("2026-11-28", tz=TZ)
    assert start.hour == 17  # local midnight is 17:00 UTC the day before
    with pytest.raises(ValueError, match="timezone-aware"):
        window_bounds(pd.Timestamp("2026-11-28 10:00"), TZ, DAYS)


def test_persistent_stream_with_hand_computed_percentiles(knowledge: Knowledge) -> None:
    reg = registry()
    # day i carries 10 * (i + 1) m3, spread evenly over its 24 hours: 10, 20, ..., 280
    eff = (10.0 * (DAY + 1)) / 24
    found = by_meter(surpluses(rollup(reg, {"eff": eff}), reg, knowledge))
    s = found["eff"]
    assert s.id == "p:eff:stream" and s.kind == "stream" and s.tenant == "plant"
    assert (s.days, s.days_with_data, s.days_present) == (28, 28, 28)
    # numpy's linear percentiles over 28 sorted values: positions 2.7, 13.5, 24.3
    assert s.p10_per_day == pytest.approx(37.0)
    assert s.p50_per_day == pytest.approx(145.0)
    assert s.p90_per_day == pytest.approx(253.0)
    assert s.mean_per_day == pytest.approx(145.0)
    assert s.unit == "m3" and s.window_start == START.tz_convert("UTC")
    assert "a median 145 m3/day of column-A treated effluent" in s.explanation
    assert "28 of 28 days" in s.explanation and "P10 37, P90 253" in s.explanation


def test_days_without_flow_or_data_count_against_persistence(knowledge: Knowledge) -> None:
    reg = registry()
    eff = np.full(DAYS * 24, 7.5)  # 180 m3/day
    eff[DAY == 3] = 0.0  # a day of no flow
    eff[DAY == 9] = 0.0
    eff[(DAY == 20) & (CLOCK < 10)] = np.nan  # 14 hours of data: below 20, a day without data
    found = by_meter(surpluses(rollup(reg, {"eff": eff}), reg, knowledge))
    s = found["eff"]
    assert (s.days_with_data, s.days_present) == (27, 25)
    assert s.present_share == pytest.approx(25 / 28)
    assert s.p50_per_day == pytest.approx(180.0)
    assert "on 25 of 28 days" in s.explanation and "1 days without enough data" in s.explanation


def test_not_persistent_enough_or_too_small_is_no_surplus(knowledge: Knowledge) -> None:
    reg = registry()
    sometimes = np.where(DAY < 14, 7.5, 0.0)  # 14 of 28 days, below 60%
    tiny = np.full(DAYS * 24, 4.0 / 24)  # 4 m3/day, below the 5 m3/day floor for water
    ash = np.full(DAYS * 24, 0.06 / 24)  # 0.06 t/day is above the 0.05 t/day floor
    found = by_meter(
        surpluses(rollup(reg, {"eff": sometimes, "vent": tiny, "ash": ash}), reg, knowledge)
    )
    assert "eff" not in found
    assert "vent" not in found  # 4 kWh/day of steam is far below 200 kWh/day
    assert found["ash"].p50_per_day == pytest.approx(0.06)
    reg_tiny = registry()
    found = by_meter(surpluses(rollup(reg_tiny, {"eff": tiny}), reg_tiny, knowledge))
    assert found == {}


def test_registered_exchanges_are_subtracted_from_their_start(knowledge: Knowledge) -> None:
    eff = np.full(DAYS * 24, 7.5)  # 180 m3/day
    # half of it since day 14 (2026-11-14) and a fixed 30 m3/day since before the window
    reg = registry(
        "[{from_meter: eff, to_meter: t-water, share: 0.5, since: 2026-11-14},"
        " {from_meter: eff, to_meter: t-cool, quantity_per_day: 30, since: 2020-01-01}]"
    )
    assert reg.parks["p"].exchanges[0].since.isoformat() == "2026-11-14"
    found = by_meter(surpluses(rollup(reg, {"eff": eff}), reg, knowledge))
    s = found["eff"]
    # days 0-13: 180 - 30 = 150; days 14-27: 180 * 0.5 - 30 = 60
    assert s.p50_per_day == pytest.approx((60 + 150) / 2)
    assert s.mean_per_day == pytest.approx(105.0)
    assert s.exchanged_per_day == pytest.approx(75.0)
    assert s.p10_per_day == pytest.approx(60.0) and s.p90_per_day == pytest.approx(150.0)
    assert "75 m3/day already goes to t-cool, t-water" in s.explanation
    # the hourly profile is scaled too: 105 m3/day on average is 4.375 m3/h
    assert s.hourly_profile[12] == pytest.approx(105.0 / 24)


def test_fully_exchanged_stream_is_no_surplus(knowledge: Knowledge) -> None:
    reg = registry("[{from_meter: eff, to_meter: t-water, share: 1.0, since: 2024-01-01}]")
    found = surpluses(rollup(reg, {"eff": np.full(DAYS * 24, 7.5)}), reg, knowledge)
    assert found == []


def test_vented_steam_at_night_has_its_hours(knowledge: Knowledge) -> None:
    reg = registry()
    vent = np.where((CLOCK >= 22) | (CLOCK < 6), 500.0, 0.0)  # 8 h x 500 = 4,000 kWh/day
    s = by_meter(surpluses(rollup(reg, {"vent": vent}), reg, knowledge))["vent"]
    assert s.p50_per_day == pytest.approx(4000.0)
    assert s.active_hours == (0, 1, 2, 3, 4, 5, 22, 23)
    assert s.hourly_profile[23] == pytest.approx(500.0) and s.hourly_profile[12] == 0.0
    assert "vents a median 4,000 kWh/day of steam at 6 bar, 165 °C" in s.explanation
    assert "mostly 22:00-06:00" in s.explanation


def test_temporal_surplus_is_generation_above_own_use(knowledge: Knowledge) -> None:
    reg = registry()
    pv = np.where((CLOCK >= 10) & (CLOCK < 15), 100.0, 0.0)
    grid = np.full(DAYS * 24, 40.0)
    found = by_meter(
        surpluses(rollup(reg, {"pv": pv, "grid": grid, "pv-alone": pv}), reg, knowledge)
    )
    s = found["pv"]
    assert s.kind == "temporal" and s.id == "p:pv:temporal"
    assert s.p50_per_day == pytest.approx(5 * 60.0)  # (100 - 40) kWh over 5 midday hours
    assert s.active_hours == (10, 11, 12, 13, 14)
    assert "beyond its own use" in s.explanation and "10:00-15:00" in s.explanation
    # no meter of what it offsets: the excess is unknown, so no surplus is claimed
    assert "pv-alone" not in found


def test_generation_balancing_own_use_within_noise_is_no_surplus(knowledge: Knowledge) -> None:
    """A boiler sized to the plant: generation and use differ only by meter noise (+-2%)."""
    reg = registry()
    rng = np.random.default_rng(3)
    use = np.full(DAYS * 24, 5000.0)
    gen = use * rng.uniform(0.98, 1.02, use.shape)
    found = by_meter(surpluses(rollup(reg, {"pv": gen, "grid": use}), reg, knowledge))
    assert "pv" not in found
    # the same plant with a real excess at night is a surplus, of about that excess
    night = (CLOCK < 6).astype(float)
    found = by_meter(
        surpluses(rollup(reg, {"pv": gen + 3000.0 * night, "grid": use}), reg, knowledge)
    )
    assert found["pv"].p50_per_day == pytest.approx(6 * 3000.0, rel=0.05)


def test_rows_outside_the_window_and_unknown_meters_are_ignored(knowledge: Knowledge) -> None:
    reg = registry()
    inside = rollup(reg, {"eff": np.full(DAYS * 24, 7.5)})
    noise = pd.concat(
        [
            rollup(reg, {"eff": np.full(72, 1000.0)}, START - pd.Timedelta(days=3)),
            rollup(reg, {"eff": np.full(10, 1000.0)}, NOW.normalize()),  # today so far
            inside.assign(meter="ghost"),
        ]
    )
    found = by_meter(surpluses(pd.concat([inside, noise]), reg, knowledge))
    assert found["eff"].p90_per_day == pytest.approx(180.0)
    assert set(found) == {"eff"}


def test_categorical_columns_give_the_same_answer(knowledge: Knowledge) -> None:
    reg = registry()
    df = rollup(reg, {"eff": (10.0 * (DAY + 1)) / 24, "vent": np.full(DAYS * 24, 50.0)})
    cat = df.astype({c: "category" for c in ("park", "tenant", "meter", "resource", "direction")})
    plain = surpluses(df, reg, knowledge)
    assert surpluses(cat, reg, knowledge) == plain
    assert [s.id for s in plain] == ["p:eff:stream", "p:vent:stream"]


def test_input_checks_and_empty_input(knowledge: Knowledge) -> None:
    reg = registry()
    df = rollup(reg, {"eff": np.full(DAYS * 24, 7.5)})
    # day rollups carry epoch ms, not timestamps: ``now`` is the one time that can be naive
    with pytest.raises(ValueError, match="timezone-aware"):
        build_panels_from_days(df, reg, NOW.tz_localize(None), DAYS)
    assert surpluses(df.iloc[:0], reg, knowledge) == []
    panel = build_panels_from_days(df, reg, NOW, DAYS)["p"]
    assert panel.values.shape == (len(panel.meters), DAYS * 24)
    assert np.isnan(panel.values[panel.row["water"]]).all()
